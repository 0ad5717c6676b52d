"""Restore chains: which images, in which order, rebuild a DLE."""

from pathlib import Path

import pytest

from essentials.errors import CatalogError
from recovery.catalog import tapelist, tracelog
from recovery.catalog.chains import compute_chain, compute_chains, dles, until_limit
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


# -- the rule, sentence by sentence ---------------------------------------------

def test_newest_level0_then_newest_later_dump_of_each_higher_level():
    # 0 1 2 1 2 3: the newest level 0 (day 1), the newest later level 1 (day 4),
    # the newest level 2 after that (day 5), the level 3 after it (day 6)
    ds = [dump(1, 0), dump(2, 1), dump(3, 2), dump(4, 1), dump(5, 2), dump(6, 3)]
    c = compute_chain(ds, H, D)
    assert c.levels == [0, 1, 2, 3]
    assert dates(c) == [day(1), day(4), day(5), day(6)]
    # up to a chosen date: the same rule on the history before it
    assert dates(compute_chain(ds, H, D, until=day(4))) == [day(1), day(4)]


@pytest.mark.parametrize("until", ["2026-01-03", "20260103", "2026-01-03 01:00:00",
                                   "20260103010000"])
def test_until_in_amanda_and_find_forms(until):
    ds = [dump(1, 0), dump(2, 1), dump(3, 2), dump(4, 0)]
    assert dates(compute_chain(ds, H, D, until=until)) == [day(1), day(2), day(3)]


def test_until_limit():
    assert until_limit(None) is None
    assert until_limit("20260103") == "20260103235959"
    assert until_limit("2026-01-03 12:30") == "20260103123059"
    assert until_limit("2026010312") == "20260103125959"
    assert until_limit("20260103123456") == "20260103123456"


def test_failed_and_partial_never_used_even_as_the_newest_level0():
    failed0 = dump(4, 0, status=FAILED, parts=[], nparts=0)
    failed0.dump_failed = True  # the dumper failed: no image, nothing based on it
    partial0 = dump(5, 0, status=PARTIAL)
    ds = [dump(1, 0), dump(2, 1), failed0, partial0, dump(6, 2)]
    # the level 2 of day 6 is based on the partial level 0 of day 5? no: Amanda
    # bases incrementals on dumps it recorded, and a partial one it recorded;
    # so the level 2 cannot be used; the chain stops at it with an error
    with pytest.raises(CatalogError, match=f"based on the level 0 dump of {day(5)}"):
        compute_chain(ds, H, D)
    # without it, the older chain restores: the failures are skipped
    assert dates(compute_chain(ds[:4], H, D)) == [day(1), day(2)]


def test_split_dump_lists_all_its_parts_in_the_chain():
    split0 = dump(1, 0, parts=[Part("V-01", 3, 2), Part("V-01", 2, 1), Part("V-02", 1, 3)],
                  nparts=3)
    c = compute_chain([split0, dump(2, 1, label="V-02", filenum=2)], H, D)
    assert [(p.label, p.filenum, p.partnum) for _, p in c.parts()] == [
        ("V-01", 2, 1), ("V-01", 3, 2), ("V-02", 1, 3), ("V-02", 2, 1)]
    assert c.to_dict()["dumps"][0]["label"] == "V-01"
    assert c.to_dict()["dumps"][0]["filenum"] == 2
    assert len(c.to_dict()["dumps"][0]["parts"]) == 3


def test_copy_on_available_volume_preferred_for_split_images():
    a = dump(1, 0, parts=[Part("V-01", 1, 1), Part("V-02", 1, 2)], nparts=2)
    b = dump(1, 0, parts=[Part("C-01", 1, 1), Part("C-01", 2, 2)], nparts=2)
    assert compute_chain([a, b], H, D, available={"C-01"}).volumes() == ["C-01"]
    # a copy with one part on a missing volume is not at hand
    assert compute_chain([b, a], H, D, available={"V-01", "V-02"}).volumes() == ["V-01",
                                                                                "V-02"]


def test_missing_volume_error_names_dle_what_and_where_last_seen():
    l0 = dump(1, 0, filenum=4)
    l0.source = "/var/lib/amanda/lab/log/log.20260101010000.0"
    ds = [l0, dump(2, 1)]
    with pytest.raises(CatalogError) as e:
        compute_chain(ds, H, D, available={"V-02"},
                      whereabouts={"V-01": "written 20260101010000 per the tapelist of lab"})
    msg = str(e.value)
    assert msg == (f"{H}:{D}: volume V-01 (level 0 of {day(1)}, file 4) is not available; "
                   f"last seen: written 20260101010000 per the tapelist of lab; recorded in "
                   f"/var/lib/amanda/lab/log/log.20260101010000.0")


def test_every_missing_volume_is_named():
    split = dump(1, 0, parts=[Part("V-01", 1, 1), Part("V-09", 1, 2)], nparts=2)
    with pytest.raises(CatalogError) as e:
        compute_chain([split, dump(2, 1)], H, D, available=set())
    msg = str(e.value)
    assert "volume V-01 (part 1/2 of level 0" in msg
    assert "volume V-09 (part 2/2 of level 0" in msg
    assert "volume V-02 (level 1" in msg
    assert msg.index("V-01") < msg.index("V-09") < msg.index("V-02")


