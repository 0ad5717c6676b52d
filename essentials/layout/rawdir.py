"""layout/raw/: the tool outputs as captured, and the index that names them.

The collector writes each output to a file of its own and lists it in
index.yaml (kind -> file, or kind -> {device or VG: file}); facts.yaml holds
the few facts that are no tool's output (firmware, warnings).  load() turns
the directory back into the dict normalise() takes, so a newer normaliser
can re-derive layout.yaml from an old bundle, and the unit tests read the
fixtures exactly as recovery would read a bundle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

INDEX = "index.yaml"
FACTS = "facts.yaml"
# kinds whose files are only referred to (restored by their own tools), never parsed
REFERENCED = {"vgcfgbackup", "luks_header"}


def safe_name(path: str) -> str:
    """/dev/mapper/vg-root -> dev_mapper_vg-root (as the first collector named files)."""
    return path.strip("/").replace("/", "_")


class RawWriter:
    """Writes raw files (mode 0600: a LUKS header or crypttab is sensitive)."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.index: dict = {}
        self.facts: dict = {}

    def path(self, name: str) -> Path:
        return self.dir / name

    def _write(self, name: str, data: str | bytes):
        p = self.dir / name
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)

    def put(self, kind: str, name: str, data: str | bytes, key: str | None = None):
        """Write one file; key: the device (or VG) it describes, None for singletons."""
        self._write(name, data)
        self.record(kind, name, key)

    def record(self, kind: str, name: str, key: str | None = None):
        """List a file some tool wrote itself (vgcfgbackup, luksHeaderBackup)."""
        if key is None:
            self.index[kind] = name
        else:
            self.index.setdefault(kind, {})[key] = name

    def finish(self):
        self._write(FACTS, yaml.safe_dump(self.facts, sort_keys=False))
        self._write(INDEX, yaml.safe_dump(self.index, sort_keys=True))


def _read(directory: Path, kind: str, name: str):
    if kind in REFERENCED:
        return name
    text = (directory / name).read_text(encoding="utf-8", errors="replace")
    if name.endswith(".json"):
        return json.loads(text)
    if name.endswith(".yaml"):
        return yaml.safe_load(text)
    return text


def load(directory) -> dict:
    """The raw dict of a layout/raw/ directory (its index.yaml says what is where)."""
    directory = Path(directory)
    index = yaml.safe_load((directory / INDEX).read_text()) or {}
    raw = {}
    for kind, entry in index.items():
        if isinstance(entry, dict):
            raw[kind] = {k: _read(directory, kind, v) for k, v in entry.items()}
        else:
            raw[kind] = _read(directory, kind, entry)
    facts = directory / FACTS
    if facts.exists():
        raw.update(yaml.safe_load(facts.read_text()) or {})
    return raw
