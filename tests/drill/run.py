"""`make drill`: recover every source system onto other hardware and boot it; print the table.

The last line is `drill: N/N layouts booted`; the exit status is 0 only when
all booted.  The same runs as tests/drill/test_drill.py, without pytest.
"""

from __future__ import annotations

import argparse
import sys

from tests.vm.guest import build_guest

from . import recover_boot


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="make drill", description=__doc__.splitlines()[0])
    ap.add_argument("layouts", nargs="*", default=["a", "b", "c"])
    ap.add_argument("--jobs", type=int, default=1,
                    help="drills at a time (default 1: each layout's seconds uncontended)")
    args = ap.parse_args(argv)
    image = build_guest()
    print(f"drill {' '.join(args.layouts)}: recovering, {args.jobs} at a time ...", flush=True)
    ds = recover_boot.run_all(args.layouts, image, jobs=args.jobs)
    for layout, tb in ds.errors.items():
        print(f"drill {layout}: CRASHED\n{tb}", flush=True)
    results = list(ds.drills.values())
    for d in results:
        layout = d.layout
        problems = recover_boot.check(d)
        print(f"drill {layout}: " + ("booted" if not problems else "; ".join(problems)),
              flush=True)
        for c in recover_boot.changes(d):
            print(f"  finalize: {c}")
        if problems:
            print(d.explain())
    print()
    print(recover_boot.HEADER)
    for d in results:
        print(recover_boot.row(d))
    booted = sum(1 for d in results if not recover_boot.check(d))
    print(f"drill: {booted}/{len(args.layouts)} layouts booted")
    return 0 if booted == len(args.layouts) else 1


if __name__ == "__main__":
    sys.exit(main())
