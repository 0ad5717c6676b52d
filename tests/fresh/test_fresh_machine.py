"""The README's commands on a fresh Debian 12: prerequisites, make setup, doctor, make demo.

A minimal bookworm (debootstrap minbase) gets exactly the README's
prerequisite line, a clone of the committed tree, `make setup`, both
`doctor`s and `make demo`.  Then the failure a user once hit is made again
(Debian's amanda-common without libencode-locale-perl) and `doctor` must
name it with the line that mends it.
"""

from __future__ import annotations

import re

import pytest

from .machine import CACHE, FreshMachine, readme_commands

pytestmark = pytest.mark.integration

STEPS = """
step() {{ echo "== step $1 $(date +%s)"; }}
step prerequisites
{prerequisites}
step clone
git clone -q /mnt/source /root/amanda-dr
cd /root/amanda-dr
git log -1 --format='commit %H'
step setup
{setup}
step python
.venv/bin/python -c 'import sys; print("venv python", sys.version.split()[0], sys.base_prefix)'
step doctor
.venv/bin/amdr-essentials doctor
.venv/bin/amdr-recover doctor
step demo
{demo}
step broken-amanda
dpkg -r --force-depends libencode-locale-perl >/dev/null 2>&1
rc=0; .venv/bin/amdr-recover doctor > /tmp/doctor.out || rc=$?
cat /tmp/doctor.out
echo "doctor exit $rc"
step end
"""


@pytest.fixture(scope="module")
def fresh():
    cmds = readme_commands()
    assert {"prerequisites", "clone", "setup", "demo"} <= set(cmds), cmds
    m = FreshMachine(progress=lambda *a: None)
    log = CACHE / "last-run.log"  # kept for a look after a failure
    try:
        res = m.run(STEPS.format(**cmds), timeout=45 * 60, log=log)
    finally:
        m.cleanup()
    steps = {name: int(t) for name, t in re.findall(r"^== step (\S+) (\d+)$", res.output,
                                                     re.M)}
    print(f"fresh machine: exit {res.returncode} in {res.seconds:.0f} s; steps "
          + ", ".join(f"{a} {steps[b] - steps[a]} s" for a, b in zip(steps, list(steps)[1:])))
    return res, steps, cmds


def _between(out: str, a: str, b: str) -> str:
    return out[out.index(f"== step {a} "):out.index(f"== step {b} ")]


def test_every_step_ran(fresh):
    res, steps, _ = fresh
    assert res.returncode == 0, res.output[-6000:]
    assert list(steps) == ["prerequisites", "clone", "setup", "python", "doctor", "demo",
                           "broken-amanda", "end"]


def test_prerequisites_are_the_readme_line(fresh):
    res, _, cmds = fresh
    assert cmds["prerequisites"].startswith("apt-get update && apt-get install -y make git")
    assert f"+ {cmds['prerequisites'].split(' && ')[1]}" in res.output


def test_venv_is_debians_python(fresh):
    res, _, _ = fresh
    assert "venv python 3.11.2 /usr\n" in res.output


def test_both_doctors_pass_on_the_fresh_machine(fresh):
    res, _, _ = fresh
    part = _between(res.output, "doctor", "demo")
    assert part.count("every needed tool runs") == 2, part
    for tool in ("amrestore", "amadmin", "ip", "gpg", "mkfs.xfs", "restore", "sfdisk"):
        row = re.search(rf"^{re.escape(tool)} +\S+ +(\S+)", part, re.M)
        assert row and re.match(r"\d", row.group(1)), (tool, row and row.group(0))


def test_demo_restores_and_verifies_every_dle(fresh):
    res, _, _ = fresh
    part = _between(res.output, "demo", "broken-amanda")
    assert re.search(r"^demo: every DLE verified$", part, re.M), part[-4000:]
    assert re.search(r"^\S+ +0,1,2 +\d+ +\d+ ", part, re.M)  # a row per DLE, 3 levels


def test_doctor_names_amandas_missing_perl_module(fresh):
    res, _, _ = fresh
    part = _between(res.output, "broken-amanda", "end")
    assert "doctor exit 1" in part
    assert re.search(r"^amrestore +amanda-server +BROKEN", part, re.M), part
    assert "amrestore: does not run: Can't locate Encode/Locale.pm" in part
    assert re.search(r"apt-get install -y --reinstall .*libencode-locale-perl", part)
