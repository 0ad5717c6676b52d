"""One recovery: a bundle, a target directory, and the plans made from them.

Loading (bundle, layout, catalog) and planning are kept apart from applying,
so `plan` can show everything before anything is touched.
"""

from __future__ import annotations

import getpass
import logging
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from essentials.bundle import Bundle
from essentials.errors import AmdrError, CatalogError, CommandError, ConfigError
from essentials.layout.schema import validate
from essentials.runner import Runner

from .bundles import open_any
from .catalog.source import ConfigCatalog, from_bundle, pick_host
from .disks import activate, devnodes, guard, journal, merge, present
from .disks.mapping import match_disks
from .disks.plan import contents, needed_disks, plan_disks
from .disks.stack import Passphrase
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
    # LUKS key files: container id, mapping name or "*" (all) -> file
    luks_keys: dict = field(default_factory=dict)
    state_dir: str | None = None  # default: TARGET.amdr, beside the target

    @classmethod
    def load(cls, bundle_path, target, maps=None, amanda_host=None, vtapes=None,
             until=None, verify=True, keys: dict | None = None,
             luks_key_file: str | None = None, state_dir: str | None = None) -> "Session":
        """keys: gnupghome, passphrase_file, signers for a sealed bundle."""
        b = open_any(bundle_path, verify=verify, **(keys or {}))
        layout = validate(b.load_yaml("layout.yaml"), f"{bundle_path}/layout.yaml")
        luks = {"*": check_key_file(luks_key_file)} if luks_key_file else {}
        try:
            catalogs, missing = from_bundle(b), None
        except CatalogError as e:  # diskinit needs none; restores say so when asked
            catalogs, missing = [], e
        s = cls(b, layout, catalogs, target, dict(maps or {}), amanda_host, vtapes, until,
                luks, state_dir)
        s.catalog_error = missing
        return s

    # -- disks ---------------------------------------------------------------
    matched = None  # the last match of original to present disks (a mapping.Match)

    @property
    def workdir(self) -> str:
        """Scratch mounts, the diskinit journal and what is active: beside the
        target, because the target's root filesystem is mounted over it."""
        return self.state_dir or default_state_dir(self.target)

    @property
    def active_file(self) -> Path:
        return activate.state_path(self.workdir)

    def bundle_file(self, rel: str) -> str:
        return str(self.bundle.path(rel))

    def match(self, runner: Runner):
        """(the match of original to present disks, present path -> lsblk node)."""
        disks, refused = present.collect(runner)
        maps = {old: os.path.realpath(new) for old, new in self.maps.items()}
        m = match_disks(needed_disks(self.layout), disks, maps, refused)
        if m.problems:
            raise ConfigError("\n".join(m.problems))
        for old, new in m.mapping.items():
            log.info("disk %s -> %s (%s)", old, new, m.reasons.get(old))
        self.matched = m
        return m, {d["path"]: d for d in disks}

    def disk_plan(self, runner: Runner):
        m, nodes = self.match(runner)
        sizes = {}
        for new in m.mapping.values():
            if new in nodes:
                continue
            try:
                sizes[new] = guard.disk_size(runner, new)
            except CommandError:
                sizes[new] = None  # reported by the guard: does not exist
        actions = plan_disks(self.layout, m.mapping, sizes, self.target, present=nodes,
                             files=self.bundle_file, read=self.bundle.read_text,
                             luks_keys=self.luks_keys,
                             passphrase=Passphrase(ask_luks_passphrase), workdir=self.workdir,
                             reasons=m.reasons, unmatched=m.unmatched)
        journal.attach(actions, Path(self.workdir) / "diskinit.journal")
        return actions

    # -- mount: the disks of an existing system, for repair ---------------------
    def mount_plan(self, runner: Runner):
        """Find the disks again (by what diskinit put on them), look at what
        is on them now, and plan assembling, opening, activating, mounting."""
        disks, _ = present.collect(runner)
        boot = guard.system_disks(runner)
        probes = {d["path"]: probe(runner, d["path"]) for d in disks
                  if os.path.realpath(d["path"]) not in boot}
        # their partitions too: a disk merged onto another is found by what is in them
        probes.update({c["path"]: probe(runner, c["path"]) for d in disks
                       if d["path"] in probes for c in d.get("children") or []
                       if c.get("type") == "part"})
        maps = {old: os.path.realpath(new) for old, new in self.maps.items()}
        m = activate.match_present(self.layout, disks, probes, maps, boot)
        if m.problems:
            raise ConfigError("\n".join(m.problems))
        self.matched = m
        probed = {}
        paths = merge.partition_paths(needed_disks(self.layout), m.mapping,
                                      contents(self.layout))
        for d in needed_disks(self.layout):
            new = m.mapping.get(d["path"])
            if new is None:
                continue
            probed[new] = probes.get(new) or probe(runner, new)
            parts = [paths[i] for i in [d["id"]] + [p["id"] for p in (d.get("ptable") or {})
                                                      .get("partitions") or []]
                     if paths.get(i, new) != new]
            if parts and not all(devnodes.ensure_node(p) for p in parts):
                # the kernel has not read this disk's table (a loop device
                # attached without -P): ask it to; nothing on the disk changes
                runner.run(["partx", "-a", new], check=False)
                devnodes.wait_for(parts, timeout=5)
            for part in parts:  # probed above when lsblk listed it
                probed[part] = probes.get(part) or probe(runner, part)
        return activate.plan_mount(self.layout, m.mapping, self.target, probed,
                                   luks_keys=self.luks_keys,
                                   passphrase=Passphrase(ask_open_passphrase),
                                   unmatched=m.unmatched)

    # -- restores ------------------------------------------------------------
    catalog_error = None  # why the bundle has no catalog, raised when one is needed

    def catalog(self) -> ConfigCatalog:
        host = self.host()
        having = [c for c in self.catalogs if host in c.hosts()]
        if len(having) > 1:
            log.warning("host %s is in several Amanda configurations; using %s",
                        host, having[0].name)
        return having[0]

    def host(self) -> str:
        if self.catalog_error is not None:
            raise self.catalog_error
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


