"""Start one qemu machine with given disks and shares, and stop it for sure.

Kept apart from the guest protocol (guest.py) because the live ISO is booted
with the same machinery: disks with serials, host directories shared over 9p,
the serial console captured to a file, a wall-clock limit that kills qemu.

Software emulation only (`-accel tcg`): this host's /dev/kvm exists but
`-enable-kvm` hangs.  Disks are virtio-blk with a serial each, so the code
under test can tell them apart by /dev/disk/by-id/virtio-SERIAL as it would
on a real machine.
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

    def __post_init__(self):
        if self.size_mb is None and self.path is None:
            raise ValueError("DiskSpec needs size_mb or path")
        if self.serial is not None and (len(self.serial) > MAX_SERIAL or "," in self.serial):
            raise ValueError(f"disk serial {self.serial!r}: at most {MAX_SERIAL} characters, "
                             "no comma")


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
              shares: list[Share] = (), extra: list[str] = ()) -> list[str]:
    """The qemu command line.  Disks are attached in order, so the first is vda.

    q35 with -nodefaults: no floppy, IDE CD-ROM or parallel port for the guest
    kernel to probe (seconds under TCG), and the machine UEFI boots use too.
    The qemu64 CPU: under TCG a richer model (-cpu max) only makes the guest
    load more CPU-feature modules and benchmark more raid6 algorithms.
    Paths must not contain commas (qemu's option separator).
    """
    argv = [QEMU, "-accel", "tcg", "-machine", machine, "-cpu", cpu, "-m", str(mem_mb),
            "-smp", str(cpus), "-nodefaults", "-nographic", "-monitor", "none",
            "-serial", f"file:{console}", "-no-reboot",
            # entropy from the host: without it the guest's getrandom() blocks
            # for seconds after boot (sfdisk, mkfs and cryptsetup all wait)
            "-device", "virtio-rng-pci"]
    if kernel:
        argv += ["-kernel", str(kernel)]
    if initrd:
        argv += ["-initrd", str(initrd)]
    if append:
        argv += ["-append", append]
    if cdrom:
        argv += ["-cdrom", str(cdrom)]
    for i, (path, spec) in enumerate(disks):
        opts = f"file={path},if=none,id=d{i},format={spec.format},cache={spec.cache}"
        if spec.snapshot:
            opts += ",snapshot=on"
        argv += ["-drive", opts]
        dev = f"virtio-blk-pci,drive=d{i}"
        if spec.serial:
            dev += f",serial={spec.serial}"
        argv += ["-device", dev]
    for s in shares:
        opts = (f"local,path={s.host_path},mount_tag={s.tag},security_model=none,"
                f"multidevs=remap")
        if s.readonly:
            opts += ",readonly=on"
        argv += ["-virtfs", opts]
    return argv + list(extra)


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
