"""Restore plans: which DLE goes into which directory, from which images, in which order."""

import pytest

from recovery.catalog.amconf import DiskEntry
from recovery.catalog.model import Dump, Part
from recovery.media.volumes import Header
from recovery.restore.plan import (amrestore_argv, extract_argv, is_tar, original_path,
                                   plan_restores, render, restoresymtable)
from essentials.errors import CatalogError

H = "web1"
T = "/target"


def layout():
    return {
        "version": 1, "root": "/orig",
        "disks": [{"id": "disk0", "path": "/dev/sda", "size": 10 ** 10, "ptable": {
            "label": "gpt", "id": None, "partitions": [
                {"id": "disk0p1", "number": 1, "path": "/dev/sda1", "start": 2048,
                 "size": 4096, "type": "L"},
                {"id": "disk0p2", "number": 2, "path": "/dev/sda2", "start": 8192,
                 "size": 4096, "type": "L"},
                {"id": "disk0p3", "number": 3, "path": "/dev/sda3", "start": 16384,
                 "size": 4096, "type": "L"}]}}],
        "filesystems": [
            {"id": "fs0", "device": "disk0p1", "device_path": "/dev/sda1", "type": "ext4",
             "uuid": "11111111-2222-3333-4444-555555555555", "mountpoint": "/"},
            {"id": "fs1", "device": "disk0p2", "device_path": "/dev/sda2", "type": "ext4",
             "uuid": "79abe2f6-5279-4177-ad09-3282c586e72a", "mountpoint": "/srv"},
            {"id": "fs2", "device": "disk0p3", "device_path": "/dev/sda3", "type": "ext4",
             "uuid": "0000aaaa-5279-4177-ad09-3282c586e72a", "mountpoint": None},
        ],
    }


def d(disk, date, level, label, filenum, nparts=1, host=H):
    parts = [Part(label, filenum + i, i + 1) for i in range(nparts)]
    return Dump(host, disk, date, level, parts, nparts)


DUMPS = [
    d("/orig", "20260101010000", 0, "V-01", 1),
    d("/orig", "20260102010000", 1, "V-02", 1),
    d("/srv", "20260101010000", 0, "V-01", 2),
    d("/srv", "20260102010000", 1, "V-02", 2),
    d("/srv", "20260103010000", 2, "V-03", 1),
    d("/orig/home", "20260101010000", 0, "V-01", 3),
    d("/big", "20260101010000", 0, "V-01", 4, nparts=2),
    d("/noleveldzero", "20260102010000", 1, "V-02", 7),
    d("/ghost", "20260101010000", 0, "V-01", 9),
    d("/smb", "20260101010000", 0, "V-01", 10),
    d("/orig", "20260101010000", 0, "V-09", 1, host="other"),
]


def entry(disk, program, device=None, host=H):
    return DiskEntry(host, disk, device or disk, "dt", program)


def test_good_dles_map_to_target_directories():
    disklist = [
        entry("/srv", "DUMP", "/dev/sda2"),   # by device path
        entry("/orig", "GNUTAR"),              # the root mountpoint path itself
        entry("/orig/home", "APPLICATION:amgtar"),
        entry("/orig", "GNUTAR", host="other"),  # another host: ignored
    ]
    steps, errors = plan_restores(DUMPS, disklist, layout(), T, H)
    assert errors == []
    got = [(s.host, s.disk, s.program, s.original, s.directory, s.chain.levels) for s in steps]
    assert got == [
        (H, "/orig", "GNUTAR", "/", "/target", [0, 1]),
        (H, "/orig/home", "APPLICATION:amgtar", "/home", "/target/home", [0]),
        (H, "/srv", "DUMP", "/srv", "/target/srv", [0, 1, 2]),
    ]
    assert steps[2].chain.program == "DUMP"
    assert steps[2].chain.volumes() == ["V-01", "V-02", "V-03"]


