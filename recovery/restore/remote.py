"""Restore through a live Amanda server: amrecover over bsdtcp (seed 002 §3.2,
the normal case for a client whose server survived).

Why amrecover and not amfetchdump: amfetchdump runs on the server, so the
live system would need a login there (and would read the volumes with the
server's own rights, past its `recovery-limit`); amrecover is the client's
tool, talks to amindexd and amidxtaped through the server's amandad, and the
server decides, by the name the connection comes from and its
`.amandahosts` and `recovery-limit`, whether this host may restore.  The
server finds the volumes, joins split parts and decrypts itself.

Before any wipe, one amrecover session reads the server's catalog for this
host (`sethost`, `listdisk`, `setdisk` and `history` per DLE): the server
answers, accepts this host, and holds a chain for each DLE, or the run stops
with the disks untouched.  Each DLE is then one `extract` of `add .` into its
directory (amrecover restores the chain up to `setdate` itself).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from essentials.errors import AmdrError, CatalogError

from ..amserver import amrecover
from ..amserver.names import quote
from ..catalog.amconf import DiskEntry
from ..catalog.model import Dump, Part

log = logging.getLogger(__name__)

from .plan import SERVER_PROGRAM as PROGRAM
_HISTORY = re.compile(r"^201- (\d{4})-(\d\d)-(\d\d)(?:-(\d\d)-(\d\d)-(\d\d))? (\d+) (\S+)$")


class ServerError(CatalogError):
    """The live server cannot be used for this host (said before any wipe)."""


def parse_history(text: str, host: str, disk: str) -> list[Dump]:
    """amrecover's `history`: `201- 2026-12-06-20-33-56 1 STORAGE:LABEL:FILE` lines."""
    out = []
    for line in text.splitlines():
        m = _HISTORY.match(line.strip())
        if not m:
            continue
        date = "".join(g for g in m.groups()[:6] if g)
        where = m.group(8)
        rest, _, filenum = where.rpartition(":")
        label = rest.split(":", 1)[1] if ":" in rest else rest
        out.append(Dump(host, disk, date, int(m.group(7)),
                        [Part(label, int(filenum) if filenum.isdigit() else 0, 1)], 1,
                        program=PROGRAM, source="amrecover history"))
    return out


def parse_listdisk(text: str) -> list[str]:
    disks = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("201- "):
            d = line[5:]
            disks.append(d[1:-1].encode().decode("unicode_escape") if d.startswith('"')
                         else d)
    return disks


