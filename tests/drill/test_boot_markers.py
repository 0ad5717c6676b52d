"""The drill's marker lines parsed into data (pure: no qemu)."""

from .boot import Booted, parse_markers

CONSOLE = """\
[   12.3] systemd[1]: Reached target multi-user.target
amdr-drill-job: started 20.1
AMDR-JOB exit=0
AMDR-BOOT-OK host=drill-a root=/dev/vda2
AMDR-SWAP dev=/dev/vda4 size=511M uuid=0e6f2a1b-3c4d-4e5f-a6b7-c8d9e0f1a2b3
AMDR-MOUNT target=/ source=/dev/vda2 fstype=ext4 uuid=5d1f3c2a-0b4e-4c6d-9a7e-1f2e3d4c5b6a
[   30.1] random kernel noise AMDR-MOUNT target=/srv source=/dev/vda3 fstype=xfs uuid=8a9b0c1d
AMDR-NET dev=ens3 addr=10.0.2.15/24 mac=52:54:00:d1:00:0a
AMDR-LINK dev=ens3 mac=52:54:00:d1:00:0a state=up
AMDR-STATE system=degraded failed=ssh.service,foo.mount,
AMDR-UPTIME 26.09
AMDR-KERNEL 6.1.0-50-amd64 cmdline=BOOT_IMAGE=/boot/vmlinuz root=UUID=5d1f ro console=ttyS0,115200n8
AMDR-BOOT-END
"""


def test_a_complete_marker_block():
    f = parse_markers(CONSOLE)
    assert f["ok"] and f["complete"]
    assert (f["host"], f["root"]) == ("drill-a", "/dev/vda2")
    assert [m["target"] for m in f["mounts"]] == ["/", "/srv"]
    assert f["mounts"][1] == {"target": "/srv", "source": "/dev/vda3", "fstype": "xfs",
                              "uuid": "8a9b0c1d"}
    assert f["swaps"] == [{"dev": "/dev/vda4", "size": "511M",
                           "uuid": "0e6f2a1b-3c4d-4e5f-a6b7-c8d9e0f1a2b3"}]
    assert f["net"] == [{"dev": "ens3", "addr": "10.0.2.15/24", "mac": "52:54:00:d1:00:0a"}]
    assert f["links"][0]["state"] == "up"
    assert f["state"] == "degraded" and f["failed_units"] == ["ssh.service", "foo.mount"]
    assert f["uptime"] == 26.09 and f["kernel"] == "6.1.0-50-amd64"
    assert f["cmdline"].endswith("console=ttyS0,115200n8") and "root=UUID=5d1f" in f["cmdline"]
    assert f["job_exit"] == 0


def test_no_marker_and_a_truncated_block():
    assert parse_markers("SeaBIOS\nBooting from Hard Disk...\n")["ok"] is False
    f = parse_markers("AMDR-BOOT-OK host=h root=/dev/sda2\nAMDR-SWAP none\nAMDR-MOUNT target=/ "
                      "source=/dev/sda2 fstype=ext4 uuid=u\n")
    assert f["ok"] and not f["complete"] and f["swaps"] == [] and len(f["mounts"]) == 1
    assert f["state"] is None and f["failed_units"] == []


def test_a_second_boot_replaces_the_first_account():
    text = CONSOLE + "AMDR-BOOT-OK host=drill-a root=/dev/sda2\nAMDR-MOUNT target=/ " \
                     "source=/dev/sda2 fstype=ext4 uuid=u\n"
    f = parse_markers(text)
    assert f["root"] == "/dev/sda2" and len(f["mounts"]) == 1 and not f["complete"]


def test_explain_names_what_is_missing():
    b = Booted(ok=False, seconds=None, console="SeaBIOS\nNo bootable device.\n")
    assert "NO BOOT" in b.explain() and "No bootable device" in b.explain()
    f = parse_markers(CONSOLE)
    b = Booted(ok=True, seconds=42.0, host=f["host"], root=f["root"], mounts=f["mounts"],
               swaps=f["swaps"], net=f["net"], failed_units=f["failed_units"], console=CONSOLE)
    text = b.explain()
    assert "booted in 42.0 s" in text and "/srv=/dev/vda3(xfs)" in text
    assert "ssh.service" in text and b.mountpoints == ["/", "/srv"]


STUCK = """\
Begin: Running /scripts/local-block ... mdadm: No devices listed in conf file were found.
done.
Gave up waiting for root file system device.  Common problems:
ALERT!  UUID=3b666b74-9b57-4c88-a078-a49d17be6e4c does not exist.  Dropping to a shell!
(initramfs) """


def test_a_boot_stuck_in_the_initramfs_is_a_dead_end_with_its_alert():
    from .boot import alerts, dead_end
    assert dead_end(STUCK) == "dropped to the initramfs shell"
    assert alerts(STUCK) == ["ALERT!  UUID=3b666b74-9b57-4c88-a078-a49d17be6e4c does not exist."
                             "  Dropping to a shell!"]
    assert dead_end(CONSOLE) is None and alerts(CONSOLE) == []
    assert dead_end("SeaBIOS\nNo bootable device.  Retrying in 60 seconds.") is not None