def test_parents_first_whatever_the_disklist_order():
    disklist = [entry("/orig/home", "GNUTAR"), entry("/srv", "DUMP", "/dev/sda2"),
                entry("/orig", "GNUTAR")]
    steps, _ = plan_restores(DUMPS, disklist, layout(), T, H)
    assert [s.directory for s in steps] == ["/target", "/target/home", "/target/srv"]


def test_errors_do_not_stop_the_others():
    disklist = [
        entry("/orig", "GNUTAR"),
        entry("/ghost", "DUMP", "/dev/sdz1"),
        entry("/smb", "APPLICATION:amsamba"),
        entry("/noleveldzero", "GNUTAR", "/orig/noleveldzero"),
        entry("/big", "GNUTAR", "/orig/big"),
        entry("/srv", "DUMP", "/dev/sda2"),
    ]
    steps, errors = plan_restores(DUMPS, disklist, layout(), T, H)
    # a split image is restored like any other (its parts joined: restore/pipe.py)
    assert [s.disk for s in steps] == ["/orig", "/big", "/srv"]
    assert [(h, dk) for h, dk, _ in errors] == [
        (H, "/ghost"), (H, "/smb"), (H, "/noleveldzero")]
    msgs = {dk: m for _, dk, m in errors}
    assert msgs["/ghost"] == "web1:/ghost: device /dev/sdz1 is not in the layout"
    assert msgs["/smb"].startswith("web1:/smb: program APPLICATION:amsamba cannot be restored")
    assert "web1:/noleveldzero: no usable level 0 before the level 1" in msgs["/noleveldzero"]


def test_unmounted_filesystem_and_outside_root():
    steps, errors = plan_restores(DUMPS, [entry("/ghost", "DUMP", "/dev/sda3"),
                                          entry("/srv", "GNUTAR", "/elsewhere/srv")],
                                  layout(), T, H)
    assert steps == []
    assert "its filesystem /dev/sda3 was not mounted" in errors[0][2]
    assert "/elsewhere/srv is outside the system root /orig" in errors[1][2]


def test_device_by_uuid():
    e = entry("/srv", "DUMP", "/dev/disk/by-uuid/79abe2f6-5279-4177-ad09-3282c586e72a")
    assert original_path(e, layout()) == "/srv"
    with pytest.raises(CatalogError, match="not in the layout"):
        original_path(entry("/x", "DUMP", "/dev/disk/by-uuid/nope"), layout())


def test_until():
    steps, errors = plan_restores(DUMPS, [entry("/srv", "DUMP", "/dev/sda2")], layout(), T, H,
                                  until="20260102")
    assert errors == [] and steps[0].chain.levels == [0, 1]


def test_amrestore_argv_exact_match():
    assert amrestore_argv("file:/vtapes/slot3", "V-03", 7, "web1", "/srv") == [
        "amrestore", "-p", "-f", "7", "-l", "V-03", "file:/vtapes/slot3", "=web1", "=/srv"]


def test_extract_argv():
    assert extract_argv("GNUTAR", "/target/home") == [
        "tar", "-x", "-p", "-G", "--numeric-owner", "-f", "-", "-C", "/target/home"]
    assert extract_argv("APPLICATION:amgtar", "/t") == extract_argv("GNUTAR", "/t")
    assert extract_argv("DUMP", "/target/srv") == ["restore", "-r", "-y", "-f", "-"]
    assert is_tar("APPLICATION:amgtar") and not is_tar("APPLICATION:amsamba")
    # a name is not a program: amconf resolves application-tools to their plugin
    assert not is_tar("APPLICATION:app_amgtar") and not is_tar("APPLICATION:my_gtar_wrapper")
    assert not is_tar("DUMP")


