"""LVM's text metadata (a vgcfgbackup file) read into dicts, and what thin pools need (pure).

vgcfgrestore brings back the volume group exactly, but a thin pool's own
metadata (which thin volume is which device id, the transaction id) lives
in the pool's metadata LV, not in the VG metadata: on a new disk that LV
holds nothing valid.  The values that describe an empty pool with the same
thin volumes are in the vgcfgbackup, and thin_restore can write them.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([{}\[\],=])|([^\s{}\[\],=#"]+))')


def _tokens(text: str):
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        comment, string, punct, word = m.groups()
        if comment:
            continue
        if string is not None:
            yield ("str", string[1:-1].replace('\\"', '"'))
        elif punct:
            yield (punct, punct)
        elif word:
            yield ("word", word)


def _value(kind, val):
    if kind == "str":
        return val
    try:
        return int(val)
    except ValueError:
        return val


def parse(text: str) -> dict:
    """The metadata as nested dicts: sections are dicts, `key = value` pairs
    values (str, int or list)."""
    toks = list(_tokens(text))
    pos = 0

    def section() -> dict:
        nonlocal pos
        out: dict = {}
        while pos < len(toks):
            kind, val = toks[pos]
            if kind == "}":
                pos += 1
                return out
            if kind not in ("word", "str"):
                pos += 1
                continue
            name = val
            nxt = toks[pos + 1][0] if pos + 1 < len(toks) else None
            if nxt == "{":
                pos += 2
                out[name] = section()
            elif nxt == "=":
                pos += 2
                kind, val = toks[pos]
                if kind == "[":
                    items = []
                    pos += 1
                    while toks[pos][0] != "]":
                        if toks[pos][0] != ",":
                            items.append(_value(*toks[pos]))
                        pos += 1
                    pos += 1
                    out[name] = items
                else:
                    out[name] = _value(kind, val)
                    pos += 1
            else:
                pos += 1
        return out

    return section()


def volume_group(text: str, name: str) -> dict:
    doc = parse(text)
    if name not in doc:
        raise ValueError(f"the vgcfgbackup has no volume group {name}")
    return doc[name]


def _lv_sectors(lv: dict) -> int:
    return sum(seg.get("extent_count", 0) for k, seg in lv.items()
               if k.startswith("segment") and isinstance(seg, dict))


def thin_pools(text: str, name: str) -> list[dict]:
    """One entry per thin pool: its name, metadata LV size, chunk, transaction
    id, data blocks, and the thin volumes' device ids."""
    vg = volume_group(text, name)
    ext = int(vg.get("extent_size", 0))  # sectors
    lvs = vg.get("logical_volumes") or {}
    pools = []
    for lv_name, lv in lvs.items():
        segs = [s for k, s in lv.items() if k.startswith("segment") and isinstance(s, dict)]
        if not segs or segs[0].get("type") != "thin-pool":
            continue
        seg = segs[0]
        meta = lvs.get(seg.get("metadata")) or {}
        data = lvs.get(seg.get("pool")) or {}
        chunk = int(seg.get("chunk_size", 128))
        devices = []
        for tname, t in lvs.items():
            tsegs = [s for k, s in t.items() if k.startswith("segment") and isinstance(s, dict)]
            if tsegs and tsegs[0].get("type") == "thin" and tsegs[0].get("thin_pool") == lv_name:
                devices.append({"name": tname, "device_id": int(tsegs[0]["device_id"])})
        pools.append({
            "name": lv_name,
            "metadata_bytes": _lv_sectors(meta) * ext * 512,
            "chunk_sectors": chunk,
            "transaction_id": int(seg.get("transaction_id", 0)),
            "data_blocks": _lv_sectors(data) * ext // chunk if chunk else 0,
            "devices": sorted(devices, key=lambda d: d["device_id"]),
        })
    return pools


def thin_xml(pool: dict) -> str:
    """thin_restore's input for an empty pool with the same thin volumes."""
    lines = [f'<superblock uuid="" time="0" transaction="{pool["transaction_id"]}" flags="0" '
             f'version="2" data_block_size="{pool["chunk_sectors"]}" '
             f'nr_data_blocks="{pool["data_blocks"]}">']
    for d in pool["devices"]:
        lines.append(f'  <device dev_id="{d["device_id"]}" mapped_blocks="0" transaction="0" '
                     f'creation_time="0" snap_time="0">')
        lines.append("  </device>")
    lines.append("</superblock>")
    return "\n".join(lines) + "\n"
