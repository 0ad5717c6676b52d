"""The base of every disk action: render() its commands, apply() them.

The plan is a flat ordered list of actions with ids other actions refer to
(the curtin storage-config model).  `steps()` is pure, so `render()` can be
compared with expected commands in a unit test; `apply()` only feeds those
same steps to the runner, so what the person approved is exactly what runs.

Each action also has a fingerprint (a hash of what it makes), which the
journal (journal.py) keeps for completed actions so an interrupted diskinit
continues instead of formatting again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Callable

from essentials.runner import Runner

log = logging.getLogger(__name__)


@dataclass
class Step:
    """One command; stdin is a script shown in the plan, secret_stdin a key
    fetched only when applying (never rendered, logged or journaled)."""

    argv: list[str]
    stdin: str | None = None
    secret_stdin: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)

    def shown(self) -> str:
        text = " ".join(self.argv)
        if self.stdin is not None:
            text += " <<script"
        if self.secret_stdin is not None:
            text += " <<passphrase"
        return text


@dataclass
class Action:
    id: str

    type = "action"
    # journaled actions are skipped on a re-run once done; the others
    # (mounts, opening a LUKS container) are made idempotent instead
    journaled = True
    journal = None  # set by the session: a journal.Journal

    def steps(self) -> list[Step]:
        raise NotImplementedError

    def render(self) -> list[list[str]]:
        return [s.argv for s in self.steps()]

    def run_steps(self, runner: Runner, steps: list[Step]):
        for s in steps:
            data = None
            if s.secret_stdin is not None and not runner.dry_run:
                data = s.secret_stdin()
            elif s.stdin is not None:
                data = s.stdin.encode()
            runner.run(s.argv, input=data, what=f"{self.type} {self.id}")

    def execute(self, runner: Runner):
        self.run_steps(runner, self.steps())

    def resume_steps(self) -> list[Step]:
        """What a skipped (already done) action still runs so the devices it
        made are there for the actions after it (partx, assemble, activate)."""
        return []

    def after(self, runner: Runner):
        """Runs after the steps, or after the resume steps of a skipped action:
        waiting for the device nodes the action made."""

    def still_done(self, runner: Runner) -> bool:
        """Checked before skipping a journaled action: is its work still there?"""
        return True

    def apply(self, runner: Runner):
        j = self.journal
        if j is not None and j.skip(self, runner):
            print(f"    (done in an earlier run: {self.id})")
            self.run_steps(runner, self.resume_steps())
            self.after(runner)
            return
        self.execute(runner)
        self.after(runner)
        if j is not None:
            j.done(self, runner)

    def fields(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "id" and v not in (None, [], {})}

    def to_dict(self) -> dict:
        d = {"id": self.id, "type": self.type}
        d.update(self.fields())
        d["commands"] = [s.shown() for s in self.steps()]
        return d

    def identity(self) -> dict:
        """What the fingerprint covers: everything the action makes, not notes."""
        d = self.to_dict()
        d.pop("notes", None)
        d.pop("matched", None)
        return d

    def fingerprint(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]
