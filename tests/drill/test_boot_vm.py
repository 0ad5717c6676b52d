"""The drill's control: a source system as it was backed up does NOT boot on the
drill's hardware.

The source systems make their initramfs with MODULES=dep (as a site's
tuned system would): it carries the storage drivers of the machine it was
built on (virtio) and no others.  On q35 with SATA disks its initramfs never
sees the root filesystem, so a drill system that boots after recovery booted
because finalize made a new initramfs, not because the hardware change was
no change.  boot.boot stops at the initramfs shell (a dead end) instead of
waiting for the timeout; the disks are attached snapshot=on and the cache
is untouched.  The initramfs's 180 s wait is cut after 60 s.
"""

from __future__ import annotations

import hashlib

import pytest

from .boot import WAIT_ROOT, alerts, boot
from .systems import source_system

pytestmark = pytest.mark.vm


def _head_hash(path, n=1 << 20):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(n)).hexdigest()


def test_a_source_system_unfinalized_does_not_find_its_root_on_sata():
    src = source_system("a")
    before = [(_head_hash(d), d.stat().st_mtime) for d in src.disks]
    b = boot([(d, "sata") for d in src.disks], firmware=src.firmware, ovmf_vars=src.ovmf_vars,
             mac="52:54:00:d1:0f:0a", machine="q35", nic_addr=5, timeout=600,
             root_wait=60)
    assert not b.ok, "booted on SATA without finalize: the drill's hardware change proves nothing"
    # GRUB and the kernel came up: it is the root filesystem the initramfs cannot see
    # (its shell, or Debian's 180 s wait cut after 60 s: enough under TCG)
    assert b.stuck in ("dropped to the initramfs shell",
                       "the initramfs waited 60 s for the root filesystem"), b.explain()
    assert "Linux version" in b.console and WAIT_ROOT in b.console, b.explain()
    if b.stuck == "dropped to the initramfs shell":
        assert any("does not exist" in a for a in alerts(b.console)), b.explain()
    assert "sd 0:0:0:0" not in b.console and "nvme0n1" not in b.console, b.explain()
    assert [(_head_hash(d), d.stat().st_mtime) for d in src.disks] == before