def test_render_lines():
    """One sequence per image, as root types it (Amanda's tools as backup)."""
    disklist = [entry("/srv", "DUMP", "/dev/sda2"), entry("/orig", "GNUTAR")]
    steps, _ = plan_restores(DUMPS, disklist, layout(), T, H)
    devices = {"V-01": "file:/vt/slot1", "V-02": "file:/vt/slot2"}
    tar = "tar -x -p -G --numeric-owner -f - -C /target"
    assert render(steps[0], devices) == [
        "# web1:/orig level 0 of 20260101010000: one part",
        f"( cd / && runuser -u backup -- amrestore -p -f 1 -l V-01 file:/vt/slot1 =web1 =/orig "
        f") | {tar}",
        "# web1:/orig level 1 of 20260102010000: one part",
        f"( cd / && runuser -u backup -- amrestore -p -f 1 -l V-02 file:/vt/slot2 =web1 =/orig "
        f") | {tar}",
    ]
    lines = render(steps[1], devices)
    assert lines[1::2] == [
        "cd /target/srv && ( cd / && runuser -u backup -- amrestore -p -f 2 -l V-01 "
        "file:/vt/slot1 =web1 =/srv ) | restore -r -y -f -",
        "cd /target/srv && ( cd / && runuser -u backup -- amrestore -p -f 2 -l V-02 "
        "file:/vt/slot2 =web1 =/srv ) | restore -r -y -f -",
        "cd /target/srv && ( cd / && runuser -u backup -- amrestore -p -f 1 -l V-03 '<V-03>' "
        "=web1 =/srv ) | restore -r -y -f -",
    ]
    assert restoresymtable(steps[0]) is None
    assert restoresymtable(steps[1]) == "/target/srv/restoresymtable"


def test_split_image_on_tape_is_one_sequence():
    """The catalog once printed one amrestore | tar per part: run as printed,
    every part but the last failed and the tree was corrupt.  On tape (no files
    to read directly) each part goes through amrestore, in one group."""
    from recovery.restore.pipe import build
    from recovery.restore.plan import extract_cmd
    d = [x for x in DUMPS if x.disk == "/big"][0]
    tar = "tar -x -p -G --numeric-owner -f - -C /target/big"
    ext = extract_cmd("GNUTAR", "/target/big")
    plain = Header("SPLIT_FILE", "20260101010000", H, "/big", 0, comp="N")
    assert build(H, "/big", d, lambda lab: "tape:/dev/nst0", ext, plain).lines() == [
        "# web1:/big level 0 of 20260101010000: 2 parts, neither compressed nor encrypted: "
        "joined as read",
        "( cd / && runuser -u backup -- amrestore -p -f 4 -l V-01 tape:/dev/nst0 =web1 =/big",
        f"  runuser -u backup -- amrestore -p -f 5 -l V-01 tape:/dev/nst0 =web1 =/big ) | {tar}",
    ]
    enc = Header("SPLIT_FILE", "20260101010000", H, "/big", 0, comp=".gz", encrypted=True,
                 server_encrypt="/usr/sbin/amcrypt-ossl", server_decrypt_option="-d")
    lines = build(H, "/big", d, lambda lab: "tape:/dev/nst0", ext, enc).lines()
    assert lines[1:] == [
        "( cd / && runuser -u backup -- amrestore -r -p -f 4 -l V-01 tape:/dev/nst0 =web1 =/big "
        "| tail -c +32769",
        "  runuser -u backup -- amrestore -r -p -f 5 -l V-01 tape:/dev/nst0 =web1 =/big "
        "| tail -c +32769 ) | ( cd / && runuser -u backup -- /usr/sbin/amcrypt-ossl -d ) "
        "| gzip -dc "
        f"| {tar}",
    ]
    assert "decrypt and uncompress for the whole" in lines[0]
    unknown = build(H, "/big", d, lambda lab: "tape:/dev/nst0", ext, None).lines()
    assert "header was not read" in unknown[1] and "tail -c +32769" in unknown[2]


