"""Partition tables: the sfdisk script that recreates one, GPT or MBR.

sfdisk takes every partition at its original start and size (in sectors), so
alignment, gaps, GPT type GUIDs, PARTUUIDs, names and attribute bits come
back as they were; for MBR the disk id brings back the PARTUUIDs (DISKID-NN)
and extended/logical partitions are written at their original places.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from essentials.errors import AmdrError
from essentials.runner import Runner

from . import devnodes
from .actions import Action, Step

log = logging.getLogger(__name__)

GPT_ENTRIES_BYTES = 128 * 128  # the partition entry array, at both ends
DOS_MAX_SECTORS = 2 ** 32  # an MBR cannot address beyond this
EXTENDED_TYPES = {"5", "05", "f", "0f", "85"}


def norm_id(table_id: str | None) -> str | None:
    """A table id as sfdisk and the layout may write it: GPT GUIDs in any case,
    MBR ids with or without 0x."""
    if not table_id:
        return None
    t = table_id.lower()
    return t[2:] if t.startswith("0x") else t


def read_table(runner: Runner, device: str):
    """(label, id, [(start, size)...]) of the table on the device now, or None."""
    res = runner.run(["sfdisk", "--json", device], check=False)
    if res.returncode != 0 or not res.text.strip():
        return None
    try:
        pt = json.loads(res.text)["partitiontable"]
    except (ValueError, KeyError):
        return None
    return (pt.get("label"), norm_id(pt.get("id")),
            sorted((int(p["start"]), int(p["size"])) for p in pt.get("partitions") or []))


def partition_path(disk: str, number: int) -> str:
    """Kernel naming: sda -> sda1, nvme0n1 / loop0 / mmcblk0 / md0 -> ...p1."""
    return f"{disk}p{number}" if disk[-1].isdigit() else f"{disk}{number}"


def gpt_backup_sectors(sector_size: int) -> int:
    """Sectors the backup GPT (entries + header) takes at the end of the disk."""
    return -(-GPT_ENTRIES_BYTES // sector_size) + 1


def usable_end(label: str, total_sectors: int, sector_size: int) -> int:
    """The first sector past the space partitions may use."""
    if label == "gpt":
        return total_sectors - gpt_backup_sectors(sector_size)
    return min(total_sectors, DOS_MAX_SECTORS)


def table_end(ptable: dict) -> int:
    """The first sector past the last partition."""
    return max((p["start"] + p["size"] for p in ptable.get("partitions") or []), default=0)


def is_extended(ptable: dict, part: dict) -> bool:
    if ptable.get("label") != "dos":
        return False
    if part.get("kind"):
        return part["kind"] == "extended"
    return str(part.get("type", "")).lower() in EXTENDED_TYPES


def required_bytes(disk: dict) -> int:
    """Bytes a disk needs to hold its partitions where they were."""
    pt = disk.get("ptable")
    ss = disk.get("sector_size") or 512
    if not pt or not pt.get("partitions"):
        return disk["size"]
    extra = gpt_backup_sectors(ss) if pt["label"] == "gpt" else 0
    return (table_end(pt) + extra) * ss


@dataclass
class Partition:
    number: int
    path: str
    start: int
    size: int
    type: str
    uuid: str | None = None
    name: str | None = None
    attrs: str | None = None
    bootable: bool | None = None
    kind: str | None = None  # primary|extended|logical (MBR)


@dataclass
class PartitionTable(Action):
    device: str = ""
    disk: str = ""  # id of the original disk (or MD array) this recreates
    label: str = "gpt"
    label_id: str | None = None
    first_lba: int | None = None
    last_lba: int | None = None
    partitions: list[Partition] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    type = "partition_table"

    def fields(self) -> dict:
        d = super().fields()
        d["partitions"] = [{k: v for k, v in p.items() if v is not None}
                           for p in d.get("partitions", [])]
        return d

    def script(self) -> str:
        gpt = self.label == "gpt"
        lines = [f"label: {self.label}"]
        if self.label_id:
            lines.append(f"label-id: {self.label_id}")
        if gpt and self.first_lba is not None:
            lines.append(f"first-lba: {self.first_lba}")
        if gpt and self.last_lba is not None:
            lines.append(f"last-lba: {self.last_lba}")
        lines.append("unit: sectors")
        lines.append("")
        for p in self.partitions:
            fields = [f"start={p.start}", f"size={p.size}", f"type={p.type}"]
            if p.uuid and gpt:
                fields.append(f"uuid={p.uuid}")
            if p.name and gpt:
                fields.append('name="' + p.name.replace('"', "") + '"')
            if p.attrs and gpt:
                fields.append(f'attrs="{p.attrs}"')
            if p.bootable and not gpt:
                fields.append("bootable")
            lines.append(f"{p.path} : " + ", ".join(fields))
        return "\n".join(lines) + "\n"

    def steps(self):
        # the kernel here does not rescan by itself: partx -u (PLATFORM.md)
        return [
            Step(["sfdisk", "--quiet", "--no-reread", "--wipe", "always",
                  "--wipe-partitions", "always", self.device], self.script()),
            Step(["partx", "-u", self.device]),
        ]

    def resume_steps(self):
        return [Step(["partx", "-u", self.device])]

    def still_done(self, runner: Runner) -> bool:
        """The journal says done: is this table (type, id, every partition's
        place) still what the disk carries?  A disk wiped or replaced since is
        partitioned again, not trusted to the journal."""
        if runner.dry_run:
            return True
        now = read_table(runner, self.device)
        want = (self.label, norm_id(self.label_id),
                sorted((p.start, p.size) for p in self.partitions))
        if now is None or (now[0], now[1] if self.label_id else None, now[2]) != \
                (want[0], want[1], want[2]):
            log.info("%s: the journal says done, but %s carries %s, not the planned %s: "
                     "made again", self.id, self.device, now, want)
            return False
        return True

    def after(self, runner: Runner):
        if runner.dry_run:
            return
        # the extended container has a node too, but nothing is made on it
        paths = [p.path for p in self.partitions]
        missing = devnodes.wait_for(paths, timeout=3)
        if missing:  # the kernel did not take the table in: ask it again
            runner.run(["partx", "-a", self.device], check=False)
            missing = devnodes.wait_for(missing, timeout=10)
        if missing:
            raise AmdrError(f"{', '.join(missing)} did not appear after partitioning "
                            f"{self.device}; run 'partx -a {self.device}' and retry")
