"""Several original disks recreated on one new disk (pure).

When `--map` names the same new disk for two or more original disks (a
server with a system disk and a data disk, replaced by one larger disk),
their partitions go into one partition table:

* The group is ordered: disks with a partition table first, in the
  layout's order, then disks whose whole surface held one thing (a
  filesystem, a physical volume, an array member, a LUKS container).
* The first disk with a table (the anchor) is laid down as it was: its
  label (GPT or MBR), table id, first usable sector, and every partition's
  number, start, size, type, PARTUUID, name and attributes.  A layout whose
  boot disk comes first therefore keeps its boot areas where they were.
* Each further disk follows after the current end, shifted by a whole
  number of MiB so it starts at or after the next 1 MiB boundary: the gaps
  between its partitions and their alignment are kept.  GPT: its partitions
  are numbered on from the highest number so far, in the order they lie,
  and keep their type, PARTUUID, name and attributes.  MBR: they take the
  free primary numbers (1-4); an extended partition is taken over only when
  the table has none yet, its logical partitions numbered on from 5.  A
  type is carried between GPT and MBR where the two have one (Linux, swap,
  LVM, RAID, EFI system, Microsoft basic data); anything else is refused.
* A whole-disk member becomes one partition of the disk's original size,
  its type from what it holds.
* Then the usual size policy (sizing.py) decides the end: the last
  partition of the merged table grows into a larger disk or shrinks, if
  what it holds allows, onto a smaller one.

What a merge changes and what must follow it is shown as notes on the
partition table: which partitions have new numbers (a path in fstab,
crypttab or an EFI boot entry that names one must change with it), a
second table's id that is not kept, an MBR partition's PARTUUID (the disk
id and the number), arrays whose members now share one disk (no
redundancy), GRUB install devices that became one disk.  UUIDs of
filesystems, LUKS containers, PVs and arrays, and GPT PARTUUIDs, do not
change, so a system that names its devices by those finds them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from .mapping import human
from .ptable import DOS_MAX_SECTORS, gpt_backup_sectors, is_extended, partition_path

MIB = 1024 ** 2

GPT = {
    "linux": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    "swap": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
    "lvm": "E6D6D379-F507-44C2-A23C-238F2A3DF928",
    "raid": "A19D880F-05FC-4D3B-A006-743F0F84911E",
    "esp": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
    "data": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
    "luks": "CA7D7CCB-63ED-4C53-861C-1742536059CC",
    "home": "933AC7E1-2EB4-4F13-B844-0E14E2AEF915",
    "srv": "3B8F8425-20E0-4F3B-907F-1A25A76F98E8",
}
DOS = {"linux": "83", "swap": "82", "lvm": "8e", "raid": "fd", "esp": "ef", "data": "c",
       "luks": "83", "home": "83", "srv": "83"}
# what a GPT type GUID or MBR code is, for carrying it into the other label
_GPT_KIND = {v: k for k, v in GPT.items()}
_GPT_KIND.update({  # root partitions of the discoverable partitions spec
    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "linux",  # root x86-64
    "44479540-F8E7-41AB-9A2B-3B0AC5F28C1E": "linux",  # root x86
    "B921B045-1DF0-41C3-AF44-4C6F280D3FAE": "linux",  # root arm64
})
_DOS_KIND = {"83": "linux", "82": "swap", "8e": "lvm", "fd": "raid", "ef": "esp",
             "b": "data", "c": "data", "e": "data", "6": "data", "7": "data", "4": "data",
             "1": "data"}
_CONTENT_KIND = {"ext2": "linux", "ext3": "linux", "ext4": "linux", "xfs": "linux",
                 "btrfs": "linux", "swap": "swap", "LVM2_member": "lvm",
                 "linux_raid_member": "raid", "crypto_LUKS": "luks", "vfat": "data"}


@dataclass
class Merged:
    disk: dict | None = None  # a layout disk holding every partition of the group
    renamed: dict[str, str] = field(default_factory=dict)  # original path -> new number's
    notes: list[str] = field(default_factory=list)
    problem: str | None = None


def groups(disks: list[dict], mapping: dict[str, str]) -> list[tuple[str, list[dict]]]:
    """(new disk, the original disks going onto it) in the layout's order of
    each group's first disk; partitioned disks first within a group."""
    out: dict[str, list[dict]] = {}
    for d in disks:
        new = mapping.get(d["path"])
        if new is not None:
            out.setdefault(new, []).append(d)
    return [(new, sorted(g, key=lambda d: not d.get("ptable"))) for new, g in out.items()]


