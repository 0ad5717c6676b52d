"""The engine's events, as data (DESIGN: one engine, many renderers).

The recovery's commands emit what happens: a step started or ended, bytes
done of total per DLE, a DLE restored or failed, the run's end.  The CLI
prints its own lines as before; a renderer that wants the events (the text
UI, which runs `amdr-recover recover` as its engine process) names a file
or an inherited descriptor in AMDR_EVENTS and reads one JSON object per
line:

    {"t": 12.3, "kind": "step", "step": "diskinit", "state": "start"}
    {"t": 40.1, "kind": "progress", "dle": "web1:/srv", "level": 1, "image": 2,
     "images": 2, "done": 1048576, "total": 4194304, "rate": 2.1e6, "eta": 1.5}
    {"t": 52.0, "kind": "dle", "dle": "web1:/srv", "state": "done", "bytes": ...}

`t` is seconds since the process started.  Nothing secret is ever an
event's field: names, counts and messages only.
"""

from __future__ import annotations

import json
import os
import threading
import time

_T0 = time.monotonic()
_lock = threading.Lock()
_out = None
_opened = False


def _sink():
    global _out, _opened
    if _opened:
        return _out
    _opened = True
    where = os.environ.get("AMDR_EVENTS")
    if not where:
        return None
    try:
        if where.isdigit():
            _out = os.fdopen(int(where), "a", buffering=1)
        else:
            _out = open(where, "a", buffering=1)
    except OSError:
        _out = None
    return _out


def emit(kind: str, **data) -> None:
    """One event to the renderer, if one listens (AMDR_EVENTS); never fails the run."""
    out = _sink()
    if out is None:
        return
    rec = {"t": round(time.monotonic() - _T0, 2), "kind": kind, **data}
    try:
        with _lock:
            out.write(json.dumps(rec, default=str) + "\n")
    except (OSError, ValueError):
        pass


def parse(line: str) -> dict | None:
    """An event line read back (None: not one)."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and "kind" in rec else None
