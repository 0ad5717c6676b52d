"""The disks present on the machine recovery runs on (the one place it reads them).

One `lsblk --json -b -O` of everything, the /dev/disk/by-id names of each
disk, and why a disk must not be wiped (the live system's disk, a mounted
filesystem or active swap on it); mapping.match_disks() takes it from there.
"""

from __future__ import annotations

import json
import os

from essentials.runner import Runner

from . import guard

BY_ID = "/dev/disk/by-id"


def by_id_names(directory: str = BY_ID) -> dict[str, list[str]]:
    """Device path -> its names under /dev/disk/by-id (none without udev)."""
    out: dict[str, list[str]] = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for n in names:
        out.setdefault(os.path.realpath(os.path.join(directory, n)), []).append(n)
    return out


def collect(runner: Runner) -> tuple[list[dict], dict[str, list[str]]]:
    """(top-level disk and loop nodes, present path -> reasons it is refused)."""
    text = runner.output(["lsblk", "--json", "-b", "-O"])
    top = [d for d in json.loads(text or '{"blockdevices": []}').get("blockdevices", [])
           if d.get("type") in ("disk", "loop")]
    names = by_id_names()
    boot = guard.system_disks(runner)
    mounts = guard._mounts()
    swaps = guard._swaps()
    refused = {}
    for d in top:
        real = os.path.realpath(d["path"])
        d["by_id"] = names.get(real, [])
        reasons = []
        if real in boot:
            reasons.append(f"{d['path']} holds the running system (it is the disk this "
                           f"system booted from)")
        reasons += guard.busy_in_tree(d, mounts, swaps)
        if reasons:
            refused[d["path"]] = reasons
    return top, refused
