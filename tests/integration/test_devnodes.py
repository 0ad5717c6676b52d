"""Partition nodes come back without udev (real loop device, real kernel)."""

import os
import stat

import pytest

from recovery.disks import devnodes
from tests.lab.lab import sh

pytestmark = pytest.mark.integration


def test_missing_and_stale_nodes_are_recreated(tmp_path):
    img = tmp_path / "d.img"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    loop = sh(["losetup", "-f", "--show", str(img)]).strip()
    try:
        sh(["sfdisk", "-q", "--no-reread", loop], input="label: gpt\nsize=20MiB\nsize=20MiB\n")
        sh(["partx", "-a", loop], check=False)
        p1, p2 = f"{loop}p1", f"{loop}p2"
        assert devnodes.wait_for([p1, p2]) == []
        want = os.stat(p1).st_rdev
        os.unlink(p1)
        os.unlink(p2)
        os.mknod(p2, stat.S_IFBLK | 0o600, os.makedev(1, 3))  # a stale, wrong node
        assert devnodes.wait_for([p1, p2]) == []
        assert os.stat(p1).st_rdev == want
        assert os.major(os.stat(p2).st_rdev) == os.major(want)
        assert os.stat(p2).st_rdev != os.makedev(1, 3)
        assert devnodes.wait_for([f"{loop}p7"], timeout=0.5) == [f"{loop}p7"]
    finally:
        sh(["partx", "-d", loop], check=False)
        sh(["losetup", "-d", loop])
