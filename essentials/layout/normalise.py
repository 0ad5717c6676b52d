"""Raw tool outputs of one machine turned into layout.yaml (pure, no I/O).

Input `raw` is a dict of what the collector captured:
    lsblk:   parsed `lsblk --json -b -o ...` of the selected disks
    sfdisk:  {disk path: parsed `sfdisk --json`} (absent: no table)
    blkid:   {device path: {KEY: value} from `blkid -p -o export`}
    tune2fs: {device path: text of `tune2fs -l`}
    findmnt: parsed `findmnt --json --list -o SOURCE,TARGET,FSTYPE,OPTIONS`
    swaps:   text of /proc/swaps
"""

from __future__ import annotations

import os

from .schema import VERSION

FS_TYPES = {"ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "swap"}


def parse_tune2fs(text: str) -> dict:
    kv = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            kv[k.strip()] = v.strip()
    out = {}

    def num(key):
        try:
            return int(kv[key])
        except (KeyError, ValueError):
            return None

    out["block_size"] = num("Block size")
    out["inode_size"] = num("Inode size")
    bc, rbc = num("Block count"), num("Reserved block count")
    if bc and rbc is not None:
        out["reserved_percent"] = round(100.0 * rbc / bc, 2)
    out["max_mount_count"] = num("Maximum mount count")
    ci = kv.get("Check interval", "")
    out["check_interval"] = int(ci.split()[0]) if ci[:1].isdigit() else None
    out["features"] = kv.get("Filesystem features", "").split()
    return {k: v for k, v in out.items() if v not in (None, [])}


def relative_mountpoint(target: str, root: str) -> str | None:
    root = os.path.normpath(root)
    target = os.path.normpath(target)
    if target == root:
        return "/"
    if root == "/":
        return target
    if target.startswith(root + "/"):
        return target[len(root):]
    return None


def normalise(raw: dict, root: str = "/") -> dict:
    mounts = {}
    for m in raw.get("findmnt", {}).get("filesystems", []):
        src = m.get("source") or ""
        mounts.setdefault(src, m)
    active_swaps = {line.split()[0] for line in raw.get("swaps", "").splitlines()[1:] if line.strip()}

    disks, filesystems = [], []

    def add_fs(dev_id: str, path: str):
        info = raw.get("blkid", {}).get(path) or {}
        fstype = info.get("TYPE")
        if not fstype:
            return
        fs = {
            "id": f"fs{len(filesystems)}",
            "device": dev_id,
            "device_path": path,
            "type": fstype,
            "uuid": info.get("UUID"),
            "label": info.get("LABEL"),
            "mountpoint": None,
            "mount_options": None,
            "params": {},
        }
        if fstype == "vfat":
            fs["uuid"] = info.get("UUID")  # the volume id, e.g. 1A2B-3C4D
        m = mounts.get(path)
        if m:
            fs["mountpoint"] = relative_mountpoint(m["target"], root)
            fs["mount_options"] = m.get("options")
        if fstype == "swap":
            fs["active"] = path in active_swaps
        if fstype.startswith("ext") and path in raw.get("tune2fs", {}):
            fs["params"] = parse_tune2fs(raw["tune2fs"][path])
        filesystems.append(fs)

    for n, dev in enumerate(raw.get("lsblk", {}).get("blockdevices", [])):
        path = dev.get("path") or "/dev/" + dev["name"]
        disk = {
            "id": f"disk{n}",
            "path": path,
            "size": int(dev.get("size") or 0),
            "sector_size": 512,
            "model": (dev.get("model") or "").strip() or None,
            "serial": (dev.get("serial") or "").strip() or None,
            "wwn": dev.get("wwn") or None,
            "ptable": None,
        }
        pt = (raw.get("sfdisk", {}).get(path) or {}).get("partitiontable")
        if pt:
            disk["sector_size"] = int(pt.get("sectorsize", 512))
            parts = []
            for p in pt.get("partitions", []):
                node = p["node"]
                number = int("".join(ch for ch in node[len(path):] if ch.isdigit()) or 0)
                parts.append({
                    "id": f"{disk['id']}p{number}",
                    "number": number,
                    "path": node,
                    "start": int(p["start"]),
                    "size": int(p["size"]),
                    "type": p.get("type"),
                    "uuid": p.get("uuid"),
                    "name": p.get("name"),
                    "attrs": p.get("attrs"),
                    "bootable": bool(p.get("bootable")) or None,
                })
            disk["ptable"] = {"label": pt.get("label"), "id": pt.get("id"),
                              "partitions": parts}
            disks.append(disk)
            for p in parts:
                add_fs(p["id"], p["path"])
        else:
            disks.append(disk)
            add_fs(disk["id"], path)
    return {"version": VERSION, "root": root, "disks": disks, "filesystems": filesystems}
