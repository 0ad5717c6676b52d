"""Bringing an existing system's disks up and down again, for repair: mount, umount.

diskinit makes the disks; `mount` finds them again (the same matching of
original to present disks), assembles the MD arrays, opens the LUKS
containers and activates the volume groups the layout describes, checks
that every filesystem it mounts carries its UUID, and mounts them under the
target, parents first: nothing is wiped or formatted.  `umount` unmounts
everything under the target, deepest first, then deactivates what mount or
diskinit recorded in the state file beside the target
(TARGET.amdr/active.json), in reverse order.  Both can be run again: what
is already mounted, active or gone is left as it is.

Planning is pure (plan_mount, plan_umount take the facts as arguments); the
few functions that look at the machine are at the end, marked as such.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import re
from dataclasses import dataclass, field
from pathlib import Path

from essentials.errors import AmdrError, CommandError, RefusedError
from essentials.runner import Runner

from . import merge
from .actions import Action, Step
from .fsactions import FS_TYPES, Mount, _mounted
from .mapping import Match, human, identity_match
from .plan import (PlanError, alias_disks, contents, luks_name, mount_actions,
                   needed_disks, stack_deps, walk_stack)
from .preflight import Preflight, tools_of
from .ptable import partition_path
from .stack import LuksOpen, Passphrase, wait_paths

log = logging.getLogger(__name__)

STATE_FILE = "active.json"
STATE_VERSION = 1
STACK_TYPES = {"md": "path", "luks": "name", "vg": "name"}  # item type -> its key


def same_uuid(a: str | None, b: str | None) -> bool:
    """blkid writes an MD array's UUID 8-4-4-4-12, mdadm 8:8:8:8; LVM's keeps its dashes."""
    def norm(u):
        return re.sub(r"[-:]", "", str(u or "")).lower()
    return bool(norm(a)) and norm(a) == norm(b)


# -- the state file: what was activated, for umount ----------------------------------

def state_path(state_dir) -> Path:
    return Path(state_dir) / STATE_FILE


def read_state(path) -> list[dict]:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise AmdrError(f"{path}: cannot read what was activated ({e}); remove it and "
                        f"deactivate by hand (vgchange -an, cryptsetup close, mdadm --stop)")
    items = doc.get("active") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not all(
            isinstance(i, dict) and STACK_TYPES.get(i.get("type")) in i for i in items):
        raise AmdrError(f"{path}: not a state file amdr-recover wrote ('active' must list "
                        f"md, luks and vg entries)")
    return items


def _write_state(path: Path, items: list[dict]):
    if not items:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": STATE_VERSION, "active": items}, indent=1) + "\n")
    os.replace(tmp, path)


def record(path, items: list[dict]):
    """Add items (in activation order), before they are activated: an
    interrupted run still leaves umount knowing them."""
    path = Path(path)
    old = read_state(path)
    new = old + [i for i in items if i not in old]
    if new != old:
        _write_state(path, new)


def forget(path, items: list[dict]):
    path = Path(path)
    _write_state(path, [i for i in read_state(path) if i not in items])


def stack_items(actions) -> list[dict]:
    """What a plan (diskinit's or mount's) activates, in order."""
    out = []
    for a in actions:
        if a.type in ("raid", "md_assemble"):
            item = {"type": "md", "path": a.path}
        elif a.type == "luks_open":
            item = {"type": "luks", "name": a.name}
        elif a.type in ("lvm_vg", "lvm_activate"):
            item = {"type": "vg", "name": a.name}
        else:
            continue
        if item not in out:
            out.append(item)
    return out


# -- mount's actions -----------------------------------------------------------------

@dataclass
class MdAssemble(Action):
    path: str = ""
    array: str = ""  # id in the layout
    uuid: str | None = None
    members: list[str] = field(default_factory=list)  # paths (spares too)
    type = "md_assemble"
    journaled = False

    def steps(self):
        # --run: an array that was degraded on the original system starts anyway
        return [Step(["mdadm", "--assemble", "--run", self.path, f"--uuid={self.uuid}"]
                     + self.members)]

    def execute(self, runner: Runner):
        if not runner.dry_run and md_active(self.path):
            print(f"    ({self.path} is already assembled)")
            return
        super().execute(runner)

    def after(self, runner: Runner):
        if not runner.dry_run and wait_paths([self.path]):
            raise AmdrError(f"{self.path} did not appear after mdadm --assemble")


@dataclass
class VgActivate(Action):
    vg: str = ""  # id in the layout
    name: str = ""
    pvs: list[str] = field(default_factory=list)  # paths
    lvs: list[str] = field(default_factory=list)  # LV paths something is mounted from
    type = "lvm_activate"
    journaled = False

    def steps(self):
        return [Step(["vgchange", "--activate", "y", self.name])]

    def after(self, runner: Runner):
        missing = [] if runner.dry_run else wait_paths(self.lvs)
        if missing:
            raise AmdrError(f"{', '.join(missing)} did not appear after activating volume "
                            f"group {self.name}")


@dataclass
class CheckFilesystems(Action):
    """The filesystems on arrays, LUKS mappings and LVs can only be looked at
    once those are active: each must carry its UUID before anything is mounted."""

    filesystems: list[dict] = field(default_factory=list)  # id, path, type, uuid, mountpoint
    type = "check"
    journaled = False

    def steps(self):
        return [Step(["blkid", "-p", "-o", "value", "-s", "UUID", f["path"]])
                for f in self.filesystems]

    def execute(self, runner: Runner):
        if runner.dry_run:
            return super().execute(runner)
        problems = []
        for f, step in zip(self.filesystems, self.steps()):
            found = runner.run(step.argv, check=False).text.strip()
            if not same_uuid(found, f["uuid"]):
                problems.append(uuid_problem(fs_what(f), f["uuid"], f.get("original"),
                                             f["path"], {"UUID": found} if found else {}))
        if problems:
            raise RefusedError("refusing to mount, nothing was mounted:\n  "
                               + "\n  ".join(problems)
                               + "\n  (what was activated: amdr-recover umount --target DIR)")


@dataclass
class MountExisting(Mount):
    """diskinit's mount, minus the surprise: an existing mount is reported, not redone."""

    def execute(self, runner: Runner):
        if not runner.dry_run and _mounted(self.path, self.target):
            print(f"    (already mounted: {self.path} on {self.target})")
            return
        super().execute(runner)


