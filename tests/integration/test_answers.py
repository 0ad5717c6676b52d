"""`amdr-recover recover --answers FILE` on the real lab: the whole recovery
decided by a file on the medium (bundle, keys, volumes, confirm), no terminal;
and everything that must stop it before any disk is touched."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.lab import scenario
from tests.lab.keys import make_keys
from tests.lab.lab import AmandaLab, sh

from .helpers import amdr, blank_disk, differences, seal, umount_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keys():
    k = make_keys("")
    yield k
    k.cleanup()


@pytest.fixture(scope="module")
def lab(keys):
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup(expect=0)
        lab.sealed = seal(lab, keys)
        lab.rogue = seal(lab, keys, keys.rogue_home, keys.rogue_fpr)
        yield lab


@contextlib.contextmanager
def medium(tmp_path, lab, keys, answers: dict, bundle=None):
    """A medium as the field engineer brings it and the live system mounts it:
    an ext4 filesystem, read-only, with the bundle, the recovery key and the
    answers file (paths in it relative to the medium)."""
    m = tmp_path / "medium"
    (m / "bundles").mkdir(parents=True)
    shutil.copy(bundle or lab.sealed, m / "bundles")
    shutil.copytree(keys.recovery_home, m / "keys", ignore=shutil.ignore_patterns("S.*"))
    (m / "amdr-answers.yaml").write_text(yaml.safe_dump(answers))
    img, mnt = tmp_path / "medium.img", tmp_path / "AMDR"
    sh(["mke2fs", "-q", "-t", "ext4", "-L", "AMDR", "-d", str(m), str(img), "32M"])
    mnt.mkdir()
    dev = sh(["losetup", "-f", "--show", str(img)]).strip()  # a stick: writable underneath
    try:
        sh(["mount", "-o", "ro", dev, str(mnt)])
        try:
            yield mnt / "amdr-answers.yaml"
        finally:
            sh(["umount", str(mnt)], check=False)
    finally:
        sh(["losetup", "-d", dev], check=False)


def base_answers(lab, new, target):
    return {"bundles": {"media": ["."], "store": str(target) + ".store"},
            "host": "localhost",
            "unlock": {"gnupghome": "keys"},
            "disks": {"map": {lab.loop: new}},
            "plan": {"vtapes": str(lab.vtapes)},
            "confirm": "localhost",
            "run": {"finalize": False, "target": str(target), "drill": True},
            "summary": {"report": "reports", "then": "poweroff"}}


def size(lab):
    return os.path.getsize(lab.image) + (16 << 20)


def test_a_whole_recovery_from_the_answers_file(lab, keys, tmp_path):
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", size(lab)) as new, \
            medium(tmp_path, lab, keys, base_answers(lab, new, target)) as f:
        assert not os.access(f.parent, os.W_OK)  # the key's GnuPG home too
        try:
            p = amdr("amdr-recover", "recover", "--answers", f)
            out = p.stdout + p.stderr
            assert p.returncode == 0, out
            # the drill's check unit: in the restored system, enabled
            assert (target / "etc/systemd/system/multi-user.target.wants/"
                    "amdr-drill-check.service").is_symlink()
            diff = differences(lab, target)
            # every file as it was, but for the check unit the drill asked for
            # (and the mtimes of the directories that took it)
            added = ("etc/systemd", "usr/local")
            root = diff.pop(lab.root_disk)
            assert diff == {d: [] for d in lab.dle_dirs() if d != lab.root_disk}
            assert [ln for ln in root if not ln.startswith(added)
                    and not ln.startswith(("etc: mtime", "usr: mtime"))] == [], root
            assert any(ln.startswith("usr/local: unexpected") for ln in root), root
        finally:
            umount_target(target)
        # what it did, in plain lines, in order
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("answers: ")]
        order = ["host: localhost, bundle " + lab.sealed.name, "unlock: ", "confirm: ",
                 "recover --bundle", "run: exit 0", "summary: reports in",
                 "summary.then poweroff: only on the live system"]
        at = [next((i for i, ln in enumerate(lines) if o in ln), None) for o in order]
        assert None not in at, "\n".join(lines)
        assert at == sorted(at), lines
        assert "usable" in lines[at[1]]
        # the reports on the medium, which is read-only again
        assert not os.access(f.parent, os.W_OK)
        reports = f.parent / "reports"
        summ = json.loads((reports / "summary.json").read_text())
        assert summ["exit"] == 0 and summ["host"] == "localhost"
        done = json.loads((reports / "restore-report.json").read_text())
        assert sorted(r["disk"] for r in done["restored"]) == sorted(lab.dle_dirs())
    # the private copy of the key's home is gone with the recovery
    assert not list(Path("/run/amanda-dr/gnupg").glob("*/private-keys-v1.d/*"))


@pytest.mark.parametrize("case", ["no-confirm", "wrong-confirm", "rogue-signer",
                                  "unknown-host", "unknown-key"])
def test_stopped_before_any_disk_is_touched(lab, keys, tmp_path, case):
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", size(lab)) as new:
        a = base_answers(lab, new, target)
        bundle = None
        if case == "no-confirm":
            del a["confirm"]
        elif case == "wrong-confirm":
            a["confirm"] = "web1"
        elif case == "rogue-signer":
            bundle = lab.rogue
        elif case == "unknown-host":
            a["host"] = "db9"
        else:
            a["disks"]["wipe"] = True
        with medium(tmp_path, lab, keys, a, bundle) as f:
            p = amdr("amdr-recover", "recover", "--answers", f)
        err = p.stderr
        want = {"no-confirm": (4, "the answers have no confirm: localhost: nothing is wiped"),
                "wrong-confirm": (4, "answers confirm: 'web1' is not the host being recovered"
                                     " (localhost): no disk was touched"),
                "rogue-signer": (4, "cannot be used, so no disk was touched: refused:"),
                "unknown-host": (2, "answers host: db9: no bundle of that host was found "
                                    "(found: localhost)"),
                "unknown-key": (2, "disks.wipe: unknown key (known: map, luks-key-file)")}[case]
        assert p.returncode == want[0], p.stdout + err
        assert want[1] in err, err
        if case == "rogue-signer":
            assert keys.rogue_fpr[-16:] in err or "signed by" in err, err
        assert sh(["blkid", "-p", new], check=False) == ""  # still blank
        assert not target.exists() or not os.listdir(target)
