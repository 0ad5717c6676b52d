"""Commands run as another user start where that user may be.

Found on a fresh Debian: a user cloned the project into /root (0700) and ran
`make demo`; every amrestore, run as backup, died with "Cannot chdir to
original working directory": it inherited root's current directory.
"""

import os
import pwd

import pytest

from essentials.runner import Cmd, Runner

pytestmark = pytest.mark.integration


@pytest.fixture
def in_private_dir(tmp_path, monkeypatch):
    d = tmp_path / "private"
    d.mkdir(mode=0o700)
    monkeypatch.chdir(d)
    return d


def test_run_as_backup_from_a_directory_it_cannot_enter(in_private_dir):
    home = pwd.getpwnam("backup").pw_dir
    res = Runner().run(["pwd"], user="backup")
    assert res.text.strip() == home
    # an Amanda Perl tool, which checks its working directory first
    res = Runner().run(["amgetconf", "--version"], user="backup")
    assert "3.5" in res.text + res.stderr.decode()


def test_pipeline_stage_as_backup_too(in_private_dir):
    home = pwd.getpwnam("backup").pw_dir
    out = in_private_dir / "out.txt"
    Runner().pipeline([Cmd(["pwd"], user="backup"), Cmd(["tee", str(out)])])
    assert out.read_text().strip() == home


def test_root_keeps_its_directory_and_an_explicit_cwd_wins(in_private_dir, tmp_path):
    assert Runner().run(["pwd"]).text.strip() == str(in_private_dir)
    assert Runner().run(["pwd"], user="backup", cwd="/").text.strip() == "/"
    assert os.getcwd() == str(in_private_dir)
