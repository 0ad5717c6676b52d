"""amdr-recover rebuild-server | restore-from-server: the lost-server path.

  rebuild-server       write a working Amanda configuration on this machine from a
                       bundle's Amanda database or from a media scan, owned by
                       backup, so that amrecover and amfetchdump restore from it
  restore-from-server  restore one DLE from such a configuration, with the real
                       amrecover (pexpect) or amfetchdump piped into tar/restore
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from essentials.errors import EXIT_OK, EXIT_PARTIAL, CatalogError, ConfigError
from essentials.runner import Runner

from ..bundles import add_key_options, key_options, open_any
from ..catalog.source import server_configs
from . import conf as confmod
from . import rebuild


def _changer(args) -> str:
    given = [x for x in (args.vtapes, args.tape_device, args.changer) if x]
    if not given and getattr(args, "scan", None) and len(args.scan) == 1:
        only = Path(args.scan[0])
        if only.is_dir() and any(only.glob("slot*")):
            return confmod.changer_for(vtapes=str(only))
        if only.exists() and not only.is_dir():
            return confmod.changer_for(tape_device=str(only))
    if len(given) != 1:
        raise ConfigError("say where the volumes are: exactly one of --vtapes DIR, "
                          "--tape-device DEV or --changer SPEC")
    return confmod.changer_for(args.vtapes, args.tape_device, args.changer)


def _plan(args, target_for):
    if args.bundle:
        b = open_any(args.bundle, verify=not args.no_verify, **key_options(args))
        names = server_configs(b)
        old = args.from_config or (names[0] if len(names) == 1 else None)
        if old is None:
            raise CatalogError(f"{args.bundle}: " + (
                f"the bundle holds the Amanda configurations {', '.join(names)}; say which "
                f"one with --from-config" if names else
                "the bundle holds no Amanda server database"))
        return rebuild.plan_from_bundle(b, target_for(args.config or old), old)
    from ..catalog.scan import scan  # the media scanner; only this path needs it
    if not args.config:
        raise ConfigError("--scan needs --config NAME: the media do not say the "
                          "configuration's name")
    result = scan(args.scan, Runner())
    plan = rebuild.plan_from_dumps(result.dumps, result.volumes, target_for(args.config),
                                   origin="a scan of " + ", ".join(args.scan))
    plan.notes += [f"scan: {e}" for e in getattr(result, "errors", [])]
    return plan


def cmd_rebuild(args) -> int:
    changer = _changer(args)

    def target_for(name):
        if not name:
            raise ConfigError("--config NAME is needed (the bundle holds several "
                              "configurations; --from-config picks one)")
        state = Path(args.state_dir or f"/var/lib/amanda/{name}")
        return confmod.Target(name, state.absolute(), changer, Path(args.etc))

    plan = _plan(args, target_for)
    if args.dry_run:
        print("\n".join(plan.render(args.index)))
        for n in plan.notes:
            print(f"note: {n}")
        return EXIT_OK
    res = rebuild.apply(plan, Runner(), index=args.index, replace=args.replace,
                        progress=(lambda msg: print(msg, file=sys.stderr))
                        if args.verbose else None)
    t = plan.target
    print(f"Amanda configuration {t.name} rebuilt from {plan.origin} in {res.seconds:.1f}s")
    print(f"  configuration: {t.confdir} (amanda.conf, amanda-client.conf, disklist, tapelist)")
    print(f"  state:         {t.state} (log/: {sum(1 for f in plan.files if f.path.parent == t.logdir)}"
          f" trace logs, curinfo/, index/)")
    print(f"  volumes via:   {t.changer}")
    print(f"  index:         {res.index_files} file(s) from "
          + {"archive": "the bundle's index archive", "media": "the images on the volumes",
             "none": "nowhere (not written)"}[res.index_source])
    for n in res.notes:
        print(f"  note: {n}")
    print(f"amadmin {t.name} find: {len(res.find)} dump(s)")
    for line in rebuild.summary(res):
        print(f"  {line}")
    for p in res.problems:
        print(f"PROBLEM: {p}")
    print(f"restore with: amrecover {t.name} -s localhost -t localhost -h localhost "
          f"-o auth=local   (or amdr-recover restore-from-server --config {t.name} ...)")
    return EXIT_PARTIAL if res.problems else EXIT_OK


def cmd_restore(args) -> int:
    into = os.path.abspath(args.into)
    if args.via == "amrecover":
        from . import amrecover
        r = amrecover.recover(amrecover.RecoverRequest(
            args.config, args.host, args.disk, into, args.until, args.path or ["."]))
        print(f"amrecover restored {args.host}:{args.disk} into {into} from "
              f"{', '.join(r.tapes)} in {r.seconds:.1f}s")
        return EXIT_OK
    from . import fetchdump
    if args.path:
        raise ConfigError("--path works with --via amrecover only (amfetchdump restores "
                          "whole images)")
    r = fetchdump.restore(Runner(), args.config, args.host, args.disk, into, args.until,
                          etc=Path(args.etc))
    print(f"amfetchdump restored {args.host}:{args.disk} levels {r.levels} "
          f"({', '.join(r.dates)}) into {into}: {r.bytes / 1e6:.1f} MB in {r.seconds:.1f}s")
    return EXIT_OK


def register(sub):
    """Add the subcommands to amdr-recover's parser."""
    sp = sub.add_parser("rebuild-server", help="rebuild a lost Amanda server's database "
                        "here, from a bundle or a media scan",
                        description="Rebuild a lost Amanda server's database on this machine "
                        "(amanda.conf, disklist, tapelist, trace logs, index) from its bundle "
                        "or a scan of the volumes, so amrecover and amfetchdump work again.",
                        epilog="example: amdr-recover rebuild-server --bundle "
                        "backup1-....amdr.gpg --vtapes /srv/vtapes --config DailySet1")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--bundle", help="sealed bundle (HOST-...amdr.gpg) or bundle "
                     "directory of the Amanda server")
    src.add_argument("--scan", nargs="+", metavar="DEVICE",
                     help="no bundle: scan these devices or vtape directories")
    add_key_options(sp)
    sp.add_argument("--from-config", metavar="NAME",
                    help="which Amanda configuration of the bundle (default: its only one)")
    sp.add_argument("--config", metavar="NAME",
                    help="name of the rebuilt configuration (default: the bundle's)")
    dev = sp.add_mutually_exclusive_group()
    dev.add_argument("--vtapes", metavar="DIR", help="chg-disk directory of vtape slots")
    dev.add_argument("--tape-device", metavar="DEV", help="tape drive holding the volumes")
    dev.add_argument("--changer", metavar="SPEC", help="tpchanger, e.g. chg-robot:/dev/sg1")
    sp.add_argument("--state-dir", metavar="DIR",
                    help="for log/, index/, curinfo/ (default: /var/lib/amanda/NAME)")
    sp.add_argument("--index", choices=rebuild.INDEX_MODES, default="auto",
                    help="auto: the bundle's archive, else list the images on the media")
    sp.add_argument("--etc", default=str(confmod.AMANDA_ETC), help=argparse_hidden())
    sp.add_argument("--replace", action="store_true",
                    help="overwrite an existing configuration of that name")
    sp.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    sp.set_defaults(func=cmd_rebuild)

    sp = sub.add_parser("restore-from-server", help="restore a DLE from a rebuilt (or live) "
                        "Amanda server with amrecover or amfetchdump",
                        description="Restore one DLE through a rebuilt (or live) Amanda "
                        "server: amfetchdump (whole images, split parts joined) or amrecover.",
                        epilog="example: amdr-recover restore-from-server --config DailySet1 "
                        "--host web1 --disk /srv --into /mnt/target/srv")
    sp.add_argument("--config", required=True, metavar="NAME",
                    help="the Amanda configuration to restore from (rebuild-server's "
                         "--config, or the live server's)")
    sp.add_argument("--host", required=True, help="the DLE's host as Amanda names it")
    sp.add_argument("--disk", required=True, help="the DLE's disk as Amanda names it")
    sp.add_argument("--into", required=True, help="directory to restore into (made empty "
                    "first is best: a level 0 may delete what is there)")
    sp.add_argument("--until", metavar="DATESTAMP",
                    help="the state as of this Amanda datestamp (YYYYMMDD or "
                         "YYYYMMDDhhmmss; default: the newest)")
    sp.add_argument("--via", choices=("amrecover", "amfetchdump"), default="amfetchdump",
                    help="amfetchdump (default: whole images, split parts joined) or "
                         "amrecover (browse the index; --path picks files)")
    sp.add_argument("--path", action="append", help="with amrecover: only this path "
                    "(repeatable; default: everything)")
    sp.add_argument("--etc", default=str(confmod.AMANDA_ETC), help=argparse_hidden())
    sp.set_defaults(func=cmd_restore)


def argparse_hidden():
    import argparse
    return argparse.SUPPRESS
