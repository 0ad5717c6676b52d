"""Bundle extraction on Debian 12's python3 (3.11.2: no tarfile filters).

Hand-made tars that a tampered or foreign bundle could hold: each is refused
by name, and nothing of it is written, inside or outside the bundle directory.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import tarfile
from pathlib import Path

import pytest

from essentials import sealed
from essentials.errors import BundleError


def _file(name: str, data: bytes = b"x\n") -> tuple[tarfile.TarInfo, io.BytesIO]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    return ti, io.BytesIO(data)


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = 8, 0
    return ti, None


def make_tar(path: Path, members) -> Path:
    with tarfile.open(path, "w") as tf:
        for ti, data in [_file("manifest.yaml", b"format: 1\n")] + list(members):
            tf.addfile(ti, data)
    return path


@pytest.fixture
def box(tmp_path):
    """The bundle directory, inside a parent whose other entries must stay untouched."""
    into = tmp_path / "parent" / "bundle"
    into.mkdir(parents=True)
    return into


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_runs_on_the_interpreter_the_image_has():
    # make setup builds the venv from Debian's /usr/bin/python3
    assert sys.version_info[:2] == (3, 11)


def test_plain_bundle_extracts_private(tmp_path, box):
    tar = make_tar(tmp_path / "b.tar", [_file("etc.tar", b"e" * 5000),
                                        _file("raw/lsblk.json", b"{}")])
    sealed.extract_tar(tar, box, Path("host.amdr.gpg"))
    assert listing(box) == ["etc.tar", "manifest.yaml", "raw", "raw/lsblk.json"]
    assert (box / "etc.tar").read_bytes() == b"e" * 5000
    assert stat.S_IMODE((box / "etc.tar").stat().st_mode) == 0o600
    assert stat.S_IMODE((box / "raw").stat().st_mode) == 0o700


@pytest.mark.parametrize("members, expect", [
    ([_file("/etc/cron.d/evil")], "'/etc/cron.d/evil' has an absolute path"),
    ([_file("../escaped")], "'../escaped' has a '..' component"),
    ([_file("raw/../../escaped")], "'raw/../../escaped' has a '..' component"),
    ([_special("link", tarfile.SYMTYPE, "/etc"), _file("link/cron.d/evil")],
     "'link' is a symbolic link to '/etc'"),
    ([_special("hard", tarfile.LNKTYPE, "/etc/shadow")],
     "'hard' is a hard link to '/etc/shadow'"),
    ([_special("sda", tarfile.BLKTYPE)], "'sda' is a device node"),
    ([_special("tty", tarfile.CHRTYPE)], "'tty' is a device node"),
    ([_special("fifo", tarfile.FIFOTYPE)], "'fifo' is a named pipe"),
    ([_file("etc.tar", b"one"), _file("./etc.tar", b"two")], "'./etc.tar' appears twice"),
])
def test_unsafe_member_is_refused_by_name_and_nothing_is_written(tmp_path, box, members,
                                                                 expect):
    tar = make_tar(tmp_path / "evil.tar", members)
    before_parent = listing(box.parent.parent)
    with pytest.raises(BundleError) as e:
        sealed.extract_tar(tar, box, Path("web1-20261122T010203Z.amdr.gpg"))
    msg = str(e.value)
    assert expect in msg
    assert msg.startswith("web1-20261122T010203Z.amdr.gpg: bundle member")
    assert "Nothing was extracted" in msg
    assert listing(box) == []
    assert listing(box.parent.parent) == before_parent
    assert not (tmp_path / "escaped").exists()


def test_manifest_must_come_first(tmp_path, box):
    tar = tmp_path / "t.tar"
    with tarfile.open(tar, "w") as tf:
        tf.addfile(*_file("etc.tar"))
        tf.addfile(*_file("manifest.yaml"))
    with pytest.raises(BundleError, match="first member is not manifest.yaml"):
        sealed.extract_tar(tar, box, Path("b"))


def test_truncated_tar_is_named_not_a_traceback(tmp_path, box):
    tar = make_tar(tmp_path / "t.tar", [_file("etc.tar", b"z" * 100000)])
    data = tar.read_bytes()
    tar.write_bytes(data[:30000])
    with pytest.raises(BundleError, match="not a readable tar"):
        sealed.extract_tar(tar, box, Path("b"))


def test_a_symlink_planted_in_the_directory_is_not_followed(tmp_path, box):
    """O_NOFOLLOW|O_EXCL: a name already taken in the directory is never written through."""
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    os.symlink(victim, box / "etc.tar")
    tar = make_tar(tmp_path / "t.tar", [_file("etc.tar", b"overwrite")])
    with pytest.raises(BundleError):
        sealed.extract_tar(tar, box, Path("b"))
    assert victim.read_text() == "keep\n"
