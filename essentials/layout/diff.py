"""What changed between two layouts: `amdr-essentials check` prints this.

Items of a list are matched by a natural key (UUID, device path, name)
rather than by position or generated id, so one new partition reads as one
addition instead of every later item "changing".  A disk that only changed
its name is one line, "disk0 is now /dev/sdb" (renames.py), and the rest is
compared under the new names.
"""

from __future__ import annotations

import copy

from . import renames as renames_mod

NATURAL_KEYS = ("uuid", "path", "device_path", "name", "id", "number")
IGNORED = {"root"}  # where the layout was collected from, not what it is
# never a layout change: bytes used change with every file written; the options
# a filesystem is mounted with now are known only while it is mounted (fstab's
# options, which a restore brings back, are compared)
VOLATILE = {"used", "mount_options"}


def _keys(items: list[dict]) -> list[str]:
    """A natural key per item; items sharing one (the members of an MD array or a
    multi-device btrfs share their UUID) get the next natural key appended."""
    def natural(item, depth):
        parts = [f"{k}={item[k]}" for k in NATURAL_KEYS if item.get(k) not in (None, "")]
        return ",".join(parts[:depth])

    keys = [natural(item, 1) for item in items]
    for depth in range(2, len(NATURAL_KEYS) + 1):
        dup = {k for k in keys if keys.count(k) > 1}
        if not dup:
            break
        keys = [natural(item, depth) if k in dup else k for item, k in zip(items, keys)]
    seen: dict = {}
    out = []
    for i, k in enumerate(keys):
        k = k or f"#{i}"
        if k in seen:
            k = f"{k},#{i}"
        seen[k] = True
        out.append(k)
    return out


def flatten(obj, path: str = "", out: dict | None = None) -> dict:
    out = {} if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            if (not path and k in IGNORED) or k in VOLATILE:
                continue
            flatten(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(obj, list) and obj and all(isinstance(i, dict) for i in obj):
        for key, item in zip(_keys(obj), obj):
            flatten(item, f"{path}[{key}]", out)
    else:
        out[path] = obj
    return out


def settled(layout: dict) -> dict:
    """A filesystem that fstab mounts but that is not mounted now (an automounted
    ESP before its first use, a noauto /boot) is taken as mounted where fstab
    says, so mounting it is no change."""
    out = copy.deepcopy(layout)
    where = {e.get("filesystem"): e.get("file") for e in out.get("fstab") or []
             if e.get("filesystem") and str(e.get("file") or "").startswith("/")}
    for f in out.get("filesystems") or []:
        if not f.get("mountpoint") and where.get(f.get("id")):
            f["mountpoint"] = where[f["id"]]
    return out


def diff(old: dict, new: dict) -> list[str]:
    """Human-readable differences: renamed disks first, then the rest sorted by path;
    empty when the layouts agree."""
    renamed = renames_mod.find(old, new)
    old = renames_mod.apply(old, new, renamed)
    a, b = flatten(settled(old)), flatten(settled(new))
    lines = [f"~ {r.line()}" for r in renamed]
    for path in sorted(set(a) | set(b)):
        if path not in b:
            lines.append(f"- {path}: {a[path]!r} (gone)")
        elif path not in a:
            lines.append(f"+ {path}: {b[path]!r} (new)")
        elif a[path] != b[path]:
            lines.append(f"~ {path}: {a[path]!r} -> {b[path]!r}")
    return lines
