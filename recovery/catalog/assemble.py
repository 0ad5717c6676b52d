"""Turn single sightings of image parts into Dump records.

Reports and media scans do not see dumps, they see files: one part of one
image at one place on one volume, sometimes twice (a volume verified twice,
a slot listed twice), sometimes a second copy of the same image elsewhere
(amvault).  This is where sightings become the one model: the same place
seen again is the same part; the same part number at another place is
another copy, kept as a Dump of its own so the chain code can choose.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import FAILED, OK, Dump, Part


@dataclass
class Seen:
    host: str
    disk: str
    date: str
    level: int
    part: Part
    status: str = OK
    message: str = ""
    # the total the source states (amcheckdump's "(N parts)", a header's N/M)
    nparts: int | None = None
    program: str = ""
    source: str = ""


def _place(p: Part) -> tuple[str, int]:
    return (p.label, p.filenum)


def assemble(sightings) -> list[Dump]:
    """Dumps in first-seen order; nparts stays None when no source stated it."""
    copies: dict[tuple, list[Dump]] = {}
    notes: dict[int, list[str]] = {}  # id(dump) -> its messages, each once
    for s in sightings:
        key = (s.host, s.disk, s.date, s.level)
        mine = copies.setdefault(key, [])
        same = next((d for d in mine if _place(s.part) in map(_place, d.parts)), None)
        target = same or next(
            (d for d in mine if s.part.partnum not in {p.partnum for p in d.parts}), None)
        if target is None:
            target = Dump(s.host, s.disk, s.date, s.level, nparts=None, source=s.source)
            mine.append(target)
        if same is None:
            target.parts.append(s.part)
        if s.status == FAILED:
            target.status = FAILED  # one bad read of the image is enough to distrust it
        said = notes.setdefault(id(target), [])
        if s.message and s.message not in said:
            said.append(s.message)
        if s.nparts and s.nparts > 0:
            target.nparts = max(target.nparts or 0, s.nparts)
        target.program = target.program or s.program
        if s.source and s.source not in target.source.split(", "):
            target.source = f"{target.source}, {s.source}" if target.source else s.source
    out = []
    for mine in copies.values():
        for d in mine:
            d.parts.sort(key=lambda p: p.partnum)
            d.message = "; ".join(notes.get(id(d), []))
            out.append(d)
    return out


def derive_nparts(d: Dump):
    """No source said how many parts: the highest part number found.

    A gap below it (parts 1 and 3) still shows as a missing part; a lost
    last part cannot be seen this way, which is why callers that can check
    sizes do so as well.
    """
    if d.nparts is None and d.parts:
        d.nparts = max(p.partnum for p in d.parts)
