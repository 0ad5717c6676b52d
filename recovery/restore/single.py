"""Restore one DLE into a directory: the two helpers of the old Amanda recovery guide.

"Restore a DLE with tar (or with restore) from a device, a host and a
mountpoint": with the server gone, a field engineer has the volumes and
perhaps a bundle, a mailbox of reports or nothing but the media.  Given a
label and file number, the one image there is restored; given a catalog
source, the DLE's whole chain (level 0, then each incremental) is restored
in order.  Positioning, the header check and the pipe (`amrestore -p … |
tar -xpG …` or `| restore -rf -`) are the driver's, as for a full recovery.
"""

from __future__ import annotations

import os
from pathlib import Path

from essentials.errors import CatalogError, ConfigError, RefusedError
from essentials.runner import Runner

from ..catalog.chains import Chain
from ..catalog.model import Dump, Part
from . import driver
from ..media.volumes import MediaError, parse_header, read_header
from .plan import RestoreStep, is_tar


def guard_into(into: Path, force: bool):
    """GNU tar -G deletes what the image does not list: only an empty directory is safe."""
    into.mkdir(parents=True, exist_ok=True)
    left = sorted(n for n in os.listdir(into) if n != "lost+found")
    if left and not force:
        shown = ", ".join(left[:5]) + (" ..." if len(left) > 5 else "")
        raise RefusedError(f"{into} is not empty ({shown}); restoring a level 0 there deletes "
                           f"or overwrites what is there: give an empty directory, or --force")


def image_header(library, runner: Runner, label: str, filenum: int):
    """The header of LABEL file N, wherever the library keeps it."""
    if hasattr(library, "image_path"):
        return read_header(library.image_path(label, filenum))
    library.prepare(runner, label, filenum)
    r = runner.run(["dd", f"if={library.media.path}", "bs=32k", "count=1"],
                   what=f"reading the header of {label} file {filenum}")
    return parse_header(r.stdout)


def single_image(library, runner: Runner, host: str, disk: str, label: str,
                 filenum: int) -> Chain:
    """A chain of the one image at LABEL file N, as its header describes it."""
    h = image_header(library, runner, label, filenum)
    if h is None or h.kind not in ("FILE", "SPLIT_FILE"):
        raise MediaError(f"{label} file {filenum} is not a dump image "
                         f"({h.kind if h else 'no Amanda header'})")
    if (h.host, h.disk) != (host, disk):
        raise MediaError(f"{label} file {filenum} holds {h.host}:{h.disk}, not {host}:{disk}")
    if h.kind == "SPLIT_FILE" and h.partnum not in (None, 1):
        raise MediaError(f"{label} file {filenum} is part {h.part} of an image; give the "
                         f"file of part 1")
    d = Dump(host, disk, h.date, h.level, [Part(label, filenum, 1)], 1,
             program=getattr(h, "restore_program", ""))
    return Chain(host, disk, [d], d.program or None)


def chain_from(cat, host: str, disk: str, until: str | None) -> Chain:
    """The DLE's chain from a catalog; an error names what is missing."""
    if (host, disk) not in cat.dles():
        mine = [d for h, d in cat.dles() if h == host]
        hint = (f"DLEs of {host}: {', '.join(mine)}" if mine else
                f"hosts in the catalog: {', '.join(sorted({h for h, _ in cat.dles()}))}")
        raise CatalogError(f"no DLE {host}:{disk} in the catalog ({hint}); Amanda names a "
                           f"DLE by its disklist entry, a mountpoint or a device")
    chains, errors = cat.chains([host], [disk], until)
    if errors:
        raise CatalogError(errors[0][2])
    return chains[0]


def check_program(chain: Chain, program: str):
    have = chain.program
    if have and is_tar(have) != is_tar(program):
        use = "restore-tar" if is_tar(have) else "restore-dump"
        raise ConfigError(f"{chain.host}:{chain.disk} was backed up with {have}; use {use}")


def restore(runner: Runner, chain: Chain, program: str, into: Path, library,
            progress=None) -> driver.StepResult:
    check_program(chain, program)
    step = RestoreStep(chain.host, chain.disk, program, str(into), chain.disk, chain)
    return driver.restore_step(runner, step, library, progress)
