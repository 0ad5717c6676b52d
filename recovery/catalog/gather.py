"""Read every catalog source a person named into one Catalog.

--server CONF (this machine's Amanda), --bundle PATH (sealed or a
directory), --reports FILE... (mails, mboxes, directories), --scan
DEVICE... (the volumes themselves), in any combination.  The reports and
scan readers are imported where they are used, so a missing or broken one
only affects the runs that ask for it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from essentials.errors import ConfigError
from essentials.runner import Runner

from . import amconf, combined
from .source import from_bundle

log = logging.getLogger(__name__)


@dataclass
class Request:
    servers: list[str] = field(default_factory=list)
    bundles: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    scan: list[str] = field(default_factory=list)
    disklist: str | None = None
    vtapes: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    # opening sealed bundles: home, passphrase_file, signers
    keys: dict = field(default_factory=dict)
    verify: bool = True
    keep_in: Path | None = None  # a recovery's opened bundles (bundles.opened_dir)
    # the bundles read_sources opened (their Amanda encryption keys serve the restore)
    opened: list = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.servers or self.bundles or self.reports or self.scan)


def _disklist_file(path: str, confs: list[amconf.AmandaConf]) -> list[amconf.DiskEntry]:
    """A disklist given alone: programs only where a known amanda.conf defines the dumptype."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ConfigError(f"--disklist {path}: {e.strerror}")
    conf = next((c for c in confs if c.dumptypes), amconf.AmandaConf())
    entries = amconf.parse_disklist(text, conf)
    for e in entries:
        if e.dumptype not in conf.dumptypes:
            e.program = ""  # Amanda's default DUMP would be a guess here
    return entries


def read_sources(req: Request, runner: Runner | None = None,
                 have: list[combined.Source] = ()) -> list[combined.Source]:
    """Each source the request names, read (`have`: sources already read, whose
    disklists name the DLEs in report mails)."""
    runner = runner or Runner()
    sources: list[combined.Source] = []
    confs: list[amconf.AmandaConf] = []
    for conf in req.servers:
        from .server import from_server
        cc = from_server(conf, runner)
        confs.append(cc.conf)
        sources.append(combined.from_config(cc, f"server {conf}"))
    for path in req.bundles:
        from ..bundles import open_any
        b = open_any(path, verify=req.verify, keep_in=req.keep_in, **req.keys)
        req.opened.append(b)
        for cc in from_bundle(b):
            confs.append(cc.conf)
            sources.append(combined.from_config(cc, f"bundle {Path(path).name} ({cc.name})"))
    disklist = _disklist_file(req.disklist, confs) if req.disklist else None
    if disklist:
        sources.append(combined.Source(f"disklist {req.disklist}", disklist=disklist))
    if req.reports:
        from .reports import parse_reports
        names = disklist or [e for s in list(have) + sources for e in s.disklist] or None
        dumps = parse_reports([Path(p) for p in req.reports], names)
        sources.append(combined.Source("reports " + ", ".join(req.reports), dumps))
    if req.scan:
        from .scan import scan
        sources.append(combined.from_scan(scan(list(req.scan), runner), list(req.scan)))
    return sources


def load(req: Request, runner: Runner | None = None) -> combined.Catalog:
    if req.empty:
        raise ConfigError("no catalog source: give --server CONF, --bundle PATH, "
                          "--reports FILE... or --scan DEVICE... (several may be combined)")
    cat = combined.build(read_sources(req, runner), req.vtapes, req.volumes)
    for e in cat.errors:
        log.warning("%s", e)
    return cat
