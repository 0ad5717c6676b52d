"""A disk the configuration names that is gone is said plainly, not as lsblk's exit 32."""

import pytest

from essentials.layout.collect import DiskMissing, missing_disks


def test_missing_and_not_a_block_device(tmp_path):
    plain = tmp_path / "disk.img"
    plain.write_bytes(b"")
    with pytest.raises(DiskMissing) as e:
        missing_disks(["/dev/null-no-such-disk", str(plain)])
    msg = str(e.value)
    assert msg.startswith("disk /dev/null-no-such-disk does not exist; "
                          f"disk {plain} is not a block device")
    assert "attach it, or name the disks this host has now" in msg
    assert "lsblk" not in msg


def test_block_devices_pass():
    import os
    import stat
    blocks = [f"/dev/{n}" for n in os.listdir("/dev")
              if stat.S_ISBLK(os.stat(f"/dev/{n}").st_mode)][:2]
    assert blocks, "no block device in /dev to check against"
    missing_disks(blocks)
