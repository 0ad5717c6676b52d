"""Probe the inventory's tools: does each one run here, and what mends it.

`doctor` shows the whole table; `require()` is what a command calls with the
tools its own work will run, before it touches anything, so that a missing
mkfs or an Amanda whose Perl modules do not load is named with the
`apt-get install` line that mends it, not found out half-way through.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass

from .errors import AmdrError, CommandError
from .inventory import BY_NAME, USES, Tool, tools_for
from .runner import Runner

log = logging.getLogger(__name__)

# after PATH: a user's shell or cron may lack the sbin directories, which the
# collectors and the probes both add (the one lookup: doctor and the work
# that follows never disagree)
SEARCH = ("/usr/sbin", "/sbin")
PROBE_TIMEOUT = 30


class ToolsMissing(AmdrError):
    """Tools the work needs are missing or broken; nothing was started."""


@dataclass
class Status:
    tool: Tool
    path: str | None
    ok: bool
    detail: str  # the version when ok, else what is wrong

    @property
    def state(self) -> str:
        if self.ok:
            return "ok"
        return "missing" if self.path is None else "broken"


def locate(name: str) -> str | None:
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    path = os.pathsep.join([os.environ.get("PATH", ""), *SEARCH])
    return shutil.which(name, path=path)


_VERSION = re.compile(r"\d+\.\d+[\w.+~:-]*|(?<=version )\d+")
_cache: dict[str, Status] = {}
# probes run this many at a time: most of a probe is a process starting (an
# Amanda Perl tool loads its modules for a second or more; the live image's
# doctor took 44 s one by one under qemu's emulation)
PARALLEL = 8


def probe_all(tools, runner: Runner | None = None) -> list[Status]:
    """probe() of each tool, several at once; in the order given."""
    from concurrent.futures import ThreadPoolExecutor
    todo = [t for t in dict.fromkeys(tools) if t.name not in _cache]
    if len(todo) > 1:
        with ThreadPoolExecutor(max_workers=min(PARALLEL, len(todo))) as pool:
            list(pool.map(lambda t: probe(t, runner), todo))
    return [probe(t, runner) for t in tools]


def probe(tool: Tool, runner: Runner | None = None) -> Status:
    """Run the tool's probe (cached per process: a tool does not change under us)."""
    if tool.name in _cache:
        return _cache[tool.name]
    path = locate(tool.argv[0])
    if path is None:
        st = Status(tool, None, False, f"not installed (Debian package {tool.package})")
    else:
        st = _run_probe(tool, path, runner or Runner())
    _cache[tool.name] = st
    return st


def _run_probe(tool: Tool, path: str, runner: Runner) -> Status:
    argv = [path, *tool.argv[1:]]
    env = dict(os.environ, LC_ALL="C", LVM_SUPPRESS_FD_WARNINGS="1")
    try:
        res = runner.run(argv, check=False, env=env, timeout=PROBE_TIMEOUT,
                         stdin=open(os.devnull, "rb"))
    except CommandError as e:
        return Status(tool, path, False, f"does not run: {e.stderr_tail.strip()[:200]}")
    out = (res.stdout + b"\n" + res.stderr).decode("utf-8", "replace").strip()
    if res.returncode not in tool.ok or (tool.expect and not re.search(tool.expect, out,
                                                                       re.M)):
        why = _first_error(out) or f"exit {res.returncode}"
        return Status(tool, path, False, f"does not run: {why}")
    m = _VERSION.search(out) if tool.versioned else None
    return Status(tool, path, True, m.group(0) if m else "runs")


def _first_error(out: str) -> str:
    """The line of the probe's output that says what is wrong (Perl's "Can't locate")."""
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    for ln in lines:
        if re.search(r"can't|cannot|error|not found|no such|failed", ln, re.I):
            return ln.split(" (@INC contains")[0][:200]  # Perl's search path says nothing
    return lines[0][:200] if lines else ""


def mend(statuses) -> str | None:
    """The apt-get line that installs (or repairs) what is missing or broken."""
    bad = [s for s in statuses if not s.ok]
    if not bad:
        return None
    pkgs: list[str] = []
    for s in bad:
        for p in s.tool.packages:
            if p not in pkgs:
                pkgs.append(p)
    reinstall = any(s.path is not None for s in bad)
    return ("apt-get install -y " + ("--reinstall " if reinstall and all(
        s.path for s in bad) else "") + " ".join(pkgs))


