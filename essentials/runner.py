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
from typing import Callable

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


@dataclass
class Source:
    """One writer of a Runner.stream: a small pipeline, with a step before and a check after."""

    cmds: list[Cmd]
    before: Callable[[], None] | None = None
    check: Callable[[list[StageStats]], None] | None = None
    # the bytes its first stage writes when whole (a vtape file less its header):
    # a reader that ended well may leave the last of them (padding) unread
    expect: int | None = None


# what a reader may leave unread of the last source and still have had it all:
# the volume file's last 32 KiB block and a pipe's buffer
UNREAD_SLACK = 32768 + 65536


@dataclass
class StreamResult:
    sources: list[list[StageStats]]
    sink: list[StageStats]
    duration: float

    @property
    def bytes_through(self) -> int:
        """Bytes the sources' first stages wrote (what was read off the media)."""
        return sum(s[0].write_bytes for s in self.sources if s)


def _spawn(cmds: list[Cmd], stdin, stdout, shown: str, what=None):
    """Start cmds joined by OS pipes: the first reads `stdin`, the last writes
    `stdout` (None: /dev/null).  Returns (procs, stderr files)."""
    procs, errfiles = [], []
    prev = stdin
    try:
        for i, c in enumerate(cmds):
            last = i == len(cmds) - 1
            errf = tempfile.TemporaryFile()
            errfiles.append(errf)
            p = subprocess.Popen([str(a) for a in c.argv], stdin=prev,
                                 stdout=(stdout if stdout is not None else subprocess.DEVNULL)
                                 if last else subprocess.PIPE,
                                 stderr=errf, **_user_kwargs(c.user, c.env, c.cwd))
            if i > 0:
                prev.close()  # only the child holds the read end now
            prev = p.stdout
            procs.append(p)
    except (FileNotFoundError, PermissionError) as e:
        for p in procs:
            p.kill()
            p.wait()
        for f in errfiles:
            f.close()
        raise CommandError(shown, 127 if isinstance(e, FileNotFoundError) else 126, str(e),
                           what)
    return procs, errfiles


def _reap(procs, errfiles, cmds) -> list[StageStats]:
    stats = []
    for j, p in enumerate(procs):
        try:  # wait without reaping, so the final /proc/PID/io is still there
            os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        io = _proc_io(p.pid)
        rc = p.wait()
        errfiles[j].seek(0)
        err = errfiles[j].read().decode("utf-8", "replace")
        errfiles[j].close()
        stats.append(StageStats(cmds[j].argv, rc, err, io.get("rchar", 0), io.get("wchar", 0)))
    return stats


def _failure(failed: list[StageStats], what) -> CommandError:
    """Blame the first stage that failed by itself (one killed by SIGPIPE only
    lost its reader); the others are listed too."""
    blamed = next((s for s in failed if s.returncode > 0), failed[0])
    also = []
    for s in failed:
        if s is not blamed:
            note = " (killed by SIGPIPE: the next stage stopped reading)" \
                if s.returncode == -13 else ""
            also.append(f"{display(s.argv)}: exit {s.returncode}{note} "
                        f"{s.stderr.strip()[-300:]}".rstrip())
    return CommandError(display(blamed.argv), blamed.returncode,
                        blamed.stderr[-STDERR_TAIL:], what, also)


