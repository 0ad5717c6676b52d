"""`mdadm --detail` turned into a layout entry (pure).

The array UUID, level, metadata version and the role of each member are
what `mdadm --create` needs to rebuild an array the old mdadm.conf and
initramfs still recognise; the rest of the text stays in layout/raw/.
"""

from __future__ import annotations

import re

_MEMBER = re.compile(r"^\s*(\d+|-)\s+(\d+)\s+(\d+)\s+(\d+|-)\s+(.*?)\s*(/dev/\S+)?\s*$")
_SIZE = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _bytes(text: str | None) -> int | None:
    m = re.match(r"^(\d+)([KMG]?)", text or "")
    return int(m.group(1)) * _SIZE[m.group(2)] if m else None


def parse_detail(text: str) -> dict:
    kv, members, in_table = {}, [], False
    path = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if path is None and line.startswith("/dev/") and line.rstrip().endswith(":"):
            path = line.strip()[:-1]
            continue
        if re.match(r"^\s*Number\s+Major\s+Minor\s+RaidDevice", line):
            in_table = True
            continue
        if in_table:
            m = _MEMBER.match(line)
            if m:
                num, major, minor, role, state, dev = m.groups()
                members.append({"number": _int(num), "major": int(major), "minor": int(minor),
                                "role": _int(role), "state": state.strip(), "path": dev})
            continue
        k, sep, v = line.partition(" : ")
        if sep:
            kv[k.strip()] = v.strip()
    name = kv.get("Name")
    if name:
        name = re.sub(r"\s+\(local to host .*\)$", "", name)
    size = kv.get("Array Size", "").split()
    bitmap = kv.get("Intent Bitmap")
    return {
        "path": path,
        "metadata": kv.get("Version"),
        "level": kv.get("Raid Level"),
        "size": int(size[0]) * 1024 if size and size[0].isdigit() else None,
        "raid_devices": _int(kv.get("Raid Devices")),
        "total_devices": _int(kv.get("Total Devices")),
        "state": kv.get("State"),
        "layout": kv.get("Layout"),
        "chunk_size": _bytes(kv.get("Chunk Size")),
        "bitmap": bitmap.lower() if bitmap else None,
        "consistency_policy": kv.get("Consistency Policy"),
        "name": name or None,
        "uuid": kv.get("UUID"),
        "members": members,
    }


def normalise_md(details: dict, path_ids: dict, ids: dict) -> list[dict]:
    """details: {array path: mdadm --detail text}; ids: array path -> layout id."""
    out = []
    for path, text in details.items():
        d = parse_detail(text)
        members = []
        for m in d["members"]:
            if m["path"] is None:  # "removed": a slot with no device
                members.append({"device": None, "path": None, "role": m["role"],
                                "state": m["state"]})
                continue
            role = m["role"] if m["role"] is not None else (
                "spare" if "spare" in m["state"] else None)
            members.append({"device": path_ids.get(m["path"]), "path": m["path"],
                            "role": role, "state": m["state"]})
        out.append({
            "id": ids[path],
            "path": path,
            "name": d["name"],
            "uuid": d["uuid"],
            "level": d["level"],
            "metadata": d["metadata"],
            "raid_devices": d["raid_devices"],
            "size": d["size"],
            "chunk_size": d["chunk_size"],
            "layout": d["layout"],
            "bitmap": d["bitmap"],
            # not the state itself: clean/active flips with every write
            "degraded": "degraded" in (d["state"] or ""),
            "members": members,
            "ptable": None,
        })
    return out