# -- umount's actions ----------------------------------------------------------------

@dataclass
class Unmount(Action):
    mountpoint: str = ""
    type = "unmount"
    journaled = False

    def steps(self):
        return [Step(["umount", self.mountpoint])]

    def execute(self, runner: Runner):
        if not runner.dry_run and not os.path.ismount(self.mountpoint):
            print(f"    ({self.mountpoint} is not mounted)")
            return
        try:
            super().execute(runner)
        except CommandError as e:
            if runner.dry_run or "busy" not in (e.stderr_tail or "").lower():
                raise
            raise AmdrError(f"{self.mountpoint} is busy, so it stays mounted "
                            f"(and what is under it): {holders(runner, self.mountpoint)}; "
                            f"stop those, or leave the directory in the shells that are in it, "
                            f"then run umount again") from None


def holders(runner: Runner, mountpoint: str) -> str:
    """Who keeps a mount busy: 'PID (user) command, ...' of `fuser -m`'s processes."""
    res = runner.run(["fuser", "-m", mountpoint], check=False)
    procs = []
    for tok in res.text.split():  # PIDs on stdout, with access letters appended
        pid = "".join(ch for ch in tok if ch.isdigit())
        if not pid or pid == str(os.getpid()):
            continue
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            user = pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
        except (OSError, KeyError):
            continue
        procs.append(f"{pid} ({user}) {comm}")
    return ("held by " + ", ".join(procs)) if procs else \
        "no process found holding it (a mount under it, a swap file or a loop device?)"


class _Deactivate(Action):
    """One command that takes something down, skipped when it is down already."""

    journaled = False

    def command(self) -> list[str]:
        raise NotImplementedError

    def is_up(self) -> bool:
        raise NotImplementedError

    def down(self) -> str:
        raise NotImplementedError

    def steps(self):
        return [Step(self.command())]

    def execute(self, runner: Runner):
        if not runner.dry_run and not self.is_up():
            print(f"    ({self.down()})")
            return
        super().execute(runner)


