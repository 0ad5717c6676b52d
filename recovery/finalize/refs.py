"""Every device reference in the restored system's files: resolved, or rewritten (pure).

A restored system does not boot when one line still names a device that is
not there: fstab's `/dev/vda2` after the disk became `sda`, a crypttab entry
by the by-id name of the old disk, `resume=` on the kernel command line.
diskinit recreates every UUID, LABEL, PARTUUID and PARTLABEL, so references
by identity resolve as they are; references by path or by the old disk's
by-id name are rewritten to the disks now here (`Renames`).  What resolves
to nothing is reported with its file and line, and stops finalize before
the boot loader is touched (unless the line says noauto or nofail: a USB
disk that is not plugged in should not stop a recovery).

The same checks run twice: in `plan`, against the identities the layout
will have on the mapped disks (before anything is wiped), and in finalize,
against the devices blkid sees once the system is restored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAGS = ("UUID", "LABEL", "PARTUUID", "PARTLABEL")
BY_DIRS = {"by-uuid": "UUID", "by-label": "LABEL", "by-partuuid": "PARTUUID",
           "by-partlabel": "PARTLABEL"}
BY_ID = "/dev/disk/by-id/"


@dataclass
class Ref:
    file: str          # path inside the target, e.g. /etc/fstab
    line: int          # 1-based
    text: str          # the whole line, as written
    token: str         # the reference as written: UUID=..., /dev/sda1
    where: str         # what it is: "fstab device", "kernel root=", ...
    optional: bool = False  # noauto/nofail: a missing device is a warning

    def at(self) -> str:
        return f"{self.file} line {self.line}"


@dataclass
class Finding:
    ref: Ref
    status: str        # ok | rewrite | missing
    new: str | None = None   # the token written instead (rewrite)
    device: str | None = None  # the device it resolves to (ok, rewrite)

    def describe(self) -> str:
        r = self.ref
        if self.status == "rewrite":
            return f"{r.at()}: {r.where} {r.token} -> {self.new}"
        if self.status == "missing":
            what = "not fatal (noauto/nofail)" if r.optional else "no such device here"
            return f"{r.at()}: {r.where} {r.token}: {what}: {r.text.strip()}"
        return f"{r.at()}: {r.where} {r.token} is {self.device}"


@dataclass
class Identities:
    """What a reference can resolve to: tag values and device paths."""

    tags: dict[str, dict[str, str]] = field(default_factory=lambda: {t: {} for t in TAGS})
    paths: dict[str, str] = field(default_factory=dict)  # path or alias -> device

    def add(self, path: str, **tags):
        self.paths.setdefault(path, path)
        for tag, value in tags.items():
            if value:
                self.tags[tag.upper()].setdefault(str(value), path)

    def alias(self, link: str, device: str):
        self.paths[link] = device

    def resolve(self, kind: str, value: str) -> str | None:
        if kind == "path":
            return self.paths.get(value)
        got = self.tags.get(kind, {}).get(value)
        if got is None and kind in ("UUID", "PARTUUID"):  # blkid prints lower case
            got = self.tags[kind].get(value.lower())
        return got


@dataclass
class Renames:
    """Original path or by-id name -> what to write now (a path or by-id name)."""

    paths: dict[str, str] = field(default_factory=dict)

    def get(self, token: str) -> str | None:
        return self.paths.get(token)


def unescape_label(value: str) -> str:
    """udev's /dev/disk/by-label names escape spaces and slashes (\\x20, \\x2f)."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), value)


def classify(token: str) -> tuple[str, str] | None:
    """(kind, value) of a device reference; None when it is none (tmpfs, proc,
    a swap file, an NFS export, a bind-mounted directory)."""
    t = token.strip().strip('"')
    tag, sep, value = t.partition("=")
    if sep and tag.upper() in TAGS:
        return tag.upper(), value.strip('"')
    for d, kind in BY_DIRS.items():
        prefix = f"/dev/disk/{d}/"
        if t.startswith(prefix):
            v = t[len(prefix):]
            return kind, unescape_label(v) if kind in ("LABEL", "PARTLABEL") else v
    if t.startswith("/dev/") and not t.startswith(("/dev/shm", "/dev/pts", "/dev/mqueue",
                                                   "/dev/hugepages", "/dev/null")):
        return "path", t
    return None


