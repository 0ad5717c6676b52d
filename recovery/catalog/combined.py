"""One catalog from every source at hand: live server, bundles, report mails, media scans.

Each source gives Dump records (and maybe a disklist, a tapelist, volumes it
saw).  Here they become one catalog:
- the same copy of an image seen by two sources (same host, disk, date,
  level and a part at the same label and file) is one record; copies of the
  image on other volumes stay records of their own, for the chain code to
  choose the one at hand;
- the volumes at hand: the labels in the vtape libraries that exist here,
  the ones a scan read, and the ones the person names; unknown (None) when
  no source can tell, and then no chain is refused for a missing volume;
- the program of each DLE: the image header's (Dump.program) when a source
  read it, else the disklist's dumptype (amconf.program()).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from .amconf import DiskEntry
from .chains import Chain, compute_chains
from .model import FAILED, OK, PARTIAL, Dump
from .source import ConfigCatalog
from .tapelist import Volume

log = logging.getLogger(__name__)

_RANK = {OK: 0, PARTIAL: 1, FAILED: 2}


@dataclass
class Source:
    """What one source contributed."""

    name: str
    dumps: list[Dump] = field(default_factory=list)
    disklist: list[DiskEntry] = field(default_factory=list)
    tapelist: dict[str, Volume] = field(default_factory=dict)
    # labels this source saw on media: label -> {"device": ..., "date": ...}
    volumes: dict[str, dict] = field(default_factory=dict)
    vtape_root: str | None = None
    errors: list[str] = field(default_factory=list)


def from_config(cc: ConfigCatalog, name: str) -> Source:
    return Source(name, cc.dumps, cc.disklist, cc.tapelist, vtape_root=cc.vtape_root())


def from_scan(result, devices: list[str]) -> Source:
    return Source("scan of " + ", ".join(devices), list(result.dumps),
                  volumes=dict(result.volumes), errors=list(result.errors))


def _places(d: Dump) -> set:
    return {(p.label, p.filenum) for p in d.parts}


def _absorb(into: Dump, d: Dump):
    """Merge another sighting of the same copy into `into`."""
    have = {(p.label, p.filenum): i for i, p in enumerate(into.parts)}
    for p in d.parts:
        i = have.get((p.label, p.filenum))
        if i is None:
            into.parts.append(p)
        else:
            q = into.parts[i]
            if q.written is None and p.written is not None:
                q = replace(q, written=p.written)  # the one that knows when it was written
            if q.size is None and p.size is not None:
                q = replace(q, size=p.size)
            into.parts[i] = q
    into.parts.sort(key=lambda p: p.partnum)
    if d.nparts is not None:
        into.nparts = d.nparts if into.nparts is None else max(into.nparts, d.nparts)
    # the worse verdict wins: a scan sees the headers of a dump the taper
    # logged as partial; a verify that failed to read it is reason to distrust it
    if _RANK.get(d.status, 2) > _RANK.get(into.status, 2):
        into.status = d.status
    into.dump_failed = into.dump_failed and d.dump_failed and not into.parts
    for attr in ("message", "source"):
        a, b = getattr(into, attr), getattr(d, attr)
        if b and b not in a.split("; "):
            setattr(into, attr, f"{a}; {b}" if a else b)
    into.program = into.program or d.program
    into.storage = into.storage or d.storage


def merge_dumps(lists: list[list[Dump]]) -> list[Dump]:
    """The dumps of several sources, each copy of each image once.

    One source's list is returned as it is (a source does not repeat itself);
    with several, records are copied before they are merged, so the sources'
    own lists are left alone.
    """
    lists = [lst for lst in lists if lst]
    if len(lists) <= 1:
        return list(lists[0]) if lists else []
    out: list[Dump] = []
    by_image: dict[tuple, list[Dump]] = {}
    for lst in lists:
        for d in lst:
            key = (d.host, d.disk, d.sortdate, d.level)
            copies = by_image.setdefault(key, [])
            places = _places(d)
            if places:
                same = next((c for c in copies if _places(c) & places), None)
            else:  # nothing on a volume: the same failure seen twice is one
                same = next((c for c in copies if not c.parts and c.status == d.status), None)
            if same is None:
                mine = replace(d, parts=list(d.parts))
                copies.append(mine)
                out.append(mine)
            else:
                _absorb(same, d)
    # in date order, as each source is: chains walk recent history only then
    return sorted(out, key=lambda d: d.sortdate)


@dataclass
class Catalog:
    dumps: list[Dump]
    disklist: list[DiskEntry] = field(default_factory=list)
    tapelist: dict[str, Volume] = field(default_factory=dict)
    available: set[str] | None = None
    devices: dict[str, str] = field(default_factory=dict)  # label -> device holding it
    whereabouts: dict[str, str] = field(default_factory=dict)  # label -> where last seen
    vtape_roots: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what the sources could not read
    sources: list[str] = field(default_factory=list)
    _programs: dict | None = field(default=None, repr=False, compare=False)

    def dles(self) -> list[tuple[str, str]]:
        return sorted({(e.host, e.disk) for e in self.disklist}
                      | {(d.host, d.disk) for d in self.dumps})

    def program(self, host: str, disk: str, chain: Chain | None = None) -> str | None:
        """The image header's program, else the disklist's (None: not known)."""
        if chain is not None and chain.program:
            return chain.program
        if self._programs is None:
            self._programs = {}
            for d in self.dumps:
                if d.program:
                    self._programs.setdefault((d.host, d.disk), d.program)
            for e in self.disklist:
                if e.program:
                    self._programs.setdefault((e.host, e.disk), e.program)
        return self._programs.get((host, disk))

    def chains(self, hosts=None, disks=None, until=None):
        """(chains, errors as (host, disk, message)) of the DLEs of those hosts and disks.

        Every DLE with a dump or in a disklist, unless hosts or disks narrow it.
        """
        def match(h, d):
            return (not hosts or h in hosts) and (not disks or d in disks)

        chains, errors = compute_chains(self.dumps, until, self.tapelist, self.available,
                                        None, self.whereabouts,
                                        also=[(e.host, e.disk) for e in self.disklist],
                                        match=match if hosts or disks else None)
        for c in chains:
            c.program = self.program(c.host, c.disk, c)
        return chains, errors


def library_labels(root: str) -> dict[str, str]:
    """label -> `file:SLOT` for a chg-disk directory that exists here, else {}."""
    from ..media.volumes import MediaError, VtapeLibrary  # reads the slots' label files
    if not root or not Path(root).is_dir():
        return {}
    try:
        lib = VtapeLibrary(root)
    except MediaError:
        return {}
    return {label: lib.device(label) for label in lib.labels}


def build(sources: list[Source], vtapes: list[str] = (), volumes: list[str] = (),
          libraries=library_labels) -> Catalog:
    """The catalog of all sources.

    vtapes: chg-disk directories given by the person (besides the ones the
    configurations name); volumes: labels the person says are at hand.
    libraries: how a vtape directory is read (label -> device), replaceable
    in tests.
    """
    dumps = merge_dumps([s.dumps for s in sources])
    disklist, seen = [], set()
    for s in sources:
        for e in s.disklist:
            if (e.host, e.disk) not in seen:
                seen.add((e.host, e.disk))
                disklist.append(e)
    tapelist: dict[str, Volume] = {}
    written_by: dict[str, str] = {}
    for s in sources:
        for label, v in s.tapelist.items():
            old = tapelist.get(label)
            if old is None or v.datestamp.ljust(14, "0") > old.datestamp.ljust(14, "0"):
                tapelist[label], written_by[label] = v, s.name
    roots = []
    for r in [s.vtape_root for s in sources if s.vtape_root] + list(vtapes):
        if r not in roots:
            roots.append(r)
    devices, whereabouts = {}, {}
    for label, v in tapelist.items():
        whereabouts[label] = f"written {v.datestamp} per the tapelist of {written_by[label]}"
    known = False
    for r in roots:
        found = libraries(r)
        known = known or bool(found) or Path(r).is_dir()
        for label, dev in found.items():
            devices.setdefault(label, dev)
            whereabouts[label] = f"in {dev[5:] if dev.startswith('file:') else dev}"
    for s in sources:
        for label, v in s.volumes.items():
            known = True
            dev = v.get("device") or ""
            devices.setdefault(label, dev)
            whereabouts[label] = f"on {dev} ({s.name})" if dev else s.name
    for label in volumes:
        known = True
        whereabouts.setdefault(label, "named as at hand")
    available = (set(devices) | set(volumes)) if known else None
    return Catalog(dumps, disklist, tapelist, available, devices, whereabouts, roots,
                   [e for s in sources for e in s.errors], [s.name for s in sources])