@dataclass
class RemoteServer:
    """The live Amanda server a restore goes through (as a library: the driver
    asks it to restore a step; it has no volumes of its own to look at)."""

    host: str
    config: str
    auth: str = "bsdtcp"
    tape_server: str | None = None
    available = None  # the volumes are the server's business
    remote = True

    def request(self, client: str, disk: str = "", directory: str = "/",
                date: str | None = None) -> amrecover.RecoverRequest:
        return amrecover.RecoverRequest(self.config, client, disk, directory, date,
                                        server=self.host, client=client, auth=self.auth,
                                        tape_server=self.tape_server)

    def where(self) -> str:
        return f"the Amanda server {self.host} (config {self.config}, auth {self.auth})"

    def catalog(self, names: list[str]) -> tuple[str, list[DiskEntry], list[Dump]]:
        """(the host's name on the server, its DLEs, their dumps) in one session;
        names: what this host may be called there, in order."""
        names = [n for i, n in enumerate(names) if n and n not in names[:i]]
        try:
            answers = amrecover.ask(self.request(names[0]),
                                    [f"sethost {quote(n)}" for n in names])
        except amrecover.AmrecoverError as e:
            raise ServerError(f"{e}\n  (is amandad listening there under inetd with "
                              f"-auth={self.auth} amindexd amidxtaped, port 10080?)") from None
        host, refused = None, []
        for n, a in zip(names, answers):
            if "200 Dump host set" in a:
                host = n
                break
            refused.append(f"{n}: {a.strip().splitlines()[0] if a.strip() else 'no answer'}")
        if host is None:
            hint = ""
            if any(" 502 " in f" {r.split(': ', 1)[1]}" for r in refused):
                hint = (f"; the server refuses this host: its `recovery-limit` or "
                        f"~backup/.amandahosts (`HOST root amindexd amidxtaped`) must allow "
                        f"the name this machine connects as (details in the server's "
                        f"amindexd log)")
            raise ServerError(f"{self.where()} restores none of {', '.join(names)}: "
                              f"{'; '.join(refused)}{hint}")
        disks = parse_listdisk(amrecover.ask(self.request(host),
                                             [f"sethost {quote(host)}", "listdisk"])[1])
        if not disks:
            raise ServerError(f"{self.where()} has no DLE of {host} in its index")
        lines = [f"sethost {quote(host)}"]
        for d in disks:
            lines += [f"setdisk {quote(d)}", "history"]
        answers = amrecover.ask(self.request(host), lines)
        entries, dumps = [], []
        for i, d in enumerate(disks):
            if "200 Disk set" not in answers[1 + 2 * i]:
                log.warning("%s: setdisk %s: %s", self.host, d, answers[1 + 2 * i].strip())
            dumps += parse_history(answers[2 + 2 * i], host, d)
            entries.append(DiskEntry(host, d, d, "", PROGRAM))
        return host, entries, dumps

    def render(self, step) -> list[str]:
        """The session a person would type (amrecover asks for each volume)."""
        req = self.request(step.host, step.disk, step.directory, _until(step))
        return ([f"# {step.host}:{step.disk} levels {step.chain.levels} through "
                 f"{self.where()}: amrecover restores the chain itself",
                 " ".join(amrecover.argv(req))]
                + [f"  amrecover> {c}" for c in amrecover.commands(req) + ["extract"]])

    def restore_step(self, runner, step, progress=None, journal=None, remake=None):
        from .driver import Progress, StepResult, resume_point
        res = StepResult(step.host, step.disk, step.directory)
        runner.run(["mkdir", "-p", step.directory])
        start = time.monotonic()
        res.started = time.time()
        dle = f"{step.host}:{step.disk}"
        images = step.chain.dumps
        req = self.request(step.host, step.disk, step.directory, _until(step))
        if runner.dry_run:
            from essentials.runner import Cmd, Recorded
            runner.recorded.append(Recorded("amrecover", [Cmd(amrecover.argv(req))]
                                            + [Cmd([c]) for c in amrecover.commands(req)]))
            return res
        res.skipped, res.remade = resume_point(runner, step, journal, remake)
        if res.skipped == len(images):
            log.info("%s: restored by an earlier run (journal)", dle)
        else:
            if res.skipped:  # amrecover restores the whole chain: from its level 0
                journal.reset(dle, "restored through amrecover: the whole chain again")
                res.skipped = 0
            if journal is not None:
                journal.start(dle, images[0].date, images[0].level)
            tell = None
            if progress is not None:
                def tell(n):
                    progress(Progress(step.host, step.disk, images[-1].level, len(images),
                                      len(images), n, None, time.monotonic() - start))
            log.info("restoring %s through %s into %s", dle, self.where(), step.directory)
            try:
                r = amrecover.recover(req, progress=tell)
            except amrecover.AmrecoverError as e:
                raise AmdrError(f"amrecover from {self.host}: {e}") from None
            res.bytes = r.bytes
            if r.tty_answers and len(images) > 1:
                # restore asked its tty question: dump images, extracted file by file
                res.notes.append(
                    "dump images restored by amrecover, which runs `restore -x` per level: "
                    "files deleted between the levels are back and directory times are the "
                    "extract's (reading the volumes, `restore -r` replays deletions)")
            if journal is not None:
                for d in images:
                    journal.done(dle, d.date, d.level, r.bytes if d is images[-1] else 0)
            res.levels = [d.level for d in images]
            res.dates = [d.date for d in images]
        res.seconds = time.monotonic() - start
        res.ended = time.time()
        return res


def _until(step) -> str | None:
    """setdate: the newest image of the chain computed here, so amrecover
    restores exactly that chain."""
    return max((d.date for d in step.chain.dumps), default=None)
