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

A question for the person (`ask`): a volume to load, a DLE that failed.
With a renderer that answers (AMDR_REPLIES names a descriptor it writes
to), the question is an event and the reply a line back:

    {"t": 61.0, "kind": "ask", "id": 1, "what": "failed", "text": "...",
     "choices": ["retry", "skip", "stop"]}
    <- {"id": 1, "choice": "retry"}

On a terminal it is asked there (numbered choices; `shell` opens one and
asks again); with nobody to ask (cron, a pipe, an answers file) the
caller's default is the answer, said in the output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

_T0 = time.monotonic()
_lock = threading.Lock()
_out = None
_opened = False
_ask_lock = threading.Lock()
_replies = None
_asked = 0

# the words a person picks from, as shown
CHOICES = {"retry": "retry (once what is named is fixed)",
           "skip": "skip it and go on with the others",
           "loaded": "the volume is in the drive: go on",
           "shell": "open a shell (then asked again)",
           "stop": "stop the recovery"}


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


class StopAsked(Exception):
    """The person chose to stop the recovery at a question (a volume prompt)."""


def _reply_channel():
    global _replies
    if _replies is None:
        where = os.environ.get("AMDR_REPLIES")
        if not where:
            _replies = False
        else:
            try:
                _replies = (os.fdopen(int(where), "r") if where.isdigit()
                            else open(where))
            except OSError:
                _replies = False
    return _replies or None


def someone_answers() -> bool:
    """A person can be asked: a renderer that replies, or a terminal."""
    return _reply_channel() is not None or sys.stdin.isatty()


def ask(what: str, text: str, choices: list[str], default: str | None) -> str | None:
    """The person's choice among `choices` (see the module's docstring);
    `default` when nobody can be asked (None: the caller refuses)."""
    global _asked
    with _ask_lock:
        replies = _reply_channel()
        if replies is not None:
            _asked += 1
            emit("ask", id=_asked, what=what, text=text, choices=list(choices))
            while True:
                line = replies.readline()
                if not line:  # the renderer is gone: nobody to ask any more
                    return default
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("id") == _asked and rec.get("choice") in choices:
                    emit("answered", id=_asked, choice=rec["choice"])
                    print(f"asked: {text.splitlines()[0]} -> {rec['choice']}", flush=True)
                    return rec["choice"]
        if not sys.stdin.isatty():
            return default
        shown = list(choices) + ([] if "shell" in choices else ["shell"])
        while True:
            print(text, flush=True)
            for i, c in enumerate(shown, 1):
                print(f"  {i}) {CHOICES.get(c, c)}")
            try:
                got = input(f"choose 1-{len(shown)}: ").strip().lower()
            except EOFError:
                return default
            pick = (shown[int(got) - 1] if got.isdigit() and 0 < int(got) <= len(shown)
                    else got if got in shown else None)
            if pick == "shell":
                print("the shell: `exit` comes back here", flush=True)
                subprocess.run([os.environ.get("SHELL") or "/bin/bash"], check=False)
                continue
            if pick:
                return pick
