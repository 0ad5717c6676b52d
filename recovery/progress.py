"""A restore's progress as people read it: in a terminal, one line per DLE that
updates in place (level, image i of n, bytes, MB/s, ETA); when the output is
not a terminal (cron, a serial log, a pipe, the text UI's engine), a plain
line now and then.  The engine's events (recovery/events.py) go out either
way.

The terminal's lines are tqdm's (Debian's python3-tqdm, also on the live
image): it is small and without dependencies, draws several bars at once
(one per stream with --jobs), fits them to the terminal's width as it
changes, smooths the rate its ETA is computed from, and lets other lines be
printed above the bars (`say`) without tearing them.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from . import events

_lock = threading.Lock()
_rows: dict[int, object] = {}  # terminal row -> the bar drawn there


def terminal() -> bool:
    return sys.stdout.isatty() and os.environ.get("TERM", "dumb") != "dumb" \
        and not os.environ.get("AMDR_PROGRESS_SECONDS")


def say(text: str) -> None:
    """A line printed while bars may be drawn: above them, not across."""
    with _lock:
        drawing = bool(_rows)
    if drawing:
        from tqdm import tqdm
        tqdm.write(text, file=sys.stdout)
    else:
        print(text, flush=True)


class Progress:
    """One DLE's progress (driver.Progress events in): the events always; in a
    terminal a bar; else a line every `every` seconds (5 s on a terminal
    without bars, 30 s into a log; AMDR_PROGRESS_SECONDS says otherwise)."""

    def __init__(self, every: float | None = None, bars: bool | None = None):
        env = os.environ.get("AMDR_PROGRESS_SECONDS")
        if every is None and env:
            every = float(env)
        self.every = every if every is not None else (5.0 if sys.stdout.isatty() else 30.0)
        self.bars = terminal() if bars is None else bars
        self.clock = time.monotonic
        self.last = self.last_event = self.clock()
        self.bar = None
        self.row = None

    def __call__(self, ev) -> None:
        now = self.clock()
        if now - self.last_event >= 1.0 or ev.done == ev.total:
            self.last_event = now
            events.emit("progress", dle=f"{ev.host}:{ev.disk}", level=ev.level,
                        image=ev.image, images=ev.images, done=ev.done, total=ev.total,
                        rate=round(ev.rate), eta=None if ev.eta is None else round(ev.eta, 1))
        if self.bars:
            self._draw(ev)
        elif now - self.last >= self.every:
            self.last = now
            print(ev.line(), flush=True)

    def _draw(self, ev) -> None:
        from tqdm import tqdm
        disk = ev.disk if len(ev.disk) <= 24 else "..." + ev.disk[-21:]  # the line fits 80
        desc = f"{disk} L{ev.level} {ev.image}/{ev.images}"
        if self.bar is None:
            with _lock:
                self.row = next(i for i in range(len(_rows) + 1) if i not in _rows)
                self.bar = tqdm(total=ev.total, desc=desc, unit="B", unit_scale=True,
                                unit_divisor=1000, position=self.row, leave=False,
                                dynamic_ncols=True, mininterval=0.5, file=sys.stdout,
                                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/"
                                           "{total_fmt} {rate_fmt} ETA {remaining}")
                _rows[self.row] = self.bar
        else:
            self.bar.set_description_str(desc, refresh=False)
        if ev.total and self.bar.total != ev.total:
            self.bar.total = ev.total
        self.bar.update(max(0, ev.done - self.bar.n))

    def close(self) -> None:
        """The bar goes; its last state stays as a line above the others (a bar
        left in place would be drawn over by the next stream's)."""
        if self.bar is not None:
            from tqdm import tqdm
            with _lock:
                last = str(self.bar)
                self.bar.close()
                _rows.pop(self.row, None)
                tqdm.write(last, file=sys.stdout)
            self.bar = None
