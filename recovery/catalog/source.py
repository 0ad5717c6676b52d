"""Load the Amanda catalog a bundle carries (no server needed)."""

from __future__ import annotations

import logging
import socket
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


def from_bundle(bundle: Bundle) -> list[ConfigCatalog]:
    # amanda/CONF/... per server config; amanda/client.yaml is the client side
    names = sorted({rel.split("/")[1] for rel in bundle.listdir("amanda") if rel.count("/") >= 2})
    if not names:
        raise CatalogError(f"{bundle.root}: the bundle holds no Amanda catalog (was it "
                           f"collected on the Amanda server?)")
    out = []
    for name in names:
        base = f"amanda/{name}"
        conf = amconf.parse_conf(bundle.read_text(f"{base}/amanda.conf")) \
            if bundle.has(f"{base}/amanda.conf") else amconf.AmandaConf()
        dl = amconf.parse_disklist(bundle.read_text(f"{base}/disklist"), conf) \
            if bundle.has(f"{base}/disklist") else []
        dumps = []
        for rel in bundle.listdir(f"{base}/logs"):
            dumps += tracelog.parse_lines(bundle.read_text(rel).splitlines(), rel)
        if not dumps and bundle.has(f"{base}/find.txt"):
            log.warning("%s: no trace logs in the bundle, using amadmin find output", name)
            dumps = findout.parse(bundle.read_text(f"{base}/find.txt"))
        tl = tapelist.parse(bundle.read_text(f"{base}/tapelist")) \
            if bundle.has(f"{base}/tapelist") else {}
        out.append(ConfigCatalog(name, conf, dl, dumps, tl))
    return out


def pick_host(catalogs: list[ConfigCatalog], bundle_host: str, wanted: str | None) -> str:
    """The Amanda host name this bundle's machine is backed up as."""
    hosts = set().union(*(c.hosts() for c in catalogs))
    if wanted:
        if wanted not in hosts:
            raise CatalogError(f"no Amanda host '{wanted}' in the catalog (hosts: "
                               f"{', '.join(sorted(hosts))})")
        return wanted
    if len(hosts) == 1:
        return next(iter(hosts))
    short = bundle_host.split(".")[0]
    for cand in (bundle_host, socket.getfqdn(bundle_host), short):
        if cand in hosts:
            return cand
    raise CatalogError(f"cannot tell which Amanda host is {bundle_host}: the catalog has "
                       f"{', '.join(sorted(hosts))}; give --amanda-host")
