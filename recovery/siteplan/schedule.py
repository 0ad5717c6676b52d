"""Which volume in which drive when, so that the site's hosts come back soonest.

The problem.  Every host to recover has DLEs; each DLE a restore chain
(level 0, then each higher level, in order); each image one or more parts,
each part a file on a volume.  Amanda puts each night's dumps of all hosts
on that night's volumes, so one volume holds images of many hosts, and one
host needs many volumes.  The rules:
  - the Amanda server comes first: its own DLEs, read from the volumes
    directly; then its database is rebuilt (rebuild-server) and only then
    are the other hosts' images read, through it;
  - a chain's images are read in order (level 0 before 1, part 1 before 2),
    because each is applied to the restored tree as it streams off the
    volume; and a DLE mounted inside another DLE waits for it (a tar -G
    of / must not run after /srv was filled), as the restore driver does;
  - a volume is in one drive at a time; a drive reads one file at a time;
  - a host takes at most `streams` reads at once (the restore's --jobs);
  - loading a volume (unload, robot, load, position) costs `load_s`;
    moving on to a later file costs reading the files between (their
    sizes from the catalog) or `seek_s` (spacing forward), whichever is
    less; going back, or over files of unknown size, costs `seek_s`.
A read takes its bytes / `throughput`.

The heuristic (event-driven list scheduling over volume passes, in waves).
Hosts are ranked: servers, then by `priority` (1 first, none last), then
by size, smallest first, then by name.  Each priority value is a wave (the
hosts without one are the last), because every host has images on nearly
every recent volume: reading each volume once for everyone would bring no
host back before the very end, so a wave reads only its own hosts' images
and the volumes go in once per wave instead.  Whenever a drive falls
free, it chooses among the volumes not busy in another drive that hold a
read whose predecessors are done by then: the lowest wave first, then the
volume already in this drive, then the oldest volume (chains run from old
to new volumes, so date order lets a volume's reads be ready when it goes
in).  It then makes one pass over that volume, from its first ready read
on in file order round the volume (a tape streams forward; one rewind at
most), reading every read of that wave (or an earlier one) whose
predecessors are done by the time the head gets there, whichever host it
belongs to.  A read whose predecessor (on another drive) or whose host's
streams are busy is waited for when the wait is shorter than `wait_s`
(default: a load), and left for a later pass otherwise.  A drive with
nothing ready waits for the next read to finish elsewhere.  Within a wave
the ranks only break ties: the sweep in date order decides.

What it gives (tests/lab/bench_siteplan.py: 1,000 hosts x 10 DLEs x a year,
8 drives, 54 TB, 27,178 reads on 245 volumes): planned in under 1 s; each
volume loaded exactly once per wave; the makespan 1.18x the bound with the
positioning no plan avoids (loads of every volume, one move per run of
needed files, the server's restore and rebuild first); against the bare
byte bound 1.03x when loads and seeks cost nothing and 1.48x with 60 s loads
and 10 s seeks, where no plan can do better than 1.25x: on a site whose
chains are sparse on the volumes (most reads are not the next file),
positioning is a large part of the work.  The priority waves cost the
whole site about 1.9 h of 18.5 (without them: 16.6 h, 273 loads instead of
591) and bring the priority-1 hosts back by 1.9 h instead of 16.6.  Each
decision looks at the volumes with ready reads, so the cost is about
(passes x volumes) + reads.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from dataclasses import asdict, dataclass, field

from essentials.errors import ConfigError

NO_PRIORITY = float("inf")


# -- input ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PartIn:
    label: str
    filenum: int
    bytes: int
    estimated: bool = False  # the catalog did not say: estimated from the DLE's others


@dataclass
class ImageIn:
    date: str
    level: int
    parts: list[PartIn]  # in part order

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts)


@dataclass
class DLEIn:
    disk: str
    images: list[ImageIn]  # the restore chain: level 0 first

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.images)


@dataclass
class HostIn:
    name: str
    dles: list[DLEIn]
    priority: int | None = None  # 1 first; None after every numbered one
    role: str | None = None  # for people: "mail", "database"...
    server: bool = False  # the Amanda server: restored first, then rebuilt

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.dles)


@dataclass
class Params:
    drives: int = 1
    throughput: float = 100e6  # bytes per second, per drive and stream
    load_s: float = 60.0  # unload, robot, load, position at the first file
    seek_s: float = 10.0  # position at a file that is not the next one
    rebuild_s: float = 600.0  # rebuild-server after the server's restore
    streams: int | None = 2  # reads of one host at once (None: no limit)
    wait_s: float | None = None  # a drive waits this long for a read (None: load_s)

    def check(self):
        if not isinstance(self.drives, int) or self.drives < 1:
            raise ConfigError(f"drives: {self.drives!r}: expected a whole number, 1 or more")
        if not self.throughput or self.throughput <= 0:
            raise ConfigError(f"throughput: {self.throughput!r}: expected a rate above 0")
        for name in ("load_s", "seek_s", "rebuild_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: {getattr(self, name)!r}: expected 0 or more "
                                  f"seconds")
        if self.streams is not None and self.streams < 1:
            raise ConfigError(f"streams: {self.streams!r}: expected 1 or more (or none)")

    @property
    def wait(self) -> float:
        return self.load_s if self.wait_s is None else self.wait_s


# -- output --------------------------------------------------------------------------

@dataclass
class Read:
    host: str
    disk: str
    level: int
    date: str
    part: int
    nparts: int
    label: str
    filenum: int
    bytes: int
    start: float
    end: float
    estimated: bool = False


@dataclass
class Load:
    """One stay of a volume in a drive: loaded at `loaded`, read from `start`
    to `end` (a later pass on the same stay adds its reads)."""

    drive: int  # 1-based
    label: str
    loaded: float
    start: float
    end: float
    reads: list[Read] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.reads)


@dataclass
class HostPlan:
    name: str
    rank: int  # 1-based: the order hosts are wanted in
    priority: int | None
    role: str | None
    server: bool
    bytes: int
    dles: int
    images: int
    start: float | None  # its first read (None: nothing to read)
    finish: float | None  # its last read done


@dataclass
class SitePlan:
    params: Params
    hosts: list[HostPlan]  # by rank
    drives: list[list[Load]]  # per drive, in time order
    makespan: float
    server_ready: float  # the server restored and rebuilt: the others may start
    bound: dict  # the lower bound: total, longest (host), value
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.makespan / self.bound["value"] if self.bound["value"] else 1.0

    @property
    def floor(self) -> float:
        """No plan is shorter: the positioned bound when known, else the bytes'."""
        return self.bound.get("positioned", self.bound["value"])

    @property
    def loads(self) -> list[Load]:
        return [ld for d in self.drives for ld in d]

    def to_dict(self) -> dict:
        return {
            "params": asdict(self.params),
            "makespan": round(self.makespan, 1),
            "server_ready": round(self.server_ready, 1),
            "bound": {k: (round(v, 1) if isinstance(v, float) else v)
                      for k, v in self.bound.items()},
            "ratio": round(self.ratio, 3),
            "hosts": [asdict(h) for h in self.hosts],
            "drives": [{"drive": i + 1, "loads": [
                {"label": ld.label, "loaded": round(ld.loaded, 1), "start": round(ld.start, 1),
                 "end": round(ld.end, 1), "bytes": ld.bytes,
                 "reads": [{k: (round(v, 1) if isinstance(v, float) else v)
                            for k, v in asdict(r).items()} for r in ld.reads]}
                for ld in loads]} for i, loads in enumerate(self.drives)],
            "notes": list(self.notes),
        }


