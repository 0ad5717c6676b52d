"""Restore chains: which images, in which order, rebuild a DLE."""

from pathlib import Path

import pytest

from essentials.errors import CatalogError
from recovery.catalog import tapelist, tracelog
from recovery.catalog.chains import compute_chain, dles
from recovery.catalog.model import FAILED, PARTIAL, Dump, Part
from recovery.catalog.tapelist import Volume

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "amanda35"
H, D = "web1", "/srv"


def day(n: int) -> str:
    return f"202601{n:02d}010000"


def dump(n, level, label=None, filenum=1, *, parts=None, nparts=None, status="OK",
         host=H, disk=D, written=None):
    """A dump made on day n; by default one part, on volume V-<n>, written that day."""
    if parts is None:
        parts = [Part(label or f"V-{n:02d}", filenum, 1, written or day(n))]
    return Dump(host, disk, day(n), level, parts,
                nparts if nparts is not None else len(parts), status)


def dates(chain):
    return [d.date for d in chain.dumps]


def test_simple_chain():
    ds = [dump(1, 0), dump(2, 1), dump(3, 2)]
    c = compute_chain(ds, H, D)
    assert (c.host, c.disk) == (H, D)
    assert c.levels == [0, 1, 2]
    assert dates(c) == [day(1), day(2), day(3)]
    assert c.volumes() == ["V-01", "V-02", "V-03"]


def test_input_order_does_not_matter():
    ds = [dump(3, 2), dump(1, 0), dump(2, 1)]
    assert dates(compute_chain(ds, H, D)) == [day(1), day(2), day(3)]


def test_newest_level0_wins():
    ds = [dump(1, 0), dump(2, 1), dump(3, 2), dump(4, 0), dump(5, 1)]
    c = compute_chain(ds, H, D)
    assert c.levels == [0, 1]
    assert dates(c) == [day(4), day(5)]


def test_newest_dump_a_level0_alone():
    ds = [dump(1, 0), dump(2, 1), dump(3, 0)]
    c = compute_chain(ds, H, D)
    assert c.levels == [0] and dates(c) == [day(3)]


def test_newer_level1_supersedes_older_level2():
    ds = [dump(1, 0), dump(2, 1), dump(3, 2), dump(4, 1)]
    c = compute_chain(ds, H, D)
    assert c.levels == [0, 1]
    assert dates(c) == [day(1), day(4)]


def test_failed_dump_is_skipped():
    ds = [dump(1, 0), dump(2, 1), dump(3, 2, parts=[], nparts=0, status=FAILED)]
    c = compute_chain(ds, H, D)
    assert c.levels == [0, 1]
    assert dates(c) == [day(1), day(2)]


def test_partial_dump_is_skipped():
    ds = [dump(1, 0), dump(2, 1), dump(3, 1, status=PARTIAL)]
    assert dates(compute_chain(ds, H, D)) == [day(1), day(2)]


@pytest.mark.parametrize("level1", ["failed", "absent"])
def test_gap_is_an_error(level1):
    ds = [dump(1, 0), dump(3, 2)]
    if level1 == "failed":
        ds.append(dump(2, 1, parts=[], nparts=0, status=FAILED))
    with pytest.raises(CatalogError) as e:
        compute_chain(ds, H, D)
    msg = str(e.value)
    assert msg.startswith(f"{H}:{D}: ")
    assert "level 1" in msg
    assert f"level 2 dump of {day(3)}" in msg


def test_no_level0_at_all():
    with pytest.raises(CatalogError, match=rf"^{H}:{D}: no usable level 0 before the level 1"):
        compute_chain([dump(2, 1), dump(3, 2)], H, D)


def test_no_level0_names_the_lost_one():
    lost = dump(1, 0, status=FAILED, parts=[])
    lost.message = "[data timeout]"
    with pytest.raises(CatalogError) as e:
        compute_chain([lost, dump(2, 1)], H, D)
    assert f"level 0 dump of {day(1)}" in str(e.value)
    assert "[data timeout]" in str(e.value)


def test_no_dump_of_the_dle():
    with pytest.raises(CatalogError, match=f"^other:{D}: no dump of this DLE"):
        compute_chain([dump(1, 0)], "other", D)


def test_only_unusable_dumps():
    with pytest.raises(CatalogError, match=rf"{H}:{D}: no usable dump; the newest, level 1"):
        compute_chain([dump(1, 0, status=FAILED), dump(2, 1, status=FAILED)], H, D)


