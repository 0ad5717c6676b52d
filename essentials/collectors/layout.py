"""Collector: the disk layout (layout.yaml and the raw tool outputs beside it)."""

from __future__ import annotations

from essentials.layout import collect as layout_collect

from .base import Context


def collect(ctx: Context) -> dict:
    layout = layout_collect.collect(ctx.runner, ctx.out, ctx.options.get("disks") or None,
                                    ctx.root)
    return {"disks": len(layout["disks"]), "filesystems": len(layout["filesystems"])}
