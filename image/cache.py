"""A content-hashed build cache: one directory NAME-KEY per stage and key.

Used by the live image's build (image/build.py) and the boot drill's
systems (tests/drill/cache.py), both under /var/cache/amanda-dr, outside any
clone, so CI on the same machine re-uses what an earlier run built.

A stage's output is built in a work directory beside it (tmp-NAME-KEY-PID)
and renamed into place only when complete, with a manifest.json: a
directory with a manifest is finished, and a second call returns at once.
One lock file per stage name serialises builders.  Once a new key is in
place, the stage's other keys and abandoned work directories (a build that
was killed) are removed.  A failed build's work directory is kept as
failed-NAME for a look; the next failure replaces it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable


def key_of(inputs: dict) -> str:
    """The key of a stage: sha256 over its inputs as canonical JSON."""
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def remove(path: Path) -> None:
    """rm -rf that never crosses into a filesystem mounted below (a build's
    leftover bind mount must not take the host's files with it)."""
    if path.exists() or path.is_symlink():
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def cached(name: str, key: str, build: Callable[[Path], dict], base: Path) -> Path:
    """The directory NAME-KEY under base, built by build(workdir) -> manifest
    when missing."""
    final = base / f"{name}-{key}"
    if (final / "manifest.json").exists():
        return final
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f".lock-{name}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "manifest.json").exists():
            return final
        work = base / f"tmp-{name}-{key}-{os.getpid()}"
        remove(work)
        work.mkdir()
        t0 = time.monotonic()
        try:
            manifest = build(work)
            manifest.setdefault("key", key)
            manifest.setdefault("seconds", round(time.monotonic() - t0, 1))
            manifest.setdefault("built_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            (work / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
            remove(final)
            os.rename(work, final)
        except BaseException:
            failed = base / f"failed-{name}"
            remove(failed)
            if work.exists():
                os.rename(work, failed)
            raise
        remove_stale(base, name, keep=key)
    return final


def remove_stale(base: Path, name: str, keep: str) -> None:
    """Other keys of this stage (called under its lock) and abandoned work dirs."""
    for d in base.iterdir():
        if not d.is_dir():
            continue
        if d.name.startswith(f"{name}-") and d.name != f"{name}-{keep}":
            remove(d)
        elif d.name.startswith(f"tmp-{name}-"):
            remove(d)
