"""The lab's tree snapshot and comparison, on real directories."""

import os
import shutil

import pytest

from tests.lab import tree

T0 = 1_700_000_000  # a fixed mtime, so two trees built apart still match


def build(root):
    """A small tree with every kind of entry the comparison must cover."""
    root.mkdir()
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc" / "shadow").write_text("root:*:1::::::\n")
    os.chmod(root / "etc" / "shadow", 0o640)
    (root / "data").mkdir()
    (root / "data" / "big").write_bytes(bytes(range(256)) * 5000)  # > 1 MiB block
    (root / "data" / "empty").write_bytes(b"")
    os.link(root / "data" / "big", root / "data" / "big.link")
    os.symlink("../etc/passwd", root / "data" / "pw")
    os.symlink("nowhere", root / "data" / "dangling")
    os.mkfifo(root / "data" / "fifo")
    (root / "lost+found").mkdir()
    (root / "lost+found" / "#1234").write_text("debris")
    (root / "restoresymtable").write_text("restore state")
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (T0, T0), follow_symlinks=False)
        os.utime(dirpath, (T0, T0))
    return root


@pytest.fixture
def pair(tmp_path):
    a = build(tmp_path / "a")
    b = tmp_path / "b"
    # built, not copied: shutil.copytree would break the hard link
    build(b)
    return a, b


def touch_dir(path):
    os.utime(path, (T0, T0))


def test_identical_trees_compare_equal(pair):
    a, b = pair
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == []


def test_snapshot_entries(pair):
    a, _ = pair
    e = tree.snapshot(a)["entries"]
    assert e["."]["type"] == "dir"
    assert e["etc/passwd"]["type"] == "file"
    assert e["etc/passwd"]["size"] == len("root:x:0:0::/root:/bin/sh\n")
    assert e["etc/shadow"]["mode"] == 0o640
    assert e["etc/passwd"]["mtime"] == T0
    assert e["data/pw"] == {"type": "symlink", "target": "../etc/passwd", "mode": 0o777,
                            "uid": os.getuid(), "gid": os.getgid(), "mtime": T0}
    assert e["data/dangling"]["target"] == "nowhere"
    assert e["data/fifo"]["type"] == "fifo"
    assert "sha256" not in e["data/fifo"] and "size" not in e["data/fifo"]
    import hashlib
    assert e["data/big"]["sha256"] == hashlib.sha256(bytes(range(256)) * 5000).hexdigest()
    assert e["data/empty"]["sha256"] == hashlib.sha256(b"").hexdigest()
    assert e["data/big"]["inode_group"] == ["data/big", "data/big.link"]
    assert e["data/big.link"]["inode_group"] == ["data/big", "data/big.link"]
    assert "inode_group" not in e["etc/passwd"]


def test_excluded_names(pair):
    a, _ = pair
    e = tree.snapshot(a)["entries"]
    assert not any(p.startswith(("lost+found", "restoresymtable")) for p in e)
    # only the top-level name is excluded, not the same name deeper down
    (a / "etc" / "lost+found").mkdir()
    assert "etc/lost+found" in tree.snapshot(a)["entries"]
    # a custom exclude replaces the default
    e2 = tree.snapshot(a, exclude={"data"})["entries"]
    assert "lost+found/#1234" in e2
    assert not any(p == "data" or p.startswith("data/") for p in e2)


def test_lost_and_found_differences_do_not_count(pair):
    a, b = pair
    (b / "lost+found" / "#9999").write_text("more debris")
    shutil.rmtree(a / "lost+found")
    os.unlink(b / "restoresymtable")
    touch_dir(a)
    touch_dir(b)
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == []


def test_changed_byte(pair):
    a, b = pair
    p = b / "data" / "big"
    data = bytearray(p.read_bytes())
    data[1_200_000] ^= 1  # in the second 1 MiB block
    p.write_bytes(bytes(data))
    os.utime(p, (T0, T0))
    diffs = tree.compare(tree.snapshot(a), tree.snapshot(b))
    # both names of the hard-linked file see the change
    assert [d.split(":")[0] for d in diffs] == ["data/big", "data/big.link"]
    assert all("sha256 differs" in d for d in diffs)


def test_changed_mode(pair):
    a, b = pair
    os.chmod(b / "etc" / "shadow", 0o644)
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == [
        "etc/shadow: mode differs: expected 0640, actual 0644"]


def test_setuid_bit_is_compared(pair):
    a, b = pair
    os.chmod(a / "etc" / "passwd", 0o4755)
    os.chmod(b / "etc" / "passwd", 0o0755)
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == [
        "etc/passwd: mode differs: expected 4755, actual 0755"]


@pytest.mark.integration  # chown needs root; tests/conftest.py runs these as root only
def test_changed_owner(pair):
    a, b = pair
    os.chown(b / "etc" / "passwd", 65534, 65534)
    diffs = tree.compare(tree.snapshot(a), tree.snapshot(b))
    assert diffs == ["etc/passwd: uid differs: expected 0, actual 65534",
                     "etc/passwd: gid differs: expected 0, actual 65534"]


def test_changed_mtime(pair):
    a, b = pair
    os.utime(b / "etc" / "passwd", (T0, T0 + 60))
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == [
        f"etc/passwd: mtime differs: expected {T0}, actual {T0 + 60}"]


