"""amgtar under a name the site chose (`application "site_tar"`): restored by
what the application runs, not guessed from its name.

Before: the program was guessed from the name ("gtar" in it or not), so this
DLE was "cannot be restored yet" after the wipe, and `restore-tar` advised
`restore-dump`.  Level 0 and level 1, restored by `recover` and `restore-tar`.
"""

from __future__ import annotations

import os

import pytest

from tests.lab import scenario, tree
from tests.lab.lab import AmandaLab

from .helpers import amdr, blank_disk, collect, umount_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8, slots=6) as lab:
        conf = lab.confdir / "amanda.conf"
        text = conf.read_text()
        old = '''define dumptype lab-gnutar {
  lab-base
  program "GNUTAR"
'''
        assert old in text
        conf.write_text(text.replace(old, '''define application-tool site_tar {
  plugin "amgtar"
  property "ONE-FILE-SYSTEM" "yes"
}

define dumptype lab-gnutar {
  lab-base
  program "APPLICATION"
  application "site_tar"
'''))
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup(expect=0)
        scenario.change1(lab.mnt, lab.data_mnt)
        lab.backup(expect=1)
        lab.bundle = collect(lab, lab.base / "bundle")
        yield lab


def test_the_plan_names_the_plugin(lab, tmp_path):
    p = amdr("amdr-recover", "plan", "--bundle", lab.bundle, "--target", tmp_path / "t",
             "--vtapes", lab.vtapes)
    assert f"localhost:{lab.root_disk} (APPLICATION:amgtar) levels 0,1" in p.stdout, p.stdout
    assert "NOT RESTORABLE" not in p.stdout


def test_restore_tar_restores_it(lab, tmp_path):
    into = tmp_path / "into"
    p = amdr("amdr-recover", "restore-tar", "--bundle", lab.bundle, "--vtapes", lab.vtapes,
             "--host", "localhost", "--disk", lab.root_disk, "--into", into)
    assert p.returncode == 0, p.stdout + p.stderr
    got = tree.snapshot(str(into), exclude={"lost+found", "srv"})
    assert tree.compare(lab.runs[-1].manifests[lab.root_disk], got) == []


def test_recover_restores_it(lab, tmp_path):
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image) + (16 << 20)) as new:
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.bundle, "--target", target,
                     "--vtapes", lab.vtapes, "--map", f"{lab.loop}={new}", "--yes",
                     "--no-finalize")
            assert p.returncode == 0, p.stdout + p.stderr
            got = tree.snapshot(str(target), exclude={"lost+found", "srv"})
            assert tree.compare(lab.runs[-1].manifests[lab.root_disk], got) == []
        finally:
            umount_target(target)
