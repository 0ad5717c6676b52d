"""Collector: the disk layout (layout.yaml and the raw tool outputs beside it)."""

from __future__ import annotations

from essentials.layout import collect as layout_collect

from .base import Context


def collect(ctx: Context) -> dict:
    layout = layout_collect.collect(ctx.runner, ctx.out, ctx.options.get("disks") or None,
                                    ctx.root, etc=ctx.etc,
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
