"""The rules every site plan keeps, checked from the plan and its input alone.

Written apart from the scheduler, and without its data structures, so a
scheduler bug is not mirrored here: the tests run it on synthetic sites,
the bench on the large one, and the CLI before it shows a plan (a broken
rule there is a bug, said as such).
"""

from __future__ import annotations

from collections import defaultdict

from .schedule import HostIn, SitePlan, parents

EPS = 1e-6


def violations(plan: SitePlan, hosts: list[HostIn]) -> list[str]:
    """Every broken rule, said for people; [] for a good plan."""
    out: list[str] = []
    p = plan.params
    if len(plan.drives) > p.drives:
        out.append(f"{len(plan.drives)} drives used, {p.drives} given")
    reads = []
    for di, loads in enumerate(plan.drives, 1):
        prev_end = None
        for ld in loads:
            if ld.drive != di:
                out.append(f"{ld.label} listed under drive {di} says drive {ld.drive}")
            if prev_end is not None and ld.loaded < prev_end - EPS:
                out.append(f"drive {di}: {ld.label} loaded at {ld.loaded:.0f} s while the "
                           f"volume before was read until {prev_end:.0f} s")
            if ld.reads and ld.reads[0].start < ld.loaded + p.load_s - EPS:
                out.append(f"drive {di}: {ld.label} read at {ld.reads[0].start:.0f} s, "
                           f"before its load ({ld.loaded:.0f} s + {p.load_s:.0f} s) is done")
            head = None
            for r in ld.reads:
                if r.label != ld.label:
                    out.append(f"drive {di}: a read of {r.label} in the load of {ld.label}")
                if head is not None and r.start < head - EPS:
                    out.append(f"drive {di}: two reads at once at {r.start:.0f} s")
                if abs((r.end - r.start) - r.bytes / p.throughput) > 1e-3:
                    out.append(f"{r.host}:{r.disk} level {r.level} part {r.part}: "
                               f"{r.end - r.start:.1f} s for {r.bytes} bytes")
                head = r.end
                reads.append((di, r))
            if ld.reads and ld.end < ld.reads[-1].end - EPS:
                out.append(f"drive {di}: {ld.label} ends before its last read")
            prev_end = max(prev_end or 0.0, ld.end)
    out += _one_drive_per_volume(plan)
    out += _every_image_once(reads, hosts)
    out += _order(reads, hosts, p)
    out += _hosts(plan, reads, hosts)
    return out


def _one_drive_per_volume(plan: SitePlan) -> list[str]:
    stays = defaultdict(list)
    for ld in plan.loads:
        stays[ld.label].append((ld.loaded, ld.end, ld.drive))
    out = []
    for label, ss in stays.items():
        ss.sort()
        for (a0, a1, da), (b0, b1, db) in zip(ss, ss[1:]):
            if b0 < a1 - EPS:
                out.append(f"volume {label} in drive {da} ({a0:.0f}-{a1:.0f} s) and drive "
                           f"{db} ({b0:.0f}-{b1:.0f} s) at once")
    return out


def _key(host, disk, level, date, part):
    return (host, disk, level, date, part)


def _every_image_once(reads, hosts: list[HostIn]) -> list[str]:
    want = {}
    for h in hosts:
        for d in h.dles:
            for img in d.images:
                for pn, part in enumerate(img.parts, 1):
                    want[_key(h.name, d.disk, img.level, img.date, pn)] = part
    seen = defaultdict(int)
    out = []
    for _, r in reads:
        k = _key(r.host, r.disk, r.level, r.date, r.part)
        seen[k] += 1
        part = want.get(k)
        if part is None:
            out.append(f"{r.host}:{r.disk} level {r.level} of {r.date} part {r.part} is read "
                       f"but in no chain")
        elif (part.label, part.filenum, part.bytes) != (r.label, r.filenum, r.bytes):
            out.append(f"{r.host}:{r.disk} level {r.level} part {r.part} read from {r.label} "
                       f"file {r.filenum}; the chain has it on {part.label} file "
                       f"{part.filenum}")
    for k in want:
        if seen[k] == 0:
            out.append(f"{k[0]}:{k[1]} level {k[2]} of {k[3]} part {k[4]} is never read")
        elif seen[k] > 1:
            out.append(f"{k[0]}:{k[1]} level {k[2]} of {k[3]} part {k[4]} is read "
                       f"{seen[k]} times")
    return out