# -- ranking and the lower bound -----------------------------------------------------

def rank(hosts: list[HostIn]) -> list[HostIn]:
    """Servers, then priority (1 first, none last), then smallest first, then name."""
    return sorted(hosts, key=lambda h: (not h.server,
                                        NO_PRIORITY if h.priority is None else h.priority,
                                        h.bytes, h.name))


def lower_bound(hosts: list[HostIn], p: Params, reads: "_Reads | None" = None) -> dict:
    """No plan is shorter: the total read on every drive at once, nor the
    longest host (its longest chain read in order, or its bytes over its
    streams).  Loads, seeks and the rebuild are left out of `value`;
    `positioned` adds what no plan avoids either: each volume needed loaded
    once, and each run of needed files on it reached once (from the
    previous run: reading over the files between, or spacing forward); and,
    with an Amanda server to restore first, its restore and rebuild before
    the others' work (the rules' prefix)."""
    total = sum(h.bytes for h in hosts) / (p.drives * p.throughput)
    longest, who = 0.0, None
    lanes = min(p.streams or p.drives, p.drives)
    for h in hosts:
        t = max([d.bytes / p.throughput for d in h.dles] + [h.bytes / (lanes * p.throughput)])
        if t > longest:
            longest, who = t, h.name
    out = {"total": total, "longest": longest, "longest_host": who,
           "value": max(total, longest)}
    if reads is not None:
        extra = _positioning(reads, p, set(range(len(reads.labels))), None) / p.drives
        positioned = max(total + extra, longest)
        # the rules add a prefix no plan avoids: nothing of the others is read
        # before the servers are restored (at least one volume loaded, their
        # longest chain or their bytes over the streams) and rebuilt; after it,
        # the others' bytes and their own positioning on every drive at once
        servers = [h for h in hosts if h.server]
        if servers:
            others = [h for h in hosts if not h.server]
            theirs = {hr for hr, h in enumerate(hosts) if not h.server}
            vols = {reads.vol[i] for i, hr in enumerate(reads.host) if hr in theirs}
            first = max(max([d.bytes / p.throughput for d in h.dles]
                            + [h.bytes / (lanes * p.throughput)]) for h in servers)
            first += (p.load_s if any(h.bytes for h in servers) else 0.0) + p.rebuild_s
            # (a drive may load its first volume while the server is rebuilt)
            rest = (sum(h.bytes for h in others) / p.throughput
                    + _positioning(reads, p, vols, theirs)
                    - min(p.drives, len(vols)) * p.load_s) / p.drives
            positioned = max(positioned, first + max(rest, 0.0))
        out["positioned"] = positioned
    return out


