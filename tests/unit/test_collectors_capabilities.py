"""capabilities.yaml: getcap's two output formats, the search split around mounts, SELinux."""

import os

import yaml

from essentials.collectors import capabilities as caps
from essentials.collectors.base import Context
from essentials.runner import Runner

# libcap 2.66 (Debian 12), captured on the build machine, plus a path with a space
NEW = """\
/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-ptp-helper cap_net_bind_service,cap_net_admin=ep
/usr/bin/ping cap_net_raw=ep
/opt/my tools/probe cap_net_raw,cap_net_admin=eip cap_sys_nice+i
"""
# libcap 2.25 (Debian 9, CentOS 7)
OLD = """\
/usr/bin/ping = cap_net_raw+ep
/usr/bin/mtr-packet = cap_net_raw+ep
/opt/my tools/probe = cap_net_admin+eip cap_sys_nice+i
"""


def test_parse_the_libcap_2_44_format():
    files, odd = caps.parse_getcap(NEW)
    assert files == [
        {"path": "/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-ptp-helper",
         "caps": "cap_net_bind_service,cap_net_admin=ep"},
        {"path": "/usr/bin/ping", "caps": "cap_net_raw=ep"},
        {"path": "/opt/my tools/probe", "caps": "cap_net_raw,cap_net_admin=eip cap_sys_nice+i"},
    ]
    assert odd == []


def test_parse_the_old_format():
    files, odd = caps.parse_getcap(OLD)
    assert files == [
        {"path": "/usr/bin/ping", "caps": "cap_net_raw+ep"},
        {"path": "/usr/bin/mtr-packet", "caps": "cap_net_raw+ep"},
        {"path": "/opt/my tools/probe", "caps": "cap_net_admin+eip cap_sys_nice+i"},
    ]
    assert odd == []


def test_parse_rootid_and_lines_that_are_not_capabilities():
    text = ("/opt/x/agent cap_sys_admin+ep [rootid=1000]\n\n"
            "Failed to get capabilities of file '/usr/x' (Operation not supported)\n"
            "/usr/bin/=ep\n")
    files, odd = caps.parse_getcap(text)
    assert files == [{"path": "/opt/x/agent", "caps": "cap_sys_admin+ep", "rootid": 1000}]
    assert odd == ["Failed to get capabilities of file '/usr/x' (Operation not supported)",
                   "/usr/bin/=ep"]
    assert caps.parse_getcap("") == ([], [])


def test_parse_mountinfo_undoes_octal_escapes():
    text = ("22 27 0:21 / /proc rw,relatime - proc proc rw\n"
            "40 27 8:3 / /opt/my\\040data rw - ext4 /dev/sda3 rw\n")
    assert caps.parse_mountinfo(text) == ["/proc", "/opt/my data"]


def test_search_roots_each_real_directory_once(tmp_path):
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "opt").mkdir()
    (tmp_path / "bin").symlink_to("usr/bin")  # merged /usr
    real = os.path.realpath(tmp_path)
    assert caps.search_roots(["/usr", "/bin", "/sbin", "/opt", "/usr"], str(tmp_path)) == \
        [f"{real}/usr", f"{real}/opt"]
    # a link to somewhere else is searched there
    (tmp_path / "srv" / "lib").mkdir(parents=True)
    (tmp_path / "lib").symlink_to("srv/lib")
    assert caps.search_roots(["/lib"], str(tmp_path)) == [f"{real}/srv/lib"]


def test_split_around_a_mount_below(tmp_path):
    top = tmp_path / "opt"
    for d in ("a/nfs/deep", "a/b", "c"):
        (top / d).mkdir(parents=True)
    (top / "a" / "tool").write_text("x")
    (top / "a" / "link").symlink_to("tool")
    (top / "top-file").write_text("x")
    t = str(top)
    assert caps.split_around(t, ["/proc", str(tmp_path)]) == [t]  # no mount below
    assert caps.split_around(t, [f"{t}/a/nfs"]) == [f"{t}/a/b", f"{t}/a/tool", f"{t}/c",
                                                      f"{t}/top-file"]
    assert caps.split_around(t, [t + "x/y"]) == [t]  # /optx is not below /opt
    unreadable = []
    assert caps.split_around(str(tmp_path / "gone"), [f"{tmp_path}/gone/x"], unreadable) == []
    assert unreadable == [f"{tmp_path}/gone: No such file or directory"]


