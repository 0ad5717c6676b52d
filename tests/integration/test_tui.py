"""The text UI (recovery/tui) on the real lab: driven by an answers file
without a terminal, and by keystrokes through tmux at 80x24 as a person
would; every DLE restored and compared with the lab's manifest."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.lab import scenario
from tests.lab.lab import AmandaLab, sh

from .helpers import (BIN, Tmux, amdr, blank_disk, differences, keys_fixture,
                      lab_after_two_runs, seal, umount_target)

pytestmark = pytest.mark.integration
PASS = "tui lab words"
ARTIFACTS = Path(os.environ.get("AMDR_ARTIFACTS", "/var/tmp/amdr-artifacts")) / "tui"


keys = keys_fixture(PASS)


@pytest.fixture(scope="module")
def lab(keys):
    with lab_after_two_runs(keys) as lab:
        yield lab


@contextlib.contextmanager
def medium(tmp_path, lab, keys, answers: dict | None):
    m = tmp_path / "medium"
    (m / "bundles").mkdir(parents=True)
    shutil.copy(lab.sealed, m / "bundles")
    shutil.copytree(keys.recovery_home, m / "keys", ignore=shutil.ignore_patterns("S.*"))
    (m / "pass").write_text(PASS + "\n")
    os.chmod(m / "pass", 0o600)
    if answers is not None:
        (m / "amdr-answers.yaml").write_text(yaml.safe_dump(answers))
    yield m


def size(lab):
    return os.path.getsize(lab.image) + (16 << 20)


def test_answers_file_without_a_terminal(lab, keys, tmp_path):
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", size(lab)) as new:
        ans = {"bundles": {"media": ["bundles"], "store": str(tmp_path / "store")},
               "host": "localhost", "unlock": {"gnupghome": "keys", "passphrase-file": "pass"},
               "disks": {"map": {lab.loop: new}}, "plan": {"vtapes": str(lab.vtapes)},
               "confirm": "localhost", "run": {"finalize": False, "target": str(target)},
               "summary": {"then": "wait"}}
        with medium(tmp_path, lab, keys, ans) as m:
            try:
                p = amdr("amdr-recover", "tui", "--answers", m / "amdr-answers.yaml",
                         "--store", tmp_path / "store")
                out = p.stdout + p.stderr
                assert p.returncode == 0, out
                assert differences(lab, target, run=-1) == {d: [] for d in lab.dle_dirs()}
            finally:
                umount_target(target)
    # the screens in order, each named, answered or passed
    for name in ("welcome: as proposed", "host: from the answers file",
                 "unlock: from the answers file", "confirm: from the answers file",
                 "run: amdr-recover recover exit 0", "summary: wait"):
        assert f"tui: {name}" in out, out
    assert "\"kind\": \"dle\", \"dle\": \"localhost:" in out and "\"state\": \"done\"" in out
    assert "0 decision(s) asked of a person" in out


def test_a_screen_without_an_answer_stops_before_any_wipe(lab, keys, tmp_path):
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", size(lab)) as new:
        ans = {"bundles": {"media": ["bundles"], "store": str(tmp_path / "store")},
               "host": "localhost", "unlock": {"gnupghome": "keys", "passphrase-file": "pass"},
               "disks": {"map": {lab.loop: new}}, "plan": {"vtapes": str(lab.vtapes)},
               "run": {"finalize": False, "target": str(target)}}
        with medium(tmp_path, lab, keys, ans) as m:
            p = amdr("amdr-recover", "tui", "--answers", m / "amdr-answers.yaml")
        assert p.returncode == 4, p.stdout + p.stderr
        assert "stopped at the confirm screen" in p.stderr
        assert sh(["blkid", "-p", new], check=False) == ""


def tui_in_tmux(session: str, tmp_path, m, target, shots: Path, vtapes=None) -> Tmux:
    """`amdr-recover tui` on the medium `m` in a new 80x24 tmux session; its
    exit status is printed as TUI-EXIT=N when it ends."""
    shutil.rmtree(shots, ignore_errors=True)
    cmd = (f"{BIN / 'amdr-recover'} tui --store {tmp_path / 'store'} --media {m / 'bundles'}"
           f" --gnupghome {m / 'keys'}" + (f" --vtapes {vtapes}" if vtapes else "")
           + f" --target {target} --no-finalize; echo TUI-EXIT=$?; sleep 600")
    return Tmux(session, cmd, shots)


def host_pass_map(t: Tmux, lab, new) -> None:
    """The first screens as a person goes through them: the host, the
    passphrase, the lab's disk mapped to the blank one."""
    t.wait("Pick the host")
    t.keys("Enter")
    t.wait("passphrase:")
    t.type(PASS)
    t.wait("map:")
    t.type(f"{lab.loop}={new}")


