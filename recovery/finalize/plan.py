"""Facts -> the finalize actions, in order, or the refusals that stop it (pure).

Order: scrub the pseudo-filesystems, bind the live ones; rewrite the files
whose device references changed (the originals kept), regenerate
mdadm.conf, give the new NICs the old names; capabilities and SELinux
relabel; the initramfs (after mdadm.conf and the .link files it copies);
the boot loader for the firmware the original used, on the disks the
mapping says; its configuration; unbind.  A reference that resolves to
nothing refuses the whole plan, before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import nics, refs
from .actions import (Autorelabel, ChrootBinds, EfiEntry, GrubBios, GrubEfi, Initramfs,
                      ScrubPseudo, SetAside, SetCaps, Unbind, UpdateGrub, WriteFile)
from .facts import Facts

BIOS_BOOT = "21686148-6449-6e6f-744e-656564454649"
BY_ID_PREFERENCE = ("ata-", "nvme-", "scsi-", "usb-", "virtio-", "wwn-")
LVM_DEVICES = "/etc/lvm/devices/system.devices"
MDADM_CONF = ("/etc/mdadm/mdadm.conf", "/etc/mdadm.conf")


@dataclass
class FinalizePlan:
    actions: list = field(default_factory=list)
    findings: list[refs.Finding] = field(default_factory=list)
    nics: list[nics.NicMatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)      # warnings, what could not be done
    problems: list[str] = field(default_factory=list)   # refusals: nothing may run

    def to_dict(self) -> dict:
        return {"actions": [a.to_dict() for a in self.actions],
                "references": [{"file": f.ref.file, "line": f.ref.line, "what": f.ref.where,
                                "reference": f.ref.token, "status": f.status, "new": f.new,
                                "device": f.device} for f in self.findings],
                "nics": [vars(m) for m in self.nics],
                "notes": self.notes, "refused": self.problems}


def firmware(layout: dict) -> str:
    boot = layout.get("boot") or {}
    if boot.get("firmware") in ("bios", "uefi"):
        return boot["firmware"]
    return "uefi" if esp(layout) else "bios"


def esp(layout: dict) -> dict | None:
    for f in layout.get("filesystems") or []:
        if f["type"] == "vfat" and f.get("mountpoint") in ("/boot/efi", "/efi"):
            return f
    return None


def _owner(layout: dict) -> dict[str, list[str]]:
    """Layout id of every device -> the ids of what it sits on (towards the disks)."""
    up: dict[str, list[str]] = {}
    for d in layout.get("disks") or []:
        for p in (d.get("ptable") or {}).get("partitions") or []:
            up[p["id"]] = [d["id"]]
    for m in layout.get("md") or []:
        up[m["id"]] = [x["device"] for x in m.get("members") or [] if x.get("device")]
        for p in (m.get("ptable") or {}).get("partitions") or []:
            up[p["id"]] = [m["id"]]
    for vg in layout.get("lvm") or []:
        pvs = [pv["device"] for pv in vg.get("physical_volumes") or [] if pv.get("device")]
        for lv in vg.get("logical_volumes") or []:
            up[lv["id"]] = pvs
    for c in layout.get("luks") or []:
        if c.get("device"):
            up[c["id"]] = [c["device"]]
    return up


def disks_under(layout: dict, dev: str) -> list[str]:
    up, disks = _owner(layout), {d["id"] for d in layout.get("disks") or []}
    out, todo, seen = [], [dev], set()
    while todo:
        x = todo.pop(0)
        if x in seen:
            continue
        seen.add(x)
        if x in disks:
            out.append(x)
        todo += up.get(x, [])
    return out


def grub_disks(layout: dict) -> list[str]:
    """Layout ids of the disks GRUB goes on (BIOS): debconf's install devices,
    else every disk under /boot (or /): both halves of a RAID1."""
    grub = (layout.get("boot") or {}).get("grub") or {}
    ids = [d["disk"] for d in grub.get("install_devices") or [] if d.get("disk")]
    if ids:
        return list(dict.fromkeys(ids))
    for mp in ("/boot", "/"):
        for f in layout.get("filesystems") or []:
            if f.get("mountpoint") == mp:
                return disks_under(layout, f["device"])
    return []


def _disk_paths(layout: dict) -> dict[str, str]:
    return {d["id"]: d["path"] for d in layout.get("disks") or []}


def boot_refusals(layout: dict, mapping: dict[str, str], actions) -> list[str]:
    """What stops the restored system from booting, found before any wipe: a
    BIOS boot from a disk that gets a GPT table without a BIOS boot partition
    (grub-install has nowhere to put its core image)."""
    if firmware(layout) != "bios":
        return []
    out = []
    paths = _disk_paths(layout)
    # only where GRUB is known to be (debconf): a layout collected without its
    # boot disk (a data disk, a system under --root) says nothing of booting
    grub = (layout.get("boot") or {}).get("grub") or {}
    for disk in dict.fromkeys(d["disk"] for d in grub.get("install_devices") or []
                              if d.get("disk")):
        old = paths.get(disk)
        new = mapping.get(old)
        table = next((a for a in actions if a.type == "partition_table"
                      and a.device == new), None)
        if table is None or table.label != "gpt":
            continue
        if not any(str(p.type).lower() == BIOS_BOOT for p in table.partitions):
            out.append(f"{new} (the original {old}, where GRUB is installed) gets a GPT table "
                       f"without a BIOS boot partition (type {BIOS_BOOT.upper()}): the "
                       f"original boots with BIOS, and grub-install has nowhere to put GRUB "
                       f"on such a disk, so the restored system would not boot. Nothing was "
                       f"touched. Recover onto disks that keep the original's partition "
                       f"tables (--map each original disk to a disk of its own), or give the "
                       f"layout a 1 MiB BIOS boot partition first")
    return out


def part_number(path: str) -> int | None:
    m = re.search(r"(\d+)$", path)
    return int(m.group(1)) if m and re.search(r"(p\d+|[a-z]\d+)$", path) else None


def best_by_id(ids: refs.Identities, device: str) -> str | None:
    links = sorted(link for link, dev in ids.paths.items()
                   if link.startswith(refs.BY_ID) and dev == device and "-part" not in link)
    for prefix in BY_ID_PREFERENCE:
        for link in links:
            if link[len(refs.BY_ID):].startswith(prefix):
                return link
    return links[0] if links else None


def renames(layout: dict, new_paths: dict[str, str], ids: refs.Identities) -> refs.Renames:
    """Original disk and partition paths, and the old disks' by-id names, ->
    their names on the disks here (by-id when the new disk has one)."""
    out: dict[str, str] = {}
    for d in layout.get("disks") or []:
        new = new_paths.get(d["id"])
        if not new:
            continue
        out[d["path"]] = new
        new_id = best_by_id(ids, new)
        for name in d.get("by_id") or []:
            out[refs.BY_ID + name] = new_id or new
        for p in (d.get("ptable") or {}).get("partitions") or []:
            newp = new_paths.get(p["id"])
            if not newp:
                continue
            out[p["path"]] = newp
            n = part_number(newp)
            for name in d.get("by_id") or []:
                out[f"{refs.BY_ID}{name}-part{p['number']}"] = (
                    f"{new_id}-part{n}" if new_id and n else newp)
    return refs.Renames(out)


def _mdadm_conf(layout: dict, old: str, scan: str) -> str:
    """The restored mdadm.conf with its ARRAY lines replaced by the arrays
    here, named as the original named them (found by UUID)."""
    names = {str(m.get("uuid", "")).lower(): m["path"] for m in layout.get("md") or []}
    keep, skipping = [], False
    for line in old.splitlines():
        if line.startswith("ARRAY"):
            skipping = True
            continue
        if skipping and line[:1].isspace():
            continue  # a continuation of the ARRAY line
        skipping = False
        keep.append(line)
    arrays = []
    for line in scan.splitlines():
        if not line.startswith("ARRAY"):
            continue
        f = line.split()
        uuid = next((x.split("=", 1)[1].lower() for x in f if x.startswith("UUID=")), "")
        if uuid in names and len(f) > 1:
            f[1] = names[uuid]
        arrays.append(" ".join(f))
    while keep and not keep[-1].strip():
        keep.pop()
    return "\n".join(keep + ["", "# arrays as amanda-dr finalize found them"] + arrays) + "\n"


def plan_finalize(layout: dict, facts: Facts, new_paths: dict[str, str], *,
                  network: dict | None = None, capabilities: list | None = None,
                  selinux: bool = False, nic_pins: dict | None = None) -> FinalizePlan:
    """new_paths: layout id -> path here (merge.partition_paths of the mapping);
    network: the bundle's network.yaml; capabilities: [{path, caps}]."""
    fp = FinalizePlan()
    t = facts.target
    fw = firmware(layout)
    efivars = fw == "uefi" and facts.efi and facts.efivars
    fp.actions += [ScrubPseudo("scrub", target=t), ChrootBinds("chroot", target=t,
                                                               efivars=efivars)]
    # 1. references
    fp.findings = [refs.check(r, facts.ids, renames(layout, new_paths, facts.ids))
                   for r in refs.find_all(facts.files)]
    for f in fp.findings:
        if f.status == "missing":
            (fp.notes if f.ref.optional else fp.problems).append(
                f.describe() + ("" if f.ref.optional else
                                ": fix the line in the restored file (or give --map so the "
                                "device is recreated), then run finalize again"))
    changed = {}
    for f in fp.findings:
        if f.status == "rewrite":
            changed.setdefault(f.ref.file, []).append(f)
    for path, found in sorted(changed.items()):
        old = facts.files[path]
        new = refs.rewrite(old, found)
        fp.actions.append(WriteFile(f"refs-{path.strip('/').replace('/', '-')}", target=t,
                                    path=path, content=new,
                                    why="; ".join(f"line {f.ref.line}: {f.ref.token} -> {f.new}"
                                                  for f in found),
                                    diff=refs.unified_diff(path, old, new)))
    if LVM_DEVICES in facts.files:
        fp.actions.append(SetAside("lvm-devices", target=t, path=LVM_DEVICES,
                                   why="LVM's devices file names the original disks; without "
                                       "it LVM finds the PVs on these by scanning"))
    # 2. mdadm.conf from the arrays here
    if layout.get("md") and facts.md_scan is not None:
        path = next((p for p in MDADM_CONF if p in facts.files), MDADM_CONF[0])
        old = facts.files.get(path, "")
        new = _mdadm_conf(layout, old, facts.md_scan)
        if new != old:
            fp.actions.append(WriteFile("mdadm-conf", target=t, path=path, content=new,
                                        existed=path in facts.files,
                                        why="ARRAY lines of the arrays here",
                                        diff=refs.unified_diff(path, old, new)))
    # 3. NICs
    matches, warn = nics.match((network or {}).get("interfaces") or [], facts.nics, nic_pins)
    fp.nics, fp.notes = matches, fp.notes + warn
    for m in matches:
        fp.actions.append(WriteFile(f"nic-{m.name}", target=t, path=m.link_path(),
                                    content=m.link_file(), existed=m.link_path() in facts.files,
                                    why=f"{m.name} was {m.old_mac}; here it is {m.new_name} "
                                        f"{m.new_mac} ({m.reason})"))
    for path, new in nics.rewrite_macs(facts.files, matches).items():
        fp.actions.append(WriteFile(f"mac-{path.strip('/').replace('/', '-')}", target=t,
                                    path=path, content=new, why="the new NIC's MAC",
                                    diff=refs.unified_diff(path, facts.files[path], new)))
    # 4. what a file backup loses
    caps = [[c["path"], c["caps"]] for c in capabilities or []
            if facts.existing is None or c["path"] in facts.existing]
    if caps:
        fp.actions.append(SetCaps("capabilities", target=t, files=caps))
    if selinux or facts.selinux:
        fp.actions.append(Autorelabel("autorelabel", target=t))
    # 5. initramfs
    if "update-initramfs" in facts.tools:
        fp.actions.append(Initramfs("initramfs", target=t, tool="update-initramfs"))
    elif "dracut" in facts.tools:
        fp.actions.append(Initramfs("initramfs", target=t, tool="dracut"))
    else:
        fp.notes.append("the restored system has neither update-initramfs nor dracut: its "
                        "initramfs was not made again for this hardware")
    # 6. boot loader
    _boot_loader(layout, facts, new_paths, fw, fp)
    fp.actions.append(Unbind("unbind", target=t, efivars=efivars))
    return fp


