"""The journal of completed disk actions, so an interrupted diskinit continues.

One JSON line per completed action (its id and fingerprint), after a header
naming the whole plan.  On a re-run, actions are skipped only while they
match the journal in order: same id, same fingerprint (the plan did not
change), and the work still there (the filesystem still carries its UUID).
The first action that does not match runs, and so does everything after it:
skipping a mkfs after its partition table was made again would be wrong.
A journal of another plan (another host, another mapping) is set aside.

It lives beside the target, not inside it (TARGET.amdr/diskinit.journal):
the target's root filesystem is mounted over TARGET.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from essentials.runner import Runner

log = logging.getLogger(__name__)

VERSION = 1


def plan_id(actions) -> str:
    h = hashlib.sha256()
    for a in actions:
        if a.journaled:
            h.update(f"{a.id} {a.fingerprint()}\n".encode())
    return h.hexdigest()[:32]


class Journal:
    def __init__(self, path, actions):
        self.path = Path(path)
        self.plan = plan_id(actions)
        self.entries: list[tuple[str, str]] = []
        self.pos = 0
        self.diverged = False
        self.skipped = 0  # actions this run found done (and still there)
        self.stale = False  # another plan's journal: set aside when applying starts
        self._load()

    def _load(self):
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return
        try:
            head = json.loads(lines[0]) if lines else {}
            entries = [json.loads(ln) for ln in lines[1:] if ln.strip()]
        except (ValueError, IndexError):
            head, entries = {}, None
        if head.get("plan") != self.plan or entries is None:
            self.stale = True  # (`plan` only looks: nothing is moved until applying)
            return
        self.entries = [(e["id"], e["hash"]) for e in entries]

    def _set_aside(self):
        if self.stale and self.path.exists():
            stale = self.path.with_name(self.path.name + f".stale-{int(time.time())}")
            log.info("%s belongs to another plan: set aside as %s", self.path, stale)
            self.path.rename(stale)
        self.stale = False

    def restart(self) -> Path | None:
        """Start over (`--restart`): the journal is set aside, every action runs.
        Returns where the old journal went (None: there was none)."""
        self.entries, self.pos, self.diverged, self.stale = [], 0, True, False
        if not self.path.exists():
            return None
        old = self.path.with_name(self.path.name + f".restarted-{int(time.time())}")
        self.path.rename(old)
        log.info("%s set aside as %s: starting over", self.path, old)
        return old

    @property
    def completed(self) -> list[str]:
        return [i for i, _ in self.entries]

    def skip(self, action, runner: Runner) -> bool:
        """True when the action was done in an earlier run of this plan."""
        if runner.dry_run or not action.journaled or self.diverged:
            return False
        self._set_aside()
        if (self.pos < len(self.entries)
                and self.entries[self.pos] == (action.id, action.fingerprint())
                and action.still_done(runner)):
            self.pos += 1
            self.skipped += 1
            log.info("%s: done in an earlier run (journal %s)", action.id, self.path)
            return True
        self.diverged = True
        if self.pos < len(self.entries):
            log.info("%s: the journal's entries from %s on no longer hold: running from here",
                     self.path, action.id)
            self.entries = self.entries[:self.pos]
            self._rewrite()
        return False

    def done(self, action, runner: Runner):
        if runner.dry_run or not action.journaled:
            return
        self._set_aside()
        self.entries.append((action.id, action.fingerprint()))
        self.pos = len(self.entries)
        if not self.path.exists():
            self._rewrite()
            return
        self._append({"id": action.id, "hash": action.fingerprint(),
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S")})

    def _header(self) -> str:
        return json.dumps({"version": VERSION, "plan": self.plan}) + "\n"

    def _rewrite(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(self._header())
            for i, h in self.entries:
                f.write(json.dumps({"id": i, "hash": h}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def _append(self, entry: dict):
        with open(self.path, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())


def attach(actions, path) -> Journal:
    """Give every action the journal (Action.apply consults it)."""
    j = Journal(path, actions)
    for a in actions:
        a.journal = j
    return j