def _positioning(reads: "_Reads", p: Params, vols: set, hosts: set | None) -> float:
    """Seconds of loads and moves no plan avoids for the reads of `hosts` (None:
    all) on the volumes `vols`: each loaded once, each run of needed files
    reached once from the one before (reading over the files between,
    spacing forward, or loading the volume again, whichever is least)."""
    wanted: dict[int, list[int]] = {}
    for i, v in enumerate(reads.vol):
        if v in vols and (hosts is None or reads.host[i] in hosts):
            wanted.setdefault(v, []).append(reads.file[i])
    total = len(wanted) * p.load_s
    for v, files in wanted.items():
        prev = None
        for n in sorted(set(files)):
            # (a load reaches any file: a reload may stand in for a long move)
            total += min(reads.move(v, prev, n, p.seek_s), p.load_s) \
                if prev is not None else 0.0
            prev = n
    return total


def waves(ranked: list[HostIn]) -> list[int]:
    """Per host (in rank order) its wave: the servers 0, then one per priority
    value, 1 first, the hosts without one last."""
    values = sorted({h.priority for h in ranked if not h.server and h.priority is not None})
    index = {v: n for n, v in enumerate(values, 1)}
    last = len(values) + 1
    return [0 if h.server else index[h.priority] if h.priority is not None else last
            for h in ranked]


def parents(dles: list[DLEIn]) -> dict[int, int]:
    """DLE index -> the index of the DLE whose directory holds it (its
    nearest ancestor among the host's DLE paths).  Device DLEs (/dev/...)
    and names that are not paths have none: where they are mounted is in
    the host's layout, not in the catalog."""
    def path(d):
        n = d.disk.rstrip("/") or "/"
        return n if n.startswith("/") and not n.startswith("/dev/") else None

    paths = [path(d) for d in dles]
    out = {}
    for i, p in enumerate(paths):
        if p is None or p == "/":
            continue
        best = None
        for j, q in enumerate(paths):
            if j == i or q is None or q == p:
                continue
            if (q == "/" or p.startswith(q + "/")) and (best is None or len(q) > len(paths[best])):
                best = j
        if best is not None:
            out[i] = best
    return out


