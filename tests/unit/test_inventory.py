"""The tool inventory: complete, consistent, and the source of every package list."""

from __future__ import annotations

import ast
import re
import stat
import tomllib
from pathlib import Path

import pytest

from essentials import doctor, inventory
from essentials.inventory import BY_NAME, TOOLS, USES

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [ROOT / "essentials", ROOT / "recovery"]
RUNNER_CALLS = {"run", "output", "capture", "Cmd", "Step", "check_output"}


def argv_heads(paths) -> dict[str, list[str]]:
    """argv[0] of every list literal handed to the runner in the product's code."""
    found: dict[str, list[str]] = {}
    for base in paths:
        for py in base.rglob("*.py"):
            tree = ast.parse(py.read_text())
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name not in RUNNER_CALLS:
                    continue
                for arg in node.args[:3]:
                    if isinstance(arg, ast.List) and arg.elts:
                        head = arg.elts[0]
                        if isinstance(head, ast.Constant) and isinstance(head.value, str):
                            found.setdefault(head.value, []).append(
                                f"{py.relative_to(ROOT)}:{node.lineno}")
                        elif isinstance(head, ast.JoinedStr):  # f"mkfs.{fstype}"
                            prefix = "".join(v.value for v in head.values
                                             if isinstance(v, ast.Constant))
                            found.setdefault(prefix + "*", []).append(
                                f"{py.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_tool_the_code_runs_is_declared():
    heads = argv_heads(PRODUCT)
    assert len(heads) > 30  # the scan sees the code (it found the runner's calls)
    undeclared = {}
    for head, where in heads.items():
        if head.endswith("*"):
            if not any(t.startswith(head[:-1]) for t in BY_NAME):
                undeclared[head] = where
        elif head not in BY_NAME:
            undeclared[head] = where
    # the layout collector's helper takes the kind first, then the argv
    undeclared.pop("sun", None)
    assert undeclared == {}


def test_mkfs_of_every_filesystem_the_plan_makes():
    for fs in ("ext2", "ext3", "ext4", "xfs", "btrfs", "vfat"):
        assert f"mkfs.{fs}" in BY_NAME


def test_uses_and_tools_are_consistent():
    for t in TOOLS:
        assert t.uses, t.name
        for u in t.uses:
            assert u in USES, (t.name, u)
        assert re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", t.package), t.name
        re.compile(t.expect)
    assert len(BY_NAME) == len(TOOLS)  # each tool declared once
    used = {u for t in TOOLS for u in t.uses}
    assert set(USES) - used == set()  # no use without a tool


def test_amanda_tools_bring_the_perl_module_debian_forgot():
    for name in ("amadmin", "amrestore", "amfetchdump", "amrecover", "amgetconf"):
        assert "libencode-locale-perl" in BY_NAME[name].packages
    for profile in ("setup", "guest", "image"):
        assert "libencode-locale-perl" in inventory.packages(profile)


def test_profiles():
    setup, guest = inventory.packages("setup"), inventory.packages("guest")
    for p in ("iproute2", "amanda-server", "amanda-client", "dump", "gnupg", "python3-venv",
              "python3-yaml", "python3-pytest", "qemu-system-x86", "debootstrap", "tmux"):
        assert p in setup, p
    assert "qemu-system-x86" not in guest and "python3-pytest" not in guest
    assert "python3-gnupg" in guest and "iproute2" in guest
    # getcap for the capabilities collector, setcap for its test (and finalize)
    assert "libcap2-bin" in setup and "libcap2-bin" in guest
    for pkgs in (setup, guest):
        assert pkgs == sorted(set(pkgs))
        # rpm hosts' tools and multipathd (it would claim the test disks) stay out
        assert not {"rpm", "dnf", "multipath-tools"} & set(pkgs)
    with pytest.raises(KeyError):
        inventory.packages("nonsense")


def test_every_python_dependency_comes_from_debian():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {re.split(r"[<>=!~ ;\[]", d)[0].lower() for d in meta["dependencies"]}
    assert deps == set(inventory.PYTHON_DEBIAN)
    tests = {re.split(r"[<>=!~ ;\[]", d)[0].lower()
             for d in meta["optional-dependencies"]["test"]}
    assert tests == set(inventory.PYTHON_TEST_DEBIAN)


def test_the_suite_runs_on_debians_python_and_packages():
    assert inventory.check_python() == []


def test_make_setup_and_the_guest_take_the_inventorys_lists():
    mk = (ROOT / "Makefile").read_text()
    assert "-m essentials.inventory packages setup" in mk
    assert "apt-get install" in mk and "DEB_PACKAGES" not in mk
    from tests.vm import recipe
    assert set(inventory.packages("guest")) <= set(recipe.PACKAGES)


def test_main_prints_a_profile(capsys):
    assert inventory.main(["packages", "guest"]) == 0
    assert capsys.readouterr().out.split() == inventory.packages("guest")
    assert inventory.main(["packages", "nope"]) == 2
    assert inventory.main([]) == 2


# -- the probes --------------------------------------------------------------------

def script(path: Path, text: str):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_probe_of_a_real_tool():
    doctor._cache.clear()
    st = doctor.probe(BY_NAME["sfdisk"])
    assert st.ok and re.fullmatch(r"\d+\.\d+(\.\d+)?", st.detail)
    assert st.path.endswith("/sfdisk")


def test_missing_tool_names_its_package(only_path):
    st = doctor.probe(BY_NAME["mkfs.xfs"])
    assert (st.ok, st.state, st.path) == (False, "missing", None)
    assert st.detail == "not installed (Debian package xfsprogs)"


def test_a_tool_that_does_not_run_is_broken_with_its_error(only_path):
    script(only_path / "amrestore", "#!/bin/sh\necho \"Can't locate Encode/Locale.pm in @INC "
           "(you may need to install the Encode::Locale module)\" >&2\nexit 2\n")
    st = doctor.probe(BY_NAME["amrestore"])
    assert st.state == "broken"
    assert st.detail.startswith("does not run: Can't locate Encode/Locale.pm in @INC")
    assert doctor.mend([st]) == "apt-get install -y --reinstall amanda-server " \
                                "libencode-locale-perl"


def test_expected_output_is_checked_not_only_the_exit_code(only_path):
    # restore exits 1 for --version: only its banner proves it is dump's restore
    script(only_path / "restore", "#!/bin/sh\necho something else >&2\nexit 1\n")
    assert doctor.probe(BY_NAME["restore"]).state == "broken"


def test_require_lists_each_problem_and_one_mend_line(only_path):
    (only_path / "tar").symlink_to("/bin/tar")
    script(only_path / "gpg", "#!/bin/sh\nexit 127\n")
    with pytest.raises(doctor.ToolsMissing) as e:
        doctor.require({"tar": ["x"], "gpg": ["sealing the bundle"],
                        "gpgconf": ["sealing the bundle"]}, "amdr-essentials run")
    assert e.value.exit_code == 3
    assert str(e.value).splitlines() == [
        "nothing was changed: amdr-essentials run needs tools that are missing or broken "
        "here:",
        "  gpg (gnupg): does not run: exit 127; needed for sealing the bundle",
        "  gpgconf (gnupg): not installed (Debian package gnupg); needed for sealing the "
        "bundle",
        "  mend it with: apt-get install -y gnupg"]


def test_require_refuses_a_tool_the_inventory_does_not_declare():
    with pytest.raises(Exception, match="does not declare; this is a bug"):
        doctor.require(["frobnicate"], "x")


def test_report_and_render(only_path):
    (only_path / "tar").symlink_to("/bin/tar")
    report = doctor.examine(("essentials",))
    lines = doctor.render(report)
    assert lines[0].split() == ["tool", "package", "status", "needed", "by"]
    row = next(ln for ln in lines if ln.startswith("tar "))
    assert re.match(r"tar\s+tar\s+1\.\d+\s+seal the bundle,", row)
    row = next(ln for ln in lines if ln.startswith("ip "))
    assert "MISSING" in row and "collect network" in row
    for name in ("rpm", "getcap"):  # optional: not a failure
        row = next(ln for ln in lines if ln.startswith(name + " "))
        assert "(missing)" in row, row
        assert name not in {s.tool.name for s in report.failed}
    assert report.exit_code == 1
    assert any(ln.startswith("  apt-get install -y ") and "iproute2" in ln for ln in lines)
    table = lines[:lines.index("")]
    assert sum(1 for ln in table if not ln.startswith(" ")) == len(report.rows) + 1
    assert all(len(ln) <= 80 for ln in table)
    doc = doctor.to_json(report)
    assert {"tool", "package", "needed_by", "required", "state", "detail"} <= set(doc[0])


def test_summary_line_for_the_live_console(only_path):
    """The live image's console shows one line before the UI (--line)."""
    (only_path / "tar").symlink_to("/bin/tar")
    report = doctor.examine(("essentials",))
    line = doctor.summary(report, "amanda-dr live 1.0")
    n = len(report.rows)
    assert line.startswith(f"amanda-dr live 1.0: {n} tools checked, MISSING OR BROKEN: ")
    assert "ip (missing)" in line and "tar (" not in line
    assert "rpm" not in line  # optional tools are not a failure
    ok = doctor.Report([(s, by, req) for s, by, req in report.rows if s.ok])
    assert doctor.summary(ok, "x") == f"x: {len(ok.rows)} tools checked, all present"


def test_probes_run_together_and_each_once(only_path):
    """Probes run several at a time (a Perl tool starts for a second under qemu);
    the order of the results is the order asked, each tool probed once."""
    import time
    for name in ("gpg", "gpgconf", "lsblk", "blkid"):
        script(only_path / name, "#!/bin/sh\n/bin/sleep 1\necho 2.0\n")
    t0 = time.monotonic()
    got = doctor.probe_all([BY_NAME[n] for n in ("gpg", "gpgconf", "lsblk", "blkid", "gpg")])
    took = time.monotonic() - t0
    assert 1.0 <= took < 2.5, took  # four one-second probes, not one after another
    assert [s.tool.name for s in got] == ["gpg", "gpgconf", "lsblk", "blkid", "gpg"]
    assert all(s.ok and s.detail == "2.0" for s in got)
