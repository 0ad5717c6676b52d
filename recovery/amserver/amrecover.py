"""Drive the real amrecover through its dialogue (pexpect), as root.

Why a driver and not amrecover's batch mode: amrecover only speaks to a
terminal, asks for each volume in turn, asks before a level-0 extract may
delete files, and for DUMP images the `restore` it runs asks
"set owner/mode for '.'? [yn]" on /dev/tty, which under a pty is only
printed once answered.  So that question is recognised from the process
itself: a `restore` child of amrecover blocked reading its tty.

The dialogue, as Amanda 3.5.1 speaks it here:

  amrecover> sethost H          200 Dump host set to H.
  amrecover> setdisk D          200 Disk set to D.
  amrecover> setdate Y-M-D-h-m-s   200 Working date set to ...
  amrecover> add .              Added dir /. at date ...
  amrecover> lcd DIR
  amrecover> extract            ... Load tape LABEL now
                                Continue [?/Y/n/s/d]? Y
                                All existing files in DIR can be deleted
                                Continue [?/Y/n]? Y
                                ... amrecover>
"""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass, field

from essentials.errors import AmdrError

from .names import nice_date, quote

log = logging.getLogger(__name__)

PROMPT = "amrecover> "
TAIL_CHARS = 65536  # of the extract's output kept for the error message and the result
# read(2) on this machine: restore blocked on its tty is waiting for an answer
_READ_SYSCALL = {"x86_64": 0, "aarch64": 63, "riscv64": 63, "i686": 3, "i386": 3,
                 "armv7l": 3, "ppc64le": 3, "s390x": 3}
# lines of an extract that mean it went wrong even though amrecover carries on
ERROR_MARKS = ("ERROR", "EOF, check amidxtaped", "Got no header", "amrecover: ",
               "tar: Error", "Unexpected EOF")


class AmrecoverError(AmdrError):
    """amrecover refused, failed or stopped answering; carries what it said last."""

    def __init__(self, message: str, transcript: str = ""):
        self.transcript = transcript
        tail = _tail(transcript)
        super().__init__(f"{message}\n  amrecover said last:\n    "
                         + tail.replace("\n", "\n    ") if tail else message)


