"""The qemu command line the harness builds (no qemu started: these run everywhere)."""

from pathlib import Path

import pytest

from .guest import root_device
from .qemu import DiskSpec, Firmware, Nic, Share, materialise, qemu_argv


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


def _devices(argv):
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]


def test_sata_disks_use_q35_ahci_ports_and_nvme_gets_a_serial(tmp_path):
    disks = [(Path("/d/a.img"), DiskSpec(64, bus="sata", serial="s0")),
             (Path("/d/b.img"), DiskSpec(64, bus="sata")),
             (Path("/d/c.img"), DiskSpec(64, bus="nvme", serial="n0")),
             (Path("/d/e.img"), DiskSpec(64, bus="nvme")),
             (Path("/d/r.img"), DiskSpec(64))]
    devices = _devices(qemu_argv(disks=disks, console=tmp_path / "c"))
    assert devices[1:] == ["ide-hd,drive=d0,bus=ide.0,serial=s0", "ide-hd,drive=d1,bus=ide.1",
                           "nvme,drive=d2,serial=n0", "nvme,drive=d3,serial=amdr-nvme3",
                           "virtio-blk-pci,drive=d4"]
    assert not any(d.startswith("ahci") for d in devices)


def test_sata_on_the_pc_machine_adds_an_ahci_controller(tmp_path):
    argv = qemu_argv(disks=[(Path("/d/a.img"), DiskSpec(64, bus="sata"))],
                     console=tmp_path / "c", machine="pc")
    assert _devices(argv)[1:] == ["ahci,id=ahci0", "ide-hd,drive=d0,bus=ahci0.0"]


def test_unknown_bus_is_refused():
    with pytest.raises(ValueError, match="bus"):
        DiskSpec(8, bus="scsi")


def test_ovmf_pflash_code_readonly_vars_writable(tmp_path):
    argv = qemu_argv(disks=[], console=tmp_path / "c",
                     firmware=Firmware(tmp_path / "VARS.fd"))
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives == ["if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd",
                      f"if=pflash,format=raw,unit=1,file={tmp_path}/VARS.fd"]


def test_the_nic_comes_first_among_pci_devices_at_its_slot(tmp_path):
    argv = qemu_argv(disks=[(Path("/d/a.img"), DiskSpec(64, bus="sata"))], console=tmp_path / "c",
                     machine="pc", nic=Nic(mac="52:54:00:aa:bb:cc", addr=3))
    assert argv[argv.index("-netdev") + 1] == "user,id=n0"
    devices = _devices(argv)
    assert devices[0] == "virtio-net-pci,netdev=n0,mac=52:54:00:aa:bb:cc,addr=0x3"
    assert argv.index("-netdev") < argv.index("-device")
    e1000 = _devices(qemu_argv(disks=[], console=tmp_path / "c",
                               nic=Nic(mac="52:54:00:00:00:01", addr=None, model="e1000e")))
    assert e1000[0] == "e1000e,netdev=n0,mac=52:54:00:00:00:01"


def test_no_nic_no_netdev(tmp_path):
    assert "-netdev" not in qemu_argv(disks=[], console=tmp_path / "c")


def test_guest_uefi_needs_a_vars_file_and_counts_only_virtio_disks_before_root():
    from .guest import Guest
    with pytest.raises(ValueError, match="ovmf_vars"):
        Guest(None, firmware="uefi")
    with pytest.raises(ValueError, match="firmware"):
        Guest(None, firmware="coreboot")


def test_guest_argv_with_sata_nvme_disks_uefi_and_a_nic(tmp_path):
    from .guest import Guest, GuestImage
    image = GuestImage(directory=tmp_path, kernel=tmp_path / "vmlinux", initrd=tmp_path / "initrd",
                       rootfs=tmp_path / "root.img", root_uuid="u", kernel_version="k", key="x")
    g = Guest(image, [DiskSpec(64, bus="sata"), DiskSpec(64, bus="virtio"), DiskSpec(64, bus="nvme")],
              firmware="uefi", ovmf_vars=tmp_path / "VARS.fd", nic=Nic(mac="52:54:00:00:00:09"))
    attached = [(tmp_path / f"d{i}.img", d) for i, d in enumerate(g.disks)]
    root = DiskSpec(path=image.rootfs, snapshot=True)
    argv = g.argv(attached, root, tmp_path / "console.log", [])
    # one virtio test disk before the root disk: root is vdb
    assert "root=/dev/vdb" in argv[argv.index("-append") + 1]
    assert argv[argv.index("-kernel") + 1] == str(tmp_path / "vmlinuz")  # EFI stub under OVMF
    assert any(a.startswith("if=pflash") and "VARS.fd" in a for a in argv)
    assert "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:09,addr=0x5" in argv
    bios = Guest(image, [DiskSpec(64)]).argv([(tmp_path / "d.img", DiskSpec(64))], root,
                                              tmp_path / "c", [])
    assert argv[0] and bios[bios.index("-kernel") + 1] == str(tmp_path / "vmlinux")
    assert "-netdev" not in bios and not any("pflash" in a for a in bios)
