"""Scheduling the weekly run before amdump: crontab parsing and the files written."""

import configparser

from essentials.schedule import When, amdump_time, before_amdump, cron_file, systemd_units

EXE = "/usr/local/bin/amdr-essentials"

# `crontab -l -u backup` on a Debian Amanda server
BACKUP_CRONTAB = """\
# Edit this file to introduce tasks to be run by cron.
#
# m h  dom mon dow   command
MAILTO=root
# check the tapes in the afternoon, dump at night
0 16 * * 1-5 /usr/sbin/amcheck -m DailySet1
45 0 * * 1-5 /usr/sbin/amdump DailySet1
#30 22 * * * /usr/sbin/amdump Old
"""


def test_amdump_time_realistic_crontab():
    assert amdump_time(BACKUP_CRONTAB) == (0, 45)


def test_amdump_time_earliest_of_two():
    crontab = BACKUP_CRONTAB + "15 23 * * 0 /usr/sbin/amdump WeeklySet\n"
    assert amdump_time(crontab) == (0, 45)
    crontab = "30 2 * * * /usr/sbin/amdump A\n  10 1 * * 6 /usr/sbin/amdump B\n"
    assert amdump_time(crontab) == (1, 10)


def test_amdump_time_hour_is_compared_before_minute():
    assert amdump_time("59 1 * * * amdump A\n0 2 * * * amdump B\n") == (1, 59)


def test_amdump_time_none():
    assert amdump_time("") is None
    assert amdump_time("0 16 * * 1-5 /usr/sbin/amcheck -m DailySet1\n# 0 1 * * * amdump\n") \
        is None


def test_amdump_time_skips_non_numeric_fields():
    assert amdump_time("*/30 * * * * /usr/sbin/amdump X\n@daily /usr/sbin/amdump Y\n") is None


def test_before_amdump_after_midnight_runs_the_evening_before():
    when, why = before_amdump("30 1 * * * /usr/sbin/amdump DailySet1\n", "sun")
    assert when == When("sat", 22, 30, 1800)
    assert why == "amdump runs at 01:30; starting 3 h before it"


def test_before_amdump_realistic_crontab():
    when, why = before_amdump(BACKUP_CRONTAB, "mon", random_delay=600)
    assert when == When("sun", 21, 45, 600)
    assert why == "amdump runs at 00:45; starting 3 h before it"


def test_before_amdump_late_evening_same_day():
    when, _ = before_amdump("0 23 * * * /usr/sbin/amdump DailySet1\n", "sun")
    assert when == When("sun", 20, 0, 1800)


def test_before_amdump_exactly_margin():
    when, _ = before_amdump("5 3 * * * amdump D\n", "wed")
    assert when == When("wed", 0, 5, 1800)


def test_before_amdump_sunday_wraps_to_saturday_and_margin():
    when, why = before_amdump("0 2 * * * amdump D\n", "sun", margin_h=5)
    assert when == When("sat", 21, 0, 1800)
    assert why == "amdump runs at 02:00; starting 5 h before it"


def test_before_amdump_daily_stays_daily():
    when, _ = before_amdump("30 1 * * * amdump D\n", "daily")
    assert when == When("daily", 22, 30, 1800)


def test_before_amdump_none_found():
    when, why = before_amdump("0 16 * * * /usr/sbin/amcheck DailySet1\n", "sun")
    assert when == When("sun", 20, 0, 1800)
    assert why == "no amdump found in backup's crontab"


def test_cron_file_weekly_line():
    text = cron_file(EXE, When("sat", 22, 30, 900))
    assert text.endswith("\n")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines == [
        "SHELL=/bin/sh",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"30 22 * * 6 root {EXE} run --quiet --random-delay 900",
    ]
    f = lines[-1].split()
    assert f[:7] == ["30", "22", "*", "*", "6", "root", EXE]


def test_cron_file_sunday_is_zero():
    text = cron_file(EXE, When())
    assert f"0 20 * * 0 root {EXE} run --quiet --random-delay 1800\n" in text


def test_cron_file_daily():
    text = cron_file(EXE, When("daily", 3, 15, 60))
    assert text.splitlines()[-1] == f"15 3 * * * root {EXE} run --quiet --random-delay 60"


def test_cron_file_check_daily():
    text = cron_file(EXE, When("sun", 20, 0, 1800), check_daily=True)
    lines = text.splitlines()
    assert lines[-2] == f"0 20 * * 0 root {EXE} run --quiet --random-delay 1800"
    # every day but the weekly one, so the two lines never start two runs at once
    assert lines[-1] == (f"0 20 * * 1,2,3,4,5,6 root {EXE} check --quiet || "
                         f"{EXE} run --quiet --random-delay 1800")


def test_cron_file_without_check_daily_has_no_check_line():
    assert " check " not in cron_file(EXE, When())


def _ini(text: str) -> configparser.ConfigParser:
    p = configparser.ConfigParser(interpolation=None)
    p.optionxform = str
    p.read_string(text)
    return p


def test_systemd_units():
    units = systemd_units(EXE, When("sat", 22, 5, 900))
    assert sorted(units) == ["amanda-dr-essentials.service", "amanda-dr-essentials.timer"]
    timer = _ini(units["amanda-dr-essentials.timer"])
    assert timer["Timer"]["OnCalendar"] == "Sat *-*-* 22:05:00"
    assert timer["Timer"]["RandomizedDelaySec"] == "900"
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
    service = _ini(units["amanda-dr-essentials.service"])
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"] == f"{EXE} run --quiet"


def test_systemd_timer_daily_has_no_weekday():
    units = systemd_units(EXE, When("daily", 3, 0, 60))
    timer = _ini(units["amanda-dr-essentials.timer"])
    assert timer["Timer"]["OnCalendar"] == "*-*-* 03:00:00"
