"""The diskinit journal: an interrupted run continues instead of formatting again."""

import json

import pytest

from essentials.errors import CommandError
from essentials.runner import Result, Runner
from recovery.disks import journal as journal_mod
from recovery.disks import ptable
from recovery.disks.journal import Journal, attach
from recovery.disks.plan import plan_disks

from .test_disk_plan import ROOT_UUID, SWAP_UUID, efi_layout


def table_json(script: str) -> str:
    """What `sfdisk --json` prints for the table a script made."""
    head, parts = {}, []
    for ln in script.splitlines():
        if " : " in ln:
            node, _, rest = ln.partition(" : ")
            f = dict(kv.strip().split("=", 1) for kv in rest.split(",") if "=" in kv)
            parts.append({"node": node, "start": int(f["start"]), "size": int(f["size"])})
        elif ": " in ln:
            k, _, v = ln.partition(": ")
            head[k] = v
    pt = {"label": head["label"], "id": head.get("label-id", "0x0"), "partitions": parts}
    return json.dumps({"partitiontable": pt})


class Machine(Runner):
    """Records what runs; blkid answers with what mkfs last made, sfdisk with the
    table it last wrote; can fail on cue."""

    def __init__(self, fail_on=None):
        super().__init__(dry_run=False)
        self.calls: list[str] = []
        self.fail_on = fail_on
        self.uuids: dict[str, str] = {}
        self.tables: dict[str, str] = {}  # disk -> sfdisk --json of its table

    def run(self, argv, **kw):
        line = " ".join(argv)
        if self.fail_on and self.fail_on in line:
            raise CommandError(line, 1, "interrupted", kw.get("what"))
        if argv[0] == "blkid":
            dev = argv[-1]
            if dev in self.tables and "-s" not in argv:
                pt = json.loads(self.tables[dev])["partitiontable"]
                return Result(argv, 0, f"PTTYPE={pt['label']}\n".encode())
            out = self.uuids.get(dev, "")
            return Result(argv, 0 if out or "-s" in argv else 2, out.encode())
        if argv[:2] == ["sfdisk", "--json"]:
            t = self.tables.get(argv[-1])
            return Result(argv, 0 if t else 1, (t or "").encode())
        self.calls.append(line)
        if argv[0] == "sfdisk":
            self.tables[argv[-1]] = table_json(kw["input"].decode())
        elif argv[0] == "wipefs":
            self.tables.pop(argv[-1], None)
        if argv[0] == "mkfs.vfat":  # blkid shows the volume id as 1A2B-3C4D
            vid = argv[argv.index("-i") + 1]
            self.uuids[argv[-1]] = f"{vid[:4]}-{vid[4:]}"
        elif argv[0].startswith("mkfs") or argv[0] == "mkswap":
            uuid = argv[argv.index("-U") + 1] if "-U" in argv else ""
            for a in argv:  # mkfs.xfs -m uuid=X
                if a.startswith("uuid=") or ",uuid=" in a:
                    uuid = a.split("uuid=", 1)[1].split(",")[0]
            self.uuids[argv[-1]] = uuid
        return Result(argv, 0)


@pytest.fixture(autouse=True)
def no_device_nodes(monkeypatch):
    monkeypatch.setattr(ptable.devnodes, "wait_for", lambda paths, timeout=10: [])


def make_plan(tmp_path, layout=None, new="/dev/vdb", mapping=None):
    actions = plan_disks(layout or efi_layout(), mapping or {"/dev/sda": new}, {},
                         str(tmp_path / "t"))
    j = attach(actions, tmp_path / "t.amdr" / "diskinit.journal")
    return actions, j


def apply_all(actions, runner):
    for a in actions:
        a.apply(runner)


def lines(path):
    return [json.loads(ln) for ln in path.read_text().splitlines()]


def test_completed_actions_are_journaled_with_their_fingerprint(tmp_path):
    actions, j = make_plan(tmp_path)
    m = Machine()
    apply_all(actions, m)
    got = lines(j.path)
    assert got[0] == {"version": 1, "plan": journal_mod.plan_id(actions)}
    # preflight and mounts are not journaled: they run again on every run
    assert [(e["id"], e["hash"]) for e in got[1:]] == [
        (a.id, a.fingerprint()) for a in actions
        if a.id not in ("preflight", "mount-fs1", "mount-fs0")]
    assert j.completed == ["wipe-disk0", "ptable-disk0", "format-fs0", "format-fs1",
                           "format-fs2"]