@dataclass
class VgDeactivate(_Deactivate):
    name: str = ""
    type = "lvm_deactivate"

    def command(self):
        return ["vgchange", "--activate", "n", self.name]

    def is_up(self):
        return vg_active(self.name)

    def down(self):
        return f"volume group {self.name} is not active"


@dataclass
class LuksClose(_Deactivate):
    name: str = ""
    type = "luks_close"

    def command(self):
        return ["cryptsetup", "close", self.name]

    def is_up(self):
        return luks_active(self.name)

    def down(self):
        return f"/dev/mapper/{self.name} is not open"


@dataclass
class MdStop(_Deactivate):
    path: str = ""
    type = "md_stop"

    def command(self):
        return ["mdadm", "--stop", self.path]

    def is_up(self):
        return md_active(self.path)

    def down(self):
        return f"{self.path} is not assembled"


# -- which present disk holds which original disk (pure) ------------------------------

def _ptid(v) -> str:
    return str(v or "").strip().lower().removeprefix("0x")


def match_present(layout: dict, present_disks: list[dict], probes: dict[str, dict],
                  maps: dict[str, str] | None = None, boot: set[str] | None = None) -> Match:
    """For mount: the disks diskinit made (or the original ones) found again.

    Evidence, strongest first: --map; what is on the disk now (the partition
    table id diskinit gave back, or a whole-disk filesystem's or member's
    UUID: blkid -p, in probes); the disk's WWN, serial or by-id name.  Unlike
    diskinit's matching, never by size: a guess would mount another system.
    probes: present path -> blkid -p of it; boot: the running system's disks
    (only --map may name one)."""
    maps, boot = dict(maps or {}), boot or set()
    m = Match()
    disks = needed_disks(layout)
    known = {d["path"] for d in disks} | {d["id"] for d in disks}
    for old in maps:
        if old not in known:
            m.problems.append(f"--map {old}={maps[old]}: the layout has no disk {old} (its "
                              f"disks: {', '.join(d['path'] for d in disks)})")
    used = set()
    rest = []
    for d in disks:
        new = maps.get(d["path"], maps.get(d["id"]))
        if new is None:
            rest.append(d)
            continue
        m.mapping[d["path"]], m.reasons[d["path"]] = new, "--map"
        used.add(new)
    free = sorted((p for p in present_disks if p["path"] not in used and p["path"] not in boot),
                  key=lambda p: p["path"])
    whole = {}
    for f in layout["filesystems"]:
        whole.setdefault(f["device"], []).append(f.get("uuid"))
    for d in rest:
        want = _ptid((d.get("ptable") or {}).get("id"))
        hits = []
        for p in free:
            got = probes.get(p["path"]) or {}
            if want and _ptid(got.get("PTUUID")) == want:
                hits.append((p, f"partition table id {(d.get('ptable') or {}).get('id')}"))
            elif any(same_uuid(got.get("UUID"), u) for u in whole.get(d["id"], [])):
                hits.append((p, f"{got.get('TYPE')} UUID {got.get('UUID')} on the whole disk"))
        if len(hits) > 1 and all((probes.get(p["path"]) or {}).get("TYPE") == "linux_raid_member"
                                 for p, _ in hits):
            # the members of one array share its UUID; mdadm finds each one's
            # place in the array from its superblock, so any of them will do
            hits = [(hits[0][0], hits[0][1] + " (a member of that array)")]
        if not hits:
            hit, why = identity_match(d, free)
            hits = [(hit, why)] if hit is not None else []
        if len(hits) > 1:
            m.problems.append(f"{d['path']}: {' and '.join(h['path'] for h, _ in hits)} both "
                              f"carry its {hits[0][1]} (the original disk beside its copy?): "
                              f"choose one with --map {d['path']}=DISK")
            continue
        if not hits:
            m.unmatched[d["path"]] = ("no disk here carries its partition table id or "
                                      "filesystems, nor its serial or WWN")
            continue
        hit, why = hits[0]
        m.mapping[d["path"]], m.reasons[d["path"]] = hit["path"], why
        used.add(hit["path"])
        free = [p for p in free if p["path"] != hit["path"]]
    for d in [d for d in disks if d["path"] in m.unmatched]:
        hit, why = merged_onto(layout, d, present_disks, probes, boot)
        if hit:
            del m.unmatched[d["path"]]
            m.mapping[d["path"]], m.reasons[d["path"]] = hit, why
    return m


