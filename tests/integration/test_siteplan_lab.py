"""The site plan on a site of three hosts made from the lab's history.

One Amanda server (the lab: its root and data DLEs as `localhost`) backs up
two more hosts in the same configuration, `amdr-site-db` (a database) and
`amdr-site-web` (a web server): names of this machine while the module runs
(auth "local" takes a host only when its name resolves here).  Two real
amdump runs (levels 0 and 1) put every host's images on two volumes.  Each host has its own bundle from a real
`amdr-essentials run`: the server's with the catalog, the clients' named by
`host:` and placed by `site: {priority, role}` in their essentials.yaml.

`amdr-recover site-plan` on that store: the server first, then the database
(priority 1) though it is the larger, then the web host; every image of the
catalog read, each volume in one drive at a time, a chain's levels in order;
the same facts in the text, the JSON and the printed plan.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.lab import scenario
from tests.lab.lab import AmandaLab, local_names

from .helpers import amdr, essentials_run, keys_fixture, seal

pytestmark = pytest.mark.integration
PASS = "site plan lab words"
DB = "amdr-site-db"
WEB = "amdr-site-web"

keys = keys_fixture(PASS)


def fill(d: Path, files: int, size: int, seed: str):
    d.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (d / f"{seed}-{i:03d}.dat").write_bytes(os.urandom(size))


def client_bundle(lab, keys, host: str, site: dict, store: Path) -> Path:
    """`amdr-essentials run` as the client `host` (its name in the disklist):
    the lab's disk as its layout, no Amanda catalog (a client has none), its
    place in the site plan in its essentials.yaml; delivered into the store."""
    return essentials_run(lab, keys, lab.base / f"client-{host}", store, host=host,
                          amanda=False, site=site)


@pytest.fixture(scope="module")
def site(keys):
    lab = AmandaLab(root_mb=48, data_mb=32, swap_mb=8)
    web, db = lab.base / "web", lab.base / "db"  # readable by Amanda's user, as lab.base
    lab.other_hosts = {DB: str(db), WEB: str(web)}  # in the disklist it writes on entry
    with local_names(DB, WEB), lab:
        fill(web, 4, 64 << 10, "page")  # the smaller host
        fill(db, 6, 512 << 10, "table")  # the larger
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup()
        fill(db, 2, 256 << 10, "wal")  # the incrementals have something to read
        fill(web, 1, 32 << 10, "upload")
        scenario.change1(lab.mnt, lab.data_mnt)
        lab.backup()
        store = lab.base / "store"
        store.mkdir()
        server = seal(lab, keys)  # the Amanda server's own bundle, with the catalog
        shutil.copy(server, store / server.name)
        client_bundle(lab, keys, DB, {"priority": 1, "role": "database"}, store)
        client_bundle(lab, keys, WEB, {"role": "web"}, store)
        lab.store = store
        pw = lab.base / "pass"
        pw.write_text(PASS + "\n")
        os.chmod(pw, 0o600)
        lab.keyargs = ["--gnupghome", keys.recovery_home, "--passphrase-file", pw]
        yield lab


def catalog_parts(lab) -> dict[str, set]:
    """host -> {(label, file number)} of every image the two runs wrote."""
    out: dict[str, set] = {}
    for run in lab.runs:
        for d in lab.dumps_of(run.datestamp):
            assert d.status == "OK", d
            for p in d.parts:
                out.setdefault(d.host, set()).add((p.label, p.filenum))
    return out


def test_both_runs_backed_up_all_three_hosts(site):
    hosts = catalog_parts(site)
    assert set(hosts) == {"localhost", DB, WEB}
    for run, level in zip(site.runs, (0, 1)):
        got = {(d.host, d.disk): d.level for d in site.dumps_of(run.datestamp)}
        assert got[(DB, str(site.base / "db"))] == level
        assert got[(WEB, str(site.base / "web"))] == level


def test_plan_orders_the_site_and_reads_every_image(site):
    p = amdr("amdr-recover", "site-plan", "--store", site.store, *site.keyargs,
             "--drives", "2", "--throughput", "50", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "BUG" not in p.stderr
    plan = json.loads(p.stdout)
    order = [(h["name"], h["server"], h["priority"], h["role"]) for h in plan["hosts"]]
    # the server first; then priority 1 (the larger host); then the rest
    assert order == [("localhost", True, None, None), (DB, False, 1, "database"),
                     (WEB, False, None, "web")]
    by_name = {h["name"]: h for h in plan["hosts"]}
    assert by_name[DB]["bytes"] > by_name[WEB]["bytes"]
    # nothing of the clients is read before the server is restored and rebuilt
    ready = plan["server_ready"]
    assert ready >= by_name["localhost"]["finish"] + 600 - 0.2
    assert by_name[DB]["start"] >= ready - 0.1 and by_name[WEB]["start"] >= ready - 0.1
    reads = [r for d in plan["drives"] for ld in d["loads"] for r in ld["reads"]]
    got: dict[str, set] = {}
    for r in reads:
        got.setdefault(r["host"], set()).add((r["label"], r["filenum"]))
    assert got == catalog_parts(site)  # every image of every host, each once
    assert len(reads) == sum(len(v) for v in got.values())
    # a volume is in one drive at a time
    stays = sorted((ld["loaded"], ld["end"], ld["label"], d["drive"])
                   for d in plan["drives"] for ld in d["loads"])
    for i, (a0, a1, lab_a, dr_a) in enumerate(stays):
        for b0, b1, lab_b, dr_b in stays[i + 1:]:
            if lab_a == lab_b and dr_a != dr_b:
                assert b0 >= a1 - 0.1 or a0 >= b1 - 0.1, (lab_a, dr_a, dr_b)
    # each chain's level 0 is read before its level 1
    for host, disk in {(r["host"], r["disk"]) for r in reads}:
        mine = sorted((r["level"], r["start"], r["end"]) for r in reads
                      if (r["host"], r["disk"]) == (host, disk))
        assert [m[0] for m in mine] == [0, 1], (host, disk, mine)
        assert mine[1][1] >= mine[0][2] - 0.1, (host, disk, mine)
    assert plan["errors"] == []


def test_text_and_printed_plan_say_the_same(site, tmp_path):
    out = tmp_path / "site.html"
    p = amdr("amdr-recover", "site-plan", "--store", site.store, *site.keyargs,
             "--drives", "2", "--throughput", "50", "--html", out)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    rows = [ln for ln in lines if any(f" {n} " in f" {ln} " for n in ("localhost", DB, WEB))]
    first = {n: next(i for i, ln in enumerate(rows) if f" {n} " in f" {ln} ")
             for n in ("localhost", DB, WEB)}
    assert first["localhost"] < first[DB] < first[WEB], "\n".join(rows)
    labels = {lbl for parts in catalog_parts(site).values() for lbl, _ in parts}
    doc = out.read_text()
    for label in labels:
        assert label in p.stdout and label in doc
    for n in ("localhost", DB, WEB, "database", "web"):
        assert n in doc
