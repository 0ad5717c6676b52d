"""Disks and their partition tables as layout entries (pure)."""

from __future__ import annotations

EXTENDED_TYPES = {"5", "f", "85", "0x5", "0xf", "0x85"}


def disk_nodes(raw: dict) -> list[dict]:
    return [d for d in (raw.get("lsblk") or {}).get("blockdevices", [])
            if d.get("type") in ("disk", "loop")]


def ptable(pt: dict, path: str, owner_id: str, blkid: dict) -> dict:
    """sfdisk --json of one disk (or array) -> ptable with partition ids."""
    parts = []
    for p in pt.get("partitions", []):
        node = p["node"]
        number = int("".join(ch for ch in node[len(path):] if ch.isdigit()) or 0)
        uuid = p.get("uuid")
        kind = None
        if pt.get("label") == "dos":
            kind = ("extended" if str(p.get("type", "")).lower() in EXTENDED_TYPES
                    else "logical" if number > 4 else "primary")
            uuid = uuid or (blkid.get(node) or {}).get("PART_ENTRY_UUID")
        parts.append({
            "id": f"{owner_id}p{number}",
            "number": number,
            "path": node,
            "start": int(p["start"]),
            "size": int(p["size"]),
            "type": p.get("type"),
            "uuid": uuid,
            "name": p.get("name"),
            "attrs": p.get("attrs"),
            "bootable": bool(p.get("bootable")) or None,
            "kind": kind,
        })
    return {"label": pt.get("label"), "id": pt.get("id"),
            "first_lba": pt.get("firstlba"), "last_lba": pt.get("lastlba"),
            "partitions": parts}
