"""Parse Amanda trace logs (logdir/log.DATESTAMP.N) into Dump records.

The trace logs are the catalog itself: amadmin find reads them too.  Lines
used (3.5 adds optional "ST:storage" "POOL:pool" tokens after the program;
3.3 does not write them, and Amanda takes the configuration's name as the
storage of a line without one):

  START taper datestamp DATE [ST POOL] label LABEL tape N
  PART taper [ST POOL] LABEL FILENUM HOST DISK DATE PART/NPARTS LEVEL [stats]
  PARTPARTIAL taper [ST POOL] LABEL FILENUM HOST DISK DATE PART/NPARTS LEVEL ...
  DONE taper [ST POOL] HOST DISK DATE NPARTS LEVEL ...
  PARTIAL taper [ST POOL] HOST DISK DATE [NPARTS] LEVEL ...
  FAIL taper|dumper|driver|... HOST DISK DATE LEVEL ...

Before 3.0 the taper wrote no PART lines and said nothing of file numbers:
an image is the next file of the volume the last START taper named (file 1
first), which is how find.c counts them.  Those lines, the oldest without
the DATE (the START line's is meant):

  SUCCESS taper HOST DISK [DATE] LEVEL [stats]     an image
  PARTIAL taper HOST DISK [DATE] LEVEL [stats]     an image of a partial dump
  CHUNK taper HOST DISK DATE CHUNK LEVEL [stats]   one part of a split image (2.5)
  CHUNKSUCCESS taper HOST DISK DATE LEVEL [stats]  the end of a split image
"""

from __future__ import annotations

import logging
from pathlib import Path

from essentials.collectors.amanda import trace_log_order

from .model import FAILED, OK, PARTIAL, Dump, Part
from ..media.quoting import split_quoted

log = logging.getLogger(__name__)

_FAILING = ("taper", "dumper", "chunker", "driver", "planner")


class _Skip(ValueError):
    """A line read but not usable; the message says why."""


def _strip_storage(tokens: list[str], default: str = "") -> tuple[list[str], str]:
    """Drop the 3.5 "ST:x" "POOL:y" tokens after the program; return the storage.

    A line without ST: belongs to `default`, the configuration's name, as
    find.c and Amanda::DB::Catalog read it.
    """
    i, storage = 2, default
    while i < len(tokens) and tokens[i].startswith(("ST:", "POOL:")):
        if tokens[i].startswith("ST:"):
            storage = tokens[i][3:]
        i += 1
    return tokens[:2] + tokens[i:], storage


def _stat_bytes(tokens: list[str]) -> int | None:
    """The image's bytes from a line's stats, `[sec S bytes B kps K ...]` (3.x)
    or `[sec S kb K kps ...]` (older), None when the line has none."""
    for i, t in enumerate(tokens[:-1]):
        if t in ("bytes", "kb"):
            try:
                n = int(float(tokens[i + 1]))
            except ValueError:
                return None
            return n if t == "bytes" else n * 1024
    return None


def _int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


