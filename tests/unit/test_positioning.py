"""Volumes in the order of use and how each image is reached: compared as rendered."""

from recovery.catalog.chains import Chain
from recovery.catalog.model import Dump, Part
from recovery.media.positioning import (AmtapeChanger, FileMedia, MtxChanger, TapeMedia,
                                          VtapeMedia, plan, reads, render, volumes_needed)

H = "web1"


def chain(disk, *dumps):
    return Chain(H, disk, list(dumps))


def d(date, level, *parts, nparts=None):
    ps = [Part(lab, f, n) for lab, f, n in parts]
    return Dump(H, "/srv", date, level, ps, nparts or len(ps))


SRV = chain("/srv",
            d("20260101010000", 0, ("V-01", 1, 1)),
            d("20260102010000", 1, ("V-02", 3, 1)),
            d("20260103010000", 2, ("V-02", 4, 1)))
ROOT = chain("/", d("20260101010000", 0, ("V-01", 2, 1)))
SPLIT = chain("/big", d("20260101010000", 0, ("V-01", 5, 1), ("V-01", 6, 2), ("V-03", 1, 3)))


def test_volumes_needed_in_order_of_use_each_once():
    assert volumes_needed([SRV]) == ["V-01", "V-02"]
    assert volumes_needed([SRV, ROOT]) == ["V-01", "V-02"]
    assert volumes_needed([SPLIT, SRV]) == ["V-01", "V-03", "V-02"]


def test_reads_list_every_part():
    assert [(r.label, r.filenum, r.partnum, r.nparts) for r in reads([SPLIT])] == [
        ("V-01", 5, 1, 3), ("V-01", 6, 2, 3), ("V-03", 1, 3, 3)]


def test_vtape():
    media = VtapeMedia({"V-01": "file:/vt/slot1", "V-02": "file:/vt/slot2"})
    assert render(plan([SRV], media), {(H, "/srv"): "tar -xpGf - -C /t/srv"}) == [
        "# volume V-01 on file:/vt/slot1",
        "#   web1:/srv level 0 of 20260101010000, file 1",
        "runuser -u backup -- amrestore -p -f 1 -l V-01 file:/vt/slot1 =web1 =/srv"
        " | tar -xpGf - -C /t/srv",
        "# volume V-02 on file:/vt/slot2",
        "#   web1:/srv level 1 of 20260102010000, file 3",
        "runuser -u backup -- amrestore -p -f 3 -l V-02 file:/vt/slot2 =web1 =/srv"
        " | tar -xpGf - -C /t/srv",
        "#   web1:/srv level 2 of 20260103010000, file 4",
        "runuser -u backup -- amrestore -p -f 4 -l V-02 file:/vt/slot2 =web1 =/srv"
        " | tar -xpGf - -C /t/srv",
    ]


def test_vtape_device_not_known():
    assert VtapeMedia({}).device("V-09") == "<device holding V-09>"
    assert VtapeMedia({}, "/vt").device("V-09") == "file:/vt/<slot holding V-09>"
    assert render(plan([ROOT], VtapeMedia({})))[-1] == (
        "runuser -u backup -- amrestore -p -f 2 -l V-01 '<device holding V-01>' =web1 =/")


def test_file_device_asks_for_the_next_volume():
    media = FileMedia("file:/mnt/usb/vol", label="V-01")
    assert render(plan([SRV], media)) == [
        "# volume V-01 on file:/mnt/usb/vol",
        "#   web1:/srv level 0 of 20260101010000, file 1",
        "runuser -u backup -- amrestore -p -f 1 -l V-01 file:/mnt/usb/vol =web1 =/srv",
        "# volume V-02 on file:/mnt/usb/vol",
        "# Put volume V-02 at /mnt/usb/vol (it holds V-01 now), then press Enter",
        "#   web1:/srv level 1 of 20260102010000, file 3",
        "runuser -u backup -- amrestore -p -f 3 -l V-02 file:/mnt/usb/vol =web1 =/srv",
        "#   web1:/srv level 2 of 20260103010000, file 4",
        "runuser -u backup -- amrestore -p -f 4 -l V-02 file:/mnt/usb/vol =web1 =/srv",
    ]


