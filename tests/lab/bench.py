"""make bench: amanda-dr's restore against the same restore typed by hand.

The lab backs up about 1 GB (200 x 4 MB + 20,000 x 5 KB, uncompressed) at
level 0.  Then, alternately and on warm caches, the GNUTAR DLE is restored
through `amdr-recover restore` (the whole command: bundle verification,
catalog, chain, header check, the pipeline) and by hand with
`amrestore -p ... | tar -xpf -`.  Prints each time, the medians and the
ratio hand/amanda-dr; exits 1 if amanda-dr is slower than 0.95 of by hand.
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
RUNS = int(os.environ.get("AMDR_BENCH_RUNS", "7"))
TARGET_RATIO = 0.95


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
        with open(image, "rb") as f:  # warm the page cache for both contenders
            while f.read(1 << 24):
                pass

        out_a, out_h = lab.base / "out-amdr", lab.base / "out-hand"
        scratch = {out_a: lab.base / "scratch-amdr.img", out_h: lab.base / "scratch-hand.img"}
        for img in scratch.values():
            with open(img, "wb") as f:
                f.truncate(2 << 30)
        hand_cmd = (f"runuser -u backup -- amrestore -p -f {filenum} -l {label} "
                    f"file:{slot} localhost {lab.mnt} | tar -xpf - -C {out_h}")
        amdr = [str(BIN / "amdr-recover"), "restore", "--bundle", str(bundle),
                "--target", str(out_a), "--dle", str(lab.mnt)]
        times_a, times_h = [], []
        for i in range(RUNS):
            for which in ("amdr", "hand") if i % 2 == 0 else ("hand", "amdr"):
                out = out_a if which == "amdr" else out_h
                fresh_fs(scratch[out], out)
                sh(["sync"])
                if which == "amdr":
                    times_a.append(timed(amdr, out))
                else:
                    times_h.append(timed(["bash", "-o", "pipefail", "-c", hand_cmd], out))
            print(f"  run {i + 1}: amanda-dr {times_a[-1]:.2f}s, by hand {times_h[-1]:.2f}s",
                  flush=True)
        nfiles = sum(len(f) for _, _, f in os.walk(out_h))
        for out in (out_a, out_h):
            if os.path.ismount(out):
                sh(["umount", str(out)])
        a, h = statistics.median(times_a), statistics.median(times_h)
        ratio = h / a
        print()
        print(f"data set: {nfiles} files, {size / 1e6:.0f} MB image")
        print(f"{'':22s} {'median s':>9s} {'MB/s':>8s}")
        print(f"{'amanda-dr restore':22s} {a:9.2f} {size / 1e6 / a:8.1f}")
        print(f"{'by hand (amrestore|tar)':22s} {h:9.2f} {size / 1e6 / h:8.1f}")
        print(f"ratio hand/amanda-dr: {ratio:.3f} (must be >= {TARGET_RATIO})")
        return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
