"""The one catalog model every source (trace logs, find output, reports, media) feeds."""

from __future__ import annotations

from dataclasses import dataclass, field

OK, PARTIAL, FAILED = "OK", "PARTIAL", "FAILED"


@dataclass(frozen=True)
class Part:
    label: str
    filenum: int
    partnum: int = 1
    # datestamp of the taper run that wrote it, when the source says so
    written: str | None = field(default=None, compare=False)
    # bytes of this part on the volume, when the source says so (the taper's
    # PART line): what a site plan times its reads by
    size: int | None = field(default=None, compare=False)


@dataclass
class Dump:
    """One dump image of one DLE at one level, possibly split over parts."""

    host: str
    disk: str
    date: str  # Amanda datestamp, YYYYMMDDhhmmss (older: YYYYMMDD)
    level: int
    parts: list[Part] = field(default_factory=list)
    nparts: int | None = None  # None: not known (the taper never said DONE)
    status: str = OK
    message: str = ""
    # the dumper itself failed: no image was made, so it never became the
    # base of a later incremental (unlike an image lost on tape)
    dump_failed: bool = False
    storage: str = ""
    # restore program when the source knows it (image header): GNUTAR, DUMP,
    # APPLICATION amgtar...; otherwise it comes from the disklist
    program: str = ""
    # where this record came from (trace log file, report file, device scanned)
    source: str = field(default="", compare=False)

    @property
    def dle(self) -> tuple[str, str]:
        return (self.host, self.disk)

    @property
    def sortdate(self) -> str:
        return self.date.ljust(14, "0")

    def missing_parts(self) -> list[int]:
        have = {p.partnum for p in self.parts}
        if self.nparts is None:
            return [] if have else [1]
        return [n for n in range(1, self.nparts + 1) if n not in have]

    @property
    def usable(self) -> bool:
        return self.status == OK and bool(self.parts) and not self.missing_parts()

    def to_dict(self) -> dict:
        first = min(self.parts, key=lambda p: p.partnum) if self.parts else None
        return {
            "date": self.date,
            "level": self.level,
            "label": first.label if first else None,
            "filenum": first.filenum if first else None,
            "parts": [{"part": p.partnum, "label": p.label, "filenum": p.filenum}
                      for p in sorted(self.parts, key=lambda p: p.partnum)],
        }
