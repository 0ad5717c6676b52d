"""Read the "AMANDA VERIFY REPORT" that amverify (Amanda up to 2.5) mailed.

Why bother: on a site whose server is lost, old verify mails in someone's
mailbox may be the only record of which dump sits at which file of which
volume.  The report names no file numbers, but amverify read each volume
from file 1 on, one report line per file, so the Nth file line after
`Volume LABEL, Date DATE` is file N (the label is file 0):

  Checked HOST.DISK.DATE.LEVEL                          read back fine
  Skipped PROG check on partial dump HOST.DISK.DATE.LEVEL.PART   a split part
  Skipped HOST.DISK.DATE.LEVEL (** Cannot do PROG dumps)         not checked
  ** Error detected (HOST.DISK.DATE.LEVEL)              then amrestore's and
                                                        the checker's stderr
  End-of-Tape detected.  /  Too many errors.           end of this volume

The names are amrestore's file names, whose disk part went through
sanitise_filename ('/' became '_', from 3.0 also ':' and '\\'), so a disk can
only be given back its real name by matching it against the disklist.
Amanda from 2.5.2 on printed a header summary after "restoring" instead
(`split dumpfile: date D host H disk D part N/M lev L ...`); that form
carries the real disk name and is read too.
"""

from __future__ import annotations

import logging
import re

from .amconf import DiskEntry
from .assemble import Seen
from .model import FAILED, OK, Part
from ..media.quoting import split_quoted

log = logging.getLogger(__name__)

_VOLUME = re.compile(r"^Volume (\S+), Date (\S+)$")
_CHECKED = re.compile(r"^Checked (.+)$")
_PARTIAL = re.compile(r"^Skipped (.*?) ?check on partial dump (.+)$")
_SKIPPED = re.compile(r"^Skipped (.+?) \((.*)\)$")
_ERROR = re.compile(r"^\*\* Error detected \((.+)\)$")
_SPLIT_TOTAL = re.compile(r"^Split dump (.+) should have (\d+) total pieces$")
_FILENAME = re.compile(
    r"^(?P<hd>.+)\.(?P<date>\d{8}(?:\d{6})?)\.(?P<level>\d{1,2})(?:\.(?P<part>\d+))?$")
# lines that end the current volume, or start the next one
_VOLUME_END = ("End-of-Tape detected.", "Too many errors.", "Fresh tape. Skipping...")
_SLOT_START = ("Loading ", "Using device ", "** Error loading slot", "Error reading tape label")
_RESTORING = re.compile(r"^amrestore: +\d+: restoring ")


def sanitised_forms(disk: str) -> set[str]:
    """Every file-name form some Amanda version gave this disk name."""
    return {
        disk.replace("/", "_"),  # 2.4 and 2.5 sanitise_filename
        re.sub(r"[/:\\]", "_", disk),  # 2.6 and later
        disk.replace("_", "__").replace("/", "_"),  # old_sanitise_filename
    }


def _split_guess(hd: str, hosts: set[str]) -> tuple[str, str]:
    """Host and disk from "HOST.DISK" when no disklist entry matched.

    A known host name wins (host names have dots too); otherwise an
    absolute path starts with '_', so the first "._" separates them.
    """
    for h in sorted(hosts, key=len, reverse=True):
        if hd.startswith(h + "."):
            return h, hd[len(h) + 1:]
    i = hd.find("._")
    if i > 0:
        return hd[:i], hd[i + 1:]
    host, _, disk = hd.partition(".")
    return host, disk