def vtapes_copy(lab, tmp_path) -> Path:
    """The lab's volumes copied, for a test that damages them."""
    vt = lab.base / f"vtapes-{tmp_path.name}"
    shutil.copytree(lab.vtapes, vt)
    subprocess.run(["chown", "-R", "backup:backup", str(vt)], check=True)
    return vt


def test_a_missing_tool_is_named_on_the_welcome_screen(lab, keys, tmp_path):
    """sfdisk hidden (a private mount namespace, /dev/null bound over it): the
    welcome screen stops and names it; F10 leaves before anything is done."""
    with medium(tmp_path, lab, keys, None) as m:
        inner = (f"mount --bind /dev/null {shutil.which('sfdisk')} && exec "
                 f"{BIN / 'amdr-recover'} tui --store {tmp_path / 'store'} --media "
                 f"{m / 'bundles'} --target {tmp_path / 'target'}")
        t = Tmux("amdr-tui-tool", f"unshare -m sh -c '{inner}'; echo TUI-EXIT=$?; sleep 600",
                 ARTIFACTS / "missing-tool")
        try:
            s = t.wait("MISSING OR BROKEN")
            assert "sfdisk (missing)" in s and "Go on" in s, s
            t.keys("F10")
            t.wait("TUI-EXIT=4")
        finally:
            t.close()


def test_a_person_at_the_keyboard(lab, keys, tmp_path):
    """Host picked, passphrase typed (once wrong), the disk mapped, a wrong host
    name at the confirmation (nothing touched), then the right one; the
    restore to the end; every DLE as it was.  The screens are kept."""
    target = tmp_path / "target"
    shots = ARTIFACTS / "keyboard"
    with blank_disk(tmp_path / "new.img", size(lab)) as new, \
            medium(tmp_path, lab, keys, None) as m:
        t = tui_in_tmux("amdr-tui-test", tmp_path, m, target, shots, lab.vtapes)
        try:
            s = t.wait("Pick the host")
            assert "localhost" in s and len(s.splitlines()) <= 24
            # the screens passed by their defaults are one key away: back to the welcome
            t.keys("Escape")
            t.wait("source:")  # the bundles screen
            t.keys("Escape")
            s = t.wait("disks here:")
            assert "tools checked" in s and "bundles: 1 host(s) found" in s
            t.keys("Enter")  # go on: the bundles screen is passed again
            t.wait("Pick the host")
            t.keys("Enter")
            t.wait("passphrase:")
            t.type("not the passphrase")
            s = t.wait("wrong passphrase: type it again")
            assert "not the passphrase" not in s and "*" not in s.split("passphrase:")[1][:5]
            t.type(PASS)
            s = t.wait("map:")  # another disk than the original's: the person maps it
            t.type(f"{lab.loop}={new}")
            s = t.wait("Type the host name (localhost)")
            assert new in s and "WIPED" in s
            assert "MB on the volumes, about" in s  # the estimate measured on the volumes
            t.type("web1")
            t.wait("'web1' is not localhost: nothing was touched")
            assert sh(["blkid", "-p", new], check=False) == ""
            t.type("localhost")
            s = t.wait("every DLE restored", timeout=300)
            assert "localhost:" in s or "mnt" in s
            t.keys("Enter")  # stay here
            t.wait("TUI-EXIT=0")
            assert differences(lab, target) == {d: [] for d in lab.dle_dirs()}
        finally:
            t.close()
            umount_target(target)
    shots_text = [p.read_text() for p in sorted(shots.glob("*.txt"))]
    assert len(shots_text) >= 10
    # nothing printed across the screens (notes and warnings go to the log, F2)
    assert not [t for t in shots_text if "note:" in t or "root's alone" in t]


