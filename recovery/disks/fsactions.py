"""Making filesystems and swap with their original identities, and mounting them.

UUIDs and labels are what fstab, crypttab, the bootloader and the initramfs
look for, so they come back exactly.  The tuning a person chose (ext features,
inode and block size, reserved blocks, check intervals; XFS geometry and
feature bits; btrfs node size, checksum, profiles and subvolumes) comes back
too; geometry that follows from the size (ext inode count, XFS allocation
groups and log) is kept as it was on a disk of the same size and scaled or
left to mkfs on a resized one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from essentials.runner import Runner

from .actions import Action, Step

log = logging.getLogger(__name__)

FS_TYPES = ("ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "swap")
# ext features that are states of a mounted or damaged fs, not choices
TRANSIENT_EXT_FEATURES = {"needs_recovery", "orphan_present", "snapshot_bitmap"}
EXT_ERRORS = {"continue": "continue", "remount read-only": "remount-ro",
              "remount-ro": "remount-ro", "panic": "panic"}
# mke2fs.conf's default_mntopts: cleared with ^ when the original had them off
EXT_DEFAULT_MNTOPTS = ("user_xattr", "acl")
XFS_META = ("crc", "finobt", "rmapbt", "reflink", "bigtime", "inobtcount")
XFS_INODE = ("sparse", "nrext64")
# btrfs incompat flags (dump-super) -> mkfs.btrfs -O names; the others are
# set by the kernel or mkfs on their own (mixed_backref, big_metadata,
# default_subvol, compress_*) and cannot be asked for
BTRFS_O = {"mixed_groups": "mixed-bg", "extended_iref": "extref", "raid56": "raid56",
           "skinny_metadata": "skinny-metadata", "no_holes": "no-holes",
           "raid1c34": "raid1c34", "zoned": "zoned"}
BTRFS_O_DEFAULTS = ("extref", "skinny-metadata", "no-holes")
BTRFS_PROFILES = {"single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10",
                  "raid5", "raid6"}


def _ext(f: "Format") -> list[Step]:
    p = f.params
    argv = [f"mkfs.{f.fstype}", "-F", "-q"]
    if f.uuid:
        argv += ["-U", f.uuid]
    if f.label:
        argv += ["-L", f.label]
    feats = [x for x in p.get("features") or [] if x not in TRANSIENT_EXT_FEATURES]
    if feats:
        # none first: exactly these, whatever this mke2fs.conf would add
        argv += ["-O", ",".join(["none"] + feats)]
    if p.get("block_size"):
        argv += ["-b", str(p["block_size"])]
    if p.get("inode_size"):
        argv += ["-I", str(p["inode_size"])]
    if p.get("inode_count"):
        argv += ["-N", str(max(1, round(p["inode_count"] * f.scale)))]
    if p.get("reserved_percent") is not None:
        argv += ["-m", str(p["reserved_percent"])]
    extended = [f"{opt}={p[key]}" for key, opt in (("raid_stride", "stride"),
                                                   ("raid_stripe_width", "stripe_width"))
                if p.get(key)]
    if extended:
        argv += ["-E", ",".join(extended)]
    err = EXT_ERRORS.get(str(p.get("errors_behavior") or "").lower())
    if err:
        argv += ["-e", err]
    steps = [Step(argv + [f.path])]
    tune = []
    if p.get("max_mount_count") is not None:
        tune += ["-c", str(p["max_mount_count"])]
    if p.get("check_interval") is not None:
        tune += ["-i", f"{p['check_interval']}s"]
    if "default_mount_options" in p:
        orig = list(p["default_mount_options"] or [])
        opts = orig + [f"^{o}" for o in EXT_DEFAULT_MNTOPTS if o not in orig]
        tune += ["-o", ",".join(opts)]
    if tune:
        steps.append(Step(["tune2fs"] + tune + [f.path]))
    return steps


def _xfs(f: "Format") -> list[Step]:
    p = f.params
    argv = ["mkfs.xfs", "-f", "-q"]
    meta = [f"uuid={f.uuid}"] if f.uuid else []
    meta += [f"{k}={p[k]}" for k in XFS_META if k in p]
    if meta:
        argv += ["-m", ",".join(meta)]
    if f.label:
        argv += ["-L", f.label]
    if p.get("block_size"):
        argv += ["-b", f"size={p['block_size']}"]
    data = []
    if p.get("agcount") and f.scale == 1.0:
        data.append(f"agcount={p['agcount']}")
    if p.get("stripe_unit"):  # xfs_info's blocks -> mkfs's 512-byte sectors
        bs = p.get("block_size") or 4096
        data += [f"sunit={p['stripe_unit'] * bs // 512}",
                 f"swidth={(p.get('stripe_width') or p['stripe_unit']) * bs // 512}"]
    if data:
        argv += ["-d", ",".join(data)]
    inode = [f"size={p['inode_size']}"] if p.get("inode_size") else []
    inode += [f"{k}={p[k]}" for k in XFS_INODE if k in p]
    if inode:
        argv += ["-i", ",".join(inode)]
    if p.get("sector_size"):
        argv += ["-s", f"size={p['sector_size']}"]
    if p.get("ftype") is not None:
        argv += ["-n", f"ftype={p['ftype']}"]
    if p.get("log_blocks") and f.scale == 1.0:
        argv += ["-l", f"size={p['log_blocks']}b"]
    return [Step(argv + [f.path])]


def _btrfs(f: "Format") -> list[Step]:
    p = f.params
    argv = ["mkfs.btrfs", "-f", "-q"]
    if f.uuid:
        argv += ["-U", f.uuid]
    if f.label:
        argv += ["-L", f.label]
    if p.get("node_size"):
        argv += ["-n", str(p["node_size"])]
    if p.get("sector_size"):
        argv += ["-s", str(p["sector_size"])]
    if p.get("csum_type"):
        argv += ["--csum", p["csum_type"]]
    if p.get("data_profile") in BTRFS_PROFILES:
        argv += ["-d", p["data_profile"]]
    if p.get("metadata_profile") in BTRFS_PROFILES:
        argv += ["-m", p["metadata_profile"]]
    if p.get("features"):
        want = [BTRFS_O[x] for x in p["features"] if x in BTRFS_O]
        want += [f"^{d}" for d in BTRFS_O_DEFAULTS if d not in want]
        argv += ["-O", ",".join(want)]
    if "ro_features" in p or p.get("features"):
        fst = "free_space_tree" in (p.get("ro_features") or [])
        argv += ["-R", "free-space-tree" if fst else "^free-space-tree"]
    steps = [Step(argv + [f.path])]
    subvols = creation_order(f.subvolumes or [])
    default = (f.default_subvolume or {}).get("path")
    if subvols or default:
        mnt = f.workdir
        steps += [Step(["mkdir", "-p", mnt]), Step(["mount", "-t", "btrfs", f.path, mnt])]
        paths = {s["path"] for s in subvols}
        for s in subvols:
            parent = os.path.dirname(s["path"])
            if parent and parent not in paths:
                # in a plain directory of its parent (@/var/lib/machines):
                # the directory is made first, the restore fills in the rest
                steps.append(Step(["mkdir", "-p", os.path.join(mnt, parent)]))
            steps.append(Step(["btrfs", "subvolume", "create",
                               os.path.join(mnt, s["path"])]))
        if default:
            steps.append(Step(["btrfs", "subvolume", "set-default",
                               os.path.join(mnt, default)]))
        steps.append(Step(["umount", mnt]))
    return steps


def creation_order(subvols: list[dict]) -> list[dict]:
    """Subvolumes in the order that gives each its original id: btrfs numbers
    them 256, 257, ... as they are made, and an fstab or boot loader entry may
    name one by id (subvolid=).  Lowest id first, but never before the
    subvolume it is inside."""
    pending = sorted(subvols, key=lambda s: s["id"])
    ids = {s["id"] for s in subvols}
    made, out = {5}, []
    while pending:
        ready = next((s for s in pending
                      if s.get("parent_id") in made or s.get("parent_id") not in ids),
                     pending[0])
        pending.remove(ready)
        made.add(ready["id"])
        out.append(ready)
    return out


def _vfat(f: "Format") -> list[Step]:
    argv = ["mkfs.vfat"]
    if f.params.get("fat_size"):
        argv += ["-F", str(f.params["fat_size"])]
    if f.uuid:
        argv += ["-i", f.uuid.replace("-", "")]
    if f.label:
        argv += ["-n", f.label]
    return [Step(argv + [f.path])]


def _swap(f: "Format") -> list[Step]:
    argv = ["mkswap", "-f"]
    if f.uuid:
        argv += ["-U", f.uuid]
    if f.label:
        argv += ["-L", f.label]
    return [Step(argv + [f.path])]


MKFS = {"ext2": _ext, "ext3": _ext, "ext4": _ext, "xfs": _xfs, "btrfs": _btrfs,
        "vfat": _vfat, "swap": _swap}


@dataclass
class Format(Action):
    device: str = ""  # id of the partition, disk, array, LV or LUKS mapping
    path: str = ""
    fstype: str = ""
    uuid: str | None = None
    label: str | None = None
    params: dict = field(default_factory=dict)
    scale: float = 1.0  # new size / original size of the device under it
    subvolumes: list[dict] = field(default_factory=list)  # btrfs
    default_subvolume: dict | None = None  # btrfs
    workdir: str = ""  # btrfs: where it is mounted to make the subvolumes
    notes: list[str] = field(default_factory=list)
    type = "format"

    def fields(self) -> dict:
        d = super().fields()
        if d.get("scale") == 1.0:
            del d["scale"]
        if not self.subvolumes and not self.default_subvolume:
            d.pop("workdir", None)
        if self.subvolumes:  # the plan shows what is made, not the old ids
            d["subvolumes"] = [s["path"] for s in self.subvolumes]
        if self.default_subvolume:
            d["default_subvolume"] = self.default_subvolume.get("path")
        return d

    def steps(self):
        return MKFS[self.fstype](self)

    def execute(self, runner: Runner):
        steps = self.steps()
        if "umount" not in [s.argv[0] for s in steps] or runner.dry_run:
            return self.run_steps(runner, steps)
        try:
            self.run_steps(runner, steps)
        except BaseException:
            # never leave the scratch mount behind: a re-run's mkfs would fail
            if os.path.ismount(self.workdir):
                runner.run(["umount", self.workdir], check=False)
            raise

    def still_done(self, runner: Runner) -> bool:
        if not self.uuid or runner.dry_run:
            return True
        res = runner.run(["blkid", "-p", "-o", "value", "-s", "UUID", self.path], check=False)
        found = res.text.strip()
        if found.lower() != self.uuid.lower():
            log.info("%s: the journal says done, but %s carries UUID %r, not %s: made again",
                     self.id, self.path, found, self.uuid)
            return False
        return True


def _mounted(source: str, target: str) -> bool:
    try:
        st = os.stat(source)
    except OSError:
        return False
    with open("/proc/self/mounts") as f:
        for line in f:
            src, mp = line.split()[:2]
            if mp.replace("\\040", " ") != target:
                continue
            try:
                if os.stat(src).st_rdev == st.st_rdev:
                    return True
            except OSError:
                continue
    return False


@dataclass
class Mount(Action):
    filesystem: str = ""  # id of the filesystem (its Format action is format-ID)
    path: str = ""
    fstype: str = ""
    mountpoint: str = ""  # as on the original system
    target: str = ""  # where it is mounted now
    options: str | None = None
    type = "mount"
    journaled = False  # mounting again is what a re-run needs

    def steps(self):
        argv = ["mount", "-t", self.fstype]
        if self.options:
            argv += ["-o", self.options]
        return [Step(["mkdir", "-p", self.target]), Step(argv + [self.path, self.target])]

    def execute(self, runner: Runner):
        if not runner.dry_run and _mounted(self.path, self.target):
            log.info("%s is already mounted on %s", self.path, self.target)
            return
        super().execute(runner)