def require(needs: dict[str, list[str]] | list[str], what: str,
            runner: Runner | None = None) -> list[Status]:
    """Check that every tool `what` will run is installed and runs; else ToolsMissing.

    `needs` maps a tool to what needs it (or is a plain list).  A tool the
    inventory does not declare is a bug of ours, named as such."""
    if not isinstance(needs, dict):
        needs = {t: [] for t in needs}
    undeclared = [t for t in needs if os.path.basename(t) not in BY_NAME]
    if undeclared:
        raise AmdrError(f"{what}: amanda-dr would run {', '.join(undeclared)}, which its tool "
                        f"inventory (essentials/inventory.py) does not declare; this is a bug "
                        f"of amanda-dr, please report it")
    statuses = probe_all([BY_NAME[os.path.basename(t)] for t in needs], runner)
    bad = [s for s in statuses if not s.ok]
    if bad:
        lines = []
        for s in bad:
            by = needs.get(s.tool.name) or []
            lines.append(f"  {s.tool.name} ({s.tool.package}): {s.detail}"
                         + (f"; needed for {', '.join(by)}" if by else ""))
        raise ToolsMissing(f"nothing was changed: {what} needs "
                           f"{'tools that are' if len(bad) > 1 else 'a tool that is'} "
                           f"missing or broken here:\n"
                           + "\n".join(lines) + f"\n  mend it with: {mend(bad)}")
    return statuses


# -- the doctor table -------------------------------------------------------------


@dataclass
class Report:
    rows: list[tuple[Status, list[str], bool]]  # status, needed by, required

    @property
    def failed(self) -> list[Status]:
        return [s for s, _, req in self.rows if req and not s.ok]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def examine(sides, runner: Runner | None = None) -> Report:
    rows = []
    tools = tools_for(sides)
    for t, st in zip(tools, probe_all(tools, runner)):
        uses = [USES[u] for u in t.uses if USES[u].side in sides]
        required = any(u.required for u in uses)
        rows.append((st, [u.text for u in uses], required))
    return Report(rows)


def summary(report: Report, prefix: str) -> str:
    """One line for a console: how many tools, and what is missing or broken."""
    n = len(report.rows)
    if not report.failed:
        return f"{prefix}: {n} tools checked, all present"
    return (f"{prefix}: {n} tools checked, MISSING OR BROKEN: "
            + ", ".join(f"{s.tool.name} ({s.state})" for s in report.failed))


def render(report: Report) -> list[str]:
    """The table a person reads at 80 columns; what is wrong is spelt out below it."""
    import textwrap
    out = [f"{'tool':18s} {'package':23s} {'status':12s} needed by"]
    for s, by, required in report.rows:
        state = s.detail if s.ok else s.state.upper() if required else f"({s.state})"
        needed = textwrap.wrap(", ".join(by), 80 - 57) or [""]
        out.append(f"{s.tool.name:18s} {s.tool.package:23s} {state[:12]:12s} {needed[0]}")
        out.extend(f"{'':56s} {more}" for more in needed[1:])
    failed = report.failed
    out.append("")
    for s in failed:
        out.append(f"{s.tool.name}: {s.detail}")
    if failed:
        out.append(f"{len(failed)} needed tool{'s' if len(failed) > 1 else ''} missing or "
                   f"broken; mend with:")
        out.append(f"  {mend(failed)}")
    else:
        out.append("every needed tool runs")
    optional = [s for s, _, req in report.rows if not req and not s.ok]
    if optional:
        out.append(f"not here, needed only on hosts that use them: "
                   f"{', '.join(s.tool.name for s in optional)}")
    return out


def to_json(report: Report) -> list[dict]:
    return [{"tool": s.tool.name, "package": s.tool.package, "packages": list(s.tool.packages),
             "needed_by": by, "required": req, "state": s.state, "path": s.path,
             "detail": s.detail} for s, by, req in report.rows]


# -- the doctor subcommand of both tools ---------------------------------------------

def register(sub, sides: tuple[str, ...], prog: str):
    """Add `doctor` to a tool's subcommands; `sides` are the uses it checks."""
    d = sub.add_parser(
        "doctor", help="check that every tool this half calls is installed and runs",
        description=f"Probe every external tool {prog} calls (its Debian package, what "
                    f"needs it, its version or what is wrong) and print the apt-get line "
                    f"that mends what is missing. Exit 1 when a needed tool is missing or "
                    f"broken.", epilog=f"example: {prog} doctor --all")
    d.add_argument("--all", action="store_true",
                   help="also the other half's tools and the test suite's")
    d.add_argument("--json", action="store_true", help="print the table as JSON")
    d.add_argument("--line", metavar="PREFIX",
                   help="print one line, 'PREFIX: N tools checked, all present' or what is "
                        "missing (the live image's console)")
    d.set_defaults(func=lambda args: _cmd(args, sides))


def _cmd(args, sides) -> int:
    import json
    report = examine(("essentials", "recovery", "tests") if args.all else sides)
    if args.line:
        print(summary(report, args.line))
    elif args.json:
        print(json.dumps({"tools": to_json(report), "ok": not report.failed,
                          "mend": mend(report.failed)}, indent=1))
    else:
        print("\n".join(render(report)))
    return report.exit_code
