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
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@dataclass
class When:
    weekday: str = "sun"  # sun..sat, or "daily"
    hour: int = 20
    minute: int = 0
    random_delay: int = 1800  # seconds


def amdump_time(crontab: str) -> tuple[int, int] | None:
    """The earliest time of day an `amdump` line in a crontab runs, if any."""
    times = []
    for line in crontab.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "amdump" not in line:
            continue
        f = line.split()
        if len(f) >= 6 and re.fullmatch(r"\d+", f[0]) and re.fullmatch(r"\d+", f[1]):
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


def systemd_units(exe: str, when: When) -> dict[str, str]:
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
    return {f"{UNIT}.service": service, f"{UNIT}.timer": timer}
