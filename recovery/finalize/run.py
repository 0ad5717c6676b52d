"""Apply a finalize plan: journaled so a re-run continues, reported in the target.

The journal (STATE/finalize.journal) holds the id and fingerprint of each
completed step; a re-run skips those (the file rewrites are not planned
again once the files are right), so finalize run twice changes nothing the
second time and says so.  A restore replaces the files finalize changed, so
`recover` and `restore` start its journal over.

The report (every step, its commands with exit codes and seconds, what was
changed, the diffs) is written into the restored system under
/var/log/amanda-dr/ and beside the state directory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from essentials.errors import CommandError
from essentials.runner import Runner, display

from .actions import ORIG_SUFFIX, inside
from .plan import FinalizePlan

log = logging.getLogger(__name__)

NOT_CHANGES = ("scrub", "chroot", "unbind")
LOG_DIR = "/var/log/amanda-dr"


class Done:
    """The finalize journal: steps done, by id and fingerprint (any order)."""

    def __init__(self, path):
        self.path = Path(path)
        self.done_set: set[tuple[str, str]] = set()
        self.skipped = 0
        try:
            for line in self.path.read_text().splitlines():
                e = json.loads(line)
                self.done_set.add((e["id"], e["hash"]))
        except (OSError, ValueError, KeyError):
            pass

    def restart(self):
        self.done_set.clear()
        if self.path.exists():
            self.path.rename(self.path.with_name(self.path.name + f".old-{int(time.time())}"))

    def skip(self, action, runner: Runner) -> bool:
        if runner.dry_run or (action.id, action.fingerprint()) not in self.done_set:
            return False
        if not action.still_done(runner):
            return False
        self.skipped += 1
        return True

    def done(self, action, runner: Runner):
        if runner.dry_run:
            return
        self.done_set.add((action.id, action.fingerprint()))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"id": action.id, "hash": action.fingerprint(),
                                "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


def reset(state_dir: str):
    """The restored files changed under finalize: its journal no longer holds."""
    Done(Path(state_dir) / "finalize.journal").restart()


class Tally(Runner):
    """The runner, noting each command's exit code and seconds for the report."""

    def __init__(self, inner: Runner):
        super().__init__(inner.dry_run, inner.responses)
        self.inner = inner
        self.commands: list[dict] = []

    def run(self, argv, **kw):
        try:
            res = self.inner.run(argv, **kw)
        except CommandError as e:
            self.commands.append({"command": display(argv), "exit": e.returncode})
            raise
        self.commands.append({"command": display(argv), "exit": res.returncode,
                              "seconds": round(res.duration, 2)})
        return res


def change_of(action) -> str | None:
    t = action.type
    if t == "write":
        return f"{action.path}: {action.why}" + (
            f" (the original kept as {action.path}{ORIG_SUFFIX})" if action.existed else
            " (new file)")
    if t == "set-aside":
        return f"{action.path} moved to {action.path}{ORIG_SUFFIX}: {action.why}"
    if t == "initramfs":
        return f"initramfs made again ({action.tool})"
    if t == "grub-bios":
        return (f"GRUB for BIOS installed on {', '.join(action.devices)}"
                + (f"; debconf grub-pc/install_devices: {', '.join(action.debconf)}"
                   if action.debconf else ""))
    if t == "grub-efi":
        return (f"GRUB for UEFI installed in {action.esp}/EFI/{action.bootloader_id}/ and at "
                f"the fallback path {action.esp}/EFI/BOOT/BOOTX64.EFI")
    if t == "efi-entry":
        return (f"firmware entry {action.label!r} -> {action.loader} on {action.disk} "
                f"partition {action.partition}, first in BootOrder"
                + (f" (removed: {', '.join(action.delete)})" if action.delete else ""))
    if t == "grub-config":
        return f"GRUB configuration made again ({' '.join(action.argv)})"
    if t == "capabilities":
        return f"{len(action.files)} file capabilities set again"
    if t == "autorelabel":
        return "/.autorelabel created: SELinux relabels at first boot"
    return None


def apply(fp: FinalizePlan, runner: Runner, state_dir: str, restart: bool = False,
          host: str = "") -> dict:
    journal = Done(Path(state_dir) / "finalize.journal")
    if restart:
        journal.restart()
    for a in fp.actions:
        a.journal = journal if a.journaled else None
    started = time.time()
    report = {"host": host, "target": fp.actions[0].target if fp.actions else "",
              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
              "steps": [], "changes": [], "diffs": {}, "notes": list(fp.notes),
              "references": fp.to_dict()["references"], "nics": fp.to_dict()["nics"]}
    unbind = next((a for a in fp.actions if a.type == "unbind"), None)
    try:
        for a in fp.actions:
            tally, t0, before = Tally(runner), time.monotonic(), journal.skipped
            print(f"  {a.id}")
            step = {"id": a.id, "type": a.type, "status": "running", "commands": tally.commands}
            report["steps"].append(step)
            try:
                a.apply(tally)
            except Exception as e:
                step.update(status="failed", error=str(e),
                            seconds=round(time.monotonic() - t0, 2))
                raise
            skipped = journal.skipped > before
            step.update(status="skipped" if skipped else "done",
                        seconds=round(time.monotonic() - t0, 2))
            if not skipped and a.type not in NOT_CHANGES:
                change = change_of(a)
                if change:
                    report["changes"].append(change)
                if getattr(a, "diff", ""):
                    report["diffs"][a.path] = a.diff
    except Exception:
        if unbind is not None and not any(s["id"] == unbind.id for s in report["steps"]):
            try:
                unbind.apply(runner)
            except Exception as e:  # the report must still be written
                log.warning("unbinding after the failure: %s", e)
        raise
    finally:
        report["seconds"] = round(time.time() - started, 2)
        if not runner.dry_run:
            report["saved"] = save(report, state_dir, report["target"])
    return report


def render(report: dict) -> str:
    out = [f"amanda-dr finalize of {report['host'] or 'the restored system'} in "
           f"{report['target']}, {report['started']}, {report['seconds']} s"]
    out.append("Steps:")
    for s in report["steps"]:
        out.append(f"  {s['id']:24s} {s['status']:8s} {s.get('seconds', 0):7.2f} s"
                   + (f"  {s['error']}" if s.get("error") else ""))
        for c in s["commands"]:
            out.append(f"      exit {c['exit']}"
                       + (f" {c['seconds']:6.2f} s" if "seconds" in c else "")
                       + f"  {c['command']}")
    out.append("Changed:" if report["changes"] else "Changed: nothing")
    out += [f"  {c}" for c in report["changes"]]
    for path, diff in report["diffs"].items():
        out.append(f"Diff of {path}:")
        out += [f"  {line}" for line in diff.splitlines()]
    if report["notes"]:
        out.append("Notes:")
        out += [f"  {n}" for n in report["notes"]]
    return "\n".join(out) + "\n"


def save(report: dict, state_dir: str, target: str) -> list[str]:
    stamp = report["started"].replace("-", "").replace(":", "")
    text, doc = render(report), json.dumps(report, indent=1, default=str)
    places = [os.path.join(state_dir, "finalize-report")]
    if target and os.path.ismount(target):
        places.append(inside(target, f"{LOG_DIR}/finalize-{stamp}"))
    saved = []
    for base in places:
        try:
            os.makedirs(os.path.dirname(base), exist_ok=True)
            for ext, body in ((".json", doc), (".txt", text)):
                with open(base + ext, "w") as f:
                    f.write(body)
            saved.append(base + ".txt")
        except OSError as e:
            log.warning("cannot write the finalize report to %s: %s", base, e)
    return saved
