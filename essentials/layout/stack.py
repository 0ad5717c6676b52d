"""Devices stacked on the disks: MD arrays, multipath maps, LUKS, LVM (pure).

Ids are given to every stacked device first and references resolved after,
because the stack can be built in any order (LVM on LUKS on MD, LUKS on an
LV...).  Each entry names the layout id of the devices under it, or null
when that device is on a disk that was not collected.
"""

from __future__ import annotations

from . import lvm as lvmparse
from .disks import disk_nodes, ptable
from .luks import parse_crypttab, parse_luks_dump
from .md import normalise_md
from .mounts import parse_multipath

MD_TYPES = ("raid", "linear", "md")


def walk(nodes: list[dict]):
    for n in nodes:
        yield n
        yield from walk(n.get("children") or [])


def build(raw: dict, path_ids: dict, raw_prefix: str) -> dict:
    """path_ids (disk and partition paths -> ids) is extended in place."""
    blkid = raw.get("blkid") or {}
    disks = disk_nodes(raw)
    nodes = {}
    for n in walk(disks):
        nodes.setdefault(n.get("path"), n)
    devices, warnings = [], []

    # 1. ids for everything stacked, before anything refers to anything
    details = raw.get("mdadm_detail") or {}
    md_ids = {p: f"array{i}" for i, p in enumerate(details)}
    path_ids.update(md_ids)
    md_tables = {}
    for p, aid in md_ids.items():
        pt = ((raw.get("sfdisk") or {}).get(p) or {}).get("partitiontable")
        if pt:
            md_tables[p] = ptable(pt, p, aid, blkid)
            path_ids.update({q["path"]: q["id"] for q in md_tables[p]["partitions"]})

    mpaths: dict[str, dict] = {}
    for d in disks:
        for c in d.get("children") or []:
            if c.get("type") == "mpath":
                m = mpaths.setdefault(c["path"], {"node": c, "paths": []})
                m["paths"].append(d["path"])
    mp_ids = {p: f"mpath{i}" for i, p in enumerate(mpaths)}
    path_ids.update(mp_ids)

    _, lv_ids = lvmparse.assign_ids(raw.get("lvm_vgs"), raw.get("lvm_lvs"))
    path_ids.update(lv_ids)

    dumps = raw.get("luks_dump") or {}
    luks_ids = {p: f"luks{i}" for i, p in enumerate(dumps)}  # by the device under it
    crypttab = parse_crypttab(raw["crypttab"]) if raw.get("crypttab") else []
    mappings = {}
    for dev in dumps:
        child = next((c for c in (nodes.get(dev) or {}).get("children") or []
                      if c.get("type") == "crypt"), None)
        if child:
            mappings[dev] = (child.get("name"), child.get("path"), True)
            path_ids[child["path"]] = luks_ids[dev]

    # 2. the entries
    md = normalise_md(details, path_ids, md_ids)
    for a in md:
        a["ptable"] = md_tables.get(a["path"])
        for m in a["members"]:
            if m["path"] and m["device"] is None:
                warnings.append(f"MD array {a['path']}: member {m['path']} is on a disk that "
                                f"was not collected")
        if a["ptable"]:
            devices += [(q["id"], q["path"], ()) for q in a["ptable"]["partitions"]]
        else:
            devices.append((a["id"], a["path"], ()))

    ll = parse_multipath(raw.get("multipath") or "")
    multipath = []
    for p, m in mpaths.items():
        name = m["node"].get("name")
        info = ll.get(name, {})
        multipath.append({
            "id": mp_ids[p], "name": name, "path": p,
            "size": int(m["node"].get("size") or 0),
            "wwid": info.get("wwid"), "vendor_product": info.get("vendor_product"),
            "paths": [path_ids.get(x) for x in m["paths"]],
        })
        # no filesystems of its own: they are seen (and listed) through its paths
        warnings.append(f"multipath map {name} ({p}): its paths "
                        f"{', '.join(m['paths'])} are listed as separate disks; "
                        f"map only one of them when recovering")

    luks = []
    for dev, text in dumps.items():
        d = parse_luks_dump(text)
        name, mpath, is_open = mappings.get(dev, (None, None, False))
        if name is None:
            tab = next((t for t in crypttab
                        if (t["device"] or "").partition("=")[2].lower() == (d["uuid"] or "~")
                        or t["device"] == dev), None)
            if tab:
                name, mpath = tab["name"], f"/dev/mapper/{tab['name']}"
        header = (raw.get("luks_header") or {}).get(dev)
        luks.append(dict(
            {"id": luks_ids[dev], "device": path_ids.get(dev), "device_path": dev},
            **d, name=name, path=mpath, open=is_open,
            header_backup=f"{raw_prefix}/{header}" if header else None))
        if is_open:
            devices.append((luks_ids[dev], mpath, ()))

    vgs = lvmparse.normalise_lvm(raw.get("lvm_pvs"), raw.get("lvm_vgs"), raw.get("lvm_lvs"),
                                 raw.get("vgcfgbackup"), path_ids, raw_prefix)
    for vg in vgs:
        for pv in vg["physical_volumes"]:
            if pv["device"] is None:
                warnings.append(f"LVM volume group {vg['name']}: physical volume {pv['path']} "
                                f"is on a disk that was not collected")
        for lv in vg["logical_volumes"]:
            paths = [p for p in (lv["dm_path"], lv["path"]) if p]
            main = next((p for p in paths if p in blkid), None)
            if main:
                devices.append((lv["id"], main, tuple(p for p in paths if p != main)))
    return {"lvm": vgs, "md": md, "luks": luks, "multipath": multipath,
            "_devices": devices, "_warnings": warnings}
