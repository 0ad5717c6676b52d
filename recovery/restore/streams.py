"""Several DLEs restored at once (`--jobs N`), as far as the tree and the media allow.

- A DLE waits for every DLE whose directory holds its own: parents first,
  because a GNU tar `-G` restore of `/` empties the mountpoints below it
  (their directories are in its listing, empty), so `/srv` restored before
  or during `/`'s chain would be wiped again.
- Two streams never read the same volume at once, and one tape drive reads
  one stream at a time (the caller gives jobs=1 there).
- Each stream reads its own chain in order: its volumes in file-number order,
  never rewinding back.

A DLE that fails does not stop the others; one that waits for a failed
parent still runs (its data is worth having; restoring the parent later
means restoring it again, which the resume command says).
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass


@dataclass
class Outcome:
    step: object
    result: object = None
    error: BaseException | None = None


def volumes(step) -> set[str]:
    return {p.label for d in step.chain.dumps for p in d.parts}


def inside(child: str, parent: str) -> bool:
    """`child` is `parent` or below it (paths, not string prefixes)."""
    c, p = os.path.normpath(child), os.path.normpath(parent)
    return c != p and (p == "/" or c.startswith(p.rstrip("/") + "/"))


def waits_for(steps) -> list[set[int]]:
    """Per step (by index), the steps whose directories hold its own."""
    return [{j for j, o in enumerate(steps) if j != i and inside(s.directory, o.directory)}
            for i, s in enumerate(steps)]


def run(steps: list, jobs: int, restore_one, on_error=None,
        on_interrupt=None, should_stop=None) -> list[Outcome]:
    """restore_one(step) for every step, up to `jobs` at once under the rules
    above; the outcomes in the steps' order.  on_error(step, exc) is called as
    a failure happens; once should_stop() is true no other step starts (the
    ones never started have no outcome).  Interrupted (Ctrl-C, SIGTERM: they reach this thread),
    on_interrupt() stops what runs (kills the streams' processes), the
    streams' ends are recorded like any failure, and the interrupt goes on."""
    jobs = max(1, int(jobs))
    deps = waits_for(steps)
    outcomes: list[Outcome | None] = [None] * len(steps)
    pending = list(range(len(steps)))
    busy: set[str] = set()
    running: dict = {}
    fatal: list[BaseException] = []

    def ready(i: int) -> bool:
        return all(outcomes[j] is not None for j in deps[i]) and not (volumes(steps[i]) & busy)

    def settle(f, i):
        busy.difference_update(volumes(steps[i]))
        try:
            outcomes[i] = Outcome(steps[i], result=f.result())
        except (KeyboardInterrupt, SystemExit) as e:
            fatal.append(e)
            outcomes[i] = Outcome(steps[i], error=e)
        except Exception as e:  # noqa: BLE001 - recorded per DLE
            outcomes[i] = Outcome(steps[i], error=e)
            if on_error is not None:
                on_error(steps[i], e)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            while pending or running:
                if should_stop is not None and should_stop():
                    pending.clear()
                if not fatal:
                    for i in list(pending):
                        if len(running) >= jobs:
                            break
                        if ready(i):
                            pending.remove(i)
                            busy.update(volumes(steps[i]))
                            running[pool.submit(restore_one, steps[i])] = i
                if not running:
                    if fatal or not pending:
                        break
                    # nothing can start and nothing runs: volumes are freed when a
                    # stream ends and parents come first, so this is a bug
                    raise RuntimeError("restore streams: nothing ready and nothing running")
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in done:
                    settle(f, running.pop(f))
        except BaseException:
            if on_interrupt is not None:
                on_interrupt()
            for f in list(running):  # their ends, recorded before the interrupt goes on
                wait([f])
                settle(f, running.pop(f))
            raise
    if fatal:
        raise fatal[0]
    return [o for o in outcomes if o is not None]
