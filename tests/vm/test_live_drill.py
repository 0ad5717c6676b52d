"""A whole recovery from the live ISO, unattended, ending with the restored
system booting: `amdr-recover drill` run as a site would run it.

The source is the boot drill's system a (tests/drill/systems.py: a real
Debian 12 backed up by a real amdump, its bundle sealed by amdr-essentials).
`drill` boots the ISO in qemu with blank disks, a medium holding the bundle,
the key and an answers file, and the volumes as a read-only shared folder;
the live system finds the medium, recovers unattended, writes its reports to
the medium and powers off; then the restored disks boot alone and report
themselves.  Then, independently of the product's own verdict, the same
disks are booted by the test harness (tests/drill/boot.py) and its marker
must show the original host, mounts, swap and address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from image import build as image_build
from tests.drill.boot import boot
from tests.drill.systems import source_system

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def iso():
    return image_build.build(say=lambda line: print(line, flush=True))


@pytest.fixture(scope="module")
def source():
    return source_system("a")


@pytest.fixture(scope="module")
def drilled(iso, source, tmp_path_factory):
    work = tmp_path_factory.mktemp("drill")
    reports = work / "reports"
    bin_ = Path(sys.executable).parent
    p = subprocess.run([str(bin_ / "amdr-recover"), "drill", "--bundle", str(source.bundle),
                        "--vtapes", str(source.vtapes), "--gnupghome", str(source.gnupghome),
                        "--iso", iso["path"], "--workdir", str(work / "w"), "--report-dir",
                        str(reports), "--keep", "--accel", "tcg", "--timeout", "2400"],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=3600)
    print(p.stdout)
    [j] = sorted(reports.glob("amdr-drill-*.json"))
    res = json.loads(j.read_text())
    # the drill works in a new directory of its own inside --workdir
    assert Path(res["workdir"]).parent == work / "w"
    return p, res, reports, Path(res["workdir"])


def test_the_drill_passes_and_says_why(drilled, source):
    p, res, reports, _ = drilled
    assert p.returncode == 0, p.stdout[-5000:] + p.stderr[-3000:]
    assert res["passed"] and res["problems"] == [], res
    assert res["recover_exit"] == 0
    # every DLE restored, from level 0
    assert sorted(r["disk"] for r in res["restores"]) == sorted(source.mounts)
    assert all(r["levels"][0] == 0 for r in res["restores"])
    # finalize ran in the live system and changed the restored system
    assert res["finalize_changes"], res
    # what the restored system said of itself
    b = res["booted"]
    assert b["host"] == source.host and b["complete"]
    assert {m["target"] for m in b["mounts"]} >= set(source.mounts)
    assert b["swaps"], b
    assert any(a["addr"] == source.address for a in b["addrs"]), b
    # (the source system's own test marker, amdr-boot-marker, powers it off
    # once multi-user is reached: the check may see that shutdown begin, and
    # the marker itself stopped in it)
    assert b["state"] in ("running", "stopping"), b
    assert [u for u in b["failed"] if u != "amdr-boot-marker.service"] == [], b
    # the reports to keep: text and HTML, and the figures printed
    [txt] = reports.glob("amdr-drill-*.txt")
    [htm] = reports.glob("amdr-drill-*.html")
    assert txt.read_text().splitlines()[0].endswith("PASSED")
    assert "PASSED</span>" in htm.read_text()
    print("drill figures (s): " + ", ".join(f"{k} {v}" for k, v in res["steps"].items()))
    # the HTML report as a person sees it printed: a page, its text
    art = Path(os.environ.get("AMDR_ARTIFACTS", "/var/tmp/amdr-artifacts")) / "drill"
    art.mkdir(parents=True, exist_ok=True)
    for old in art.glob("report-*.png"):
        old.unlink()
    pdf = art / "report.pdf"
    subprocess.run(["weasyprint", str(htm), str(pdf)], check=True, capture_output=True)
    subprocess.run(["pdftoppm", "-r", "80", "-png", str(pdf), str(art / "report")], check=True)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert sorted(art.glob("report-*.png")) and "PASSED" in text and source.host in text, text


def test_the_live_system_took_the_hosts_own_address_from_the_bundle(drilled, source):
    """welcome.network: original: the bundle's static address, gateway and DNS
    on the NIC with the original MAC, before the recovery ran."""
    _, _, _, work = drilled
    log = (work / "answers.log").read_text()
    want = f"welcome.network static:{source.address},{source.gateway},"
    assert want in log, log[:3000]
    assert f"amdr.net: {source.address} on " in log
    now = next(ln for ln in log.splitlines() if ln.startswith("answers: network now: "))
    assert source.address in now and "not online" not in now, now
    assert log.index(want) < log.index("answers: recover --bundle")


def test_the_medium_with_the_key_is_gone(drilled):
    _, res, _, work = drilled
    assert not (work / "medium.img").exists()
    assert not list(work.rglob("*.pass")) and not list(work.rglob("private-keys-v1.d"))


def test_the_harness_boots_the_same_disks_independently(drilled, source):
    """The test fixture's own marker (amdr-boot-marker, in the source system
    since it was built), not the product's check, on the disks the drill left.
    This machine is not the drill's (no AMDR-DRILL serial): the product's
    check unit must step aside, and say nothing."""
    _, res, _, work = drilled
    disks = sorted(work.glob("disk*.img"))
    assert disks, "the drill kept no disks (--keep)"
    b = boot([(d, "virtio") for d in disks], firmware=source.firmware, ovmf_vars=None,
             mac=source.mac, machine="q35", nic_addr=None, timeout=600)
    assert b.ok, b.explain()
    assert b.host == source.host
    active = {m.get("target") for m in b.mounts}
    assert set(source.mounts) <= active, b.mounts
    assert b.swaps, b.explain()
    assert any(n.get("addr") == source.address for n in b.net), b.net
    assert "AMDR-DRILL-BEGIN" not in b.console
