"""The bundle: one directory (later one encrypted tar) per host per run.

manifest.yaml comes first and holds the format version, the host, the time,
the agent version, each collector's status and the sha256 of every member.
Readers verify every checksum and refuse members the manifest does not list,
so a truncated copy or a tampered file is caught before recovery trusts it.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml

from . import __version__
from .errors import BundleError

FORMAT_VERSION = 1
MANIFEST = "manifest.yaml"
# libyaml's loader when PyYAML has it: same safe subset, a tenth of the time
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_text(text: str):
    return yaml.load(text, Loader=_SafeLoader)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _members(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, fn), root)
            if rel != MANIFEST:
                out.append(rel)
    return out


def write_manifest(root: Path, collectors: dict, extra: dict | None = None) -> dict:
    """Checksum every file under root and write manifest.yaml (mode 0600)."""
    root = Path(root)
    now = datetime.now(timezone.utc)
    manifest = {
        "format": FORMAT_VERSION,
        "host": socket.gethostname(),
        "fqdn": socket.getfqdn(),
        "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "agent_version": __version__,
        "collectors": collectors,
        "files": {rel: sha256_file(root / rel) for rel in _members(root)},
    }
    if extra:
        manifest.update(extra)
    path = root / MANIFEST
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(manifest, f, sort_keys=False)
    return manifest


@dataclass
class Bundle:
    root: Path
    manifest: dict
    source: Path | None = None  # the sealed .amdr.gpg it was decrypted from, if any

    def path(self, rel: str) -> Path:
        if rel not in self.manifest["files"]:
            raise BundleError(f"{self.root}: the bundle has no {rel}")
        return self.root / rel

    def has(self, rel: str) -> bool:
        return rel in self.manifest["files"]

    def read_text(self, rel: str) -> str:
        return self.path(rel).read_text(encoding="utf-8", errors="replace")

    def load_yaml(self, rel: str):
        return load_yaml_text(self.read_text(rel))

    def listdir(self, prefix: str) -> list[str]:
        prefix = prefix.rstrip("/") + "/"
        return sorted(r for r in self.manifest["files"] if r.startswith(prefix))

    @property
    def host(self) -> str:
        return self.manifest["host"]


def open_bundle(root, verify: bool = True) -> Bundle:
    """Open a bundle directory; with verify, refuse any checksum mismatch."""
    root = Path(root)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{root}: not a bundle (no {MANIFEST}); give the directory "
                          f"amdr-essentials collect wrote")
    try:
        manifest = load_yaml_text(mpath.read_text())
    except yaml.YAMLError as e:
        raise BundleError(f"{mpath}: unreadable manifest: {e}") from e
    if not isinstance(manifest, dict) or "files" not in manifest:
        raise BundleError(f"{mpath}: manifest has no file list; the bundle is damaged")
    fmt = manifest.get("format")
    if fmt != FORMAT_VERSION:
        raise BundleError(f"{mpath}: bundle format {fmt} is not supported "
                          f"(this amanda-dr reads format {FORMAT_VERSION})")
    if verify:
        problems = []
        for rel, digest in manifest["files"].items():
            p = root / rel
            if not p.is_file():
                problems.append(f"missing: {rel}")
            elif sha256_file(p) != digest:
                problems.append(f"checksum mismatch: {rel}")
        extra = set(_members(root)) - set(manifest["files"])
        problems += [f"not in the manifest: {rel}" for rel in sorted(extra)]
        if problems:
            raise BundleError(f"{root}: the bundle does not verify, refusing to use it:\n  "
                              + "\n  ".join(problems[:20]))
    return Bundle(root, manifest)
