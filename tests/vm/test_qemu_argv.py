"""The qemu command line the harness builds (no qemu started: these run everywhere)."""

from pathlib import Path

import pytest

from .guest import root_device
from .qemu import DiskSpec, Share, materialise, qemu_argv


def test_disks_keep_their_order_serials_and_snapshot(tmp_path):
    disks = [(Path("/d/a.img"), DiskSpec(64, serial="disk-a")),
             (Path("/d/root.img"), DiskSpec(path=Path("/d/root.img"), snapshot=True))]
    argv = qemu_argv(disks=disks, console=tmp_path / "console.log",
                     shares=[Share("project", Path("/work/main"))])
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert drives == ["file=/d/a.img,if=none,id=d0,format=raw,cache=unsafe",
                      "file=/d/root.img,if=none,id=d1,format=raw,cache=unsafe,snapshot=on"]
    assert "virtio-blk-pci,drive=d0,serial=disk-a" in devices
    assert "virtio-blk-pci,drive=d1" in devices
    assert argv[argv.index("-accel") + 1] == "tcg" and "-no-reboot" in argv
    virtfs = argv[argv.index("-virtfs") + 1]
    assert virtfs.startswith("local,path=/work/main,mount_tag=project,") and "readonly=on" in virtfs


def test_serials_longer_than_virtio_allows_are_refused():
    with pytest.raises(ValueError, match="at most 20"):
        DiskSpec(8, serial="x" * 21)
    with pytest.raises(ValueError):
        DiskSpec()


def test_blank_disks_are_sparse_and_kept_ones_reused(tmp_path):
    blank = materialise(DiskSpec(512), tmp_path, 0)
    assert blank.stat().st_size == 512 << 20 and blank.stat().st_blocks == 0
    kept = tmp_path / "kept.img"
    kept.write_bytes(b"x" * 4096)
    assert materialise(DiskSpec(64, path=kept), tmp_path, 1) == kept
    assert kept.stat().st_size == 4096  # an existing image is used as it is


def test_the_root_disk_follows_the_test_disks():
    assert [root_device(n) for n in (0, 2, 25, 26)] == ["/dev/vda", "/dev/vdc", "/dev/vdz",
                                                        "/dev/vdaa"]
