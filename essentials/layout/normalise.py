"""Raw tool outputs of one machine turned into layout.yaml (pure, no I/O).

Input `raw` is a dict of what the collector captured (rawdir.load() rebuilds
it from layout/raw/; every key is optional):
    lsblk:   parsed `lsblk --json -b -o ...` of the selected disks (a tree)
    sfdisk:  {disk or array path: parsed `sfdisk --json`} (absent: no table)
    blkid:   {device path: {KEY: value} from `blkid -p -o export`}
    tune2fs: {device path: text of `tune2fs -l`}
    xfs_info, xfs_admin: {device path: text}
    btrfs_super, btrfs_subvolumes, btrfs_readonly, btrfs_default, btrfs_df:
             {device path: text of dump-super, subvolume list -p -u -q,
              subvolume list -r, subvolume get-default, filesystem df}
    lvm_pvs, lvm_vgs, lvm_lvs: parsed `pvs/vgs/lvs --reportformat json`
    vgcfgbackup: {VG name: file name under layout/raw/}
    mdadm_detail: {array path: text of `mdadm --detail`}
    luks_dump:   {device path: text of `cryptsetup luksDump`}
    luks_header: {device path: file name of its luksHeaderBackup}
    multipath:   text of `multipath -ll`
    findmnt: parsed `findmnt --json --list -o SOURCE,TARGET,FSTYPE,OPTIONS,FSROOT`
    swaps:   text of /proc/swaps
    fstab, crypttab: their text
    by_id:   {name under /dev/disk/by-id: device it points to}
    firmware: uefi|bios; efibootmgr, grub_debconf, cmdline: texts
    warnings: what the collector could not gather
"""

from __future__ import annotations

from . import fs as fsparse
from . import stack
from .boot import normalise_boot
from .disks import disk_nodes, ptable
from .fs import parse_tune2fs
from .luks import parse_crypttab
from .mounts import mounts_by_source, parse_fstab, relative_mountpoint
from .schema import VERSION

__all__ = ["normalise", "parse_tune2fs", "relative_mountpoint", "FS_TYPES"]