def _tail(text: str, lines: int = 12) -> str:
    clean = [ln.rstrip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return "\n".join(clean[-lines:])


@dataclass
class RecoverRequest:
    config: str
    host: str
    disk: str
    directory: str
    date: str | None = None  # Amanda datestamp; default: the newest
    paths: list[str] = field(default_factory=lambda: ["."])
    server: str = "localhost"  # the index server (amindexd)
    client: str = "localhost"  # the host amrecover starts with (-h); sethost picks the DLE's
    auth: str = "local"  # "local" on the server itself; "bsdtcp" (amandad under inetd)
    tape_server: str | None = None  # amidxtaped's host (default: the index server)


@dataclass
class RecoverResult:
    directory: str
    tapes: list[str] = field(default_factory=list)
    tty_answers: int = 0
    bytes: int = 0  # what amrecover read (/proc/PID/io rchar): the images, as sent
    seconds: float = 0.0
    transcript: str = ""


def argv(req: RecoverRequest) -> list[str]:
    return ["amrecover", req.config, "-s", req.server, "-t", req.tape_server or req.server,
            "-h", req.client, "-o", f"auth={req.auth}"]


def commands(req: RecoverRequest) -> list[str]:
    """The lines sent before `extract` (render, no I/O)."""
    out = [f"sethost {quote(req.host)}", f"setdisk {quote(req.disk)}"]
    if req.date:
        out.append(f"setdate {nice_date(req.date)}")
    out += [f"add {quote(p)}" for p in req.paths]
    out.append(f"lcd {quote(req.directory)}")
    return out


# what a good answer to each command starts with; anything else is an error
_EXPECT = {"sethost": "200 Dump host set", "setdisk": "200 Disk set",
           "setdate": "200 Working date set", "add": "Added "}


def _descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def tty_question_pending(pid: int) -> bool:
    """A `restore` under amrecover is blocked reading its terminal."""
    nr = _READ_SYSCALL.get(platform.machine())
    for child in _descendants(pid):
        try:
            with open(f"/proc/{child}/comm") as f:
                if f.read().strip() != "restore":
                    continue
            with open(f"/proc/{child}/syscall") as f:
                sc = f.read().split()
            if len(sc) < 2 or not sc[0].isdigit() or int(sc[0]) != nr:
                continue
            target = os.readlink(f"/proc/{child}/fd/{int(sc[1], 16)}")
            if target == "/dev/tty" or target.startswith("/dev/pts/"):
                return True
        except (OSError, ValueError):
            continue
    return False


def _spawn(req: RecoverRequest, timeout: float):
    """amrecover under a pty, in / (it checks its working directory), no pager."""
    import pexpect
    env = dict(os.environ, PAGER="cat", TERM="dumb", LANG="C.UTF-8")
    cmd = argv(req)
    log.info("spawn: %s", " ".join(cmd))
    return pexpect.spawn(cmd[0], cmd[1:], env=env, encoding="utf-8", codec_errors="replace",
                         timeout=timeout, dimensions=(50, 400), searchwindowsize=4096, cwd="/")


def ask(req: RecoverRequest, lines: list[str], *, timeout: float = 60.0) -> list[str]:
    """Send `lines` to a fresh amrecover one at a time; the answer to each (the
    text up to the next prompt, its own echo cut).  For reading the server's
    catalog (listdisk, history) without extracting anything."""
    import pexpect

    child = _spawn(req, timeout)
    said: list[str] = []
    answers: list[str] = []
    try:
        i = child.expect([PROMPT, pexpect.EOF, pexpect.TIMEOUT])
        said.append(child.before or "")
        if i != 0 or "200 Config set to" not in (child.before or ""):
            why = "it did not answer" if i == 2 else "it exited" if i == 1 else \
                f"the server has no configuration {req.config}"
            raise AmrecoverError(f"amrecover could not start a session with the Amanda "
                                 f"server {req.server} (config {req.config}, auth "
                                 f"{req.auth}): {why}", "".join(said))
        for line in lines:
            child.sendline(line)
            i = child.expect([PROMPT, pexpect.EOF, pexpect.TIMEOUT])
            text = (child.before or "").replace("\r", "")
            said.append(text)
            if i != 0:
                raise AmrecoverError(f"no answer to '{line}' from {req.server}", "".join(said))
            answers.append(text.split("\n", 1)[1] if "\n" in text else "")
        child.sendline("quit")
        child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=10)
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close()
    return answers