def test_selinux_state():
    assert caps.selinux_state(None, None) == {"enabled": False, "mode": "disabled",
                                              "configured": None}
    assert caps.selinux_state("1", "enforcing") == {"enabled": True, "mode": "enforcing",
                                                    "configured": "enforcing"}
    # setenforce 0 on a system configured enforcing
    assert caps.selinux_state("0\n", "enforcing")["mode"] == "permissive"
    # selinux=0 on the kernel's command line: the config is what a boot would do
    assert caps.selinux_state(None, "permissive") == {"enabled": False, "mode": "permissive",
                                                      "configured": "permissive"}
    assert caps.selinux_state(None, "bogus")["mode"] is None


def test_parse_selinux_config():
    text = "# SELINUX=disabled\nSELINUX=Enforcing\nSELINUXTYPE=targeted\n"
    assert caps.parse_selinux_config(text) == "enforcing"
    assert caps.parse_selinux_config('SELINUX="permissive"\n') == "permissive"
    assert caps.parse_selinux_config("SELINUXTYPE=mls\n") is None


def test_without_getcap_a_warning_and_no_files(only_path, tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    (etc / "selinux").mkdir(parents=True)
    (etc / "selinux" / "config").write_text("SELINUX=enforcing\n")
    monkeypatch.setattr(caps, "SYS", tmp_path / "sys")
    (tmp_path / "sys" / "fs" / "selinux").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "selinux" / "enforce").write_text("1")
    (tmp_path / "sys" / "usr").mkdir()
    ctx = Context(Runner(dry_run=True), tmp_path / "out", {"paths": ["/usr"]},
                  str(tmp_path / "sys"), etc)
    summary = caps.collect(ctx)
    assert ctx.runner.recorded == []
    assert ctx.warnings and "libcap2-bin" in ctx.warnings[0]
    doc = yaml.safe_load((ctx.out / "system" / "capabilities.yaml").read_text())
    assert doc == {"version": 1, "searched": ["/usr"], "files": None,
                   "selinux": {"enabled": True, "mode": "enforcing",
                               "configured": "enforcing"}}
    assert summary == {"files": None, "searched": ["/usr"], "selinux": "enforcing"}


def test_getcap_output_lands_in_the_yaml(tmp_path, monkeypatch):
    monkeypatch.setattr(caps, "have_tool", lambda name: True)
    monkeypatch.setattr(caps, "SYS", tmp_path / "nosys")
    monkeypatch.setattr(caps, "MOUNTINFO", tmp_path / "nomountinfo")
    root = tmp_path / "root"
    (root / "usr").mkdir(parents=True)
    usr = os.path.realpath(root / "usr")
    runner = Runner(dry_run=True, responses={
        "getcap": f"{usr}/bin/ping cap_net_raw=ep\n".encode()})
    ctx = Context(runner, tmp_path / "out", {}, str(root), tmp_path / "etc")
    caps.collect(ctx)
    [rec] = runner.recorded
    assert rec.commands[0].argv == ["getcap", "-r", usr]
    doc = yaml.safe_load((ctx.out / "system" / "capabilities.yaml").read_text())
    # paths as the collected system names them, not under the root it is mounted at
    assert doc["files"] == [{"path": "/usr/bin/ping", "caps": "cap_net_raw=ep"}]
    assert doc["searched"] == ["/usr"]
    assert doc["selinux"] == {"enabled": False, "mode": "disabled", "configured": None}
    assert ctx.warnings == []


def test_a_host_without_getcap_gets_a_warning_in_the_manifest_not_a_failure(
        only_path, tmp_path, monkeypatch):
    from essentials import agent, config
    monkeypatch.setattr(caps, "SYS", tmp_path / "nosys")
    cfg = config.validate({"gpg": {"recipients": ["x"], "signer": "y"}}, "test")
    staging = tmp_path / "staging"
    status = agent.collect_all(cfg, Runner(dry_run=True), staging, only=["capabilities"],
                               etc=tmp_path / "etc")
    st = status["capabilities"]
    assert st["status"] == "ok"
    assert st["detail"]["files"] is None
    assert [w for w in st["warnings"] if "getcap is not installed" in w]
    assert (staging / "system" / "capabilities.yaml").is_file()
