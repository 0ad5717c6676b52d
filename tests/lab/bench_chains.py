"""Bench: restore chains for a large site's catalog.

A synthetic catalog of 1,000 hosts x 10 DLEs x a year of daily runs (3.65
million dump records), with the level pattern Amanda's planner produces: a
level 0 once a week (staggered over the week, as Amanda balances fulls),
level 1 the two days after, then bumped to 2 and 3; about 1 % of the dumps
fail and are retried at the same level the next run.  Twenty volumes a day,
a tapelist that keeps the whole year, every volume at hand.

Building the catalog is not timed; computing every DLE's chain from the
flat list of dumps (grouping by DLE included) is.  Target: under 2 s.
Exit status 1 over the target, or if a chain comes out wrong.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
from datetime import date, timedelta

from recovery.catalog.chains import compute_chains
from recovery.catalog.model import FAILED, Dump, Part
from recovery.catalog.tapelist import Volume

HOSTS = int(os.environ.get("AMDR_BENCH_HOSTS", "1000"))
DLES = 10
DAYS = 365
VOLUMES_PER_DAY = 20
FAIL_RATE = 0.01
TARGET_S = 2.0
START = date(2025, 1, 1)


def level_for(days_since_full: int) -> int:
    return 0 if days_since_full == 0 else min(1 + (days_since_full - 1) // 2, 3)


def build(hosts: int = HOSTS, seed: int = 1):
    """(dumps, tapelist, available, expected levels of the newest chain per DLE)."""
    rnd = random.Random(seed)
    dumps: list[Dump] = []
    tapelist: dict[str, Volume] = {}
    stamps = [(START + timedelta(days=n)).strftime("%Y%m%d") + "010000" for n in range(DAYS)]
    # every DLE's state: days since its last good level 0, and a pending retry
    dles = [(f"host{h:04d}.example.com", f"/srv/vol{k}", (h * DLES + k) % 7)
            for h in range(hosts) for k in range(DLES)]
    since = {i: -1 for i in range(len(dles))}
    retry_level: dict[int, int] = {}
    expected: dict[tuple, list[int]] = {}
    for day, stamp in enumerate(stamps):
        filenums = [0] * VOLUMES_PER_DAY
        labels = [f"DAILY-{day * VOLUMES_PER_DAY + v:05d}" for v in range(VOLUMES_PER_DAY)]
        for lab in labels:
            tapelist[lab] = Volume(lab, stamp, True)
        for i, (host, disk, offset) in enumerate(dles):
            if i in retry_level:
                level = retry_level.pop(i)
            elif since[i] < 0 and day % 7 != offset and day < 7:
                continue  # not yet in the rotation
            elif day % 7 == offset:
                level = 0
            else:
                level = level_for(since[i] + 1)
            v = i % VOLUMES_PER_DAY
            if rnd.random() < FAIL_RATE:
                d = Dump(host, disk, stamp, level, [], 1, FAILED, "[data timeout]",
                         dump_failed=True)
                retry_level[i] = level
            else:
                filenums[v] += 1
                d = Dump(host, disk, stamp, level,
                         [Part(labels[v], filenums[v], 1, stamp)], 1)
                since[i] = 0 if level == 0 else since[i] + 1
                chain = expected.setdefault((host, disk), [])
                if level == 0:
                    chain[:] = [0]
                else:
                    while chain and chain[-1] >= level:
                        chain.pop()
                    chain.append(level)
            dumps.append(d)
    return dumps, tapelist, set(tapelist), expected


def main(argv=None) -> int:
    t0 = time.monotonic()
    dumps, tapelist, available, expected = build()
    built = time.monotonic() - t0
    print(f"catalog: {HOSTS} hosts x {DLES} DLEs x {DAYS} days = {len(dumps):,} dumps, "
          f"{len(tapelist):,} volumes (built in {built:.1f} s, not timed)")
    gc.collect()
    t1 = time.perf_counter()
    chains, errors = compute_chains(dumps, tapelist=tapelist, available=available)
    took = time.perf_counter() - t1
    wrong = [c for c in chains if c.levels != expected[(c.host, c.disk)]]
    images = sum(len(c.dumps) for c in chains)
    print(f"chains: {len(chains):,} DLEs, {images:,} images, {len(errors)} errors, "
          f"{len(wrong)} wrong")
    print(f"time: {took:.3f} s for every DLE's chain ({took / max(len(chains), 1) * 1e6:.0f} "
          f"us per DLE); target {TARGET_S:.1f} s")
    ok = took <= TARGET_S and not errors and not wrong and len(chains) == HOSTS * DLES
    for h, d, m in errors[:5]:
        print(f"  error {m}")
    for c in wrong[:5]:
        print(f"  wrong {c.host}:{c.disk}: {c.levels}, expected {expected[(c.host, c.disk)]}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
