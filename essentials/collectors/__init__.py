"""The collectors, in the order a run calls them.

Each entry is (name, module); module.collect(ctx) -> dict | None.  The name
is the key of the collector's section under `collect:` in the config and of
its status in the manifest.
"""

from __future__ import annotations

import importlib

NAMES = ["etc", "layout", "packages", "network", "capabilities", "amanda"]


def get(name: str):
    return importlib.import_module(f"essentials.collectors.{name}")
