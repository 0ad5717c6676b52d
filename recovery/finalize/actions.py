"""The finalize actions: each renders its commands and applies them (disks' model).

Commands that must run as the restored system (initramfs, grub-install,
update-grub, debconf) run in it with `chroot TARGET`, so the restored
system's own versions of them write its own files; the live system's tools
are used only for what belongs to this machine (efibootmgr on its NVRAM,
mdadm's scan of the arrays here, setcap on files).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from essentials.errors import AmdrError
from essentials.runner import Runner

from ..disks.actions import Action, Step

log = logging.getLogger(__name__)

ORIG_SUFFIX = ".amdr-orig"
# the restored system's pseudo-filesystem mountpoints and their modes
PSEUDO = (("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("run", 0o755))
EFIVARS = "sys/firmware/efi/efivars"


class FinalizeError(AmdrError):
    """The restored system cannot be made bootable as planned."""


def inside(target: str, path: str) -> str:
    return os.path.join(target, path.lstrip("/"))


def chroot(target: str, *argv: str) -> list[str]:
    return ["chroot", target, *argv]


@dataclass
class ScrubPseudo(Action):
    """What a backup restored into /proc, /sys, /dev, /run is emptied (the
    seed's `rm -f /proc/*`); mountpoints get their modes, /tmp is 1777.  A
    directory that is a mountpoint now (a bind from an earlier run) is left
    alone: emptying it would empty the live system's /dev."""

    target: str = ""
    type = "scrub"
    journaled = False

    def dirs(self):
        return [(inside(self.target, d), mode) for d, mode in PSEUDO]

    def what(self) -> str:
        return "empty what the backup restored into /proc, /sys, /dev, /run; /tmp 1777"

    def steps(self) -> list[Step]:
        out = []
        for path, mode in self.dirs():
            out += [Step(["mkdir", "-p", path]),
                    Step(["find", path, "-xdev", "-mindepth", "1", "-delete"]),
                    Step(["chmod", f"{mode:o}", path])]
        tmp = inside(self.target, "tmp")
        return out + [Step(["mkdir", "-p", tmp]), Step(["chmod", "1777", tmp])]

    def execute(self, runner: Runner):
        mounted = {p for p, _ in self.dirs() if os.path.ismount(p)}
        self.run_steps(runner, [s for s in self.steps()
                                if not (s.argv[0] == "find" and s.argv[1] in mounted)])


@dataclass
class ChrootBinds(Action):
    """The live system's /dev, /dev/pts, /proc, /sys, /run (and efivarfs on
    UEFI) inside the target, so the restored system's tools see the disks."""

    target: str = ""
    efivars: bool = False
    type = "chroot"
    journaled = False

    def mounts(self) -> list[tuple[list[str], str]]:
        t = self.target
        out = [(["mount", "--bind", "/dev", inside(t, "dev")], inside(t, "dev")),
               (["mount", "--bind", "/dev/pts", inside(t, "dev/pts")], inside(t, "dev/pts")),
               (["mount", "-t", "proc", "proc", inside(t, "proc")], inside(t, "proc")),
               (["mount", "-t", "sysfs", "sysfs", inside(t, "sys")], inside(t, "sys")),
               (["mount", "--bind", "/run", inside(t, "run")], inside(t, "run"))]
        if self.efivars:
            out.append((["mount", "-t", "efivarfs", "efivarfs", inside(t, EFIVARS)],
                        inside(t, EFIVARS)))
        return out

    def what(self) -> str:
        return ("bind the live /dev, /dev/pts, /proc, /sys, /run"
                + (" and efivarfs" if self.efivars else "") + " into the target")

    def steps(self) -> list[Step]:
        return [Step(argv) for argv, _ in self.mounts()]

    def execute(self, runner: Runner):
        for argv, where in self.mounts():
            if not runner.dry_run and os.path.ismount(where):
                continue  # bound by an earlier run
            if not runner.dry_run:
                os.makedirs(where, exist_ok=True)
            runner.run(argv, what=f"{self.type} {self.id}")


@dataclass
class Unbind(Action):
    """Takes down what ChrootBinds mounted, deepest first."""

    target: str = ""
    efivars: bool = False
    type = "unbind"
    journaled = False

    def points(self) -> list[str]:
        return [where for _, where in reversed(ChrootBinds(self.id, self.target,
                                                           self.efivars).mounts())]

    def what(self) -> str:
        return "take the chroot's binds down again"

    def steps(self) -> list[Step]:
        return [Step(["umount", p]) for p in self.points()]

    def execute(self, runner: Runner):
        for p in self.points():
            if runner.dry_run or os.path.ismount(p):
                runner.run(["umount", p], what=f"{self.type} {self.id}")


@dataclass
class WriteFile(Action):
    """A file of the restored system written anew; the original is kept
    beside it as FILE.amdr-orig (once: a re-run never overwrites it)."""

    target: str = ""
    path: str = ""            # inside the target
    content: str = ""
    existed: bool = True
    why: str = ""
    diff: str = ""
    type = "write"

    def what(self) -> str:
        return (f"rewrite {self.path} (the original kept as {self.path}{ORIG_SUFFIX}): {self.why}"
                if self.existed else f"write {self.path}: {self.why}")

    def steps(self) -> list[Step]:
        full = inside(self.target, self.path)
        out = [Step(["cp", "-an", full, full + ORIG_SUFFIX])] if self.existed else []
        return out + [Step(["mkdir", "-p", os.path.dirname(full)]),
                      Step(["tee", full], stdin=self.content)]

    def identity(self) -> dict:
        d = super().identity()
        d.pop("diff", None)
        d.pop("why", None)
        return d

    def still_done(self, runner: Runner) -> bool:
        try:
            with open(inside(self.target, self.path)) as f:
                return f.read() == self.content
        except OSError:
            return False


@dataclass
class SetAside(Action):
    """A file that would mislead the restored system on these disks, moved
    aside (LVM's devices file names the old disks' serials and WWIDs)."""

    target: str = ""
    path: str = ""
    why: str = ""
    type = "set-aside"

    def what(self) -> str:
        return f"move {self.path} aside: {self.why}"

    def steps(self) -> list[Step]:
        full = inside(self.target, self.path)
        return [Step(["mv", full, full + ORIG_SUFFIX])]

    def still_done(self, runner: Runner) -> bool:
        return not os.path.exists(inside(self.target, self.path))


@dataclass
class Initramfs(Action):
    target: str = ""
    tool: str = "update-initramfs"   # or dracut
    type = "initramfs"

    def what(self) -> str:
        return "make the initramfs again on this hardware (its drivers, arrays, NIC names)"

    def steps(self) -> list[Step]:
        if self.tool == "dracut":
            return [Step(chroot(self.target, "dracut", "-f", "--regenerate-all"))]
        return [Step(chroot(self.target, "update-initramfs", "-u", "-k", "all"))]


@dataclass
class GrubBios(Action):
    """GRUB in the boot sector of each mapped install device (both disks of a
    RAID1 boot), and debconf told the new devices, so the next grub-pc
    upgrade installs there instead of failing on the old disk's name."""

    target: str = ""
    devices: list[str] = field(default_factory=list)
    debconf: list[str] = field(default_factory=list)  # names stored for grub-pc
    tool: str = "grub-install"
    type = "grub-bios"

    def what(self) -> str:
        return f"install GRUB for BIOS on {', '.join(self.devices)}"

    def steps(self) -> list[Step]:
        out = [Step(chroot(self.target, self.tool, "--target=i386-pc", d)) for d in self.devices]
        if self.debconf:
            out.append(Step(chroot(self.target, "debconf-set-selections"),
                            stdin=f"grub-pc grub-pc/install_devices multiselect "
                                  f"{', '.join(self.debconf)}\n"))
        return out


@dataclass
class GrubEfi(Action):
    """GRUB (behind shim when the system has it) under EFI/ID/, and at the
    removable path EFI/BOOT/BOOTX64.EFI, which firmware boots when it has no
    entry (a new machine, NVRAM reset).  The entry is EfiEntry's job."""

    target: str = ""
    bootloader_id: str = "debian"
    esp: str = "/boot/efi"
    tool: str = "grub-install"
    type = "grub-efi"

    def what(self) -> str:
        return (f"install GRUB for UEFI in EFI/{self.bootloader_id}/ and at the fallback path "
                f"EFI/BOOT/BOOTX64.EFI")

    def steps(self) -> list[Step]:
        base = [self.tool, "--target=x86_64-efi", f"--efi-directory={self.esp}", "--no-nvram"]
        return [Step(chroot(self.target, *base, f"--bootloader-id={self.bootloader_id}")),
                Step(chroot(self.target, *base, "--removable"))]


@dataclass
class EfiEntry(Action):
    """Exactly one firmware entry with the label, first in BootOrder: stale
    entries with the same label or the same loader are removed first."""

    label: str = ""
    disk: str = ""
    partition: int = 1
    loader: str = ""
    partuuid: str | None = None
    delete: list[str] = field(default_factory=list)
    type = "efi-entry"
    journaled = False  # planned from the NVRAM as it is: nothing planned when right

    def what(self) -> str:
        return (f"one firmware entry {self.label!r} -> {self.loader}, first in BootOrder"
                + (f"; remove {', '.join(self.delete)}" if self.delete else ""))

    def steps(self) -> list[Step]:
        out = [Step(["efibootmgr", "-q", "-b", n, "-B"]) for n in self.delete]
        return out + [Step(["efibootmgr", "-q", "-c", "-d", self.disk, "-p", str(self.partition),
                            "-L", self.label, "-l", self.loader])]

    def after(self, runner: Runner):
        if runner.dry_run:
            return
        from essentials.layout.boot import parse_efibootmgr
        efi = parse_efibootmgr(runner.output(["efibootmgr", "-v"]))
        mine = [e for e in efi["entries"] if e["label"] == self.label]
        if len(mine) != 1 or not efi["order"] or efi["order"][0] != mine[0]["number"]:
            raise FinalizeError(
                f"efibootmgr -v shows {len(mine)} entries labelled {self.label!r} and boot "
                f"order {','.join(efi['order'])}: expected exactly one, first; the fallback "
                f"path EFI/BOOT/BOOTX64.EFI is installed, so the firmware's boot menu can "
                f"still start it")


@dataclass
class UpdateGrub(Action):
    target: str = ""
    argv: list[str] = field(default_factory=lambda: ["update-grub"])
    type = "grub-config"

    def what(self) -> str:
        return "make GRUB's configuration again"

    def steps(self) -> list[Step]:
        return [Step(chroot(self.target, *self.argv))]


@dataclass
class SetCaps(Action):
    """File capabilities a tar backup dropped (ping's cap_net_raw ...), as
    essentials recorded them."""

    target: str = ""
    files: list[list[str]] = field(default_factory=list)  # [path, caps]
    type = "capabilities"

    def what(self) -> str:
        return f"set {len(self.files)} file capabilities a tar backup dropped"

    def steps(self) -> list[Step]:
        return [Step(["setcap", caps, inside(self.target, path)]) for path, caps in self.files]


@dataclass
class Autorelabel(Action):
    """SELinux labels are not in a tar backup: relabel at first boot."""

    target: str = ""
    type = "autorelabel"

    def what(self) -> str:
        return "have SELinux relabel every file at first boot"

    def steps(self) -> list[Step]:
        return [Step(["touch", inside(self.target, ".autorelabel")])]
