"""amdr-essentials' command line (issue 11): install-cron and uninstall-cron, usage
errors, config-example --write, -v after the subcommand, and every --help.

The schedule is written under --sysroot (a temporary root), so the host's cron
and systemd are never touched; `crontab` is the real one."""

from __future__ import annotations

import argparse
import configparser
import re
import stat

import pytest

from essentials import cli, cliutil, config
from recovery import cli as recovery_cli

CRON = "etc/cron.d/amanda-dr-essentials"
UNITS = "etc/systemd/system"


def main(*argv) -> int:
    return cli.main([str(a) for a in argv])


def usage_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as e:
        main(*argv)
    assert e.value.code == 2
    return capsys.readouterr().err


# -- install-cron: what cron would never run is refused ----------------------------------

@pytest.mark.parametrize("bad", ["25:00", "12:75", "noon", "24:00", "7", "23:60"])
def test_install_cron_refuses_a_time_that_is_no_time_of_day(tmp_path, capsys, bad):
    err = usage_error(capsys, "install-cron", "--sysroot", tmp_path, "--time", bad)
    assert f"argument --time: expected a time of day HH:MM from 00:00 to 23:59 (e.g. 21:30), " \
           f"got '{bad}'" in err
    assert "Traceback" not in err and not (tmp_path / CRON).exists()


@pytest.mark.parametrize("bad", ["-5", "soon", "86401"])
def test_a_random_delay_that_is_not_seconds_is_a_usage_error(tmp_path, capsys, bad):
    for argv in (("install-cron", "--sysroot", tmp_path), ("run",)):
        err = usage_error(capsys, *argv, "--random-delay", bad)
        assert ("argument --random-delay: expected a whole number of seconds from 0 to 86400 "
                f"(a day), got '{bad}'") in err and "Traceback" not in err
    assert not (tmp_path / CRON).exists()


def test_install_cron_writes_what_it_was_given(tmp_path, capsys):
    assert main("install-cron", "--sysroot", tmp_path, "--time", "7:05", "--weekday", "sat",
                "--random-delay", "0") == 0
    line = (tmp_path / CRON).read_text().splitlines()[-1]
    assert line.startswith("5 7 * * 6 root ") and line.endswith(" run --quiet --random-delay 0")
    assert stat.S_IMODE((tmp_path / CRON).stat().st_mode) == 0o644
    assert "runs sat at 07:05 plus up to 0 s (time given on the command line)" \
        in capsys.readouterr().out


def test_check_daily_with_a_daily_run_is_a_usage_error(tmp_path, capsys):
    err = usage_error(capsys, "install-cron", "--sysroot", tmp_path, "--weekday", "daily",
                      "--check-daily")
    assert "--check-daily with --weekday daily: the run is daily already" in err


def _ini(path):
    p = configparser.ConfigParser(interpolation=None)
    p.optionxform = str
    p.read_string(path.read_text())
    return p


def test_systemd_keeps_check_daily(tmp_path, capsys):
    """--systemd --check-daily dropped --check-daily without a word."""
    assert main("install-cron", "--systemd", "--check-daily", "--sysroot", tmp_path,
                "--time", "21:15", "--weekday", "sat") == 0
    units = tmp_path / UNITS
    timer = _ini(units / "amanda-dr-essentials-check.timer")
    assert timer["Timer"]["OnCalendar"] == "Sun,Mon,Tue,Wed,Thu,Fri *-*-* 21:15:00"
    service = _ini(units / "amanda-dr-essentials-check.service")
    exe = service["Service"]["ExecStart"].split("'")[1].split()[0]
    assert service["Service"]["ExecStart"] == \
        f"/bin/sh -c '{exe} check --quiet || exec {exe} run --quiet'"
    assert _ini(units / "amanda-dr-essentials.timer")["Timer"]["OnCalendar"] == \
        "Sat *-*-* 21:15:00"
    assert "and on the other days at 21:15: `check || run`" in capsys.readouterr().out
    # installed again without --check-daily: the check units go
    assert main("install-cron", "--systemd", "--sysroot", tmp_path) == 0
    assert sorted(p.name for p in units.iterdir()) == [
        "amanda-dr-essentials.service", "amanda-dr-essentials.timer"]


def test_one_kind_of_schedule_replaces_the_other(tmp_path, capsys):
    """Both ran: one run always failed on the lock."""
    assert main("install-cron", "--sysroot", tmp_path) == 0
    assert (tmp_path / CRON).exists()
    capsys.readouterr()
    assert main("install-cron", "--systemd", "--sysroot", tmp_path) == 0
    out = capsys.readouterr().out
    assert not (tmp_path / CRON).exists()
    assert f"removed {tmp_path / CRON} (the cron schedule)" in out
    assert (tmp_path / UNITS / "amanda-dr-essentials.timer").exists()
    assert main("install-cron", "--sysroot", tmp_path, "--check-daily") == 0
    out = capsys.readouterr().out
    assert (tmp_path / CRON).exists() and list((tmp_path / UNITS).iterdir()) == []
    assert "removed the systemd timer (" in out and "amanda-dr-essentials.timer" in out