def test_tape_without_changer_prompts_and_positions_with_mt():
    uses = plan([SRV], TapeMedia("/dev/nst0"))
    assert [u.label for u in uses] == ["V-01", "V-02"]
    assert render(uses, {(H, "/srv"): "(cd /t/srv && restore -r -y -f -)"}) == [
        "# volume V-01 on tape:/dev/nst0",
        "# Insert volume V-01 into /dev/nst0, then press Enter",
        "#   web1:/srv level 0 of 20260101010000, file 1",
        "mt -f /dev/nst0 rewind",
        "mt -f /dev/nst0 fsf 1",
        "dd if=/dev/nst0 bs=32k count=1",
        "runuser -u backup -- amrestore -p -f 1 -l V-01 tape:/dev/nst0 =web1 =/srv"
        " | (cd /t/srv && restore -r -y -f -)",
        "# volume V-02 on tape:/dev/nst0",
        "mt -f /dev/nst0 offline",
        "# Insert volume V-02 into /dev/nst0, then press Enter",
        "#   web1:/srv level 1 of 20260102010000, file 3",
        "mt -f /dev/nst0 rewind",
        "mt -f /dev/nst0 fsf 3",
        "dd if=/dev/nst0 bs=32k count=1",
        "runuser -u backup -- amrestore -p -f 3 -l V-02 tape:/dev/nst0 =web1 =/srv"
        " | (cd /t/srv && restore -r -y -f -)",
        "#   web1:/srv level 2 of 20260103010000, file 4",
        "mt -f /dev/nst0 rewind",
        "mt -f /dev/nst0 fsf 4",
        "dd if=/dev/nst0 bs=32k count=1",
        "runuser -u backup -- amrestore -p -f 4 -l V-02 tape:/dev/nst0 =web1 =/srv"
        " | (cd /t/srv && restore -r -y -f -)",
    ]


def test_tape_with_amtape():
    lines = render(plan([ROOT], TapeMedia("tape:/dev/nst1", AmtapeChanger("daily"))))
    assert lines == [
        "# volume V-01 on tape:/dev/nst1",
        "runuser -u backup -- amtape daily label V-01",
        "#   web1:/ level 0 of 20260101010000, file 2",
        "mt -f /dev/nst1 rewind",
        "mt -f /dev/nst1 fsf 2",
        "dd if=/dev/nst1 bs=32k count=1",
        "runuser -u backup -- amrestore -p -f 2 -l V-01 tape:/dev/nst1 =web1 =/",
    ]


def test_tape_with_mtx_known_and_unknown_slots():
    media = TapeMedia("/dev/nst0", MtxChanger("/dev/sg3", {"V-01": 7}, drive=1))
    lines = [ln for ln in render(plan([SPLIT], media))
             if not ln.startswith(("mt ", "dd ", "#   "))]
    assert lines == [
        "# volume V-01 on tape:/dev/nst0",
        "mtx -f /dev/sg3 load 7 1",
        "runuser -u backup -- amrestore -p -f 5 -l V-01 tape:/dev/nst0 =web1 =/big",
        "runuser -u backup -- amrestore -p -f 6 -l V-01 tape:/dev/nst0 =web1 =/big",
        "# volume V-03 on tape:/dev/nst0",
        "mtx -f /dev/sg3 unload 7 1",
        "# Load volume V-03 into /dev/nst0 (its slot is not known: see `mtx -f /dev/sg3 "
        "status`), then press Enter",
        "runuser -u backup -- amrestore -p -f 1 -l V-03 tape:/dev/nst0 =web1 =/big",
    ]
    unknown_loaded = MtxChanger("/dev/sg3", {"V-02": 2}).load("V-02", "/dev/nst0", "V-09")
    assert [a.render() for a in unknown_loaded] == ["mtx -f /dev/sg3 unload",
                                                    "mtx -f /dev/sg3 load 2 0"]


def test_split_parts_are_labelled_in_the_comments():
    lines = render(plan([SPLIT], VtapeMedia({"V-01": "file:/vt/1", "V-03": "file:/vt/3"})))
    assert "#   web1:/big level 0 of 20260101010000 part 2/3, file 6" in lines
    assert lines.count("# volume V-01 on file:/vt/1") == 1


def test_a_volume_used_again_after_another_is_loaded_again():
    back = chain("/srv", d("20260101010000", 0, ("V-01", 1, 1)),
                 d("20260102010000", 1, ("V-02", 1, 1)),
                 d("20260103010000", 2, ("V-01", 9, 1)))
    uses = plan([back], TapeMedia("/dev/nst0", AmtapeChanger("daily")))
    assert [(u.label, [r.filenum for r in u.reads]) for u in uses] == [
        ("V-01", [1]), ("V-02", [1]), ("V-01", [9])]
    assert [a.render() for a in uses[2].load] == [
        "runuser -u backup -- amtape daily label V-01"]