def _order(reads, hosts: list[HostIn], p) -> list[str]:
    """Chain order, parents first, server first."""
    at = {_key(r.host, r.disk, r.level, r.date, r.part): r for _, r in reads}
    out = []
    server_end = max((r.end for _, r in reads if r.host in {h.name for h in hosts
                                                            if h.server}), default=None)
    servers = {h.name for h in hosts if h.server}
    gate = None if server_end is None and not servers else \
        (server_end or 0.0) + p.rebuild_s
    for h in hosts:
        spans = {}
        for di, d in enumerate(h.dles):
            seq = [at.get(_key(h.name, d.disk, img.level, img.date, pn))
                   for img in d.images for pn in range(1, len(img.parts) + 1)]
            seq = [r for r in seq if r is not None]
            for a, b in zip(seq, seq[1:]):
                if b.start < a.end - EPS:
                    out.append(f"{h.name}:{d.disk}: level {b.level} part {b.part} starts at "
                               f"{b.start:.0f} s, before level {a.level} part {a.part} ends "
                               f"({a.end:.0f} s)")
            if seq:
                spans[di] = (seq[0].start, seq[-1].end)
            if not h.server and gate is not None:
                for r in seq:
                    if r.start < gate - EPS:
                        out.append(f"{h.name}:{d.disk} read at {r.start:.0f} s, before the "
                                   f"server is restored and rebuilt ({gate:.0f} s)")
                        break
        for child, parent in parents(h.dles).items():
            if child in spans and parent in spans and \
                    spans[child][0] < spans[parent][1] - EPS:
                out.append(f"{h.name}:{h.dles[child].disk} starts before "
                           f"{h.dles[parent].disk}, which holds it, is restored")
    if p.streams:
        per = defaultdict(list)
        for _, r in reads:
            per[r.host].append(r)
        for host, rs in per.items():
            ev = sorted([(r.start, 1) for r in rs] + [(r.end, -1) for r in rs],
                        key=lambda e: (round(e[0], 6), e[1]))
            n = 0
            for _, delta in ev:
                n += delta
                if n > p.streams:
                    out.append(f"{host}: more than {p.streams} reads at once")
                    break
    return out


def _hosts(plan: SitePlan, reads, hosts: list[HostIn]) -> list[str]:
    out = []
    names = [h.name for h in plan.hosts]
    if sorted(names) != sorted(h.name for h in hosts):
        out.append("the plan's hosts are not the site's")
    by = defaultdict(list)
    for _, r in reads:
        by[r.host].append(r)
    for hp in plan.hosts:
        rs = by.get(hp.name)
        if not rs:
            continue
        if abs(hp.start - min(r.start for r in rs)) > EPS or \
                abs(hp.finish - max(r.end for r in rs)) > EPS:
            out.append(f"{hp.name}: start/finish are not its reads'")
    ends = [r.end for _, r in reads]
    if ends and plan.makespan < max(ends) - EPS:
        out.append(f"makespan {plan.makespan:.0f} s before the last read ends")
    if plan.makespan < plan.bound["value"] - EPS:
        out.append(f"makespan {plan.makespan:.0f} s under the lower bound "
                   f"{plan.bound['value']:.0f} s")
    ranks = [h.server for h in plan.hosts]
    if ranks != sorted(ranks, reverse=True):
        out.append("a host is ranked before the server")
    return out
