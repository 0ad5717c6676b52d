"""A site's bundles turned into the site planner's input.

The catalog is the Amanda server's (its bundle holds the trace logs): the
restore chains of every host come from it, by the same code `catalog` and
`restore` use.  Each host's own bundle says how the server's disklist names
it (amanda/client.yaml), and its priority and role.

Priority and role: essentials does not carry them yet.  They are read, in
this order, from the bundle's manifest (`priority:`, `role:` at its top
level, or under `site:`), then from the essentials.yaml inside its etc.tar
(etc/amanda-dr/essentials.yaml, top level `priority:` and `role:`), then
from --priority HOST=N given on the command line, which wins over both.
"""

from __future__ import annotations

import dataclasses

import io
import logging
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from essentials.bundle import Bundle
from essentials.errors import AmdrError, BundleError, CatalogError, ConfigError
from essentials import sealed

from ..catalog import combined
from ..catalog.chains import Chain
from ..catalog.source import LOOPBACK, from_bundle, pick_host, server_configs
from .schedule import DLEIn, HostIn, ImageIn, PartIn

log = logging.getLogger(__name__)

ESSENTIALS_IN_ETC = "etc/amanda-dr/essentials.yaml"


# -- chains to the planner's input --------------------------------------------------

def hosts_from_chains(chains: list[Chain], info: dict[str, dict] | None = None,
                      servers: set[str] = frozenset()) -> tuple[list[HostIn], int]:
    """The planner's hosts from restore chains: (hosts, parts whose size was
    estimated).  info: host -> {"priority": N, "role": "..."}.

    A part the catalog gives no size (amadmin find output, report mails)
    is taken as its DLE's mean known part size at that level, else at any
    level, else the site's mean: the plan says how many were.
    """
    info = info or {}
    known: list[int] = []
    by_dle: dict[tuple, list[int]] = {}
    by_level: dict[tuple, list[int]] = {}
    for c in chains:
        for d in c.dumps:
            for p in d.parts:
                if p.size is not None:
                    known.append(p.size)
                    by_dle.setdefault((c.host, c.disk), []).append(p.size)
                    by_level.setdefault((c.host, c.disk, d.level), []).append(p.size)
    site_mean = sum(known) // len(known) if known else 0

    def guess(host, disk, level):
        for sizes in (by_level.get((host, disk, level)), by_dle.get((host, disk))):
            if sizes:
                return sum(sizes) // len(sizes)
        return site_mean

    hosts: dict[str, HostIn] = {}
    estimated = 0
    for c in chains:
        h = hosts.get(c.host)
        if h is None:
            meta = info.get(c.host) or {}
            h = hosts[c.host] = HostIn(c.host, [], meta.get("priority"), meta.get("role"),
                                       c.host in servers)
        images = []
        for d in c.dumps:
            parts = []
            for p in sorted(d.parts, key=lambda p: p.partnum):
                if p.size is None:
                    estimated += 1
                    parts.append(PartIn(p.label, p.filenum, guess(c.host, c.disk, d.level),
                                        True))
                else:
                    parts.append(PartIn(p.label, p.filenum, p.size))
            images.append(ImageIn(d.date, d.level, parts))
        h.dles.append(DLEIn(c.disk, images))
    for name in servers:  # a server whose own DLEs are not in its catalog: rebuilt only
        if name not in hosts:
            meta = info.get(name) or {}
            hosts[name] = HostIn(name, [], meta.get("priority"), meta.get("role"), True)
    return list(hosts.values()), estimated


def volume_files(dumps, labels) -> dict[str, dict[int, int | None]]:
    """label -> {file number: bytes or None} of every image the catalog has on
    those volumes: what a pass moves over between the files it reads."""
    out: dict[str, dict[int, int | None]] = {label: {} for label in labels}
    for d in dumps:
        for p in d.parts:
            f = out.get(p.label)
            if f is not None and f.get(p.filenum) is None:
                f[p.filenum] = p.size
    return out


# -- priority and role ---------------------------------------------------------------

def _priority(value, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: priority: {value!r}: expected a whole number, 1 "
                          f"first (0 or more)")
    return value