def merged_onto(layout: dict, d: dict, present_disks: list[dict], probes: dict[str, dict],
                boot: set[str]) -> tuple[str | None, str | None]:
    """The present disk an original disk was merged onto with others (merge.py),
    found by what lies in that disk's partitions: every GPT PARTUUID of the
    original's partitions, else every UUID the layout has on them."""
    pt = d.get("ptable") or {}
    ids = {d["id"]} | {p["id"] for p in pt.get("partitions") or []}
    want_parts = {_ptid(p.get("uuid")) for p in pt.get("partitions") or []
                  if pt.get("label") == "gpt" and p.get("uuid")}
    want = [f.get("uuid") for f in layout["filesystems"] if f["device"] in ids and f.get("uuid")]
    hits = []
    for disk in present_disks:
        if disk["path"] in boot:
            continue
        kids = [probes.get(c["path"]) or {} for c in disk.get("children") or []
                if c.get("type") == "part"]
        if want_parts and want_parts <= {_ptid(k.get("PART_ENTRY_UUID")) for k in kids}:
            hits.append((disk["path"], "the PARTUUIDs of its partitions (merged with another "
                                       "disk's)"))
        elif want and all(any(same_uuid(k.get("UUID"), u) for k in kids) for u in want):
            hits.append((disk["path"], "the UUIDs in its partitions (merged with another "
                                       "disk's)"))
    return hits[0] if len(hits) == 1 else (None, None)


# -- planning (pure) -----------------------------------------------------------------

def uuid_problem(what: str, uuid: str, original: str | None, path: str,
                 found: dict | None) -> str:
    head = f"{what} (UUID {uuid}" + (f", {original} on the original system" if original
                                     else "") + ")"
    if not found or not found.get("UUID"):
        return f"{head} is not on {path}: it carries no filesystem or stack signature"
    return (f"{head} is not on {path}: it carries {found.get('TYPE') or 'something'} "
            f"UUID {found['UUID']}")


def fs_what(f: dict, mountpoint: str | None = None) -> str:
    mp = mountpoint or f.get("mountpoint")
    return f"{f['type']} filesystem {f['id']}" + (f" on {mp}" if mp else "")


