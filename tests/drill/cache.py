"""The drill's build cache under ${AMDR_CACHE:-/var/cache/amanda-dr}/drill/:
image/cache.py's stages (NAME-KEY with a manifest.json, built beside and
renamed into place, one builder per stage, older keys removed)."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable

from image import cache as image_cache
from image.cache import key_of  # noqa: F401 - the drill's stages key with it

log = logging.getLogger(__name__)


def root() -> Path:
    return Path(os.environ.get("AMDR_CACHE", "/var/cache/amanda-dr")) / "drill"


def file_hashes(paths) -> dict:
    """name -> sha256 of each file's bytes (inputs that are files)."""
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in sorted(paths)}


def cached(name: str, key: str, build: Callable[[Path], dict], *, base: Path | None = None) -> Path:
    """The directory NAME-KEY, built by build(workdir) -> manifest when missing
    (image/cache.py: the same cache as the live image's)."""
    return image_cache.cached(name, key, build, base or root())
