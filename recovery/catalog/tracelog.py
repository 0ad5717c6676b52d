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


def _strip_storage(tokens: list[str]) -> list[str]:
    """Drop the 3.5 "ST:x" "POOL:y" tokens that follow the program name."""
    i = 2
    while i < len(tokens) and tokens[i].startswith(("ST:", "POOL:")):
        i += 1
    return tokens[:2] + tokens[i:]


def _int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


def parse_lines(lines, source: str = "") -> list[Dump]:
    dumps: dict[tuple, Dump] = {}

    def get(host, disk, date, level) -> Dump:
        key = (host, disk, date, level)
        if key not in dumps:
            dumps[key] = Dump(host, disk, date, level, nparts=None, status=OK)
            dumps[key].status = "PENDING"
        return dumps[key]

    written: dict[str, str] = {}  # label -> datestamp of the run writing it
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
                t = _strip_storage(t)
                if "label" in t and "datestamp" in t:
                    written[t[t.index("label") + 1]] = t[t.index("datestamp") + 1]
            elif kind in ("PART", "PARTPARTIAL") and prog == "taper":
                t = _strip_storage(t)
                label, filenum, host, disk, date, partspec, level = t[2:9]
                pn, _, total = partspec.partition("/")
                d = get(host, disk, date, int(level))
                if kind == "PART":
                    d.parts.append(Part(label, int(filenum), int(pn), written.get(label)))
                    tot = _int(total)
                    if tot and tot > 0:
                        d.nparts = tot
                else:
                    d.status = PARTIAL
                    d.message = f"part {pn} on {label} file {filenum} is partial"
            elif kind in ("DONE", "PARTIAL") and prog == "taper":
                t = _strip_storage(t)
                host, disk, date, nparts, level = t[2:7]
                d = get(host, disk, date, int(level))
                d.nparts = int(nparts)
                if kind == "DONE" and d.status == "PENDING":
                    d.status = OK
                elif kind == "PARTIAL":
                    d.status = PARTIAL
                    d.message = d.message or "taper wrote it only partially"
            elif kind == "FAIL" and prog in ("taper", "dumper", "chunker", "driver", "planner"):
                t = _strip_storage(t)
                host, disk, date, level = t[2:6]
                lv = _int(level)
                if lv is None:
                    continue
                d = get(host, disk, date, lv)
                d.status = FAILED
                d.message = " ".join(t[6:]) or f"{prog} failed"
        except (ValueError, IndexError):
            log.warning("%s:%d: unreadable trace line: %s", source, lineno, line)
    out = []
    for d in dumps.values():
        if d.status == "PENDING":
            # parts written but no DONE: the run died while taping
            d.status = PARTIAL
            d.message = "no DONE line for this dump (the run was interrupted)"
        out.append(d)
    return out


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
