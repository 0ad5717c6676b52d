"""Collector: the disk layout (layout.yaml and the raw tool outputs beside it)."""

from __future__ import annotations

import os
from pathlib import Path

from essentials.layout import collect as layout_collect

from .base import Context


def fstab_dir(ctx: Context) -> Path:
    """Where the collected system's fstab and crypttab are.

    A layout collected under another root (a system mounted at /mnt, a
    chroot) is that system's: its mounts are read relative to the root, so
    its fstab must be too, not the running host's."""
    if os.path.normpath(ctx.root or "/") == "/":
        return ctx.etc
    return Path(ctx.root) / "etc"


def collect(ctx: Context) -> dict:
    layout = layout_collect.collect(ctx.runner, ctx.out, ctx.options.get("disks") or None,
                                    ctx.root, etc=fstab_dir(ctx),
                                    luks_header=bool(ctx.options.get("luks_header")))
    for w in layout["warnings"]:
        ctx.warn(w)
    summary = {"disks": len(layout["disks"]), "filesystems": len(layout["filesystems"])}
    for key in ("lvm", "md", "luks", "multipath"):
        if layout[key]:
            summary[key] = len(layout[key])
    if layout["boot"]:
        summary["firmware"] = layout["boot"]["firmware"]
    if layout["warnings"]:
        summary["warnings"] = len(layout["warnings"])
    return summary