def recover(req: RecoverRequest, *, idle_timeout: float = 300.0,
            start_timeout: float = 60.0, logfile=None, progress=None) -> RecoverResult:
    """Restore req.paths of host:disk into req.directory with the real amrecover."""
    import pexpect  # only this driver and the TUI need it
    from dataclasses import replace

    req = replace(req, directory=os.path.abspath(req.directory))  # it runs in /
    os.makedirs(req.directory, exist_ok=True)
    start = time.monotonic()
    res = RecoverResult(req.directory)
    child = _spawn(req, start_timeout)

    def read_bytes() -> int:
        try:
            with open(f"/proc/{child.pid}/io") as f:
                io = dict(ln.split(": ") for ln in f.read().splitlines() if ": " in ln)
            res.bytes = max(res.bytes, int(io.get("rchar", 0)))
        except (OSError, ValueError):
            pass
        return res.bytes
    if logfile is not None:
        child.logfile_read = logfile
    said: list[str] = []

    def transcript(pending: bool = False) -> str:
        # `before` after a timeout is output not yet consumed by a match
        return "".join(said) + ((child.before or "") if pending else "")

    def fail(msg: str, pending: bool = False):
        res.transcript = transcript(pending)
        if child.isalive():
            child.terminate(force=True)
        raise AmrecoverError(msg, res.transcript)

    try:
        i = child.expect([PROMPT, pexpect.EOF, pexpect.TIMEOUT])
        said.append(child.before + (PROMPT if i == 0 else ""))
        if i != 0:
            fail(f"amrecover {req.config} did not start"
                 + (" (no prompt)" if i == 2 else " (it exited)"))
        if "200 Config set to" not in child.before:
            fail(f"amrecover could not load configuration {req.config} from the index "
                 f"server {req.server}")
        for line in commands(req):
            child.sendline(line)
            i = child.expect([PROMPT, pexpect.EOF, pexpect.TIMEOUT], timeout=idle_timeout)
            answer = child.before
            said.append(answer + (PROMPT if i == 0 else ""))
            if i != 0:
                fail(f"no answer to '{line}'")
            verb = line.split()[0]
            want = _EXPECT.get(verb)
            body = answer.split("\n", 1)[1] if "\n" in answer else ""
            if want and want not in body:
                fail(f"amrecover refused '{line}'")
            if verb == "lcd" and body.strip():
                fail(f"amrecover cannot use {req.directory} as the directory to extract into")
        # amrecover lists every file it extracts: keep the tail of that, and
        # look for errors in each piece as it comes
        bad: list[str] = []
        tail = ""

        def took(text: str):
            nonlocal tail
            # a member tar -v lists ("./ERRORS.txt") is a file name, not a message
            bad.extend(ln.strip() for ln in text.replace("\r", "\n").splitlines()
                       if not ln.lstrip().startswith("./")
                       and any(m in ln for m in ERROR_MARKS))
            tail = (tail + text)[-TAIL_CHARS:]

        child.sendline("extract")
        patterns = [r"Load tape (\S+) now", r"Continue \[\?/Y/n/s/d\]\? ",
                    r"Continue \[\?/Y/n\]\? ", r"Continue \[\?/Y/n/r\]\? ", PROMPT,
                    pexpect.EOF, pexpect.TIMEOUT]
        quiet, pending = 0.0, 0
        while True:
            i = child.expect(patterns, timeout=1.0)
            if progress is not None:
                progress(read_bytes())
            if i != 6:
                took(child.before + (child.after if isinstance(child.after, str) else ""))
                quiet, pending = 0.0, 0
            if i == 0:
                res.tapes.append(child.match.group(1))
            elif i in (1, 2):
                child.sendline("Y")
            elif i == 3:
                # amrecover asks whether to go on after a failed extract
                child.sendline("n")
                child.expect([PROMPT, pexpect.EOF, pexpect.TIMEOUT], timeout=30)
                took(child.before or "")
                said.append(tail)
                fail(f"extracting {req.host}:{req.disk} failed")
            elif i == 4:
                break
            elif i == 5:
                said.append(tail)
                fail("amrecover exited during the extract")
            else:
                if tty_question_pending(child.pid):
                    # restore's "set owner/mode for '.'? [yn]": yes, like a full restore
                    child.sendline("y")
                    res.tty_answers += 1
                    quiet = 0.0
                    continue
                now = len(child.before or "")
                quiet = 0.0 if now != pending else quiet + 1.0  # progress counts as output
                pending = now
                if quiet >= idle_timeout:
                    said.append(tail)
                    fail(f"amrecover said nothing for {idle_timeout:.0f}s during the extract",
                         pending=True)
        said.append(tail)
        read_bytes()
        child.sendline("quit")
        child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=30)
        said.append(child.before or "")
        if bad:
            fail(f"amrecover reported errors while extracting {req.host}:{req.disk}: "
                 + "; ".join(bad[:3]))
        if not res.tapes:
            fail(f"amrecover extracted nothing for {req.host}:{req.disk} (no volume "
                 f"was asked for)")
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close()
    res.transcript = transcript()
    res.seconds = time.monotonic() - start
    return res
