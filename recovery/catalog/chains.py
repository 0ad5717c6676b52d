"""Restore chains: which images, in which order, rebuild a DLE.

The rule, per DLE (host, disk) up to a chosen date (default: the newest):
the newest level 0, then the newest later dump of each higher level, in
order.  Failed and partial dumps are not used; split dumps list all their
parts; when several copies of an image exist, the one on an available
volume is preferred.  A DLE with no usable level 0, or with a missing part
or volume, is an error that names it, what is missing and where it was last
seen.

How: the chain is found backwards from the newest usable image, because that
is Amanda's (and dump's) incremental rule: a level N image holds what
changed since the newest image of a lower level made before it.  For a
consistent history this is the forward rule above; it differs, on purpose,
when an image that became the base of a later incremental is now unusable
(its volume overwritten, its taper failed after the dumper succeeded): the
forward rule would silently pair the incremental with an older base, this
one reports the lost base.  A jump of more than one level means an image the
chain depends on is missing, which is also an error, never a silent partial
restore.

Cost: the dumps are grouped by DLE once; within a DLE only the images from
the newest back to its level 0 are examined, so a year of daily runs costs
a sort and a walk over about a week of them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter, le

from essentials.errors import CatalogError

from .model import OK, Dump
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

    def parts(self) -> list[tuple[Dump, object]]:
        """(dump, part) in the order they are read: dump by dump, part by part."""
        return [(d, p) for d in self.dumps for p in sorted(d.parts, key=lambda p: p.partnum)]

    def volumes(self) -> list[str]:
        """Labels in the order they will be used, each once."""
        seen, out = set(), []
        for _, p in self.parts():
            if p.label not in seen:
                seen.add(p.label)
                out.append(p.label)
        return out

    def to_dict(self) -> dict:
        return {"host": self.host, "disk": self.disk, "program": self.program,
                "dumps": [d.to_dict() for d in self.dumps]}


def until_limit(until: str | None) -> str | None:
    """The last sortdate `until` includes: a date alone means the end of that day.

    Accepts Amanda's datestamps (YYYYMMDD, YYYYMMDDhhmmss) and the form
    `amadmin find` prints (YYYY-MM-DD [hh:mm:ss]).
    """
    if not until:
        return None
    u = "".join(c for c in until if c.isdigit())
    if len(u) >= 8:
        return u + "235959"[len(u) - 8:] if len(u) < 14 else u[:14]
    return u.ljust(14, "9")


def _where(d: Dump) -> str:
    parts = sorted(d.parts, key=lambda p: p.partnum)
    if not parts:
        return "on no volume"
    if len(parts) == 1 and (d.nparts or 1) == 1:
        return f"{parts[0].label} file {parts[0].filenum}"
    return ", ".join(f"part {p.partnum} on {p.label} file {p.filenum}" for p in parts)


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


def unusable(d: Dump, tapelist: dict[str, Volume] | None = None) -> str | None:
    """Why d cannot be restored from, or None when it can."""
    if d.status != OK:
        return d.message or d.status
    missing = d.missing_parts()
    if missing:
        known = f"; known: {_where(d)}" if d.parts else ""
        total = f" of {d.nparts}" if d.nparts else ""
        return f"part(s) {missing} missing from the catalog ({len(missing)}{total}{known})"
    return _overwritten(d, tapelist)


_DATE = attrgetter("date")
_SORTDATE = attrgetter("sortdate")


def _in_date_order(dumps: list[Dump]) -> bool:
    """True when already oldest first: the usual case, as sources are read in order.

    Raw datestamps in lexicographic order are in sortdate order too (a
    shorter one is a prefix padded with zeros), and this check runs in C.
    """
    dates = list(map(_DATE, dumps))
    return all(map(le, dates, islice(dates, 1, None)))


class _History:
    """One DLE's dumps, oldest first, with verdicts computed only when asked.

    Images of the same datestamp (copies, or in odd histories two levels)
    form a cluster; within it higher levels count as newer, as Amanda would
    have based the higher one on the lower.
    """

    def __init__(self, host, disk, dumps, tapelist, available, ordered=None):
        self.name = f"{host}:{disk}"
        if ordered is None:
            ordered = _in_date_order(dumps)
        self.dumps = dumps if ordered else sorted(dumps, key=_SORTDATE)
        self.tapelist = tapelist
        self.available = available
        self._why: dict[int, str | None] = {}

    def why(self, d: Dump) -> str | None:
        k = id(d)
        if k not in self._why:
            self._why[k] = unusable(d, self.tapelist)
        return self._why[k]

    def on_hand(self, d: Dump) -> bool:
        return self.available is None or all(p.label in self.available for p in d.parts)

    def cluster(self, end: int) -> int:
        """Start index of the run of images with the datestamp of the one at `end`."""
        date = self.dumps[end].sortdate
        s = end
        while s > 0 and self.dumps[s - 1].sortdate == date:
            s -= 1
        return s

    def levels(self, start: int, end: int, below: int | None = None):
        """The cluster dumps[start:end+1] as [(level, copies)], highest level first."""
        by: dict[int, list[Dump]] = {}
        for d in self.dumps[start:end + 1]:
            if below is None or d.level < below:
                by.setdefault(d.level, []).append(d)
        return sorted(by.items(), reverse=True)

    def pick(self, copies: list[Dump]):
        """(the copy to use or None, [(rejected copy, why)])."""
        best, rejected = None, []
        for d in copies:
            why = self.why(d)
            if why:
                rejected.append((d, why))
            elif best is None or (self.on_hand(d) and not self.on_hand(best)):
                best = d
        return best, rejected

    def lost_level0(self, before: Dump):
        """The newest unusable level 0 older than `before`, with why, or None."""
        for d in reversed(self.dumps):
            if d.level == 0 and d.sortdate < before.sortdate:
                why = self.why(d)
                if why:
                    return d, why
        return None

    def newest(self):
        """(the newest usable image, the end of its cluster)."""
        i, newest_rejected = len(self.dumps) - 1, None
        while i >= 0:
            s = self.cluster(i)
            for _, copies in self.levels(s, i):
                top, rejected = self.pick(copies)
                if top is not None:
                    return top, i
                newest_rejected = newest_rejected or rejected[0]
            i = s - 1
        d, why = newest_rejected
        raise CatalogError(f"{self.name}: no usable dump; the newest, level {d.level} of "
                           f"{d.date} ({_where(d)}), is unusable: {why}")

    def base(self, cur: Dump, end: int):
        """(the image cur is based on, the end of its cluster); end: cur's cluster end.

        Lower levels of cur's own datestamp come first, then older datestamps.
        """
        j = end
        while j >= 0:
            s = self.cluster(j)
            for _, copies in self.levels(s, j, below=cur.level):
                prev, rejected = self.pick(copies)
                if prev is not None:
                    return prev, j
                # a failed dumper made no image, so nothing was based on it;
                # any other unusable image was the base of cur
                based = [(r, why) for r, why in rejected if not r.dump_failed]
                if based:
                    real, why = based[0]
                    raise CatalogError(
                        f"{self.name}: the level {cur.level} dump of {cur.date} is based on "
                        f"the level {real.level} dump of {real.date} ({_where(real)}), "
                        f"which is unusable: {why}")
            j = s - 1
        hint = ""
        lost = self.lost_level0(cur)
        if lost:
            last, why = lost
            hint = f"; the last level 0 ({last.date}, {_where(last)}) is unusable: {why}"
        raise CatalogError(f"{self.name}: no usable level 0 before the level {cur.level} "
                           f"dump of {cur.date}{hint}")

    def chain(self) -> list[Dump]:
        top, i = self.newest()
        chain = [top]
        while chain[-1].level > 0:
            cur = chain[-1]
            prev, i = self.base(cur, i)
            if prev.level < cur.level - 1:
                raise CatalogError(
                    f"{self.name}: the level {cur.level} dump of {cur.date} depends on a "
                    f"level {cur.level - 1} dump that is missing or unusable (the newest "
                    f"earlier usable image is level {prev.level} of {prev.date})")
            chain.append(prev)
        chain.reverse()
        return chain


def _missing_volumes(name: str, chain: list[Dump], available: set[str] | None,
                     whereabouts: dict[str, str] | None) -> None:
    if available is None:
        return
    msgs, seen = [], set()
    for d in chain:
        for p in sorted(d.parts, key=lambda p: p.partnum):
            if p.label in available or p.label in seen:
                continue
            seen.add(p.label)
            part = f"part {p.partnum}/{d.nparts} of " if (d.nparts or 1) > 1 else ""
            last = (whereabouts or {}).get(p.label)
            where = f"; last seen: {last}" if last else ""
            if d.source:
                where += f"; recorded in {d.source}"
            msgs.append(f"volume {p.label} ({part}level {d.level} of {d.date}, "
                        f"file {p.filenum}) is not available{where}")
    if msgs:
        raise CatalogError(f"{name}: " + "; ".join(msgs))


def chain_of(host: str, disk: str, mine: list[Dump], until: str | None = None,
             tapelist: dict[str, Volume] | None = None,
             available: set[str] | None = None,
             whereabouts: dict[str, str] | None = None, ordered: bool | None = None) -> Chain:
    """The chain of one DLE from its own dumps (all of `mine` are of host:disk).

    ordered: whether `mine` is known to be oldest first (None: check).
    """
    limit = until_limit(until)
    if limit:
        mine = [d for d in mine if d.sortdate <= limit]
    if not mine:
        raise CatalogError(f"{host}:{disk}: no dump of this DLE in the catalog"
                           + (f" up to {until}" if until else ""))
    dumps = _History(host, disk, mine, tapelist, available, ordered).chain()
    _missing_volumes(f"{host}:{disk}", dumps, available, whereabouts)
    programs = [d.program for d in dumps if d.program]
    return Chain(host, disk, dumps, programs[0] if programs else None)


def compute_chain(dumps: list[Dump], host: str, disk: str, until: str | None = None,
                  tapelist: dict[str, Volume] | None = None,
                  available: set[str] | None = None,
                  whereabouts: dict[str, str] | None = None) -> Chain:
    """The chain that restores (host, disk) as of `until` (default: newest).

    `available`, when given, is the set of labels at hand: an image on an
    available volume is preferred to a copy of it on one that is not, and a
    chain that needs a volume not at hand is an error.  `whereabouts` says
    where each label was last seen, for that error.
    """
    mine = [d for d in dumps if d.host == host and d.disk == disk]
    return chain_of(host, disk, mine, until, tapelist, available, whereabouts)


def group(dumps: list[Dump]) -> tuple[dict[tuple[str, str], list[Dump]], set]:
    """Dumps by DLE in one pass, and the DLEs whose dumps are not in date order."""
    out: dict[tuple[str, str], list] = {}
    for d in dumps:
        k, t = (d.host, d.disk), d.date
        st = out.get(k)
        if st is None:
            out[k] = st = [[], t, True]
        elif t < st[1]:
            st[2] = False
        st[1] = t
        st[0].append(d)
    return {k: st[0] for k, st in out.items()}, {k for k, st in out.items() if not st[2]}


_HOST, _DISK = attrgetter("host"), attrgetter("disk")


def _recent(dumps: list[Dump], dates: list[str], end: int, pending: set, tapelist):
    """Per DLE, its dumps back to the cluster of its newest usable level 0.

    For a catalog in date order (as sources read it: run after run), walked
    from the newest run back; a DLE is done once the walk is older than its
    newest usable level 0, since no chain reaches past that, and the walk
    stops when every DLE is done: a year of history costs about a week.
    Returns ({dle: dumps oldest first}, the DLEs cut short).
    """
    tails: dict[tuple, list] = {k: [] for k in pending}
    stop: dict[tuple, str | None] = dict.fromkeys(pending)
    done: deque = deque()  # (sortdate of its level 0, dle), newest first
    cut = set()
    cur, sd = None, ""
    for i in range(end - 1, -1, -1):
        date = dates[i]
        if date != cur:
            cur, sd = date, date.ljust(14, "0")
            while done and done[0][0] > sd:
                k = done.popleft()[1]
                del stop[k]
                cut.add(k)
            if not stop:
                break
        d = dumps[i]
        k = (d.host, d.disk)
        if k in stop:
            tails[k].append(d)
            if stop[k] is None and d.level == 0 and unusable(d, tapelist) is None:
                stop[k] = sd
                done.append((sd, k))
    for t in tails.values():
        t.reverse()
    return tails, cut


def compute_chains(dumps: list[Dump], until: str | None = None,
                   tapelist: dict[str, Volume] | None = None,
                   available: set[str] | None = None,
                   select: list[tuple[str, str]] | None = None,
                   whereabouts: dict[str, str] | None = None,
                   also=(), match=None):
    """Every DLE's chain: (chains, errors as (host, disk, message)), both sorted by DLE.

    `select`: the DLEs wanted (default: every DLE with a dump), `also`: more
    of them (the disklist's); one with no dump at all is an error.
    `match(host, disk)`, when given, keeps only the DLEs it accepts.
    """
    limit = until_limit(until)
    dates = list(map(_DATE, dumps))
    # all in C: at a large site these passes are most of the cost
    in_order = all(map(le, dates, islice(dates, 1, None)))
    everything = set(zip(map(_HOST, dumps), map(_DISK, dumps)))
    wanted = (set(select) if select is not None else everything) | set(also)
    if match is not None:
        wanted = {k for k in wanted if match(*k)}
    if in_order:
        end = bisect_right(dates, limit) if limit else len(dumps)
        present = everything if end == len(dumps) else \
            set(zip(map(_HOST, islice(dumps, end)), map(_DISK, islice(dumps, end))))
        hist, cut = _recent(dumps, dates, end, wanted & present, tapelist)
        ordered = set(hist)
    else:
        hist, unordered = group(dumps)
        cut, ordered = set(), set(hist) - unordered
    chains, errors, again = [], [], []
    for k in sorted(wanted):
        try:
            chains.append(chain_of(k[0], k[1], hist.get(k, []), until, tapelist, available,
                                   whereabouts, ordered=k in ordered))
        except CatalogError as e:
            if k in cut:
                again.append(k)  # its error may lie in the history cut off
            else:
                errors.append((k[0], k[1], str(e)))
    if again:
        full: dict[tuple, list] = {k: [] for k in again}
        for d in dumps:
            t = full.get((d.host, d.disk))
            if t is not None:
                t.append(d)
        for k in again:
            try:
                chains.append(chain_of(k[0], k[1], full[k], until, tapelist, available,
                                       whereabouts, ordered=True))
            except CatalogError as e:
                errors.append((k[0], k[1], str(e)))
        chains.sort(key=lambda c: (c.host, c.disk))
        errors.sort()
    return chains, errors


def dles(dumps: list[Dump]) -> list[tuple[str, str]]:
    return sorted({d.dle for d in dumps})
