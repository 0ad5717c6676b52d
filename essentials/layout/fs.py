"""Filesystem tool outputs turned into the parameters that recreate them (pure).

blkid gives every filesystem's UUID and label; what mkfs needs beyond that
(block and inode size, features, subvolumes) only the filesystem's own tool
knows, so each of those outputs has a parser here.
"""

from __future__ import annotations

TRANSIENT_EXT_FEATURES = {"needs_recovery", "orphan_present"}

import re


def _kv(text: str, sep: str = ":") -> dict:
    kv = {}
    for line in text.splitlines():
        k, found, v = line.partition(sep)
        if found:
            kv[k.strip()] = v.strip()
    return kv


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- ext2/3/4: tune2fs -l -------------------------------------------------------

def parse_tune2fs(text: str) -> dict:
    kv = _kv(text)
    out = {}

    def num(key):
        return _int(kv.get(key))

    out["block_size"] = num("Block size")
    out["inode_size"] = num("Inode size")
    bc, rbc = num("Block count"), num("Reserved block count")
    if bc and rbc is not None:
        out["reserved_percent"] = round(100.0 * rbc / bc, 2)
    out["max_mount_count"] = num("Maximum mount count")
    ci = kv.get("Check interval", "")
    out["check_interval"] = int(ci.split()[0]) if ci[:1].isdigit() else None
    # needs_recovery / orphan_present are states of a mounted journal, not
    # features to recreate: a mounted and an unmounted fs must compare equal
    out["features"] = [f for f in kv.get("Filesystem features", "").split()
                       if f not in TRANSIENT_EXT_FEATURES]
    out["inode_count"] = num("Inode count")
    dmo = kv.get("Default mount options", "")
    out["default_mount_options"] = [] if dmo in ("", "(none)") else dmo.split()
    out["errors_behavior"] = (kv.get("Errors behavior") or "").lower() or None
    # the RAID geometry mke2fs was given (-E stride=,stripe_width=) or took from
    # the MD array; only printed when set
    out["raid_stride"] = num("RAID stride")
    out["raid_stripe_width"] = num("RAID stripe width")
    return {k: v for k, v in out.items() if v not in (None, [])}


def ext_used(text: str) -> int | None:
    """Bytes in use from tune2fs -l: (block count - free blocks) x block size."""
    kv = _kv(text)
    bc, free, bs = (_int(kv.get(k)) for k in ("Block count", "Free blocks", "Block size"))
    if bc is None or free is None or not bs:
        return None
    return (bc - free) * bs


# -- xfs: xfs_info, xfs_admin -l -u -----------------------------------------------

_XFS_FLAGS = ("crc", "finobt", "sparse", "rmapbt", "reflink", "bigtime", "inobtcount",
              "nrext64")


def parse_xfs_info(text: str) -> dict:
    """xfs_info prints sections (meta-data, data, naming, log, realtime) whose
    continuation lines start with '='; the same key (bsize, sectsz) means a
    different thing in each section, so values are read per section."""
    sections: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        head, eq, rest = line.partition("=")
        if not eq:
            continue
        if head.strip():
            current = head.strip()
            first = re.split(r"\s{2,}", rest.strip(), maxsplit=1)[0]
            sections[current] = {"_first": "" if "=" in first else first}
        if current is None:
            continue
        for k, v in re.findall(r"([a-z][a-z0-9_-]*)=([^\s,]+)", rest):
            sections[current].setdefault(k, v)
    meta, data = sections.get("meta-data", {}), sections.get("data", {})
    naming, logs = sections.get("naming", {}), sections.get("log", {})
    rt = sections.get("realtime", {})
    out = {
        "block_size": _int(data.get("bsize")),
        "inode_size": _int(meta.get("isize")),
        "sector_size": _int(meta.get("sectsz")),
        "agcount": _int(meta.get("agcount")),
        "naming_version": _int((naming.get("_first") or "").replace("version", "").strip()),
        "ftype": _int(naming.get("ftype")),
        "log_internal": (logs.get("_first") or "").startswith("internal") if logs else None,
        "log_blocks": _int(logs.get("blocks")),
        "log_version": _int(logs.get("version")),
        "realtime": None if (rt.get("_first") or "none") == "none" else rt.get("_first"),
    }
    for flag in _XFS_FLAGS:
        if flag in meta:
            out[flag] = _int(meta[flag])
    su, sw = _int(data.get("sunit")), _int(data.get("swidth"))
    if su:
        out["stripe_unit"], out["stripe_width"] = su, sw
    return {k: v for k, v in out.items() if v is not None}


