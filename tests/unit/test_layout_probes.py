"""Issue 11, item 5: a probe that could not look is not a device with nothing on it.

The tool outputs are the ones util-linux 2.38.1 gives on this machine (a loop
device opened as `nobody`, a device with ext4 and a swap signature, a device
with no table)."""


import pytest
import yaml

from essentials import agent, config
from essentials.collectors import layout as layout_collector
from essentials.collectors.base import Context
from essentials.layout import collect, probes
from essentials.runner import Result, Runner, display

from .test_layout_gather import DISK, responses

EPERM = b"blkid: error: /dev/sdz1: Operation not permitted\n"
AMBIVALENT = (b"blkid: /dev/sdz4: ambivalent result (probably more filesystems on the "
              b"device, use wipefs(8) to see more details)\n")


def test_blkid_nothing_found_is_exit_2_without_a_word():
    assert probes.blkid_failure(2, "", "", exists=True) is None
    assert probes.blkid_failure(0, "TYPE=ext4\n", "", exists=True) is None


def test_blkid_that_cannot_open_the_device_is_a_failure():
    why = probes.blkid_failure(2, "", EPERM.decode(), exists=True)
    assert why == "exit 2: blkid: error: /dev/sdz1: Operation not permitted"


def test_blkid_is_silent_about_a_missing_node_so_we_look():
    assert probes.blkid_failure(2, "", "", exists=False) == "the device node does not exist"


def test_blkid_ambivalent_result_is_a_failure():
    why = probes.blkid_failure(8, "", AMBIVALENT.decode(), exists=True)
    assert why.startswith("more than one signature on it (blkid: /dev/sdz4: ambivalent")


def test_sfdisk_no_table_is_not_a_failure_but_cannot_open_is():
    assert probes.sfdisk_failure(
        1, "", "sfdisk: /dev/sdz: does not contain a recognized partition table\n") is None
    assert probes.sfdisk_failure(1, "", "sfdisk: cannot open /dev/sdz: Permission denied\n") \
        == "exit 1: sfdisk: cannot open /dev/sdz: Permission denied"


def test_the_message_names_each_device_and_what_to_do():
    msg = probes.failure_message(["/dev/sda1: blkid -p exit 2: blkid: error: /dev/sda1: "
                                  "Operation not permitted",
                                  "/dev/sdb: blkid -p more than one signature on it (x)"])
    assert msg.startswith("could not probe 2 devices, so what is on them would be missing "
                          "from the layout: /dev/sda1: blkid -p exit 2")
    assert "run amdr-essentials as root on the host itself" in msg
    assert "wipefs" in msg
    many = probes.failure_message([f"/dev/sd{c}: x" for c in "abcdefgh"])
    assert "/dev/sdf: x, and 2 more" in many and "/dev/sdg" not in many


def _machine(tmp_path, monkeypatch, **canned):
    monkeypatch.setattr(collect, "have_tool", lambda t: t != "efibootmgr")
    monkeypatch.setattr(collect, "SYS_EFI", tmp_path / "none")
    monkeypatch.setattr(collect, "BY_ID", tmp_path / "none")
    (tmp_path / "swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n")
    monkeypatch.setattr(collect, "PROC_SWAPS", tmp_path / "swaps")
    r = responses()
    r.update(canned)
    out = tmp_path / "bundle"
    out.mkdir()
    return Runner(dry_run=True, responses=r), out


def test_a_device_blkid_cannot_open_fails_the_layout_collector(tmp_path, monkeypatch):
    """The host of the report: the ext4 root was there, blkid could not open it."""
    runner, out = _machine(tmp_path, monkeypatch, **{
        display(["blkid", "-p", "-o", "export", f"{DISK}1"]): Result([], 2, b"", EPERM)})
    ctx = Context(runner, out, {"disks": [DISK]}, "/", tmp_path / "etc")
    with pytest.raises(collect.ProbeFailed) as e:
        layout_collector.collect(ctx)
    assert "/dev/sdz1: blkid -p exit 2: blkid: error: /dev/sdz1: Operation not permitted" \
        in str(e.value)
    assert not (out / "layout.yaml").exists()
    # through the agent: the collector is failed and named, not "ok, filesystems=0"
    cfg = config.validate({"gpg": {"recipients": ["x"], "signer": "y"},
                           "collect": {"layout": {"disks": [DISK]}}})
    st = agent.collect_all(cfg, runner, out, only=["layout"], etc=tmp_path / "etc")
    assert st["layout"]["status"] == "failed"
    assert "Operation not permitted" in st["layout"]["error"]


def test_an_unreadable_partition_table_fails_the_layout_collector(tmp_path, monkeypatch):
    runner, out = _machine(tmp_path, monkeypatch, **{
        display(["sfdisk", "--json", DISK]): Result(
            [], 1, b"", b"sfdisk: cannot open /dev/sdz: Operation not permitted\n")})
    g = collect.Gatherer(runner, out / "raw", tmp_path / "etc")
    with pytest.raises(collect.ProbeFailed, match=r"/dev/sdz: sfdisk --json exit 1: sfdisk: "
                                                  r"cannot open /dev/sdz"):
        g.run([DISK])


def test_a_disk_without_a_table_is_still_probed_whole(tmp_path, monkeypatch):
    runner, out = _machine(tmp_path, monkeypatch, **{
        display(["sfdisk", "--json", DISK]): Result(
            [], 1, b"", b"sfdisk: /dev/sdz: does not contain a recognized partition table\n"),
        display(["blkid", "-p", "-o", "export", DISK]): "TYPE=xfs\nUUID=w1\n"})
    g = collect.Gatherer(runner, out / "raw", tmp_path / "etc")
    assert g.run([DISK]) is not None
    assert g.blkid[DISK]["TYPE"] == "xfs"


def test_collect_root_reads_that_systems_fstab(tmp_path, monkeypatch):
    """Issue 11, item 6: `collect --root DIR` read the host's /etc/fstab."""
    runner, out = _machine(tmp_path, monkeypatch)
    host_etc, sysroot = tmp_path / "host-etc", tmp_path / "mnt"
    host_etc.mkdir()
    (host_etc / "fstab").write_text("UUID=host-root / ext4 defaults 0 1\n")
    (sysroot / "etc").mkdir(parents=True)
    (sysroot / "etc" / "fstab").write_text("UUID=e1 / ext4 errors=remount-ro 0 1\n")
    (sysroot / "etc" / "crypttab").write_text("cryptdata UUID=c1 none luks\n")
    ctx = Context(runner, out, {"disks": [DISK]}, str(sysroot), host_etc)
    layout_collector.collect(ctx)
    layout = yaml.safe_load((out / "layout.yaml").read_text())
    assert [(e["spec"], e["filesystem"]) for e in layout["fstab"]] == [("UUID=e1", "fs0")]
    assert [c["name"] for c in layout["crypttab"]] == ["cryptdata"]
    # on / it is still the given etc (what `run` and the tests point elsewhere)
    out2 = tmp_path / "b2"
    out2.mkdir()
    layout_collector.collect(Context(runner, out2, {"disks": [DISK]}, "/", host_etc))
    assert yaml.safe_load((out2 / "layout.yaml").read_text())["fstab"][0]["spec"] \
        == "UUID=host-root"
