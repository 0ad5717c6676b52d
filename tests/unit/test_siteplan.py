"""The site plan's rules, on synthetic sites: the scheduler (schedule.py) and
the rule checker (check.py), each against the other and against checks
written here again from the plan's output alone."""

from __future__ import annotations

import copy
import random
from collections import defaultdict

import pytest

from essentials.errors import ConfigError
from recovery.siteplan.check import violations
from recovery.siteplan.schedule import (DLEIn, HostIn, ImageIn, Params, PartIn, lower_bound,
                                        parents, plan_site, rank, waves)

GB = 10 ** 9


def synthetic(seed: int, hosts: int = 12, dles: int = 3, days: int = 10, per_day: int = 3,
              split: float = 0.1) -> list[HostIn]:
    """Amanda's shape: each night's images of every host on that night's
    volumes; a DLE's chain is its last full and the newest image of each
    higher level after it; a few images split over two volumes."""
    rnd = random.Random(seed)
    nextfile: dict[str, int] = defaultdict(int)
    out = []
    for h in range(hosts):
        ds = []
        for k in range(dles):
            full = rnd.randrange(max(0, days - 7), days)
            images, level = [], 0
            for day in range(full, days, rnd.choice((1, 2))):
                label = f"D{day:02d}-{(h + k + level) % per_day}"
                size = rnd.randint(1, 40) * GB // 10 if level == 0 else rnd.randint(1, 50) * 10 ** 7
                nextfile[label] += 1
                parts = [PartIn(label, nextfile[label], size)]
                if rnd.random() < split:  # the rest on the next volume of the night
                    other = f"D{day:02d}-{(h + k + level + 1) % per_day}"
                    nextfile[other] += 1
                    parts = [PartIn(label, nextfile[label], size // 2),
                             PartIn(other, nextfile[other], size - size // 2)]
                images.append(ImageIn(f"202601{day + 1:02d}010000", level, parts))
                level += 1
            ds.append(DLEIn(["/", "/srv", "/srv/data", "/var", "/dev/sdb1"][k % 5], images))
        out.append(HostIn(f"h{h:02d}", ds, priority=rnd.choice([None, None, 1, 2, 3]),
                          server=h == 0))
    return out


SITES = [(seed, drives, streams, seek)
         for seed in range(6) for drives, streams, seek in
         ((1, 2, 10.0), (2, None, 0.0), (3, 1, 5.0), (8, 2, 10.0))]


@pytest.mark.parametrize("seed, drives, streams, seek", SITES)
def test_every_rule_holds(seed, drives, streams, seek):
    hosts = synthetic(seed)
    plan = plan_site(hosts, Params(drives=drives, throughput=100e6, streams=streams,
                                   seek_s=seek))
    assert violations(plan, hosts) == []


# -- the same rules again, written from the plan's output alone -------------------------

def reads_of(plan):
    return [(ld, r) for ld in plan.loads for r in ld.reads]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("drives", [1, 2, 4])
def test_no_volume_in_two_drives_at_once(seed, drives):
    plan = plan_site(synthetic(seed), Params(drives=drives))
    by_label = defaultdict(list)
    for ld in plan.loads:
        by_label[ld.label].append((ld.loaded, ld.end))
    for label, stays in by_label.items():
        stays.sort()
        for (a0, a1), (b0, b1) in zip(stays, stays[1:]):
            assert b0 >= a1, f"{label} in two drives at once"


@pytest.mark.parametrize("seed", range(6))
def test_drives_count_and_one_read_at_a_time(seed):
    plan = plan_site(synthetic(seed), Params(drives=3))
    assert len(plan.drives) == 3
    assert {ld.drive for ld in plan.loads} <= {1, 2, 3}
    for loads in plan.drives:
        rs = [r for ld in loads for r in ld.reads]
        for a, b in zip(rs, rs[1:]):
            assert b.start >= a.end


@pytest.mark.parametrize("seed", range(6))
def test_server_first(seed):
    hosts = synthetic(seed)
    p = Params(drives=4, rebuild_s=300)
    plan = plan_site(hosts, p)
    server = [r for _, r in reads_of(plan) if r.host == "h00"]
    others = [r for _, r in reads_of(plan) if r.host != "h00"]
    assert server and others
    assert min(r.start for r in others) >= max(r.end for r in server) + 300
    assert plan.hosts[0].name == "h00" and plan.hosts[0].server


@pytest.mark.parametrize("seed", range(6))
def test_every_image_read_exactly_once_in_chain_order(seed):
    hosts = synthetic(seed)
    plan = plan_site(hosts, Params(drives=2))
    got = defaultdict(list)
    for _, r in reads_of(plan):
        got[(r.host, r.disk)].append(r)
    for h in hosts:
        for d in h.dles:
            want = [(img.level, img.date, n, part.label, part.filenum)
                    for img in d.images for n, part in enumerate(img.parts, 1)]
            rs = sorted(got.pop((h.name, d.disk)), key=lambda r: r.start)
            assert [(r.level, r.date, r.part, r.label, r.filenum) for r in rs] == want
            for a, b in zip(rs, rs[1:]):
                assert b.start >= a.end  # level 0 applied before 1, part 1 before 2
    assert not got  # nothing read that no chain needs


def test_a_dle_inside_another_waits_for_it():
    assert parents([DLEIn(n, []) for n in ("/", "/srv", "/srv/data", "/var", "/dev/sdb1",
                                           "/srvx")]) == {1: 0, 2: 1, 3: 0, 5: 0}
    # /srv/data's image comes first on the volume; it still waits for / and /srv
    host = HostIn("h", [DLEIn("/srv/data", [ImageIn("20260101", 0, [PartIn("V1", 1, GB)])]),
                        DLEIn("/srv", [ImageIn("20260101", 0, [PartIn("V1", 2, GB)])]),
                        DLEIn("/", [ImageIn("20260101", 0, [PartIn("V2", 1, GB)])])])
    plan = plan_site([host], Params(drives=2, streams=None))
    at = {r.disk: r for _, r in reads_of(plan)}
    assert at["/srv"].start >= at["/"].end
    assert at["/srv/data"].start >= at["/srv"].end
    assert violations(plan, [host]) == []


def test_split_image_parts_in_order_across_volumes():
    img = ImageIn("20260101", 0, [PartIn("V2", 5, GB), PartIn("V1", 9, GB)])
    host = HostIn("h", [DLEIn("/big", [img, ImageIn("20260102", 1, [PartIn("V1", 3, GB)])])])
    plan = plan_site([host], Params(drives=2))
    rs = sorted((r for _, r in reads_of(plan)), key=lambda r: r.start)
    assert [(r.label, r.filenum, r.level, r.part) for r in rs] == [
        ("V2", 5, 0, 1), ("V1", 9, 0, 2), ("V1", 3, 1, 1)]


def test_one_volume_loaded_once_when_the_chains_allow():
    """One drive, volumes in date order: each needed volume goes in once, and a
    volume's images of every host are read while it is in."""
    hosts = []
    for h in range(5):
        hosts.append(HostIn(f"h{h}", [DLEIn("/", [
            ImageIn("20260101", 0, [PartIn("MON", h + 1, GB)]),
            ImageIn("20260102", 1, [PartIn("TUE", h + 1, GB // 10)]),
            ImageIn("20260103", 2, [PartIn("WED", h + 1, GB // 10)])])]))
    plan = plan_site(hosts, Params(drives=1))
    assert [ld.label for ld in plan.loads] == ["MON", "TUE", "WED"]
    assert [len(ld.reads) for ld in plan.loads] == [5, 5, 5]


def test_priority_hosts_back_first():
    """A priority 1 host's images on the volumes everyone shares are read in a
    wave of their own, before the big unprioritised hosts'."""
    hosts = []
    for h in range(6):
        hosts.append(HostIn(f"h{h}", [DLEIn("/", [
            ImageIn("20260101", 0, [PartIn("MON", h + 1, 20 * GB)]),
            ImageIn("20260102", 1, [PartIn("TUE", h + 1, GB)])])],
            priority=1 if h == 4 else None))
    plan = plan_site(hosts, Params(drives=1))
    fin = {h.name: h.finish for h in plan.hosts}
    assert fin["h4"] == min(fin.values())
    assert fin["h4"] < 0.5 * plan.makespan
    assert violations(plan, hosts) == []


def test_rank_server_priority_then_smallest():
    def host(name, size, prio=None, server=False):
        return HostIn(name, [DLEIn("/", [ImageIn("1", 0, [PartIn("V", 1, size)])])], prio,
                      server=server)
    hosts = [host("big", 9), host("small", 1), host("p2", 5, 2), host("p1", 7, 1),
             host("srv", 100, server=True), host("p1small", 3, 1)]
    assert [h.name for h in rank(hosts)] == ["srv", "p1small", "p1", "p2", "small", "big"]
    assert waves(rank(hosts)) == [0, 1, 1, 2, 3, 3]


def test_lower_bound_and_makespan():
    hosts = synthetic(3)
    p = Params(drives=4, throughput=50e6)
    plan = plan_site(hosts, p)
    b = lower_bound(hosts, p)
    assert b["total"] == pytest.approx(sum(h.bytes for h in hosts) / (4 * 50e6))
    assert plan.bound["value"] == pytest.approx(b["value"])
    assert plan.makespan >= plan.bound["positioned"] >= plan.bound["value"]
    assert plan.makespan == max(r.end for _, r in reads_of(plan))


def test_server_without_dles_is_rebuilt_first():
    srv = HostIn("backup", [], server=True)
    web = HostIn("web", [DLEIn("/", [ImageIn("1", 0, [PartIn("V", 1, GB)])])])
    plan = plan_site([web, srv], Params(drives=1, rebuild_s=120, load_s=60))
    (r,) = [r for _, r in reads_of(plan)]
    assert r.start >= 120 and plan.server_ready == 120
    assert [h.name for h in plan.hosts] == ["backup", "web"]


def test_moving_over_small_files_costs_their_reading():
    """Files 1 and 3 wanted; file 2 (not in any chain) is read over when
    shorter than a seek, spaced over when longer."""
    host = HostIn("h", [DLEIn("/a", [ImageIn("1", 0, [PartIn("V", 1, 10 ** 8)])]),
                        DLEIn("/b", [ImageIn("1", 0, [PartIn("V", 3, 10 ** 8)])])])
    p = Params(drives=1, throughput=10 ** 8, seek_s=10, load_s=0, rebuild_s=0, streams=None)
    small = plan_site([host], p, {"V": {1: 10 ** 8, 2: 2 * 10 ** 8, 3: 10 ** 8}})
    big = plan_site([host], p, {"V": {1: 10 ** 8, 2: 50 * 10 ** 8, 3: 10 ** 8}})
    unknown = plan_site([host], p)
    assert [r.start for r in small.loads[0].reads] == [0, 3]
    assert [r.start for r in big.loads[0].reads] == [0, 11]
    assert [r.start for r in unknown.loads[0].reads] == [0, 11]


def test_bad_parameters_are_named():
    with pytest.raises(ConfigError, match="drives"):
        plan_site([], Params(drives=0))
    with pytest.raises(ConfigError, match="throughput"):
        plan_site([], Params(throughput=0))
    with pytest.raises(ConfigError, match="twice"):
        plan_site([HostIn("a", []), HostIn("a", [])], Params())


# -- the checker finds a broken plan (so the tests above can fail) ----------------------

@pytest.fixture
def good():
    hosts = synthetic(1)
    plan = plan_site(hosts, Params(drives=3))
    assert violations(plan, hosts) == []
    return hosts, plan


def test_checker_sees_a_volume_in_two_drives(good):
    hosts, plan = good
    bad = copy.deepcopy(plan)
    a = bad.drives[0][1]
    b = next(ld for ld in bad.drives[1] if ld.label != a.label)
    b.label = a.label
    for r in b.reads:
        r.label = a.label
    b.loaded, b.end = a.loaded, a.end
    assert any("at once" in v for v in violations(bad, hosts))


def test_checker_sees_levels_out_of_order(good):
    hosts, plan = good
    bad = copy.deepcopy(plan)
    by_dle = defaultdict(list)
    for _, r in reads_of(bad):
        by_dle[(r.host, r.disk)].append(r)
    rs = next(v for v in by_dle.values() if len(v) >= 2)
    rs.sort(key=lambda r: r.start)
    rs[-1].start, rs[-1].end = rs[0].start - 1000, rs[0].start - 1000 + (rs[-1].end - rs[-1].start)
    assert any("before level" in v for v in violations(bad, hosts))


def test_checker_sees_a_missing_and_a_doubled_read(good):
    hosts, plan = good
    bad = copy.deepcopy(plan)
    ld = next(ld for ld in bad.loads if len(ld.reads) >= 2)
    ld.reads[1] = copy.deepcopy(ld.reads[0])
    vs = violations(bad, hosts)
    assert any("never read" in v for v in vs) and any("read 2 times" in v for v in vs)


def test_checker_sees_a_host_before_the_server(good):
    hosts, plan = good
    bad = copy.deepcopy(plan)
    r = next(r for _, r in reads_of(bad) if r.host != "h00")
    r.end, r.start = r.end - r.start, 0.0
    assert any("before the server" in v for v in violations(bad, hosts))


def test_checker_sees_too_many_drives(good):
    hosts, plan = good
    bad = copy.deepcopy(plan)
    bad.drives.append([])
    assert any("drives used" in v for v in violations(bad, hosts))


def test_the_positioned_bound_holds_the_servers_prefix_and_stays_below_every_plan():
    """With a server to restore first, the bound adds its restore, a load and
    the rebuild before the others' work (less the loads a drive may make
    during the rebuild); over many sites and costs it is never above the
    planner's makespan (a lower bound that is not one would flatter it)."""
    srv = HostIn("backup", [DLEIn("/", [ImageIn("20260101010000", 0,
                                                [PartIn("V1", 1, 10 * GB)])])], server=True)
    cli = HostIn("web", [DLEIn("/", [ImageIn("20260101010000", 0, [PartIn("V1", 2, GB)])])])
    p = Params(drives=2, throughput=100e6, load_s=60, seek_s=10, rebuild_s=600)
    plan = plan_site([srv, cli], p)
    # 100 s of the server's, a load, the rebuild; then 10 s of web's on a drive,
    # its volume's load made during the rebuild
    assert plan.bound["positioned"] == pytest.approx(100 + 60 + 600 + (10 + 60 - 60) / 2)
    assert plan.makespan >= plan.bound["positioned"]
    for seed in range(40):
        hosts = synthetic(seed, hosts=8)
        for load, seek, drives in ((60, 10, 2), (0, 0, 3), (120, 30, 1), (5, 60, 4)):
            q = Params(drives=drives, throughput=80e6, load_s=load, seek_s=seek,
                       rebuild_s=300)
            got = plan_site(hosts, q)
            assert got.makespan >= got.bound["positioned"] - 1e-6, (seed, load, seek)


def test_a_server_alone_is_bounded_by_its_restore_and_rebuild():
    srv = HostIn("backup", [DLEIn("/", [ImageIn("1", 0, [PartIn("V", 1, 2 * GB)])])],
                 server=True)
    plan = plan_site([srv], Params(drives=2, throughput=100e6, rebuild_s=600, load_s=60))
    assert plan.makespan == pytest.approx(60 + 20 + 600)
    assert plan.floor == pytest.approx(60 + 20 + 600)  # this plan is the best there is
    from recovery.siteplan import show
    assert "no plan is shorter than 0:11" in show.summary(plan)[1]
    assert "this one: 1.00x" in show.summary(plan)[1]


def test_the_site_runbook_names_each_hosts_bundle_and_the_servers_catalog():
    from recovery.runbook import site as site_runbook
    hosts = synthetic(3, hosts=3)
    plan = plan_site(hosts, Params(drives=2))
    names = {h.name: f"{h.name}-20260301T020000Z.amdr.gpg" for h in hosts}
    doc = site_runbook.document(plan, [], names)
    srv = names["h00"]
    assert f"amdr-recover runbook --bundle {srv} --out h00.pdf" in doc
    for h in ("h01", "h02"):
        assert f"--bundle {names[h]} --catalog-bundle {srv} --out {h}.pdf" in doc
    bare = site_runbook.document(plan, [])
    assert "--bundle h01-YYYYMMDDTHHMMSSZ.amdr.gpg --catalog-bundle SERVER.amdr.gpg" in bare


def test_the_bound_holds_when_a_reload_is_cheaper_than_a_seek():
    """A load reaches any file, so with loads cheaper than seeks a plan may
    load a volume twice rather than space forward: the bound allows it."""
    a = HostIn("a", [DLEIn("/", [ImageIn("1", 0, [PartIn("V", 1, 10 ** 8)])]),
                     DLEIn("/x", [ImageIn("1", 0, [PartIn("W", 1, 10 ** 8)])])], priority=1)
    b = HostIn("b", [DLEIn("/", [ImageIn("1", 0, [PartIn("V", 3, 10 ** 8)])])], priority=2)
    for server in (False, True):
        hosts = [a, b] + ([HostIn("srv", [DLEIn("/", [ImageIn("1", 0, [PartIn("S", 1, 10 ** 8)])])],
                                  server=True)] if server else [])
        p = Params(drives=1, throughput=10 ** 8, load_s=5, seek_s=60, rebuild_s=10)
        plan = plan_site(hosts, p, {"V": {1: 10 ** 8, 2: 10 ** 11, 3: 10 ** 8}})
        assert plan.makespan >= plan.bound["positioned"] - 1e-6, (server, plan.makespan,
                                                                   plan.bound)
