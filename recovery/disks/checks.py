"""What the planner cannot reproduce, found before anything is changed (pure).

Each problem names the device on the original machine and what is in the
way, so the person sees every one of them at once, up front, instead of the
first one halfway through wiping disks.
"""

from __future__ import annotations

from .fsactions import FS_TYPES
from .stack import MD_LEVELS, MD_METADATA

STACK_TYPES = ("LVM2_member", "linux_raid_member", "crypto_LUKS")
# what vgcfgrestore alone brings back: the others keep state in their own
# metadata areas (RAID and mirror logs, cache, snapshots' COW, VDO), which
# restoring the VG metadata leaves as garbage
LV_SEGTYPES = ("linear", "striped", "thin-pool", "thin", "zero", "error")


def filesystem_problems(layout: dict) -> list[str]:
    out = []
    md_members = {m["device"] for a in layout.get("md") or [] for m in a["members"]
                  if m.get("device")}
    md_uuids = {_uuid(a.get("uuid")) for a in layout.get("md") or []}
    luks_devices = {c.get("device") for c in layout.get("luks") or []}
    for f in layout["filesystems"]:
        t, where = f["type"], f.get("device_path") or f["device"]
        if t in FS_TYPES:
            out += _tuning_problems(f, where)
        # a member of a known array that was not in it (failed, removed) is
        # left blank: the array is made as it was, degraded
        elif (t == "linux_raid_member" and f["device"] not in md_members
              and _uuid(f.get("uuid")) not in md_uuids):
            out.append(f"{where}: an MD RAID member of an array that was not assembled when "
                       f"the layout was collected (no mdadm --detail): cannot recreate it")
        elif t == "crypto_LUKS" and f["device"] not in luks_devices:
            out.append(f"{where}: a LUKS container the layout has no luksDump of: cannot "
                       f"recreate it")
        elif t not in FS_TYPES + STACK_TYPES:
            out.append(f"{where}: filesystem type {t} cannot be recreated yet")
    return out


def _uuid(value) -> str:
    """blkid prints an MD UUID with dashes, mdadm with colons."""
    return str(value or "").replace("-", "").replace(":", "").lower()


def _tuning_problems(f: dict, where: str) -> list[str]:
    p, t = f.get("params") or {}, f["type"]
    if t.startswith("ext") and "journal_dev" in (p.get("features") or []):
        return [f"{where}: an ext journal device (external journal) cannot be recreated yet"]
    if t == "xfs" and (p.get("realtime") or p.get("log_internal") is False):
        return [f"{where}: XFS with an external log or realtime section cannot be "
                f"recreated yet"]
    if t == "btrfs" and (p.get("num_devices") or 1) > 1:
        return [f"{where}: btrfs over {p['num_devices']} devices cannot be recreated yet"]
    return []


def stack_problems(layout: dict) -> list[str]:
    out = []
    for a in layout.get("md") or []:
        if a["level"] not in MD_LEVELS:
            out.append(f"{a['path']}: MD level {a['level']} cannot be recreated yet")
        if a.get("metadata") and str(a["metadata"]) not in MD_METADATA:
            out.append(f"{a['path']}: MD metadata {a['metadata']} (a firmware RAID "
                       f"container) cannot be recreated yet")
        if a["level"] in ("raid0", "linear"):
            lost = [m for m in a["members"] if not m.get("device")]
            if lost:
                out.append(f"{a['path']}: a {a['level']} array with a member that is not on "
                           f"a collected disk cannot be recreated")
    for vg in layout.get("lvm") or []:
        name = vg["name"]
        if not vg.get("vgcfgbackup"):
            out.append(f"volume group {name}: the bundle has no vgcfgbackup of it, which "
                       f"vgcfgrestore needs")
        for pv in vg["physical_volumes"]:
            if not pv.get("device"):
                out.append(f"volume group {name}: physical volume {pv['path']} is on a disk "
                           f"that was not collected")
        for lv in vg["logical_volumes"]:
            seg = lv.get("segtype") or "linear"
            snapshot = lv.get("origin") and seg != "thin"  # thin snapshots are thin LVs
            if seg not in LV_SEGTYPES or snapshot:
                kind = "a snapshot" if snapshot else f"segment type {seg}"
                out.append(f"{lv.get('path') or name + '/' + lv['name']}: {kind} cannot be "
                           f"recreated from the volume group metadata")
    for c in layout.get("luks") or []:
        if not c.get("device"):
            out.append(f"{c['device_path']}: LUKS container on a disk that was not collected")
        if c.get("version") not in (1, 2, None):
            out.append(f"{c['device_path']}: LUKS version {c['version']} is not supported")
    return out


def problems(layout: dict) -> list[str]:
    return filesystem_problems(layout) + stack_problems(layout)
