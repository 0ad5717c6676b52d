"""Drive amrestore | tar / restore for each image of a chain, in order."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from essentials.errors import AmdrError
from essentials.runner import Cmd, Runner

from .media import VtapeLibrary
from .plan import RestoreStep, amrestore_argv, extract_argv, is_tar, restoresymtable

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
    prepare = getattr(library, "prepare", None)  # tape drives: load and position
    for d in step.chain.dumps:
        if len(d.parts) != 1:
            where = ", ".join(f"{p.label} file {p.filenum}" for p in d.parts)
            raise AmdrError(f"{step.host}:{step.disk}: the level {d.level} image of {d.date} "
                            f"is split in {len(d.parts)} parts ({where}); split images are "
                            f"not restored by this version (amfetchdump on a rebuilt "
                            f"server can)")
        p = d.parts[0]
        if prepare is not None:
            prepare(runner, p.label, p.filenum)
        if not runner.dry_run:
            h = library.check_image(p.label, p.filenum, step.host, step.disk, d.date, d.level)
            check_program(step, h, p.label, p.filenum)
        left = Cmd(amrestore_argv(library.device(p.label), p.label, p.filenum,
                                  step.host, step.disk), user=AMANDA_USER)
        right = Cmd(extract_argv(step.program, step.directory),
                    cwd=None if is_tar(step.program) else step.directory)
        log.info("restoring %s:%s level %d from %s file %d into %s", step.host, step.disk,
                 d.level, p.label, p.filenum, step.directory)
        out = runner.pipeline([left, right], what=f"restore {step.host}:{step.disk} "
                              f"level {d.level}", progress=progress)
        amrestore_err = out.stages[0].stderr
        if not runner.dry_run and ("ERROR" in amrestore_err
                                   or "restoring" not in amrestore_err):
            # amrestore reports a wrong volume or a missing image and exits 0
            raise AmdrError(f"amrestore failed for {step.host}:{step.disk} level {d.level} "
                            f"({p.label} file {p.filenum}): {amrestore_err.strip()[-500:]}")
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