def test_sub_second_mtime_is_ignored(pair):
    a, b = pair
    os.utime(b / "etc" / "passwd", ns=(T0 * 10**9, T0 * 10**9 + 999_999_999))
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == []


def test_symlink_mtime_is_compared(pair):
    a, b = pair
    os.utime(b / "data" / "pw", (T0, T0 + 5), follow_symlinks=False)
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == [
        f"data/pw: mtime differs: expected {T0}, actual {T0 + 5}"]


def test_dir_mtime_can_be_ignored(pair):
    a, b = pair
    os.utime(b / "etc", (T0, T0 + 3600))
    sa, sb = tree.snapshot(a), tree.snapshot(b)
    assert tree.compare(sa, sb) == [f"etc: mtime differs: expected {T0}, actual {T0 + 3600}"]
    assert tree.compare(sa, sb, check_dir_mtime=False) == []
    # files still count when directory mtimes do not
    os.utime(b / "etc" / "passwd", (T0, T0 + 1))
    assert tree.compare(sa, tree.snapshot(b), check_dir_mtime=False) == [
        f"etc/passwd: mtime differs: expected {T0}, actual {T0 + 1}"]


def test_retargeted_symlink(pair):
    a, b = pair
    os.unlink(b / "data" / "pw")
    os.symlink("../etc/shadow", b / "data" / "pw")
    os.utime(b / "data" / "pw", (T0, T0), follow_symlinks=False)
    touch_dir(b / "data")
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == [
        "data/pw: target differs: expected ../etc/passwd, actual ../etc/shadow"]


def test_missing_file(pair):
    a, b = pair
    os.unlink(b / "etc" / "shadow")
    touch_dir(b / "etc")
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == [
        "etc/shadow: missing from actual"]


def test_extra_file(pair):
    a, b = pair
    (b / "etc" / "deleted-before-last-incremental").write_text("x")
    touch_dir(b / "etc")
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == [
        "etc/deleted-before-last-incremental: unexpected (should have been deleted)"]


def test_missing_directory_is_one_message(pair):
    a, b = pair
    shutil.rmtree(b / "data")
    touch_dir(b)
    diffs = tree.compare(tree.snapshot(a), tree.snapshot(b))
    assert diffs == ["data: missing from actual (a directory, with 6 entries below it)"]


def test_broken_hard_link(pair):
    a, b = pair
    link = b / "data" / "big.link"
    os.unlink(link)
    shutil.copy2(b / "data" / "big", link)  # same content, a separate inode
    touch_dir(b / "data")
    diffs = tree.compare(tree.snapshot(a), tree.snapshot(b))
    assert diffs == [
        "data/big: inode_group differs: expected [data/big, data/big.link], actual (none)",
        "data/big.link: inode_group differs: expected [data/big, data/big.link], actual (none)",
    ]


def test_hard_link_to_another_file(pair):
    a, b = pair
    os.unlink(b / "data" / "big.link")
    os.link(b / "data" / "big", b / "data" / "other")
    os.link(b / "data" / "big", b / "data" / "big.link")
    touch_dir(b / "data")
    diffs = tree.compare(tree.snapshot(a), tree.snapshot(b))
    group = "[data/big, data/big.link, data/other]"
    assert diffs == [
        f"data/big: inode_group differs: expected [data/big, data/big.link], actual {group}",
        f"data/big.link: inode_group differs: expected [data/big, data/big.link], actual {group}",
        "data/other: unexpected (should have been deleted)",
    ]


def test_type_change(pair):
    a, b = pair
    os.unlink(b / "data" / "fifo")
    (b / "data" / "fifo").mkdir()
    os.utime(b / "data" / "fifo", (T0, T0))
    os.chmod(b / "data" / "fifo", 0o644)
    touch_dir(b / "data")
    assert tree.compare(tree.snapshot(a), tree.snapshot(b)) == [
        "data/fifo: type differs: expected fifo, actual dir"]


def test_symlink_to_directory_is_not_followed(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    (root / "real").mkdir()
    (root / "real" / "f").write_text("x")
    os.symlink("real", root / "alias")
    e = tree.snapshot(root)["entries"]
    assert sorted(e) == [".", "alias", "real", "real/f"]
    assert e["alias"]["type"] == "symlink"


def test_summary(pair):
    a, _ = pair
    s = tree.summary(tree.snapshot(a))
    # files: passwd shadow big empty big.link; dirs: . etc data
    assert s == {"files": 5, "dirs": 3, "symlinks": 2,
                 "bytes": 26 + 15 + 2 * 256 * 5000}


def test_save_and_load(pair, tmp_path):
    a, b = pair
    (a / "data" / "sp ace: \"q\"").write_text("y")
    snap = tree.snapshot(a)
    path = tmp_path / "snap.yaml"
    tree.save(snap, path)
    assert tree.load(path) == snap
    text = path.read_text()
    assert "entries:" in text and "data/big.link" in text
    # a loaded snapshot compares like a fresh one
    os.unlink(b / "etc" / "shadow")
    touch_dir(b / "etc")
    diffs = tree.compare(tree.load(path), tree.snapshot(b))
    assert "etc/shadow: missing from actual" in diffs


def test_load_rejects_other_yaml(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="not a tree snapshot"):
        tree.load(p)
