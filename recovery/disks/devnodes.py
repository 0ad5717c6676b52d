"""Device nodes for new partitions, with or without udev.

Without udev (rescue shells, containers, this lab) a partition the kernel
knows can lack its /dev node, or lose it to a late removal event of an
earlier device of the same name.  The kernel's number for it is in
/sys/class/block/NAME/dev, so the node can be made exactly as udev would.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

log = logging.getLogger(__name__)


def kernel_devnum(path: str) -> tuple[int, int] | None:
    try:
        text = (Path("/sys/class/block") / os.path.basename(path) / "dev").read_text()
    except OSError:
        return None
    major, minor = text.strip().split(":")
    return int(major), int(minor)


def ensure_node(path: str) -> bool:
    """Make sure path is the block device the kernel has under that name."""
    num = kernel_devnum(path)
    if num is None:
        return False
    dev = os.makedev(*num)
    try:
        st = os.stat(path)
        if stat.S_ISBLK(st.st_mode) and st.st_rdev == dev:
            return True
        os.unlink(path)  # a stale node of an earlier device
    except FileNotFoundError:
        pass
    log.info("creating device node %s (%d:%d)", path, *num)
    os.mknod(path, stat.S_IFBLK | 0o660, dev)
    os.chown(path, 0, 6)  # root:disk, as udev does
    return True


def wait_for(paths: list[str], timeout: float = 10.0) -> list[str]:
    """Wait until every partition exists; returns those that never did."""
    deadline = time.monotonic() + timeout
    missing = list(paths)
    while missing and time.monotonic() < deadline:
        missing = [p for p in missing if not ensure_node(p)]
        if missing:
            time.sleep(0.2)
    return missing
