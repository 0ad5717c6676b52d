"""python -m tests.lab.bench_catalog_scan: the media scan against reading the media.

Why: rebuilding the catalog from the volumes is only worth offering if it
costs a small fraction of reading them.  The lab writes about 1 GB of
incompressible dumps over its slots (four runs of 250 MB of new random files,
parts of 64 MB); then, alternately and each time from a cold page cache
(sync, `echo 3 > /proc/sys/vm/drop_caches`), it times `scan()` of the whole
chg-disk directory and `cat` of every file on it to /dev/null.  Prints both
medians and the ratio; exits 1 unless the scan takes under 10% of the read.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from recovery.catalog import tracelog
from recovery.catalog.scan import scan

from .lab import AmandaLab, sh

RUNS = int(os.environ.get("AMDR_BENCH_RUNS", "3"))
TARGET_RATIO = 0.10
MB = 1 << 20


def cold():
    sh(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(fn) -> float:
    cold()
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def main() -> int:
    if os.geteuid() != 0:
        print("the scan bench must run as root (drop_caches, the lab)", file=sys.stderr)
        return 2
    with AmandaLab(root_mb=1400, data_mb=16, swap_mb=8, slots=8, holding_mb=1600) as lab:
        conf = lab.confdir / "amanda.conf"
        conf.write_text(conf.read_text().replace(
            "  length 16000 mbytes\n", "  length 16000 mbytes\n  part-size 64m\n"))
        (lab.data_mnt / "x").write_text("x")
        for run in range(4):
            print(f"lab {lab.name}: run {run + 1}, writing 250 MB ...", flush=True)
            d = lab.mnt / f"run{run}"
            d.mkdir()
            for i in range(25):
                (d / f"f{i:02d}.bin").write_bytes(os.urandom(10 * MB))
            lab.backup()
        files = sorted(str(p) for p in lab.vtapes.glob("slot*/*") if p.is_file())
        total = sum(os.path.getsize(f) for f in files)
        volumes = len(list(lab.vtapes.glob("slot*/00000.*")))
        print(f"{len(files)} files, {total / 1e6:.0f} MB on {volumes} volumes", flush=True)

        logs = tracelog.parse_logdir(lab.state / "log")
        want = sorted((d.disk, d.date, d.level, p.label, p.filenum) for d in logs for p in d.parts)
        result = {}

        def do_scan():
            result["res"] = scan([str(lab.vtapes)])

        def do_cat():
            with open(os.devnull, "wb") as null:
                subprocess.run(["cat"] + files, stdout=null, check=True)

        t_scan, t_cat = [], []
        for i in range(RUNS):
            t_scan.append(timed(do_scan))
            t_cat.append(timed(do_cat))
            print(f"  {i + 1}: scan {t_scan[-1]:.3f} s, cat {t_cat[-1]:.3f} s", flush=True)
        res = result["res"]
        got = sorted((d.disk, d.date, d.level, p.label, p.filenum)
                     for d in res.dumps for p in d.parts)
        if got != want or res.errors:
            print(f"the scan does not match the trace logs: {res.errors}", file=sys.stderr)
            return 1
        s, c = statistics.median(t_scan), statistics.median(t_cat)
        ratio = s / c
        print(f"scan of {len(files)} headers: {s:.3f} s; cat of {total / 1e6:.0f} MB: {c:.3f} s "
              f"({total / c / 1e6:.0f} MB/s); ratio {ratio:.3f} (target < {TARGET_RATIO})")
        return 0 if ratio < TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
