"""site-plan from a directory of bundles: the server's catalog, the clients'
names and priorities, the text and JSON a person and a program read."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
import yaml

from essentials.bundle import write_manifest
from recovery import cli
from recovery.catalog.chains import Chain
from recovery.catalog.model import Dump, Part
from recovery.siteplan import collect

CONF = "DailySet1"
# three nights on three volumes; backup1 (the server) backs itself up too;
# web1's /srv has a split level 0; db1 has no bundle in the store
NIGHTS = [("20260105010000", "DS-01", 0), ("20260106010000", "DS-02", 1),
          ("20260107010000", "DS-03", 2)]
DLES = [("backup1.example.com", "/"), ("web1.example.com", "/"),
        ("web1.example.com", "/srv"), ("mail1.example.com", "/"),
        ("db1.example.com", "/")]


def trace_log(date, label, level) -> str:
    lines = [f'START taper datestamp {date} "ST:{CONF}" "POOL:{CONF}" label {label} tape 1']
    f = 0
    for host, disk in DLES:
        size = (4 if level == 0 else 1) * 10 ** 9 // (1 if level == 0 else 50)
        split = host.startswith("web1") and disk == "/srv" and level == 0
        n = 2 if split else 1
        for part in range(1, n + 1):
            f += 1
            lines.append(f'PART taper "ST:{CONF}" "POOL:{CONF}" {label} {f} {host} {disk} '
                         f'{date} {part}/-1 {level} [sec 1 bytes {size // n} kps 1]')
        lines.append(f'DONE taper "ST:{CONF}" "POOL:{CONF}" {host} {disk} {date} {n} {level} '
                     f'[sec 1 bytes {size} kps 1]')
    return "\n".join(lines) + "\n"


def bundle_dir(root, host, files: dict, extra: dict | None = None):
    d = root / f"{host}-20260107T030000Z"
    for rel, text in files.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)
    write_manifest(d, {}, {"host": host, "fqdn": f"{host}.example.com",
                           "created": "2026-01-07T03:00:00Z", **(extra or {})})
    return d


def etc_tar(essentials: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = yaml.safe_dump(essentials).encode()
        info = tarfile.TarInfo("etc/amanda-dr/essentials.yaml")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def store(tmp_path):
    s = tmp_path / "store"
    s.mkdir()
    base = f"amanda/{CONF}"
    files = {f"{base}/amanda.conf": 'org "x"\ndefine dumptype gt { program "GNUTAR" }\n',
             f"{base}/disklist": "".join(f"{h} {d} gt\n" for h, d in DLES),
             f"{base}/tapelist": "".join(f"{date} {lab} reuse\n"
                                         for date, lab, _ in reversed(NIGHTS))}
    for date, label, level in NIGHTS:
        files[f"{base}/logs/log.{date}.0"] = trace_log(date, label, level)
    bundle_dir(s, "backup1", files)
    bundle_dir(s, "web1", {"amanda/client.yaml": yaml.safe_dump(
        {"configs": [{"hostname": "web1.example.com"}]})}, {"priority": 2, "role": "web"})
    bundle_dir(s, "mail1", {"etc.tar": etc_tar({"priority": 1, "role": "mail"})})
    return s


def run(capsys, *argv):
    rc = cli.main(["site-plan", "--no-verify", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_site_plan_json(store, capsys):
    rc, out, err = run(capsys, "--store", str(store), "--drives", "2", "--throughput", "100",
                       "--json")
    assert rc == 0, err
    doc = json.loads(out)
    hosts = [(h["name"], h["server"], h["priority"], h["role"]) for h in doc["hosts"]]
    assert hosts == [("backup1.example.com", True, None, None),
                     ("mail1.example.com", False, 1, "mail"),
                     ("web1.example.com", False, 2, "web")]
    reads = [r for d in doc["drives"] for ld in d["loads"] for r in ld["reads"]]
    web_srv = sorted((r for r in reads if r["disk"] == "/srv"), key=lambda r: r["start"])
    assert [(r["level"], r["part"], r["label"]) for r in web_srv] == [
        (0, 1, "DS-01"), (0, 2, "DS-01"), (1, 1, "DS-02"), (2, 1, "DS-03")]
    assert {r["host"] for r in reads} == {"backup1.example.com", "web1.example.com",
                                          "mail1.example.com"}
    assert any("db1.example.com" in n and "no bundle" in n for n in doc["notes"]), doc["notes"]
    assert doc["params"]["throughput"] == 100e6
    assert doc["makespan"] >= doc["bound"]["value"] > 0
    assert "BUG" not in err


def test_site_plan_text_and_html(store, capsys, tmp_path):
    page = tmp_path / "plan.html"
    rc, out, err = run(capsys, "--store", str(store), "--measured", str(report(tmp_path)),
                       "--priority", "web1.example.com=1", "--html", str(page))
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("site plan: 3 hosts")
    assert "throughput 50 MB/s per drive, measured on 2 DLE(s)" in out
    table = lines[lines.index(next(x for x in lines if x.strip().startswith("#"))) + 1:][:3]
    assert "backup1" in table[0] and "Amanda server" in table[0]
    # web1 is priority 1 now, as mail1: mail1, the smaller, first
    assert "mail1" in table[1] and "web1" in table[2] and " 1 " in table[2]
    assert "drive 1:" in out and "load DS-01" in out
    assert "<h1>Site recovery plan</h1>" in page.read_text()


def report(tmp_path):
    p = tmp_path / "restore-report.json"
    p.write_text(json.dumps({"restored": [{"bytes": 100e6, "seconds": 2.0},
                                          {"bytes": 50e6, "seconds": 1.0}]}))
    return p


def test_no_server_bundle_is_said(tmp_path, capsys):
    s = tmp_path / "store"
    s.mkdir()
    bundle_dir(s, "web1", {"amanda/client.yaml": "configs: []\n"})
    rc, out, err = run(capsys, "--store", str(s))
    assert rc == 3 and "holds an Amanda catalog" in err and "server's bundle" in err


def test_bad_options_are_named(store, capsys):
    rc, _, err = run(capsys, "--store", str(store), "--priority", "web1")
    assert rc == 2 and "HOST=N" in err
    rc, _, err = run(capsys, "--store", str(store), "--priority", "nosuch=1")
    assert rc == 2 and "no host nosuch" in err
    rc, _, err = run(capsys, "--store", str(store), "--drives", "0")
    assert rc == 2 and "drives" in err
    rc, _, err = run(capsys, "--store", str(store / "nope"))
    assert rc == 2 and "no such directory" in err


def test_sizes_missing_from_the_catalog_are_estimated():
    def dump(level, date, size):
        return Dump("h", "/", date, level, [Part("V", level + 1, 1, None, size)], 1)
    chains = [Chain("h", "/", [dump(0, "1", 1000), dump(1, "2", None)]),
              Chain("g", "/", [dump(0, "1", None)])]
    hosts, est = collect.hosts_from_chains(chains, {"h": {"priority": 3}})
    assert est == 2
    by = {h.name: h for h in hosts}
    assert by["h"].priority == 3
    assert [p.bytes for i in by["h"].dles[0].images for p in i.parts] == [1000, 1000]
    assert by["g"].dles[0].images[0].parts[0].bytes == 1000  # the site's mean
    assert by["g"].dles[0].images[0].parts[0].estimated