def parse_xfs_admin(text: str) -> dict:
    """`xfs_admin -l -u`: label = "x" / UUID = y."""
    kv = _kv(text, "=")
    label = kv.get("label")
    if label is not None:
        label = label.strip('"') or None
    return {"label": label, "uuid": kv.get("UUID")}


# -- btrfs ----------------------------------------------------------------------------

_SUBVOL = re.compile(
    r"^ID (\d+) gen \d+(?: cgen \d+)?(?: parent (\d+))? top level (\d+)"
    r"(?: parent_uuid (\S+))?(?: received_uuid (\S+))?\s*(?:uuid (\S+))? path (.*)$")


def parse_subvolume_list(text: str, readonly_text: str = "") -> list[dict]:
    """`btrfs subvolume list -a -p -u -q MNT` (and `-a -r` for the read-only ones);
    paths are from the top level, "<FS_TREE>/" dropped."""
    readonly = {int(m.group(1)) for m in map(_SUBVOL.match, readonly_text.splitlines()) if m}
    out = []
    for line in text.splitlines():
        m = _SUBVOL.match(line.strip())
        if not m:
            continue
        sid, parent, top, puuid, _recv, uuid, path = m.groups()
        out.append({
            "id": int(sid),
            "path": path.removeprefix("<FS_TREE>/"),
            "parent_id": int(parent if parent is not None else top),
            "uuid": uuid if uuid and uuid != "-" else None,
            "parent_uuid": puuid if puuid and puuid != "-" else None,
            "readonly": int(sid) in readonly,
        })
    return out


def parse_get_default(text: str) -> dict | None:
    """`btrfs subvolume get-default MNT`: 'ID 256 gen 7 top level 5 path @'
    or 'ID 5 (FS_TREE)' for the top level."""
    for line in text.splitlines():
        m = re.match(r"^ID (\d+)(?: .*? path (.*))?", line.strip())
        if m:
            sid = int(m.group(1))
            return {"id": sid, "path": None if sid == 5 else (m.group(2) or None)}
    return None


def parse_btrfs_super(text: str) -> dict:
    """`btrfs inspect-internal dump-super DEV` (works unmounted)."""
    kv, flags, key = {}, {}, None
    for line in text.splitlines():
        if line.startswith(("\t", " ")) and key:
            flags.setdefault(key, []).extend(re.findall(r"[A-Z][A-Z0-9_]+", line))
            continue
        parts = line.split(None, 1)
        if len(parts) == 2:
            key = parts[0]
            kv[key] = parts[1].strip()
            if "(" in parts[1]:
                flags.setdefault(key, []).extend(re.findall(r"[A-Z][A-Z0-9_]+", parts[1]))
    csum = re.search(r"\((\w+)\)", kv.get("csum_type", ""))
    out = {
        "bytes_used": _int(kv.get("bytes_used")),
        "node_size": _int(kv.get("nodesize")),
        "sector_size": _int(kv.get("sectorsize")),
        "num_devices": _int(kv.get("num_devices")),
        "csum_type": csum.group(1) if csum else None,
        "features": [f.lower() for f in flags.get("incompat_flags", [])],
        "ro_features": [f.lower() for f in flags.get("compat_ro_flags", [])],
    }
    return {k: v for k, v in out.items() if v not in (None, [])}


def parse_btrfs_df(text: str) -> dict:
    """`btrfs filesystem df MNT`: 'Data, single: total=...' -> data_profile."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(Data|Metadata|System|Data\+Metadata), (\w+):", line.strip())
        if m:
            kind = m.group(1).lower().replace("+", "_")
            out[f"{kind}_profile"] = m.group(2).lower()
    return out


# -- vfat, swap: blkid is enough --------------------------------------------------------

def vfat_params(blkid: dict) -> dict:
    m = re.match(r"FAT(12|16|32)$", blkid.get("VERSION", ""))
    return {"fat_size": int(m.group(1))} if m else {}


def swap_params(blkid: dict) -> dict:
    v = _int(blkid.get("VERSION"))
    return {"version": v} if v is not None else {}