def match_name(hd: str, disklist: list[DiskEntry] | None) -> tuple[str, str, str]:
    """(host, disk, message) for amrestore's "HOST.SANITISED_DISK"."""
    if disklist:
        hits = sorted({(e.host, e.disk) for e in disklist
                       if any(hd == f"{e.host}.{s}" for s in sanitised_forms(e.disk))})
        if len(hits) == 1:
            return hits[0][0], hits[0][1], ""
        host, sdisk = _split_guess(hd, {e.host for e in disklist})
        if hits:
            names = ", ".join(f"{h}:{d}" for h, d in hits)
            return host, sdisk, (f"disk name {sdisk!r} is a file-name form ('/' became '_') "
                                 f"that matches several disklist entries: {names}")
        return host, sdisk, (f"disk name {sdisk!r} is a file-name form ('/' became '_') "
                             f"that matches no disklist entry")
    host, sdisk = _split_guess(hd, set())
    return host, sdisk, (f"disk name {sdisk!r} is a file-name form ('/' became '_'); "
                         f"it could not be matched without a disklist")


def parse_name(name: str, disklist) -> dict | None:
    """What a file line names: host, disk, date, level, part, message."""
    name = name.strip()
    if re.match(r"^(split |cont )?dumpfile: ", name):
        t = split_quoted(name.split(":", 1)[1])
        kv = {t[i]: t[i + 1] for i in range(len(t) - 1)}
        try:
            part = kv.get("part", "1/1").split("/")[0]
            return {"host": kv["host"], "disk": kv["disk"], "date": kv["date"],
                    "level": int(kv["lev"]), "part": int(part), "message": ""}
        except (KeyError, ValueError):
            return None
    m = _FILENAME.match(name)
    if not m:
        return None
    host, disk, message = match_name(m.group("hd"), disklist)
    return {"host": host, "disk": disk, "date": m.group("date"),
            "level": int(m.group("level")), "part": int(m.group("part") or 1),
            "message": message, "raw": f"{m.group('hd')}.{m.group('date')}.{m.group('level')}"}


def parse_verify(text: str, source: str = "",
                 disklist: list[DiskEntry] | None = None) -> list[Seen]:
    lines = [ln.rstrip("\r") for ln in text.splitlines()]
    out: list[Seen] = []
    by_raw: dict[str, list[Seen]] = {}
    volume, written, filenum = None, None, 0
    failing: list[str] | None = None  # where the error lines of the last file go
    notes: list[tuple[Seen, list[str], str]] = []  # (seen, what it said, name note)

    def file_line(name: str, status=OK, note=""):
        nonlocal filenum
        filenum += 1
        said = [note] if note else []
        n = parse_name(name, disklist)
        if n is None:
            log.warning("%s: %s file %d: cannot read the dump name %r", source, volume,
                        filenum, name)
            return said  # the position still counts
        s = Seen(n["host"], n["disk"], n["date"], n["level"],
                 Part(volume, filenum, n["part"], written), status, source=source)
        out.append(s)
        notes.append((s, said, n["message"]))
        by_raw.setdefault(n.get("raw", ""), []).append(s)
        return said

    for i, line in enumerate(lines):
        m = _VOLUME.match(line)
        if m:
            volume, filenum, failing = m.group(1), 0, None
            written = m.group(2) if m.group(2).isdigit() and m.group(2) != "0" else None
            continue
        m = _SPLIT_TOTAL.match(line)
        if m:
            guessed = i + 1 < len(lines) and lines[i + 1].startswith("NOTE: Header field")
            for s in by_raw.get(m.group(1), []) if not guessed else []:
                s.nparts = int(m.group(2))
            continue
        if volume is None:
            continue
        if line in _VOLUME_END or line.startswith(_SLOT_START):
            volume, failing = None, None
            continue
        if (m := _CHECKED.match(line)):
            failing = None
            file_line(m.group(1))
        elif (m := _PARTIAL.match(line)):
            failing = None
            file_line(m.group(2))
        elif (m := _SKIPPED.match(line)):
            failing = None
            file_line(m.group(1), note=f"amverify did not check it ({m.group(2)})")
        elif (m := _ERROR.match(line)):
            failing = file_line(m.group(1), FAILED,
                                f"amverify: error reading {volume} file {filenum + 1}")
        elif failing is not None and line.strip() and not _RESTORING.match(line):
            failing.append(line.strip())
    for s, said, name_note in notes:
        s.message = "; ".join(x for x in [": ".join(said[:2])] + said[2:] + [name_note] if x)
    return out
