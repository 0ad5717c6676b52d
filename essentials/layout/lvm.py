"""LVM reports (`pvs/vgs/lvs --reportformat json`) turned into layout entries (pure).

The reports say what a person needs to see and the planner needs to size;
the `vgcfgbackup` file kept beside them is what `vgcfgrestore` recreates the
exact extents from, so each volume group points at its own file.
"""

from __future__ import annotations


def _rows(report: dict | None, kind: str) -> list[dict]:
    out = []
    for part in (report or {}).get("report", []):
        out.extend(part.get(kind, []))
    return out


def _int(v) -> int | None:
    try:
        return int(str(v).strip().rstrip("B"))
    except (TypeError, ValueError):
        return None


def _lvs(lvs: dict | None) -> list[dict]:
    """One row per LV: `lvs` prints a row per segment once a segment field
    (devices) is asked for, so the rows of one LV are merged here."""
    out, seen = [], {}
    for r in _rows(lvs, "lv"):
        key = (r.get("vg_name"), r.get("lv_uuid") or r.get("lv_name"))
        devices = [d for d in (r.get("devices") or "").split(",") if d]
        if key in seen:
            seen[key]["devices"] += devices
            seen[key]["segments"] += 1
            continue
        row = dict(r, devices=devices, segments=1)
        seen[key] = row
        out.append(row)
    return out


def assign_ids(vgs: dict | None, lvs: dict | None) -> tuple[dict, dict]:
    """VG name -> id, and device path -> LV id, before anything is resolved
    (a LUKS container or a PV may sit on an LV, so every id must exist first)."""
    vg_ids = {r["vg_name"]: f"vg{i}" for i, r in enumerate(_rows(vgs, "vg"))}
    path_ids, counters = {}, {}
    for r in _lvs(lvs):
        vid = vg_ids.get(r["vg_name"])
        if vid is None:
            continue
        n = counters.get(vid, 0)
        counters[vid] = n + 1
        for p in (r.get("lv_path"), r.get("lv_dm_path")):
            if p:
                path_ids[p] = f"{vid}lv{n}"
    return vg_ids, path_ids


def normalise_lvm(pvs: dict | None, vgs: dict | None, lvs: dict | None,
                  vgcfgbackup: dict | None, path_ids: dict, raw_prefix: str) -> list[dict]:
    """One entry per volume group; PVs name the layout id of the device under them."""
    vg_ids, _ = assign_ids(vgs, lvs)
    out = []
    by_vg = {}
    for r in _rows(vgs, "vg"):
        name = r["vg_name"]
        cfg = (vgcfgbackup or {}).get(name)
        vg = {
            "id": vg_ids[name],
            "name": name,
            "uuid": r.get("vg_uuid"),
            "size": _int(r.get("vg_size")),
            "free": _int(r.get("vg_free")),
            "extent_size": _int(r.get("vg_extent_size")),
            "extent_count": _int(r.get("vg_extent_count")),
            "attr": r.get("vg_attr"),
            "format": r.get("vg_fmt") or None,
            "physical_volumes": [],
            "logical_volumes": [],
            "vgcfgbackup": f"{raw_prefix}/{cfg}" if cfg else None,
        }
        by_vg[name] = vg
        out.append(vg)
    for r in _rows(pvs, "pv"):
        vg = by_vg.get(r.get("vg_name"))
        if vg is None:
            continue
        vg["physical_volumes"].append({
            "device": path_ids.get(r["pv_name"]),
            "path": r["pv_name"],
            "uuid": r.get("pv_uuid"),
            "size": _int(r.get("pv_size")),
            "dev_size": _int(r.get("dev_size")),
            "pe_start": _int(r.get("pe_start")),
        })
    counters = {}
    for r in _lvs(lvs):
        vg = by_vg.get(r["vg_name"])
        if vg is None:
            continue
        n = counters.get(vg["id"], 0)
        counters[vg["id"]] = n + 1
        name = r["lv_name"]
        vg["logical_volumes"].append({
            "id": f"{vg['id']}lv{n}",
            "name": name,
            "uuid": r.get("lv_uuid"),
            "size": _int(r.get("lv_size")),
            "path": r.get("lv_path") or None,
            "dm_path": r.get("lv_dm_path") or None,
            "segtype": r.get("segtype") or None,
            "stripes": _int(r.get("stripes")),
            "stripe_size": _int(r.get("stripe_size")) or None,
            "attr": r.get("lv_attr"),
            "active": r.get("lv_active") == "active",
            "hidden": name.startswith("["),
            "pool": r.get("pool_lv") or None,
            "origin": r.get("origin") or None,
            "segments": r["segments"],
            "devices": r["devices"],
        })
    return out


def pv_devices(pvs: dict | None) -> set[str]:
    return {r["pv_name"] for r in _rows(pvs, "pv")}
