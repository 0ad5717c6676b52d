"""Load the catalog of an Amanda configuration on this machine (a live server).

The same ConfigCatalog a bundle gives (source.from_bundle), read where the
server keeps it: amanda.conf in /etc/amanda/CONF, and the disklist, tapelist
and trace logs where `amgetconf` says.  Amanda's tools refuse root, so
amgetconf and `amadmin CONF find` run as the dump user through the runner.
"""

from __future__ import annotations

import logging
from pathlib import Path

from essentials.errors import CatalogError, CommandError, ConfigError
from essentials.runner import Runner

from . import findout, tracelog
from .source import ConfigCatalog, build_config

log = logging.getLogger(__name__)

AMANDA_ETC = Path("/etc/amanda")
AMANDA_USER = "backup"


def _read(path: Path) -> str | None:
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8", errors="replace")


def conf_path(runner: Runner, conf: str, key: str, etc: Path = AMANDA_ETC) -> Path:
    """A path parameter of the configuration, relative ones taken from its directory."""
    value = runner.output(["amgetconf", conf, key], user=AMANDA_USER,
                          what=f"reading {key} of Amanda configuration {conf}").strip()
    p = Path(value)
    return p if p.is_absolute() else etc / conf / p


def from_server(conf: str, runner: Runner | None = None,
                etc: Path = AMANDA_ETC) -> ConfigCatalog:
    runner = runner or Runner()
    amanda_conf = etc / conf / "amanda.conf"
    if not amanda_conf.is_file():
        have = sorted(p.parent.name for p in etc.glob("*/amanda.conf")) if etc.is_dir() else []
        raise ConfigError(f"no Amanda configuration {conf} on this machine ({amanda_conf} "
                          f"does not exist; configurations here: {', '.join(have) or 'none'})")
    try:
        disklist = conf_path(runner, conf, "diskfile", etc)
        tapelist = conf_path(runner, conf, "tapelist", etc)
        logdir = conf_path(runner, conf, "logdir", etc)
        find = runner.output(["amadmin", conf, "find"], user=AMANDA_USER,
                             what=f"listing the dumps of {conf}")
    except CommandError as e:
        raise CatalogError(f"cannot read the catalog of Amanda configuration {conf}: {e}")
    logs = []
    if logdir.is_dir():
        for p in tracelog.logfiles(logdir):
            logs.append((str(p), p.read_text(encoding="utf-8", errors="replace")))
    else:
        log.warning("%s: log directory %s does not exist", conf, logdir)
    cat = build_config(conf, _read(amanda_conf), _read(disklist), _read(tapelist), logs,
                       find, str(logdir))
    _cross_check(cat, findout.parse(find), conf)
    return cat


def _cross_check(cat: ConfigCatalog, found, conf: str):
    """Say when amadmin find knows a dump on a volume the trace logs do not.

    find reads the same trace logs, so a difference means logs changed or
    were removed in between; the trace logs are still what is used.
    """
    have = {(d.host, d.disk, d.date, d.level) for d in cat.dumps}
    extra = [d for d in found if d.parts and (d.host, d.disk, d.date, d.level) not in have
             and all(p.label in cat.tapelist for p in d.parts)]
    for d in extra[:10]:
        log.warning("%s: amadmin find lists %s:%s level %d of %s on %s, which no trace log "
                    "holds", conf, d.host, d.disk, d.level, d.date,
                    ", ".join(p.label for p in d.parts))
