"""What every collector gets and how it reports trouble.

A collector turns one source (the /etc tree, the disks, the package
database...) into files under the bundle's staging directory and returns a
small summary for the manifest.  It raises on failure; the caller records the
error in the manifest and runs the next collector, so one missing tool never
costs the rest of the bundle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from essentials.doctor import locate
from essentials.errors import AmdrError
from essentials.inventory import BY_NAME
from essentials.runner import Runner


class CollectorError(AmdrError):
    """A collector could not gather its source; the message says why."""


class ToolMissing(CollectorError):
    def __init__(self, tool: str, package: str):
        super().__init__(f"'{tool}' is not installed (Debian package {package}); "
                         f"install it or disable this collector")
        self.tool = tool
        self.package = package


@dataclass
class Context:
    runner: Runner
    out: Path                      # the bundle's staging directory (mode 0700)
    options: dict = field(default_factory=dict)  # this collector's section of the config
    root: str = "/"                # the system's mountpoints are relative to this
    etc: Path = Path("/etc")       # where /etc is read from (tests point it elsewhere)
    warnings: list = field(default_factory=list)  # non-fatal notes for the manifest

    def warn(self, msg: str):
        self.warnings.append(msg)

    def write(self, rel: str, data: str | bytes) -> Path:
        """Write a bundle member readable by root only."""
        p = self.out / rel
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return p


def need_tool(tool: str) -> str:
    """The tool's path, or ToolMissing naming the package (from the inventory)."""
    path = locate(tool)
    if not path:
        raise ToolMissing(tool, BY_NAME[tool].package)
    return path


def have_tool(tool: str) -> bool:
    """Found where doctor looks too (PATH, then the sbin and bin directories),
    so doctor and the collectors never disagree under cron's short PATH."""
    return locate(tool) is not None