def test_uninstall_removes_both_kinds_and_says_what(tmp_path, capsys):
    main("install-cron", "--systemd", "--check-daily", "--sysroot", tmp_path)
    (tmp_path / CRON).parent.mkdir(parents=True)
    (tmp_path / CRON).write_text("# left by an older install-cron\n")
    capsys.readouterr()
    assert main("uninstall-cron", "--sysroot", tmp_path) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == sorted(f"removed {tmp_path / p}" for p in (
        CRON, f"{UNITS}/amanda-dr-essentials.timer", f"{UNITS}/amanda-dr-essentials.service",
        f"{UNITS}/amanda-dr-essentials-check.timer",
        f"{UNITS}/amanda-dr-essentials-check.service"))
    assert list((tmp_path / UNITS).iterdir()) == [] and not (tmp_path / CRON).exists()
    assert main("uninstall-cron", "--sysroot", tmp_path) == 0
    assert capsys.readouterr().out.startswith("nothing to remove: no ")


@pytest.fixture
def no_cron(only_path):
    """A host without the cron package: no crontab anywhere tools are looked for."""
    return only_path.parent / "root"


def test_install_cron_without_cron_fails_and_writes_nothing(no_cron, capsys):
    assert main("install-cron", "--sysroot", no_cron) == 3
    err = capsys.readouterr().err
    assert "install-cron needs a tool that is missing or broken here" in err
    assert "crontab (cron): not installed (Debian package cron)" in err
    assert "apt-get install -y cron" in err
    assert not (no_cron / CRON).exists()


# -- config-example --write ---------------------------------------------------------------

def test_config_example_write_makes_the_directory_and_never_overwrites(tmp_path, capsys):
    path = tmp_path / "etc" / "amanda-dr" / "essentials.yaml"
    assert main("config-example", "--write", "-c", path) == 0
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == config.example()
    assert f"wrote {path} (mode 0600)" in capsys.readouterr().out
    path.write_text("edited: yes\n")
    assert main("config-example", "--write", "-c", path) == 2
    assert f"{path} exists; nothing was written" in capsys.readouterr().err
    assert path.read_text() == "edited: yes\n"


def test_config_example_without_write_prints(capsys):
    assert main("config-example") == 0
    assert capsys.readouterr().out == config.example()


# -- -v after the subcommand, for both tools -------------------------------------------

@pytest.mark.parametrize("build, argv", [
    (cli.build_parser, ["run"]),
    (cli.build_parser, ["install-cron", "--systemd"]),
    (recovery_cli.build_parser, ["plan", "--bundle", "b", "--target", "/t"]),
    (recovery_cli.build_parser, ["doctor"]),
])
def test_verbose_before_or_after_the_subcommand(build, argv):
    p = build()
    cliutil.add_verbose(p)
    assert p.parse_args(argv).verbose is False
    assert p.parse_args(["-v"] + argv).verbose is True
    assert p.parse_args(argv + ["-v"]).verbose is True
    assert p.parse_args(argv[:1] + ["--verbose"] + argv[1:]).verbose is True


def test_verbose_reaches_nested_subcommands():
    p = recovery_cli.build_parser()
    cliutil.add_verbose(p)
    nested = [s for s in cliutil._subcommands(p)]
    assert nested and all(cliutil._has_verbose(s) for s in nested)


# -- --help: what it does, an example, and help for every option --------------------

def _subparsers(p):
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def test_every_subcommand_says_what_it_does_with_an_example():
    p = cli.build_parser()
    cliutil.add_verbose(p)
    subs = _subparsers(p)
    assert {"run", "check", "collect", "config-example", "host-key", "install-cron",
            "uninstall-cron", "doctor"} <= set(subs)
    for name, sp in subs.items():
        text = sp.format_help()
        assert re.search(rf"example:\s+amdr-essentials {name}\b",
                         (sp.description or "") + (sp.epilog or ""), re.I), name
        for a in sp._actions:
            if a.help == argparse.SUPPRESS:
                continue
            assert a.help, f"{name} {a.option_strings}: no help text"
        assert "-v, --verbose" in text, name


def test_systemd_timer_on_a_host_not_running_systemd_fails(tmp_path, monkeypatch, capsys):
    """Units nobody would run, reported as done: refused like cron without cron."""
    from essentials import schedule, schedule_install
    monkeypatch.setattr(schedule, "CRON_PATH", str(tmp_path / "cron.d" / "amdr"))
    monkeypatch.setattr(schedule, "UNIT_DIR", str(tmp_path / "units"))
    monkeypatch.setattr(schedule_install, "SYSTEMD_RUNNING", tmp_path / "run-systemd-system")
    assert main("install-cron", "--systemd") == 3
    err = capsys.readouterr().err
    assert "systemd is not running on this host" in err and "nothing was changed" in err
    assert "install-cron without --systemd" in err
    assert not (tmp_path / "units").exists()


def test_every_recovery_subcommand_says_what_it_does_with_an_example():
    from recovery import cli as rcli
    p = rcli.build_parser()
    cliutil.add_verbose(p)
    subs = _subparsers(p)
    assert {"plan", "diskinit", "restore", "recover", "mount", "umount", "catalog",
            "restore-tar", "restore-dump", "rebuild-server", "restore-from-server",
            "doctor"} <= set(subs)
    for name, sp in subs.items():
        assert sp.description, name
        assert re.search(rf"example:\s+amdr-recover {name}\b", sp.epilog or "", re.I), name
        for a in sp._actions:
            if a.help == argparse.SUPPRESS:
                continue
            assert a.help, f"{name} {a.option_strings}: no help text"
    top = p.format_help()
    for name in ("rebuild-server", "restore-from-server", "doctor"):
        assert f"\n  {name}" in top, name
