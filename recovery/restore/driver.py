"""Restore each image of a chain in order: its parts read into one stream (pipe.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace

from essentials.errors import AmdrError
from essentials.runner import Runner, Source

from ..media.volumes import HEADER_SIZE, Header, VtapeLibrary
from .pipe import build as build_pipe
from .pipe import file_finder
from .plan import RestoreStep, extract_cmd, is_tar, restoresymtable

log = logging.getLogger(__name__)

AMANDA_USER = "backup"


@dataclass
class Progress:
    """Where one DLE's restore is, as data for the CLI, the UI and the report."""

    host: str
    disk: str
    level: int
    image: int  # 1-based, of `images`
    images: int
    done: int  # bytes read off the volumes for this DLE so far
    total: int | None  # bytes of all its images on the volumes (None: not known)
    seconds: float

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)

    def line(self) -> str:
        mb = self.done / 1e6
        of = f"/{self.total / 1e6:.0f}" if self.total else ""
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        eta = f", about {self.eta:.0f} s left" if self.eta is not None else ""
        return (f"  {self.host}:{self.disk} level {self.level} (image {self.image}/"
                f"{self.images}): {mb:.0f}{of} MB{pct}, {self.rate / 1e6:.1f} MB/s{eta}")


def image_bytes(library, dumps) -> int | None:
    """The bytes the reads of these images will write into the stream (what the
    progress counts), from the vtape files and their headers; None where the
    volumes cannot be looked at now (a tape drive)."""
    if not hasattr(library, "image_path"):
        return None
    total = 0
    try:
        for d in dumps:
            # each file read directly, its header skipped (pipe.file_read)
            total += sum(os.path.getsize(library.image_path(p.label, p.filenum)) - HEADER_SIZE
                         for p in d.parts)
    except (OSError, AmdrError):
        return None
    return total


@dataclass
class StepResult:
    host: str
    disk: str
    directory: str
    levels: list[int] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    started: float = 0.0  # wall clock (time.time()) at its start and end: parallel
    ended: float = 0.0    # streams overlap, parents end before their children start
    skipped: int = 0      # images restored by an earlier run (the restore journal)
    remade: bool = False  # its filesystem was made again (an interrupted dump restore)
    notes: list = field(default_factory=list)  # what a person should know of this restore
    files: int | None = None  # entries in its filesystem after the restore


def reach_part(runner: Runner, step: RestoreStep, library, d, p) -> Header | None:
    """Put the part's volume in reach (tapes: load, position), read its header and
    check it is the part the catalog names; None in a dry run."""
    prepare = getattr(library, "prepare", None)  # tape drives: load and position
    if prepare is not None:
        prepare(runner, p.label, p.filenum)
    if runner.dry_run and prepare is not None:
        return None  # a tape not loaded: its header is read when it is
    h = library.check_image(p.label, p.filenum, step.host, step.disk, d.date, d.level)
    if len(d.parts) > 1 and h.partnum is not None and h.partnum != p.partnum:
        raise AmdrError(f"{p.label} file {p.filenum} is part {h.partnum} of the level "
                        f"{d.level} image of {step.host}:{step.disk}, the catalog says part "
                        f"{p.partnum}")
    check_program(step, h, p.label, p.filenum)
    return h


def check_amrestore(stats, step: RestoreStep, d, p):
    """amrestore reports a wrong volume or a missing image and exits 0."""
    if stats[0].argv[0] != "amrestore":
        return  # a vtape file read directly: its header was checked before
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


def resume_point(runner: Runner, step: RestoreStep, journal, remake) -> tuple[int, bool]:
    """(images to skip, whether the filesystem was made again) from the journal."""
    if journal is None or runner.dry_run:
        return 0, False
    dle = f"{step.host}:{step.disk}"
    pos = journal.position(dle, [(d.date, d.level) for d in step.chain.dumps])
    if pos.interrupted and not is_tar(step.program):
        # restore -r cannot continue over what an interrupted run left
        if remake is None:
            raise AmdrError(f"{dle}: its dump restore was interrupted, and restore -r needs "
                            f"a fresh filesystem: make it again (amdr-recover diskinit "
                            f"--restart) and restore it anew")
        remake(step)
        journal.reset(dle, "the dump restore was interrupted: its filesystem made again")
        return 0, True
    if pos.interrupted and pos.done == 0:
        # from the first image, whatever was there: forget what the journal held
        journal.reset(dle, "interrupted, or another chain: restored from its level 0")
    elif pos.interrupted:
        log.info("%s: level %d was interrupted: extracted again over what it left", dle,
                 step.chain.dumps[pos.done].level)
    return pos.done, False


