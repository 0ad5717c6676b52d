"""The one command runner every external command goes through.

Why one runner: so every command is logged with its exit code and duration,
secrets are redacted in one place, failures become one typed error, and a
dry run records instead of executing without `if dry_run:` spread through
the code.  Pipelines are real OS pipes between processes; Python never
copies the data, it only reads byte counters from /proc/PID/io.
"""

from __future__ import annotations

import logging
import os
import pwd
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

from .errors import CommandError

log = logging.getLogger("commands")

STDERR_TAIL = 2000


class Secret(str):
    """An argument that must never appear in a log (passphrase, key)."""

    def __repr__(self):
        return "'<redacted>'"


def display(argv) -> str:
    """The argv as a person would type it, secrets redacted."""
    parts = []
    for a in argv:
        if not isinstance(a, str):
            a = str(a)
        if isinstance(a, Secret):
            parts.append("<redacted>")
        elif not a or any(c in a for c in " \t\"'\\$|&;<>*?()"):
            parts.append("'" + a.replace("'", "'\\''") + "'")
        else:
            parts.append(a)
    return " ".join(parts)


@dataclass
class Cmd:
    """One command of a pipeline."""

    argv: list
    user: str | None = None
    cwd: str | None = None
    env: dict | None = None


@dataclass
class Result:
    argv: list
    returncode: int
    stdout: bytes = b""
    stderr: bytes = b""
    duration: float = 0.0

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


@dataclass
class StageStats:
    argv: list
    returncode: int
    stderr: str
    read_bytes: int = 0
    write_bytes: int = 0


@dataclass
class PipelineResult:
    stages: list[StageStats]
    duration: float

    @property
    def bytes_through(self) -> int:
        """Bytes the first stage wrote into the pipe."""
        return self.stages[0].write_bytes if self.stages else 0


@dataclass
class Recorded:
    """What a dry run would have run."""

    kind: str  # "run" or "pipeline"
    commands: list[Cmd]
    input: bytes | None = None


def _user_kwargs(user: str | None, env: dict | None, cwd: str | None = None) -> dict:
    """subprocess arguments to drop privileges to `user` (no shell, no su).

    Without a cwd the command starts in the user's home: it would inherit
    ours, and Amanda's Perl tools die ("Cannot chdir to original working
    directory") when `backup` cannot enter it, as in /root/amanda-dr."""
    if not user:
        return {"env": env, "cwd": cwd}
    pw = pwd.getpwnam(user)
    groups = os.getgrouplist(user, pw.pw_gid)
    base = dict(env if env is not None else os.environ)
    base.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
    if cwd is None:
        cwd = pw.pw_dir if os.path.isdir(pw.pw_dir) else "/"
    return {
        "user": pw.pw_uid,
        "group": pw.pw_gid,
        "extra_groups": groups,
        "env": base,
        "cwd": cwd,
    }


def _proc_io(pid: int) -> dict:
    try:
        with open(f"/proc/{pid}/io") as f:
            return {k: int(v) for k, v in (line.split(": ") for line in f if ": " in line)}
    except (OSError, ValueError):
        return {}