def _table(text: str, file: str, col: int, where) -> list[Ref]:
    """fstab and crypttab: the device in column `col`, options in column 3."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        f = line.split()
        if len(f) <= col or classify(f[col]) is None:
            continue
        opts = f[3].split(",") if len(f) > 3 else []
        if col == 0 and ("bind" in opts or "rbind" in opts):
            continue
        out.append(Ref(file, n, line, f[col], where(f),
                       optional="noauto" in opts or "nofail" in opts))
    return out


def in_fstab(text: str, file: str = "/etc/fstab") -> list[Ref]:
    return _table(text, file, 0, lambda f: "fstab device")


def in_crypttab(text: str, file: str = "/etc/crypttab") -> list[Ref]:
    return _table(text, file, 1, lambda f: f"crypttab device of {f[0]}")


def in_resume(text: str, file: str) -> list[Ref]:
    """initramfs-tools' conf.d/resume: RESUME=UUID=... (RESUME=none: no resume)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*RESUME\s*=\s*(\S+)", line)
        if m and classify(m.group(1)) is not None:
            out.append(Ref(file, n, line, m.group(1).strip('"'), "initramfs resume device"))
    return out


def in_default_grub(text: str, file: str) -> list[Ref]:
    """root= and resume= on GRUB_CMDLINE_LINUX[_DEFAULT] (the kernel command line)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*GRUB_CMDLINE_LINUX(?:_DEFAULT)?\s*=\s*(['\"]?)(.*)\1\s*$", line)
        if not m:
            continue
        for arg in m.group(2).split():
            key, sep, value = arg.partition("=")
            if sep and key in ("root", "resume") and classify(value) is not None:
                out.append(Ref(file, n, line, value, f"kernel {key}="))
    return out


def in_lvm_conf(text: str, file: str) -> list[Ref]:
    """by-id names in lvm.conf's filters: patterns, so never fatal, but a filter
    naming the old disk would hide the new one from LVM."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#") or "filter" not in line:
            continue
        for m in re.finditer(r"/dev/disk/by-id/[^|\"'\s]+", line):
            out.append(Ref(file, n, line, m.group(0), "lvm filter", optional=True))
    return out


def check(ref: Ref, ids: Identities, renames: Renames) -> Finding:
    kind, value = classify(ref.token) or ("path", ref.token)
    if kind == "path":
        new = renames.get(value)
        if new and new != value:
            return Finding(ref, "rewrite", new, ids.resolve("path", new) or new)
    dev = ids.resolve(kind, value)
    if dev is not None:
        return Finding(ref, "ok", device=dev)
    return Finding(ref, "missing")


_BOUND = r"(?<![\w/.:=-]){}(?![\w/.:-])"


def rewrite(text: str, findings: list[Finding]) -> str:
    """The file with each rewritten reference replaced on its own line only."""
    lines = text.splitlines(keepends=True)
    for f in findings:
        if f.status != "rewrite":
            continue
        i = f.ref.line - 1
        pat = re.compile(_BOUND.format(re.escape(f.ref.token)))
        lines[i] = pat.sub(lambda _m: f.new, lines[i], count=1)
    return "".join(lines)


def unified_diff(path: str, old: str, new: str) -> str:
    import difflib
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        f"{path}.amdr-orig", path))


# file (inside the target) -> the function finding its references
FINDERS = {
    "/etc/fstab": in_fstab,
    "/etc/crypttab": in_crypttab,
    "/etc/initramfs-tools/conf.d/resume": in_resume,
    "/etc/default/grub": in_default_grub,
    "/etc/lvm/lvm.conf": in_lvm_conf,
}


def finder(path: str):
    if path in FINDERS:
        return FINDERS[path]
    if path.startswith("/etc/default/grub.d/") and path.endswith(".cfg"):
        return in_default_grub
    if path.startswith("/etc/initramfs-tools/conf.d/"):
        return in_resume
    return None


def find_all(files: dict[str, str]) -> list[Ref]:
    out = []
    for path in sorted(files):
        fn = finder(path)
        if fn is not None:
            out += fn(files[path], path)
    return out
