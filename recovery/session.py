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
from dataclasses import dataclass, field, replace
from pathlib import Path

from essentials.bundle import Bundle
from essentials.errors import AmdrError, CatalogError, CommandError, ConfigError
from essentials.layout import probes
from essentials.layout.schema import validate
from essentials.runner import Runner

from .bundles import open_any, opened_dir
from .catalog import combined, gather
from .catalog.amconf import DiskEntry
from .catalog.source import ConfigCatalog, from_bundle, pick_host
from .disks import activate, devnodes, guard, journal, merge, present
from .disks.mapping import match_disks
from .disks.plan import PlanError, contents, needed_disks, plan_disks
from .finalize.plan import boot_refusals
from .disks.stack import Passphrase
from .media.devices import from_devices
from .media.volumes import VtapeLibrary
from .restore.plan import plan_restores

log = logging.getLogger(__name__)

NETWORK_FILE = "network/network.yaml"
CAPS_FILE = "system/capabilities.yaml"


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
    # restore through this live Amanda server (restore/remote.py) instead of
    # reading the volumes: its catalog and amrecover
    remote: object = None

    @classmethod
    def load(cls, bundle_path, target, maps=None, amanda_host=None, vtapes=None,
             until=None, verify=True, keys: dict | None = None,
             luks_key_file: str | None = None, state_dir: str | None = None,
             catalog_sources=None, remote=None) -> "Session":
        """keys: gnupghome, passphrase_file, signers for a sealed bundle.
        catalog_sources: a gather.Request of where else the catalog is (the
        server's bundle, the live server, report mails, a scan): a client's
        bundle holds its layout, the server has its catalog."""
        keep = opened_dir(state_dir or default_state_dir(target))  # opened once per recovery
        b = open_any(bundle_path, verify=verify, keep_in=keep, **(keys or {}))
        layout = validate(b.load_yaml("layout.yaml"), f"{bundle_path}/layout.yaml")
        luks = {"*": check_key_file(luks_key_file)} if luks_key_file else {}
        try:
            own = from_bundle(b)
        except CatalogError:  # a client's bundle: the catalog is the server's
            own = []
        s = cls(b, layout, own, target, dict(maps or {}), amanda_host, vtapes, until,
                luks, state_dir)
        s.remote = remote
        s.bundle_name = Path(bundle_path).name
        s.bundle_arg = str(bundle_path)
        s.key_bundles = [b]  # and the catalog's bundles: their Amanda encryption keys
        s.own_catalog = bool(own)
        sources = [combined.from_config(cc, f"bundle {s.bundle_name} ({cc.name})")
                   for cc in own]
        req = catalog_sources
        if req is not None and not req.empty:
            req.keep_in = keep
            sources += gather.read_sources(req, Runner(), sources)
            s.key_bundles += req.opened
        if sources:
            s.cat = combined.build(sources, [vtapes] if vtapes else [],
                                   req.volumes if req else [])
            for e in s.cat.errors:
                log.warning("%s", e)
        else:  # diskinit needs none; restores say so when asked
            s.catalog_error = CatalogError(
                f"{s.bundle_name} holds no Amanda catalog (a client's bundle: the Amanda "
                f"server has it); give the server's bundle (--catalog-bundle "
                f"SERVER-....amdr.gpg), the live server (--server CONFIG), its report mails "
                f"(--reports FILE...) or the volumes (--scan DIR-OR-DEVICE...)")
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

    present_nodes = None  # path -> lsblk node of the disks here, from the last match

    def disk_plan(self, runner: Runner):
        m, nodes = self.match(runner)
        self.present_nodes = nodes
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
        # what would keep the restored system from booting, before any wipe
        problems = boot_refusals(self.layout, m.mapping, actions)
        if problems:
            raise PlanError("\n".join(problems))
        journal.attach(actions, Path(self.workdir) / "diskinit.journal")
        return actions

    # -- finalize ------------------------------------------------------------
    def new_paths(self) -> dict[str, str]:
        """Layout id of each disk and partition -> its path on the disks here."""
        return merge.partition_paths(needed_disks(self.layout), self.matched.mapping,
                                     contents(self.layout))

    def finalize_inputs(self) -> tuple[dict | None, list, bool]:
        """The bundle's network.yaml, recorded file capabilities and SELinux state."""
        net = self.bundle.load_yaml(NETWORK_FILE) if self.bundle.has(NETWORK_FILE) else None
        caps, selinux = [], False
        if self.bundle.has(CAPS_FILE):
            doc = self.bundle.load_yaml(CAPS_FILE) or {}
            caps = [c for c in doc.get("files") or [] if c.get("path") and c.get("caps")]
            selinux = bool((doc.get("selinux") or {}).get("enabled"))
        return net, caps, selinux

    def finalize_plan(self, runner: Runner, *, from_bundle: bool = False, nic_pins=None):
        """from_bundle: plan from the bundle's /etc and the identities diskinit
        will make (plan, and recover before any wipe); else from the restored
        system under the target and the devices here."""
        from .finalize import facts as ffacts
        from .finalize.plan import plan_finalize
        if self.matched is None:
            self.find_recreated(runner)
        paths = self.new_paths()
        net, caps, selinux = self.finalize_inputs()
        if from_bundle:
            f = ffacts.from_bundle(runner, self.bundle, self.layout, paths)
        else:
            f = ffacts.from_target(runner, self.target, self.layout, [c["path"] for c in caps])
        return plan_finalize(self.layout, f, paths, network=net, capabilities=caps,
                             selinux=selinux, nic_pins=nic_pins)

    # -- mount: the disks of an existing system, for repair ---------------------
    def find_recreated(self, runner: Runner):
        """(the match of the layout's disks to the disks here found by what is on
        them, present path -> blkid probe): never by size, a guess would mount
        or finalize another system."""
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
        return m, probes

    def mount_plan(self, runner: Runner):
        """Find the disks again (by what diskinit put on them), look at what
        is on them now, and plan assembling, opening, activating, mounting."""
        m, probes = self.find_recreated(runner)
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
    catalog_error = None  # why there is no catalog, raised when one is needed
    cat = None  # combined.Catalog of the bundle's own and the named sources
    own_catalog = False
    bundle_name = ""

    _remote_cat = None

    def remote_catalog(self):
        """(host name on the server, its DLEs, their dumps), read once."""
        if self._remote_cat is None:
            names = ([self.amanda_host] if self.amanda_host else []) \
                + self.client_hostnames() + [self.bundle.host, self.bundle.manifest.get("fqdn")]
            self._remote_cat = self.remote.catalog(names)
        return self._remote_cat

    def host(self) -> str:
        if self.remote is not None:
            return self.remote_catalog()[0]
        if self.catalog_error is not None:
            raise self.catalog_error
        hosts = {e.host for e in self.cat.disklist} | {d.host for d in self.cat.dumps}
        # the name the server's disklist uses, as the client saw it in its
        # requests (amanda/client.yaml), first: it joins a client's bundle to
        # the server's catalog even when it is not the machine's host name
        names = self.client_hostnames() + [self.bundle.host, self.bundle.manifest.get("fqdn")]
        # a catalog of one host is this host's only when it is the bundle's own
        return pick_host(hosts, names, self.amanda_host, sole_ok=self.own_catalog
                         and len(self.cat.sources) == len(self.catalogs))

    def client_hostnames(self) -> list[str]:
        from essentials.collectors.amanda import CLIENT_FILE
        if not self.bundle.has(CLIENT_FILE):
            return []
        doc = self.bundle.load_yaml(CLIENT_FILE) or {}
        out = []
        for c in doc.get("configs") or []:
            if c.get("hostname") and c["hostname"] not in out:
                out.append(c["hostname"])
        return out

    def library(self) -> VtapeLibrary:
        if self.remote is not None:
            return self.remote
        self.host()  # no catalog: say so, not "no vtape directory"
        roots = [self.vtapes] if self.vtapes else [r for r in self.cat.vtape_roots
                                                   if Path(r).is_dir()]
        if roots:
            return VtapeLibrary(roots[0])
        lib = from_devices(self.cat.devices)
        if lib is None:
            raise CatalogError("no vtape directory: the catalog names none that is here "
                               "(or its configuration does not use chg-disk); give "
                               "--vtapes DIR")
        return lib

    def disklist(self, host: str) -> list[DiskEntry]:
        """The host's DLEs: the disklists', then any a source saw only as images
        (a scan, report mails), with the program the image headers give."""
        out, seen = [], set()
        for e in self.cat.disklist:
            if e.host == host and (e.host, e.disk) not in seen:
                seen.add((e.host, e.disk))
                prog = self.cat.program(e.host, e.disk) or e.program
                out.append(replace(e, program=prog))
        for d in self.cat.dumps:
            if d.host == host and (d.host, d.disk) not in seen:
                seen.add((d.host, d.disk))
                out.append(DiskEntry(d.host, d.disk, d.disk, "",
                                     self.cat.program(d.host, d.disk) or ""))
        return out

    def restore_plan(self, available=None):
        if self.remote is not None:
            host, entries, dumps = self.remote_catalog()
            return plan_restores(dumps, entries, self.layout, self.target, host, None, None,
                                 self.until)
        host = self.host()
        return plan_restores(self.cat.dumps, self.disklist(host), self.layout, self.target,
                             host, self.cat.tapelist, available, self.until)


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
    """blkid's low-level probe of a device: TYPE, UUID, PTUUID... ({} for nothing).

    A probe that failed (the device could not be opened, two signatures on it)
    is an error, not "nothing there": mount would then take the disk for
    another one, or miss what is on it."""
    res = runner.run(["blkid", "-p", "-o", "export", path], check=False)
    why = probes.blkid_failure(res.returncode, res.text,
                               res.stderr.decode("utf-8", "replace"), os.path.exists(path))
    if why and not runner.dry_run:
        raise AmdrError(f"cannot tell what is on {path}: blkid -p {why}; nothing was "
                        f"mounted: look at the device (`wipefs {path}` lists its "
                        f"signatures) and run mount again")
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
