"""Parse Amanda trace logs (logdir/log.DATESTAMP.N) into Dump records.

The trace logs are the catalog itself: amadmin find reads them too.  Lines
used (3.5 adds optional "ST:storage" "POOL:pool" tokens after the program;
3.3 does not write them):

  PART taper [ST POOL] LABEL FILENUM HOST DISK DATE PART/NPARTS LEVEL [stats]
  PARTPARTIAL taper [ST POOL] LABEL FILENUM HOST DISK DATE PART/NPARTS LEVEL ...
  DONE taper [ST POOL] HOST DISK DATE NPARTS LEVEL ...
  PARTIAL taper [ST POOL] HOST DISK DATE NPARTS LEVEL ...
  FAIL taper|dumper|driver|... HOST DISK DATE LEVEL ...
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .model import FAILED, OK, PARTIAL, Dump, Part
from .quoting import split_quoted

log = logging.getLogger(__name__)

_LOGNAME = re.compile(r"^log\.(\d{8,14})\.(\d+)$")


def _strip_storage(tokens: list[str]) -> tuple[list[str], str]:
    """Drop the 3.5 "ST:x" "POOL:y" tokens after the program; return the storage."""
    i, storage = 2, ""
    while i < len(tokens) and tokens[i].startswith(("ST:", "POOL:")):
        if tokens[i].startswith("ST:"):
            storage = tokens[i][3:]
        i += 1
    return tokens[:2] + tokens[i:], storage


def _int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


def parse_lines(lines, source: str = "") -> list[Dump]:
    """Events in log order; the last word on a dump wins.

    A dumper failure is followed by a retry with the same datestamp and
    level, and a split part that hit end of tape (PARTPARTIAL) is written
    again on the next volume, so neither decides the outcome: only DONE,
    PARTIAL and FAIL of the taper, or a FAIL no retry followed, do.
    """
    dumps: dict[tuple, Dump] = {}
    written: dict[str, str] = {}  # label -> datestamp of the run writing it
    partial_at: dict[tuple, str] = {}  # dump -> where its last part hit end of tape

    def get(host, disk, date, level, storage="") -> Dump:
        key = (host, disk, date, level, storage)
        if key not in dumps:
            dumps[key] = Dump(host, disk, date, level, nparts=None, status="PENDING",
                              storage=storage, source=source)
        return dumps[key]

    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line or line.startswith(("  ", "\t")):
            continue
        t = split_quoted(line)
        if len(t) < 2:
            continue
        kind, prog = t[0], t[1]
        try:
            if kind == "START" and prog == "taper":
                t, _ = _strip_storage(t)
                if "label" in t and "datestamp" in t:
                    written[t[t.index("label") + 1]] = t[t.index("datestamp") + 1]
            elif kind == "PART" and prog == "taper":
                t, st = _strip_storage(t)
                label, filenum, host, disk, date, partspec, level = t[2:9]
                pn, _, total = partspec.partition("/")
                part = Part(label, int(filenum), int(pn), written.get(label))
                d = get(host, disk, date, int(level), st)
                if d.status == FAILED:  # a retry after a failed attempt
                    d.status, d.message, d.dump_failed, d.parts = "PENDING", "", False, []
                d.parts = [p for p in d.parts if p.partnum != part.partnum] + [part]
                tot = _int(total)
                if tot and tot > 0:
                    d.nparts = tot
            elif kind == "PARTPARTIAL" and prog == "taper":
                # this part hit end of tape; the taper retries it on the next
                # volume, and the dump's DONE or PARTIAL decides the outcome
                t2, st = _strip_storage(t)
                label, filenum, host, disk, date, _, level = t2[2:9]
                partial_at[(host, disk, date, int(level), st)] = f"{label} file {int(filenum)}"
            elif kind in ("DONE", "PARTIAL") and prog == "taper":
                t, st = _strip_storage(t)
                host, disk, date, nparts, level = t[2:7]
                nparts_i, level_i = int(nparts), int(level)
                d = get(host, disk, date, level_i, st)
                d.nparts = nparts_i
                if kind == "DONE":
                    d.status, d.message, d.dump_failed = OK, "", False
                else:
                    d.status = PARTIAL
                    d.message = "the taper wrote it only partially"
                    where = partial_at.get((host, disk, date, level_i, st))
                    if where:
                        d.message += f" (a part on {where} is partial)"
            elif kind == "FAIL" and prog in ("taper", "dumper", "chunker", "driver", "planner"):
                t, st = _strip_storage(t)
                host, disk, date, level = t[2:6]
                lv = _int(level)
                if lv is None:
                    continue
                d = get(host, disk, date, lv, st if prog == "taper" else "")
                if d.status == OK:
                    continue  # a copy already made it
                d.status = FAILED
                d.message = f"{prog}: " + (" ".join(t[6:]) or "failed")
                d.dump_failed = prog != "taper"
                if prog != "taper":
                    d.parts = []  # whatever was written of this attempt is garbage
        except (ValueError, IndexError):
            log.warning("%s:%d: unreadable trace line: %s", source, lineno, line)
    out = []
    for d in dumps.values():
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


def logfiles(logdir: Path) -> list[Path]:
    files = [p for p in Path(logdir).iterdir() if _LOGNAME.match(p.name)]
    return sorted(files, key=lambda p: (_LOGNAME.match(p.name).group(1).ljust(14, "0"),
                                        int(_LOGNAME.match(p.name).group(2))))


def parse_logdir(logdir: Path) -> list[Dump]:
    out = []
    for p in logfiles(logdir):
        with open(p, encoding="utf-8", errors="replace") as f:
            out.extend(parse_lines(f, str(p)))
    return out
