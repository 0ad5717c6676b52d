"""Boot the test guest, run a shell script in it as root, bring back what it said.

Each `Guest.run` boots a fresh machine from the cached image (its root disk
attached with snapshot=on, so nothing persists between runs), with the
project shared read-only at /project (PYTHONPATH=/project, the working
directory; Debian's python3 3.11 and python3-* packages), the given disks as
vda, vdb, ... (the root disk comes after them), and the script's stdout,
stderr and exit status written back through a 9p share (see guest-init.sh).
Boot time dominates under TCG (~10 s), so put several commands in one script.

    image = build_guest()
    r = Guest(image, [DiskSpec(64, serial="data0")]).run("lsblk -J; exit 3")
    r.exit_code == 3

A command running past its `timeout` (counted from the command's start; the
boot has its own `boot_timeout`) kills qemu and raises GuestTimeout with the
console's and the script's output tails; a guest that ends without reporting
an exit status raises GuestError likewise.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .image import DEFAULT_BUILD_DIR, PROJECT, GuestImage, build_guest
from .recipe import GUEST_INIT_PATH
from .qemu import DiskSpec, Firmware, Machine, Nic, Share, materialise, qemu_argv

__all__ = ["DiskSpec", "Firmware", "Guest", "Nic", "GuestError", "GuestImage", "GuestTimeout", "Result", "Share",
           "build_guest", "DEFAULT_BUILD_DIR"]

log = logging.getLogger(__name__)

CONTROL_TAG = "amdr_vm"
PROJECT_TAG = "project"
ROOT_SERIAL = "amdr-vm-root"
TAIL = 3000
POLL = 0.1  # seconds between looks at the run's state


class GuestError(RuntimeError):
    """The guest ended without reporting an exit status (or qemu failed)."""

    def __init__(self, message: str, console_log: str = "", stdout: str = "", stderr: str = ""):
        super().__init__(message + _tails(console_log, stdout, stderr))
        self.console_log, self.stdout, self.stderr = console_log, stdout, stderr


class GuestTimeout(GuestError):
    """The run went past its timeout; qemu was killed."""


@dataclass
class Result:
    stdout: str
    stderr: str
    exit_code: int
    console_log: str
    seconds: float  # wall clock, qemu's start to its exit
    boot_seconds: float | None = None  # wall clock, qemu's start to the command's
    # the files behind vda, vdb, ... (temporary ones are gone when run() returns)
    disks: list[Path] = field(default_factory=list)

    def check(self, expected: int = 0) -> "Result":
        if self.exit_code != expected:
            raise GuestError(f"guest command exited {self.exit_code}, expected {expected}",
                             self.console_log, self.stdout, self.stderr)
        return self


class Guest:
    """A guest configuration; every `run` boots it afresh.

    `shares` are extra host directories as {guest_path: host_path}
    (read-write) or {guest_path: (host_path, "ro")}; `append` adds kernel
    parameters (e.g. "loglevel=7" to see the kernel on the console log).

    `firmware="uefi"` boots OVMF through pflash with `ovmf_vars` (the
    caller's copy, written by the guest: efibootmgr's entries land there),
    still by direct kernel boot (the bzImage's EFI stub), so the guest has
    /sys/firmware/efi and can mount efivarfs.  `nic` adds a NIC on qemu's
    user network (the guest's init does not configure it).  Disks may sit on
    "virtio", "sata" or "nvme" (DiskSpec.bus); the root disk stays virtio.
    """

    def __init__(self, image: GuestImage, disks: list[DiskSpec] = (), mem_mb: int = 1024,
                 cpus: int = 2, *, project: Path | None = PROJECT,
                 shares: dict[str, Path | tuple[Path, str]] | None = None, append: str = "",
                 firmware: str = "bios", ovmf_vars: Path | None = None, nic: Nic | None = None):
        if firmware not in ("bios", "uefi"):
            raise ValueError(f"firmware {firmware!r}: bios or uefi")
        if firmware == "uefi" and ovmf_vars is None:
            raise ValueError("firmware='uefi' needs ovmf_vars (a writable copy of OVMF_VARS.fd)")
        self.image = image
        self.disks = list(disks)
        self.mem_mb, self.cpus = mem_mb, cpus
        self.project = project
        self.shares = dict(shares or {})
        self.append = append
        self.firmware, self.ovmf_vars, self.nic = firmware, ovmf_vars, nic

    def run(self, command: str, timeout: float = 600, *, boot_timeout: float = 300,
            keep_dir: Path | None = None) -> Result:
        """Boot, run `command` (a bash script) as root, power off; see the module doc.

        `timeout` limits the command, counted from its start, so it need not
        allow for how slowly a loaded host boots; `boot_timeout` limits the
        boot.  `keep_dir` keeps the run's files (console.log, qemu.stderr,
        control/stdout, ...) there instead of in a temporary directory.
        """
        if keep_dir is not None:
            Path(keep_dir).mkdir(parents=True, exist_ok=True)
            return self._run(command, timeout, boot_timeout, Path(keep_dir))
        with tempfile.TemporaryDirectory(prefix="amdr-vm-") as tmp:
            return self._run(command, timeout, boot_timeout, Path(tmp))

    def _run(self, command: str, timeout: float, boot_timeout: float, rundir: Path) -> Result:
        control = rundir / "control"
        shutil.rmtree(control, ignore_errors=True)
        control.mkdir()
        (control / "command.sh").write_text(command if command.endswith("\n") else command + "\n")
        shares, mounts = self._shares()
        (control / "mounts").write_text("".join(f"{s.tag} {path} {'ro' if s.readonly else 'rw'}\n"
                                                for s, path in zip(shares, mounts)))
        shares.insert(0, Share(CONTROL_TAG, control, readonly=False))

        attached = [(materialise(d, rundir, i), d) for i, d in enumerate(self.disks)]
        root = DiskSpec(path=self.image.rootfs, serial=ROOT_SERIAL, snapshot=True)
        console = rundir / "console.log"
        argv = self.argv(attached, root, console, shares)
        machine = Machine(argv, console, rundir / "qemu.stderr")
        ready_file = control / "ready"
        booted = None  # seconds from qemu's start to the command's
        with machine:
            while (status := machine.poll()) is None:
                if booted is None and ready_file.exists():
                    booted = machine.seconds
                if booted is None and machine.seconds > boot_timeout:
                    machine.kill()
                    raise GuestTimeout(f"guest did not boot within {boot_timeout:g} s; qemu killed",
                                       machine.console_text())
                if booted is not None and machine.seconds - booted > timeout:
                    machine.kill()
                    raise GuestTimeout(
                        f"guest command still running after {timeout:g} s; qemu killed",
                        machine.console_text(), _read(control / "stdout"),
                        _read(control / "stderr"))
                time.sleep(POLL)
        out, err = _read(control / "stdout"), _read(control / "stderr")
        console_log = machine.console_text()
        code = _read(control / "exit_code").strip()
        if not re.fullmatch(r"\d+", code):
            raise GuestError(f"guest ended (qemu status {status}) without an exit status"
                             + _qemu_said(machine.qemu_stderr()), console_log, out, err)
        result = Result(stdout=out, stderr=err, exit_code=int(code), console_log=console_log,
                        seconds=round(machine.seconds, 2),
                        boot_seconds=None if booted is None else round(booted, 2),
                        disks=[p for p, _ in attached])
        log.info("guest run: exit %s in %.1f s (command started after %s s)", result.exit_code,
                 result.seconds, result.boot_seconds)
        return result

    def argv(self, attached: list[tuple[Path, DiskSpec]], root: DiskSpec, console: Path,
             shares: list[Share]) -> list[str]:
        """qemu's command line for one run (the root disk after the test disks)."""
        virtio_before_root = sum(1 for _, d in attached if d.bus == "virtio")
        uefi = self.firmware == "uefi"
        return qemu_argv(
            disks=attached + [(self.image.rootfs, root)], console=console,
            mem_mb=self.mem_mb, cpus=self.cpus,
            # OVMF loads the bzImage through its EFI stub; the bare vmlinux
            # (PVH entry) is for SeaBIOS/qemu's own loader only
            kernel=self.image.directory / "vmlinuz" if uefi else self.image.kernel,
            initrd=self.image.initrd, append=self._cmdline(root_device(virtio_before_root)),
            shares=shares, nic=self.nic,
            firmware=Firmware(Path(self.ovmf_vars)) if uefi else None)

    def _shares(self) -> tuple[list[Share], list[str]]:
        shares, mounts = [], []
        if self.project is not None:
            shares.append(Share(PROJECT_TAG, Path(self.project), readonly=True))
            mounts.append("/project")
        for i, (guest_path, spec) in enumerate(self.shares.items()):
            host, mode = (spec if isinstance(spec, tuple) else (spec, "rw"))
            shares.append(Share(f"share{i}", Path(host), readonly=(mode == "ro")))
            mounts.append(guest_path)
        return shares, mounts

    def _cmdline(self, root: str) -> str:
        return " ".join(filter(None, [
            f"root={root}", "rootfstype=ext4", "rw", "console=ttyS0", f"init={GUEST_INIT_PATH}",
            "quiet", "panic=1", "fsck.mode=skip", "edd=off", self.append]))


def root_device(index: int) -> str:
    """The root disk's name: it is attached after the test disks (`index` is
    how many of those are virtio: SATA and NVMe disks have names of their own), and virtio
    disks are named in PCI order (vda, ..., vdz, vdaa, ...), which qemu
    assigns in command-line order.  (The initrd has no udev for by-id names.)"""
    name = ""
    index += 1
    while index:
        index, r = divmod(index - 1, 26)
        name = chr(ord("a") + r) + name
    return f"/dev/vd{name}"


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _qemu_said(text: str) -> str:
    return f"; qemu said: {text.strip()[-TAIL:]}" if text.strip() else ""


def _tails(console_log: str, stdout: str, stderr: str) -> str:
    parts = []
    for name, text in (("console", console_log), ("stdout", stdout), ("stderr", stderr)):
        if text.strip():
            parts.append(f"\n--- {name} (tail) ---\n{text[-TAIL:]}")
    return "".join(parts)
