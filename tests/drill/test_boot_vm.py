"""boot.boot end to end: a cached source system booted from its own disks on
other hardware than it was built on (q35, SATA, the NIC in another slot with
another MAC), disks attached snapshot=on so the cache is untouched."""

from __future__ import annotations

import hashlib

import pytest

from .boot import boot
from .systems import source_system

pytestmark = pytest.mark.vm


def _head_hash(path, n=1 << 20):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(n)).hexdigest()


def test_layout_a_boots_on_q35_sata_and_leaves_its_disks_alone():
    src = source_system("a")
    before = [(_head_hash(d), d.stat().st_mtime) for d in src.disks]
    b = boot([(d, "sata") for d in src.disks], firmware=src.firmware, ovmf_vars=src.ovmf_vars,
             mac="52:54:00:d1:0f:0a", machine="q35", nic_addr=5, timeout=600)
    assert b.ok and b.complete, b.explain()
    assert b.host == src.host and b.root.startswith("/dev/sd"), b.explain()
    assert set(src.mounts) <= set(b.mountpoints), b.explain()
    assert b.swaps, b.explain()
    # the job unit has no share here: it must not have run
    assert b.job_exit is None, b.explain()
    # ifupdown names ens3; on q35 slot 5 the NIC has another name, so no address (yet)
    assert any(link["mac"] == "52:54:00:d1:0f:0a" for link in b.links), b.explain()
    assert [(_head_hash(d), d.stat().st_mtime) for d in src.disks] == before
