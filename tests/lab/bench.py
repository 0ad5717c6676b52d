"""make bench: amanda-dr's restore against the same restore typed by hand.

The lab backs up about 1 GB (200 x 4 MB + 20,000 x 5 KB, uncompressed) at
level 0.  Then, in pairs whose order alternates, with the page cache dropped
before every run, the GNUTAR DLE is restored through `amdr-recover restore`
(the whole command: bundle verification, catalog, chain, preflight, header
checks, the pipeline) and by hand with `amrestore -p ... | tar -xpf -`.
Prints each pair, the medians, and the median of the pairwise ratios
hand/amanda-dr with their spread (this machine is noisy: one pair says
little); exits 1 if that median is below 0.97.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .lab import AmandaLab, sh

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("AMDR_BENCH_RUNS", "11"))
TARGET_RATIO = 0.97


def drop_caches():
    """Each run reads the volume from the disk, not from what the last one cached."""
    sh(["sync"])
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def pairs(first, second, n: int, prepare=None):
    """n pairs of runs of two contenders (callables returning seconds), the order
    alternating; the page cache dropped (and `prepare()` run) before each run.
    Returns (seconds of first, seconds of second)."""
    a, b = [], []
    for i in range(n):
        order = ((first, a), (second, b)) if i % 2 == 0 else ((second, b), (first, a))
        for fn, into in order:
            if prepare is not None:
                prepare(fn)
            drop_caches()
            into.append(fn())
    return a, b


def ratio_line(name: str, num: list[float], den: list[float], target: float) -> tuple:
    """The median of the pairwise ratios num/den and their spread, as a line."""
    r = sorted(x / y for x, y in zip(num, den))
    med = statistics.median(r)
    q = statistics.quantiles(r, n=4) if len(r) >= 4 else [r[0], med, r[-1]]
    return med, (f"{name}: median of {len(r)} pairwise ratios {med:.3f} (min {r[0]:.3f}, "
                 f"quartiles {q[0]:.3f}-{q[2]:.3f}, max {r[-1]:.3f}; must be >= {target})")


def populate(root: Path):
    big = root / "big"
    big.mkdir()
    for i in range(200):
        (big / f"file{i:03d}.bin").write_bytes(os.urandom(4 << 20))
    for d in range(100):
        sub = root / "small" / f"d{d:03d}"
        sub.mkdir(parents=True)
        for i in range(200):
            (sub / f"f{i:03d}.txt").write_bytes(os.urandom(5 * 1024))


def timed(argv, out: Path) -> float:
    """Wall time until the restored data is on disk (sync of the target fs
    included), so the page cache's write-back does not decide the race."""
    start = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[:3]}... failed ({p.returncode}): {p.stderr[-1500:]}")
    sh(["sync", "-f", str(out)])
    return time.monotonic() - start


def fresh_fs(image: Path, mnt: Path) -> str:
    """A new, empty ext4 for each timed run: the same starting point for both."""
    if os.path.ismount(mnt):
        sh(["umount", str(mnt)])
    sh(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image)])
    mnt.mkdir(exist_ok=True)
    sh(["mount", "-o", "loop", str(image), str(mnt)])
    return str(mnt)


def main() -> int:
    if os.geteuid() != 0:
        print("make bench must run as root", file=sys.stderr)
        return 2
    with AmandaLab(root_mb=1600, data_mb=16, swap_mb=8, holding_mb=3000) as lab:
        print(f"lab {lab.name}: writing the data set ...", flush=True)
        populate(lab.mnt)
        (lab.data_mnt / "x").write_text("x")
        run = lab.backup(expect=0)
        bundle = lab.base / "bundle"
        subprocess.run([str(BIN / "amdr-essentials"), "collect", "--out", str(bundle),
                        "--disk", lab.loop, "--root", str(lab.mnt),
                        "--amanda-config", lab.name], check=True, capture_output=True)
        # where the level 0 is, as a person would read it off the amdump report
        [part] = next(d for d in lab.dumps_of(run.datestamp) if d.disk == str(lab.mnt)).parts
        label, filenum = part.label, part.filenum
        slot = next(s for s in lab.vtapes.iterdir() if (s / f"00000.{label}").exists())
        image = next(slot.glob(f"{filenum:05d}.*"))
        size = image.stat().st_size
        print(f"level 0 image: {label} file {filenum}, {size / 1e6:.0f} MB", flush=True)

        out_a, out_h = lab.base / "out-amdr", lab.base / "out-hand"
        scratch = {out_a: lab.base / "scratch-amdr.img", out_h: lab.base / "scratch-hand.img"}
        for img in scratch.values():
            with open(img, "wb") as f:
                f.truncate(2 << 30)
        hand_cmd = (f"runuser -u backup -- amrestore -p -f {filenum} -l {label} "
                    f"file:{slot} localhost {lab.mnt} | tar -xpf - -C {out_h}")
        amdr = [str(BIN / "amdr-recover"), "restore", "--bundle", str(bundle),
                "--target", str(out_a), "--dle", str(lab.mnt), "--restart"]
        def run_amdr():
            return timed(amdr, out_a)

        def run_hand():
            return timed(["bash", "-o", "pipefail", "-c", hand_cmd], out_h)

        def prepare(fn):
            out = out_a if fn is run_amdr else out_h
            fresh_fs(scratch[out], out)

        times_a, times_h = pairs(run_amdr, run_hand, RUNS, prepare)
        for i, (x, y) in enumerate(zip(times_a, times_h)):
            print(f"  pair {i + 1}: amanda-dr {x:.2f}s, by hand {y:.2f}s, ratio {y / x:.3f}")
        nfiles = sum(len(f) for _, _, f in os.walk(out_h))
        for out in (out_a, out_h):
            if os.path.ismount(out):
                sh(["umount", str(out)])
        a, h = statistics.median(times_a), statistics.median(times_h)
        ratio, line = ratio_line("hand/amanda-dr", times_h, times_a, TARGET_RATIO)
        print()
        print(f"data set: {nfiles} files, {size / 1e6:.0f} MB image; page cache dropped "
              f"before each run")
        print(f"{'':22s} {'median s':>9s} {'MB/s':>8s}")
        print(f"{'amanda-dr restore':22s} {a:9.2f} {size / 1e6 / a:8.1f}")
        print(f"{'by hand (amrestore|tar)':22s} {h:9.2f} {size / 1e6 / h:8.1f}")
        print(line)
        return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
