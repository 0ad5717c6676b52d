"""Disks that came back under another name, found by what identifies them (pure).

Why: device names are handed out in the order disks appear, so after a
reboot or a re-plug /dev/sda can be /dev/sdb (a loop device loop1).  Compared
path by path, every partition, filesystem, fstab line and LVM device of that
disk "changed": `check` printed a hundred lines for "disk0 is now
/dev/sdb".  Here a disk of the old layout is found in the new one by its
WWN, serial, a /dev/disk/by-id name, its partition table id or the UUID of a
filesystem on the whole disk (strongest first, as recovery's mapping does),
and the old layout is renamed to the new names before the two are compared.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass


@dataclass
class Rename:
    old_id: str
    new_id: str
    old_path: str
    new_path: str
    evidence: str  # "partition table id 1a2b3c4d", "serial S123", ...

    def line(self) -> str:
        also = f"; {self.new_id} in the new layout" if self.new_id != self.old_id else ""
        return (f"{self.old_id} is now {self.new_path} (was {self.old_path}, same "
                f"{self.evidence}{also})")


def _norm(v) -> str | None:
    v = str(v or "").strip().lower().removeprefix("0x")
    return v or None


def _whole_disk_uuids(layout: dict, disk_id: str) -> set[str]:
    return {f["uuid"] for f in layout.get("filesystems") or []
            if f.get("device") == disk_id and f.get("uuid")}


def _evidence(layout: dict, d: dict) -> list[tuple[str, set[str]]]:
    """(what, values) per kind of identity the disk has, strongest first."""
    pt = d.get("ptable") or {}
    kinds = [("WWN", {_norm(d.get("wwn"))}), ("serial", {_norm(d.get("serial"))}),
             ("/dev/disk/by-id name", set(d.get("by_id") or [])),
             ("partition table id", {_norm(pt.get("id"))}),
             ("filesystem UUID", {_norm(u) for u in _whole_disk_uuids(layout, d.get("id"))})]
    return [(what, {v for v in values if v}) for what, values in kinds]


def find(old: dict, new: dict) -> list[Rename]:
    """Old disks that are in the new layout under another path (each matched once)."""
    old_disks = [d for d in old.get("disks") or [] if isinstance(d, dict) and d.get("path")]
    new_disks = [d for d in new.get("disks") or [] if isinstance(d, dict) and d.get("path")]
    found, taken = [], set()
    for d in old_disks:
        for i, (what, want) in enumerate(_evidence(old, d)):
            if not want:
                continue
            hits = [n for n in new_disks if want & _evidence(new, n)[i][1]]
            if len(hits) != 1:
                continue  # none, or ambiguous (a clone beside its original): no guess
            n = hits[0]
            if n["path"] != d["path"] and n["path"] not in taken:
                shown = sorted(want & _evidence(new, n)[i][1])[0]
                found.append(Rename(d.get("id") or d["path"], n.get("id") or d.get("id"),
                                    d["path"], n["path"], f"{what} {shown}"))
                taken.add(n["path"])
            break
    return found


def _partitions(disk: dict) -> dict:
    return {p.get("number"): p for p in (disk.get("ptable") or {}).get("partitions") or []}


def apply(old: dict, new: dict, renames: list[Rename]) -> dict:
    """A copy of `old` with each renamed disk's paths and ids as the new layout has them."""
    if not renames:
        return old
    by_path_old = {d["path"]: d for d in old.get("disks") or []}
    by_path_new = {d["path"]: d for d in new.get("disks") or []}
    names: dict[str, str] = {}  # old path or id -> new one, applied all at once
    for r in renames:
        names[r.old_path] = r.new_path
        if r.new_id != r.old_id:
            names[r.old_id] = r.new_id
        new_parts = _partitions(by_path_new[r.new_path])
        for number, p in _partitions(by_path_old[r.old_path]).items():
            q = new_parts.get(number)
            if q is None:
                continue  # the partition is gone: the diff says so
            for k in ("path", "id"):
                if p.get(k) and q.get(k) and p[k] != q[k]:
                    names[p[k]] = q[k]

    def rename(v):
        if isinstance(v, dict):
            return {k: rename(x) for k, x in v.items()}
        if isinstance(v, list):
            return [rename(x) for x in v]
        if isinstance(v, str):
            if v in names:
                return names[v]
            head, paren, rest = v.partition("(")  # LVM segments: /dev/sda2(0)
            if paren and head in names:
                return names[head] + paren + rest
        return v

    return rename(copy.deepcopy(old))
