"""Collector: the whole /etc as `etc.tar`, with owners, modes, ACLs and xattrs.

Why GNU tar and not a Python walk: tar already stores owner names *and*
numbers (so the restore can map by name on a system whose ids differ, or use
the numbers with --numeric-owner), POSIX ACLs and every xattr namespace
(security.* for SELinux labels and file capabilities), and the live system
extracts it with the same tool.  The archive is not compressed: the bundle is
compressed as a whole when gpg encrypts it.

Members are named `etc/...` whatever directory ctx.etc is, so a recovery can
always `tar -xpf etc.tar --acls --xattrs -C /target`.  Exclude patterns are
relative to / (`etc/ssl/private`) and anchored.  Sockets cannot be archived
and are skipped (tar says "socket ignored"); FIFOs are stored as nodes, never
opened.  Exit 1 from tar ("file changed as we read it") still leaves a usable
archive, so it is a warning; exit 2 is a failure.
"""

from __future__ import annotations

import logging
import re

from essentials.errors import CommandError
from essentials.runner import display

from .base import CollectorError, Context, need_tool

log = logging.getLogger(__name__)

OUT = "etc.tar"
MEMBER_ROOT = "etc"
# BRE specials plus the `,` the --transform expression is delimited with
_BRE_SPECIAL = re.compile(r"([\\.\[\]*^$,])")


def _on_disk(pattern: str, name: str) -> str:
    """An `etc/...` pattern as tar sees the name on disk (excludes match before --transform)."""
    pattern = pattern.lstrip("/")
    if name == MEMBER_ROOT:
        return pattern
    if pattern == MEMBER_ROOT or pattern.startswith(MEMBER_ROOT + "/"):
        return name + pattern[len(MEMBER_ROOT):]
    return pattern


def tar_argv(etc, out, excludes=()) -> list[str]:
    """The tar command that archives the directory `etc` into `out`."""
    name = etc.name
    argv = ["tar", "--create", "--file", str(out), "--format=posix",
            "--acls", "--xattrs", "--xattrs-include=*", "--verbose", "--verbose",
            "--directory", str(etc.parent), "--anchored"]
    argv += [f"--exclude={_on_disk(p, name)}" for p in excludes]
    if name != MEMBER_ROOT:
        quoted = _BRE_SPECIAL.sub(r"\\\1", name)
        argv += [f"--transform=s,^{quoted}/,{MEMBER_ROOT}/,S",
                 f"--transform=s,^{quoted}$,{MEMBER_ROOT},S"]
    argv += ["--", name]
    return argv


def parse_listing(text: str) -> dict:
    """Count the members of a `tar -cvv` listing: entries, regular files and their bytes."""
    entries = files = size = 0
    for line in text.splitlines():
        fields = line.split(None, 3)
        if len(fields) < 3 or len(fields[0]) < 10:
            continue
        entries += 1
        if fields[0][0] == "-":
            files += 1
            if fields[2].isdigit():
                size += int(fields[2])
    return {"entries": entries, "files": files, "bytes": size}


def collect(ctx: Context) -> dict:
    need_tool("tar")
    etc = ctx.etc
    if not etc.is_dir():
        raise CollectorError(f"{etc} is not a directory")
    excludes = list(ctx.options.get("exclude") or [])
    out = ctx.write(OUT, b"")  # created 0600 before tar writes into it
    res = ctx.runner.run(tar_argv(etc, out, excludes), check=False, what="archiving /etc")
    stderr = res.stderr.decode("utf-8", "replace")
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if res.returncode > 1 or res.returncode < 0:
        raise CommandError(display(res.argv), res.returncode, stderr[-2000:], "archiving /etc")
    if res.returncode == 1:
        shown = "; ".join(lines[:5]) + (f" (+{len(lines) - 5} more)" if len(lines) > 5 else "")
        ctx.warn(f"tar exit 1 while archiving {etc}, the archive is usable: {shown}")
    skipped = sum(1 for ln in lines if ln.endswith("socket ignored"))
    for ln in lines:
        log.info("tar: %s", ln)
    summary = parse_listing(res.text)
    summary["tar_bytes"] = out.stat().st_size
    summary["sockets_skipped"] = skipped
    summary["excluded"] = excludes
    return summary
