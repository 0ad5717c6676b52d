"""amdr-essentials: gather what a bare-metal recovery needs, seal it, get it off the host.

  run             collect, encrypt and sign a bundle, deliver it (and any
                  bundle an earlier run left in the spool)
  check           compare the disk layout with the last delivered bundle's;
                  exit 1 when it changed, so `check || run` works from cron
  collect         write a plain (unencrypted) bundle directory, for tests
  config-example  print a commented configuration (--write: into /etc/amanda-dr/)
  host-key        create this host's signing key (once), print its public key
  install-cron    schedule `run` weekly (cron.d, or a systemd timer)
  uninstall-cron  remove that schedule (both kinds)
  doctor          is every tool this host's collection calls installed, and
                  does it run (exit 1 when a needed one is missing or broken)

Exit status:
  0  success: every collector and every delivery succeeded
     (check: the layout is unchanged)
  1  partial: a bundle was made and delivered somewhere (or mailed to some
     of the recipients), but a collector or a delivery failed (the report
     names each; undelivered bundles wait in the spool and are retried next
     run, a mail only to the recipients that refused it)
     (check: the layout changed, or nothing was delivered yet)
  2  configuration or usage error: nothing was collected
  3  failed: no bundle was made, or it reached no delivery, or another run
     holds the lock, or the run was stopped (SIGTERM, SIGHUP, Ctrl-C: the
     plaintext work area is removed first) or hit an unexpected error
     (check: the current layout could not be read)
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from . import agent, bundle, cliutil, config, doctor, schedule, schedule_install
from .errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, AmdrError, ConfigError
from .layout import diff as layout_diff
from .lock import RunLock
from .runner import Runner

log = logging.getLogger(__name__)


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file (also each one a rollover starts) is 0600."""

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def _log_to_file(path: str, verbose: bool):
    """Everything at INFO to the log file; the console gets only the report.

    The report already names every failure, so without -v nothing is logged
    to the console twice (cron mails whatever is printed)."""
    root = logging.getLogger()
    for handler in root.handlers:
        handler.setLevel(logging.INFO if verbose else logging.CRITICAL)
    root.setLevel(logging.INFO)
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        h = _PrivateRotatingFileHandler(p, maxBytes=2 << 20, backupCount=5)
    except OSError as e:
        print(f"amdr-essentials: warning: cannot write the log {p}: {e.strerror}",
              file=sys.stderr)
        return
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(h)


def cmd_run(args) -> int:
    cfg = config.load(args.config)
    _log_to_file(cfg["log_file"], args.verbose)
    if args.random_delay:
        time.sleep(random.uniform(0, args.random_delay))
    with RunLock(Path(cfg["state_dir"]) / "lock"):
        out = agent.run(cfg, Runner())
    code = out.exit_code
    if code != EXIT_OK or not args.quiet:
        print(agent.report(out), file=sys.stdout if code == EXIT_OK else sys.stderr)
    return code


