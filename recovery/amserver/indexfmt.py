"""Amanda's index: one gzip'd file per image, one path per line.

What Amanda 3.5.1 itself writes, captured from a real amdump (the dumper
receives the client's listing and stores it unsorted; amindexd sorts it on
first use, into DATE_LEVEL-unsorted beside it):

  INDEXDIR/HOST/DISK/DATE_LEVEL-unsorted.gz      HOST, DISK sanitised
    /                 the DLE's root
    /etc/             a directory: trailing '/'
    /etc/hostname     a file, symlink, device...: no trailing '/'

GNUTAR: the client runs `tar -tf -` on the image and strips the leading
'.' of each member (`./etc/` becomes `/etc/`), so an incremental lists
every directory of the tree and then the files that changed, in archive
order.  DUMP: `restore -tvf -` prints `dir INODE ./path` and
`leaf INODE ./path`; directories get a trailing '/'.  amindexd also
accepts DATE_LEVEL.gz (the pre-3.x name), but this is the name 3.5 writes
and trims.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..restore.plan import is_tar
from .names import sanitise_filename

_RESTORE_T = re.compile(r"^(dir|leaf)\s+\d+\s+\.(.*)$")


def index_dir(indexdir, host: str, disk: str) -> PurePosixPath:
    return PurePosixPath(indexdir) / sanitise_filename(host) / sanitise_filename(disk)


def index_file(indexdir, host: str, disk: str, date: str, level: int) -> PurePosixPath:
    return index_dir(indexdir, host, disk) / f"{date}_{level}-unsorted.gz"


def existing_names(date: str, level: int) -> list[str]:
    """Every name amindexd would read for this image (any one is enough)."""
    base = f"{date}_{level}"
    return [base + s for s in ("-sorted", "-sorted.gz", "-unsorted", "-unsorted.gz", ".gz")]


def lister_argv(program: str) -> list[str]:
    """The listing command the client's sendbackup runs for the index."""
    if is_tar(program):
        return ["tar", "-t", "-f", "-"]
    if program == "DUMP":
        return ["restore", "-t", "-v", "-f", "-"]
    raise ValueError(f"cannot list a {program} image (GNUTAR, amgtar and DUMP can be)")


def from_tar_listing(lines) -> list[str]:
    """`tar -tf -` output to index lines ("./etc/" -> "/etc/")."""
    out = []
    for line in lines:
        line = line.rstrip("\n")
        if line.startswith("."):
            line = line[1:]
        if line.startswith("/"):
            out.append(line)
    return out


def from_restore_listing(lines) -> list[str]:
    """`restore -tvf -` output to index lines ("dir 2 ." -> "/")."""
    out = []
    for line in lines:
        m = _RESTORE_T.match(line.rstrip("\n"))
        if not m:
            continue  # restore's chatter: "Dump date: ...", "Label: ..."
        kind, path = m.groups()
        if kind == "dir":
            path = path.rstrip("/") + "/"
        if path.startswith("/"):
            out.append(path)
    return out


def index_lines(program: str, listing: str) -> list[str]:
    lines = listing.splitlines()
    return from_tar_listing(lines) if is_tar(program) else from_restore_listing(lines)
