"""Bench: the site recovery plan of a large site.

The catalog of bench_chains (1,000 hosts x 10 DLEs x a year of daily runs,
fulls staggered over the week, twenty volumes a day, about 1 % of dumps
failed and retried), each image given a size: a DLE's level 0 is drawn
from a log-normal (median 3 GB), an incremental is 1-5 % of it per level.
Priorities as a site would set them: 5 % of hosts 1, 15 % 2, the rest
none; host 0 is the Amanda server.  8 drives at 150 MB/s, a load 60 s, a
seek 10 s, the server's rebuild 600 s.

Timed: every DLE's chain from the flat list of dumps, the planner's
input (with every file on the volumes read), the plan.  Printed: the time
(target 5 s), the makespan against the lower bound (total bytes /
(drives x throughput), and the longest single host), and against that
bound plus the positioning no plan avoids (each volume needed loaded once,
each run of needed files on it reached once: target within 1.2x), the
loads per volume, when the priority hosts are back.  Then the same site
planned with loads and seeks free (the scheduling alone, against the byte
bound: target within 1.2x, the issue's figure, which no plan can reach
when positioning costs what it does here), and without priorities (what
the priority waves cost in all, and what they buy the first hosts).  The
plan is checked against the rules (check.py).  Exit status 1 over either target or on a
broken rule.  AMDR_BENCH_LOAD_S, AMDR_BENCH_SEEK_S change the costs.
"""

from __future__ import annotations

import gc
import math
import os
import random
import sys
import time
import zlib
from dataclasses import replace

from recovery.catalog.chains import compute_chains
from recovery.siteplan.check import violations
from recovery.siteplan.collect import hosts_from_chains, volume_files
from recovery.siteplan.schedule import Params, plan_site

from .bench_chains import DAYS, DLES, HOSTS, build

DRIVES = int(os.environ.get("AMDR_BENCH_DRIVES", "8"))
MBPS = 150.0
LOAD_S = float(os.environ.get("AMDR_BENCH_LOAD_S", "60"))
SEEK_S = float(os.environ.get("AMDR_BENCH_SEEK_S", "10"))
TARGET_S = 5.0
TARGET_RATIO = 1.2


def full_size(host: str, disk: str) -> int:
    """A DLE's level 0 bytes: the same for every full of it (log-normal, median 3 GB)."""
    rnd = random.Random(zlib.crc32(f"{host}:{disk}".encode()))
    return int(3e9 * math.exp(rnd.gauss(0.0, 1.0)))


def image_size(host: str, disk: str, date: str, level: int) -> int:
    base = full_size(host, disk)
    if level == 0:
        return base
    rnd = random.Random(zlib.crc32(f"{host}:{disk}:{date}".encode()))
    return int(base * rnd.uniform(0.01, 0.05) * level)