@contextlib.contextmanager
def private_tmp(runner: Runner, extract, program: str):
    """restore -r keeps its scratch files in $TMPDIR named after the dump's date
    (/tmp/rstdirDUMPDATE): a run killed mid-image left them, and the next run
    failed on them ("cannot create directory temporary ...: File exists"); two
    dump DLEs of the same second restored at once would share them.  So each
    image's restore gets a directory of its own, removed after."""
    if is_tar(program) or runner.dry_run:
        yield extract
        return
    tmp = tempfile.mkdtemp(prefix="amdr-restore-")
    try:
        yield replace(extract, env=dict(os.environ, TMPDIR=tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def restore_step(runner: Runner, step: RestoreStep, library: VtapeLibrary,
                 progress=None, journal=None, remake=None) -> StepResult:
    """journal: a RestoreJournal (images done are skipped, the interrupted one
    redone); remake(step): makes a dump DLE's filesystem again."""
    if getattr(library, "remote", False):  # a live server's amrecover (remote.py)
        return library.restore_step(runner, step, progress, journal, remake)
    res = StepResult(step.host, step.disk, step.directory)
    runner.run(["mkdir", "-p", step.directory])
    start = time.monotonic()
    res.started = time.time()
    res.skipped, res.remade = resume_point(runner, step, journal, remake)
    dle = f"{step.host}:{step.disk}"
    extract = extract_cmd(step.program, step.directory)
    total = image_bytes(library, step.chain.dumps[res.skipped:])
    base = 0  # bytes of the images already restored
    for n, d in enumerate(step.chain.dumps, 1):
        if n <= res.skipped:
            log.info("%s level %d of %s: restored by an earlier run (journal)", dle, d.level,
                     d.date)
            continue
        if d.missing_parts():
            raise AmdrError(f"{step.host}:{step.disk}: the level {d.level} image of {d.date} "
                            f"lacks part(s) {', '.join(map(str, d.missing_parts()))}")
        parts = sorted(d.parts, key=lambda p: p.partnum)
        first = reach_part(runner, step, library, d, parts[0])
        with private_tmp(runner, extract, step.program) as ext:
            out = _stream_image(runner, step, library, d, n, parts, first, ext, journal,
                                progress, start, total, base)
        base += out.bytes_through
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
    res.ended = time.time()
    return res


def part_bytes(library, part) -> int | None:
    """A vtape file's bytes past its header (what its dd writes), or None."""
    try:
        return library.image_path(part.label, part.filenum).stat().st_size - HEADER_SIZE
    except (AttributeError, OSError, AmdrError):
        return None


def _stream_image(runner, step, library, d, n, parts, first, extract, journal, progress,
                  start, total, base):
    """One image (its parts in order) into the extract command."""
    dle = f"{step.host}:{step.disk}"
    pipe = build_pipe(step.host, step.disk, d, library.device, extract, first,
                      file_of=file_finder(library))
    sources = [Source(r.cmds,
                      before=None if i == 0 else
                      (lambda p=p: reach_part(runner, step, library, d, p)),
                      check=lambda stats, p=p: check_amrestore(stats, step, d, p),
                      expect=part_bytes(library, p))
               for i, (r, p) in enumerate(zip(pipe.parts, parts))]
    log.info("restoring %s level %d (%s) from %s into %s", dle, d.level, pipe.how,
             ", ".join(f"{p.label} file {p.filenum}" for p in parts), step.directory)
    tell = None
    if progress is not None:
        def tell(read):
            progress(Progress(step.host, step.disk, d.level, n, len(step.chain.dumps),
                              base + read, total, time.monotonic() - start))
    if journal is not None and not runner.dry_run:
        journal.start(dle, d.date, d.level)
    out = runner.stream(sources, pipe.sink, progress=tell,
                        what=f"restore {dle} level {d.level}")
    if journal is not None and not runner.dry_run:
        journal.done(dle, d.date, d.level, out.bytes_through)
    return out
