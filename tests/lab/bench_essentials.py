"""make bench, part 2: `amdr-essentials run` on the lab host.

The lab (a real Amanda server with one level 0 in its database) is the host.
The whole run (every collector, sealing with gpg, delivery to a local
directory) is timed against the part no tool can avoid: tarring /etc, done
by hand in the same run with the same tar options.  Peak memory is the
largest sum of resident memory over the run's process tree (amdr-essentials
and the tar, gpg and Amanda tools it starts), sampled every 20 ms.

Targets: run time at most 10 s beyond the tar of /etc; peak under 150 MB.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from .keys import make_keys
from .lab import AmandaLab

BIN = Path(sys.executable).parent
RUNS = int(os.environ.get("AMDR_BENCH_ESSENTIALS_RUNS", "3"))
MAX_EXTRA_S = 10.0
MAX_PEAK_MB = 150.0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kb(pid: int) -> int:
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += _rss_kb(p)
        todo += _children(p)
    return total


def run_measured(argv) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak tree RSS in MB, the finished process)."""
    peak = [0]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    done.set()
    t.join()
    wall = time.monotonic() - start
    return wall, peak[0] / 1024, subprocess.CompletedProcess(argv, proc.returncode, out, err)


def main() -> int:
    if os.geteuid() != 0:
        print("make bench must run as root", file=sys.stderr)
        return 2
    keys = make_keys()
    try:
        with AmandaLab(root_mb=64, data_mb=32, swap_mb=8, slots=4, holding_mb=400) as lab:
            lab.backup(force_full=True)
            usb = lab.base / "usb"
            cfg = {
                "host": "labhost", "state_dir": str(lab.base / "st"),
                "spool_dir": str(lab.base / "spool"), "log_file": str(lab.base / "amdr.log"),
                "gpg": {"home": str(keys.host_home), "recipients": [keys.site_fpr],
                        "signer": keys.host_fpr},
                "collect": {"layout": {"disks": [lab.loop], "root": str(lab.mnt)},
                            "amanda": {"configs": [lab.name]}},
                "deliveries": [{"type": "local", "dir": str(usb), "keep": 2,
                                "create": True}],
            }
            config = lab.base / "essentials.yaml"
            config.write_text(yaml.safe_dump(cfg))
            etc_tar = lab.base / "etc-by-hand.tar"
            tar = ["tar", "--create", "--file", str(etc_tar), "--acls", "--xattrs",
                   "--xattrs-include=*", "--directory", "/", "etc"]
            runs, hands, peaks, sizes = [], [], [], []
            for i in range(RUNS):
                start = time.monotonic()
                subprocess.run(tar, capture_output=True)  # exit 1 (file changed) is fine
                hands.append(time.monotonic() - start)
                wall, peak, p = run_measured([str(BIN / "amdr-essentials"), "run",
                                              "-c", str(config)])
                if p.returncode != 0:
                    print(p.stdout + p.stderr)
                    print(f"amdr-essentials run exit {p.returncode}")
                    return 1
                newest = max(usb.glob("labhost-*.amdr.gpg"), key=lambda q: q.name)
                runs.append(wall)
                peaks.append(peak)
                sizes.append(newest.stat().st_size)
                print(f"  run {i + 1}: amdr-essentials run {wall:.2f}s, peak {peak:.0f} MB, "
                      f"bundle {sizes[-1] / 1e6:.2f} MB; tar of /etc by hand {hands[-1]:.2f}s",
                      flush=True)
                time.sleep(1.1)  # bundle names carry the second
            etc_mb = etc_tar.stat().st_size / 1e6
            w, h, pk = statistics.median(runs), statistics.median(hands), max(peaks)
            print()
            print(f"/etc as tar: {etc_mb:.1f} MB; bundle (encrypted, compressed): "
                  f"{statistics.median(sizes) / 1e6:.2f} MB")
            print(f"amdr-essentials run (collect all, seal, deliver): median {w:.2f}s")
            print(f"tar of /etc by hand:                             median {h:.2f}s")
            print(f"beyond the tar of /etc: {w - h:.2f}s (target < {MAX_EXTRA_S:.0f} s)")
            print(f"peak memory (process tree): {pk:.0f} MB (target < {MAX_PEAK_MB:.0f} MB)")
            ok = (w - h) < MAX_EXTRA_S and pk < MAX_PEAK_MB
            print("essentials bench:", "ok" if ok else "TARGET MISSED")
            return 0 if ok else 1
    finally:
        keys.cleanup()


if __name__ == "__main__":
    sys.exit(main())