class _MountPlanner:
    def __init__(self, layout, mapping, target, probed, luks_keys, passphrase, unmatched):
        self.layout, self.mapping, self.target = layout, mapping, target
        self.probed = probed
        self.luks_keys, self.passphrase = luks_keys or {}, passphrase
        self.unmatched = unmatched or {}
        self.paths: dict[str, str] = {}
        self.direct: set[str] = set()  # ids whose path is on a mapped disk (probed)
        self.missing: list[str] = []  # what cannot be found: unmapped disks, unmet deps
        self.wrong: list[str] = []  # what is not where it should be: a UUID elsewhere
        self.actions: list[Action] = []
        self.pending_ids: set[str] = set()  # stack entries left out (on a missing disk)

    def disks(self):
        for d in needed_disks(self.layout):
            if self.mapping.get(d["path"]) is None:
                why = self.unmatched.get(d["path"])
                self.missing.append(f"{d['path']} ({human(d['size'])}): no disk here is known "
                                    f"to hold it; give --map {d['path']}=DISK"
                                    + (f" ({why})" if why else ""))
        # several original disks on one (merged by diskinit): numbered as diskinit did
        for i, path in merge.partition_paths(needed_disks(self.layout), self.mapping,
                                             contents(self.layout)).items():
            self.paths[i] = path
            self.direct.add(i)
        for alias, first in alias_disks(self.layout).items():
            if first in self.paths:
                self.paths.setdefault(alias, self.paths[first])

    def expect(self, dev_id: str, fstype: str, uuid: str | None, what: str,
               original: str | None):
        """A member on a mapped disk must carry its signature and UUID now."""
        if dev_id not in self.direct or not uuid:
            return  # on another stacked device: looked at once that is active
        path = self.paths[dev_id]
        found = self.probed.get(path) or {}
        if found.get("TYPE") != fstype or not same_uuid(found.get("UUID"), uuid):
            self.wrong.append(uuid_problem(what, uuid, original, path, found))

    def stack(self):
        pending = walk_stack(self.layout, self.paths, lambda kind, entry:
                             getattr(self, kind)(entry))
        for kind, entry in pending:
            missing = [dep for dep in stack_deps(kind, entry) if dep not in self.paths]
            name = entry.get("path") or entry.get("device_path") or entry.get("name")
            log.info("%s is not activated: it sits on %s, which is not here", name,
                     ", ".join(map(str, missing)))
            self.pending_ids.add(entry["id"])
            self.pending_ids.update(lv["id"] for lv in entry.get("logical_volumes") or [])
            self.pending_ids.update(p["id"] for p in (entry.get("ptable") or {}).get(
                "partitions") or [])

    def md(self, a):
        members = []
        for m in a["members"]:
            if m.get("device"):
                self.expect(m["device"], "linux_raid_member", a.get("uuid"),
                            f"a member of MD array {a['path']}", m.get("path"))
                members.append(self.paths[m["device"]])
        self.actions.append(MdAssemble(f"assemble-{a['id']}", path=a["path"], array=a["id"],
                                       uuid=a.get("uuid"), members=members))
        self.paths[a["id"]] = a["path"]
        for p in (a.get("ptable") or {}).get("partitions") or []:
            self.paths[p["id"]] = partition_path(a["path"], p["number"])

    def luks(self, c):
        self.expect(c["device"], "crypto_LUKS", c.get("uuid"), "LUKS container "
                    f"{luks_name(self.layout, c)}", c.get("device_path"))
        key = (self.luks_keys.get(c["id"]) or self.luks_keys.get(c.get("name") or "")
               or self.luks_keys.get("*"))
        if not key and self.passphrase is None:
            self.missing.append(f"{c['device_path']}: LUKS container with no key file and no "
                                f"passphrase to open it")
        opened = LuksOpen(f"open-{c['id']}", luks=c["id"], path=self.paths[c["device"]],
                          name=luks_name(self.layout, c), key_file=key,
                          passphrase=None if key else self.passphrase)
        self.actions.append(opened)
        self.paths[c["id"]] = opened.mapper

    def vg(self, vg):
        pvs = []
        for pv in vg["physical_volumes"]:
            if pv.get("device"):
                self.expect(pv["device"], "LVM2_member", pv.get("uuid"),
                            f"a physical volume of volume group {vg['name']}", pv.get("path"))
                pvs.append(self.paths[pv["device"]])
        for lv in vg["logical_volumes"]:
            if not lv.get("hidden"):
                self.paths[lv["id"]] = f"/dev/{vg['name']}/{lv['name']}"
        self.actions.append(VgActivate(f"activate-{vg['id']}", vg=vg["id"], name=vg["name"],
                                       pvs=pvs))

    def mounts(self):
        mounts = mount_actions(self.layout, self.paths, self.target, cls=MountExisting)
        fs = {f["id"]: f for f in self.layout["filesystems"]}
        later, seen = [], set()
        for m in mounts:
            f = fs[m.filesystem]
            if f["id"] in seen:
                continue
            seen.add(f["id"])
            if f["device"] in self.direct:
                found = self.probed.get(m.path) or {}
                if not same_uuid(found.get("UUID"), f["uuid"]):
                    self.wrong.append(uuid_problem(fs_what(f, m.mountpoint), f["uuid"],
                                                   f.get("device_path"), m.path, found))
            else:
                later.append({"id": f["id"], "path": m.path, "type": f["type"],
                              "uuid": f["uuid"], "mountpoint": m.mountpoint,
                              "original": f.get("device_path")})
        for f in self.layout["filesystems"]:
            if (f["type"] in FS_TYPES and f["type"] != "swap" and f["device"] not in self.paths
                    and (f.get("mountpoint") or f.get("mounts"))
                    and f["device"] not in self.pending_ids | self.unplaced()):
                self.missing.append(f"{f['id']} ({f['type']} on {f.get('mountpoint')}): its "
                                    f"device {f['device']} is not in the layout's disks")
        for a in self.actions:  # wait for the LVs something is mounted from
            if isinstance(a, VgActivate):
                a.lvs = sorted({m.path for m in mounts
                                if m.path.startswith(f"/dev/{a.name}/")})
        if later:
            self.actions.append(CheckFilesystems("check-filesystems", filesystems=later))
        self.actions += mounts
        if not mounts and not self.missing:
            self.missing.append("the layout has no filesystem to mount")

    def unplaced(self) -> set[str]:
        out = set()
        for d in needed_disks(self.layout):
            if d["id"] not in self.paths:
                out.add(d["id"])
                out |= {p["id"] for p in (d.get("ptable") or {}).get("partitions") or []}
        return out

    def plan(self) -> list[Action]:
        self.disks()
        self.stack()
        self.mounts()
        if self.wrong:
            raise RefusedError("refusing to mount, nothing was changed:\n  "
                               + "\n  ".join(self.wrong + self.missing))
        if self.missing:
            raise PlanError("cannot mount, nothing was changed:\n  "
                            + "\n  ".join(self.missing))
        return [Preflight("preflight", tools=tools_of(self.actions))] + self.actions