# -- the scheduler -------------------------------------------------------------------

class _Drive:
    __slots__ = ("idx", "free", "vol", "pos", "load")

    def __init__(self, idx: int):
        self.idx, self.free, self.vol, self.pos, self.load = idx, 0.0, None, None, None


class _Reads:
    """Every read as parallel lists (a site has tens of thousands)."""

    def __init__(self, ranked: list[HostIn], p: Params, files=None):
        self.wave = waves(ranked)  # per host rank
        self.host, self.vol, self.file, self.dur = [], [], [], []
        self.meta: list[tuple] = []  # (host, disk, level, date, part, nparts, label, bytes, est)
        self.preds: list[list[int]] = []
        self.succ: list[list[int]] = []
        self.labels: list[str] = []
        self.vol_of: dict[str, int] = {}
        self.first_need: list[int] = []  # per volume: the best host rank needing it
        self.vol_date: list[str] = []  # per volume: its oldest image's date
        self.own: list[dict[int, int]] = []  # per volume: filenum -> bytes of its reads
        for hr, h in enumerate(ranked):
            ends: dict[int, int] = {}  # DLE index -> its last read
            firsts: dict[int, int] = {}
            for di, d in enumerate(h.dles):
                prev = None
                for img in d.images:
                    for pn, part in enumerate(img.parts, 1):
                        i = self._add(hr, h, d, img, pn, part, p)
                        if prev is not None:
                            self._edge(prev, i)
                        else:
                            firsts[di] = i
                        prev = i
                if prev is not None:
                    ends[di] = prev
            for child, parent in parents(h.dles).items():
                if child in firsts and parent in ends:
                    self._edge(ends[parent], firsts[child])
        self._spans(files or {}, p)

    def _spans(self, files: dict, p: Params):
        """Per volume, its files' numbers and the bytes before each (a prefix
        sum), so that the cost of moving over files is two look-ups."""
        self.fnums: list[list[int]] = []
        self.before: list[list[float]] = []
        for v, label in enumerate(self.labels):
            known = dict(files.get(label) or {})
            known.update(self.own[v])
            nums = sorted(n for n, b in known.items() if b is not None)
            acc, before = 0.0, []
            for n in nums:
                before.append(acc)
                acc += known[n] / p.throughput
            self.fnums.append(nums)
            self.before.append(before)

    def _add(self, hr, h, d, img, pn, part, p) -> int:
        v = self.vol_of.get(part.label)
        if v is None:
            v = self.vol_of[part.label] = len(self.labels)
            self.labels.append(part.label)
            self.first_need.append(hr)
            self.vol_date.append(img.date.ljust(14, "0"))
            self.own.append({})
        elif img.date.ljust(14, "0") < self.vol_date[v]:
            self.vol_date[v] = img.date.ljust(14, "0")
        self.own[v][part.filenum] = part.bytes
        i = len(self.host)
        self.host.append(hr)
        self.vol.append(v)
        self.file.append(part.filenum)
        self.dur.append(part.bytes / p.throughput)
        self.meta.append((h.name, d.disk, img.level, img.date, pn, len(img.parts), part.label,
                          part.bytes, part.estimated))
        self.preds.append([])
        self.succ.append([])
        return i

    def move(self, v: int, a: int | None, b: int, seek_s: float) -> float:
        """Seconds from just after file a to the start of file b on volume v."""
        if a is None or b == a + 1:
            return 0.0
        if b <= a:
            return seek_s
        nums = self.fnums[v]
        i, j = bisect_left(nums, a + 1), bisect_left(nums, b)
        if j - i != b - a - 1:  # a file between of unknown size
            return seek_s
        before = self.before[v]
        return min(seek_s, before[j] - before[i])

    def _edge(self, a: int, b: int):
        self.preds[b].append(a)
        self.succ[a].append(b)


