"""The spool of sealed bundles waiting for delivery, and the one-run-at-a-time lock."""

import json
import os
import stat

import pytest

from essentials.errors import AmdrError
from essentials.lock import Busy, RunLock
from essentials.spool import Spool, SpoolError

OLD = "web1-20261108T010203Z.amdr.gpg"
MID = "web1-20261115T010203Z.amdr.gpg"
NEW = "web1-20261122T010203Z.amdr.gpg"


def touch(spool: Spool, *names):
    for n in names:
        (spool.dir / n).write_bytes(b"sealed " + n.encode())


@pytest.fixture
def spool(tmp_path):
    s = Spool(tmp_path / "spool", keep=2)
    s.ensure()
    return s


# -- ensure ------------------------------------------------------------------

def test_ensure_creates_a_private_directory(tmp_path):
    s = Spool(tmp_path / "var" / "spool" / "amanda-dr")
    s.ensure()
    assert s.dir.is_dir()
    assert stat.S_IMODE(s.dir.stat().st_mode) == 0o700 & ~_umask()
    assert list(s.dir.iterdir()) == []  # the write probe is gone


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_ensure_is_idempotent(spool):
    spool.ensure()
    assert spool.dir.is_dir()


def test_ensure_unwritable_spool(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    s = Spool(blocker / "spool")
    with pytest.raises(SpoolError) as e:
        s.ensure()
    msg = str(e.value)
    assert msg.startswith(f"spool_dir {blocker / 'spool'} is not writable (Not a directory); "
                          f"no bundle was made.")
    assert "set spool_dir in the config" in msg
    assert isinstance(e.value, AmdrError)


# -- bundles -------------------------------------------------------------------

def test_bundles_oldest_first_ignoring_other_files(spool):
    touch(spool, NEW, OLD, MID)
    touch(spool, NEW + ".state", ".web1-20261129T010203Z.amdr.gpg.part", "notes.txt",
          "garbage.amdr.gpg")
    assert [p.name for p in spool.bundles()] == [OLD, MID, NEW]
    assert spool.bundles()[0] == spool.dir / OLD


def test_bundles_orders_by_time_not_by_host_name(spool):
    a = "zeta-20261101T000000Z.amdr.gpg"
    b = "alpha-20261102T000000Z.amdr.gpg"
    touch(spool, b, a)
    assert [p.name for p in spool.bundles()] == [a, b]


def test_bundles_empty(spool):
    assert spool.bundles() == []


def test_path_for(spool):
    assert spool.path_for(NEW) == spool.dir / NEW


# -- state ---------------------------------------------------------------------

def test_state_of_a_fresh_bundle(spool):
    touch(spool, NEW)
    b = spool.dir / NEW
    assert spool.state(b) == {"delivered": {}, "failures": {}}
    assert spool.pending(b, ["sftp:h", "mail:a"]) == ["sftp:h", "mail:a"]


def test_record_across_two_deliveries(spool):
    touch(spool, NEW)
    b = spool.dir / NEW
    spool.record(b, "sftp:h", True, "sftp://h/bundles/web1/" + NEW)
    spool.record(b, "mail:a", False, "connection refused")
    assert spool.pending(b, ["sftp:h", "mail:a"]) == ["mail:a"]
    assert spool.state(b) == {
        "delivered": {"sftp:h": "sftp://h/bundles/web1/" + NEW},
        "failures": {"mail:a": {"attempts": 1, "error": "connection refused"}},
    }
    # the state survives on disk, next to the bundle
    on_disk = json.loads((spool.dir / (NEW + ".state")).read_text())
    assert on_disk == spool.state(b)
    assert not list(spool.dir.glob(".*.tmp"))


def test_failure_increments_attempts_and_keeps_the_last_error(spool):
    touch(spool, NEW)
    b = spool.dir / NEW
    spool.record(b, "mail:a", False, "connection refused")
    spool.record(b, "mail:a", False, "552 message too large")
    assert spool.state(b)["failures"] == {
        "mail:a": {"attempts": 2, "error": "552 message too large"}}
    spool.record(b, "mail:a", True, "mailed to a")
    assert spool.state(b) == {"delivered": {"mail:a": "mailed to a"}, "failures": {}}
    assert spool.pending(b, ["mail:a"]) == []


def test_damaged_state_file_reads_as_fresh(spool):
    touch(spool, NEW)
    (spool.dir / (NEW + ".state")).write_text("{not json")
    assert spool.state(spool.dir / NEW) == {"delivered": {}, "failures": {}}


def test_remove_deletes_bundle_and_state(spool):
    touch(spool, NEW, MID)
    b = spool.dir / NEW
    spool.record(b, "sftp:h", True, "there")
    spool.remove(b)
    assert sorted(p.name for p in spool.dir.iterdir()) == [MID]
    spool.remove(b)  # already gone: no error


# -- prune ---------------------------------------------------------------------

def test_prune_keeps_the_newest(spool):
    touch(spool, OLD, MID, NEW)
    spool.record(spool.dir / OLD, "mail:a", False, "down")
    assert spool.prune() == [OLD]
    assert sorted(p.name for p in spool.dir.iterdir()) == [MID, NEW]


def test_prune_several(tmp_path):
    s = Spool(tmp_path / "s", keep=1)
    s.ensure()
    touch(s, NEW, OLD, MID)
    assert s.prune() == [OLD, MID]
    assert [p.name for p in s.bundles()] == [NEW]


def test_prune_nothing_to_drop(spool):
    touch(spool, MID, NEW)
    assert spool.prune() == []
    assert [p.name for p in spool.bundles()] == [MID, NEW]


# -- RunLock -------------------------------------------------------------------

def test_second_lock_is_busy_and_names_the_holder(tmp_path):
    path = tmp_path / "state" / "lock"
    with RunLock(path):
        assert path.read_text().startswith(f"pid {os.getpid()}, started ")
        with pytest.raises(Busy) as e:
            with RunLock(path):
                pytest.fail("a second run got the lock")
        msg = str(e.value)
        assert f"pid {os.getpid()}" in msg
        assert msg.startswith(f"another amdr-essentials run holds {path} (pid ")
        assert msg.endswith("; not starting a second one")
        assert isinstance(e.value, AmdrError)
    # released: a third run gets it
    with RunLock(path) as lock:
        assert lock.fd is not None
    assert path.read_text() == ""


def test_lock_file_is_private(tmp_path):
    path = tmp_path / "lock"
    with RunLock(path):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_lock_held_by_another_process_names_its_pid(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "lock"
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from essentials.lock import RunLock\n"
         f"with RunLock({str(path)!r}):\n"
         "    print('held', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    try:
        assert child.stdout.readline() == "held\n"
        with pytest.raises(Busy) as e:
            with RunLock(path):
                pass
        assert f"(pid {child.pid}, started " in str(e.value)
    finally:
        child.communicate("\n", timeout=10)
    assert child.returncode == 0
    with RunLock(path):
        pass


def test_bundles_ignores_a_name_with_an_impossible_time(spool):
    # a stray file must not stop every later run from delivering the spool
    touch(spool, NEW, "web1-20261340T250000Z.amdr.gpg")
    assert [p.name for p in spool.bundles()] == [NEW]


def test_a_bundles_runbook_goes_with_it_and_an_orphan_runbook_is_cleared(spool):
    touch(spool, OLD, NEW, "web1-20261108T010203Z.runbook.pdf.gpg",
          "web1-20261122T010203Z.runbook.pdf.gpg", "web1-20261101T010203Z.runbook.html",
          ".web1-20261122T010203Z.runbook.pdf.gpg.part")
    assert spool.bundles() == [spool.dir / OLD, spool.dir / NEW]  # runbooks are no bundles
    spool.ensure()  # the orphan (no bundle of 11-01) and the half-written one go
    assert sorted(p.name for p in spool.dir.iterdir()) == sorted(
        [OLD, NEW, "web1-20261108T010203Z.runbook.pdf.gpg",
         "web1-20261122T010203Z.runbook.pdf.gpg"])
    spool.remove(spool.dir / OLD)
    assert sorted(p.name for p in spool.dir.iterdir()) == sorted(
        [NEW, "web1-20261122T010203Z.runbook.pdf.gpg"])