def test_a_missing_volume_is_named_and_skip_restores_the_others(lab, keys, tmp_path):
    """An image of the dump DLE is gone before the run: the plan screen names
    it and offers to skip it; skipped, the other DLE is restored and the
    summary says what is missing."""
    from tests.lab import tree
    vt = vtapes_copy(lab, tmp_path)
    name = lab.data_disk.replace("/", "_")
    gone = sorted(vt.glob(f"slot*/0*.localhost.{name}.1"))
    assert gone, sorted(vt.rglob("*"))
    gone[0].unlink()
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", size(lab)) as new, \
            medium(tmp_path, lab, keys, None) as m:
        t = tui_in_tmux("amdr-tui-missing", tmp_path, m, target, ARTIFACTS / "missing-volume",
                        vt)
        try:
            host_pass_map(t, lab, new)
            s = t.wait("cannot be restored")
            assert f"localhost:{lab.data_disk}" in s and "has no file" in s
            assert "Skip" in s
            assert sh(["blkid", "-p", new], check=False) == ""  # nothing touched yet
            t.keys("Enter")  # skip it
            t.wait("Type the host name (localhost)")
            t.type("localhost")
            s = t.wait("NOT RESTORED", timeout=300)
            assert lab.data_disk in s and "exit 1" in s
            t.keys("Enter")
            t.wait("TUI-EXIT=1")
            got = tree.snapshot(str(target), exclude={"lost+found", "srv"})
            assert tree.compare(lab.runs[-1].manifests[lab.root_disk], got) == []
            assert os.path.ismount(target / "srv")  # made, empty
        finally:
            t.close()
            umount_target(target)


def test_a_dle_that_fails_during_the_run_is_asked_about(lab, keys, tmp_path):
    """An image whose header is sound and whose data is cut (the check before
    the wipe reads headers only): the run asks.  Retry while it is still cut
    asks again; a shell from the dialog, where the person puts the image
    back; retry: every DLE as it was.  Nothing else stopped meanwhile."""
    vt = vtapes_copy(lab, tmp_path)
    name = lab.data_disk.replace("/", "_")
    image = sorted(vt.glob(f"slot*/0*.localhost.{name}.1"))[0]
    saved = tmp_path / "image.saved"
    shutil.copy(image, saved)
    with open(image, "r+b") as f:
        f.truncate(32768 + 4096)
    target = tmp_path / "target"
    shots = ARTIFACTS / "failed-dle"
    with blank_disk(tmp_path / "new.img", size(lab)) as new, \
            medium(tmp_path, lab, keys, None) as m:
        t = tui_in_tmux("amdr-tui-failed", tmp_path, m, target, shots, vt)
        try:
            host_pass_map(t, lab, new)
            t.wait("Type the host name (localhost)")
            t.type("localhost")
            s = t.wait("question 1", timeout=300)
            assert f"localhost:{lab.data_disk}" in s and "was not restored" in s
            assert "Retry" in s and "Skip it" in s and "Open a shell" in s
            assert len(s.splitlines()) <= 24
            t.keys("Enter")  # retry: still cut, so asked again
            s = t.wait("question 2", timeout=180)
            assert f"localhost:{lab.data_disk}" in s and "was not restored" in s
            t.keys("Down", "Down", "Down", "Enter")  # open a shell
            t.wait("`exit` comes back")
            t.type(f"cp {saved} {image} && exit")
            s = t.wait("question 2")  # the same question, drawn again
            t.keys("Enter")  # retry, now that the image is whole
            s = t.wait("every DLE restored", timeout=300)
            t.keys("Enter")
            t.wait("TUI-EXIT=0")
            assert differences(lab, target) == {d: [] for d in lab.dle_dirs()}
        finally:
            t.close()
            umount_target(target)
    report = (target.parent / "target.amdr" / "restore-report.json").read_text()
    assert '"errors": []' in report


