"""make bench: split images and parallel streams, each against its own baseline.

Split: the same ~1 GB data set dumped twice at level 0, once in one part and
once with `part-size 100m` (about ten parts); `amdr-recover restore-tar`
restores each (`--until` picks the image).  Ratio unsplit/split, goal >= 0.95:
joining parts must cost next to nothing.

Parallel: two DLEs of similar size (/srv, DUMP; /home, GNU tar; ~400 MB each),
each on a volume of its own; `amdr-recover restore --jobs 2` against
`--jobs 1` of the same two DLEs.  Ratio jobs1/jobs2, goal >= 1.6 on two cores.
Twice: uncompressed random data (the streams only move bytes: the disk is
the limit), and text compressed by the client (`compress client fast`: each
stream has a gzip to run, what two cores can share).

Pairs alternate their order; the page cache is dropped and a fresh filesystem
made before every run; the median of the pairwise ratios and their spread
are printed.  Exits 1 when a goal is missed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from .bench import fresh_fs, pairs, populate, ratio_line, timed
from .lab import AmandaLab, sh

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("AMDR_BENCH_RUNS", "11"))
SPLIT_TARGET = 0.95
PARALLEL_TARGET = 1.6


def collect(lab) -> Path:
    bundle = lab.base / "bundle"
    subprocess.run([str(BIN / "amdr-essentials"), "collect", "--out", str(bundle),
                    "--disk", lab.loop, "--root", str(lab.mnt), "--amanda-config", lab.name],
                   check=True, capture_output=True)
    return bundle


def scratch(lab, name: str, gb: int = 3) -> tuple[Path, Path]:
    out, img = lab.base / f"out-{name}", lab.base / f"scratch-{name}.img"
    with open(img, "wb") as f:
        f.truncate(gb << 30)
    return out, img


def split_bench() -> bool:
    with AmandaLab(root_mb=1400, data_mb=16, swap_mb=8, holding_mb=2600, slots=6) as lab:
        print(f"split: lab {lab.name}: writing the data set ...", flush=True)
        populate(lab.mnt)
        (lab.data_mnt / "x").write_text("x")
        whole = lab.backup(expect=0)
        conf = lab.confdir / "amanda.conf"
        conf.write_text(conf.read_text().replace("  length 16000 mbytes\n",
                                                 "  length 16000 mbytes\n  part-size 100m\n"))
        split = lab.backup(force_full=True, expect=0)
        nparts = {d.disk: len(d.parts) for d in lab.dumps_of(split.datestamp)}[str(lab.mnt)]
        assert nparts >= 8, nparts
        bundle = collect(lab)
        outs = {k: scratch(lab, k) for k in ("whole", "split")}

        def contender(name, run):
            def go():
                return timed([str(BIN / "amdr-recover"), "restore-tar", "--bundle", str(bundle),
                              "--vtapes", str(lab.vtapes), "--host", "localhost", "--disk",
                              str(lab.mnt), "--until", run.datestamp, "--into",
                              str(outs[name][0])], outs[name][0])
            go.name = name
            return go

        a, b = contender("whole", whole), contender("split", split)
        t_whole, t_split = pairs(a, b, RUNS, lambda fn: fresh_fs(outs[fn.name][1],
                                                                 outs[fn.name][0]))
        for out, _ in outs.values():
            if os.path.ismount(out):
                sh(["umount", str(out)])
    for i, (x, y) in enumerate(zip(t_whole, t_split)):
        print(f"  pair {i + 1}: one part {x:.2f}s, {nparts} parts {y:.2f}s, ratio {x / y:.3f}")
    med, line = ratio_line("split: one part/split", t_whole, t_split, SPLIT_TARGET)
    print(f"  medians: one part {statistics.median(t_whole):.2f}s, {nparts} parts "
          f"{statistics.median(t_split):.2f}s")
    print(line, flush=True)
    return med >= SPLIT_TARGET


def parallel_bench(compress: bool = False) -> bool:
    name = "parallel, gzip" if compress else "parallel"
    with AmandaLab(root_mb=48, data_mb=700, home_mb=700, swap_mb=8, holding_mb=1800,
                   slots=8) as lab:
        print(f"{name}: lab {lab.name}: writing the data sets ...", flush=True)
        if compress:
            conf = lab.confdir / "amanda.conf"
            conf.write_text(conf.read_text().replace("  compress none\n",
                                                     "  compress client fast\n"))
        for d in (lab.data_mnt, lab.mnt / "home"):
            big = d / "big"
            big.mkdir()
            for i in range(90):
                data = os.urandom(2 << 20).hex().encode() if compress else os.urandom(4 << 20)
                (big / f"file{i:03d}.bin").write_bytes(data)
            for n in range(20):
                sub = d / "small" / f"d{n:02d}"
                sub.mkdir(parents=True)
                for i in range(200):
                    (sub / f"f{i:03d}.txt").write_bytes(os.urandom(5 * 1024))
        for disk in (lab.root_disk, lab.data_disk, lab.home_disk):
            lab.backup(expect=0, only=[disk])
        bundle = collect(lab)
        outs = {k: scratch(lab, k) for k in ("one", "two")}

        def contender(name, jobs):
            def go():
                return timed([str(BIN / "amdr-recover"), "restore", "--bundle", str(bundle),
                              "--vtapes", str(lab.vtapes), "--target", str(outs[name][0]),
                              "--dle", lab.data_disk, "--dle", lab.home_disk,
                              "--jobs", str(jobs), "--restart"], outs[name][0])
            go.name = name
            return go

        t1, t2 = pairs(contender("one", 1), contender("two", 2), RUNS,
                       lambda fn: fresh_fs(outs[fn.name][1], outs[fn.name][0]))
        for out, _ in outs.values():
            if os.path.ismount(out):
                sh(["umount", str(out)])
    for i, (x, y) in enumerate(zip(t1, t2)):
        print(f"  pair {i + 1}: --jobs 1 {x:.2f}s, --jobs 2 {y:.2f}s, ratio {x / y:.3f}")
    med, line = ratio_line(f"{name}: jobs1/jobs2", t1, t2, PARALLEL_TARGET)
    print(f"  medians: --jobs 1 {statistics.median(t1):.2f}s, --jobs 2 "
          f"{statistics.median(t2):.2f}s")
    print(line, flush=True)
    return med >= PARALLEL_TARGET


def main() -> int:
    if os.geteuid() != 0:
        print("make bench must run as root", file=sys.stderr)
        return 2
    which = sys.argv[1:] or ["split", "parallel", "parallel-gzip"]
    ok = True
    if "split" in which:
        ok &= split_bench()
    if "parallel" in which:
        ok &= parallel_bench()
    if "parallel-gzip" in which:
        ok &= parallel_bench(compress=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