def default_state_dir(target: str) -> str:
    return f"{target.rstrip('/')}.amdr"


def check_key_file(path: str) -> str:
    """The LUKS key file, as cryptsetup --key-file reads it: every byte of it
    is the key (a trailing newline too).  Only its path is ever shown."""
    full = os.path.abspath(path)
    try:
        st = os.stat(full)
        with open(full, "rb") as f:
            empty = not f.read(1)
    except OSError as e:
        raise ConfigError(f"--luks-key-file {path}: cannot read it: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode) or empty:
        raise ConfigError(f"--luks-key-file {path}: not a file with a key in it")
    if st.st_mode & 0o077:
        print(f"warning: {full} can be read by others (mode {st.st_mode & 0o777:o})",
              file=sys.stderr)
    return full


def probe(runner: Runner, path: str) -> dict:
    """blkid's low-level probe of a device: TYPE, UUID, PTUUID... ({} for nothing)."""
    res = runner.run(["blkid", "-p", "-o", "export", path], check=False)
    out = {}
    for line in res.text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def ask_open_passphrase() -> str:
    """The passphrase of existing LUKS containers, asked once when one must be opened."""
    if not sys.stdin.isatty():
        raise AmdrError("a LUKS container must be opened and no key file was given: run on "
                        "a terminal to type its passphrase, or give --luks-key-file")
    return getpass.getpass("Passphrase of the LUKS containers: ")


def ask_luks_passphrase() -> str:
    """The passphrase for the new LUKS containers, typed twice on the terminal."""
    if not sys.stdin.isatty():
        raise AmdrError("the layout has LUKS containers and no key file was given: run on a "
                        "terminal to type a passphrase, or give a key file")
    while True:
        first = getpass.getpass("Passphrase for the new LUKS containers: ")
        if not first:
            print("an empty passphrase is not accepted", file=sys.stderr)
            continue
        if getpass.getpass("The same passphrase again: ") == first:
            return first
        print("the two passphrases differ; again", file=sys.stderr)
