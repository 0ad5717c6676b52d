"""Collect the Amanda database a server holds, so recovery needs no server.

Per configuration: amanda.conf, disklist, tapelist, the trace logs (the
catalog itself) and `amadmin CONF find`.  Amanda's server tools refuse root,
so they run as the dump user.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from essentials.errors import ConfigError
from essentials.runner import Runner

from .base import Context

log = logging.getLogger(__name__)

AMANDA_ETC = Path("/etc/amanda")
AMANDA_USER = "backup"


def configs(etc: Path = AMANDA_ETC) -> list[str]:
    if not etc.is_dir():
        return []
    return sorted(p.parent.name for p in etc.glob("*/amanda.conf"))


def _conf_path(runner: Runner, conf: str, key: str, etc: Path) -> Path:
    value = runner.output(["amgetconf", conf, key], user=AMANDA_USER).strip()
    p = Path(value)
    return p if p.is_absolute() else etc / conf / p


def _copy(src: Path, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    dst.chmod(0o600)


def collect_config(runner: Runner, conf: str, out: Path, etc: Path = AMANDA_ETC) -> dict:
    base = out / "amanda" / conf
    base.mkdir(parents=True, exist_ok=True)
    _copy(etc / conf / "amanda.conf", base / "amanda.conf")
    disklist = _conf_path(runner, conf, "diskfile", etc)
    if disklist.is_file():
        _copy(disklist, base / "disklist")
    tapelist = _conf_path(runner, conf, "tapelist", etc)
    if tapelist.is_file():
        _copy(tapelist, base / "tapelist")
    logdir = _conf_path(runner, conf, "logdir", etc)
    n = 0
    for p in sorted(logdir.glob("log.*")):
        if p.name.split(".")[1].isdigit():
            _copy(p, base / "logs" / p.name)
            n += 1
    find = runner.output(["amadmin", conf, "find"], user=AMANDA_USER)
    (base / "find.txt").write_text(find)
    return {"config": conf, "trace_logs": n}


def collect(ctx: Context) -> dict:
    etc = ctx.etc / "amanda"
    names = ctx.options.get("configs") or configs(etc)
    missing = [c for c in names if not (etc / c / "amanda.conf").is_file()]
    if missing:
        raise ConfigError(f"no Amanda configuration {', '.join(missing)} under {etc}")
    return {"configs": [collect_config(ctx.runner, c, ctx.out, etc) for c in names]}