def test_stop_on_error_ends_the_run_where_it_failed(lab, keys, tmp_path):
    """`recover --on-error stop` without a terminal: the DLE whose image is cut
    fails, nothing after it starts, the run says it stopped (exit 1) and how
    to go on."""
    vt = vtapes_copy(lab, tmp_path)
    image = sorted(vt.glob(f"slot*/0*.localhost.{lab.root_disk.replace('/', '_')}.1"))[0]
    with open(image, "r+b") as f:  # the header whole, the data cut in its first block
        f.truncate(32768 + 700)
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", size(lab)) as new, \
            medium(tmp_path, lab, keys, None) as m:
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.sealed, "--gnupghome",
                     m / "keys", "--passphrase-file", m / "pass", "--target", target, "--map",
                     f"{lab.loop}={new}", "--vtapes", vt, "--yes", "--jobs", "1",
                     "--on-error", "stop", "--no-finalize")
        finally:
            umount_target(target)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "stopping, as asked" in out and "finalize not run: the recovery was stopped" in out
    # / failed; /srv waits for / and was never begun
    assert f"NOT RESTORED localhost:{lab.data_disk}: localhost:{lab.data_disk}: not " \
           f"restored: the recovery was stopped before it began" in out, out
    assert f"restoring localhost:{lab.data_disk}" not in out
    assert f"amdr-recover restore" in out  # the command that goes on from here


def test_recover_in_a_terminal_draws_a_line_per_dle(lab, keys, tmp_path):
    """`recover` typed in a terminal: a progress line per DLE that ends at 100%
    with its size, rate and ETA (tqdm); into a pipe, the plain lines only."""
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", size(lab)) as new, \
            medium(tmp_path, lab, keys, None) as m:
        argv = [BIN / "amdr-recover", "recover", "--bundle", lab.sealed, "--gnupghome",
                m / "keys", "--passphrase-file", m / "pass", "--target", target, "--map",
                f"{lab.loop}={new}", "--vtapes", lab.vtapes, "--no-finalize", "--yes",
                "--jobs", "1"]
        t = Tmux("amdr-cli-progress", " ".join(map(str, argv))
                 + "; echo CLI-EXIT=$?; sleep 600", ARTIFACTS / "cli-progress")
        try:
            s = t.wait("CLI-EXIT=", timeout=300)
            assert "CLI-EXIT=0" in s, s
            bars = [ln for ln in s.splitlines() if "%|" in ln]
            assert any(ln.startswith(f"{lab.data_disk} L1 2/2: 100%|") for ln in bars), s
            assert any(ln.startswith(f"...{lab.root_disk[-21:]} L1 2/2: 100%|")
                       for ln in bars), s
            assert all("ETA" in ln and "B/s" in ln for ln in bars), bars
        finally:
            t.close()
            umount_target(target)
        p = amdr(*map(str, argv[:-2]), "--restart", "--jobs", "1")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "%|" not in p.stdout and "restoring localhost:" in p.stdout
        umount_target(target)