def test_interrupted_run_continues_where_it_stopped(tmp_path):
    actions, j = make_plan(tmp_path)
    first = Machine(fail_on=f"-U {ROOT_UUID}")  # the root mkfs is interrupted
    with pytest.raises(CommandError):
        apply_all(actions, first)
    assert j.completed == ["wipe-disk0", "ptable-disk0", "format-fs0"]
    assert any(c.startswith("mkfs.vfat") for c in first.calls)

    # a new process: the same plan made again, a fresh journal object
    actions, j = make_plan(tmp_path)
    second = Machine()
    second.uuids = dict(first.uuids)  # the disk still holds what the first run made
    second.tables = dict(first.tables)
    apply_all(actions, second)
    assert second.calls == [
        "partx -u /dev/vdb",  # the skipped table's partitions are made known again
        f"mkfs.ext4 -F -q -U {ROOT_UUID} -L root /dev/vdb2",
        f"mkswap -f -U {SWAP_UUID} /dev/vdb3",
        f"mkdir -p {tmp_path}/t", f"mount -t ext4 /dev/vdb2 {tmp_path}/t",
        f"mkdir -p {tmp_path}/t/boot/efi", f"mount -t vfat /dev/vdb1 {tmp_path}/t/boot/efi"]
    assert not any(c.startswith(("wipefs", "sfdisk", "mkfs.vfat")) for c in second.calls)
    assert j.completed == ["wipe-disk0", "ptable-disk0", "format-fs0", "format-fs1",
                           "format-fs2"]

    # and a third run has nothing left to make
    actions, j = make_plan(tmp_path)
    third = Machine()
    third.uuids = dict(second.uuids)
    third.tables = dict(second.tables)
    apply_all(actions, third)
    assert [c for c in third.calls if not c.startswith(("mkdir", "mount"))] == [
        "partx -u /dev/vdb"]


def test_a_changed_action_runs_again_and_so_does_everything_after_it(tmp_path):
    actions, j = make_plan(tmp_path)
    m = Machine()
    apply_all(actions, m)
    # the person edits nothing, but the plan changed: the vfat label differs
    layout = efi_layout()
    layout["filesystems"][0]["label"] = "ESP"
    actions, j = make_plan(tmp_path, layout)
    again = Machine()
    again.uuids = dict(m.uuids)
    again.tables = dict(m.tables)
    apply_all(actions, again)
    made = [c.split()[0] for c in again.calls if not c.startswith(("mkdir", "mount"))]
    # a plan of other actions is another plan: its journal is set aside, all runs
    assert made == ["wipefs", "sfdisk", "partx", "mkfs.vfat", "mkfs.ext4", "mkswap"]
    assert len(list(j.path.parent.glob("diskinit.journal.stale-*"))) == 1


def test_journal_entries_must_match_in_order(tmp_path):
    actions, _ = make_plan(tmp_path)
    m = Machine()
    j = Journal(tmp_path / "j", actions)
    for a in actions:
        a.journal = j
    apply_all(actions, m)
    # forge: the journal says format-fs1 was done with another fingerprint
    text = j.path.read_text().splitlines()
    entry = json.loads(text[4])
    assert entry["id"] == "format-fs1"
    entry["hash"] = "0" * 32
    text[4] = json.dumps(entry)
    j.path.write_text("\n".join(text) + "\n")
    j2 = Journal(tmp_path / "j", actions)
    for a in actions:
        a.journal = j2
    again = Machine()
    again.uuids = dict(m.uuids)
    again.tables = dict(m.tables)
    apply_all(actions, again)
    made = [c.split()[0] for c in again.calls if not c.startswith(("mkdir", "mount"))]
    assert made == ["partx", "mkfs.ext4", "mkswap"]  # from format-fs1 on
    assert [e["id"] for e in lines(j2.path)[1:]] == j2.completed == [
        "wipe-disk0", "ptable-disk0", "format-fs0", "format-fs1", "format-fs2"]


def test_work_no_longer_there_is_made_again(tmp_path):
    actions, j = make_plan(tmp_path)
    m = Machine()
    apply_all(actions, m)
    actions, j = make_plan(tmp_path)
    again = Machine()
    again.uuids = dict(m.uuids)
    again.tables = dict(m.tables)
    again.uuids["/dev/vdb2"] = "something-else"  # someone ran mkfs by hand
    apply_all(actions, again)
    made = [c.split()[0] for c in again.calls if not c.startswith(("mkdir", "mount"))]
    assert made == ["partx", "mkfs.ext4", "mkswap"]


