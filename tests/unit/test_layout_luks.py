"""LUKS1 and LUKS2 headers (captured from cryptsetup 2.6.1) and crypttab -> layout.yaml."""

import copy
from pathlib import Path

import pytest

from essentials.errors import BundleError
from essentials.layout import rawdir, schema
from essentials.layout.luks import parse_luks_dump
from essentials.layout.normalise import normalise

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "layout-luks"
LUKS2 = "2b5e9d3c-6a1f-4e7b-9c8d-0f1e2d3c4b5a"
LUKS1 = "4c3b2a19-8d7e-4f6a-b5c4-d3e2f1a0b9c8"


@pytest.fixture(scope="module")
def raw():
    return rawdir.load(FIX)


@pytest.fixture(scope="module")
def layout(raw):
    return normalise(raw)


def test_luks2(layout):
    c = layout["luks"][0]
    assert (c["id"], c["device"], c["device_path"]) == ("luks0", "disk0p1", "/dev/loop0p1")
    assert (c["uuid"], c["version"], c["label"], c["subsystem"]) == (LUKS2, 2, "cryptroot",
                                                                     None)
    assert (c["cipher"], c["key_size"], c["hash"], c["pbkdf"]) == (
        "aes-xts-plain64", 512, "sha256", "argon2id")
    assert (c["data_offset"], c["sector_size"], c["keyslots"]) == (16 << 20, 512, [0, 1])
    # closed, named by crypttab; no header kept unless configured
    assert (c["name"], c["path"], c["open"], c["header_backup"]) == (
        "cryptroot", "/dev/mapper/cryptroot", False, None)


def test_luks1(layout):
    c = layout["luks"][1]
    assert (c["device"], c["uuid"], c["version"], c["label"]) == ("disk0p2", LUKS1, 1, None)
    assert (c["cipher"], c["key_size"], c["hash"], c["pbkdf"]) == (
        "aes-cbc-essiv:sha256", 256, "sha1", "pbkdf2")
    assert (c["data_offset"], c["keyslots"]) == (4096 * 512, [0])
    assert c["name"] == "cryptold"  # crypttab names it by device path


def test_containers_are_members_in_filesystems(layout):
    assert [(f["device"], f["type"], f["uuid"], f["label"]) for f in layout["filesystems"]] == [
        ("disk0p1", "crypto_LUKS", LUKS2, "cryptroot"), ("disk0p2", "crypto_LUKS", LUKS1, None)]


def test_crypttab(layout):
    assert layout["crypttab"] == [
        {"name": "cryptroot", "device": f"UUID={LUKS2}", "keyfile": None,
         "options": "luks,discard", "luks": "luks0"},
        {"name": "cryptold", "device": "/dev/loop0p2", "keyfile": "/etc/keys/old.key",
         "options": "luks", "luks": "luks1"}]


def test_open_container_with_a_filesystem(raw):
    """Opened, lsblk shows its mapping as a crypt child; the fs inside is found."""
    r = copy.deepcopy(raw)
    part = r["lsblk"]["blockdevices"][0]["children"][0]
    part["children"] = [{"name": "cryptroot", "path": "/dev/mapper/cryptroot", "type": "crypt",
                         "size": 33554432}]
    r["blkid"]["/dev/mapper/cryptroot"] = {"TYPE": "ext4", "UUID": "cafe-0001"}
    r["luks_header"] = {"/dev/loop0p1": "luks-header-dev_loop0p1.img"}
    layout = normalise(r)
    c = layout["luks"][0]
    assert (c["name"], c["path"], c["open"]) == ("cryptroot", "/dev/mapper/cryptroot", True)
    assert c["header_backup"] == "layout/raw/luks-header-dev_loop0p1.img"
    f = layout["filesystems"][-1]
    assert (f["device"], f["device_path"], f["uuid"]) == ("luks0", "/dev/mapper/cryptroot",
                                                          "cafe-0001")
    schema.validate(layout)


def test_validate_crypttab_reference(layout):
    bad = copy.deepcopy(layout)
    bad["crypttab"][0]["luks"] = "luks9"
    with pytest.raises(BundleError, match="crypttab entry cryptroot refers to 'luks9'"):
        schema.validate(bad)


def test_parse_dump_without_keyslots():
    d = parse_luks_dump("LUKS header information\nVersion:       \t2\nUUID:          \tx\n"
                        "Label:         \t(no label)\n")
    assert (d["version"], d["uuid"], d["label"], d["cipher"], d["keyslots"]) == (
        2, "x", None, None, [])