def sized(dumps, labels):
    """Sizes for the images on those volumes (a function of the image only,
    so giving them after the chains are found changes nothing of the chains;
    the catalog is built as bench_chains builds it)."""
    for d in dumps:
        if d.parts and d.parts[0].label in labels:
            size = image_size(d.host, d.disk, d.date, d.level)
            d.parts = [replace(p, size=size // len(d.parts)) for p in d.parts]


def site_info(hosts: int) -> dict:
    rnd = random.Random(7)
    out = {}
    for h in range(hosts):
        x = rnd.random()
        out[f"host{h:04d}.example.com"] = {"priority": 1 if x < 0.05 else 2 if x < 0.2
                                           else None}
    return out


def main(argv=None) -> int:
    t0 = time.monotonic()
    dumps, tapelist, available, _ = build()
    print(f"catalog: {HOSTS} hosts x {DLES} DLEs x {DAYS} days = {len(dumps):,} dumps "
          f"(built in {time.monotonic() - t0:.1f} s, not timed)")
    gc.collect()
    t1 = time.perf_counter()
    chains, errors = compute_chains(dumps, tapelist=tapelist, available=available)
    t_chains = time.perf_counter() - t1
    # not timed: the sizes are the catalog's (the taper's PART lines)
    sized(dumps, {p.label for c in chains for d in c.dumps for p in d.parts})
    t2 = time.perf_counter()
    hosts, _ = hosts_from_chains(chains, site_info(HOSTS), servers={"host0000.example.com"})
    files = volume_files(dumps, {p.label for h in hosts for d in h.dles for i in d.images
                                 for p in i.parts})
    params = Params(drives=DRIVES, throughput=MBPS * 1e6, load_s=LOAD_S, seek_s=SEEK_S,
                    rebuild_s=600)
    plan = plan_site(hosts, params, files)
    t_plan = time.perf_counter() - t2
    took = t_chains + t_plan
    bad = violations(plan, hosts)
    loads = plan.loads
    vols = {ld.label for ld in loads}
    reads = sum(len(ld.reads) for ld in loads)
    total = sum(h.bytes for h in hosts)
    print(f"site: {len(hosts)} hosts, {sum(len(h.dles) for h in hosts):,} DLEs, {reads:,} "
          f"reads, {total / 1e12:.1f} TB on {len(vols)} volumes; {DRIVES} drives at "
          f"{MBPS:.0f} MB/s, a load {LOAD_S:.0f} s, a seek {SEEK_S:.0f} s")
    print(f"time: {took:.3f} s (chains {t_chains:.3f} s, plan {t_plan:.3f} s); target "
          f"{TARGET_S:.1f} s")
    b = plan.bound
    print(f"makespan: {plan.makespan / 3600:.2f} h; lower bound {b['value'] / 3600:.2f} h "
          f"(total / drives {b['total'] / 3600:.2f} h, longest host {b['longest'] / 3600:.2f} "
          f"h): ratio {plan.ratio:.3f}")
    positioned = plan.makespan / b["positioned"]
    print(f"  with the loads and moves no plan avoids, the bound is "
          f"{b['positioned'] / 3600:.2f} h: ratio {positioned:.3f}, target {TARGET_RATIO}")
    print(f"loads: {len(loads)} for {len(vols)} volumes ({len(loads) / max(len(vols), 1):.2f} "
          f"per volume: once per priority wave); server ready at "
          f"{plan.server_ready / 60:.0f} min")
    for prio in (1, 2, None):
        fin = sorted(h.finish for h in plan.hosts if h.priority == prio and not h.server
                     and h.finish is not None)
        if fin:
            print(f"priority {prio or 'none'}: {len(fin)} hosts, half back by "
                  f"{fin[len(fin) // 2] / 3600:.2f} h, all by {fin[-1] / 3600:.2f} h")
    for v in bad[:10]:
        print(f"  broken rule: {v}")
    # The goal, 1.2x the byte bound, cannot be met at these costs by any
    # plan: the positioning every plan pays (each volume loaded, each run of
    # needed files reached) is already this much above it.  It is met by the
    # scheduling alone (loads and seeks free); the plan with its costs is held
    # against the bound that includes them.
    floor = b["positioned"] / b["value"]
    print(f"  no plan is within {floor:.3f}x of the byte bound at these costs (the "
          f"positioning alone); the byte bound's goal of {TARGET_RATIO}x is held with "
          f"loads and seeks free:")
    free = plan_site(hosts, replace(params, load_s=0.0, seek_s=0.0), files)
    bad += violations(free, hosts)
    print(f"scheduling alone (loads, seeks free): makespan {free.makespan / 3600:.2f} h, "
          f"byte bound {free.bound['value'] / 3600:.2f} h: ratio {free.ratio:.3f}, target "
          f"{TARGET_RATIO}")
    # what the priorities cost the whole site, and what they buy
    flat = plan_site([replace(h, priority=None) for h in hosts], params, files)
    bad += violations(flat, hosts)
    first = sorted(h.finish for h in plan.hosts if h.priority == 1 and not h.server)
    same = {h.name for h in plan.hosts if h.priority == 1}
    flat_first = sorted(h.finish for h in flat.hosts if h.name in same and not h.server)
    back = (f"; the priority-1 hosts would be back by {flat_first[-1] / 3600:.2f} h instead "
            f"of {first[-1] / 3600:.2f} h" if first and flat_first else "")
    print(f"without priorities: makespan {flat.makespan / 3600:.2f} h (ratio "
          f"{flat.makespan / flat.bound['positioned']:.3f} to the positioned bound, "
          f"{len(flat.loads)} loads){back}, for "
          f"{(plan.makespan - flat.makespan) / 3600:.2f} h more in all")
    ok = (took <= TARGET_S and positioned <= TARGET_RATIO and free.ratio <= TARGET_RATIO
          and not bad and not errors)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
