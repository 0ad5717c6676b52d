"""Restore chains: which images, in which order, rebuild a DLE.

The incremental rule of Amanda (and of dump): a level N image holds what
changed since the newest image of a lower level made before it.  So the
chain is found backwards from the newest usable image: its predecessor is
the newest earlier image of a lower level, until level 0.  That makes a newer
level 0 end every older chain, and a newer level 1 supersede an older level
2.  A jump of more than one level means an image the chain depends on is
missing, which is an error, never a silent partial restore.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from essentials.errors import CatalogError

from .model import Dump
from .tapelist import Volume


@dataclass
class Chain:
    host: str
    disk: str
    dumps: list[Dump] = field(default_factory=list)
    program: str | None = None

    @property
    def levels(self) -> list[int]:
        return [d.level for d in self.dumps]

    def volumes(self) -> list[str]:
        """Labels in the order they will be used, each once."""
        seen, out = set(), []
        for d in self.dumps:
            for p in sorted(d.parts, key=lambda p: p.partnum):
                if p.label not in seen:
                    seen.add(p.label)
                    out.append(p.label)
        return out

    def to_dict(self) -> dict:
        return {"host": self.host, "disk": self.disk, "program": self.program,
                "dumps": [d.to_dict() for d in self.dumps]}


def _overwritten(d: Dump, tapelist: dict[str, Volume] | None) -> str | None:
    """Why d is gone from its volume, or None.

    The tapelist holds the datestamp of the run that last wrote each volume;
    if that is newer than the run that wrote d's part there, the volume was
    relabelled and written over since.
    """
    if not tapelist:
        return None
    for p in d.parts:
        v = tapelist.get(p.label)
        if v is None:
            return f"volume {p.label} is not in the tapelist (it was removed or relabelled)"
        if p.written and v.datestamp.ljust(14, "0") > p.written.ljust(14, "0"):
            return f"volume {p.label} was overwritten on {v.datestamp}"
    return None


def compute_chain(dumps: list[Dump], host: str, disk: str, until: str | None = None,
                  tapelist: dict[str, Volume] | None = None,
                  available: set[str] | None = None) -> Chain:
    """The chain that restores (host, disk) as of `until` (default: newest).

    `available`, when given, is the set of labels at hand; an image on an
    available volume is preferred to a copy of it on one that is not.
    """
    mine = [d for d in dumps if d.host == host and d.disk == disk]
    if until:
        # a date alone means the end of that day
        limit = until + "235959"[len(until) - 8:] if len(until) >= 8 else until.ljust(14, "9")
        mine = [d for d in mine if d.sortdate <= limit]
    name = f"{host}:{disk}"
    if not mine:
        raise CatalogError(f"{name}: no dump of this DLE in the catalog"
                           + (f" up to {until}" if until else ""))
    usable, rejected = [], []
    for d in mine:
        if d.status != "OK":
            why = d.message or d.status
        elif d.missing_parts():
            why = f"part(s) {d.missing_parts()} missing from the catalog"
        else:
            why = _overwritten(d, tapelist)
        (rejected if why else usable).append((d, why))
    good = [d for d, _ in usable]
    if not good:
        d, why = max(rejected, key=lambda x: x[0].sortdate)
        raise CatalogError(f"{name}: no usable dump; the newest, level {d.level} of "
                           f"{d.date}, is unusable: {why}")

    def rank(d: Dump):
        on_hand = available is None or all(p.label in available for p in d.parts)
        return (d.sortdate, on_hand)

    # one image per (date, level): prefer the copy on a volume at hand
    best: dict[tuple, Dump] = {}
    for d in good:
        k = (d.sortdate, d.level)
        if k not in best or rank(d) > rank(best[k]):
            best[k] = d
    good = sorted(best.values(), key=lambda d: (d.sortdate, d.level))

    # images that became the base of later incrementals: every one whose
    # dumper succeeded, usable or not (a failed dumper made no image)
    based = good + [d for d, _ in rejected if not d.dump_failed]
    why_of = {id(d): why for d, why in rejected}

    chain = [good[-1]]
    while chain[-1].level > 0:
        cur = chain[-1]
        base = [d for d in based if d.sortdate < cur.sortdate and d.level < cur.level]
        if base:
            real = max(base, key=lambda d: (d.sortdate, d.level))
            if id(real) in why_of and not any(
                    g.sortdate == real.sortdate and g.level == real.level for g in good):
                where = ", ".join(f"{p.label} file {p.filenum}" for p in real.parts)
                raise CatalogError(
                    f"{name}: the level {cur.level} dump of {cur.date} is based on the "
                    f"level {real.level} dump of {real.date} ({where or 'no volume'}), "
                    f"which is unusable: {why_of[id(real)]}")
        earlier = [d for d in good if d.sortdate < cur.sortdate and d.level < cur.level]
        if not earlier:
            hint = ""
            lost = [(d, why) for d, why in rejected
                    if d.level == 0 and d.sortdate < cur.sortdate]
            if lost:
                last, why = max(lost, key=lambda x: x[0].sortdate)
                where = ", ".join(f"{p.label} file {p.filenum}" for p in last.parts)
                hint = (f"; the last level 0 ({last.date}, {where or 'on no volume'}) "
                        f"is unusable: {why}")
            raise CatalogError(f"{name}: no usable level 0 before the level {cur.level} "
                               f"dump of {cur.date}{hint}")
        prev = max(earlier, key=lambda d: (d.sortdate, d.level))
        if prev.level < cur.level - 1:
            raise CatalogError(
                f"{name}: the level {cur.level} dump of {cur.date} depends on a level "
                f"{cur.level - 1} dump that is missing or unusable (the newest earlier "
                f"usable image is level {prev.level} of {prev.date})")
        chain.append(prev)
    chain.reverse()
    missing = [(d, p) for d in chain if available is not None
               for p in d.parts if p.label not in available]
    if missing:
        d, p = missing[0]
        raise CatalogError(f"{name}: volume {p.label} (level {d.level} of {d.date}, "
                           f"file {p.filenum}) is not available")
    return Chain(host, disk, chain)


def dles(dumps: list[Dump]) -> list[tuple[str, str]]:
    return sorted({d.dle for d in dumps})