def test_the_office_drives_the_recovery_after_approval(lab, keys, tmp_path):
    """Remote assist in the UI: the engineer calls the office (F9); the office,
    through the jump host, sees the host list and its keys do nothing; the
    engineer lets it type (F9); the office picks the host, types the
    passphrase, maps the disk, confirms, and the restore runs to its end; the
    engineer drops it (F9).  The report names who came and what they could do."""
    import shlex
    from .test_assist import site
    target = tmp_path / "target"
    with site(tmp_path) as s, blank_disk(tmp_path / "new.img", size(lab)) as new, \
            medium(tmp_path, lab, keys, None) as m:
        opts = (f"--settings {s.settings} --sshd-port {s.live.port} --host-key-pub "
                f"{s.live.host_key_pub}")
        cmd = (f"{BIN / 'amdr-recover'} tui --store {tmp_path / 'store'} --media "
               f"{m / 'bundles'} --gnupghome {m / 'keys'} --vtapes {lab.vtapes} --target "
               f"{target} --no-finalize --assist {shlex.quote(opts)} --assist-state {s.state}"
               f"; echo TUI-EXIT=$?; sleep 600")
        eng = Tmux("amdr-tui-assist", cmd, ARTIFACTS / "assist-engineer")
        office = None
        try:
            eng.wait("Pick the host")
            eng.keys("F9")
            eng.wait("Remote assist is off")
            eng.keys("Enter")  # call the office
            s.wait_status("connected")
            office = Tmux("amdr-tui-office", s.office_ssh(s.office_key) + "; sleep 600")
            seen = office.wait("Pick the host", timeout=30)
            assert "localhost" in seen
            s.wait_status("alice@office (watching)")
            office.keys("Enter")  # read-only: nothing happens
            time.sleep(2)
            assert "Pick the host" in eng.screen()
            eng.keys("F9")
            eng.wait("Let the office type")
            eng.keys("Enter")
            s.wait_status("alice@office (may type)")
            office.keys("Enter")                                   # the host
            office.wait("passphrase:")
            office.keys("-l", PASS)
            office.keys("Enter")
            office.wait("map:")
            office.keys("-l", f"{lab.loop}={new}")
            office.keys("Enter")
            office.wait("Type the host name (localhost)")
            office.keys("-l", "localhost")
            office.keys("Enter")
            eng.wait("every DLE restored", timeout=300)
            (ARTIFACTS / "assist-office.txt").write_text(office.screen())
            eng.keys("F9")
            eng.wait("Drop the office")
            eng.keys("Down", "Enter")
            office.wait("closed", timeout=30)
            eng.keys("Enter")  # stay here
            eng.wait("TUI-EXIT=0")
            assert differences(lab, target) == {d: [] for d in lab.dle_dirs()}
        finally:
            eng.close()
            if office:
                office.close()
            from .test_assist import stop_calls
            stop_calls(s.state)
            umount_target(target)
    report = (target.parent / "target.amdr" / "restore-report.json").read_text()
    import json as _json
    kinds = [e["event"] for e in _json.loads(report)["assist"]]
    assert "connect" in kinds and "approved" in kinds, kinds


def test_three_decisions_when_the_disks_match(keys, tmp_path):
    """The issue's goal: the bundle on a medium and a disk that matches (the
    lost disk itself, blank now): a person picks the host, types the
    passphrase and the host name, and nothing else; every DLE as it was."""
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab2:
        scenario.initial(lab2.mnt, lab2.data_mnt)
        lab2.backup(expect=0)
        lab2.sealed = seal(lab2, keys)
        lab2.destroy_disk()
        target = tmp_path / "target"
        with medium(tmp_path, lab2, keys, None) as m:
            t = tui_in_tmux("amdr-tui-three", tmp_path, m, target,
                            ARTIFACTS / "three-decisions")
            try:
                t.wait("Pick the host")
                t.keys("Enter")                                  # 1: the host
                t.wait("passphrase:")
                t.type(PASS)                                     # 2: the passphrase
                s = t.wait("Type the host name (localhost)")     # the disks matched by
                assert f"{lab2.loop}" in s                       # themselves: no stop
                t.type("localhost")                              # 3: the host name
                s = t.wait("every DLE restored", timeout=300)
                # the summary: a row per DLE with its files, each step's seconds
                assert "files" in s and "steps: diskinit" in s and "restore " in s, s
                rows = [ln.split() for ln in s.splitlines() if ln.split()[:1] and
                        ln.split()[0] in (lab2.root_disk[-22:], lab2.data_disk[-22:])]
                assert len(rows) == 2 and all(int(r[2]) > 0 for r in rows), s
                t.keys("Enter")
                s = t.wait("TUI-EXIT=0")
                assert "3 decision(s) asked of a person" in s
                assert differences(lab2, target, run=-1) == {d: [] for d in lab2.dle_dirs()}
            finally:
                t.close()
                umount_target(target)