def _boot_loader(layout, facts: Facts, new_paths, fw: str, fp: FinalizePlan):
    t = facts.target
    tool = next((x for x in ("grub-install", "grub2-install") if x in facts.tools), None)
    if tool is None:
        fp.notes.append("the restored system has no grub-install: its boot loader was not "
                        "installed (finalize installs GRUB only)")
        return
    if fw == "bios":
        devs = [new_paths[d] for d in grub_disks(layout) if d in new_paths]
        if not devs:
            fp.problems.append("no disk to install GRUB on: the layout names none (debconf's "
                               "grub-pc/install_devices) and no disk holds /boot or /")
            return
        names = [best_by_id(facts.ids, d) or d for d in devs]
        fp.actions.append(GrubBios("grub-bios", target=t, devices=devs, tool=tool,
                                   debconf=names if "debconf-set-selections" in facts.tools
                                   else []))
        if facts.efi:
            fp.notes.append("this machine booted with UEFI but the original used BIOS: GRUB "
                            "is installed for BIOS, so the firmware must boot the disk in "
                            "legacy (CSM) mode")
    else:
        part = esp(layout)
        if part is None or part["device"] not in new_paths:
            fp.problems.append("the original boots with UEFI but the layout has no EFI "
                               "system partition mounted at /boot/efi to install GRUB into")
            return
        label = efi_label(layout, facts)
        fp.actions.append(GrubEfi("grub-efi", target=t, bootloader_id=label,
                                  esp=part["mountpoint"], tool=tool))
        path = new_paths[part["device"]]
        disk = next((new_paths[d] for d in disks_under(layout, part["device"])
                     if d in new_paths), None)
        if not (facts.efi and facts.efivars):
            why = ("this machine did not boot with UEFI" if not facts.efi
                   else "efibootmgr cannot read them")
            fp.notes.append(f"no EFI variables here ({why}): no firmware entry could be "
                            f"made; GRUB is at the fallback path EFI/BOOT/BOOTX64.EFI, which "
                            f"UEFI firmware boots without one")
        elif disk and part_number(path):
            _efi_entry(layout, facts, part, disk, part_number(path), label, fp)
    argv = ["update-grub"] if "update-grub" in facts.tools else (
        ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"] if "grub2-mkconfig" in facts.tools
        else None)
    if argv:
        fp.actions.append(UpdateGrub("grub-config", target=t, argv=argv))


