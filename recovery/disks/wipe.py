"""Wiping a mapped disk: what the new disk holds now, removed before anything is made.

A disk that held another system can carry active MD arrays, LVM volumes and
open LUKS mappings (a live system assembles and activates what it finds),
old RAID superblocks and LVM labels in its partitions, and signatures that
would make blkid, udev or mdadm see the old devices again once the new
partitions land on the same sectors.  The plan lists what it found (from
lsblk of the new disk) so the person sees it before confirming.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from essentials.errors import AmdrError
from essentials.layout import probes
from essentials.runner import Runner

from . import devnodes
from .actions import Action, Step

log = logging.getLogger(__name__)

RAID_TYPES = ("raid", "linear", "md")


def _walk(node: dict, depth: int = 0):
    for c in node.get("children") or []:
        yield c, depth + 1
        yield from _walk(c, depth + 1)


def inventory(node: dict | None) -> tuple[list[dict], list[dict]]:
    """(holders to stop, deepest first; its partitions and what lsblk saw on
    them) of the new disk's lsblk node (`lsblk --json -b -O`)."""
    if not node:
        return [], []
    holders, parts, seen = [], [], set()
    for c, depth in _walk(node):
        t = str(c.get("type") or "")
        path = c.get("path")
        if t == "part":
            # every one: lsblk knows FSTYPE only from udev, which a rescue
            # system may not run; wipefs on a blank partition does nothing
            parts.append({"path": path, "fstype": c.get("fstype")})
            continue
        if path in seen:
            continue
        seen.add(path)
        holders.append({"path": path, "type": t, "name": c.get("name"), "depth": depth})
    holders.sort(key=lambda h: -h["depth"])
    for h in holders:
        del h["depth"]
    return holders, parts


@dataclass
class WipeDisk(Action):
    """Remove every signature on the disk: old stacks, partition tables, fs superblocks."""

    device: str = ""
    disk: str = ""  # id of the original disk recreated on it
    also: list[str] = field(default_factory=list)  # further disks merged onto it (merge.py)
    matched: str | None = None  # why this disk was chosen
    holders: list[dict] = field(default_factory=list)
    old_partitions: list[dict] = field(default_factory=list)
    disk_fstype: str | None = None  # a whole-disk signature found on it
    type = "wipe"

    def steps(self):
        s = []
        for h in self.holders:  # deepest first: an LV before the array under it
            if h["type"].startswith(RAID_TYPES):
                s.append(Step(["mdadm", "--stop", h["path"]]))
            elif h["type"] == "crypt":
                s.append(Step(["cryptsetup", "close", h["name"]]))
            else:  # lvm and any other device-mapper device
                s.append(Step(["dmsetup", "remove", "--retry", h["name"]]))
        for p in self.old_partitions:
            if p["fstype"] == "linux_raid_member":
                s.append(Step(["mdadm", "--zero-superblock", "--force", p["path"]]))
            elif p["fstype"] == "LVM2_member":
                s.append(Step(["pvremove", "--force", "--force", "--yes", p["path"]]))
            s.append(Step(["wipefs", "--all", "--force", p["path"]]))
        if self.disk_fstype == "linux_raid_member":
            s.append(Step(["mdadm", "--zero-superblock", "--force", self.device]))
        elif self.disk_fstype == "LVM2_member":
            s.append(Step(["pvremove", "--force", "--force", "--yes", self.device]))
        s.append(Step(["wipefs", "--all", "--force", self.device]))
        return s

    def identity(self) -> dict:
        # what a wipe makes is a blank disk, whatever was on it before: a
        # re-run (which finds the new partitions there) must match
        d = {"id": self.id, "type": self.type, "device": self.device, "disk": self.disk}
        if self.also:
            d["also"] = self.also
        return d

    table = None  # the PartitionTable the plan lays on this disk next (not a field)
    whole = None  # else the action made on the whole disk (filesystem, PV, member...)

    def still_done(self, runner: Runner) -> bool:
        """Done, per the journal: only while the disk is blank or carries the
        very table (or whole-disk filesystem, PV, member) this plan made on
        it; anything else there now (a disk swapped, a table made by hand) is
        wiped again."""
        if runner.dry_run:
            return True
        made = self.table if self.table is not None else self.whole
        if made is not None and made.still_done(runner):
            return True
        res = runner.run(["blkid", "-p", "-o", "export", self.device], check=False)
        # (the disk exists: the guard checked every wiped disk before any action)
        why = probes.blkid_failure(res.returncode, res.text,
                                   res.stderr.decode("utf-8", "replace"), True)
        if why:
            log.warning("%s: cannot tell what is on %s (blkid -p %s): wiped again",
                        self.id, self.device, why)
            return False
        if res.returncode == 0:
            log.info("%s: the journal says wiped, but %s carries %s now: wiped again",
                     self.id, self.device, " ".join(res.text.split()))
            return False
        return True

    def execute(self, runner: Runner):
        if not runner.dry_run:
            # without udev an old partition can lack its node, or have a stale
            # one left by an earlier device of that name: wiping that would hit
            # whatever device now has its number
            for p in self.old_partitions:
                if not devnodes.ensure_node(p["path"]):
                    raise AmdrError(f"{p['path']} is no partition the kernel knows of now; "
                                    f"nothing on {self.device} was wiped")
        super().execute(runner)
