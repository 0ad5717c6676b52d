"""The devices stacked on the partitions: MD RAID, LUKS, LVM.

Each comes back with the identity the old mdadm.conf, crypttab, fstab and
initramfs look for: the array UUID and name, the LUKS UUID, the PV, VG and
LV UUIDs (vgcfgrestore from the vgcfgbackup the collector kept, so every LV
lands on the same extents).  This kernel has no md or device-mapper: these
are rendered and unit-tested here and applied in the qemu tier.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable

from essentials.errors import AmdrError
from essentials.runner import Runner

from .actions import Action, Step

log = logging.getLogger(__name__)

MD_LEVELS = ("raid0", "raid1", "raid4", "raid5", "raid6", "raid10", "linear")
MD_METADATA = ("0.90", "1.0", "1.1", "1.2")
MD_CHUNKED = ("raid0", "raid4", "raid5", "raid6", "raid10")


def md_layout(level: str, layout: str | None) -> str | None:
    """mdadm --detail's 'near=2' -> --layout=n2; RAID5/6 layouts as printed."""
    if not layout:
        return None
    if level == "raid10":
        parts = []
        for item in layout.split(","):
            k, _, v = item.strip().partition("=")
            if k in ("near", "far", "offset") and v.isdigit():
                parts.append(f"{k[0]}{v}")
        return ",".join(parts) or None
    if level in ("raid5", "raid6", "raid4"):
        return layout
    return None


def _bare(uuid: str | None) -> str:
    """A UUID as mdadm (colons), blkid and LVM (dashes) write it, compared bare."""
    return str(uuid or "").replace(":", "").replace("-", "").lower()


def wait_paths(paths: list[str], timeout: float = 15.0) -> list[str]:
    """Paths that did not appear (udev makes LV, MD and mapper nodes)."""
    deadline = time.monotonic() + timeout
    missing = list(paths)
    while missing and time.monotonic() < deadline:
        missing = [p for p in missing if not os.path.exists(p)]
        if missing:
            time.sleep(0.2)
    return missing


@dataclass
class MdCreate(Action):
    path: str = ""  # /dev/md0, as on the original system
    array: str = ""  # id of the array in the layout
    level: str = "raid1"
    metadata: str | None = None
    uuid: str | None = None
    name: str | None = None
    chunk_size: int | None = None  # bytes
    layout: str | None = None
    bitmap: str | None = None
    raid_devices: int = 0
    members: list[str] = field(default_factory=list)  # paths by role, "missing" for a gap
    spares: list[str] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    type = "raid"

    def steps(self):
        argv = ["mdadm", "--create", self.path, "--run", f"--level={self.level}",
                f"--raid-devices={self.raid_devices}"]
        if self.metadata:
            argv.append(f"--metadata={self.metadata}")
        if self.uuid:
            argv.append(f"--uuid={self.uuid}")
        if self.name and self.metadata != "0.90":
            argv.append(f"--name={self.name}")
        if self.chunk_size and self.level in MD_CHUNKED:
            argv.append(f"--chunk={self.chunk_size // 1024}K")
        lay = md_layout(self.level, self.layout)
        if lay:
            argv.append(f"--layout={lay}")
        if self.level not in ("raid0", "linear"):
            argv.append(f"--bitmap={self.bitmap or 'none'}")
        if self.spares:
            argv.append(f"--spare-devices={len(self.spares)}")
        return [Step(argv + self.members + self.spares)]

    def still_done(self, runner: Runner) -> bool:
        """The journal says made: do the members still carry this array's UUID?"""
        if runner.dry_run or not self.uuid:
            return True
        for m in [m for m in self.members if m != "missing"]:
            res = runner.run(["mdadm", "--examine", "--export", m], check=False)
            found = dict(ln.split("=", 1) for ln in res.text.splitlines() if "=" in ln)
            if _bare(found.get("MD_UUID")) != _bare(self.uuid):
                log.info("%s: the journal says made, but %s is no member of %s now: made "
                         "again", self.id, m, self.uuid)
                return False
        return True

    def resume_steps(self):
        if os.path.exists(self.path):
            return []
        present = [m for m in self.members + self.spares if m != "missing"]
        return [Step(["mdadm", "--assemble", "--run", self.path, f"--uuid={self.uuid}"]
                     + present)]

    def after(self, runner: Runner):
        if not runner.dry_run and wait_paths([self.path]):
            raise AmdrError(f"{self.path} did not appear after mdadm --create")


