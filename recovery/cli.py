"""amdr-recover: rebuild a machine's disks and restore it from Amanda.

Subcommands:
  plan      show the disk and restore plans; change nothing
  diskinit  recreate partitions and filesystems, mount them under --target
  restore   restore every DLE into the mounted --target
  recover   diskinit, then restore, then a summary per DLE
  umount    unmount everything under --target

Exit status:
  0  done, every DLE restored
  1  partial: some DLE could not be restored (each is named)
  2  usage or configuration error
  3  failed
  4  refused by a safety guard (boot disk, mounted device, no confirmation)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import yaml

from essentials.errors import (EXIT_OK, EXIT_PARTIAL, AmdrError, ConfigError,
                               RefusedError)
from essentials import cliutil
from essentials.runner import Runner

from .disks import guard
from .restore import driver
from .restore.plan import render as render_restore
from .session import Session

log = logging.getLogger(__name__)


def _maps(values) -> dict:
    out = {}
    for v in values or []:
        old, sep, new = v.partition("=")
        if not sep or not old or not new:
            raise ConfigError(f"--map {v}: expected OLD=NEW, e.g. --map /dev/sda=/dev/vdb")
        out[old] = new
    return out


def _session(args) -> Session:
    return Session.load(args.bundle, os.path.abspath(args.target), _maps(args.map),
                        args.amanda_host, args.vtapes, args.until,
                        verify=not args.no_verify,
                        keys={"home": args.gnupghome, "passphrase_file": args.passphrase_file,
                              "signers": args.signer})


def cmd_plan(args) -> int:
    s = _session(args)
    runner = Runner()
    disk = [a.to_dict() for a in s.disk_plan(runner)]
    try:
        lib = s.library()
        devices = {lab: lib.device(lab) for lab in lib.available}
        available = lib.available
    except AmdrError as e:
        print(f"note: {e}", file=sys.stderr)
        devices, available = {}, None
    steps, errors = s.restore_plan(available)
    doc = {"host": s.bundle.host, "amanda_host": s.host(), "target": s.target,
           "disks": disk,
           "restores": [dict(st.to_dict(), commands=render_restore(st, devices))
                        for st in steps],
           "errors": [{"host": h, "disk": d, "message": m} for h, d, m in errors]}
    print(yaml.safe_dump(doc, sort_keys=False, width=200))
    return EXIT_PARTIAL if errors else EXIT_OK


def confirm(s: Session, actions, disks: list[str], yes: bool):
    if yes:
        return
    if not sys.stdin.isatty():
        raise RefusedError("refusing to wipe without confirmation: no terminal to ask on; "
                           "pass --yes after checking the plan with 'amdr-recover plan'")
    print("The following disks will be WIPED and recreated for host "
          f"{s.bundle.host}:\n  " + "\n  ".join(disks))
    for a in actions:
        print(f"  {a.id}: " + "; ".join(" ".join(c) for c in a.render()))
    answer = input(f"Type the host name ({s.bundle.host}) to go ahead: ").strip()
    if answer != s.bundle.host:
        raise RefusedError("not confirmed; nothing was changed")


def do_diskinit(s: Session, runner: Runner, yes: bool):
    actions = s.disk_plan(runner)
    disks = sorted({a.device for a in actions if a.type == "wipe"})
    guard.check_disks(runner, disks)
    confirm(s, actions, disks, yes)
    for a in actions:
        print(f"  {a.id}")
        a.apply(runner)
    return actions


def cmd_diskinit(args) -> int:
    s = _session(args)
    do_diskinit(s, Runner(), args.yes)
    print(f"disks recreated and mounted under {s.target}")
    return EXIT_OK


def do_restore(s: Session, runner: Runner, only=None):
    lib = s.library()
    steps, errors = s.restore_plan(lib.available)
    if only:
        steps = [st for st in steps if st.disk in only]
        errors = [e for e in errors if e[1] in only]
    results = []
    for st in steps:
        print(f"restoring {st.host}:{st.disk} levels {st.chain.levels} into {st.directory}")
        results.append(driver.restore_step(runner, st, lib))
    return results, errors


def print_results(results, errors):
    print(f"{'DLE':40s} {'levels':10s} {'MB':>9s} {'seconds':>8s} {'MB/s':>8s}")
    for r in results:
        mb = r.bytes / 1e6
        print(f"{r.host + ':' + r.disk:40s} {','.join(map(str, r.levels)):10s} "
              f"{mb:9.1f} {r.seconds:8.2f} {mb / r.seconds if r.seconds else 0:8.1f}")
    for h, d, m in errors:
        print(f"NOT RESTORED {h}:{d}: {m}")


def write_report(path, results, errors):
    if not path:
        return
    doc = {"restored": [r.__dict__ for r in results],
           "errors": [{"host": h, "disk": d, "message": m} for h, d, m in errors]}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)


def cmd_restore(args) -> int:
    s = _session(args)
    results, errors = do_restore(s, Runner(), args.dle)
    print_results(results, errors)
    write_report(args.report, results, errors)
    return EXIT_PARTIAL if errors else EXIT_OK


def cmd_recover(args) -> int:
    s = _session(args)
    runner = Runner()
    # plan the restores first: a bundle that cannot restore anything must
    # be found out before the disks are wiped
    steps, errors = s.restore_plan(s.library().available)
    if not steps:
        msgs = "\n  ".join(m for _, _, m in errors) or "no DLE of this host in the disklist"
        raise AmdrError(f"nothing can be restored, so no disk was touched:\n  {msgs}")
    do_diskinit(s, runner, args.yes)
    results, errors = do_restore(s, runner, args.dle)
    print_results(results, errors)
    write_report(args.report, results, errors)
    return EXIT_PARTIAL if errors else EXIT_OK


def cmd_umount(args) -> int:
    target = os.path.abspath(args.target)
    runner = Runner()
    mounts = []
    with open("/proc/self/mounts") as f:
        for line in f:
            mp = line.split()[1].replace("\\040", " ")
            if mp == target or mp.startswith(target.rstrip("/") + "/"):
                mounts.append(mp)
    for mp in sorted(mounts, key=lambda m: m.count("/"), reverse=True):
        runner.run(["umount", mp])
        print(f"unmounted {mp}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amdr-recover", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, bundle=True):
        if bundle:
            sp.add_argument("--bundle", required=True,
                            help="sealed bundle (HOST-...amdr.gpg) or bundle directory")
            sp.add_argument("--gnupghome", help="GnuPG home with the site's recovery key "
                            "(default: $GNUPGHOME, /etc/amanda-dr/recovery-gnupg, ~/.gnupg)")
            sp.add_argument("--passphrase-file", help="file holding the recovery key's "
                            "passphrase (default: asked on the terminal)")
            sp.add_argument("--signer", action="append", metavar="FINGERPRINT",
                            help="accept bundles signed by this key (repeatable; default: "
                                 "keys with full or ultimate owner trust)")
            sp.add_argument("--map", action="append", metavar="OLD=NEW",
                            help="recreate original disk OLD on disk NEW (repeatable)")
            sp.add_argument("--amanda-host", help="the host's name in the Amanda disklist")
            sp.add_argument("--vtapes", help="chg-disk directory holding the volumes "
                            "(default: the one in the bundle's amanda.conf)")
            sp.add_argument("--until", help="restore the state as of this Amanda datestamp")
            sp.add_argument("--no-verify", action="store_true",
                            help="use a bundle even if its signature or checksums do not "
                                 "verify (dangerous)")
        sp.add_argument("--target", required=True, help="directory to mount the system under")

    for name, fn, helptext in (("plan", cmd_plan, "show what would be done"),
                               ("diskinit", cmd_diskinit, "recreate and mount the disks"),
                               ("restore", cmd_restore, "restore into mounted target"),
                               ("recover", cmd_recover, "diskinit + restore")):
        sp = sub.add_parser(name, help=helptext)
        common(sp)
        if name in ("restore", "recover"):
            sp.add_argument("--dle", action="append", metavar="DISK",
                            help="restore only this DLE (its disk name; repeatable)")
            sp.add_argument("--report", metavar="FILE",
                            help="write the per-DLE results as JSON to FILE")
        if name in ("diskinit", "recover"):
            sp.add_argument("--yes", action="store_true",
                            help="do not ask before wiping the mapped disks")
        sp.set_defaults(func=fn)
    sp = sub.add_parser("umount", help="unmount everything under --target")
    common(sp, bundle=False)
    sp.set_defaults(func=cmd_umount)
    return p


def main(argv=None) -> int:
    return cliutil.run("amdr-recover", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