def plan_mount(layout: dict, mapping: dict[str, str], target: str,
               probed: dict[str, dict], *, luks_keys: dict[str, str] | None = None,
               passphrase: Passphrase | None = None,
               unmatched: dict[str, str] | None = None) -> list[Action]:
    """mapping: original disk path -> present disk path; probed: present path
    -> what `blkid -p -o export` says of it (TYPE, UUID, PTUUID), for every
    mapped disk and each of its partitions; luks_keys: LUKS id, mapping name
    or "*" -> key file; passphrase: asked when a container is opened.
    Raises RefusedError when a filesystem or stack member is not where the
    mapping puts it, PlanError when a disk has no present disk."""
    return _MountPlanner(layout, mapping, target, probed, luks_keys, passphrase,
                         unmatched).plan()


def plan_umount(mounted: list[str], recorded: list[dict]) -> list[Action]:
    """mounted: mountpoints under the target in the order to unmount them;
    recorded: what the state file lists, in activation order."""
    out: list[Action] = [Unmount(f"umount-{i}", mountpoint=mp)
                         for i, mp in enumerate(mounted, 1)]
    for item in reversed(recorded):
        if item["type"] == "vg":
            out.append(VgDeactivate(f"deactivate-{item['name']}", name=item["name"]))
        elif item["type"] == "luks":
            out.append(LuksClose(f"close-{item['name']}", name=item["name"]))
        elif item["type"] == "md":
            out.append(MdStop(f"stop-{os.path.basename(item['path'])}", path=item["path"]))
    return out


def _unescape(field_: str) -> str:
    """/proc/self/mounts writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def parse_mounts(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out.append((_unescape(parts[0]), _unescape(parts[1])))
    return out


def under(target: str, mounts: list[tuple[str, str]]) -> list[str]:
    """Mountpoints at or below target, in the order to unmount them: deepest
    first, and of two at one depth (or one place mounted twice) the later first."""
    top = target.rstrip("/") or "/"
    hits = [(i, mp) for i, (_, mp) in enumerate(mounts)
            if mp == top or mp.startswith(top.rstrip("/") + "/")]
    hits.sort(key=lambda h: (-h[1].rstrip("/").count("/"), -h[0]))
    return [mp for _, mp in hits]


# -- looking at the machine (facts) ----------------------------------------------------

def mounts_under(target: str) -> list[str]:
    with open("/proc/self/mounts") as f:
        return under(os.path.realpath(target), parse_mounts(f.read()))


def md_active(path: str) -> bool:
    base = os.path.basename(os.path.realpath(path))
    try:
        state = Path(f"/sys/class/block/{base}/md/array_state").read_text().strip()
    except OSError:
        return False
    return state != "clear"


def luks_active(name: str) -> bool:
    return os.path.exists(f"/dev/mapper/{name}")


def vg_active(name: str, mapped: list[str] | None = None) -> bool:
    """An LV of it has a device-mapper device: /dev/mapper/VG-LV, the dashes
    in each name doubled (/dev/VG itself could be any directory: /dev/disk)."""
    if mapped is None:
        try:
            mapped = os.listdir("/dev/mapper")
        except OSError:
            mapped = []
    prefix = name.replace("-", "--") + "-"
    return any(m.startswith(prefix) and not m[len(prefix):].startswith("-") for m in mapped)


def is_active(item: dict) -> bool:
    if item["type"] == "md":
        return md_active(item["path"])
    if item["type"] == "luks":
        return luks_active(item["name"])
    return vg_active(item["name"])
