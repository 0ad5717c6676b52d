"""The live image (image/, `make iso`): built once per content hash, then
booted under qemu as a person would: from a CD with SeaBIOS and with OVMF,
and the same file as a USB disk (the isohybrid path), with 2 GiB of memory.

Each boot is judged by its serial console alone: GRUB's menu shows there,
the kernel and systemd use it, the doctor's line appears before anyone logs
in, and the recovery console (tmux) attaches by itself.  The seconds from
power-on to the doctor's line are printed (goal: 60 s under TCG)."""

from __future__ import annotations

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


def boot(iso, tmp_path: Path, *, firmware: str, medium: str) -> tuple[str, float, float]:
    """Power on with the ISO as `medium` ("cd" or "usb"); returns the console,
    the seconds to the doctor's line and to the recovery console."""
    path = Path(iso["path"])
    console = tmp_path / "console.txt"
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
                     nic=Nic(), extra=extra)
    doctor_at = ui_at = None
    with Machine(argv, console, tmp_path / "qemu.err") as m:
        while m.seconds < BOOT_LIMIT_S and m.poll() is None:
            text = m.console_text()
            if doctor_at is None and "tools checked" in text:
                doctor_at = m.seconds
            if doctor_at is not None and "a shell" in text[text.index("tools checked"):]:
                ui_at = m.seconds
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
    text, doctor_at, ui_at = boot(iso, tmp_path, firmware=firmware, medium=medium)
    version = image_build.version()
    # GRUB's menu on the serial line (a headless server shows it too)
    assert f"amanda-dr live {version}" in text.split("tools checked")[0], text[:3000]
    # every tool of the inventory there and running
    m = re.search(rf"amanda-dr live {re.escape(version)}: (\d+) tools checked, (.*)", text)
    assert m and m.group(2).startswith("all present"), text[-3000:]
    assert int(m.group(1)) >= 20
    # no password asked for: the console logged in by itself and went to the
    # recovery's tmux (its status line: the session's windows)
    after = text.split("tools checked")[1]
    assert "(automatic login)" in after and "Password:" not in after, after[:2000]
    assert "0:recovery" in after and "1:shell" in after, after[-2000:]