class Runner:
    """Runs argv lists. `Runner(dry_run=True)` records and runs nothing."""

    def __init__(self, dry_run: bool = False, responses: dict | None = None):
        self.dry_run = dry_run
        # the processes of the streams running now (several threads may stream)
        self._live: set = set()
        self._live_lock = threading.Lock()
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
    def terminate_all(self):
        """Kill every process of the streams running now (an interrupt in another
        thread: no amrestore, tar or decrypt may outlive the run)."""
        with self._live_lock:
            procs = list(self._live)
        for p in procs:
            if p.poll() is None:
                p.kill()

    def _track(self, procs, add: bool):
        with self._live_lock:
            (self._live.update if add else self._live.difference_update)(procs)

    def stream(self, sources: list[Source], sink: list[Cmd], *, what=None, progress=None,
               interval: float = 1.0, count: str = "wchar") -> StreamResult:
        """Several sources, one after another, into one OS pipe read by `sink`.

        Each Source is a small pipeline (e.g. `amrestore -r -p ... | tail -c
        +32769`) whose last stage writes into the pipe; its `before()` runs
        first (load a volume, check a header) and its `check(stats)` after it
        (raise to stop: the sink is then killed and nothing more is read).
        Python holds the pipe's write end and never reads the data.
        progress(bytes_so_far) gets the bytes the sources' first stages wrote
        (count="rchar": read, e.g. off the volume, whatever they write).
        """
        shown = " ; ".join(" | ".join(display(c.argv) for c in s.cmds) for s in sources)
        shown = f"( {shown} ) | " + " | ".join(display(c.argv) for c in sink)
        if self.dry_run:
            # one source: the pipeline it is; several: each part, then the sink
            for src in sources:
                if src.before is not None:
                    src.before()
                if len(sources) == 1:
                    self.recorded.append(Recorded("pipeline", list(src.cmds) + list(sink)))
                else:
                    self.recorded.append(Recorded("stream-part", list(src.cmds)))
            if len(sources) != 1:
                self.recorded.append(Recorded("stream-sink", list(sink)))
            log.info("dry-run: %s", shown)
            return StreamResult([], [StageStats(c.argv, 0, "") for c in sink], 0.0)
        log.info("stream: %s", shown)
        start = time.monotonic()
        r, w = os.pipe()
        try:
            sink_procs, sink_err = _spawn(sink, r, None, shown)
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._track(sink_procs, True)
        done = [0]  # bytes the finished sources wrote
        current: list = []
        stop = threading.Event()

        def poll():
            seen = 0  # a process reaped between two reads has no counters left:
            while not stop.wait(interval):  # never report less than before
                if progress:
                    cur = list(current)  # the main loop may empty it meanwhile
                    v = _proc_io(cur[0].pid) if cur else {}
                    seen = max(seen, done[0] + v.get(count, 0))
                    progress(seen)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        results: list[list[StageStats]] = []
        sink_stats = None
        try:
            for src in sources:
                if src.before is not None:
                    src.before()
                procs, errs = _spawn(src.cmds, subprocess.DEVNULL, w, shown)
                current[:] = procs
                self._track(procs, True)
                try:
                    stats = _reap(procs, errs, src.cmds)
                finally:
                    self._track(procs, False)
                current[:] = []
                done[0] += stats[0].read_bytes if count == "rchar" else stats[0].write_bytes
                results.append(stats)
                failed = [s for s in stats if s.returncode != 0]
                if failed and (any(s.returncode == -13 for s in failed)
                               or any(p.poll() is not None for p in sink_procs)):
                    # the reader went away: its own failure is the news
                    os.close(w)
                    w = -1
                    sink_stats = _reap(sink_procs, sink_err, sink)
                    if src is sources[-1] and src.expect is not None and \
                            stats[0].write_bytes >= src.expect - UNREAD_SLACK and \
                            all(s.returncode == -13 for s in failed) and \
                            all(s.returncode == 0 for s in sink_stats):
                        # the reader ended well before the source had written its
                        # last block (restore stops at the dump's end record; the
                        # volume's file goes on to its 32 KiB boundary): not a failure
                        if src.check is not None:
                            src.check(stats)
                        log.info("stream: %s ended well with %d bytes of padding unread",
                                 display(sink[0].argv) if sink else "the reader",
                                 src.expect - stats[0].write_bytes)
                        break
                    failed = [s for s in sink_stats if s.returncode != 0] + failed
                    raise _failure(failed, what)
                if src.check is not None:
                    src.check(stats)
                if failed:
                    raise _failure(failed, what)
            if w >= 0:
                os.close(w)
                w = -1
            if sink_stats is None:
                sink_stats = _reap(sink_procs, sink_err, sink)
        except BaseException:
            if w >= 0:
                os.close(w)
            # no source or sink may outlive us (interrupted: Ctrl-C, SIGTERM)
            for p in list(current) + sink_procs:
                if p.poll() is None:
                    p.kill()
            for p in list(current) + sink_procs:
                p.wait()
            for f in sink_err:
                if not f.closed:
                    f.close()
            raise
        finally:
            stop.set()
            watcher.join()
            self._track(sink_procs, False)
        dur = time.monotonic() - start
        log.info("stream exit %s in %.2fs, %d bytes", [s.returncode for s in sink_stats], dur,
                 done[0])
        if progress:
            progress(done[0])
        failed = [s for s in sink_stats if s.returncode != 0]
        if failed:
            raise _failure(failed, what)
        return StreamResult(results, sink_stats, dur)

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
        procs, errfiles = _spawn(cmds, subprocess.DEVNULL, None, shown, what)
        stop = threading.Event()

        def poll():
            seen = 0  # once reaped, the first stage has no counters: never go back
            while not stop.wait(interval):
                if progress:
                    seen = max(seen, _proc_io(procs[0].pid).get("wchar", 0))
                    progress(seen)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        try:
            stats = _reap(procs, errfiles, cmds)
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
                if not f.closed:
                    f.close()
        dur = time.monotonic() - start
        log.info("pipeline exit %s in %.2fs, %d bytes",
                 [s.returncode for s in stats], dur, stats[0].write_bytes)
        res = PipelineResult(stats, dur)
        failed = [s for s in stats if s.returncode != 0]
        if check and failed:
            raise _failure(failed, what)
        return res
