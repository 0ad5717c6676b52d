"""What happens to the lab client's files between backups.

Every kind of change a restore chain must replay: files added, modified,
deleted and renamed, a directory removed, modes and owners changed, symlinks,
hard links and a sparse file.  Contents are seeded so runs are comparable.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

OLD = 1_600_000_000  # an mtime in the past, to see mtimes restored exactly


def write(path: Path, data: bytes, mode=0o644, owner=(0, 0), mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.chown(path, *owner)
    if mtime:
        os.utime(path, (mtime, mtime))


def blob(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def initial(root: Path, data: Path):
    write(root / "etc/hostname", b"labhost\n")
    write(root / "etc/app.conf", b"setting = 1\n", 0o644, mtime=OLD)
    write(root / "etc/secret.key", blob(1, 64), 0o600)
    os.symlink("/usr/share/zoneinfo/UTC", root / "etc/localtime")  # dangling is fine
    for name in ("notes.txt", "todelete.txt", "rename-me.txt", "docs/a.txt", "docs/b.txt"):
        write(root / "home/alice" / name, f"{name} v1\n".encode(), 0o640, (1001, 1001))
    os.chown(root / "home/alice", 1001, 1001)
    os.chmod(root / "home/alice", 0o750)
    write(root / "usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o755)
    write(root / "usr/bin/suidtool", b"#!/bin/sh\n", 0o4755)
    os.symlink("tool", root / "usr/bin/tool-link")
    write(root / "usr/lib/libx.so.1", blob(2, 200_000), 0o644)
    os.link(root / "usr/lib/libx.so.1", root / "usr/lib/libx.so")
    write(root / "usr/share/data/blob.bin", blob(3, 1_000_000))
    for i in range(200):
        write(root / f"usr/share/doc/pkg{i % 20}/file{i}.txt", blob(100 + i, 3000 + i))
    write(root / "var/log/app.log", b"start\n", 0o640, (0, 4))
    # a sparse file: 32 MiB with data at the start and in the middle
    sparse = root / "var/lib/sparse.img"
    sparse.parent.mkdir(parents=True, exist_ok=True)
    with open(sparse, "wb") as f:
        f.write(b"head" * 1024)
        f.seek(16 << 20)
        f.write(b"middle" * 1024)
        f.truncate(32 << 20)
    for name in ("x", "y", "sub/z"):
        write(root / "tmpdir/old" / name, name.encode())
    os.makedirs(root / "var/empty", exist_ok=True)
    os.chmod(root / "var/empty", 0o1777)

    write(data / "www/index.html", b"<h1>lab</h1>\n")
    write(data / "db/data.bin", blob(4, 500_000), 0o600, (999, 999))
    write(data / "db/drop-me.bin", blob(5, 10_000))
    write(data / "share/readme", b"readme v1\n", mtime=OLD)
    os.link(data / "share/readme", data / "share/readme.hardlink")
    os.symlink("../www/index.html", data / "share/index-link")


def change1(root: Path, data: Path):
    """Level 1: modify, add, delete, rename, chmod, chown."""
    with open(root / "home/alice/notes.txt", "ab") as f:
        f.write(b"more notes\n")
    write(root / "home/alice/new1.txt", b"new in level 1\n", 0o600, (1001, 1001))
    (root / "home/alice/todelete.txt").unlink()
    os.rename(root / "home/alice/rename-me.txt", root / "home/alice/renamed.txt")
    os.chmod(root / "etc/app.conf", 0o600)
    os.chown(root / "var/log/app.log", 1002, 1002)
    with open(root / "var/log/app.log", "ab") as f:
        f.write(b"level1\n")

    write(data / "www/new.html", b"new page\n")
    (data / "db/drop-me.bin").unlink()
    with open(data / "db/data.bin", "r+b") as f:
        f.seek(1000)
        f.write(b"CHANGED1")


def change2(root: Path, data: Path):
    """Level 2: remove a directory, rewrite part of a file, new links."""
    shutil.rmtree(root / "tmpdir/old")
    with open(root / "usr/share/data/blob.bin", "r+b") as f:
        f.seek(500_000)
        f.write(b"L2" * 500)
    os.symlink("../usr/bin/tool", root / "home/alice/tool-link")
    os.link(root / "home/alice/new1.txt", root / "home/alice/new1.hardlink")
    os.chmod(root / "usr/bin/tool", 0o750)

    os.rename(data / "www", data / "web")
    os.chmod(data / "share", 0o700)


def change3(root: Path, data: Path):
    """Before the newer level 0: more churn, a file only the new full has."""
    write(root / "etc/after-full.conf", b"only since the second level 0\n")
    (root / "usr/bin/tool-link").unlink()
    for i in range(0, 200, 7):
        (root / f"usr/share/doc/pkg{i % 20}/file{i}.txt").unlink()
    write(data / "web/full2.html", b"second full\n")


def change4(root: Path, data: Path):
    """Level 1 after the newer level 0."""
    (root / "etc/hostname").write_text("labhost-renamed\n")
    (root / "home/alice/docs/a.txt").unlink()
    write(root / "home/alice/docs/c.txt", b"c\n", 0o640, (1001, 1001))
    os.chown(root / "home/alice/docs", 1001, 1003)

    (data / "web/index.html").unlink()
    write(data / "db/journal.log", blob(6, 20_000), 0o640, (999, 999))


def change5(root: Path, data: Path):
    """Level 2 after the newer level 0: the final state."""
    shutil.rmtree(root / "usr/share/doc/pkg3")
    os.rename(root / "home/alice/docs", root / "home/alice/documents")
    with open(root / "var/log/app.log", "ab") as f:
        f.write(b"level2 again\n")
    os.chmod(root / "etc/secret.key", 0o400)
    write(root / "usr/share/data/final.bin", blob(7, 300_000))

    os.unlink(data / "share/readme.hardlink")
    write(data / "web/final.html", b"final\n", 0o604, (33, 33))