def test_split_image_on_vtapes_reads_the_files(tmp_path):
    """Vtapes: each part's file read directly (no amrestore, no backup user),
    the header's filters once for the whole; the catalog shows the same."""
    from recovery.media.volumes import HEADER_SIZE, VtapeLibrary
    slot = tmp_path / "vt" / "slot1"
    slot.mkdir(parents=True)

    def put(name, text):
        raw = text.encode()
        (slot / name).write_bytes(raw + b"\0" * (HEADER_SIZE - len(raw)) + b"data")
    put("00000.V-01", "AMANDA: TAPESTART DATE 20260101010000 TAPE V-01\n")
    for n in (1, 2):
        put(f"0000{n + 3}.web1._big.0", f"AMANDA: SPLIT_FILE 20260101010000 web1 /big "
            f"part {n}/-1 lev 0 comp .gz program /bin/tar crypt enc server_encrypt "
            f"/usr/sbin/amcrypt-ossl server_decrypt_option -d\n")
    steps, _ = plan_restores(DUMPS, [entry("/big", "GNUTAR", "/orig/big")], layout(), T, H)
    lib = VtapeLibrary(tmp_path / "vt")
    lines = render(steps[0], {"V-01": lib.device("V-01")}, lib)
    assert lines == [
        "# web1:/big level 0 of 20260101010000: vtape files read directly (2 parts joined), "
        "then one decrypt and uncompress for the whole",
        f"( dd if={slot}/00004.web1._big.0 bs=32k skip=1 status=none",
        f"  dd if={slot}/00005.web1._big.0 bs=32k skip=1 status=none ) "
        "| ( cd / && runuser -u backup -- /usr/sbin/amcrypt-ossl -d ) | gzip -dc "
        "| tar -x -p -G --numeric-owner -f - -C /target/big"]


def test_to_dict():
    steps, _ = plan_restores(DUMPS, [entry("/srv", "DUMP", "/dev/sda2")], layout(), T, H)
    dd = steps[0].to_dict()
    assert (dd["host"], dd["disk"], dd["program"], dd["directory"], dd["original"]) == (
        H, "/srv", "DUMP", "/target/srv", "/srv")
    assert [(x["level"], x["label"], x["filenum"]) for x in dd["dumps"]] == [
        (0, "V-01", 2), (1, "V-02", 2), (2, "V-03", 1)]


def test_split_image_on_tapes_loads_each_volume_inside_the_group():
    """A split across volumes in a drive: the load (a prompt on the terminal or a
    changer command, its output kept off the stream) comes right before its part."""
    from recovery.media import positioning
    from recovery.restore.pipe import build, volume_loads
    from recovery.restore.plan import extract_cmd
    d0 = Dump(H, "/srv", "20260101000000", 0, [Part("L-02", 1, 2), Part("L-01", 3, 1)], 2)
    d1 = Dump(H, "/srv", "20260102000000", 1, [Part("L-02", 2, 1)], 1)
    media = positioning.TapeMedia("/dev/nst0",
                                  positioning.MtxChanger("/dev/sg1", {"L-01": 1, "L-02": 2}))
    loads, loaded = volume_loads([d0, d1], media)
    assert loaded == "L-02"
    lines = build(H, "/srv", d0, media.device, extract_cmd("DUMP", "/mnt/srv"), None,
                  loads.get(0)).lines()
    assert lines[2:] == [
        "cd /mnt/srv && ( cd / && mtx -f /dev/sg1 load 1 0 >&2",
        "  runuser -u backup -- amrestore -r -p -f 3 -l L-01 tape:/dev/nst0 =web1 =/srv "
        "| tail -c +32769",
        "  mtx -f /dev/sg1 unload 1 0 >&2",
        "  mtx -f /dev/sg1 load 2 0 >&2",
        "  runuser -u backup -- amrestore -r -p -f 1 -l L-02 tape:/dev/nst0 =web1 =/srv "
        "| tail -c +32769 ) | restore -r -y -f -"]
    # the next image is on the volume already in the drive: no load
    assert 1 not in loads
    manual = positioning.TapeMedia("/dev/nst0")
    loads, _ = volume_loads([d0], manual)
    text = build(H, "/srv", d0, manual.device, extract_cmd("GNUTAR", "/t"), None,
                 loads.get(0)).lines()
    assert 'read -r -p "Insert volume L-02 into /dev/nst0, then press Enter " _ </dev/tty' \
        in [t.strip() for t in text]