def site_facts(b: Bundle, where: str) -> dict:
    """{"priority": N or None, "role": str or None} as the bundle carries them."""
    m = b.manifest
    for doc, what in ((m.get("site"), "manifest site:"), (m, "manifest")):
        if isinstance(doc, dict) and ("priority" in doc or "role" in doc):
            return {"priority": _priority(doc.get("priority"), f"{where} ({what})"),
                    "role": _role(doc.get("role"))}
    if b.has("etc.tar"):
        try:
            with tarfile.open(b.path("etc.tar")) as t:
                member = t.extractfile(ESSENTIALS_IN_ETC)
                doc = yaml.safe_load(io.TextIOWrapper(member, "utf-8")) if member else None
        except (KeyError, OSError, tarfile.TarError, yaml.YAMLError):
            doc = None
        if isinstance(doc, dict) and ("priority" in doc or "role" in doc):
            return {"priority": _priority(doc.get("priority"),
                                          f"{where} ({ESSENTIALS_IN_ETC})"),
                    "role": _role(doc.get("role"))}
    return {"priority": None, "role": None}


def _role(value) -> str | None:
    return None if value is None else str(value)


def priorities(values) -> dict[str, int]:
    """--priority HOST=N (repeatable)."""
    out = {}
    for v in values or []:
        host, sep, n = v.partition("=")
        if not sep or not host or not n.strip().isdigit():
            raise ConfigError(f"--priority {v}: expected HOST=N, N a whole number (1 first), "
                              f"e.g. --priority mail1=1")
        out[host] = int(n)
    return out


# -- the bundles of a site -------------------------------------------------------------

@dataclass
class Site:
    hosts: list[HostIn]
    files: dict = field(default_factory=dict)  # volume_files() of the volumes read
    notes: list[str] = field(default_factory=list)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (host, disk, why)
    bundles: dict[str, str] = field(default_factory=dict)  # Amanda host -> its bundle


def bundle_paths(store: Path) -> list[Path]:
    """The newest bundle of each host in the store: sealed files (HOST-TIME.amdr.gpg)
    and bundle directories (with a manifest.yaml), by their host and time."""
    if not store.is_dir():
        raise ConfigError(f"--store {store}: no such directory (the bundles of the site: "
                          f"`amdr-recover bundles` fills /run/amanda-dr/bundles)")
    best: dict[str, tuple] = {}
    for p in sorted(store.iterdir()):
        key = None
        parsed = sealed.parse_name(p.name) if p.is_file() else None
        if parsed:
            key = (parsed[0], parsed[1].strftime("%Y%m%dT%H%M%SZ"))
        elif p.is_dir() and (p / "manifest.yaml").is_file():
            try:
                m = yaml.safe_load((p / "manifest.yaml").read_text()) or {}
            except (OSError, yaml.YAMLError):
                m = {}
            if isinstance(m, dict) and m.get("host"):
                key = (str(m["host"]), str(m.get("created") or "").replace("-", "")
                       .replace(":", ""))
        if key and (key[0] not in best or key[1] > best[key[0]][0]):
            best[key[0]] = (key[1], p)
    return [best[h][1] for h in sorted(best)]


def _client_names(b: Bundle) -> list[str]:
    from essentials.collectors.amanda import CLIENT_FILE
    names = []
    if b.has(CLIENT_FILE):
        doc = b.load_yaml(CLIENT_FILE) or {}
        for c in doc.get("configs") or []:
            if c.get("hostname") and c["hostname"] not in names:
                names.append(c["hostname"])
    return names + [n for n in (b.host, b.manifest.get("fqdn")) if n and n not in names]


