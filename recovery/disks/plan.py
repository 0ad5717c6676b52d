"""layout.yaml + a disk mapping -> the ordered list of disk actions (pure).

Nothing here reads the machine: the mapping, the new disks (their sizes and
what lsblk found on them) and the key files come in as arguments, so every
plan can be rendered and checked in a unit test.  Every problem (an
unmapped disk, a disk too small, a filesystem or stack that cannot be
recreated) is collected and reported together, before anything runs.

Order: preflight; wipe each mapped disk; its partition table; the stack in
dependency order (MD arrays, LUKS containers, LVM volume groups, in
whatever nesting the layout has); filesystems and swap; mounts, parents
first.  Ids: wipe-DISK, ptable-DISK (or -ARRAY), md-ARRAY, luks-LUKS,
open-LUKS, pv-DEVICE, vg-VG, format-FS, mount-FS (mount-FS-N for a further
btrfs subvolume mount), where DISK, FS... are the layout's ids.
"""

from __future__ import annotations

import os
from typing import Callable

from essentials.errors import AmdrError
from essentials.layout.schema import by_id

from . import checks, merge, vgcfg
from .actions import Action
from .fsactions import FS_TYPES, Format, Mount
from .mapping import human
from .preflight import Preflight, blkid_uuid, tools_of
from .ptable import Partition, PartitionTable, partition_path, required_bytes
from .sizing import Content, fit_disk
from .stack import LuksFormat, LuksOpen, LvmPv, LvmVg, MdCreate, Passphrase
from .wipe import WipeDisk, inventory

__all__ = ["PlanError", "plan_disks", "partition_path", "required_bytes", "target_path",
           "needed_disks"]


class PlanError(AmdrError):
    """The layout cannot be reproduced on the disks given."""


def target_path(target: str, mountpoint: str) -> str:
    return os.path.normpath(os.path.join(target, mountpoint.lstrip("/")))


def alias_disks(layout: dict) -> dict[str, str]:
    """Further paths of a multipath map -> its first path: the same LUN, made once."""
    out = {}
    for m in layout.get("multipath") or []:
        for p in (m.get("paths") or [])[1:]:
            out[p] = (m.get("paths") or [None])[0]
    return out


def needed_disks(layout: dict) -> list[dict]:
    """The disks that carry something to recreate (a table, a filesystem, a
    stack member); an empty disk or a second path of a multipath map needs
    no disk of its own."""
    used = {f["device"] for f in layout["filesystems"]}
    aliases = alias_disks(layout)
    return [d for d in layout["disks"]
            if d["id"] not in aliases and (d.get("ptable") or d["id"] in used)]


def contents(layout: dict) -> dict[str, Content]:
    """Layout id of a partition or disk -> what it holds, as sizing and merging see it."""
    out = {}
    for f in layout["filesystems"]:
        what = f["type"] + (f" on {f['mountpoint']}" if f.get("mountpoint") else "")
        if f["type"] == "crypto_LUKS":
            what = "a LUKS container"
        out[f["device"]] = Content(f["type"], f.get("used"), what)
    return out


def luks_name(layout: dict, c: dict) -> str:
    """The mapping name a container is opened under: its own, crypttab's, or luks-UUID."""
    if c.get("name"):
        return c["name"]
    for e in layout.get("crypttab") or []:
        if e.get("luks") == c["id"]:
            return e["name"]
    return f"luks-{c['uuid']}"


def fstab_mountpoint(layout: dict, fid: str) -> str | None:
    for e in layout.get("fstab") or []:
        if e.get("filesystem") == fid and str(e.get("file", "")).startswith("/"):
            return e["file"]
    return None


def mount_actions(layout: dict, paths: dict[str, str], target: str, cls=Mount) -> list[Mount]:
    """The mounts of every filesystem whose device is in paths (layout id ->
    device path now), parents first; also used by `amdr-recover mount`."""
    mounts = []
    for f in layout["filesystems"]:
        if f["type"] not in FS_TYPES or f["type"] == "swap" or f["device"] not in paths:
            continue
        wanted = []  # (mountpoint, options)
        for m in f.get("mounts") or []:
            root = m.get("fsroot") or "/"
            if root == "/":
                wanted.append((m["mountpoint"], None))
            elif f["type"] == "btrfs":
                wanted.append((m["mountpoint"], f"subvol={root.strip('/')}"))
        if not wanted:
            mp = f.get("mountpoint") or fstab_mountpoint(layout, f["id"])
            if mp:
                wanted.append((mp, None))
        seen = set()
        for n, (mp, opts) in enumerate(wanted):
            if mp in seen:
                continue
            seen.add(mp)
            mounts.append(cls(f"mount-{f['id']}" + (f"-{n}" if n else ""),
                              filesystem=f["id"], path=paths[f["device"]],
                              fstype=f["type"], mountpoint=mp, options=opts,
                              target=target_path(target, mp)))
    # parents before children: / before /srv before /srv/www
    mounts.sort(key=lambda m: (m.mountpoint.rstrip("/").count("/")
                               if m.mountpoint != "/" else 0, m.mountpoint))
    return mounts


