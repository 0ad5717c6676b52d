"""Putting the schedule on the host, and taking it off: cron.d or a systemd timer.

Why only ever one of the two: with both, two runs start at the same time and
one of them always fails on the run lock, so every week cron mails a failure
while a bundle did go out.  Installing one kind removes the other; `uninstall`
removes both.  Why the tools are checked first: a cron.d file on a host
without cron (or units on a host not running systemd) is a schedule nobody
runs, and "wrote ..." would have told the person it was done.

`sysroot` (tests, an image being prepared) puts the files under another
root and leaves the running systemd alone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import doctor, schedule
from .errors import AmdrError
from .runner import Runner

log = logging.getLogger(__name__)

SYSTEMD_RUNNING = Path("/run/systemd/system")


@dataclass
class Host:
    """Where the schedule lives, and whether this host's systemd is to be told."""

    sysroot: str | None = None
    runner: Runner = field(default_factory=Runner)

    def _under(self, path: str) -> Path:
        return Path(self.sysroot) / path.lstrip("/") if self.sysroot else Path(path)

    @property
    def cron_path(self) -> Path:
        return self._under(schedule.CRON_PATH)

    @property
    def unit_dir(self) -> Path:
        return self._under(schedule.UNIT_DIR)

    @property
    def live_systemd(self) -> bool:
        """This host's own systemd is running and the units are its own."""
        return not self.sysroot and SYSTEMD_RUNNING.is_dir()


def require_cron(what: str):
    """cron must be installed: its crontab command is the inventory's proof."""
    doctor.require({"crontab": ["running the schedule from /etc/cron.d"]}, what)


def require_systemd(host: Host, what: str):
    if host.sysroot:
        return
    doctor.require({"systemctl": ["enabling the timer"]}, what)
    if not SYSTEMD_RUNNING.is_dir():
        raise AmdrError(f"{what}: systemd is not running on this host ({SYSTEMD_RUNNING} "
                        f"is missing), so a timer would never run; nothing was changed. "
                        f"Schedule it with cron instead (install-cron without --systemd)")


def _write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def install_cron(host: Host, text: str) -> list[str]:
    """Write the cron.d file; take off any systemd timer. What was done, line by line."""
    _write(host.cron_path, text)
    done = [f"wrote {host.cron_path}"]
    removed = remove_units(host, schedule.unit_names())
    if removed:
        done.append(f"removed the systemd timer ({', '.join(removed)}): with both, one "
                    f"of the two runs would always fail on the lock")
    return done


def install_systemd(host: Host, units: dict[str, str]) -> list[str]:
    """Write (and enable) the units; take off the cron.d file and stale check units."""
    done = []
    for name, text in units.items():
        _write(host.unit_dir / name, text)
        done.append(f"wrote {host.unit_dir / name}")
    stale = [n for n in schedule.unit_names() if n not in units]
    removed = remove_units(host, stale)
    if removed:
        done.append(f"removed {', '.join(removed)} (no --check-daily this time)")
    timers = [n for n in units if n.endswith(".timer")]
    if host.live_systemd:
        host.runner.run(["systemctl", "daemon-reload"], what="reloading systemd")
        host.runner.run(["systemctl", "enable", "--now", *timers],
                        what="enabling the timer")
        done.append(f"enabled {', '.join(timers)}")
    elif not host.sysroot:
        done.append(f"enable it with: systemctl enable --now {' '.join(timers)}")
    if host.cron_path.exists():
        host.cron_path.unlink()
        done.append(f"removed {host.cron_path} (the cron schedule): with both, one of the "
                    f"two runs would always fail on the lock")
    return done


def remove_units(host: Host, names: list[str]) -> list[str]:
    """Stop, disable and delete these unit files when present; the paths removed."""
    present = [n for n in names if (host.unit_dir / n).exists()]
    if not present:
        return []
    timers = [n for n in present if n.endswith(".timer")]
    if host.live_systemd and timers:
        # a unit left enabled but deleted leaves a dangling symlink in timers.target.wants
        host.runner.run(["systemctl", "disable", "--now", *timers], check=False,
                        what="disabling the timer")
    for n in present:
        (host.unit_dir / n).unlink()
    if host.live_systemd:
        host.runner.run(["systemctl", "daemon-reload"], check=False, what="reloading systemd")
    return [str(host.unit_dir / n) for n in present]


def uninstall(host: Host) -> list[str]:
    """Remove both kinds of schedule; the paths removed (empty: there was none)."""
    removed = remove_units(host, schedule.unit_names())
    if host.cron_path.exists():
        host.cron_path.unlink()
        removed.append(str(host.cron_path))
    return removed
