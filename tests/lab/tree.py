"""Snapshots of a directory tree, to prove a restore gave back what was saved.

Why: a restore test must show that every byte, mode, owner, mtime, symlink
target and hard link came back, and that nothing deleted before the last
incremental came back with it.  The lab takes a snapshot of the source tree
when it is backed up, another of the restored tree, and compares the two.
Pure Python: no external command is run, so the comparison cannot share a
bug with the tools under test.
"""

from __future__ import annotations

import hashlib
import os
import stat

import yaml

DEFAULT_EXCLUDE = frozenset({"lost+found", "restoresymtable"})
BLOCK = 1 << 20

# the order in which compare() reports the fields of one entry
FIELDS = ("type", "mode", "uid", "gid", "size", "mtime", "sha256", "target", "inode_group")


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "other"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(BLOCK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _excluded(rel: str, exclude) -> bool:
    return any(rel == name or rel.startswith(name + "/") for name in exclude)


def _join(parent: str, name: str) -> str:
    return name if parent == "." else f"{parent}/{name}"


def snapshot(root: str, exclude: set[str] = DEFAULT_EXCLUDE) -> dict:
    """Every entry under root (root itself is "."), symlinks not followed.

    Names in `exclude` are paths relative to root; each excludes itself and
    everything below it (lost+found of a fresh filesystem, restore's
    restoresymtable, neither of which is part of the data).
    """
    root = os.fspath(root)
    entries: dict[str, dict] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    stack = ["."]
    while stack:
        rel = stack.pop()
        path = root if rel == "." else os.path.join(root, rel)
        st = os.lstat(path)
        kind = _kind(st.st_mode)
        e = {"type": kind, "mode": stat.S_IMODE(st.st_mode),
             "uid": st.st_uid, "gid": st.st_gid}
        if kind in ("file", "dir", "symlink"):
            e["mtime"] = st.st_mtime_ns // 10**9
        if kind == "file":
            e["size"] = st.st_size
            e["sha256"] = _sha256(path)
            if st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
        elif kind == "symlink":
            e["target"] = os.readlink(path)
        entries[rel] = e
        if kind == "dir":
            with os.scandir(path) as it:
                names = sorted(d.name for d in it)
            for name in reversed(names):
                child = _join(rel, name)
                if not _excluded(child, exclude):
                    stack.append(child)
    for members in inodes.values():
        # a link to a file outside the snapshot is nothing a restore of
        # this tree could recreate, so only links within it form a group
        if len(members) > 1:
            group = sorted(members)
            for rel in group:
                entries[rel]["inode_group"] = list(group)
    return {"entries": dict(sorted(entries.items()))}


def _show(field: str, value) -> str:
    if value is None:
        return "(none)"
    if field == "mode":
        return f"{value:04o}"
    if field == "inode_group":
        return "[" + ", ".join(value) + "]"
    return str(value)


def _absent(paths: list[str], entries: dict, what: str) -> dict[str, str]:
    """One message per absent path; a whole absent directory is one message."""
    absent = set(paths)
    below: dict[str, int] = {}
    for rel in paths:
        parent = rel
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            below[parent] = below.get(parent, 0) + 1
    out = {}
    for rel in paths:
        # reported by an absent ancestor directory already?
        parts = rel.split("/")
        if any("/".join(parts[:i]) in absent for i in range(1, len(parts))):
            continue
        if entries[rel]["type"] == "dir" and below.get(rel):
            out[rel] = f"{rel}: {what} (a directory, with {below[rel]} entries below it)"
        else:
            out[rel] = f"{rel}: {what}"
    return out


def compare(expected: dict, actual: dict, check_dir_mtime: bool = True) -> list[str]:
    """Differences between two snapshots, one line each, in path order.

    Empty when the trees are identical.  A directory missing (or left over)
    as a whole is reported once, with the number of entries below it.
    """
    exp, act = expected["entries"], actual["entries"]
    msgs: dict[str, list[str]] = {}
    missing = [p for p in exp if p not in act]
    extra = [p for p in act if p not in exp]
    for rel, m in _absent(missing, exp, "missing from actual").items():
        msgs.setdefault(rel, []).append(m)
    for rel, m in _absent(extra, act, "unexpected (should have been deleted)").items():
        msgs.setdefault(rel, []).append(m)
    for rel in exp.keys() & act.keys():
        e, a = exp[rel], act[rel]
        same_type = e.get("type") == a.get("type")
        for f in FIELDS:
            if f == "mtime" and not check_dir_mtime and "dir" in (e.get("type"), a.get("type")):
                continue
            if not same_type and f != "type" and (f not in e or f not in a):
                continue  # a field of one type only: the type line says it all
            ev, av = e.get(f), a.get(f)
            if ev != av:
                msgs.setdefault(rel, []).append(
                    f"{rel}: {f} differs: expected {_show(f, ev)}, actual {_show(f, av)}")
    return [m for rel in sorted(msgs) for m in msgs[rel]]


def summary(snap: dict) -> dict:
    """Counts to print beside a comparison; the root "." counts as a dir."""
    entries = snap["entries"].values()
    return {
        "files": sum(1 for e in entries if e["type"] == "file"),
        "dirs": sum(1 for e in entries if e["type"] == "dir"),
        "symlinks": sum(1 for e in entries if e["type"] == "symlink"),
        "bytes": sum(e.get("size", 0) for e in entries if e["type"] == "file"),
    }


def save(snap: dict, path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(snap, f, default_flow_style=False, sort_keys=True, allow_unicode=True)


def load(path) -> dict:
    with open(path, encoding="utf-8") as f:
        snap = yaml.safe_load(f)
    if not isinstance(snap, dict) or not isinstance(snap.get("entries"), dict):
        raise ValueError(f"{path}: not a tree snapshot (no 'entries' mapping)")
    return snap
