"""Parse the output of `amadmin CONF find` into Dump records.

3.5 prints:
  date                host      disk lv storage pool tape or file file part status
  2026-11-22 01:23:18 localhost /dev/loop0p2 0 probe probe PROBE-01 1 1/1 OK
Older versions have no storage/pool columns and may print a date alone.
"""

from __future__ import annotations

import re

from .model import FAILED, OK, PARTIAL, Dump, Part
from ..media.quoting import split_quoted

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}$")
_STATUSES = {"OK", "PARTIAL", "FAIL", "FAILED"}


def parse(text: str) -> list[Dump]:
    lines = text.splitlines()
    has_storage = False
    dumps: dict[tuple, Dump] = {}
    for line in lines:
        if not line.strip():
            continue
        if line.startswith("date"):
            has_storage = " storage " in line
            continue
        t = split_quoted(line)
        if not t or not _DATE.match(t[0]):
            continue
        date = t[0].replace("-", "")
        rest = t[1:]
        if rest and _TIME.match(rest[0]):
            date += rest[0].replace(":", "")
            rest = rest[1:]
        host, disk, level = rest[0], rest[1], int(rest[2])
        rest = rest[3:]
        if has_storage:
            rest = rest[2:]
        if len(rest) >= 2 and "/" in rest[1]:
            rest = [""] + rest  # a failed dump: the label column is empty
        label, filenum, partspec = rest[0], int(rest[1]), rest[2]
        # status: "PART_STATUS" when both are OK, else "PART_STATUS DUMP_STATUS"
        statuses = []
        for tok in rest[3:5]:
            if tok in _STATUSES:
                statuses.append(tok)
            else:
                break
        part_status = statuses[0] if statuses else "FAILED"
        dump_status = statuses[1] if len(statuses) > 1 else part_status
        message = " ".join(rest[3 + len(statuses):])
        pn, _, total = partspec.partition("/")
        d = dumps.setdefault((host, disk, date, level), Dump(host, disk, date, level))
        tot = int(total) if total.lstrip("-").isdigit() else -1
        if tot > 0:
            d.nparts = tot
        if part_status == OK and label:
            d.parts.append(Part(label, filenum, int(pn)))
        if dump_status == OK:
            continue
        d.message = message or dump_status
        if dump_status.startswith("PARTIAL"):
            d.status = PARTIAL
        else:
            d.status = FAILED
            d.dump_failed = not label
    for d in dumps.values():
        if d.nparts is None and d.parts:
            d.nparts = len(d.parts)
    return list(dumps.values())