def stack_deps(kind: str, entry: dict) -> list:
    """The layout ids an MD array, LUKS container or VG sits on."""
    if kind == "md":
        return [m["device"] for m in entry["members"] if m.get("device")]
    if kind == "luks":
        return [entry.get("device")]
    return [pv.get("device") for pv in entry["physical_volumes"]]


def walk_stack(layout: dict, paths: dict, visit: Callable[[str, dict], None]) -> list:
    """Visit MD arrays, LUKS containers and VGs in dependency order (any nesting).

    visit(kind, entry) must add the ids it makes to `paths`; returns the
    (kind, entry) pairs whose devices never became available."""
    pending = ([("md", a) for a in layout.get("md") or []]
               + [("luks", c) for c in layout.get("luks") or []]
               + [("vg", v) for v in layout.get("lvm") or []])
    progress = True
    while pending and progress:
        progress = False
        for item in list(pending):
            kind, entry = item
            if all(dep in paths for dep in stack_deps(kind, entry)):
                visit(kind, entry)
                pending.remove(item)
                progress = True
    return pending


class _Planner:
    def __init__(self, layout, mapping, sizes, target, present, files, read, luks_keys,
                 passphrase, workdir, reasons, unmatched):
        self.layout, self.mapping, self.target = layout, mapping, target
        self.sizes, self.present = sizes or {}, present or {}
        self.files = files or (lambda rel: rel)
        self.read = read
        self.luks_keys = luks_keys or {}
        self.passphrase = passphrase
        self.workdir = workdir or f"{target.rstrip('/')}.amdr"
        self.reasons, self.unmatched = reasons or {}, unmatched or {}
        self.ids = by_id(layout)
        self.problems: list[str] = []
        self.paths: dict[str, str] = {}  # layout id -> device path now
        self.scale: dict[str, float] = {}  # layout id -> new size / old size
        self.actions: list[Action] = []
        self.unplaced: set[str] = set()  # ids on disks that could not be placed

    # -- checks ------------------------------------------------------------------
    def check_mapping(self, disks):
        for d in disks:
            if self.mapping.get(d["path"]) is None:
                why = self.unmatched.get(d["path"])
                self.problems.append(f"{d['path']} ({d['size']} bytes, {human(d['size'])}): "
                                     f"no disk mapped to it; give --map {d['path']}=NEWDISK"
                                     + (f" ({why})" if why else "")
                                     + ("; several original disks can share one: --map "
                                        "each of them to it" if self.mapping else ""))

    def new_size(self, new: str) -> tuple[int | None, int | None]:
        node = self.present.get(new) or {}
        size = self.sizes.get(new, node.get("size"))
        ss = node.get("log-sec")
        return (int(size) if size is not None else None), (int(ss) if ss else None)

    # -- disks -------------------------------------------------------------------
    def disks(self, disks, contents):
        tables = []
        self.unplace([d for d in disks if self.mapping.get(d["path"]) is None])
        for new, group in merge.groups(disks, self.mapping):
            notes: list[str] = []
            if len(group) == 1:
                d = group[0]
            else:  # several original disks share this one (merge.py)
                m = merge.merge(group, new, contents)
                if m.problem:
                    self.problems.append(m.problem)
                    self.unplace(group)
                    continue
                d = m.disk
                notes = m.notes + merge.follow_notes(self.layout, group, m.renamed, new)
            size, ss = self.new_size(new)
            fit = fit_disk(d, new, size, ss, contents)
            if fit.problem:
                self.problems.append(fit.problem)
                self.unplace(group)
                continue
            for i, (old, now) in fit.resized.items():
                self.scale[i] = now / old
            for g in group:
                self.paths[g["id"]] = new
            holders, old_parts = inventory(self.present.get(new))
            reason = "; ".join(dict.fromkeys(r for r in (self.reasons.get(g["path"])
                                                         for g in group) if r))
            wipe = WipeDisk(
                f"wipe-{d['id']}", device=new, disk=d["id"], matched=reason or None,
                holders=holders, old_partitions=old_parts,
                disk_fstype=(self.present.get(new) or {}).get("fstype"),
                also=[g["id"] for g in group if g["id"] != d["id"]])
            self.actions.append(wipe)
            pt = d.get("ptable")
            if pt:
                table = self.table(f"ptable-{d['id']}", new, d["id"], pt, fit)
                table.notes = notes + table.notes
                tables.append(table)
                wipe.table = table
        self.actions += tables

    def unplace(self, group):
        for d in group:
            self.unplaced.add(d["id"])
            self.unplaced |= {p["id"] for p in (d.get("ptable") or {}).get("partitions", [])}

    def table(self, aid, device, owner, pt, fit=None) -> PartitionTable:
        parts = []
        for p in (fit.partitions if fit else pt.get("partitions") or []):
            path = partition_path(device, p["number"])
            self.paths[p["id"]] = path
            parts.append(Partition(p["number"], path, p["start"], p["size"], p["type"],
                                   p.get("uuid"), p.get("name"), p.get("attrs"),
                                   p.get("bootable"), p.get("kind")))
        return PartitionTable(aid, device=device, disk=owner, label=pt["label"],
                              label_id=pt.get("id"),
                              first_lba=fit.first_lba if fit else pt.get("first_lba"),
                              last_lba=fit.last_lba if fit else pt.get("last_lba"),
                              partitions=parts, notes=list(fit.notes) if fit else [])

    # -- the stack ------------------------------------------------------------------
    def stack(self):
        pending = walk_stack(self.layout, self.paths, lambda kind, entry:
                             getattr(self, kind)(entry))
        # a dependency on a disk that could not be placed (unmapped, too small) or
        # on another item left out is explained by that problem already
        explained = set(self.unplaced) | {None}  # None: not collected (checks said so)
        for kind, entry in pending:
            explained.add(entry["id"])
            explained |= {lv["id"] for lv in entry.get("logical_volumes") or []}
            explained |= {p["id"] for p in (entry.get("ptable") or {}).get("partitions", [])}
        for kind, entry in pending:
            missing = [dep for dep in stack_deps(kind, entry) if dep not in self.paths]
            if all(dep in explained for dep in missing):
                continue
            name = entry.get("path") or entry.get("device_path") or entry.get("name")
            self.problems.append(f"{name}: it sits on {', '.join(missing)}, which this plan "
                                 f"does not make")


    def md(self, a):
        slots: list[str] = ["missing"] * int(a.get("raid_devices") or 0)
        spares, notes, ids = [], [], []
        for m in a["members"]:
            dev, role = m.get("device"), m.get("role")
            if dev:
                ids.append(dev)
            if isinstance(role, int) and 0 <= role < len(slots):
                if dev:
                    slots[role] = self.paths[dev]
            elif role == "spare" and dev:
                spares.append(self.paths[dev])
        for i, s in enumerate(slots):
            if s == "missing":
                notes.append(f"slot {i} had no working member on the original system: the "
                             f"array is created degraded (add a disk with mdadm --add later)")
        scales = [self.scale.get(i, 1.0) for i in ids]
        if scales and min(scales) != 1.0:
            self.scale[a["id"]] = min(scales)
        self.actions.append(MdCreate(
            f"md-{a['id']}", path=a["path"], array=a["id"], level=a["level"],
            metadata=a.get("metadata"), uuid=a.get("uuid"), name=a.get("name"),
            chunk_size=a.get("chunk_size"), layout=a.get("layout"), bitmap=a.get("bitmap"),
            raid_devices=len(slots), members=slots, spares=spares, member_ids=ids,
            notes=notes))
        self.paths[a["id"]] = a["path"]
        if a.get("ptable"):
            self.actions.append(self.table(f"ptable-{a['id']}", a["path"], a["id"], a["ptable"]))

    def luks_name(self, c) -> str:
        return luks_name(self.layout, c)

    def luks(self, c):
        key = (self.luks_keys.get(c["id"]) or self.luks_keys.get(c.get("name") or "")
               or self.luks_keys.get("*"))
        if not key and self.passphrase is None:
            self.problems.append(f"{c['device_path']}: LUKS container with no key file and no "
                                 f"passphrase to give it")
        dev = self.paths[c["device"]]
        fmt = LuksFormat(f"luks-{c['id']}", device=c["device"], path=dev, luks=c["id"],
                         version=c.get("version") or 2, uuid=c.get("uuid"),
                         label=c.get("label"), subsystem=c.get("subsystem"),
                         cipher=c.get("cipher"), key_size=c.get("key_size"),
                         hash=c.get("hash"), pbkdf=c.get("pbkdf"),
                         sector_size=c.get("sector_size"), data_offset=c.get("data_offset"),
                         key_file=key, passphrase=None if key else self.passphrase)
        name = self.luks_name(c)
        opened = LuksOpen(f"open-{c['id']}", luks=c["id"], path=dev, name=name, key_file=key,
                          passphrase=None if key else self.passphrase)
        self.actions += [fmt, opened]
        self.paths[c["id"]] = opened.mapper
        if c["device"] in self.scale:
            self.scale[c["id"]] = self.scale[c["device"]]

    def vg(self, vg):
        rf = self.files(vg["vgcfgbackup"])
        pvs, grown = [], []
        for pv in vg["physical_volumes"]:
            path = self.paths[pv["device"]]
            self.actions.append(LvmPv(f"pv-{pv['device']}", device=pv["device"], path=path,
                                      vg=vg["id"], uuid=pv["uuid"], restorefile=rf))
            pvs.append(pv["device"])
            if self.scale.get(pv["device"], 1.0) > 1.0:
                grown.append(path)
        lvs, thin, notes, pools = [], False, [], []
        used = {f["device"] for f in self.layout["filesystems"]} | {
            c.get("device") for c in self.layout.get("luks") or []}
        for lv in vg["logical_volumes"]:
            thin = thin or lv.get("segtype") in ("thin-pool", "thin")
            if lv.get("hidden"):
                continue
            path = f"/dev/{vg['name']}/{lv['name']}"
            self.paths[lv["id"]] = path
            if lv["id"] in used:
                lvs.append(path)
        if thin:
            pools = self.thin_pools(vg)
        if grown:
            notes.append(f"{', '.join(grown)} grew: the volume group gains the room as free "
                         f"extents (lvextend what should use it)")
        self.actions.append(LvmVg(f"vg-{vg['id']}", vg=vg["id"], name=vg["name"],
                                  restorefile=rf, pvs=pvs, grown=grown, thin=thin,
                                  thin_pools=pools, lvs=lvs, notes=notes))

    def thin_pools(self, vg) -> list[dict]:
        try:
            if self.read is None:
                raise ValueError("the planner was given no way to read it")
            pools = vgcfg.thin_pools(self.read(vg["vgcfgbackup"]), vg["name"])
        except (OSError, ValueError, KeyError, IndexError, AmdrError) as e:
            self.problems.append(f"volume group {vg['name']}: its thin pools cannot be read "
                                 f"from {vg['vgcfgbackup']}: {e}")
            return []
        need = max((p["metadata_bytes"] for p in pools), default=0)
        if vg.get("free") is not None and need > vg["free"]:
            self.problems.append(
                f"volume group {vg['name']}: remaking a thin pool's metadata needs "
                f"{human(need)} free in the volume group for a moment, it has "
                f"{human(vg['free'])}")
        for p in pools:
            p["xml"] = vgcfg.thin_xml(p)
            p["xml_path"] = os.path.join(self.workdir, f"thin-{vg['name']}-{p['name']}.xml")
        return pools

    # -- filesystems and mounts --------------------------------------------------------
    def orphan_pvs(self, pv_devices):
        for f in self.layout["filesystems"]:
            if f["type"] == "LVM2_member" and f["device"] not in pv_devices:
                if f["device"] in self.paths:
                    self.actions.append(LvmPv(f"pv-{f['device']}", device=f["device"],
                                              path=self.paths[f["device"]], uuid=f["uuid"]))

    def formats(self):
        for f in self.layout["filesystems"]:
            if f["type"] not in FS_TYPES or f["device"] not in self.paths:
                continue
            notes = []
            ro = [s["path"] for s in f.get("subvolumes") or [] if s.get("readonly")]
            if ro:
                notes.append(f"read-only subvolumes are made writable, for the restore to "
                             f"fill them: {', '.join(ro)}")
            if f["type"] == "btrfs" and f.get("subvolumes") is None:
                notes.append("its subvolumes are unknown (it was not mounted when collected)")
            self.actions.append(Format(
                f"format-{f['id']}", device=f["device"], path=self.paths[f["device"]],
                fstype=f["type"], uuid=f.get("uuid"), label=f.get("label"),
                params=dict(f.get("params") or {}), scale=self.scale.get(f["device"], 1.0),
                subvolumes=list(f.get("subvolumes") or []) if f["type"] == "btrfs" else [],
                default_subvolume=f.get("default_subvolume") if f["type"] == "btrfs" else None,
                workdir=os.path.join(self.workdir, f"mnt-{f['id']}"), notes=notes))

    def mounts(self):
        self.actions += mount_actions(self.layout, self.paths, self.target)

    def other_uuids(self) -> list[list[str]]:
        """UUIDs recreated that the preflight warns about when a disk that stays has them."""
        out = []
        for a in self.actions:
            if isinstance(a, Format) and a.uuid and a.fstype != "btrfs":
                out.append([a.uuid, f"the {a.fstype} " + ("area" if a.fstype == "swap" else
                                                          "filesystem")
                            + (f" labelled {a.label}" if a.label else "")])
            elif isinstance(a, LuksFormat) and a.uuid:
                out.append([a.uuid, f"the LUKS container on {a.path}"])
            elif isinstance(a, MdCreate) and a.uuid:
                out.append([blkid_uuid(a.uuid), f"the MD array {a.path}"])
        return out

    def link_whole_disks(self):
        """A wiped disk with no table holds one thing on the whole of it (a
        filesystem, PV, RAID member, LUKS container): that action's work on
        the disk is what makes the wipe done on a re-run, as a table is."""
        for w in self.actions:
            if not isinstance(w, WipeDisk) or w.table is not None:
                continue
            w.whole = next((a for a in self.actions if a is not w and (
                getattr(a, "path", None) == w.device
                or w.device in (getattr(a, "members", None) or []))), None)

    def plan(self) -> list[Action]:
        disks = needed_disks(self.layout)
        self.problems += checks.problems(self.layout)
        self.check_mapping(disks)
        self.disks(disks, contents(self.layout))
        self.stack()
        if self.problems:
            raise PlanError("the layout cannot be recreated, nothing was changed:\n  "
                            + "\n  ".join(self.problems))
        self.orphan_pvs({pv["device"] for vg in self.layout.get("lvm") or []
                         for pv in vg["physical_volumes"]})
        self.formats()
        self.mounts()
        self.link_whole_disks()
        pre = Preflight("preflight", tools=tools_of(self.actions),
                        passphrase_for=[a.luks for a in self.actions
                                        if isinstance(a, LuksFormat) and not a.key_file],
                        unique_uuids=[a.uuid for a in self.actions if isinstance(a, Format)
                                      and a.fstype == "btrfs" and a.uuid],
                        unique_pv_uuids=[a.uuid for a in self.actions
                                         if isinstance(a, LvmPv) and a.uuid],
                        wiped=[p for a in self.actions if isinstance(a, WipeDisk)
                               for p in [a.device] + [h["path"] for h in a.holders]],
                        other_uuids=self.other_uuids())
        pre.passphrase = self.passphrase
        return [pre] + self.actions


def plan_disks(layout: dict, mapping: dict[str, str], sizes: dict[str, int | None] | None,
               target: str, *, present: dict[str, dict] | None = None,
               files: Callable[[str], str] | None = None,
               read: Callable[[str], str] | None = None,
               luks_keys: dict[str, str] | None = None, passphrase: Passphrase | None = None,
               workdir: str | None = None, reasons: dict[str, str] | None = None,
               unmatched: dict[str, str] | None = None) -> list[Action]:
    """mapping: original disk path -> new disk path; sizes: new path -> bytes
    (else from present, else assumed the original size); present: new path ->
    its `lsblk --json -b -O` node (what is on it now, its sector size);
    files: bundle-relative path (the vgcfgbackup) -> the file vgcfgrestore reads;
    read: bundle-relative path -> its text (thin pools are read from the
    vgcfgbackup);
    luks_keys: LUKS id, mapping name or "*" -> key file; passphrase: asked when
    applying for containers without a key file; workdir: scratch mounts (the
    journal's directory, beside the target); reasons/unmatched: why each disk
    was or was not matched, shown in the plan and in errors."""
    return _Planner(layout, mapping, sizes, target, present, files, read, luks_keys,
                    passphrase, workdir, reasons, unmatched).plan()
