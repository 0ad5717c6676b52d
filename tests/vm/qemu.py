"""Start one qemu machine with given disks and shares, and stop it for sure.

Kept apart from the guest protocol (guest.py) because the live ISO is booted
with the same machinery: disks with serials, host directories shared over 9p,
the serial console captured to a file, a wall-clock limit that kills qemu.

Software emulation only (`-accel tcg`): this host's /dev/kvm exists but
`-enable-kvm` hangs.  Disks are virtio-blk with a serial each by default, so
the code under test can tell them apart by /dev/disk/by-id/virtio-SERIAL as it
would on a real machine; a disk can also sit on SATA (AHCI) or NVMe, and the
machine can boot OVMF (UEFI) and have a NIC, which the boot drill needs to
move a system onto other hardware.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

QEMU = "qemu-system-x86_64"
MAX_SERIAL = 20  # virtio-blk's serial field (VIRTIO_BLK_ID_BYTES)
_ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|[@-Z\\-_])")


@dataclass(frozen=True)
class DiskSpec:
    """A disk for the guest: a blank sparse file of size_mb, or an existing image.

    With `path` the file is kept after the run (created sparse when missing
    and size_mb is given), so a later boot or the test can inspect it; without
    it the disk is a temporary file removed with the run.  `snapshot` keeps
    the file unchanged whatever the guest writes.
    """

    size_mb: int | None = None
    path: Path | None = None
    serial: str | None = None
    format: str = "raw"
    snapshot: bool = False  # the guest's writes go to a throw-away overlay
    # "unsafe": the guest's flushes are not passed on to the host's disk.  A
    # flush there waits for whatever else the host is writing (seconds, when
    # other tests run); the file is complete anyway once qemu has exited.
    cache: str = "unsafe"
    # "virtio" (virtio-blk), "sata" (AHCI: q35's built-in ide.0..ide.5, or an
    # added ahci controller on the pc machine) or "nvme"
    bus: str = "virtio"

    def __post_init__(self):
        if self.size_mb is None and self.path is None:
            raise ValueError("DiskSpec needs size_mb or path")
        if self.bus not in BUSES:
            raise ValueError(f"disk bus {self.bus!r}: one of {', '.join(BUSES)}")
        if self.serial is not None and (len(self.serial) > MAX_SERIAL or "," in self.serial):
            raise ValueError(f"disk serial {self.serial!r}: at most {MAX_SERIAL} characters, "
                             "no comma")


BUSES = ("virtio", "sata", "nvme")
AHCI_PORTS = 6  # q35's ICH9 AHCI: ide.0 .. ide.5


@dataclass(frozen=True)
class Nic:
    """A NIC on qemu's user network (10.0.2.0/24, the host is 10.0.2.2).

    `addr` is the PCI slot: it decides the guest's interface name (ens3 on
    the pc machine's slot 3).  It comes first among the PCI devices, so the
    slot is free whatever else the machine has."""

    mac: str = "52:54:00:12:34:56"
    addr: int | None = 5
    model: str = "virtio-net-pci"
    hostfwd: tuple = ()  # e.g. ("tcp:127.0.0.1:2200-:2200",): the host reaches the guest


@dataclass(frozen=True)
class Firmware:
    """OVMF (UEFI) through pflash: the code read-only, the vars file writable.

    `vars` is the caller's own copy (it is written: boot entries, BootOrder)."""

    vars: Path
    code: Path = Path("/usr/share/OVMF/OVMF_CODE.fd")


@dataclass(frozen=True)
class Share:
    """A host directory the guest sees over 9p (virtfs)."""

    tag: str
    host_path: Path
    readonly: bool = True


def materialise(disk: DiskSpec, tmpdir: Path, index: int) -> Path:
    """The file backing `disk`: blank ones are made sparse (no space until written)."""
    path = Path(disk.path) if disk.path is not None else tmpdir / f"disk{index}.img"
    if not path.exists():
        if disk.size_mb is None:
            raise FileNotFoundError(f"disk image {path} does not exist and has no size_mb")
        if disk.format != "raw":
            subprocess.run(["qemu-img", "create", "-q", "-f", disk.format, str(path),
                            f"{disk.size_mb}M"], check=True)
        else:
            with open(path, "wb") as f:
                f.truncate(disk.size_mb << 20)
    return path