def efi_label(layout: dict, facts: Facts) -> str:
    """The original's boot entry label and directory under EFI/ (debian, ubuntu ...)."""
    efi = (layout.get("boot") or {}).get("efi") or {}
    entries = efi.get("entries") or []
    current = [e for e in entries if e.get("number") == efi.get("current")]
    for e in current + entries:
        m = re.match(r"\\EFI\\([^\\]+)\\", str(e.get("loader") or ""), re.IGNORECASE)
        if m and m.group(1).upper() != "BOOT":
            return m.group(1)
    text = facts.files.get("/etc/os-release", "")
    m = re.search(r"^ID=\"?([a-z0-9._-]+)", text, re.MULTILINE)
    return m.group(1) if m else "debian"


def _efi_entry(layout, facts: Facts, part: dict, disk: str, number: int, label: str,
               fp: FinalizePlan):
    loader = f"\\EFI\\{label}\\{'shimx64.efi' if facts.shim else 'grubx64.efi'}"
    partuuid = None
    for d in layout.get("disks") or []:
        for p in (d.get("ptable") or {}).get("partitions") or []:
            if p["id"] == part["device"]:
                partuuid = (p.get("uuid") or "").lower() or None
    efi = facts.efi_entries or {"entries": [], "order": []}
    entries = efi.get("entries") or []
    same = [e for e in entries if e.get("label") == label
            or (str(e.get("loader") or "").lower() == loader.lower()
                and (e.get("partuuid") or "").lower() == (partuuid or ""))]
    right = [e for e in same if e.get("label") == label
             and str(e.get("loader") or "").lower() == loader.lower()
             and (e.get("partuuid") or "").lower() == (partuuid or "")]
    if len(same) == 1 and right and (efi.get("order") or [None])[0] == right[0]["number"]:
        fp.notes.append(f"the firmware entry {label} ({right[0]['number']}) is there and first")
        return
    fp.actions.append(EfiEntry("efi-entry", label=label, disk=disk, partition=number,
                               loader=loader, partuuid=partuuid,
                               delete=[e["number"] for e in same]))