def _norm_dos(t) -> str:
    return str(t).lower().removeprefix("0x").lstrip("0") or "0"


def _kind(label: str, ptype) -> str | None:
    if label == "gpt":
        return _GPT_KIND.get(str(ptype).upper())
    return _DOS_KIND.get(_norm_dos(ptype))


def _type_for(label: str, src_label: str | None, ptype, what: str) -> tuple[str | None, str]:
    """(the type code in `label`, why not) for a partition of a `src_label` table."""
    if src_label == label:
        return ptype, ""
    kind = _kind(src_label, ptype)
    if kind is None:
        return None, (f"{what} has type {ptype}, which has no equivalent in "
                      f"{'a GPT' if label == 'gpt' else 'an MBR'} partition table")
    return (GPT if label == "gpt" else DOS)[kind], ""


def _align_up(n: int, a: int) -> int:
    return -(-n // a) * a


def merge(group: list[dict], new: str, contents: dict) -> Merged:
    """The group's disks as one layout disk for `new`: the same shape as a
    layout disk, so the size policy (sizing.fit_disk) and the partition table
    action take it as they take any disk.  contents: layout id -> sizing.Content
    (what a whole-disk member holds, for its partition type)."""
    out = Merged()
    anchor = next((d for d in group if d.get("ptable")), None)
    label = anchor["ptable"]["label"] if anchor else "gpt"
    ss = (anchor or group[0]).get("sector_size") or 512
    align = max(1, MIB // ss)
    parts: list[dict] = []
    if anchor:
        pt = anchor["ptable"]
        parts = [dict(p, kind=p.get("kind") or ("extended" if is_extended(pt, p) else None))
                 for p in copy.deepcopy(pt.get("partitions") or [])]
        first_lba = pt.get("first_lba") if label == "gpt" else None
        table_id = pt.get("id")
    else:
        first_lba, table_id = None, None
    end = max((p["start"] + p["size"] for p in parts),
              default=first_lba if first_lba else align)
    has_extended = any(p.get("kind") == "extended" for p in parts)
    logical_next = max([p["number"] + 1 for p in parts if p["number"] >= 5], default=5)
    primary_free = [n for n in range(1, 5) if n not in {p["number"] for p in parts}]
    gpt_next = max((p["number"] for p in parts), default=0) + 1
    problems: list[str] = []
    bootable = any(p.get("bootable") for p in parts)

    def number_for(p, src_pt) -> int | None:
        nonlocal gpt_next, logical_next, has_extended
        if label == "gpt":
            gpt_next += 1
            return gpt_next - 1
        if src_pt is not None and is_extended(src_pt, p):
            if has_extended:
                problems.append(f"{p['path']} is an extended partition, and the MBR table "
                                f"on {new} has one already (MBR allows one)")
                return None
            has_extended = True
        elif p.get("kind") == "logical" or (src_pt is not None and src_pt["label"] == "dos"
                                            and p["number"] >= 5):
            logical_next += 1
            return logical_next - 1
        if not primary_free:
            problems.append(f"{p['path']} needs a primary partition, and the MBR table on "
                            f"{new} has its four numbers taken: map {p['path'].rstrip('0123456789p')} "
                            f"to a disk of its own")
            return None
        return primary_free.pop(0)

    for d in group:
        if d is anchor:
            continue
        dss = d.get("sector_size") or 512
        pt = d.get("ptable")
        if pt:
            src = sorted(copy.deepcopy(pt.get("partitions") or []),
                         key=lambda p: (p["start"], p["number"]))
        else:
            c = contents.get(d["id"])
            size = d["size"] // dss
            src = [{"id": d["id"], "number": 1, "path": d["path"], "start": 0, "size": size,
                    "type": None, "whole": True,
                    "what": c.what if c else "nothing the layout knows of",
                    "content": c.fstype if c else None}]
        if not src:
            continue
        if any((p["start"] * dss) % ss or (p["size"] * dss) % ss for p in src):
            problems.append(f"{d['path']} has {dss}-byte sectors and its partitions do not "
                            f"start and end on a {ss}-byte sector of {new}")
            continue
        for p in src:
            p["start"], p["size"] = p["start"] * dss // ss, p["size"] * dss // ss
        base = _align_up(end, align)
        first = min(p["start"] for p in src)
        offset = base - first // align * align
        moved = []
        # MBR: an extended partition before its logical ones
        src.sort(key=lambda p: (p["start"], 0 if pt and is_extended(pt, p) else 1))
        for p in src:
            what = p["path"]
            if p.get("whole"):
                kind = _CONTENT_KIND.get(p["content"])
                if kind is None:
                    problems.append(f"{d['path']} held {p['what']} on the whole disk: "
                                    f"there is no partition type to give it on {new}")
                    continue
                ptype, why = (GPT if label == "gpt" else DOS)[kind], ""
            else:
                if pt["label"] == "dos" and is_extended(pt, p) and label == "gpt":
                    continue  # its logical partitions become ordinary GPT partitions
                ptype, why = _type_for(label, pt["label"], p["type"], what)
            if ptype is None:
                problems.append(why)
                continue
            number = number_for(p, pt)
            if number is None:
                continue
            q = {"id": p["id"], "number": number, "path": p["path"],
                 "start": p["start"] + offset, "size": p["size"], "type": ptype,
                 "uuid": p.get("uuid") if label == "gpt" and (pt or {}).get(
                     "label") == "gpt" else None,
                 "name": p.get("name") if label == "gpt" else None,
                 "attrs": p.get("attrs") if label == "gpt" else None}
            if label == "dos":
                q["kind"] = ("extended" if pt and pt["label"] == "dos" and is_extended(pt, p)
                             else "logical" if number >= 5 else "primary")
                if p.get("bootable") and not bootable:
                    q["bootable"], bootable = True, True
                elif p.get("bootable"):
                    out.notes.append(f"{p['path']} was marked active (bootable) on "
                                     f"{d['path']}; one partition of a table can be: it is "
                                     f"not marked on {new}")
            moved.append(q)
        if not moved:
            continue
        parts += moved
        end = max(end, max(q["start"] + q["size"] for q in moved))
        start_at = min(q["start"] for q in moved)
        if pt:
            renames = ", ".join(f"{q['path']} -> {partition_path(new, q['number'])}"
                                for q in moved)
            out.notes.append(f"{d['path']} ({human(d['size'])}) follows on {new} from "
                             f"{human(start_at * ss)}: {renames}")
            if pt.get("id"):
                out.notes.append(f"the partition table id {pt['id']} of {d['path']} is not "
                                 f"kept: {new} has one table, with "
                                 f"{'the id ' + table_id if table_id else 'a new id'}")
            if label == "dos" or pt["label"] == "dos":
                out.notes.append(f"the PARTUUIDs of {d['path']}'s partitions change (an MBR "
                                 f"PARTUUID is the disk id and the partition number)"
                                 if label == "dos" else
                                 f"{d['path']}'s partitions get new PARTUUIDs (MBR had none "
                                 f"of their own)")
        else:
            q = moved[0]
            out.notes.append(f"{d['path']} ({human(d['size'])}) held {src[0]['what']} on the "
                             f"whole disk: on {new} it is partition "
                             f"{partition_path(new, q['number'])}, from {human(start_at * ss)}")
        for q in moved:
            out.renamed[q["path"]] = partition_path(new, q["number"])
    if label == "dos" and end > DOS_MAX_SECTORS:
        problems.append(f"an MBR partition table addresses {human(DOS_MAX_SECTORS * ss)}; "
                        f"the disks mapped to {new} need {human(end * ss)} in one: map them "
                        f"to disks of their own")
    if problems:
        out.problem = (f"{' and '.join(d['path'] for d in group)} cannot share {new}: "
                       + "; ".join(problems))
        return out
    if label == "dos":  # sfdisk: primaries and the extended one before the logical ones
        parts.sort(key=lambda p: p["number"])
    reserve = gpt_backup_sectors(ss) if label == "gpt" else 0
    out.disk = {
        "id": group[0]["id"] if anchor is None else anchor["id"],
        "path": " + ".join(d["path"] for d in group),
        "size": (end + reserve) * ss,
        "sector_size": ss,
        "ptable": {"label": label, "id": table_id, "first_lba": first_lba,
                   "last_lba": None, "partitions": parts},
    }
    return out


def partition_paths(disks: list[dict], mapping: dict[str, str],
                    contents: dict | None = None) -> dict[str, str]:
    """Layout id of every disk, partition and merged whole-disk member ->
    its path on the disks of `mapping`, merged groups numbered as merge()
    numbers them (diskinit, mount and umount agree on them)."""
    out: dict[str, str] = {}
    for new, group in groups(disks, mapping):
        for d in group:
            out[d["id"]] = new
        if len(group) > 1:
            m = merge(group, new, contents or {})
            parts = m.disk["ptable"]["partitions"] if m.disk else []
        else:
            parts = (group[0].get("ptable") or {}).get("partitions") or []
        for p in parts:
            out[p["id"]] = partition_path(new, p["number"])
    return out


def follow_notes(layout: dict, group: list[dict], renamed: dict[str, str],
                 new: str) -> list[str]:
    """What else the merge asks of the restored system: fstab and crypttab
    lines and EFI entries that name a renumbered partition by its path or its
    number, arrays whose members now share one disk, GRUB devices.
    renamed: original partition path -> its path on `new` (Merged.renamed)."""
    notes = []
    ids = {d["id"] for d in group}
    paths = {p["id"]: p["path"] for d in group
             for p in (d.get("ptable") or {}).get("partitions") or []}
    parts = set(paths)
    for table in ("fstab", "crypttab"):
        for e in layout.get(table) or []:
            spec = str(e.get("spec") if table == "fstab" else e.get("device") or "")
            if spec in renamed:
                where = e.get("file") if table == "fstab" else e.get("name")
                notes.append(f"/etc/{table} names {spec} (for {where}): on this disk it is "
                             f"{renamed[spec]}; change that line after the restore, or name "
                             f"it by UUID")
    efi = ((layout.get("boot") or {}).get("efi") or {}).get("entries") or []
    for e in efi:
        if paths.get(e.get("partition")) in renamed:
            notes.append(f"EFI boot entry {e.get('number')} ({e.get('label')}) points at "
                         f"partition {e.get('partition_number')}; it is "
                         f"{renamed[paths[e['partition']]]} now")
    for a in layout.get("md") or []:
        on = [m.get("path") for m in a.get("members") or []
              if m.get("device") in parts | ids]
        if len(on) > 1:
            notes.append(f"{a['path']} ({a.get('level')}): its members {', '.join(on)} are all "
                         f"on {new} now"
                         + (", so it has no redundancy: add a second disk later"
                            if a.get("level") not in ("raid0", "linear") else ""))
    grub = ((layout.get("boot") or {}).get("grub") or {}).get("install_devices") or []
    on = [g.get("path") or g.get("device") for g in grub if g.get("disk") in ids]
    if len(on) > 1:
        notes.append(f"GRUB was installed on {' and '.join(on)}: they are all {new} now; "
                     f"install it there once")
    return notes