class _Reader:
    """One trace log read in order: the dumps so far and where the taper is.

    A dumper failure is followed by a retry with the same datestamp and
    level, and a split part that hit end of tape (PARTPARTIAL) is written
    again on the next volume, so neither decides the outcome: only DONE,
    PARTIAL and FAIL of the taper, or a FAIL no retry followed, do.
    """

    def __init__(self, source: str, config: str):
        self.source, self.config = source, config
        self.dumps: dict[tuple, Dump] = {}
        self.written: dict[str, str] = {}  # label -> datestamp of the run writing it
        self.partial_at: dict[tuple, str] = {}  # dump -> where its last part hit end of tape
        # the volume the last START taper (or PART line) named, the datestamp
        # of that run and the last file written on it: where a pre-3.0 image is
        self.label: str | None = None
        self.datestamp: str | None = None
        self.filenum = 0

    def handler(self, kind: str, prog: str):
        if kind == "FAIL":
            return self.fail if prog in _FAILING else None
        if prog != "taper":
            return None
        return {"START": self.start, "PART": self.part, "PARTPARTIAL": self.partpartial,
                "DONE": self.result, "PARTIAL": self.result, "SUCCESS": self.success,
                "CHUNK": self.chunk, "CHUNKSUCCESS": self.chunksuccess}.get(kind)

    def get(self, host, disk, date, level, storage="") -> Dump:
        key = (host, disk, date, level, storage)
        if key not in self.dumps:
            self.dumps[key] = Dump(host, disk, date, level, nparts=None, status="PENDING",
                                   storage=storage, source=self.source)
        return self.dumps[key]

    @staticmethod
    def retried(d: Dump):
        """An image written after a failed attempt: the failure is history."""
        if d.status == FAILED:
            d.status, d.message, d.dump_failed, d.parts = "PENDING", "", False, []

    def next_file(self) -> tuple[str, int] | None:
        """Where a pre-3.0 image went: the next file of the current volume."""
        if self.label is None:
            return None
        self.filenum += 1
        return self.label, self.filenum

    def add_part(self, d: Dump, label: str, filenum: int, partnum: int,
                 size: int | None = None):
        part = Part(label, filenum, partnum, self.written.get(label), size)
        d.parts = [p for p in d.parts if p.partnum != partnum] + [part]

    def dated(self, t: list[str]) -> tuple[str, int | None, list[str]]:
        """(DATE, LEVEL, the rest) of HOST DISK DATE ...; the oldest logs have no DATE.

        find.c takes a token shorter than 3 characters for the level, and
        the datestamp of the taper run for the date.
        """
        date = t[4]
        if len(date) < 3:
            if self.datestamp is None:
                raise _Skip("a line without datestamp and no START taper line before it")
            return self.datestamp, int(date), t[5:]
        return date, None, t[5:]

    def start(self, t):
        if "label" in t and "datestamp" in t:
            self.label = t[t.index("label") + 1]
            self.datestamp = t[t.index("datestamp") + 1]
            self.written[self.label] = self.datestamp
            self.filenum = 0

    def part(self, t):
        t, st = _strip_storage(t, self.config)
        label, filenum, host, disk, date, partspec, level = t[2:9]
        pn, _, total = partspec.partition("/")
        fn, n, lv = int(filenum), int(pn), int(level)  # all read before a record is made
        d = self.get(host, disk, date, lv, st)
        self.retried(d)
        self.add_part(d, label, fn, n, _stat_bytes(t[9:]))
        self.label, self.filenum = label, fn
        tot = _int(total)
        if tot and tot > 0:
            d.nparts = tot

    def partpartial(self, t):
        # this part hit end of tape; the taper retries it on the next
        # volume, and the dump's DONE or PARTIAL decides the outcome
        t, st = _strip_storage(t, self.config)
        label, filenum, host, disk, date, _, level = t[2:9]
        fn, lv = int(filenum), int(level)
        self.label, self.filenum = label, fn
        self.partial_at[(host, disk, date, lv, st)] = f"{label} file {fn}"

    def result(self, t):
        """DONE or PARTIAL: HOST DISK DATE [NPARTS] LEVEL [stats] ...

        Before 3.0 there was no NPARTS: find.c and Amanda::DB::Catalog take
        it as missing when the token after the next one opens the stats
        ("[sec ...").  Such a PARTIAL with no PART lines is a pre-3.0 image
        of a partial dump, and like SUCCESS it is the next file on the volume.
        """
        kind = t[0]
        t, st = _strip_storage(t, self.config)
        host, disk = t[2:4]
        date, level, rest = self.dated(t)
        nparts = None
        if level is None:
            if len(rest) >= 2 and not rest[1].startswith("["):
                nparts, level = int(rest[0]), int(rest[1])
            else:
                level = int(rest[0])
        d = self.get(host, disk, date, level, st)
        if nparts is not None:
            d.nparts = nparts
        if kind == "DONE":
            d.status, d.message, d.dump_failed = OK, "", False
            return
        where = self.partial_at.get((host, disk, date, level, st))
        if nparts is None and not d.parts:
            self.retried(d)
            place = self.next_file()
            if place is not None:
                self.add_part(d, *place, 1)
                d.nparts = 1
                where = "{} file {}".format(*place)
            d.status = PARTIAL
            d.message = "Amanda logged it partial: the image is of an incomplete dump"
            if where:
                d.message += f" (on {where})"
            return
        d.status = PARTIAL
        d.message = "the taper wrote it only partially"
        if where:
            d.message += f" (a part on {where} is partial)"

    def success(self, t):
        """Before 3.0: one whole image, the next file of the volume."""
        t, st = _strip_storage(t, self.config)
        host, disk = t[2:4]
        date, level, rest = self.dated(t)
        if level is None:
            level = int(rest[0])
        place = self.next_file()
        if place is None:
            raise _Skip("an image written before any START taper line: its volume is unknown")
        d = self.get(host, disk, date, level, st)
        self.retried(d)
        self.add_part(d, *place, 1, _stat_bytes(rest))
        d.nparts = 1
        d.status, d.message, d.dump_failed = OK, "", False

    def chunk(self, t):
        """Amanda 2.5: one part of a split image, the next file of the volume."""
        t, st = _strip_storage(t, self.config)
        host, disk, date, chunknum, level = t[2:7]
        n, lv = int(chunknum), int(level)
        place = self.next_file()
        if place is None:
            raise _Skip("a part written before any START taper line: its volume is unknown")
        d = self.get(host, disk, date, lv, st)
        self.retried(d)
        self.add_part(d, *place, n, _stat_bytes(t[7:]))

    def chunksuccess(self, t):
        """Amanda 2.5: every part of a split image written; it stated no count."""
        t, st = _strip_storage(t, self.config)
        host, disk, date, level = t[2:6]
        d = self.get(host, disk, date, int(level), st)
        d.nparts = max((p.partnum for p in d.parts), default=None)
        d.status, d.message, d.dump_failed = OK, "", False

    def fail(self, t):
        prog = t[1]
        t, st = _strip_storage(t, self.config)
        host, disk, date, level = t[2:6]
        lv = _int(level)
        if lv is None:
            return
        d = self.get(host, disk, date, lv, st if prog == "taper" else "")
        if d.status == OK:
            return  # a copy already made it
        d.status = FAILED
        d.message = f"{prog}: " + (" ".join(t[6:]) or "failed")
        d.dump_failed = prog != "taper"
        if prog != "taper":
            d.parts = []  # whatever was written of this attempt is garbage

    def finish(self) -> list[Dump]:
        out = []
        for d in self.dumps.values():
            if d.status == "PENDING":
                # parts written but no DONE: the run died while taping
                d.status = PARTIAL
                d.message = "no DONE line for this dump (the run was interrupted)"
            out.append(d)
        # a dumper failure logged without storage and the retry's DONE with one
        # are the same dump: drop failures that a later success superseded
        ok = {(d.host, d.disk, d.date, d.level) for d in out if d.status == OK}
        return [d for d in out if d.status == OK or not d.dump_failed
                or (d.host, d.disk, d.date, d.level) not in ok]


