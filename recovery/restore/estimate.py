"""How long the restores will take, before they start: the images' sizes and a
throughput measured here, now, on the volumes themselves.

The measure: the largest image at hand is read past its 32 KiB header and
through its own uncompress program into nothing, for at most `seconds` or
`limit` bytes, whichever comes first.  That is the part of a restore this
machine's disks and CPU set the pace of (amrestore's read and gzip); tar's
or restore's writes come on top, so the figure is said to be an estimate.
An encrypted image is read without its decrypt (its key is installed only
for the restore); a tape drive is not measured (its volume would have to be
loaded first): the estimate then says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from essentials.doctor import locate
from essentials.runner import Cmd, Runner


@dataclass
class Measured:
    bytes: int
    seconds: float
    what: str  # the image read, as a person finds it

    @property
    def rate(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def largest_part(library, steps):
    """(label, filenum, path, header) of the largest image part at hand."""
    from ..media.volumes import read_header
    best = None
    for st in steps:
        for d in st.chain.dumps:
            for p in d.parts:
                try:
                    path = library.image_path(p.label, p.filenum)
                    size = path.stat().st_size
                except (OSError, AttributeError, Exception):  # noqa: BLE001 - not at hand
                    continue
                if best is None or size > best[0]:
                    best = (size, p.label, p.filenum, path)
    if best is None:
        return None
    _, label, filenum, path = best
    return label, filenum, path, read_header(path)


def measure(library, steps, seconds: float = 2.0, limit: int = 64 << 20,
            runner: Runner | None = None) -> Measured | None:
    if not hasattr(library, "image_path"):
        return None
    found = largest_part(library, steps)
    if found is None:
        return None
    label, filenum, path, header = found
    from .pipe import HEADER_SIZE, file_read, filters
    try:
        fl = [f for f in filters(header) if f.what == "uncompress"] if header else []
    except Exception:  # noqa: BLE001 - an unknown compression: read only
        fl = []
    argv = fl[0].argv if fl and locate(fl[0].argv[0]) else None
    # the restore's own read (dd past the header), cut by time and size, into
    # the uncompress program (or nothing): an OS pipe, the bytes counted by dd
    read = ["timeout", f"{seconds:g}"] + file_read(path) + [f"count={max(1, limit // HEADER_SIZE)}"]
    cmds = [Cmd(read)] + ([Cmd(argv)] if argv else [])
    t0 = time.monotonic()
    res = (runner or Runner()).pipeline(cmds, check=False, what="measuring the volumes")
    took = time.monotonic() - t0
    done = res.stages[0].write_bytes
    if done == 0:
        return None
    how = f"read and {' '.join(argv)}" if argv else "read"
    return Measured(done, took, f"{done / 1e6:.0f} MB of {label} file {filenum} ({how})")


def seconds_for(total: int | None, m: Measured | None) -> float | None:
    if not total or m is None or m.rate <= 0:
        return None
    return total / m.rate
