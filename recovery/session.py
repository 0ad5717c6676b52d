"""One recovery: a bundle, a target directory, and the plans made from them.

Loading (bundle, layout, catalog) and planning are kept apart from applying,
so `plan` can show everything before anything is touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from essentials.bundle import Bundle
from essentials.errors import CatalogError, CommandError
from essentials.layout.schema import validate
from essentials.runner import Runner

from .bundles import open_any
from .catalog.source import ConfigCatalog, from_bundle, pick_host
from .disks import guard
from .disks.plan import plan_disks
from .restore.media import VtapeLibrary
from .restore.plan import plan_restores

log = logging.getLogger(__name__)


@dataclass
class Session:
    bundle: Bundle
    layout: dict
    catalogs: list[ConfigCatalog]
    target: str
    maps: dict = field(default_factory=dict)
    amanda_host: str | None = None
    vtapes: str | None = None
    until: str | None = None

    @classmethod
    def load(cls, bundle_path, target, maps=None, amanda_host=None, vtapes=None,
             until=None, verify=True, keys: dict | None = None) -> "Session":
        """keys: gnupghome, passphrase_file, signers for a sealed bundle."""
        b = open_any(bundle_path, verify=verify, **(keys or {}))
        layout = validate(b.load_yaml("layout.yaml"), f"{bundle_path}/layout.yaml")
        return cls(b, layout, from_bundle(b), target, dict(maps or {}), amanda_host,
                   vtapes, until)

    # -- disks ---------------------------------------------------------------
    def mapping(self) -> dict[str, str]:
        """Original disk -> new disk: explicit --map, else the same name."""
        out = {}
        for d in self.layout["disks"]:
            out[d["path"]] = self.maps.get(d["path"], d["path"])
        return out

    def disk_plan(self, runner: Runner):
        mapping = self.mapping()
        sizes = {}
        for new in mapping.values():
            try:
                sizes[new] = guard.disk_size(runner, new)
            except CommandError:
                sizes[new] = None  # reported by the guard: does not exist
        return plan_disks(self.layout, mapping, sizes, self.target)

    # -- restores ------------------------------------------------------------
    def catalog(self) -> ConfigCatalog:
        host = self.host()
        having = [c for c in self.catalogs if host in c.hosts()]
        if len(having) > 1:
            log.warning("host %s is in several Amanda configurations; using %s",
                        host, having[0].name)
        return having[0]

    def host(self) -> str:
        return pick_host(self.catalogs, self.bundle.host, self.amanda_host)

    def library(self) -> VtapeLibrary:
        root = self.vtapes or self.catalog().vtape_root()
        if not root:
            raise CatalogError("no vtape directory: the Amanda configuration does not use "
                               "chg-disk; give --vtapes DIR")
        return VtapeLibrary(root)

    def restore_plan(self, available=None):
        cat = self.catalog()
        return plan_restores(cat.dumps, cat.disklist, self.layout, self.target, self.host(),
                             cat.tapelist, available, self.until)