def test_another_mapping_is_another_plan(tmp_path):
    actions, j = make_plan(tmp_path)
    apply_all(actions, Machine())
    actions, j = make_plan(tmp_path, new="/dev/vdc")
    m = Machine()
    apply_all(actions, m)
    assert m.calls[0] == "wipefs --all --force /dev/vdc"
    assert [e["id"] for e in lines(j.path)[1:]][0] == "wipe-disk0"


def test_dry_run_writes_no_journal(tmp_path):
    actions, j = make_plan(tmp_path)
    apply_all(actions, Runner(dry_run=True))
    assert not j.path.exists() and j.completed == []


def test_unreadable_journal_is_set_aside(tmp_path):
    actions, _ = make_plan(tmp_path)
    path = tmp_path / "t.amdr" / "diskinit.journal"
    path.parent.mkdir()
    path.write_text("not json\n")
    j = Journal(path, actions)
    assert j.completed == [] and path.exists()  # only looking (amdr-recover plan) moves nothing
    for a in actions:
        a.journal = j
    apply_all(actions, Machine())
    assert sorted(p.name.split("-")[0] for p in path.parent.iterdir()) == [
        "diskinit.journal", "diskinit.journal.stale"]


def done_then_again(tmp_path, uuids=None, tables=None, **plan):
    """A complete diskinit, then a new process with the same plan on a machine
    whose disks hold what the first left (or what a test says they hold now)."""
    actions, _ = make_plan(tmp_path, **plan)
    first = Machine()
    apply_all(actions, first)
    actions, j = make_plan(tmp_path, **plan)
    again = Machine()
    again.uuids = dict(first.uuids) if uuids is None else uuids
    again.tables = dict(first.tables) if tables is None else tables
    return first, actions, j, again


def test_a_disk_wiped_since_is_partitioned_again_not_trusted_to_the_journal(tmp_path):
    """diskinit, then `wipefs -a` of the disk by hand, then diskinit again: the
    journal says wipe and table done, but the disk is blank."""
    m, actions, j, again = done_then_again(tmp_path, uuids={}, tables={})
    apply_all(actions, again)
    made = [c.split()[0] for c in again.calls]
    assert made[:4] == ["sfdisk", "partx", "mkfs.vfat", "mkfs.ext4"]  # blank: no wipe needed
    assert "mkswap" in made
    assert again.tables["/dev/vdb"] == m.tables["/dev/vdb"]


def test_another_table_on_the_disk_now_is_wiped_again(tmp_path):
    """The disk was swapped (or partitioned by hand) since: the wipe runs again too."""
    other = table_json("label: dos\nlabel-id: 0x1234\n/dev/vdb1 : start=2048, size=4096, "
                       "type=83\n")
    m, actions, j, again = done_then_again(tmp_path, tables={"/dev/vdb": other})
    apply_all(actions, again)
    made = [c.split()[0] for c in again.calls]
    assert made[:3] == ["wipefs", "sfdisk", "partx"]


def test_restart_sets_the_journal_aside_and_runs_everything(tmp_path):
    m, actions, j, again = done_then_again(tmp_path)
    assert j.restart() is not None
    apply_all(actions, again)
    made = [c.split()[0] for c in again.calls]
    assert made[:3] == ["wipefs", "sfdisk", "partx"]
    assert [p.name for p in j.path.parent.glob("diskinit.journal.restarted-*")]


def test_a_whole_disk_filesystem_is_not_wiped_again(tmp_path):
    """A disk holding one XFS on the whole of it (no table): a complete run's re-run
    must find it there and make nothing, not wipe it and everything after it."""
    from .test_disk_plan_stacks import two_disks_layout
    mapping = {"/dev/sda": "/dev/vdb", "/dev/sdb": "/dev/vdc"}
    m, actions, j, again = done_then_again(tmp_path, layout=two_disks_layout(),
                                           mapping=mapping)
    assert any(c.startswith("mkfs.xfs") and c.endswith("/dev/vdc") for c in m.calls)
    apply_all(actions, again)
    made = [c for c in again.calls if not c.startswith(("mkdir", "mount", "partx"))]
    assert made == []
    # and when that XFS is gone, the disk is blank: made again from there
    m, actions, j, again = done_then_again(tmp_path / "2", layout=two_disks_layout(),
                                           mapping=mapping)
    again.uuids.pop("/dev/vdc")
    apply_all(actions, again)
    assert [c.split()[0] for c in again.calls if "/dev/vdc" in c][:1] == ["mkfs.xfs"]
