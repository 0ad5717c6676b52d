"""The harness itself: a guest boots with disks that carry serials, has the
kernel features this host lacks (device-mapper, md, vfat, btrfs), runs LVM,
MD RAID1 and LUKS for real, and reports output and exit status faithfully;
a command past its time is killed and reported; the project imports there."""

import json
import re

import pytest

from .guest import DiskSpec, Guest, GuestError, GuestTimeout

pytestmark = pytest.mark.vm

# One boot for everything (boot time dominates under TCG); "== NAME" lines
# split the output into sections; `set -e` makes any failure end the script
# early with a status other than the 3 it ends with on purpose.
STORAGE_SCRIPT = r"""
set -euo pipefail
section() { echo "== $1"; }

section lsblk
lsblk -J -o NAME,SIZE,SERIAL /dev/vda /dev/vdb

section modules
modprobe -a dm-mod dm-crypt raid1 btrfs vfat
ls /dev/mapper/control
cat /proc/mdstat

section filesystems
cat /proc/filesystems

section partitions
for d in /dev/vda /dev/vdb; do
    printf 'label: gpt\n,28M\n,\n' | sfdisk -q "$d"
done
udevadm settle
lsblk -rno NAME /dev/vda /dev/vdb

section lvm
pvcreate -q /dev/vda2
vgcreate -q amdrvg /dev/vda2
lvcreate -q -y -n lv0 -L 8M amdrvg
mkfs.ext4 -q /dev/amdrvg/lv0
section lvs
lvs --noheadings -o vg_name,lv_name,lv_size --units m amdrvg

section md
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 /dev/vda1 /dev/vdb1
mkfs.ext4 -q /dev/md0
cat /proc/mdstat
mdadm --detail /dev/md0 | grep -E 'Raid Level|Active Devices'

section luks
head -c 64 /dev/urandom > /tmp/key
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file /tmp/key /dev/vdb2
cryptsetup open --key-file /tmp/key /dev/vdb2 secret
mkfs.ext4 -q /dev/mapper/secret
mkdir -p /mnt/secret
mount /dev/mapper/secret /mnt/secret
echo "kept under LUKS" > /mnt/secret/note
umount /mnt/secret
cryptsetup close secret
cryptsetup open --key-file /tmp/key /dev/vdb2 again
mount -o ro /dev/mapper/again /mnt/secret
cat /mnt/secret/note
umount /mnt/secret
cryptsetup close again
cryptsetup luksDump /dev/vdb2 | grep -E '^Version'

section end
echo "stderr is kept apart" >&2
exit 3
"""


def sections(stdout: str) -> dict[str, str]:
    parts = re.split(r"^== (\w+)\n", stdout, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


@pytest.fixture(scope="module")
def storage_run(guest_image):
    disks = [DiskSpec(64, serial="amdr-disk-a"), DiskSpec(64, serial="amdr-disk-b")]
    guest = Guest(guest_image, disks)
    return guest.run(STORAGE_SCRIPT, timeout=300)


def test_exit_status_and_streams_come_back(storage_run):
    r = storage_run
    assert r.exit_code == 3, r.stderr[-3000:]
    assert "end" in sections(r.stdout)
    assert r.stderr.strip().endswith("stderr is kept apart")
    assert "amdr-vm: exit 3" in r.console_log
    assert 0 < r.boot_seconds < r.seconds


def test_disks_carry_their_serials(storage_run):
    devices = json.loads(sections(storage_run.stdout)["lsblk"])["blockdevices"]
    assert {d["name"]: (d["serial"], d["size"]) for d in devices} == {
        "vda": ("amdr-disk-a", "64M"), "vdb": ("amdr-disk-b", "64M")}


def test_kernel_has_what_this_host_lacks(storage_run):
    s = sections(storage_run.stdout)
    assert "/dev/mapper/control" in s["modules"]
    assert "Personalities : [raid1]" in s["modules"]
    filesystems = {line.split()[-1] for line in s["filesystems"].splitlines() if line.strip()}
    assert {"ext4", "btrfs", "vfat", "9p"} <= filesystems


def test_lvm_md_and_luks_work(storage_run):
    s = sections(storage_run.stdout)
    assert s["partitions"].split() == ["vda", "vda1", "vda2", "vdb", "vdb1", "vdb2"]
    assert s["lvs"].split() == ["amdrvg", "lv0", "8.00m"]
    assert re.search(r"md0 : active raid1 vd[ab]1\[\d\] vd[ab]1\[\d\]", s["md"])
    assert "Raid Level : raid1" in s["md"] and re.search(r"Active Devices : 2", s["md"])
    assert "kept under LUKS" in s["luks"]
    assert re.search(r"^Version:\s+2", s["luks"], re.M)


def test_a_command_past_its_timeout_is_killed_and_reported(guest_image):
    guest = Guest(guest_image, [])
    with pytest.raises(GuestTimeout) as caught:
        guest.run("echo started; sleep 600", timeout=3)
    e = caught.value
    assert "still running after 3 s" in str(e)
    assert e.stdout == "started\n"
    assert "amdr-vm: ready" in e.console_log and "amdr-vm: ready" in str(e)


def test_a_guest_that_dies_without_a_status_is_reported(guest_image):
    with pytest.raises(GuestError) as caught:
        Guest(guest_image, []).run("echo going; echo o > /proc/sysrq-trigger; sleep 60", timeout=60)
    e = caught.value
    assert not isinstance(e, GuestTimeout)
    assert "without an exit status" in str(e) and "sysrq: Power Off" in str(e)
    assert e.stdout == "going\n"


@pytest.fixture(scope="module")
def python_run(guest_image, tmp_path_factory):
    host = tmp_path_factory.mktemp("vm-share")
    (host / "in.txt").write_text("from the host\n")
    kept = host / "kept.img"
    guest = Guest(guest_image, [DiskSpec(16, path=kept, serial="amdr-kept")],
                  shares={"/mnt/host": host})
    script = (
        "python3 -c 'import sys; print(sys.version.split()[0]);"
        " import essentials.layout.normalise, recovery.disks.plan; print(\"ok\");"
        " import yaml, gnupg, paramiko, pexpect, urwid; print(\"deps ok\")'\n"
        "cat /mnt/host/in.txt > /mnt/host/out.txt\n"
        "echo 'written in the guest' | dd of=/dev/disk/by-id/virtio-amdr-kept bs=512 seek=2048 "
        "conv=fsync status=none\n")
    return guest.run(script, timeout=120), host, kept


def test_the_project_imports_with_debians_python(python_run):
    r, _, _ = python_run
    assert r.exit_code == 0, r.stderr
    version, *rest = r.stdout.splitlines()
    assert version.startswith("3.11.")
    assert rest == ["ok", "deps ok"]


def test_shares_and_kept_disks_reach_the_host(python_run):
    r, host, kept = python_run
    assert r.exit_code == 0, r.stderr
    assert (host / "out.txt").read_text() == "from the host\n"
    assert r.disks == [kept] and kept.stat().st_size == 16 << 20
    with open(kept, "rb") as f:
        f.seek(2048 * 512)
        assert f.read(21) == b"written in the guest\n"
