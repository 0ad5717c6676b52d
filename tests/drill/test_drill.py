"""The boot drill: each source system recovered onto other disks, bus and NIC, then booted.

A restored system counts only when it boots: see recover_boot.py.  The
source systems and their backups are built once per content hash and
cached (systems.py); the recovery and the boot run on every CI run, two
drills at a time (AMDR_DRILL_JOBS), layout b's UEFI fallback after b.
"""

import shutil
from pathlib import Path

import pytest

from tests.vm.guest import build_guest

from . import recover_boot

pytestmark = pytest.mark.vm

RESULTS: dict[str, recover_boot.Drill] = {}
LAYOUTS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def guest_image():
    if not shutil.which("qemu-system-x86_64"):
        pytest.fail("qemu-system-x86_64 is missing: run `make setup`")
    return build_guest()


@pytest.fixture(scope="module", autouse=True)
def table(request):
    yield
    if RESULTS:
        lines = [recover_boot.HEADER] + [recover_boot.row(d) for d in RESULTS.values()]
        booted = sum(1 for d in RESULTS.values() if not recover_boot.check(d))
        lines.append(f"drill: {booted}/{len(LAYOUTS)} layouts booted")
        out = Path(recover_boot.workdir_for("table.txt"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
        rep = request.config.pluginmanager.get_plugin("terminalreporter")
        if rep is not None:
            rep.write_line("")
            for line in lines:
                rep.write_line(line)


@pytest.fixture(scope="module")
def drills(guest_image):
    ds = recover_boot.run_all(LAYOUTS, guest_image, jobs=recover_boot.jobs_default(),
                              with_fallback=True)
    RESULTS.update(ds.drills)
    return ds


@pytest.fixture(params=LAYOUTS)
def drill(request, drills):
    if request.param in drills.errors:
        pytest.fail(f"drill {request.param} crashed:\n{drills.errors[request.param]}")
    return drills.drills[request.param]


def test_the_restored_disks_boot_as_the_original(drill):
    problems = recover_boot.check(drill)
    assert not problems, "\n".join(problems) + "\n" + drill.explain()


def test_finalize_says_what_it_changed(drill):
    changed = recover_boot.changes(drill)
    text = "\n".join(changed)
    assert "initramfs made again" in text, text
    assert "10-amdr-ens3.link: ens3 was" in text, text  # the new NIC took the old name
    if drill.source.firmware == "uefi":
        assert "GRUB for UEFI" in text and "firmware entry 'debian'" in text, text
    else:
        disks = [p for p in ("/dev/sda", "/dev/sdb")][:len(drill.disks)]
        assert f"GRUB for BIOS installed on {', '.join(disks)}" in text, text
    if drill.layout == "c":
        assert "/etc/mdadm/mdadm.conf" in text, text
    assert any(s["type"] == "grub-config" and s["status"] == "done"
               for s in drill.finalize["steps"]), drill.finalize["steps"]


@pytest.fixture(scope="module")
def uefi_fallback(drills):
    if "b" in drills.errors:
        pytest.fail(f"drill b crashed:\n{drills.errors['b']}")
    assert drills.fallback is not None, ("layout b did not boot after recovery"
                                         + drills.drills["b"].explain())
    return drills.fallback


def test_uefi_without_efi_variables_boots_by_the_fallback_path(uefi_fallback):
    f = uefi_fallback
    assert f.exit_code == 0, f.explain()
    notes = "\n".join(f.report.get("notes") or [])
    assert "no firmware entry could be made" in notes, notes
    assert "did not boot with UEFI" in notes, notes
    assert not any(s["type"] == "efi-entry" for s in f.report["steps"]), f.report["steps"]
    assert any("GRUB for UEFI" in c for c in f.report["changes"]), f.report["changes"]
    assert f.booted is not None and f.booted.ok, f.explain()
    assert f.booted.host == "drill-b", f.explain()
