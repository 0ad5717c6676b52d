"""Collector: file capabilities and SELinux's state, which a restore from tar loses.

Why: GNU tar, and Amanda's amgtar unless it is given --xattrs, do not store
the security.capability xattr, so on a restored system ping, mtr-packet or
gst-ptp-helper lose their capabilities and fail for everyone but root.
`getcap -r` over the system paths lists them here; finalize gives them back
with setcap.  SELinux is recorded beside them because its labels are xattrs
too: a system that boots enforcing with unlabelled files needs a relabel.

`system/capabilities.yaml`:

    version: 1
    searched: [/usr, /opt]        # real paths, each once (merged /usr's /bin is /usr/bin)
    files:                        # null: getcap is not installed here, nothing is known
      - {path: /usr/bin/ping, caps: cap_net_raw=ep}   # caps as getcap printed them,
                                                      # what setcap takes back
      - {path: /opt/x/agent, caps: cap_sys_admin+ep, rootid: 1000}  # only when getcap
                                                      # names a namespace root id
    selinux:
      enabled: false              # selinuxfs is mounted (/sys/fs/selinux/enforce)
      mode: disabled              # enforcing|permissive: running (when enabled), else
                                  # SELINUX= of /etc/selinux/config, else disabled;
                                  # null: a value neither says
      configured: null            # SELINUX= of /etc/selinux/config (null: no such file)

Only the searched paths' own filesystems: getcap -r crosses mount points, the
search does not (an NFS share or a backup disk mounted under /opt is not the
system's).  Where a mount lies below a searched path, the search is split
around it: the directories leading to it are listed and getcap is given their
other entries.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import yaml

from essentials.errors import CommandError
from essentials.runner import display

from .base import Context, have_tool

log = logging.getLogger(__name__)

VERSION = 1
OUT = "system/capabilities.yaml"
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/opt")
MOUNTINFO = Path("/proc/self/mountinfo")
SYS = Path("/sys")
SELINUX_MODES = ("enforcing", "permissive", "disabled")

# one clause of cap_to_text(3): names (or none: all), then operators with flags
_CLAUSE = re.compile(r"(?:(?:cap_\w+|all|\d+)(?:,(?:cap_\w+|\d+))*)?(?:[=+-][eip]*)+")
_ROOTID = re.compile(r"\[rootid=(\d+)\]")


def parse_getcap(text: str) -> tuple[list[dict], list[str]]:
    """getcap's lines -> ([{path, caps}], lines that are no capability line).

    libcap 2.44 and later (Debian 12) print `path cap_net_raw=ep`, older ones
    `path = cap_net_raw+ep`.  The caps are the trailing words that read as
    cap_to_text clauses, so a path with spaces stays whole."""
    files, odd = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        words = line.split(" ")
        rootid = None
        if len(words) > 2 and _ROOTID.fullmatch(words[-1]):
            rootid = int(_ROOTID.fullmatch(words.pop())[1])
        i = len(words)
        while i > 1 and _CLAUSE.fullmatch(words[i - 1]):
            i -= 1
        clauses = words[i:]
        if len(clauses) > 1 and clauses[0] == "=":
            clauses = clauses[1:]  # the old format's separator
        path = " ".join(words[:i])
        if not clauses or not path:
            odd.append(line)
            continue
        entry = {"path": path, "caps": " ".join(clauses)}
        if rootid is not None:
            entry["rootid"] = rootid
        files.append(entry)
    return files, odd


def parse_mountinfo(text: str) -> list[str]:
    """The mount points of /proc/self/mountinfo (field 5, octal escapes undone)."""
    points = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4]))
    return points


def search_roots(paths, root: str = "/") -> list[str]:
    """The real directories to search, each once and none inside another.

    With merged /usr, /bin is a link to usr/bin: searching both would list
    every file twice, under two names."""
    real = []
    for p in paths:
        full = os.path.join(root, p.lstrip("/"))
        if os.path.isdir(full):
            r = os.path.realpath(full)
            if r not in real:
                real.append(r)
    return [r for r in real
            if not any(o != r and r.startswith(o.rstrip("/") + "/") for o in real)]


def split_around(top: str, mounts, unreadable: list | None = None) -> list[str]:
    """getcap -r arguments that cover top without entering a mount below it.

    Symlinks are left out: getcap would report the target's caps under the
    link's name.  A directory that cannot be listed is added to unreadable."""
    below = [m for m in mounts if m.startswith(top.rstrip("/") + "/")]
    if not below:
        return [top]
    args = []
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError as e:
        if unreadable is not None:
            unreadable.append(f"{top}: {e.strerror}")
        return []
    for e in entries:
        if e.path in below or e.is_symlink():
            continue
        if e.is_dir(follow_symlinks=False):
            args += split_around(e.path, below, unreadable)
        elif e.is_file(follow_symlinks=False):
            args.append(e.path)
    return args


