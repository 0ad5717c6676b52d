"""The guard in front of every destructive step.

Never touched: the disk the running (live) system booted from, any disk with
a mounted filesystem or active swap on it or on one of its partitions, and
anything that is not a block device.  Each refusal names the device and why.
"""

from __future__ import annotations

import json
import os
import stat

from essentials.errors import RefusedError
from essentials.runner import Runner

# mountpoints whose backing disks belong to the running system
SYSTEM_MOUNTS = ("/", "/boot", "/boot/efi", "/run/live/medium", "/lib/live/mount/medium",
                 "/run/initramfs/live", "/cdrom")


def _mounts() -> list[tuple[str, str]]:
    out = []
    with open("/proc/self/mounts") as f:
        for line in f:
            src, target = line.split()[:2]
            out.append((src, target.replace("\\040", " ")))
    return out


def _disks_under(runner: Runner, dev: str) -> set[str]:
    """The whole disks a block device sits on (through partitions, LVM, MD...)."""
    res = runner.run(["lsblk", "-s", "-l", "-n", "-p", "-o", "PATH,TYPE", dev], check=False)
    out = set()
    for line in res.text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in ("disk", "loop"):
            out.add(os.path.realpath(parts[0]))
    return out


def system_disks(runner: Runner) -> set[str]:
    disks = set()
    for src, target in _mounts():
        if target in SYSTEM_MOUNTS and src.startswith("/dev/"):
            disks |= _disks_under(runner, src)
    return disks


def _swaps() -> set[str]:
    with open("/proc/swaps") as f:
        return {os.path.realpath(line.split()[0]) for line in f.readlines()[1:] if line.strip()}


def busy_in_tree(node: dict, mounts=None, swaps=None) -> list[str]:
    """Mounted filesystems and active swap on a device or anything on it (an
    lsblk --json node with its children)."""
    paths = {}

    def walk(devs):
        for d in devs:
            mps = [m for m in (d.get("mountpoints") or [d.get("mountpoint")]) if m]
            paths.setdefault(os.path.realpath(d["path"]), mps[0] if mps else None)
            walk(d.get("children") or [])

    walk([node])
    mounts = _mounts() if mounts is None else mounts
    swaps = _swaps() if swaps is None else swaps
    mounted = {os.path.realpath(s): t for s, t in mounts if s.startswith("/dev/")}
    reasons = []
    for p, mp in paths.items():
        target = mp or mounted.get(p)
        if target and target != "[SWAP]":
            reasons.append(f"{p} is mounted on {target}")
    for p in paths:
        if p in swaps:
            reasons.append(f"{p} is in use as swap")
    return reasons


def busy_reasons(runner: Runner, disk: str) -> list[str]:
    """Mounted filesystems and active swap on the disk or its partitions."""
    res = runner.run(["lsblk", "--json", "-p", "-o", "PATH,MOUNTPOINT", disk])
    reasons = []
    for node in json.loads(res.text).get("blockdevices", []):
        reasons += busy_in_tree(node)
    return reasons


def check_disks(runner: Runner, disks: list[str]):
    """Raise RefusedError unless every disk is safe to wipe."""
    problems = refusals(runner, disks)
    if problems:
        raise RefusedError("refusing to wipe, nothing was changed:\n  " + "\n  ".join(problems))


def refusals(runner: Runner, disks: list[str]) -> list[str]:
    """Why each disk may not be wiped (empty: all may); `plan` shows these too."""
    boot = system_disks(runner)
    problems = []
    for disk in disks:
        real = os.path.realpath(disk)
        try:
            if not stat.S_ISBLK(os.stat(real).st_mode):
                problems.append(f"{disk} is not a block device")
                continue
        except FileNotFoundError:
            problems.append(f"{disk} does not exist")
            continue
        if real in boot:
            problems.append(f"{disk} holds the running system (it is the disk this "
                            f"system booted from)")
            continue
        problems += busy_reasons(runner, real)
    if any(" is mounted on " in p for p in problems):
        problems.append("(unmount first; if an earlier diskinit mounted them: "
                        "amdr-recover umount --target DIR)")
    return problems


def disk_size(runner: Runner, disk: str) -> int:
    return int(runner.output(["blockdev", "--getsize64", disk]).strip())
