"""The live image (image/, `make iso`): built once per content hash, then
booted under qemu as a person would: from a CD with SeaBIOS and with OVMF,
and the same file as a USB disk (the isohybrid path), with 2 GiB of memory.

Each boot is judged by its serial console alone: GRUB's menu shows there,
the kernel and systemd use it, the doctor's line appears before anyone logs
in, and the recovery console (tmux) attaches by itself.  The seconds from
power-on to the doctor's line are printed (goal: 60 s under TCG)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from image import build as image_build

from .qemu import Firmware, Machine, Nic, qemu_argv

pytestmark = pytest.mark.vm

ISO_LIMIT_MB = 700  # a CD-R
BOOT_LIMIT_S = 420  # a boot that has not shown the doctor line by then has failed


@pytest.fixture(scope="module")
def iso():
    m = image_build.build(say=lambda line: print(line, flush=True))
    print(f"ISO {m['path']}: {m['bytes'] / 1e6:.0f} MB, built in {m['seconds']} s "
          f"(Debian tree {m['root_seconds']} s); this run {m['this_run_seconds']} s")
    return m


def test_the_iso_is_one_hybrid_file_for_both_firmwares(iso):
    path = Path(iso["path"])
    assert iso["bytes"] <= ISO_LIMIT_MB * 1e6, f"{iso['bytes'] / 1e6:.0f} MB"
    et = subprocess.run(["xorriso", "-indev", str(path), "-report_el_torito", "plain"],
                        capture_output=True, text=True).stdout
    # El Torito: a BIOS entry and a UEFI entry (a CD on either firmware)
    assert re.search(r"El Torito boot img :\s+1\s+BIOS\s+y", et), et
    assert re.search(r"El Torito boot img :\s+2\s+UEFI\s+y", et), et
    # dd-ed onto a stick: a partition table with an EFI system partition
    table = subprocess.run(["sfdisk", "-l", str(path)], capture_output=True, text=True).stdout
    assert "EFI System" in table, table
    # and GRUB's hybrid MBR code in the first sector (BIOS from USB)
    mbr = path.read_bytes()[:512]
    assert mbr[510:512] == b"\x55\xaa" and mbr[:440].strip(b"\0"), "no MBR boot code"
    # the name the issue gives
    assert path.name == f"amanda-dr-live-{image_build.version()}.iso"


def boot(iso, tmp_path: Path, *, firmware: str = "bios", medium: str = "cd",
         append: str | None = None, then: str | None = None) -> tuple[str, float, float]:
    """Power on with the ISO as `medium` ("cd" or "usb"); returns the console,
    the seconds to the doctor's line and to the recovery console.  `append`:
    boot the ISO's kernel directly with this command line (the ISO stays the
    CD live-boot finds its system on), as a person edits GRUB's entry."""
    path = Path(iso["path"])
    console = tmp_path / "console.txt"
    kernel = initrd = None
    if append is not None:
        kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd.img"
        subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(path), "-extract",
                        "/live/vmlinuz", str(kernel), "-extract", "/live/initrd.img",
                        str(initrd)], check=True, capture_output=True)
    fw = None
    if firmware == "uefi":
        vars_ = tmp_path / "OVMF_VARS.fd"
        shutil.copy("/usr/share/OVMF/OVMF_VARS.fd", vars_)
        fw = Firmware(vars_)
    extra = []
    cdrom = None
    if medium == "cd":
        cdrom = path
    else:
        extra = ["-device", "qemu-xhci,id=xhci",
                 "-drive", f"if=none,id=stick,format=raw,file={path},snapshot=on",
                 "-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=0"]
    argv = qemu_argv(disks=[], console=console, mem_mb=2048, cdrom=cdrom, firmware=fw,
                     nic=Nic(), extra=extra, kernel=kernel, initrd=initrd, append=append)
    doctor_at = ui_at = None
    with Machine(argv, console, tmp_path / "qemu.err") as m:
        while m.seconds < BOOT_LIMIT_S and m.poll() is None:
            text = m.console_text()
            if doctor_at is None and "tools checked" in text:
                doctor_at = m.seconds
            if doctor_at is not None and "a shell" in text[text.index("tools checked"):]:
                if ui_at is None:
                    ui_at = m.seconds
                if then is None or then in text[text.index("tools checked"):]:
                    time.sleep(5)  # tmux draws its status line after the window
                    break
            time.sleep(0.5)
        text = m.console_text()
        err = m.qemu_stderr()
    assert doctor_at is not None, f"no doctor line in {BOOT_LIMIT_S} s:\n{text[-4000:]}\n{err}"
    assert ui_at is not None, f"the recovery console did not attach:\n{text[-4000:]}"
    print(f"{firmware} {medium}: doctor line after {doctor_at:.0f} s, recovery console after "
          f"{ui_at:.0f} s")
    return text, doctor_at, ui_at