FS_TYPES = {"ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "swap"}
RAW_PREFIX = "layout/raw"


class _Filesystems:
    """Builds the filesystems list; one instance per normalise() call."""

    def __init__(self, raw: dict, root: str):
        self.raw, self.root = raw, root
        self.blkid = raw.get("blkid") or {}
        self.mounts = mounts_by_source(raw.get("findmnt"))
        self.active_swaps = {line.split()[0] for line in (raw.get("swaps") or "").splitlines()[1:]
                             if line.strip()}
        self.items: list[dict] = []

    def add(self, dev_id: str, path: str, aliases=()):
        info = self.blkid.get(path) or {}
        fstype = info.get("TYPE")
        if not fstype:
            return
        fs = {
            "id": f"fs{len(self.items)}",
            "device": dev_id,
            "device_path": path,
            "type": fstype,
            "uuid": info.get("UUID"),  # for vfat the volume id, e.g. 1A2B-3C4D
            "label": info.get("LABEL"),
            "mountpoint": None,
            "mount_options": None,
            "params": {},
        }
        mounts = next((self.mounts[p] for p in (path, *aliases) if p in self.mounts), [])
        if mounts:
            fs["mountpoint"] = relative_mountpoint(mounts[0]["target"], self.root)
            fs["mount_options"] = mounts[0].get("options")
        if len(mounts) > 1 or any((m.get("fsroot") or "/") != "/" for m in mounts):
            fs["mounts"] = [{"mountpoint": relative_mountpoint(m["target"], self.root),
                             "fsroot": m.get("fsroot") or "/", "options": m.get("options")}
                            for m in mounts]
        if fstype == "swap":
            fs["active"] = path in self.active_swaps or any(a in self.active_swaps
                                                            for a in aliases)
        self._params(fs, path, info)
        self.items.append(fs)

    def _params(self, fs: dict, path: str, info: dict):
        raw, t = self.raw, fs["type"]
        self._used(fs, path)
        if t.startswith("ext") and path in (raw.get("tune2fs") or {}):
            fs["params"] = parse_tune2fs(raw["tune2fs"][path])
        elif t == "xfs":
            if path in (raw.get("xfs_info") or {}):
                fs["params"] = fsparse.parse_xfs_info(raw["xfs_info"][path])
            admin = (raw.get("xfs_admin") or {}).get(path)
            if admin:
                got = fsparse.parse_xfs_admin(admin)
                fs["uuid"] = fs["uuid"] or got["uuid"]
                fs["label"] = fs["label"] or got["label"]
        elif t == "vfat":
            fs["params"] = fsparse.vfat_params(info)
        elif t == "btrfs":
            self._btrfs(fs, path)

    def _used(self, fs: dict, path: str):
        """Bytes in use (for fitting onto a smaller disk); absent when unknown."""
        raw, used = self.raw, None
        if path in (raw.get("tune2fs") or {}):
            used = fsparse.ext_used(raw["tune2fs"][path])
        elif path in (raw.get("btrfs_super") or {}):
            used = fsparse.parse_btrfs_super(raw["btrfs_super"][path]).get("bytes_used")
        elif path in (raw.get("usage") or {}):
            used = raw["usage"][path].get("used")
        if used is not None:
            fs["used"] = used

    def _btrfs(self, fs: dict, path: str):
        raw = self.raw
        params = {}
        if path in (raw.get("btrfs_super") or {}):
            params.update(fsparse.parse_btrfs_super(raw["btrfs_super"][path]))
            params.pop("bytes_used", None)  # usage, not a parameter: it is fs["used"]
        if path in (raw.get("btrfs_df") or {}):
            params.update(fsparse.parse_btrfs_df(raw["btrfs_df"][path]))
        fs["params"] = params
        listed = (raw.get("btrfs_subvolumes") or {}).get(path)
        if listed is None:
            fs["subvolumes"] = None  # unknown: it was not mounted (collect warned)
            fs["default_subvolume"] = None
            return
        fs["subvolumes"] = fsparse.parse_subvolume_list(
            listed, (raw.get("btrfs_readonly") or {}).get(path, ""))
        fs["default_subvolume"] = fsparse.parse_get_default(
            (raw.get("btrfs_default") or {}).get(path, ""))


def normalise(raw: dict, root: str = "/") -> dict:
    blkid = raw.get("blkid") or {}
    by_id = raw.get("by_id") or {}
    fss = _Filesystems(raw, root)
    disks = []
    path_ids: dict[str, str] = {}

    for n, dev in enumerate(disk_nodes(raw)):
        path = dev.get("path") or "/dev/" + dev["name"]
        disk = {
            "id": f"disk{n}",
            "path": path,
            "size": int(dev.get("size") or 0),
            "sector_size": int(dev.get("log-sec") or 512),
            "model": (dev.get("model") or "").strip() or None,
            "serial": (dev.get("serial") or "").strip() or None,
            "wwn": dev.get("wwn") or None,
            "ptable": None,
            "physical_sector_size": int(dev["phy-sec"]) if dev.get("phy-sec") else None,
            "rotational": bool(dev["rota"]) if dev.get("rota") is not None else None,
            "transport": dev.get("tran") or None,
            "by_id": sorted(name for name, target in by_id.items() if target == path),
        }
        path_ids[path] = disk["id"]
        pt = ((raw.get("sfdisk") or {}).get(path) or {}).get("partitiontable")
        disks.append(disk)
        if pt:
            disk["sector_size"] = int(pt.get("sectorsize", disk["sector_size"]))
            disk["ptable"] = ptable(pt, path, disk["id"], blkid)
            for p in disk["ptable"]["partitions"]:
                path_ids[p["path"]] = p["id"]
                fss.add(p["id"], p["path"])
        else:
            fss.add(disk["id"], path)

    stacks = stack.build(raw, path_ids, RAW_PREFIX)
    stack_warnings = stacks.pop("_warnings")
    for dev_id, path, aliases in stacks.pop("_devices"):
        fss.add(dev_id, path, aliases)

    layout = {"version": VERSION, "root": root, "disks": disks, "filesystems": fss.items}
    layout.update(stacks)
    layout["fstab"] = _fstab(raw, disks, fss.items)
    layout["crypttab"] = _crypttab(raw, stacks["luks"])
    parts_by_uuid = {(p.get("uuid") or "").lower(): p["id"] for d in disks
                     for p in (d["ptable"] or {}).get("partitions", []) if p.get("uuid")}
    has_boot = any(k in raw for k in ("firmware", "efibootmgr", "grub_debconf", "cmdline"))
    layout["boot"] = (normalise_boot(raw, {d["path"]: d["id"] for d in disks}, parts_by_uuid)
                      if has_boot else None)
    layout["warnings"] = list(raw.get("warnings") or []) + stack_warnings
    return layout


def _fstab(raw: dict, disks: list, filesystems: list) -> list[dict]:
    if raw.get("fstab") is None:
        return []
    parts = {p["id"]: p for d in disks for p in (d["ptable"] or {}).get("partitions", [])}

    def find(spec: str):
        key, _, val = spec.partition("=")
        for f in filesystems:
            part = parts.get(f["device"], {})
            if ((key == "UUID" and (f.get("uuid") or "").lower() == val.lower())
                    or (key == "LABEL" and f.get("label") == val)
                    or (key == "PARTUUID" and (part.get("uuid") or "").lower() == val.lower())
                    or (key == "PARTLABEL" and part.get("name") == val)
                    or spec == f["device_path"]
                    or spec == f"/dev/disk/by-uuid/{f.get('uuid')}"):
                return f["id"]
        return None

    entries = parse_fstab(raw["fstab"])
    for e in entries:
        e["filesystem"] = find(e["spec"])
    return entries


def _crypttab(raw: dict, luks: list) -> list[dict]:
    if raw.get("crypttab") is None:
        return []
    entries = parse_crypttab(raw["crypttab"])
    for e in entries:
        dev = e["device"] or ""
        key, _, val = dev.partition("=")
        e["luks"] = next((x["id"] for x in luks
                          if (key == "UUID" and (x.get("uuid") or "").lower() == val.lower())
                          or dev == x["device_path"] or x.get("name") == e["name"]), None)
    return entries
