"""amdr-essentials: gather what a bare-metal recovery needs into a bundle.

Exit status:
  0  every collector succeeded
  1  partial: some collector failed (the manifest says which and why)
  2  configuration or usage error
  3  total failure: no bundle was written
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from . import bundle, cliutil
from .collectors import amanda, layout
from .collectors.base import Context
from .errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, AmdrError
from .runner import Runner

log = logging.getLogger(__name__)


def run_collectors(out: Path, collectors) -> dict:
    status = {}
    for name, fn in collectors:
        start = time.monotonic()
        try:
            detail = fn()
            status[name] = {"status": "ok", "duration": round(time.monotonic() - start, 2)}
            if detail:
                status[name]["detail"] = detail
        except Exception as e:  # one failing collector never stops the others
            log.error("collector %s failed: %s", name, e)
            status[name] = {"status": "failed", "duration": round(time.monotonic() - start, 2),
                            "error": str(e)}
    return status


def cmd_collect(args) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise AmdrError(f"{out} is not empty; give a new directory for the bundle")
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    runner = Runner()
    status = run_collectors(out, [
        ("layout", lambda: layout.collect(Context(runner, out, {"disks": args.disk},
                                                  args.root))),
        ("amanda", lambda: amanda.collect(Context(runner, out,
                                                  {"configs": args.amanda_config}))),
    ])
    manifest = bundle.write_manifest(out, status, {"root": args.root})
    failed = [n for n, s in status.items() if s["status"] != "ok"]
    print(f"bundle written to {out}: {len(manifest['files'])} files")
    for n, s in status.items():
        print(f"  {n:10s} {s['status']}" + (f": {s['error']}" if "error" in s else ""))
    if len(failed) == len(status):
        return EXIT_FAILED
    return EXIT_PARTIAL if failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amdr-essentials", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="write a plain bundle directory")
    c.add_argument("--out", required=True, help="new directory to write the bundle into")
    c.add_argument("--disk", action="append", metavar="DEV",
                   help="collect only this disk (repeatable; default: every disk)")
    c.add_argument("--root", default="/",
                   help="directory the system's mountpoints are relative to (default /)")
    c.add_argument("--amanda-config", action="append", metavar="CONF",
                   help="Amanda configuration to collect (repeatable; default: all)")
    c.set_defaults(func=cmd_collect)
    return p


def main(argv=None) -> int:
    return cliutil.run("amdr-essentials", build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