class Runner:
    """Runs argv lists. `Runner(dry_run=True)` records and runs nothing."""

    def __init__(self, dry_run: bool = False, responses: dict | None = None):
        self.dry_run = dry_run
        self.recorded: list[Recorded] = []
        # dry-run canned stdout keyed by argv[0] or the full display string; a
        # Result instead gives its exit code and stderr too (a tool that failed)
        self.responses = responses or {}

    # -- single commands -------------------------------------------------
    def run(self, argv, *, user=None, cwd=None, env=None, input=None,
            check=True, what=None, timeout=None, stdin=None) -> Result:
        argv = [str(a) if not isinstance(a, Secret) else a for a in argv]
        shown = display(argv)
        if self.dry_run:
            self.recorded.append(Recorded("run", [Cmd(argv, user, cwd, env)], input))
            log.info("dry-run: %s%s", shown, f" (as {user})" if user else "")
            out = self.responses.get(shown, self.responses.get(argv[0], b""))
            if isinstance(out, Result):  # a canned failure, as the real tool gives it
                res = Result(argv, out.returncode, out.stdout, out.stderr)
                if check and res.returncode != 0:
                    raise CommandError(shown, res.returncode,
                                       res.stderr.decode("utf-8", "replace"), what)
                return res
            return Result(argv, 0, out if isinstance(out, bytes) else out.encode())
        log.info("run: %s%s", shown, f" (as {user})" if user else "")
        start = time.monotonic()
        kwargs = _user_kwargs(user, env, cwd)
        if stdin is not None and input is None:
            kwargs["stdin"] = stdin
        try:
            proc = subprocess.run(
                list(argv), input=input, capture_output=True,
                timeout=timeout, **kwargs,
            )
        except FileNotFoundError:
            raise CommandError(shown, 127, f"{argv[0]}: command not found", what)
        except PermissionError:  # there, but not executable: what the shell calls 126
            raise CommandError(shown, 126, f"{argv[0]}: cannot execute: permission denied",
                               what)
        except subprocess.TimeoutExpired as e:
            raise CommandError(shown, -1, f"timed out after {timeout}s", what) from e
        dur = time.monotonic() - start
        log.info("exit %d in %.2fs: %s", proc.returncode, dur, argv[0])
        res = Result(argv, proc.returncode, proc.stdout, proc.stderr, dur)
        if check and proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace")[-STDERR_TAIL:]
            raise CommandError(shown, proc.returncode, tail, what)
        return res

    def output(self, argv, **kw) -> str:
        return self.run(argv, **kw).text

    # -- pipelines ---------------------------------------------------------
    def pipeline(self, cmds: list[Cmd], *, check=True, what=None,
                 progress=None, interval: float = 1.0) -> PipelineResult:
        """Run cmds connected by OS pipes; Python is not in the data path.

        progress(bytes_so_far) is called every `interval` seconds with the
        bytes the first stage has written, read from /proc/PID/io.
        """
        shown = " | ".join(
            display(c.argv) + (f" (as {c.user})" if c.user else "") for c in cmds)
        if self.dry_run:
            self.recorded.append(Recorded("pipeline", list(cmds)))
            log.info("dry-run: %s", shown)
            return PipelineResult([StageStats(c.argv, 0, "") for c in cmds], 0.0)
        log.info("pipeline: %s", shown)
        start = time.monotonic()
        procs, errfiles = [], []
        prev_out = None
        try:
            for i, c in enumerate(cmds):
                last = i == len(cmds) - 1
                errf = tempfile.TemporaryFile()
                errfiles.append(errf)
                kwargs = _user_kwargs(c.user, c.env, c.cwd)
                p = subprocess.Popen(
                    [str(a) for a in c.argv],
                    stdin=prev_out if prev_out is not None else subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                    stderr=errf, **kwargs,
                )
                if prev_out is not None:
                    prev_out.close()  # only the child holds the read end now
                prev_out = p.stdout
                procs.append(p)
        except (FileNotFoundError, PermissionError) as e:
            for p in procs:
                p.kill()
                p.wait()
            raise CommandError(shown, 127 if isinstance(e, FileNotFoundError) else 126,
                               str(e), what)

        io_last = [{} for _ in procs]
        stop = threading.Event()

        def poll():
            while not stop.wait(interval):
                for j, p in enumerate(procs):
                    v = _proc_io(p.pid)
                    if v:
                        io_last[j] = v
                if progress:
                    progress(io_last[0].get("wchar", 0))

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        stats = []
        try:
            for j, p in enumerate(procs):
                # wait without reaping, so the final /proc/PID/io is still there
                try:
                    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
                except ChildProcessError:
                    pass
                v = _proc_io(p.pid)
                if v:
                    io_last[j] = v
                rc = p.wait()
                errfiles[j].seek(0)
                err = errfiles[j].read().decode("utf-8", "replace")
                errfiles[j].close()
                stats.append(StageStats(
                    cmds[j].argv, rc, err,
                    io_last[j].get("rchar", 0), io_last[j].get("wchar", 0)))
        except BaseException:
            # interrupted (SIGTERM, Ctrl-C): no stage may outlive us, still
            # reading plaintext the caller is about to remove or writing a file
            # the caller has already cleaned up
            for p in procs:
                if p.poll() is None:
                    p.kill()
            for p in procs:
                p.wait()
            raise
        finally:
            stop.set()
            watcher.join()
            for f in errfiles:
                f.close()
        dur = time.monotonic() - start
        log.info("pipeline exit %s in %.2fs, %d bytes",
                 [s.returncode for s in stats], dur, stats[0].write_bytes)
        res = PipelineResult(stats, dur)
        failed = [s for s in stats if s.returncode != 0]
        if check and failed:
            # blame the first stage that failed by itself: a stage killed by
            # SIGPIPE only lost its reader; the others are listed too
            blamed = next((s for s in failed if s.returncode > 0), failed[0])
            also = []
            for s in failed:
                if s is not blamed:
                    note = " (killed by SIGPIPE: the next stage stopped reading)" \
                        if s.returncode == -13 else ""
                    also.append(f"{display(s.argv)}: exit {s.returncode}{note} "
                                f"{s.stderr.strip()[-300:]}".rstrip())
            raise CommandError(display(blamed.argv), blamed.returncode,
                               blamed.stderr[-STDERR_TAIL:], what, also)
        return res