def _slot(busy: list[tuple[float, float]], s: float, d: float, k: int) -> float:
    """The earliest start at or after s when fewer than k of the host's reads
    overlap [start, start + d)."""
    while True:
        over = [e for a, e in busy if a < s + d and e > s]
        if len(over) < k:
            return s
        s = min(over)


class _Sim:
    def __init__(self, reads: _Reads, p: Params, nhosts: int):
        self.r, self.p = reads, p
        n = len(reads.host)
        self.npred = [len(x) for x in reads.preds]
        self.ready = [0.0] * n
        self.done = [False] * n
        self.allowed = [False] * n  # the reads of the phase being scheduled
        self.start = [0.0] * n
        self.end = [0.0] * n
        self.busy: list[list[tuple[float, float]]] = [[] for _ in range(nhosts)]
        nv = len(reads.labels)
        pending: list[list[int]] = [[] for _ in range(nv)]
        for i in range(n):
            pending[reads.vol[i]].append(i)
        for lst in pending:
            lst.sort(key=lambda i: (reads.file[i], i))
        self.pending = pending
        self.avail: list[list] = [[] for _ in range(nv)]  # (wave, file, read)
        self.active: set[int] = set()
        self.future: list = []  # (ready time, wave, read)
        self.wave = [reads.wave[h] for h in reads.host]  # per read
        self.vol_drive: list[int | None] = [None] * nv
        self.drives = [_Drive(k) for k in range(p.drives)]
        self.loads: list[list[Load]] = [[] for _ in range(p.drives)]

    def run(self, ids: list[int], gate: float) -> float:
        """Schedule the reads `ids` (closed under predecessors' order: none of
        them waits for a read outside them), none starting before `gate`.
        Returns when the last of them ends."""
        r, p = self.r, self.p
        left = len(ids)
        if not left:
            return gate
        for i in ids:
            self.allowed[i] = True
            if self.npred[i] == 0:
                heapq.heappush(self.future, (max(self.ready[i], gate), self.wave[i], i))
        heap = [(d.free, d.idx) for d in self.drives]
        heapq.heapify(heap)
        last = gate
        while left and heap:
            t, k = heapq.heappop(heap)
            d = self.drives[k]
            if t < d.free:  # stale entry
                continue
            x = max(t, gate)
            fut = self.future
            while fut and fut[0][0] <= x:
                _, w, i = heapq.heappop(fut)
                v = r.vol[i]
                heapq.heappush(self.avail[v], (w, r.file[i], i))
                self.active.add(v)
            v = self._choose(d, t)
            if v is None:
                nxt = [fut[0][0]] if fut else []
                nxt += [o.free for o in self.drives if o.free > t]
                if not nxt:
                    break  # nothing left that this drive could ever do
                d.free = min(nxt)
                heapq.heappush(heap, (d.free, k))
                continue
            n, end = self._pass(d, v, t, gate)
            left -= n
            last = max(last, end)
            heapq.heappush(heap, (d.free, k))
        if left:
            raise AssertionError(f"site plan: {left} reads could not be scheduled")
        return last

    def _choose(self, d: _Drive, t: float) -> int | None:
        best, key = None, None
        for v in list(self.active):
            av = self.avail[v]
            while av and self.done[av[0][2]]:
                heapq.heappop(av)
            if not av:
                self.active.discard(v)
                continue
            holder = self.vol_drive[v]
            if holder is not None and holder != d.idx and self.drives[holder].free > t:
                continue  # in another drive, still reading
            kv = (av[0][0], d.vol != v, self.r.vol_date[v], self.r.first_need[v], v)
            if key is None or kv < key:
                best, key = v, kv
        return best

    def _pass(self, d: _Drive, v: int, t: float, gate: float) -> tuple[int, float]:
        r, p = self.r, self.p
        if d.vol != v:
            if d.vol is not None:
                self.vol_drive[d.vol] = None
            holder = self.vol_drive[v]
            if holder is not None:  # idle in another drive: the robot moves it
                o = self.drives[holder]
                o.vol, o.pos, o.load = None, None, None
            self.vol_drive[v] = d.idx
            d.vol, d.pos = v, None
            head = t + p.load_s
            d.load = Load(d.idx + 1, r.labels[v], t, head, head)
            self.loads[d.idx].append(d.load)
        else:
            head = t
        wave_now, _, first = self.avail[v][0]
        waves = self.wave
        lst = self.pending[v]
        at = lst.index(first)
        order = lst[at:] + lst[:at]
        n = 0
        wait = p.wait
        k = p.streams
        for i in order:
            if self.done[i] or self.npred[i] or not self.allowed[i] or waves[i] > wave_now:
                continue
            earliest = head + r.move(v, d.pos, r.file[i], p.seek_s)
            s = max(earliest, self.ready[i], gate)
            hr = r.host[i]
            dur = r.dur[i]
            if k is not None and len(self.busy[hr]) >= k:
                s = _slot(self.busy[hr], s, dur, k)
            if i != first and s - earliest > wait:
                continue
            e = s + dur
            self.busy[hr].append((s, e))
            self.done[i] = True
            self.start[i], self.end[i] = s, e
            if d.load.reads == [] and d.load.start < s:
                d.load.start = s
            d.load.reads.append(self._read(i, s, e))
            d.load.end = e
            head, d.pos = e, r.file[i]
            n += 1
            for j in r.succ[i]:
                self.npred[j] -= 1
                if e > self.ready[j]:
                    self.ready[j] = e
                if self.npred[j] == 0:
                    heapq.heappush(self.future, (max(self.ready[j], gate), waves[j], j))
        self.pending[v] = [i for i in lst if not self.done[i]]
        d.free = head
        return n, head

    def _read(self, i: int, s: float, e: float) -> Read:
        host, disk, level, date, part, nparts, label, nbytes, est = self.r.meta[i]
        return Read(host, disk, level, date, part, nparts, label, self.r.file[i], nbytes, s, e,
                    est)


