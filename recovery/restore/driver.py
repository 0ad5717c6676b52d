"""Restore each image of a chain in order: its parts read into one stream (pipe.py)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from essentials.errors import AmdrError
from essentials.runner import Runner, Source

from .media import Header, VtapeLibrary
from .pipe import build as build_pipe
from .plan import RestoreStep, extract_cmd, is_tar, restoresymtable

log = logging.getLogger(__name__)

AMANDA_USER = "backup"


@dataclass
class StepResult:
    host: str
    disk: str
    directory: str
    levels: list[int] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0


def reach_part(runner: Runner, step: RestoreStep, library, d, p) -> Header | None:
    """Put the part's volume in reach (tapes: load, position), read its header and
    check it is the part the catalog names; None in a dry run."""
    prepare = getattr(library, "prepare", None)  # tape drives: load and position
    if prepare is not None:
        prepare(runner, p.label, p.filenum)
    if runner.dry_run:
        return None
    h = library.check_image(p.label, p.filenum, step.host, step.disk, d.date, d.level)
    if len(d.parts) > 1 and h.partnum is not None and h.partnum != p.partnum:
        raise AmdrError(f"{p.label} file {p.filenum} is part {h.partnum} of the level "
                        f"{d.level} image of {step.host}:{step.disk}, the catalog says part "
                        f"{p.partnum}")
    check_program(step, h, p.label, p.filenum)
    return h


def check_amrestore(stats, step: RestoreStep, d, p):
    """amrestore reports a wrong volume or a missing image and exits 0."""
    err = stats[0].stderr
    if "ERROR" in err or "restoring" not in err:
        raise AmdrError(f"amrestore failed for {step.host}:{step.disk} level {d.level} "
                        f"({p.label} file {p.filenum}): {err.strip()[-500:]}")


def check_program(step: RestoreStep, h, label: str, filenum: int):
    """Refuse to feed a dump image to tar or a tar image to restore."""
    have = getattr(h, "restore_program", "") or ""
    if not have or have == step.program or is_tar(have) == is_tar(step.program):
        return
    raise AmdrError(f"{label} file {filenum} is a {have} image of {step.host}:{step.disk}; "
                    f"it cannot be restored with {'tar' if is_tar(step.program) else 'restore'}")


def restore_step(runner: Runner, step: RestoreStep, library: VtapeLibrary,
                 progress=None) -> StepResult:
    res = StepResult(step.host, step.disk, step.directory)
    runner.run(["mkdir", "-p", step.directory])
    start = time.monotonic()
    extract = extract_cmd(step.program, step.directory)
    for d in step.chain.dumps:
        if d.missing_parts():
            raise AmdrError(f"{step.host}:{step.disk}: the level {d.level} image of {d.date} "
                            f"lacks part(s) {', '.join(map(str, d.missing_parts()))}")
        parts = sorted(d.parts, key=lambda p: p.partnum)
        first = reach_part(runner, step, library, d, parts[0])
        pipe = build_pipe(step.host, step.disk, d, library.device, extract, first)
        sources = [Source(r.cmds,
                          before=None if i == 0 else
                          (lambda p=p: reach_part(runner, step, library, d, p)),
                          check=lambda stats, p=p: check_amrestore(stats, step, d, p))
                   for i, (r, p) in enumerate(zip(pipe.parts, parts))]
        log.info("restoring %s:%s level %d (%s) from %s into %s", step.host, step.disk,
                 d.level, pipe.how, ", ".join(f"{p.label} file {p.filenum}" for p in parts),
                 step.directory)
        out = runner.stream(sources, pipe.sink, progress=progress,
                            what=f"restore {step.host}:{step.disk} level {d.level}")
        res.levels.append(d.level)
        res.dates.append(d.date)
        res.bytes += out.bytes_through
    sym = restoresymtable(step)
    if sym and os.path.exists(sym):
        # restore -r's bookkeeping, not part of the system; removing it must
        # not change the restored directory's mtime
        st = os.stat(step.directory)
        os.unlink(sym)
        os.utime(step.directory, ns=(st.st_atime_ns, st.st_mtime_ns))
    res.seconds = time.monotonic() - start
    return res
