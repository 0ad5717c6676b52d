"""The mount table, fstab and multipath maps as the layout needs them (pure)."""

from __future__ import annotations

import os
import re


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


def mounts_by_source(findmnt: dict | None) -> dict[str, list[dict]]:
    """Device path -> its mounts in mount order.  findmnt writes a mount of a
    btrfs subvolume or a bind mount as 'DEV[/fsroot]': the device is DEV."""
    out: dict[str, list[dict]] = {}
    for m in (findmnt or {}).get("filesystems", []):
        src = m.get("source") or ""
        fsroot = m.get("fsroot")
        b = re.match(r"^(.*)\[(.*)\]$", src)
        if b:
            src = b.group(1)
            fsroot = fsroot or b.group(2)
        out.setdefault(src, []).append(dict(m, source=src, fsroot=fsroot))
    return out


def _unescape(field: str) -> str:
    """fstab escapes blanks as octal (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_fstab(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = [_unescape(x) for x in line.split()]
        if len(f) < 2:
            continue
        out.append({
            "spec": f[0],
            "file": f[1],
            "vfstype": f[2] if len(f) > 2 else None,
            "options": f[3] if len(f) > 3 else "defaults",
            "freq": int(f[4]) if len(f) > 4 and f[4].isdigit() else 0,
            "passno": int(f[5]) if len(f) > 5 and f[5].isdigit() else 0,
        })
    return out


def parse_multipath(text: str) -> dict[str, dict]:
    """`multipath -ll`: map name -> wwid, vendor/product and its path devices."""
    maps, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^(\S+)\s+(?:\((\S+)\)\s+)?(dm-\d+)\s+(.*)$", line)
        if m:
            name, wwid, dm, vp = m.groups()
            cur = {"wwid": wwid or name, "dm": dm, "vendor_product": vp.strip() or None,
                   "paths": []}
            maps[name] = cur
            continue
        p = re.search(r"(\d+:\d+:\d+:\d+)\s+(\S+)\s+(\d+:\d+)", line)
        if p and cur is not None:
            cur["paths"].append("/dev/" + p.group(2))
    return maps