def plan_site(hosts: list[HostIn], p: Params, files: dict | None = None) -> SitePlan:
    """The plan: per drive its volumes with their reads, per host its times.

    files: label -> {file number: bytes or None} of every file the catalog
    knows on each volume (the images no chain needs too): what moving over
    them costs.  Without it, only the reads' own files are known."""
    p.check()
    names = [h.name for h in hosts]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"host {', '.join(dup)} given twice: one entry per host")
    ranked = rank(hosts)
    reads = _Reads(ranked, p, files)
    sim = _Sim(reads, p, len(ranked))
    servers = [i for i in range(len(reads.host)) if ranked[reads.host[i]].server]
    others = [i for i in range(len(reads.host)) if not ranked[reads.host[i]].server]
    notes = []
    server_done = sim.run(servers, 0.0)
    server_ready = server_done + (p.rebuild_s if any(h.server for h in ranked) else 0.0)
    for d in sim.drives:  # no volume is loaded for the others while the server's are read
        d.free = max(d.free, server_done)
    end = sim.run(others, server_ready) if others else server_ready
    starts: dict[int, float] = {}
    finishes: dict[int, float] = {}
    for i, hr in enumerate(reads.host):
        s, e = sim.start[i], sim.end[i]
        starts[hr] = min(starts.get(hr, s), s)
        finishes[hr] = max(finishes.get(hr, e), e)
    out = []
    for hr, h in enumerate(ranked):
        out.append(HostPlan(h.name, hr + 1, h.priority, h.role, h.server, h.bytes, len(h.dles),
                            sum(len(d.images) for d in h.dles), starts.get(hr),
                            finishes.get(hr)))
        if not h.dles:
            notes.append(f"{h.name}: no DLE to restore")
    est = sum(1 for m in reads.meta if m[8])
    if est:
        notes.append(f"{est} of {len(reads.meta)} reads have no size in the catalog: "
                     f"estimated from their DLE's other images")
    return SitePlan(p, out, sim.loads, max(end, server_ready), server_ready,
                    lower_bound(ranked, p, reads), notes)
