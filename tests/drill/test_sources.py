"""The boot drill's source systems (tests/drill/systems.py), built or found in the cache.

Cold, each layout takes minutes (a tree, an install in the VM guest, a first
boot with a real amdump under TCG); cached, the checks read files only.  Each
source must carry a bundle whose layout.yaml describes what was built, a
level-0 dump of every filesystem, and a first boot that reached the marker
with every mount and swap active.
"""

from __future__ import annotations

import pytest

from .systems import ADDRESS, LAYOUTS, source_system

pytestmark = pytest.mark.vm

BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def source(request):
    return source_system(request.param)


@pytest.fixture(scope="module")
def layout(source):
    from recovery.bundles import open_any
    bundle = open_any(source.bundle, home=str(source.gnupghome), interactive=False)
    assert bundle.host == source.host
    return bundle.load_yaml("layout.yaml"), bundle


def _fs(layout, mountpoint):
    return next((f for f in layout["filesystems"] if f.get("mountpoint") == mountpoint), None)


def _types(disk):
    return [p["type"].upper() for p in disk["ptable"]["partitions"]]


def test_layout_yaml_describes_the_built_system(source, layout):
    lay, _ = layout
    assert lay["boot"]["firmware"] == source.firmware
    assert len(lay["disks"]) == len(source.disks)
    assert [d["size"] for d in lay["disks"]] == source.disk_sizes
    assert all(d["ptable"]["label"] == "gpt" for d in lay["disks"])
    swaps = [f for f in lay["filesystems"] if f["type"] == "swap"]
    assert swaps, lay["filesystems"]
    if source.layout == "a":
        assert BIOS_BOOT in _types(lay["disks"][0])
        assert _fs(lay, "/")["type"] == "ext4" and _fs(lay, "/srv")["type"] == "xfs"
        assert _fs(lay, "/")["device"].startswith("disk0p")
        assert lay["boot"]["grub"]["package"] == "grub-pc"
        assert len(lay["boot"]["grub"]["install_devices"]) == 1
    elif source.layout == "b":
        assert ESP in _types(lay["disks"][0])
        assert _fs(lay, "/boot/efi")["type"] == "vfat"
        [vg] = lay["lvm"]
        assert sorted(lv["name"] for lv in vg["logical_volumes"]) == ["home", "root", "swap"]
        assert _fs(lay, "/")["type"] == "ext4" and _fs(lay, "/home")["type"] == "ext4"
        assert _fs(lay, "/")["device"] in {lv["id"] for lv in vg["logical_volumes"]}
        labels = [e["label"] for e in lay["boot"]["efi"]["entries"]]
        assert "debian" in labels, lay["boot"]["efi"]
    else:
        assert all(BIOS_BOOT in _types(d) for d in lay["disks"])
        arrays = lay["md"]
        assert arrays and all(a["level"] == "raid1" and a["metadata"] == "1.2" for a in arrays)
        root_array = next(a for a in arrays if _fs(lay, "/")["device"].startswith(a["id"]))
        assert sorted(m["device"][:5] for m in root_array["members"]) == ["disk0", "disk1"]
        assert len(lay["boot"]["grub"]["install_devices"]) == 2


def test_every_dle_has_a_level_0_dump(source, layout):
    _, bundle = layout
    find = source.manifest["backup"]["amadmin_find"]
    rows = [ln.split() for ln in find.splitlines()[1:] if ln.strip()]
    done = {(r[3], r[4]) for r in rows if r[-1] == "OK"}  # (disk, level)
    for mountpoint in source.mounts:
        assert (mountpoint, "0") in done, find
    assert bundle.listdir("amanda"), "the bundle carries no Amanda catalog"
    assert any(source.vtapes.glob("slot*/00001.*")), "no dump on the vtapes"


def test_the_first_boot_reached_the_marker_with_everything_mounted(source):
    fb = source.manifest["backup"]["first_boot"]
    assert fb["ok"] and fb["complete"] and fb["job_exit"] == 0, fb
    assert fb["host"] == source.host
    assert set(source.mounts) <= {m["target"] for m in fb["mounts"]}, fb["mounts"]
    assert fb["swaps"], fb
    assert any(n["addr"] == ADDRESS and n["mac"] == source.mac for n in fb["net"]), fb["net"]
    assert fb["failed_units"] == [], fb