def parse_lines(lines, source: str = "", config: str = "") -> list[Dump]:
    """Events in log order; the last word on a dump wins.

    config: the name of the configuration the log belongs to, which Amanda
    takes as the storage of lines without an ST: tag; without it, a PART
    line with no tag and a DONE tagged ST:CONFIG would be two images.
    """
    reader = _Reader(source, config)
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line or line.startswith(("  ", "\t")):
            continue
        t = split_quoted(line)
        if len(t) < 2:
            continue
        handle = reader.handler(t[0], t[1])
        if handle is None:
            continue
        try:
            handle(t)
        except _Skip as e:
            log.warning("%s:%d: %s: %s", source, lineno, e, line)
        except (ValueError, IndexError):
            log.warning("%s:%d: unreadable trace line: %s", source, lineno, line)
    return reader.finish()


def in_order(paths):
    """The trace logs among these files (paths or names), in the order Amanda reads them."""
    keyed = [(trace_log_order(Path(p).name), str(p), p) for p in paths]
    return [p for key, _, p in sorted(k for k in keyed if k[0] is not None)]


def logfiles(logdir: Path) -> list[Path]:
    return in_order(Path(logdir).iterdir())


def parse_logdir(logdir: Path, config: str = "") -> list[Dump]:
    out = []
    for p in logfiles(logdir):
        with open(p, encoding="utf-8", errors="replace") as f:
            out.extend(parse_lines(f, str(p), config))
    return out