def test_other_dles_are_ignored():
    ds = [dump(1, 0), dump(2, 0, disk="/home"), dump(3, 1, host="web2"), dump(4, 1)]
    c = compute_chain(ds, H, D)
    assert dates(c) == [day(1), day(4)]
    assert dles(ds) == [(H, "/home"), (H, D), ("web2", D)]


def test_until_cuts_later_dumps():
    ds = [dump(1, 0), dump(2, 1), dump(3, 2), dump(4, 0), dump(5, 1)]
    assert dates(compute_chain(ds, H, D, until=day(3))) == [day(1), day(2), day(3)]
    assert dates(compute_chain(ds, H, D, until=day(4))) == [day(4)]
    # a datestamp between runs: the state of the last run before it
    assert dates(compute_chain(ds, H, D, until="20260102120000")) == [day(1), day(2)]
    with pytest.raises(CatalogError, match="up to 20251231"):
        compute_chain(ds, H, D, until="20251231")


def test_split_dump_with_missing_part_is_unusable():
    split = dump(3, 1, parts=[Part("V-03", 1, 1), Part("V-04", 1, 3)], nparts=3)
    assert split.missing_parts() == [2]
    c = compute_chain([dump(1, 0), dump(2, 1), split], H, D)
    assert dates(c) == [day(1), day(2)]
    # and when it is the only candidate, the error says why
    with pytest.raises(CatalogError, match=r"part\(s\) \[1\] missing"):
        compute_chain([dump(1, 0, parts=[Part("V-01", 1, 2)], nparts=2)], H, D)


def test_complete_split_dump_lists_volumes_in_part_order():
    split = dump(2, 1, parts=[Part("V-03", 1, 2), Part("V-02", 5, 1), Part("V-03", 2, 3)],
                 nparts=3)
    c = compute_chain([dump(1, 0, label="V-02"), split], H, D)
    assert c.levels == [0, 1]
    assert c.volumes() == ["V-02", "V-03"]
    assert c.to_dict()["dumps"][1]["parts"] == [
        {"part": 1, "label": "V-02", "filenum": 5},
        {"part": 2, "label": "V-03", "filenum": 1},
        {"part": 3, "label": "V-03", "filenum": 2}]


def test_overwritten_volume_makes_dump_unusable():
    ds = [dump(1, 0), dump(2, 1), dump(3, 2)]
    tl = {f"V-0{i}": Volume(f"V-0{i}", day(i), True) for i in (1, 2, 3)}
    assert compute_chain(ds, H, D, tapelist=tl).levels == [0, 1, 2]
    # V-03 relabelled and written by the run of day 9: the level 2 is gone
    tl["V-03"] = Volume("V-03", day(9), True)
    assert compute_chain(ds, H, D, tapelist=tl).levels == [0, 1]
    # V-01 too: now nothing restores
    tl["V-01"] = Volume("V-01", day(9), True)
    with pytest.raises(CatalogError) as e:
        compute_chain(ds, H, D, tapelist=tl)
    assert f"V-01 was overwritten on {day(9)}" in str(e.value)


def test_volume_missing_from_tapelist_is_unusable():
    ds = [dump(1, 0), dump(2, 1)]
    tl = {"V-01": Volume("V-01", day(1), True)}
    assert compute_chain(ds, H, D, tapelist=tl).levels == [0]


def test_part_without_written_datestamp_is_trusted():
    ds = [Dump(H, D, day(1), 0, [Part("V-01", 1, 1)], 1)]
    tl = {"V-01": Volume("V-01", day(9), True)}
    assert compute_chain(ds, H, D, tapelist=tl).levels == [0]


def test_copy_on_available_volume_is_chosen():
    ds = [dump(1, 0, label="V-01"), dump(1, 0, label="COPY-01"), dump(2, 1, label="V-02")]
    c = compute_chain(ds, H, D, available={"COPY-01", "V-02"})
    assert c.volumes() == ["COPY-01", "V-02"]
    c = compute_chain(ds, H, D, available={"V-01", "V-02"})
    assert c.volumes() == ["V-01", "V-02"]
    # in the other order of input too
    c = compute_chain(list(reversed(ds)), H, D, available={"COPY-01", "V-02"})
    assert c.volumes() == ["COPY-01", "V-02"]