def load_site(store: Path, open_bundle, *, until: str | None = None,
              overrides: dict[str, int] | None = None) -> Site:
    """The site from its bundles.  open_bundle(path) -> Bundle (the key options
    bound by the caller).  The bundles holding an Amanda catalog are the
    servers'; every other is a client, joined to the catalog by its names."""
    paths = bundle_paths(store)
    if not paths:
        raise ConfigError(f"--store {store}: no bundle in it (HOST-...amdr.gpg files or "
                          f"bundle directories)")
    opened: list[tuple[Path, Bundle]] = []
    notes: list[str] = []
    for p in paths:
        try:
            opened.append((p, open_bundle(p)))
        except (BundleError, AmdrError) as e:
            notes.append(f"{p.name}: not used: {e}")
    servers = [(p, b) for p, b in opened if server_configs(b)]
    if not servers:
        raise CatalogError(f"no bundle in {store} holds an Amanda catalog: put the Amanda "
                           f"server's bundle there (its amdr-essentials collects the "
                           f"catalog) and run site-plan again")
    sources = []
    for p, b in servers:
        for cc in from_bundle(b):
            sources.append(combined.from_config(cc, f"bundle {p.name} ({cc.name})"))
    # no vtape directory is looked at: the plan is made before any volume is at hand
    cat = combined.build(sources, libraries=lambda root: {})
    # (a vtape directory the configuration names may exist where site-plan runs:
    # that says nothing of what will be at hand; every volume counts)
    cat = dataclasses.replace(cat, available=None)
    notes += [f"catalog: {e}" for e in cat.errors]
    hosts = {e.host for e in cat.disklist} | {d.host for d in cat.dumps}
    site = Site([], notes=notes)
    info: dict[str, dict] = {}
    server_names: set[str] = set()
    for p, b in opened:
        is_server = any(b is sb for _, sb in servers)
        try:
            name = pick_host(hosts, _client_names(b), None, sole_ok=is_server)
        except CatalogError:
            loop = sorted(hosts & set(LOOPBACK))
            if is_server and loop:  # the server backs itself up as localhost
                name = loop[0]
            elif is_server:  # the server does not back itself up: rebuilt from its bundle
                name = b.host
                notes.append(f"{b.host}: the Amanda server's own DLEs are not in its "
                             f"catalog; it is rebuilt from its bundle alone")
            else:
                notes.append(f"{p.name}: host {b.host} is not in the Amanda catalog (not "
                             f"backed up by this server?): not planned")
                continue
        if name in site.bundles:
            notes.append(f"{p.name}: Amanda host {name} is also {site.bundles[name]}'s: "
                         f"not planned twice")
            continue
        site.bundles[name] = p.name
        info[name] = site_facts(b, p.name)
        if is_server:
            server_names.add(name)
    for host, n in (overrides or {}).items():
        if host not in site.bundles:
            raise ConfigError(f"--priority {host}={n}: no host {host} in the site (hosts: "
                              f"{', '.join(sorted(site.bundles))})")
        info[host]["priority"] = n
    wanted = set(site.bundles)
    for h in sorted(hosts - wanted):
        if h not in LOOPBACK:
            notes.append(f"{h}: in the catalog but no bundle of it in the store: not planned")
    chains, errors = cat.chains(hosts=wanted, until=until)
    site.errors = errors
    site.hosts, est = hosts_from_chains(chains, info, server_names)
    site.files = volume_files(cat.dumps, {p.label for h in site.hosts for d in h.dles
                                          for i in d.images for p in i.parts})
    for name in wanted:  # a client whose DLEs all failed still counts as a host
        if name not in {h.name for h in site.hosts}:
            site.hosts.append(HostIn(name, [], info[name]["priority"], info[name]["role"],
                                     name in server_names))
    return site


# -- the throughput the last recoveries had -------------------------------------------

def measured_throughput(paths) -> tuple[float, str]:
    """Bytes per second per stream from restore reports (restore-report.json,
    or a drill's report: {"restored": [{"bytes", "seconds"}...]}), with what
    it was measured on, said for people."""
    import json
    nbytes, secs, dles = 0, 0.0, 0
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"--measured {path}: cannot read it as a restore report "
                              f"({e}); give the restore-report.json of a recovery") from None
        rows = doc.get("restored") if isinstance(doc, dict) else None
        if not isinstance(rows, list):
            raise ConfigError(f"--measured {path}: not a restore report (no \"restored\" "
                              f"list); give the restore-report.json of a recovery")
        for r in rows:
            b, s = (r or {}).get("bytes") or 0, (r or {}).get("seconds") or 0
            if b > 0 and s > 0:
                nbytes, secs, dles = nbytes + b, secs + s, dles + 1
    if not dles:
        raise ConfigError(f"--measured {', '.join(map(str, paths))}: no DLE restored with "
                          f"bytes and seconds in them; give --throughput MB/s instead")
    return nbytes / secs, f"measured on {dles} DLE(s) in {len(paths)} report(s)"