def qemu_argv(*, disks: list[tuple[Path, DiskSpec]], console: Path, mem_mb: int = 1024,
              cpus: int = 2, machine: str = "q35", cpu: str = "qemu64",
              kernel: Path | None = None, initrd: Path | None = None,
              append: str | None = None, cdrom: Path | None = None,
              shares: list[Share] = (), extra: list[str] = (), nic: Nic | None = None,
              firmware: Firmware | None = None, nodefaults: bool = True) -> list[str]:
    """The qemu command line.  Disks are attached in order, so the first is vda.

    q35 with -nodefaults: no floppy, IDE CD-ROM or parallel port for the guest
    kernel to probe (seconds under TCG), and the machine UEFI boots use too.
    The qemu64 CPU: under TCG a richer model (-cpu max) only makes the guest
    load more CPU-feature modules and benchmark more raid6 algorithms.
    Paths must not contain commas (qemu's option separator).
    Without `firmware` the machine boots SeaBIOS (or the -kernel given).
    """
    argv = [QEMU, "-accel", "tcg", "-machine", machine, "-cpu", cpu, "-m", str(mem_mb),
            "-smp", str(cpus)] + (["-nodefaults"] if nodefaults else []) + [
            "-nographic", "-monitor", "none", "-serial", f"file:{console}", "-no-reboot"]
    if firmware is not None:
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={firmware.code}",
                 "-drive", f"if=pflash,format=raw,unit=1,file={firmware.vars}"]
    if nic is not None:
        # first of the PCI devices: its slot must still be free (tests/drill/README.md, pitfall 6)
        dev = f"{nic.model},netdev=n0,mac={nic.mac}"
        if nic.addr is not None:
            dev += f",addr={nic.addr:#x}"
        argv += ["-netdev", "user,id=n0" + "".join(f",hostfwd={h}" for h in nic.hostfwd),
                 "-device", dev]
    # entropy from the host: without it the guest's getrandom() blocks
    # for seconds after boot (sfdisk, mkfs and cryptsetup all wait)
    argv += ["-device", "virtio-rng-pci"]
    if kernel:
        argv += ["-kernel", str(kernel)]
    if initrd:
        argv += ["-initrd", str(initrd)]
    if append:
        argv += ["-append", append]
    if cdrom:
        argv += ["-cdrom", str(cdrom)]
    argv += disk_argv(disks, machine)
    for s in shares:
        opts = (f"local,path={s.host_path},mount_tag={s.tag},security_model=none,"
                f"multidevs=remap")
        if s.readonly:
            opts += ",readonly=on"
        argv += ["-virtfs", opts]
    return argv + list(extra)


def disk_argv(disks: list[tuple[Path, DiskSpec]], machine: str = "q35") -> list[str]:
    """-drive/-device pairs in order.  SATA disks take the AHCI ports in turn:
    q35's built-in controller (ide.N); other machines get an `ahci` device."""
    argv, port, ahci = [], 0, None
    for i, (path, spec) in enumerate(disks):
        opts = f"file={path},if=none,id=d{i},format={spec.format},cache={spec.cache}"
        if spec.snapshot:
            opts += ",snapshot=on"
        argv += ["-drive", opts]
        if spec.bus == "virtio":
            dev = f"virtio-blk-pci,drive=d{i}"
            if spec.serial:
                dev += f",serial={spec.serial}"
        elif spec.bus == "nvme":
            dev = f"nvme,drive=d{i},serial={spec.serial or f'amdr-nvme{i}'}"
        else:
            if port >= AHCI_PORTS:
                raise ValueError(f"at most {AHCI_PORTS} SATA disks")
            if machine.startswith("q35"):
                bus = f"ide.{port}"
            else:
                if ahci is None:
                    ahci = "ahci0"
                    argv += ["-device", f"ahci,id={ahci}"]
                bus = f"{ahci}.{port}"
            port += 1
            dev = f"ide-hd,drive=d{i},bus={bus}"
            if spec.serial:
                dev += f",serial={spec.serial}"
        argv += ["-device", dev]
    return argv


class Machine:
    """One qemu process: started, waited for with a limit, always reaped."""

    def __init__(self, argv: list[str], console: Path, stderr_path: Path):
        if not shutil.which(argv[0]):
            raise FileNotFoundError(f"{argv[0]} not found: run `make setup`")
        self.argv = argv
        self.console = console
        self.stderr_path = stderr_path
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def start(self):
        log.debug("qemu: %s", " ".join(self.argv))
        self.started = time.monotonic()
        with open(self.stderr_path, "wb") as err:
            # own process group, so a kill reaches qemu's helper threads/children too
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, start_new_session=True)
        return self

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float) -> int | None:
        """qemu's exit status, or None if it was still running at the limit (then killed)."""
        try:
            return self.proc.wait(timeout=max(0.0, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def console_text(self) -> str:
        """The serial console so far, as text: LF line ends, no terminal escapes."""
        try:
            text = self.console.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return _ESCAPES.sub("", text.replace("\r\n", "\n")).replace("\r", "")

    def qemu_stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
