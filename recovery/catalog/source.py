"""Load the Amanda catalog a bundle carries (no server needed)."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field

from essentials.bundle import Bundle
from essentials.errors import CatalogError

from . import amconf, findout, tapelist, tracelog
from .model import Dump

log = logging.getLogger(__name__)


@dataclass
class ConfigCatalog:
    name: str
    conf: amconf.AmandaConf
    disklist: list[amconf.DiskEntry]
    dumps: list[Dump]
    tapelist: dict = field(default_factory=dict)

    def hosts(self) -> set[str]:
        return {e.host for e in self.disklist} | {d.host for d in self.dumps}

    def vtape_root(self) -> str | None:
        ch = self.conf.changer or ""
        for prefix in ("chg-disk:", "file:"):
            if ch.startswith(prefix):
                return ch[len(prefix):]
        return None


def build_config(name: str, conf_text: str | None, disklist_text: str | None,
                 tapelist_text: str | None, logs, find_text: str | None = None,
                 where: str = "") -> ConfigCatalog:
    """One configuration's catalog from its files, wherever they were read.

    logs: (source, text) per trace log, oldest first.  The trace logs are
    the catalog; `amadmin find` output only stands in when there are none.
    The configuration's name is the storage of trace lines that name none.
    """
    conf = amconf.parse_conf(conf_text) if conf_text is not None else amconf.AmandaConf()
    dl = amconf.parse_disklist(disklist_text, conf) if disklist_text is not None else []
    dumps = []
    for source, text in logs:
        dumps += tracelog.parse_lines(text.splitlines(), source, config=name)
    if not dumps and find_text is not None:
        log.warning("%s: no trace logs%s, using amadmin find output", name,
                    f" in {where}" if where else "")
        dumps = findout.parse(find_text)
    tl = tapelist.parse(tapelist_text) if tapelist_text is not None else {}
    return ConfigCatalog(name, conf, dl, dumps, tl)


def server_configs(bundle: Bundle) -> list[str]:
    """The Amanda server configurations a bundle holds: amanda/CONF/... each
    (amanda/client.yaml is the client side, not a configuration)."""
    return sorted({rel.split("/")[1] for rel in bundle.listdir("amanda")
                   if rel.count("/") >= 2})


def from_bundle(bundle: Bundle) -> list[ConfigCatalog]:
    names = server_configs(bundle)
    if not names:
        raise CatalogError(f"{bundle.root}: the bundle holds no Amanda catalog (was it "
                           f"collected on the Amanda server?)")

    def text(rel):
        return bundle.read_text(rel) if bundle.has(rel) else None

    out = []
    for name in names:
        base = f"amanda/{name}"
        logs = [(rel, bundle.read_text(rel))
                for rel in tracelog.in_order(bundle.listdir(f"{base}/logs"))]
        out.append(build_config(name, text(f"{base}/amanda.conf"), text(f"{base}/disklist"),
                                text(f"{base}/tapelist"), logs, text(f"{base}/find.txt"),
                                "the bundle"))
    return out


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


LOOPBACK = ("localhost", "localhost.localdomain", "127.0.0.1", "::1")


def pick_host(hosts: set[str], names: list[str], wanted: str | None,
              sole_ok: bool = True) -> str:
    """The Amanda host name this bundle's machine is backed up as.

    names: what the bundle calls its machine (the name its amandad saw in the
    server's requests, host name, FQDN).  An exact name wins; else the one
    host whose short name is the machine's (joining a client's bundle with a
    server's catalog, the domains may differ; never for IP addresses).
    sole_ok: the bundle's own catalog, whose only host is a loopback name
    (a server backing itself up as localhost).  No DNS is asked: on a live
    system it may be unreachable, and a CNAME would name another machine."""
    if wanted:
        if wanted not in hosts:
            raise CatalogError(f"no Amanda host '{wanted}' in the catalog (hosts: "
                               f"{', '.join(sorted(hosts)) or 'none'})")
        return wanted
    names = [n for n in names if n]
    for cand in names:
        if cand in hosts:
            return cand
    shorts = {n.split(".")[0] for n in names if not _is_ip(n)}
    same = sorted(h for h in hosts if not _is_ip(h) and h.split(".")[0] in shorts)
    if len(same) == 1:
        log.info("Amanda host %s taken for %s (same short name)", same[0], names[0])
        return same[0]
    if sole_ok and len(hosts) == 1 and next(iter(hosts)) in LOOPBACK:
        return next(iter(hosts))
    raise CatalogError(f"cannot tell which Amanda host is {names[0] if names else '?'}: the "
                       f"catalog has {', '.join(sorted(hosts)) or 'no host'}; give "
                       f"--amanda-host NAME (the host as the server's disklist names it)")
