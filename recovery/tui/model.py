"""What the text UI knows and asks the engine, without any widget.

The controllers (screens.py) call these; the views never do.  The bundle
store and the unlock run here (the passphrase never leaves this process but
through a 0600 file in /run that is removed at once); the plan and the
recovery run as the engine's own command, `amdr-recover`, in a child
process that reuses the bundle opened here (bundles.open_any's copy for this
recovery's state directory) and reports through events (recovery/events.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from essentials.errors import AmdrError

from .. import store
from ..bundles import open_any, opened_dir
from ..session import default_state_dir

STORE = "/run/amanda-dr/bundles"
MEDIA = ("/run/live/medium", "/media", "/mnt")


def engine_argv() -> list[str]:
    """How to run the engine: this interpreter, the same code."""
    return [sys.executable, "-m", "recovery.cli"]


@dataclass
class Model:
    target: str = "/mnt/target"
    store_dir: str = STORE
    media: list[str] = field(default_factory=lambda: [m for m in MEDIA if os.path.isdir(m)])
    mailboxes: list[str] = field(default_factory=list)
    sftp: dict | None = None
    gnupghome: str | None = None
    signers: list[str] | None = None
    vtapes: str | None = None
    maps: dict = field(default_factory=dict)
    finalize: bool = True
    allow_partial: bool = False
    entries: list = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    entry: store.Entry | None = None
    bundle: object = None
    plan: dict | None = None
    log: list[str] = field(default_factory=list)
    answers: object = None  # recovery.answers.Answers: its catalog and run options
    on_error: str = "ask"
    network_later: str | None = None
    assist_state: str = "/run/amanda-dr/assist"
    assist_args: str = ""  # more options for `amdr-recover assist call`
    assist_later: bool = False  # call once the bundle (its assist: settings) is open

    @property
    def state_dir(self) -> str:
        return default_state_dir(self.target)

    @property
    def host(self) -> str | None:
        return self.entry.host if self.entry else None

    def say(self, line: str) -> None:
        self.log.append(line)

    # -- bundles ------------------------------------------------------------------
    def find_bundles(self) -> list:
        s = store.Store(self.store_dir)
        self.problems = store.import_all(s, self.media, self.mailboxes, self.sftp)
        self.entries = s.newest()
        self.find_key()
        self.say(f"bundles: {len(self.entries)} host(s) from "
                 f"{', '.join(self.media) or 'no medium'}")
        return self.entries

    def find_key(self) -> str | None:
        """A GnuPG home with the recovery key brought on a medium (a directory
        holding private-keys-v1.d, up to two levels down), when none is given."""
        if self.gnupghome:
            return self.gnupghome
        for m in self.media:
            root = Path(m)
            for d in [root] + sorted(p for p in root.glob("*") if p.is_dir()) + \
                    sorted(p for p in root.glob("*/*") if p.is_dir()):
                if (d / "private-keys-v1.d").is_dir():
                    self.gnupghome = str(d)
                    self.say(f"the recovery key's GnuPG home: {d}")
                    return self.gnupghome
        return None

    def pick(self, host: str) -> store.Entry:
        for e in self.entries:
            if e.host == host:
                self.entry = e
                return e
        raise AmdrError(f"no bundle of {host} was found (found: "
                        f"{', '.join(e.host for e in self.entries) or 'none'})")

    # -- unlock -------------------------------------------------------------------
    def unlock(self, passphrase: str | None) -> None:
        """Open the chosen bundle for this recovery (kept for the engine's
        commands); BundleError says what is wrong: a wrong passphrase, a
        signer not accepted, a damaged file."""
        pf = None
        try:
            if passphrase is not None:
                fd, pf = tempfile.mkstemp(prefix="amdr-pass-",
                                          dir="/run" if os.access("/run", os.W_OK) else None)
                with os.fdopen(fd, "w") as f:
                    f.write(passphrase + "\n")
            self.bundle = open_any(self.entry.path, home=self.gnupghome, passphrase_file=pf,
                                   signers=self.signers, interactive=False,
                                   keep_in=opened_dir(self.state_dir))
        finally:
            if pf:
                os.unlink(pf)
        self.say(f"unlock: {self.entry.path.name} opened")

    # -- the engine -------------------------------------------------------------------
    def common_args(self) -> list[str]:
        a = ["--bundle", str(self.entry.path), "--target", self.target]
        if self.gnupghome:
            a += ["--gnupghome", self.gnupghome]
        for s in self.signers or []:
            a += ["--signer", s]
        for old, new in self.maps.items():
            a += ["--map", f"{old}={new}"]
        if self.vtapes:
            a += ["--vtapes", self.vtapes]
        if self.answers is not None:  # catalog-bundle, server, until, luks-key-file...
            from ..answers import catalog_args
            a += catalog_args(self.answers)
        return a

    def make_plan(self) -> dict:
        """`amdr-recover plan --json`: the disks, the restores, what would refuse."""
        r = subprocess.run(engine_argv() + ["plan", "--json"] + self.common_args(),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        self.say(f"$ amdr-recover plan --json ...: exit {r.returncode}")
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            raise AmdrError((r.stderr or r.stdout).strip().splitlines()[-1] if
                            (r.stderr or r.stdout).strip() else f"plan failed: exit "
                            f"{r.returncode}") from None
        self.plan = doc
        return doc

    def recover_argv(self) -> list[str]:
        """The engine's command: what the screens decided, and the answers'
        run options (dle, jobs; on-error unless a person answers here)."""
        extra = []
        if self.answers is not None:
            from ..answers import run_args
            extra = [x for x in run_args(self.answers)
                     if x not in ("--allow-partial", "--no-finalize")]
        if "--on-error" not in extra:
            extra += ["--on-error", self.on_error]
        return (engine_argv() + ["recover"] + self.common_args()
                + ([] if self.finalize else ["--no-finalize"])
                + (["--allow-partial"] if self.allow_partial else [])
                + extra + ["--yes", "--report", self.report_path()])

    def report_path(self) -> str:
        return str(Path(self.state_dir) / "restore-report.json")