def test_missing_part_of_the_level0_is_named_with_the_parts_known():
    broken = dump(1, 0, parts=[Part("V-01", 1, 1), Part("V-02", 1, 3)], nparts=3)
    with pytest.raises(CatalogError) as e:
        compute_chain([broken, dump(2, 1)], H, D)
    msg = str(e.value)
    assert msg.startswith(f"{H}:{D}: ")
    assert "part(s) [2] missing" in msg
    assert "part 1 on V-01 file 1" in msg and "part 3 on V-02 file 1" in msg


def test_two_levels_with_one_datestamp():
    # not made by one amdump, but merged catalogs can hold it: the higher
    # level counts as the newer image
    ds = [dump(1, 0), dump(2, 1), dump(2, 2, label="X-02")]
    assert compute_chain(ds, H, D).levels == [0, 1, 2]


# -- every DLE at once -----------------------------------------------------------

def _random_history(rnd, hosts=3, disks=3, days=40):
    out = []
    for h in range(hosts):
        for k in range(disks):
            host, disk = f"h{h}", f"/d{k}"
            since = -1
            for n in range(1, days + 1):
                if rnd.random() < 0.1:
                    continue  # not dumped that day
                level = 0 if since < 0 or rnd.random() < 0.15 else \
                    min(since + rnd.choice([0, 1]), 4) if since > 0 else 1
                status = rnd.choices(["OK", "PARTIAL", "FAILED"], [90, 5, 5])[0]
                parts = [] if status == "FAILED" else [Part(f"V-{n:02d}", h * 10 + k + 1, 1,
                                                            f"202601{n:02d}010000"
                                                            if n <= 31 else
                                                            f"202602{n - 31:02d}010000")]
                date = (f"202601{n:02d}010000" if n <= 31 else f"202602{n - 31:02d}010000")
                d = Dump(host, disk, date, level, parts, len(parts) or 1, status)
                d.dump_failed = status == "FAILED" and rnd.random() < 0.5
                out.append(d)
                if rnd.random() < 0.05:  # a second copy elsewhere
                    out.append(Dump(host, disk, date, level,
                                    [Part(f"C-{n:02d}", 1, 1)], 1, status))
                if status == "OK":
                    since = level
    return sorted(out, key=lambda d: d.date)  # run after run, as trace logs are read


@pytest.mark.parametrize("seed", range(25))
def test_compute_chains_equals_one_dle_at_a_time(seed, monkeypatch):
    import random

    from recovery.catalog import chains as chainsmod
    walks = []
    recent = chainsmod._recent
    monkeypatch.setattr(chainsmod, "_recent", lambda *a: walks.append(1) or recent(*a))
    rnd = random.Random(seed)
    ds = _random_history(rnd)
    labels = sorted({p.label for d in ds for p in d.parts})
    tl = {lab: Volume(lab, "20260101010000", True) for lab in labels}
    for lab in rnd.sample(labels, 3):  # some volumes overwritten since
        tl[lab] = Volume(lab, "20260301010000", True)
    available = set(rnd.sample(labels, len(labels) - 2)) if seed % 2 else None
    until = rnd.choice([None, "20260120", "20260205010000"])
    for order in ("as made", "shuffled"):
        if order == "shuffled":
            ds = list(ds)
            rnd.shuffle(ds)
        chains, errors = compute_chains(ds, until, tl, available)
        want_chains, want_errors = [], []
        for host, disk in dles(ds):
            try:
                want_chains.append(compute_chain(ds, host, disk, until, tl, available))
            except CatalogError as e:
                want_errors.append((host, disk, str(e)))
        assert [(c.host, c.disk, [id(d) for d in c.dumps]) for c in chains] == \
            [(c.host, c.disk, [id(d) for d in c.dumps]) for c in want_chains]
        assert errors == want_errors
        # in date order the recent-history walk did it; shuffled, grouping did
        assert len(walks) == 1


def test_compute_chains_selected_dles_and_one_never_dumped():
    ds = [dump(1, 0), dump(2, 1), dump(1, 0, disk="/home")]
    chains, errors = compute_chains(ds, select=[(H, D), (H, "/never")])
    assert [(c.host, c.disk, c.levels) for c in chains] == [(H, D, [0, 1])]
    assert errors == [(H, "/never", f"{H}:/never: no dump of this DLE in the catalog")]


def test_compute_chains_error_needing_history_before_the_newest_level0():
    # day 1 level 0, day 4 level 0 overwritten later, day 5 level 1 based on it:
    # the walk back from day 5 stops at the newest *usable* level 0 (day 1), so the
    # error about day 4 comes from the full history, the same as one DLE at a time
    ds = [dump(1, 0), dump(2, 0, disk="/other"), dump(4, 0), dump(5, 1), dump(6, 1,
                                                                           disk="/other")]
    tl = {f"V-0{i}": Volume(f"V-0{i}", day(i), True) for i in (1, 2, 4, 5, 6)}
    tl["V-04"] = Volume("V-04", day(9), True)
    chains, errors = compute_chains(ds, tapelist=tl)
    assert [(c.disk, dates(c)) for c in chains] == [("/other", [day(2), day(6)])]
    assert errors == [(H, D, str(pytest.raises(CatalogError, compute_chain, ds, H, D,
                                               tapelist=tl).value))]
    assert "V-04 was overwritten" in errors[0][2]
