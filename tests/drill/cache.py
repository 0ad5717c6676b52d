"""Content-hashed build cache of the drill under ${AMDR_CACHE:-/var/cache/amanda-dr}/drill/.

Each stage's output is a directory NAME-KEY holding a manifest.json: it is
built in a temporary directory beside it and renamed into place only when
complete, so a directory with a manifest is finished and a second call
returns at once.  One lock file per stage name serialises builders; older
keys of the same name are removed once the new one is in place.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


def root() -> Path:
    return Path(os.environ.get("AMDR_CACHE", "/var/cache/amanda-dr")) / "drill"


def key_of(inputs: dict) -> str:
    """The key of a stage: sha256 over its inputs as canonical JSON."""
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_hashes(paths) -> dict:
    """name -> sha256 of each file's bytes (inputs that are files)."""
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in sorted(paths)}


def cached(name: str, key: str, build: Callable[[Path], dict], *, base: Path | None = None) -> Path:
    """The directory NAME-KEY, built by build(workdir) -> manifest when missing."""
    base = base or root()
    final = base / f"{name}-{key}"
    if (final / "manifest.json").exists():
        return final
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f".lock-{name}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "manifest.json").exists():
            return final
        work = base / f"tmp-{name}-{key}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        t0 = time.monotonic()
        try:
            manifest = build(work)
            manifest.setdefault("key", key)
            manifest.setdefault("stage_seconds", round(time.monotonic() - t0, 1))
            manifest.setdefault("built_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            (work / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
            os.rename(work, final)
        except BaseException:
            failed = base / f"failed-{name}"
            shutil.rmtree(failed, ignore_errors=True)
            if work.exists():
                os.rename(work, failed)  # kept for a look; the next failure replaces it
            raise
        remove_stale(base, name, keep=key)
    return final


def remove_stale(base: Path, name: str, keep: str):
    """Other keys of this stage (called under its lock) and abandoned work dirs."""
    for d in base.iterdir():
        if not d.is_dir():
            continue
        if d.name.startswith(f"{name}-") and d.name != f"{name}-{keep}" \
                and (d / "manifest.json").exists():
            shutil.rmtree(d, ignore_errors=True)
        elif d.name.startswith(f"tmp-{name}-") and not d.name.startswith(f"tmp-{name}-{keep}-"):
            shutil.rmtree(d, ignore_errors=True)