def parse_selinux_config(text: str) -> str | None:
    """SELINUX= of /etc/selinux/config (the last one wins, as in the shell)."""
    value = None
    for line in text.splitlines():
        key, sep, v = line.strip().partition("=")
        if sep and key.strip() == "SELINUX":
            value = v.strip().strip("\"'").lower()
    return value


def selinux_state(enforce: str | None, configured: str | None) -> dict:
    """enforce: the content of /sys/fs/selinux/enforce (None: not mounted)."""
    if enforce is not None:
        mode = {"1": "enforcing", "0": "permissive"}.get(enforce.strip())
        return {"enabled": True, "mode": mode, "configured": configured}
    if configured is None:
        mode = "disabled"
    else:
        mode = configured if configured in SELINUX_MODES else None
    return {"enabled": False, "mode": mode, "configured": configured}


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _getcap(ctx: Context, roots: list[str]) -> list[dict]:
    mounts = parse_mountinfo(MOUNTINFO.read_text()) if MOUNTINFO.is_file() else []
    unreadable: list[str] = []
    args = [a for top in roots for a in split_around(top, mounts, unreadable)]
    for u in unreadable:
        ctx.warn(f"cannot list {u}: file capabilities below it not collected")
    if not args:
        return []
    res = ctx.runner.run(["getcap", "-r", *args], check=False, what="listing file capabilities")
    stderr = res.stderr.decode("utf-8", "replace")
    if res.returncode != 0:
        raise CommandError(display(res.argv), res.returncode, stderr[-2000:],
                           "listing file capabilities")
    files, odd = parse_getcap(res.text)
    problems = [ln for ln in stderr.splitlines() if ln.strip()] + odd
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        ctx.warn("getcap: " + "; ".join(problems[:5]) + more)
    for f in files:
        f["path"] = _unroot(f["path"], ctx.root)
    return files


def _unroot(path: str, root: str) -> str:
    """A path as the collected system names it (root: where that system is mounted)."""
    prefix = os.path.realpath(root or "/").rstrip("/")
    return path[len(prefix):] if prefix and path.startswith(prefix + "/") else path


def collect(ctx: Context) -> dict:
    roots = search_roots(ctx.options.get("paths") or SYSTEM_PATHS, ctx.root or "/")
    if have_tool("getcap"):
        files = _getcap(ctx, roots)
    else:
        files = None
        ctx.warn("getcap is not installed (Debian package libcap2-bin): file capabilities "
                 "not collected, a restored system may lack them (ping, mtr-packet...)")
    config = _read(ctx.etc / "selinux" / "config")
    selinux = selinux_state(_read(SYS / "fs" / "selinux" / "enforce"),
                            parse_selinux_config(config) if config is not None else None)
    searched = [_unroot(r, ctx.root) for r in roots]
    ctx.write(OUT, yaml.safe_dump({"version": VERSION, "searched": searched, "files": files,
                                   "selinux": selinux}, sort_keys=False))
    return {"files": None if files is None else len(files), "searched": searched,
            "selinux": selinux["mode"]}
