"""The etc and packages collectors' commands and parsers, without touching the system."""

from pathlib import Path

import pytest

from essentials.collectors import etc as etc_collector
from essentials.collectors import packages
from essentials.collectors.base import Context, ToolMissing
from essentials.runner import Runner

# -- etc.tar -------------------------------------------------------------------------


def test_tar_argv_for_a_dir_named_etc():
    argv = etc_collector.tar_argv(Path("/mnt/target/etc"), Path("/out/etc.tar"),
                                  ["etc/ssl/private", "/etc/shadow-"])
    assert argv == [
        "tar", "--create", "--file", "/out/etc.tar", "--format=posix", "--acls", "--xattrs",
        "--xattrs-include=*", "--verbose", "--verbose", "--directory", "/mnt/target",
        "--anchored", "--exclude=etc/ssl/private", "--exclude=etc/shadow-", "--", "etc"]
    assert "--numeric-owner" not in argv  # names and numbers are both kept


def test_tar_argv_renames_another_dir_to_etc():
    argv = etc_collector.tar_argv(Path("/tmp/t/my.etc"), Path("/o/etc.tar"),
                                  ["etc/ssl/private", "*.dpkg-old"])
    # excludes match the name on disk, --transform renames the members
    assert "--exclude=my.etc/ssl/private" in argv
    assert "--exclude=*.dpkg-old" in argv
    assert "--transform=s,^my\\.etc/,etc/,S" in argv
    assert "--transform=s,^my\\.etc$,etc,S" in argv
    assert argv[-2:] == ["--", "my.etc"]


def test_parse_listing():
    text = """\
drwxr-xr-x  root/root         0 2026-11-22 02:07 etc/
prw-r--r--  root/root         0 2026-11-22 02:07 etc/fifo
lrwxrwxrwx  root/root         0 2026-11-22 02:07 etc/link -> a
-rw-r-----  backup/disk       3 2026-11-22 02:07 etc/a b
hrw-r-----  backup/disk       0 2026-11-22 02:07 etc/c link to etc/a b
-rwsr-xr-x  root/root      1000 2026-11-22 02:07 etc/suid
"""
    assert etc_collector.parse_listing(text) == {"entries": 6, "files": 2, "bytes": 1003}


def test_tar_failure_is_an_error_and_exit_1_a_warning(tmp_path):
    (tmp_path / "etc").mkdir()
    out = tmp_path / "out"
    out.mkdir()

    class Exit(Runner):
        def __init__(self, rc):
            super().__init__()
            self.rc = rc

        def run(self, argv, **kw):
            from essentials.runner import Result
            return Result(argv, self.rc, b"", b"tar: etc/x: file changed as we read it\n")

    ctx = Context(Exit(1), out, {}, etc=tmp_path / "etc")
    summary = etc_collector.collect(ctx)
    assert summary["entries"] == 0
    assert len(ctx.warnings) == 1 and "file changed as we read it" in ctx.warnings[0]
    with pytest.raises(Exception) as e:
        etc_collector.collect(Context(Exit(2), out, {}, etc=tmp_path / "etc"))
    assert "exit 2" in str(e.value)


# -- packages --------------------------------------------------------------------------

OS_RELEASE = 'PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\nNAME="Rocky Linux"\n' \
             'VERSION_ID="9.3"\nID="rocky"\nID_LIKE="rhel centos fedora"\n# comment\n'


def test_parse_os_release():
    osr = packages.parse_os_release(OS_RELEASE)
    assert osr["ID"] == "rocky" and osr["VERSION_ID"] == "9.3"
    assert osr["PRETTY_NAME"] == "Rocky Linux 9.3 (Blue Onyx)"
    assert osr["ID_LIKE"] == "rhel centos fedora"
    assert "# comment" not in osr


def test_count_selections_ignores_deinstall_and_purge():
    text = "acl\t\t\tinstall\nfoo\t\t\tdeinstall\nbar\t\t\thold\nlibc6:i386\t\tinstall\n" \
           "baz\t\t\tpurge\n"
    assert packages.count_selections(text) == 3


def _tools(monkeypatch, present):
    monkeypatch.setattr(packages, "have_tool", lambda t: t in present)


def test_rpm_system(monkeypatch, tmp_path):
    _tools(monkeypatch, {"rpm", "dnf"})
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(OS_RELEASE)
    runner = Runner(dry_run=True, responses={
        "rpm -qa": "bash-5.1.8-6.el9.x86_64\namanda-3.5.1-1.x86_64\n",
        "dnf": "Packages installed by user\namanda-3.5.1-1.x86_64\n"})
    out = tmp_path / "out"
    summary = packages.collect(Context(runner, out, {}, etc=tmp_path / "etc"))
    assert summary == {"distro": "rocky", "version": "9.3",
                       "name": "Rocky Linux 9.3 (Blue Onyx)", "manager": "rpm",
                       "packages": 2, "manual": 2}
    ran = [r.commands[0].argv for r in runner.recorded]
    assert ran[0] == ["rpm", "-qa"]
    assert ran[1][:3] == ["rpm", "-qa", "--queryformat"]
    assert ran[2] == ["dnf", "-q", "-C", "history", "userinstalled"]
    assert (out / "packages" / "rpm-qa.txt").read_text().startswith("bash-")
    assert (out / "packages" / "os-release").stat().st_mode & 0o777 == 0o600


def test_dpkg_commands(monkeypatch, tmp_path):
    _tools(monkeypatch, {"dpkg", "dpkg-query", "apt-mark", "rpm"})  # dpkg wins over rpm
    runner = Runner(dry_run=True, responses={
        "dpkg": "acl\t\tinstall\nold\t\tdeinstall\n", "apt-mark": "acl\n"})
    summary = packages.collect(Context(runner, tmp_path / "out", {}, etc=tmp_path))
    assert summary["manager"] == "dpkg" and summary["packages"] == 1 and summary["manual"] == 1
    ran = [r.commands[0].argv for r in runner.recorded]
    assert ran == [["dpkg", "--get-selections"],
                   ["dpkg-query", "-W", "-f", "${Package}\\t${Version}\\t${Architecture}\\n"],
                   ["apt-mark", "showmanual"]]


def test_neither_dpkg_nor_rpm(monkeypatch, tmp_path):
    _tools(monkeypatch, set())
    with pytest.raises(ToolMissing) as e:
        packages.collect(Context(Runner(dry_run=True), tmp_path, {}, etc=tmp_path))
    assert "'dpkg-query' (Debian package dpkg) and 'rpm' are not installed" in str(e.value)