def test_needed_volume_not_available():
    ds = [dump(1, 0), dump(2, 1, filenum=7)]
    with pytest.raises(CatalogError) as e:
        compute_chain(ds, H, D, available={"V-01"})
    msg = str(e.value)
    assert msg.startswith(f"{H}:{D}: volume V-02 ")
    assert "file 7" in msg and "not available" in msg


def test_chain_to_dict():
    c = compute_chain([dump(1, 0, filenum=3)], H, D)
    c.program = "GNUTAR"
    assert c.to_dict() == {
        "host": H, "disk": D, "program": "GNUTAR",
        "dumps": [{"date": day(1), "level": 0, "label": "V-01", "filenum": 3,
                   "parts": [{"part": 1, "label": "V-01", "filenum": 3}]}]}


# -- the real history --------------------------------------------------------

@pytest.fixture(scope="module")
def history():
    return tracelog.parse_logdir(FIX)


def test_fixture_chain_gnutar(history):
    c = compute_chain(history, "localhost", "/tmp/probe/mnt")
    assert c.levels == [0, 1, 2]
    assert c.volumes() == ["PROBE-04", "PROBE-05", "PROBE-06"]
    assert [(p.label, p.filenum) for d in c.dumps for p in d.parts] == [
        ("PROBE-04", 1), ("PROBE-05", 2), ("PROBE-06", 2)]


def test_fixture_chain_dump(history):
    c = compute_chain(history, "localhost", "/dev/loop0p2")
    assert c.levels == [0, 1]
    assert c.volumes() == ["PROBE-05", "PROBE-06"]


def test_fixture_chain_with_tapelist(history):
    tl = tapelist.parse((FIX / "tapelist").read_text())
    assert compute_chain(history, "localhost", "/tmp/probe/mnt",
                         tapelist=tl).volumes() == ["PROBE-04", "PROBE-05", "PROBE-06"]
    # PROBE-06 reused by a later run: both newest incrementals are gone
    tl["PROBE-06"] = Volume("PROBE-06", "20261123012300", True, "probe")
    assert compute_chain(history, "localhost", "/tmp/probe/mnt",
                         tapelist=tl).volumes() == ["PROBE-04", "PROBE-05"]
    assert compute_chain(history, "localhost", "/dev/loop0p2",
                         tapelist=tl).volumes() == ["PROBE-05"]


def test_fixture_lost_level0_is_not_replaced_by_an_older_one(history):
    tl = tapelist.parse((FIX / "tapelist").read_text())
    # PROBE-04 reused by a later run: the GNUTAR level 0 of 01:23:42 is gone; the
    # level 1 on PROBE-05 holds the changes since that level 0, not since 01:23:18
    tl["PROBE-04"] = Volume("PROBE-04", "20261123012300", True, "probe")
    with pytest.raises(CatalogError) as e:
        compute_chain(history, "localhost", "/tmp/probe/mnt", tapelist=tl)
    assert "localhost:/tmp/probe/mnt" in str(e.value)
    assert "PROBE-04" in str(e.value)


def test_unusable_base_is_not_replaced_by_an_older_one():
    ds = [dump(1, 0), dump(4, 0), dump(5, 1)]
    tl = {f"V-0{i}": Volume(f"V-0{i}", day(i), True) for i in (1, 4, 5)}
    tl["V-04"] = Volume("V-04", day(9), True)  # the base of day 5 was overwritten
    with pytest.raises(CatalogError, match="V-04"):
        compute_chain(ds, H, D, tapelist=tl)


def test_dump_still_on_volume_not_affected_by_other_volumes():
    ds = [dump(1, 0), dump(4, 0), dump(5, 1)]
    tl = {f"V-0{i}": Volume(f"V-0{i}", day(i), True) for i in (1, 4, 5)}
    tl["V-01"] = Volume("V-01", day(9), True)
    assert dates(compute_chain(ds, H, D, tapelist=tl)) == [day(4), day(5)]


def test_fixture_chain_until(history):
    c = compute_chain(history, "localhost", "/tmp/probe/mnt", until="20261122012334")
    assert c.levels == [0, 1, 2]
    assert c.volumes() == ["PROBE-01", "PROBE-02", "PROBE-03"]
    c = compute_chain(history, "localhost", "/dev/loop0p2", until="20261122012334")
    assert c.volumes() == ["PROBE-02", "PROBE-03"]
