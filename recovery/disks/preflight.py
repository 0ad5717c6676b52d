"""The first action of every plan: everything checked before the first wipe.

Every tool the plan will run must be installed (blivet's `availability`:
declared up front, checked before starting), a btrfs UUID or an LVM PV UUID
must not be on a disk that stays (mkfs.btrfs and pvcreate refuse a UUID they
see elsewhere: the original disk, still attached beside its replacement), and
a LUKS passphrase that is to be typed is asked now, not after the disks were
already wiped.  Any other UUID the plan recreates (a filesystem, swap, a
LUKS container, an MD array) that a disk which stays carries too is a
warning: the recreation works, but the restored system, booted with both
disks attached, may mount or assemble the old one.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass, field

from essentials import doctor
from essentials.errors import AmdrError
from essentials.runner import Runner

from .actions import Action

log = logging.getLogger(__name__)

def tools_of(actions) -> list[str]:
    out = []
    for a in actions:
        for s in a.steps():
            if s.argv[0] not in out:
                out.append(s.argv[0])
        for s in a.resume_steps():
            if s.argv[0] not in out:
                out.append(s.argv[0])
    return out


@dataclass
class Preflight(Action):
    tools: list[str] = field(default_factory=list)
    passphrase_for: list[str] = field(default_factory=list)  # LUKS ids needing one
    unique_uuids: list[str] = field(default_factory=list)  # btrfs: must not be elsewhere
    unique_pv_uuids: list[str] = field(default_factory=list)  # LVM PVs: likewise
    wiped: list[str] = field(default_factory=list)  # the disks the plan wipes
    # [uuid, what it is]: warned about when a disk that stays carries it
    other_uuids: list[list[str]] = field(default_factory=list)
    type = "preflight"
    journaled = False
    passphrase = None  # stack.Passphrase, asked here when set

    def steps(self):
        return []

    def execute(self, runner: Runner):
        # installed and running (probed: the inventory's doctor), before the first wipe
        doctor.require(self.tools, "the disk plan")
        clashes = [] if runner.dry_run else self.clashes(runner)
        if clashes:
            raise AmdrError("nothing was changed: " + "; ".join(clashes))
        for w in [] if runner.dry_run else self.duplicates(runner):
            log.warning("%s", w)
            print(f"warning: {w}", file=sys.stderr)
        if self.passphrase is not None and self.passphrase_for and not runner.dry_run:
            self.passphrase()

    def on_wiped_disk(self, dev: str) -> bool:
        real = os.path.realpath(dev)
        for d in self.wiped:
            d = os.path.realpath(d)
            rest = real[len(d):]
            if real == d or (real.startswith(d) and rest.lstrip("p").isdigit()):
                return True
        return False

    def elsewhere(self, runner: Runner, uuid: str) -> list[str]:
        """Devices on disks the plan does not wipe that carry this UUID."""
        res = runner.run(["blkid", "-c", "/dev/null", "-o", "device", "-t", f"UUID={uuid}"],
                         check=False)
        return [dev for dev in res.text.split() if not self.on_wiped_disk(dev)]

    def duplicates(self, runner: Runner) -> list[str]:
        out = []
        for uuid, what in self.other_uuids:
            for dev in self.elsewhere(runner, uuid):
                out.append(f"{dev}, on a disk this plan does not touch, carries the UUID "
                           f"{uuid} of {what}, which the plan recreates: detach that disk "
                           f"before the restored system boots, or it may mount or assemble "
                           f"the old one")
        return out

    def clashes(self, runner: Runner) -> list[str]:
        out = []
        for uuid, what, tool in ([(u, "btrfs UUID", "mkfs.btrfs") for u in self.unique_uuids]
                                 + [(u, "LVM physical volume UUID", "pvcreate")
                                    for u in self.unique_pv_uuids]):
            for dev in self.elsewhere(runner, uuid):
                out.append(f"{dev} carries the {what} {uuid} the plan recreates, and "
                           f"{tool} refuses a UUID it finds on another device: detach "
                           f"that disk or wipe it (wipefs -a {dev})")
        return out


def blkid_uuid(uuid: str) -> str:
    """An MD array's UUID as blkid shows its members' (mdadm writes 8:8:8:8)."""
    if re.fullmatch(r"[0-9a-fA-F]{8}(:[0-9a-fA-F]{8}){3}", uuid or ""):
        h = uuid.replace(":", "").lower()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return uuid
