"""`make drill`: recover every source system onto other hardware and boot it; print the table.

The last line is `drill: N/N layouts booted`; the exit status is 0 only when
all booted.  The same runs as tests/drill/test_drill.py, without pytest.
"""

from __future__ import annotations

import sys

from tests.vm.guest import build_guest

from . import recover_boot


def main(argv=None) -> int:
    layouts = (argv if argv is not None else sys.argv[1:]) or ["a", "b", "c"]
    image = build_guest()
    results = []
    for layout in layouts:
        print(f"drill {layout}: recovering ...", flush=True)
        d = recover_boot.run(layout, image, recover_boot.workdir_for(layout))
        results.append(d)
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
    print(f"drill: {booted}/{len(results)} layouts booted")
    return 0 if booted == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