class Passphrase:
    """The LUKS passphrase, asked once when first needed (never in a plan or log)."""

    def __init__(self, ask: Callable[[], str]):
        self._ask = ask
        self._value: bytes | None = None

    def __call__(self) -> bytes:
        if self._value is None:
            self._value = self._ask().encode()
        return self._value


@dataclass
class LuksFormat(Action):
    device: str = ""  # id of the device under it
    path: str = ""
    luks: str = ""  # id of the container in the layout
    version: int = 2
    uuid: str | None = None
    label: str | None = None
    subsystem: str | None = None
    cipher: str | None = None
    key_size: int | None = None
    hash: str | None = None
    pbkdf: str | None = None
    sector_size: int | None = None
    data_offset: int | None = None  # bytes
    key_file: str | None = None  # None: the passphrase, on stdin
    passphrase: Passphrase | None = field(default=None, repr=False, compare=False)
    type = "luks_format"

    def fields(self):
        d = super().fields()
        d.pop("passphrase", None)
        if self.key_file is None:
            d["key"] = "passphrase asked when applying"
        return d

    def key_args(self) -> tuple[list[str], Callable | None]:
        if self.key_file:
            return ["--key-file", self.key_file], None
        return ["--key-file", "-"], self.passphrase

    def steps(self):
        argv = ["cryptsetup", "luksFormat", "--batch-mode", "--type", f"luks{self.version}"]
        if self.uuid:
            argv += ["--uuid", self.uuid]
        if self.cipher:
            argv += ["--cipher", self.cipher]
        if self.key_size:
            argv += ["--key-size", str(self.key_size)]
        if self.hash:
            argv += ["--hash", self.hash]
        if self.version == 2:
            if self.pbkdf:
                argv += ["--pbkdf", self.pbkdf]
            if self.sector_size:
                argv += ["--sector-size", str(self.sector_size)]
            if self.label:
                argv += ["--label", self.label]
            if self.subsystem:
                argv += ["--subsystem", self.subsystem]
        if self.data_offset:
            argv += ["--offset", str(self.data_offset // 512)]
        keys, secret = self.key_args()
        return [Step(argv + keys + [self.path], secret_stdin=secret)]

    def still_done(self, runner: Runner) -> bool:
        if not self.uuid or runner.dry_run:
            return True
        res = runner.run(["cryptsetup", "luksUUID", self.path], check=False)
        return res.text.strip().lower() == self.uuid.lower()


@dataclass
class LuksOpen(Action):
    """Open the container under its original mapping name (crypttab's)."""

    luks: str = ""
    path: str = ""  # the container
    name: str = ""
    key_file: str | None = None
    passphrase: Passphrase | None = field(default=None, repr=False, compare=False)
    type = "luks_open"
    journaled = False  # an open mapping is gone after a reboot: open again

    def fields(self):
        d = super().fields()
        d.pop("passphrase", None)
        return d

    @property
    def mapper(self) -> str:
        return f"/dev/mapper/{self.name}"

    def steps(self):
        keys = ["--key-file", self.key_file] if self.key_file else ["--key-file", "-"]
        secret = None if self.key_file else self.passphrase
        return [Step(["cryptsetup", "open", "--type", "luks"] + keys + [self.path, self.name],
                     secret_stdin=secret)]

    def execute(self, runner: Runner):
        if not runner.dry_run and os.path.exists(self.mapper):
            log.info("%s is already open", self.mapper)
            return
        super().execute(runner)

    def after(self, runner: Runner):
        if not runner.dry_run and wait_paths([self.mapper]):
            raise AmdrError(f"{self.mapper} did not appear after cryptsetup open")


@dataclass
class LvmPv(Action):
    device: str = ""  # id of the device under it
    path: str = ""
    vg: str = ""  # id of its volume group
    uuid: str = ""
    restorefile: str | None = None  # the vgcfgbackup; None: an orphan PV
    type = "lvm_pv"

    def still_done(self, runner: Runner) -> bool:
        """The journal says made: is the PV label with its UUID still there?"""
        if runner.dry_run or not self.uuid:
            return True
        res = runner.run(["blkid", "-p", "-o", "value", "-s", "UUID", self.path], check=False)
        if _bare(res.text.strip()) != _bare(self.uuid):
            log.info("%s: the journal says made, but %s carries no PV %s now: made again",
                     self.id, self.path, self.uuid)
            return False
        return True

    def steps(self):
        argv = ["pvcreate", "--yes", "--uuid", self.uuid]
        argv += ["--restorefile", self.restorefile] if self.restorefile else ["--norestorefile"]
        return [Step(argv + [self.path])]


@dataclass
class LvmVg(Action):
    """vgcfgrestore: the VG and every LV (UUIDs, extents, thin pools) as they were."""

    vg: str = ""  # id in the layout
    name: str = ""
    restorefile: str = ""
    pvs: list[str] = field(default_factory=list)  # ids of the lvm_pv actions' devices
    grown: list[str] = field(default_factory=list)  # PV paths larger than before: pvresize
    thin: bool = False  # has thin pools: vgcfgrestore needs --force
    # per thin pool: name, metadata_bytes, transaction_id, devices, and the
    # thin_restore input (xml) written to xml_path when applying
    thin_pools: list[dict] = field(default_factory=list)
    lvs: list[str] = field(default_factory=list)  # LV paths it makes
    notes: list[str] = field(default_factory=list)
    type = "lvm_vg"

    def fields(self):
        d = super().fields()
        if "thin_pools" in d:
            d["thin_pools"] = [{k: v for k, v in p.items() if k != "xml"} for p in d["thin_pools"]]
        return d

    def thin_steps(self, pool: dict) -> list[Step]:
        """A pool's metadata LV from the vgcfgbackup alone holds nothing valid.
        lvmthin(7)'s metadata repair: a new LV swapped in makes the restored
        metadata LV visible under the new LV's name; an empty pool with the same
        thin device ids and transaction id is written into it and it is swapped
        back, so the pool keeps the metadata LV of the vgcfgbackup (its UUID
        and extents); the new LV, swapped out again, goes."""
        vg, name = self.name, pool["name"]
        tmp = f"amdr_meta_{name}"
        swap = Step(["lvconvert", "--yes", "--thinpool", f"{vg}/{name}", "--poolmetadata",
                     f"{vg}/{tmp}"])
        return [
            Step(["lvcreate", "--yes", "--activate", "n", "--zero", "n", "--size",
                  f"{pool['metadata_bytes']}b", "--name", tmp, vg]),
            swap,  # the restored metadata LV is now vg/tmp
            Step(["lvchange", "--yes", "--activate", "y", f"{vg}/{tmp}"]),
            Step(["thin_restore", "-i", pool["xml_path"], "-o", f"/dev/{vg}/{tmp}"]),
            Step(["lvchange", "--yes", "--activate", "n", f"{vg}/{tmp}"]),
            swap,  # and back in the pool; vg/tmp is the new LV again
            Step(["lvremove", "--yes", f"{vg}/{tmp}"]),
        ]

    def steps(self):
        argv = ["vgcfgrestore", "--file", self.restorefile]
        if self.thin:
            argv.append("--force")
        s = [Step(argv + [self.name])]
        s += [Step(["pvresize", p]) for p in self.grown]
        for pool in self.thin_pools:
            s += self.thin_steps(pool)
        # LVM makes /dev/VG/LV itself when no udev does
        s.append(Step(["vgchange", "--activate", "y", self.name]))
        return s

    def execute(self, runner: Runner):
        if not runner.dry_run:
            for pool in self.thin_pools:
                os.makedirs(os.path.dirname(pool["xml_path"]), exist_ok=True)
                with open(pool["xml_path"], "w") as f:
                    f.write(pool["xml"])
        super().execute(runner)

    def resume_steps(self):
        return [Step(["vgchange", "--activate", "y", self.name])]

    def after(self, runner: Runner):
        missing = [] if runner.dry_run else wait_paths(self.lvs)
        if missing:
            raise AmdrError(f"{', '.join(missing)} did not appear after activating "
                            f"volume group {self.name}")
