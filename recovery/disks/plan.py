"""layout.yaml + a disk mapping -> the ordered list of disk actions (pure).

Nothing here reads the machine: the mapping and the new disks' sizes come in
as arguments, so every plan can be rendered and checked in a unit test.
"""

from __future__ import annotations

import os

from essentials.errors import AmdrError
from essentials.layout.schema import by_id

from .actions import Action, Format, Mount, Partition, PartitionTable, WipeDisk

GPT_BACKUP_SECTORS = 33


class PlanError(AmdrError):
    """The layout cannot be reproduced on the disks given."""


def partition_path(disk: str, number: int) -> str:
    """Kernel naming: sda -> sda1, nvme0n1 / loop0 / mmcblk0 -> ...p1."""
    return f"{disk}p{number}" if disk[-1].isdigit() else f"{disk}{number}"


def required_bytes(disk: dict) -> int:
    pt = disk.get("ptable")
    ss = disk.get("sector_size", 512)
    if not pt or not pt["partitions"]:
        return disk["size"]
    end = max(p["start"] + p["size"] for p in pt["partitions"])
    extra = GPT_BACKUP_SECTORS if pt["label"] == "gpt" else 0
    return (end + extra) * ss


def target_path(target: str, mountpoint: str) -> str:
    return os.path.normpath(os.path.join(target, mountpoint.lstrip("/")))


def plan_disks(layout: dict, mapping: dict[str, str], sizes: dict[str, int],
               target: str) -> list[Action]:
    """mapping: original disk path -> new disk path; sizes: new path -> bytes."""
    problems = []
    seen: dict[str, str] = {}
    for d in layout["disks"]:
        new = mapping.get(d["path"])
        if new is not None and new in seen:
            problems.append(f"{seen[new]} and {d['path']} are both mapped to {new}; each "
                            f"original disk needs a disk of its own")
        elif new is not None:
            seen[new] = d["path"]
    for d in layout["disks"]:
        new = mapping.get(d["path"])
        if new is None:
            problems.append(f"{d['path']} ({d['size']} bytes): no disk mapped to it; "
                            f"give --map {d['path']}=NEWDISK")
            continue
        need, have = required_bytes(d), sizes.get(new)
        if have is not None and have < need:
            problems.append(f"{new} is too small for {d['path']}: the partitions need "
                            f"{need} bytes, {new} has {have}")
    for f in layout["filesystems"]:
        if f["type"] not in ("ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "swap"):
            problems.append(f"{f['device_path']}: filesystem type {f['type']} cannot be "
                            f"recreated yet")
    if problems:
        raise PlanError("the layout cannot be recreated:\n  " + "\n  ".join(problems))

    ids = by_id(layout)
    new_path = {}  # layout id -> device path on the new disks
    actions: list[Action] = []
    tables = []
    for d in layout["disks"]:
        disk = mapping[d["path"]]
        new_path[d["id"]] = disk
        actions.append(WipeDisk(f"wipe-{d['id']}", device=disk))
        pt = d.get("ptable")
        if pt:
            parts = []
            for p in pt["partitions"]:
                path = partition_path(disk, p["number"])
                new_path[p["id"]] = path
                parts.append(Partition(p["number"], path, p["start"], p["size"], p["type"],
                                       p.get("uuid"), p.get("name"), p.get("attrs"),
                                       p.get("bootable")))
            tables.append(PartitionTable(f"ptable-{d['id']}", device=disk, disk=d["id"],
                                         label=pt["label"], label_id=pt.get("id"),
                                         partitions=parts))
    actions += tables
    formats, mounts = [], []
    for f in layout["filesystems"]:
        assert f["device"] in ids
        path = new_path[f["device"]]
        params = dict(f.get("params") or {})
        params.pop("features", None)  # recreated by mkfs defaults for now
        formats.append(Format(f"format-{f['id']}", device=f["device"], path=path,
                              fstype=f["type"], uuid=f.get("uuid"), label=f.get("label"),
                              params=params))
        if f.get("mountpoint") and f["type"] != "swap":
            mounts.append(Mount(f"mount-{f['id']}", filesystem=f["id"], path=path,
                                fstype=f["type"], mountpoint=f["mountpoint"],
                                target=target_path(target, f["mountpoint"])))
    actions += formats
    # parents before children: / before /srv before /srv/www
    mounts.sort(key=lambda m: (m.mountpoint.rstrip("/").count("/") if m.mountpoint != "/" else 0,
                               m.mountpoint))
    actions += mounts
    return actions