def cmd_check(args) -> int:
    cfg = config.load(args.config)
    last = Path(cfg["state_dir"]) / "last-layout.yaml"
    tmp = Path(tempfile.mkdtemp(prefix="amdr-check-"))
    try:
        status = agent.collect_all(cfg, Runner(), tmp, only=["layout"])
        if status.get("layout", {}).get("status") != "ok":
            raise AmdrError("cannot read the current layout: "
                            + status.get("layout", {}).get("error", "layout collector disabled"))
        current = bundle.load_yaml_text((tmp / "layout.yaml").read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not last.is_file():
        print(f"no bundle has been delivered from this host yet ({last} missing): "
              f"run `amdr-essentials run`")
        return EXIT_PARTIAL
    changes = layout_diff.diff(bundle.load_yaml_text(last.read_text()), current)
    marker = Path(cfg["state_dir"]) / "last-bundle"
    since = marker.read_text().strip() if marker.is_file() else "the last bundle"
    if not changes:
        if not args.quiet:
            print(f"layout unchanged since {since}")
        return EXIT_OK
    n = len(changes)
    print(f"layout changed since {since} ({n} difference{'s' if n > 1 else ''}):")
    print("\n".join("  " + c for c in changes))
    return EXIT_PARTIAL


def cmd_collect(args) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise AmdrError(f"{out} is not empty; give a new directory for the bundle")
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    cfg = config.load(args.config) if args.config else config.validate(
        {"gpg": {"recipients": ["-"], "signer": "-"}}, "defaults")
    if args.amanda_config:
        cfg["collect"]["amanda"]["configs"] = args.amanda_config
    only = args.only or (["layout", "amanda"] if not args.config else None)
    status = agent.collect_all(cfg, Runner(), out, only=only, root=args.root,
                               disks=args.disk, sealed=False)
    manifest = bundle.write_manifest(
        out, status, {"root": args.root or cfg["collect"]["layout"]["root"],
                      **config.manifest_extra(cfg)})
    failed = [n for n, s in status.items() if s["status"] != "ok"]
    print(f"bundle written to {out}: {len(manifest['files'])} files")
    width = max([10, *map(len, status)])
    for n, s in status.items():
        print(f"  {n:{width}s} {s['status']}" + (f": {s['error']}" if "error" in s else ""))
    if len(failed) == len(status):
        return EXIT_FAILED
    return EXIT_PARTIAL if failed else EXIT_OK


def cmd_host_key(args) -> int:
    """Make (once) the key this host signs its bundles with, print its public half."""
    home = Path(args.gnupghome)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    runner = Runner()
    uid = f"amanda-dr {agent.host_name({'host': args.host})} <root@{socket.getfqdn()}>"
    gpg = ["gpg", "--homedir", str(home), "--batch", "--no-tty"]
    listed = runner.run(gpg + ["--with-colons", "--list-secret-keys", uid], check=False)
    if listed.returncode != 0:
        # no passphrase: cron signs unattended; the key never leaves this host
        runner.run(gpg + ["--passphrase", "", "--pinentry-mode", "loopback",
                          "--quick-gen-key", uid, "ed25519", "sign", "never"],
                   what="creating the host signing key")
        listed = runner.run(gpg + ["--with-colons", "--list-secret-keys", uid])
        print(f"created the signing key {uid} in {home}", file=sys.stderr)
    fpr = next(ln.split(":")[9] for ln in listed.text.splitlines() if ln.startswith("fpr:"))
    print(f"fingerprint: {fpr}  (put it in gpg.signer; give the public key below to "
          f"the recovery keyring)", file=sys.stderr)
    sys.stdout.write(runner.output(gpg + ["--armor", "--export", fpr]))
    return EXIT_OK


def cmd_config_example(args) -> int:
    if not args.write:
        sys.stdout.write(config.example())
        return EXIT_OK
    path = Path(args.config)
    if not path.parent.is_dir():
        # the directory also holds the gpg home and the sftp key: root's alone
        path.parent.mkdir(parents=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        print(f"created {path.parent} (mode 0700)")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists; nothing was written. Edit it, or move it away "
                          f"to write a fresh example") from None
    with os.fdopen(fd, "w") as f:
        f.write(config.example())
    print(f"wrote {path} (mode 0600): set gpg.recipients, gpg.signer (amdr-essentials "
          f"host-key prints it) and deliveries, then try `amdr-essentials run`")
    return EXIT_OK


def cmd_install_cron(args) -> int:
    what = "amdr-essentials install-cron" + (" --systemd" if args.systemd else "")
    if args.check_daily and args.weekday == "daily":
        args.parser.error("--check-daily with --weekday daily: the run is daily already; "
                          "give one of them")
    host = schedule_install.Host(args.sysroot)
    if args.systemd:
        schedule_install.require_systemd(host, what)
    else:
        schedule_install.require_cron(what)
    exe = shutil.which("amdr-essentials") or os.path.abspath(sys.argv[0])
    crontab = ""
    if not args.systemd or doctor.locate("crontab"):
        res = host.runner.run(["crontab", "-l", "-u", "backup"], check=False)
        crontab = res.text if res.returncode == 0 else ""  # 1: backup has no crontab
    if args.time:
        h, m = args.time
        when, why = schedule.When(args.weekday, h, m, args.random_delay), \
            "time given on the command line"
    else:
        when, why = schedule.before_amdump(crontab, args.weekday,
                                           random_delay=args.random_delay)
    if args.systemd:
        done = schedule_install.install_systemd(
            host, schedule.systemd_units(exe, when, args.check_daily))
    else:
        done = schedule_install.install_cron(host, schedule.cron_file(exe, when,
                                                                     args.check_daily))
    print("\n".join(done))
    print(f"runs {when.weekday} at {when.hour:02d}:{when.minute:02d} plus up to "
          f"{when.random_delay} s ({why})")
    if args.check_daily:
        print(f"and on the other days at {when.hour:02d}:{when.minute:02d}: "
              f"`check || run` (a new bundle when the layout changed)")
    return EXIT_OK


def cmd_uninstall_cron(args) -> int:
    host = schedule_install.Host(args.sysroot)
    removed = schedule_install.uninstall(host)
    if not removed:
        print(f"nothing to remove: no {host.cron_path} and no amanda-dr units in "
              f"{host.unit_dir}")
    for path in removed:
        print(f"removed {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amdr-essentials", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def command(name, what, example, func):
        """A subcommand whose --help starts with what it does and an example."""
        sp = sub.add_parser(name, help=what, formatter_class=argparse.RawDescriptionHelpFormatter,
                            description=f"{textwrap.fill(what, 79)}\n\nexample:\n  {example}")
        sp.set_defaults(func=func, parser=sp)
        return sp

    def with_config(sp):
        sp.add_argument("-c", "--config", default=str(config.DEFAULT_PATH),
                        help="configuration file (default %(default)s)")
        return sp

    delay = cliutil.checked(schedule.parse_delay, "seconds")
    r = with_config(command(
        "run", "Collect, encrypt and sign a bundle, and deliver it (and any bundle an "
        "earlier run left in the spool).", "amdr-essentials run -v", cmd_run))
    r.add_argument("-q", "--quiet", action="store_true",
                   help="print the report only when something failed (for cron)")
    r.add_argument("--random-delay", type=delay, default=0, metavar="SECONDS",
                   help="first sleep a random time up to SECONDS (0 to 86400)")

    c = with_config(command(
        "check", "Compare the disk layout with the last delivered bundle's; exit 1 when "
        "it changed.", "amdr-essentials check || amdr-essentials run", cmd_check))
    c.add_argument("-q", "--quiet", action="store_true", help="print only differences")

    c = command("collect", "Write a plain (unencrypted) bundle directory, for tests and "
                "a look at what would be collected.",
                "amdr-essentials collect --out /tmp/bundle --only layout", cmd_collect)
    c.add_argument("-c", "--config", help="configuration file (default: built-in defaults)")
    c.add_argument("--out", required=True, help="new directory to write the bundle into")
    c.add_argument("--only", action="append", metavar="COLLECTOR",
                   help="run only this collector (repeatable; without --config: layout "
                        "and amanda)")
    c.add_argument("--disk", action="append", metavar="DEV",
                   help="collect only this disk (repeatable; default: every disk)")
    c.add_argument("--root",
                   help="directory the system's mountpoints are relative to, and whose "
                        "etc/fstab is read (default /)")
    c.add_argument("--amanda-config", action="append", metavar="CONF",
                   help="Amanda configuration to collect (repeatable; default: all)")

    e = command("config-example", "Print a commented configuration, or write it (--write) "
                "as the configuration to edit.", "amdr-essentials config-example --write",
                cmd_config_example)
    e.add_argument("--write", action="store_true",
                   help="write it to --config (its directory made mode 0700, the file "
                        "0600) instead of printing it; an existing file is never replaced")
    e.add_argument("-c", "--config", default=str(config.DEFAULT_PATH),
                   help="where --write puts it (default %(default)s)")

    k = command("host-key", "Create this host's signing key (once) and print its public "
                "key and fingerprint (for gpg.signer and the recovery keyring).",
                "amdr-essentials host-key > /tmp/$(hostname).pub", cmd_host_key)
    k.add_argument("--gnupghome", default="/etc/amanda-dr/gnupg",
                   help="GnuPG home to keep the key in: the configuration's gpg.home "
                        "(default %(default)s)")
    k.add_argument("--host", help="host name in the key (default: the short hostname)")

    sysroot = {"help": argparse.SUPPRESS}  # tests and images: files under another root
    i = command("install-cron", "Schedule `run` weekly, 3 hours before backup's amdump "
                "cron line (cron.d, or a systemd timer); replaces the other kind.",
                "amdr-essentials install-cron --weekday sat --time 21:30 --check-daily",
                cmd_install_cron)
    i.add_argument("--systemd", action="store_true",
                   help="a systemd timer instead of /etc/cron.d (removes the cron file)")
    i.add_argument("--weekday", default="sun", choices=schedule.DAYS + ["daily"],
                   help="day of the weekly run, or daily (default %(default)s)")
    i.add_argument("--time", metavar="HH:MM", type=cliutil.checked(schedule.parse_time, "time"),
                   help="time of day, 00:00 to 23:59 (default: 3 hours before backup's "
                        "amdump cron line, else 20:00)")
    i.add_argument("--random-delay", type=delay, default=1800, metavar="SECONDS",
                   help="each run starts up to SECONDS later, at random, so a site's hosts "
                        "do not all deliver at once (0 to 86400; default %(default)s)")
    i.add_argument("--check-daily", action="store_true",
                   help="also run `check || run` on the other days, so a layout change is "
                        "caught early")
    i.add_argument("--sysroot", **sysroot)

    u = command("uninstall-cron", "Remove the schedule install-cron made: the cron.d file "
                "and the systemd timer, whichever are there.",
                "amdr-essentials uninstall-cron", cmd_uninstall_cron)
    u.add_argument("--sysroot", **sysroot)

    doctor.register(sub, ("essentials",), "amdr-essentials")
    return p


def main(argv=None) -> int:
    with cliutil.signals_unwind():
        try:
            return cliutil.run("amdr-essentials", build_parser(), argv)
        except (cliutil.Terminated, KeyboardInterrupt) as e:
            why = signal.Signals(e.signum).name if isinstance(e, cliutil.Terminated) \
                else "SIGINT"
            print(f"amdr-essentials: stopped by {why}; nothing was left behind in the work "
                  f"area, an undelivered bundle stays in the spool", file=sys.stderr)
            return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