@pytest.mark.parametrize("firmware, medium", [("bios", "cd"), ("uefi", "cd"),
                                              ("bios", "usb"), ("uefi", "usb")])
def test_it_boots_to_the_recovery_console(iso, tmp_path, firmware, medium):
    text, doctor_at, ui_at = boot(iso, tmp_path, firmware=firmware, medium=medium,
                                  then="No bundle found" if firmware == "bios" else None)
    version = image_build.version()
    # GRUB's menu on the serial line (a headless server shows it too)
    assert f"amanda-dr live {version}" in text.split("tools checked")[0], text[:3000]
    # every tool of the inventory there and running
    m = re.search(rf"amanda-dr live {re.escape(version)}: (\d+) tools checked, (.*)", text)
    assert m and m.group(2).startswith("all present"), text[-3000:]
    assert int(m.group(1)) >= 20
    # no password asked for: the console logged in by itself and went to the
    # recovery's tmux (its status line: the session's windows)
    after = text[text.index("tools checked"):]  # (the welcome shows the line again)
    assert "(automatic login)" in after and "Password:" not in after, after[:2000]
    assert "0:recovery" in after and "1:shell" in after, after[-2000:]
    if firmware == "bios":
        # then the recovery's screens, at the bundles screen: none was found here
        ui = text[text.rindex("amanda-dr recovery:"):]
        assert "Looked in: /run/live/medium, /media" in ui, ui[-2000:]
    if firmware == "bios" and medium == "cd":
        # the default network: DHCP on the wired link (qemu's user network)
        # (tmux may draw its status line between the heading and the address)
        shown = after[after.index("network:"):]
        assert re.search(r"\S+\s+UP\s+10\.0\.2\.15/24", shown), shown[:2000]
        assert re.search(r"default via 10\.0\.2\.2", shown), shown[:2000]


LIVE = "boot=live quiet console=tty0 console=ttyS0,115200n8"


@pytest.mark.parametrize("net, want, unwanted", [
    ("static:10.0.2.77/24,10.0.2.2,10.0.2.3", [r"\s+UP\s+10\.0\.2\.77/24",
                                              r"default via 10\.0\.2\.2"], "10.0.2.15"),
    ("none", [], "10.0.2."),
])
def test_the_network_the_kernel_command_line_asks_for(iso, tmp_path, net, want, unwanted):
    text, _, _ = boot(iso, tmp_path, append=f"{LIVE} amdr.net={net}")
    shown = text[text.rindex("network:"):]
    for w in want:
        assert re.search(w, shown), shown[:1500]
    assert unwanted not in shown.split("amdr-recover recover")[0], shown[:1500]


def test_two_builds_give_the_same_bytes(iso, tmp_path):
    """The ISO stage again from the same Debian tree, in a scratch cache: the
    same sha256 (every timestamp and id from SOURCE_DATE_EPOCH)."""
    base = tmp_path / "cache"
    base.mkdir()
    root = Path(image_build.cache_root()) / f"root-{iso['root_key']}"
    os.symlink(root, base / root.name)
    again = image_build.build(base=base, say=lambda line: None)
    assert (again["sha256"], again["bytes"]) == (iso["sha256"], iso["bytes"])


def test_the_debian_tree_builds_the_same_twice(iso):
    """The tree under the ISO (debootstrap, apt, the live setup's base) built a
    second time from the same key in a scratch cache: every path the same
    (type, mode, owner, bytes, link, device).  With the ISO stage's test above,
    two builds of one key give the same image.  The verdict is kept with the
    cached tree: one second build per key."""
    doc = image_build.verify_root(say=lambda line: print(line, flush=True))
    assert doc["differ_count"] == 0, "\n".join(doc["differ"])
    print(f"the Debian tree ({doc['paths']} paths) built twice: the same "
          f"(the second build {doc['seconds']} s)")
