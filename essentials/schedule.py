"""Scheduling the weekly run: a cron.d file, or a systemd timer.

Why before the nightly amdump: the bundle then describes the disks as the
next backup will find them, and a run that overruns never competes with
amdump for the disks.  A random delay spreads a site's clients so they do
not all hit the sftp server in the same minute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CRON_PATH = "/etc/cron.d/amanda-dr-essentials"
UNIT_DIR = "/etc/systemd/system"
UNIT = "amanda-dr-essentials"
CHECK_UNIT = f"{UNIT}-check"  # --check-daily under systemd: `check || run`
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# a longer delay than this would let a run start after the next one was due
MAX_DELAY = 86400


@dataclass
class When:
    weekday: str = "sun"  # sun..sat, or "daily"
    hour: int = 20
    minute: int = 0
    random_delay: int = 1800  # seconds

    def __post_init__(self):
        # cron accepts a file with hour 25 and then never runs it: refuse it here
        if self.weekday not in DAYS + ["daily"]:
            raise ValueError(f"weekday: expected one of {', '.join(DAYS)} or daily, "
                             f"got {self.weekday!r}")
        if not (0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise ValueError(f"time: expected 00:00 to 23:59, got {self.hour}:{self.minute:02d}")
        if not 0 <= self.random_delay <= MAX_DELAY:
            raise ValueError(f"random delay: expected 0 to {MAX_DELAY} seconds, "
                             f"got {self.random_delay}")


def parse_time(text: str) -> tuple[int, int]:
    """HH:MM (or H:MM) of a day, 00:00 to 23:59; ValueError saying what was expected."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text or "")
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        raise ValueError(f"expected a time of day HH:MM from 00:00 to 23:59 (e.g. 21:30), "
                         f"got {text!r}")
    return int(m[1]), int(m[2])


def parse_delay(text: str) -> int:
    """Seconds of random delay, 0 to MAX_DELAY; ValueError saying what was expected."""
    t = (text or "").strip()
    if not re.fullmatch(r"\d+", t) or int(t) > MAX_DELAY:
        raise ValueError(f"expected a whole number of seconds from 0 to {MAX_DELAY} (a day), "
                         f"got {text!r}")
    return int(t)


def amdump_time(crontab: str) -> tuple[int, int] | None:
    """The earliest time of day an `amdump` line in a crontab runs, if any."""
    times = []
    for line in crontab.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "amdump" not in line:
            continue
        f = line.split()
        if len(f) >= 6 and re.fullmatch(r"\d+", f[0]) and re.fullmatch(r"\d+", f[1]) \
                and int(f[1]) <= 23 and int(f[0]) <= 59:
            times.append((int(f[1]), int(f[0])))
    return min(times) if times else None


def before_amdump(crontab: str, weekday: str = "sun", margin_h: int = 3,
                  random_delay: int = 1800) -> tuple[When, str]:
    """Schedule margin_h hours before amdump; say why, for the person installing it."""
    t = amdump_time(crontab)
    if t is None:
        return When(weekday, 20, 0, random_delay), "no amdump found in backup's crontab"
    h, m = t
    day = weekday
    run_h = h - margin_h
    if run_h < 0 and weekday in DAYS:  # the evening before, same night
        run_h += 24
        day = DAYS[(DAYS.index(weekday) - 1) % 7]
    return When(day, run_h % 24, m, random_delay), \
        f"amdump runs at {h:02d}:{m:02d}; starting {margin_h} h before it"


def cron_file(exe: str, when: When, check_daily: bool = False) -> str:
    dow = "*" if when.weekday == "daily" else str(DAYS.index(when.weekday))
    lines = [
        "# amanda-dr essentials, written by `amdr-essentials install-cron`.",
        "# cron mails what the run prints: nothing when all went well (--quiet),",
        "# the report when a collector or a delivery failed. Exit status: see --help.",
        "SHELL=/bin/sh",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"{when.minute} {when.hour} * * {dow} root {exe} run --quiet "
        f"--random-delay {when.random_delay}",
    ]
    if check_daily and when.weekday != "daily":
        # not on the weekly day: the two lines would start two runs in one minute
        others = ",".join(str(i) for i, d in enumerate(DAYS) if d != when.weekday)
        lines.append(f"{when.minute} {when.hour} * * {others} root {exe} check --quiet || "
                     f"{exe} run --quiet --random-delay {when.random_delay}")
    return "\n".join(lines) + "\n"


def systemd_units(exe: str, when: When, check_daily: bool = False) -> dict[str, str]:
    """The weekly service and timer; with check_daily also `check || run` on the
    other days (a unit pair of its own: one timer cannot run two commands)."""
    day = "" if when.weekday == "daily" else when.weekday.capitalize() + " "
    service = f"""[Unit]
Description=amanda-dr essentials: collect, encrypt and deliver the recovery bundle
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart={exe} run --quiet
Nice=10
IOSchedulingClass=idle
"""
    timer = f"""[Unit]
Description=Weekly amanda-dr essentials bundle

[Timer]
OnCalendar={day}*-*-* {when.hour:02d}:{when.minute:02d}:00
RandomizedDelaySec={when.random_delay}
Persistent=true

[Install]
WantedBy=timers.target
"""
    units = {f"{UNIT}.service": service, f"{UNIT}.timer": timer}
    if check_daily and when.weekday != "daily":
        others = ",".join(d.capitalize() for d in DAYS if d != when.weekday)
        units[f"{CHECK_UNIT}.service"] = f"""[Unit]
Description=amanda-dr essentials: a new bundle when the disk layout changed
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c '{exe} check --quiet || exec {exe} run --quiet'
Nice=10
IOSchedulingClass=idle
"""
        units[f"{CHECK_UNIT}.timer"] = f"""[Unit]
Description=Daily amanda-dr essentials layout check

[Timer]
OnCalendar={others} *-*-* {when.hour:02d}:{when.minute:02d}:00
RandomizedDelaySec={when.random_delay}
Persistent=true

[Install]
WantedBy=timers.target
"""
    return units


def unit_names() -> list[str]:
    """Every unit file install-cron may have written (what uninstall removes)."""
    return [f"{u}.{kind}" for u in (UNIT, CHECK_UNIT) for kind in ("timer", "service")]
