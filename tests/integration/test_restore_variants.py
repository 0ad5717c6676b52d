"""Amanda set up as real sites run it, restored by `recover` from a bundle alone.

Split images (issue 13): the lab's tapetype gets `part-size 1m` and vtapes of
3 MB with `runtapes 4`, so an image is cut in parts that span three volumes.
The GNUTAR DLE is compressed on the server (`compress server fast`): its
parts are pieces of one gzip stream, which amrestore cannot uncompress one
by one.  The DUMP DLE is uncompressed and split too.  Level 0, then level 1.

The catalog's text commands are run exactly as printed (once they were one
`amrestore | tar` per part: every part but the last failed and the tree was
corrupt), and `recover` restores both DLEs onto a blank disk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lab import scenario, tree
from tests.lab.lab import AmandaLab, sh

from .helpers import amdr, blank_disk, collect, differences, umount_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=64, data_mb=32, swap_mb=8, slots=12, holding_mb=600) as lab:
        conf = lab.confdir / "amanda.conf"
        text = conf.read_text()
        for old, new in (("  length 16000 mbytes\n", "  length 3 mbytes\n  part-size 1m\n"),
                         ("runtapes 1\n", "runtapes 4\n"),
                         ('  program "GNUTAR"\n', '  program "GNUTAR"\n  compress server fast\n')):
            assert old in text
            text = text.replace(old, new)
        conf.write_text(text)
        scenario.initial(lab.mnt, lab.data_mnt)
        (lab.mnt / "big.bin").write_bytes(os.urandom(5 << 20))  # random: gzip keeps its size
        (lab.data_mnt / "data.bin").write_bytes(os.urandom(2 << 20))
        lab.backup(expect=0)
        scenario.change1(lab.mnt, lab.data_mnt)
        (lab.mnt / "big1.bin").write_bytes(os.urandom(3 << 20))
        lab.backup(expect=1)
        lab.bundle = collect(lab, lab.base / "bundle")
        yield lab


def parts_per_image(lab) -> dict:
    """(disk, level) -> the volumes its parts are on, from amadmin find."""
    out: dict = {}
    for line in lab.amadmin("find").splitlines()[1:]:
        f = line.split()
        # date time host disk lv storage pool tape file part status
        if len(f) >= 10 and f[3] in (lab.root_disk, lab.data_disk):
            out.setdefault((f[3], int(f[4])), []).append(f[7])
    return out


def test_the_lab_has_split_images_across_volumes(lab):
    found = parts_per_image(lab)
    assert len(found[(lab.root_disk, 0)]) >= 5, found
    assert len(set(found[(lab.root_disk, 0)])) >= 3, found  # spans three volumes
    assert len(found[(lab.data_disk, 0)]) >= 2, found  # the DUMP image is split too


def dle_block(lines: list[str], dle: str) -> list[str]:
    """The lines of one DLE's section of `catalog`'s text output."""
    start = lines.index(next(ln for ln in lines if ln.startswith(f"{dle}  program")))
    block = []
    for ln in lines[start + 1:]:
        if not ln.strip():
            break
        block.append(ln)
    return block


def catalog_lines(lab, disk: str, into, reader: str) -> list[str]:
    """The catalog's text for one DLE: as `catalog --vtapes` prints it (each
    file read directly), or as it is printed for a tape drive (amrestore per
    part), here rendered against the same vtapes (amrestore reads `file:`
    slots as it reads a tape)."""
    if reader == "files":
        p = amdr("amdr-recover", "catalog", "--bundle", lab.bundle, "--vtapes", lab.vtapes,
                 "--host", "localhost", "--disk", disk, "--into", into)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout.splitlines()
    from essentials.runner import Runner
    from recovery.catalog import gather
    from recovery.media import positioning
    from recovery.restore import listing as show
    from recovery.media.devices import from_devices
    from recovery.restore.pipe import header_reader
    cat = gather.load(gather.Request(bundles=[str(lab.bundle)], vtapes=[str(lab.vtapes)]),
                      Runner())
    chains, errors = cat.chains("localhost", disk, None)
    assert errors == []
    # the headers (a tape's, once loaded, tell the same), but no files to read
    return show.text(cat, chains, errors, positioning.VtapeMedia(cat.devices), None,
                     into=str(into), header_of=header_reader(from_devices(cat.devices)))


@pytest.mark.parametrize("reader", ["files", "amrestore"])
@pytest.mark.parametrize("which", ["root", "data"])
def test_catalog_commands_run_as_printed_restore_the_tree(lab, tmp_path, which, reader):
    disk = lab.root_disk if which == "root" else lab.data_disk
    into = tmp_path / "into"
    into.mkdir()
    block = dle_block(catalog_lines(lab, disk, into, reader), f"localhost:{disk}")
    commands = [ln[2:] for ln in block if not ln.lstrip().startswith(("level ", "volumes,"))]
    text = "\n".join(commands)
    # one sequence per image: two images, so exactly two extracting commands
    extract = "tar -x" if which == "root" else "restore -r"
    assert text.count(extract) == 2, text
    if reader == "files":
        assert "amrestore" not in text and "runuser" not in text, text
        assert text.count("gzip -dc") == (2 if which == "root" else 0), text
    else:
        assert "dd if=" not in text and "amrestore" in text, text
    r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", text], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0, text + "\n" + r.stderr[-3000:]
    got = tree.snapshot(str(into), exclude={"lost+found", "srv", "restoresymtable"})
    assert tree.compare(lab.runs[-1].manifests[disk], got) == []


def test_recover_restores_split_images_from_the_bundle_alone(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("AMDR_PROGRESS_SECONDS", "0")  # a progress line at every tick
    target = tmp_path / "target"
    report = tmp_path / "report.json"
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", target,
                     "--vtapes", lab.vtapes, "--map", f"{lab.loop}={new}", "--yes",
                     "--no-finalize", "--report", report)
            assert p.returncode == 0, p.stdout + p.stderr
            assert differences(lab, target) == {d: [] for d in lab.dle_dirs()}
            doc = json.loads(report.read_text())
            assert sorted(tuple(r["levels"]) for r in doc["restored"]) == [(0, 1), (0, 1)]
            # progress as the images are read: bytes of the known total, rate
            ticks = re.findall(rf"localhost:{re.escape(lab.root_disk)} level (\d) \(image "
                               rf"(\d)/2\): (\d+)/(\d+) MB \((\d+)%\)", p.stdout)
            assert ticks, p.stdout
            assert all(int(done) <= int(total) + 1 for _, _, done, total, _ in ticks)
            assert max(int(pct) for *_, pct in ticks) == 100  # the total was right
            assert doc["errors"] == []
        finally:
            umount_target(target)


def copy_vtapes(lab, tmp_path):
    """The lab's volumes copied (the lab's own stay intact) where backup reads them."""
    dest = lab.base / f"vtapes-{tmp_path.name}"
    shutil.copytree(lab.vtapes, dest)
    subprocess.run(["chown", "-R", "backup:backup", str(dest)], check=True)
    return dest


def test_volumes_backup_cannot_read_are_restored(lab, tmp_path):
    """Volumes copied where backup may not enter (root's 0700 tmp): once every
    DLE failed after the wipe (amrestore runs as backup); vtape files are now
    read directly, so they restore, and the decrypting or uncompressing
    programs read only the pipe."""
    vt = tmp_path / "vtapes"  # pytest's tmp_path is root's alone
    shutil.copytree(lab.vtapes, vt)
    os.chmod(tmp_path, 0o700)
    target = tmp_path / "t"
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", target,
                     "--vtapes", vt, "--map", f"{lab.loop}={new}", "--yes", "--no-finalize")
            assert p.returncode == 0, p.stdout + p.stderr
            assert differences(lab, target) == {d: [] for d in lab.dle_dirs()}
        finally:
            umount_target(target)


def image_files(vtapes, disk: str, level: int):
    name = disk.replace("/", "_")
    return sorted(vtapes.glob(f"slot*/0*.localhost.{name}.{level}"))


def test_one_failing_dle_does_not_stop_the_others(lab, tmp_path):
    """A flipped byte in the middle of the compressed / image: gzip fails there;
    the DUMP DLE is restored all the same, exit 1 names the failure, the report
    is written and says how to restore it later."""
    vt = copy_vtapes(lab, tmp_path)
    part = image_files(vt, lab.root_disk, 0)[1]
    data = bytearray(part.read_bytes())
    data[32768 + len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", target,
                     "--vtapes", vt, "--map", f"{lab.loop}={new}", "--yes", "--no-finalize")
            assert p.returncode == 1, p.stdout + p.stderr
            assert f"FAILED localhost:{lab.root_disk}" in p.stderr
            assert f"NOT RESTORED localhost:{lab.root_disk}" in p.stdout
            got_data = tree.snapshot(str(target / "srv"), exclude={"lost+found"})
            assert tree.compare(lab.runs[-1].manifests[lab.data_disk], got_data) == []
            report = json.loads((tmp_path / "target.amdr" / "restore-report.json").read_text())
            assert [r["disk"] for r in report["restored"]] == [lab.data_disk]
            assert [e["disk"] for e in report["errors"]] == [lab.root_disk]
            assert f"--dle {lab.root_disk}" in p.stdout  # how to restore it once fixed
        finally:
            umount_target(target)


def test_a_dle_that_cannot_be_restored_is_named_before_any_wipe(lab, tmp_path):
    vt = copy_vtapes(lab, tmp_path)
    gone = image_files(vt, lab.data_disk, 1)[0]
    gone.unlink()
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target",
                 tmp_path / "t", "--vtapes", vt, "--map", f"{lab.loop}={new}", "--yes",
                 "--no-finalize")
        assert p.returncode == 4, p.stdout + p.stderr
        assert "cannot be restored (checked before any disk is touched)" in p.stdout
        assert f"localhost:{lab.data_disk}" in p.stdout and "has no file" in p.stdout
        assert "no disk was touched" in p.stderr and "--allow-partial" in p.stderr
        assert sh(["blkid", "-p", new], check=False) == ""  # still blank
        target = tmp_path / "t2"
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", target,
                     "--vtapes", vt, "--map", f"{lab.loop}={new}", "--yes", "--no-finalize",
                     "--allow-partial")
            assert p.returncode == 1, p.stdout + p.stderr
            got_root = tree.snapshot(str(target), exclude={"lost+found", "srv"})
            assert tree.compare(lab.runs[-1].manifests[lab.root_disk], got_root) == []
            assert os.path.ismount(target / "srv")  # made, empty
        finally:
            umount_target(target)


def test_images_gone_mid_run_fail_that_dle_only(lab, tmp_path):
    """The preflight passed, then, while / is being restored, the /srv images
    vanish (a USB disk pulled, a slot emptied): /srv fails with its volume and
    file named, / is restored, exit 1, the report is written and the command
    that restores /srv once the volume is back is printed.  The run is held
    (SIGSTOP) while the files go, so nothing depends on timing."""
    import signal
    import sys
    vt = copy_vtapes(lab, tmp_path)
    gone = image_files(vt, lab.data_disk, 0) + image_files(vt, lab.data_disk, 1)
    target = tmp_path / "target"
    bin_ = os.path.join(os.path.dirname(sys.executable), "amdr-recover")
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        p = subprocess.Popen([bin_, "recover", "--bundle", str(lab.bundle), "--target",
                              str(target), "--vtapes", str(vt), "--map", f"{lab.loop}={new}",
                              "--yes", "--no-finalize", "--jobs", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL)
        try:
            out = []
            for line in p.stdout:
                out.append(line)
                if line.startswith(f"restoring localhost:{lab.root_disk} "):
                    p.send_signal(signal.SIGSTOP)  # / is restoring; /srv not begun
                    break
            else:
                raise AssertionError("".join(out) + p.stderr.read())
            started_srv = any(f"restoring localhost:{lab.data_disk}" in ln for ln in out)
            for f in gone:
                f.unlink()
            p.send_signal(signal.SIGCONT)
            rest, err = p.communicate(timeout=600)
            stdout = "".join(out) + rest
            assert not started_srv
            assert p.returncode == 1, stdout + err
            # the volume by label and slot, and the file the catalog named
            m = re.search(rf"FAILED localhost:{re.escape(lab.data_disk)}: volume (\S+) "
                          rf"\((\S+)\) has no file (\d+)", err)
            assert m, err
            assert (Path(m.group(2)) / f"{int(m.group(3)):05d}.localhost."
                    f"{lab.data_disk.replace('/', '_')}.0") in gone
            got = tree.snapshot(str(target), exclude={"lost+found", "srv"})
            assert tree.compare(lab.runs[-1].manifests[lab.root_disk], got) == []
            report = json.loads((tmp_path / "target.amdr" / "restore-report.json").read_text())
            assert [r["disk"] for r in report["restored"]] == [lab.root_disk]
            assert [e["disk"] for e in report["errors"]] == [lab.data_disk]
            assert f"--dle {lab.data_disk}" in stdout  # how to restore it once it is back
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            umount_target(target)
