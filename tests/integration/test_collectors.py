"""The non-disk collectors on this machine and against a real Amanda lab."""

import gzip
import os
import socket
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from essentials.collectors import amanda, capabilities, etc, network, packages
from essentials.collectors.base import Context
from essentials.runner import Runner
from tests.lab import scenario
from tests.lab.lab import AmandaLab

pytestmark = pytest.mark.integration


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw).stdout


def new_ctx(tmp_path, name="out", **options):
    out = tmp_path / name
    out.mkdir(mode=0o700)
    return Context(Runner(), out, options)


# -- /etc ------------------------------------------------------------------------------

@pytest.fixture
def etc_tree(tmp_path):
    """A small /etc with every kind of entry the archive must keep (or skip)."""
    base = tmp_path / "src"
    e = base / "etc"
    (e / "ssl" / "private").mkdir(parents=True)
    (e / "ssl" / "certs").mkdir()
    (e / "ssl" / "private" / "key.pem").write_text("secret\n")
    (e / "ssl" / "certs" / "ca.pem").write_text("cert\n")
    (e / "owned.conf").write_text("owned\n")
    os.chown(e / "owned.conf", 1001, 1002)
    os.chmod(e / "owned.conf", 0o640)
    (e / "backup.conf").write_text("named owner\n")
    os.chown(e / "backup.conf", 34, 34)  # backup:backup, a name tar stores too
    (e / "suid").write_text("#!/bin/sh\n")
    os.chmod(e / "suid", 0o4750)
    (e / "private").mkdir(mode=0o700)
    os.chmod(e / "private", 0o710)
    (e / "acl.conf").write_text("acl\n")
    run(["setfacl", "-m", "u:1234:rw-,g:2345:r--", str(e / "acl.conf")])
    run(["setfacl", "-d", "-m", "u:1234:rwx", str(e / "private")])
    (e / "xattr.conf").write_text("xattr\n")
    run(["setfattr", "-n", "user.amdr", "-v", "hello", str(e / "xattr.conf")])
    run(["setfattr", "-n", "trusted.amdr", "-v", "root-only", str(e / "xattr.conf")])
    os.symlink("owned.conf", e / "link.conf")
    os.symlink("/nonexistent/target", e / "dangling")
    os.link(e / "ssl" / "certs" / "ca.pem", e / "ca-hardlink.pem")
    os.mkfifo(e / "initctl")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(e / "control.sock"))
    yield e
    sock.close()


def test_etc_tar_keeps_owners_modes_acls_xattrs(etc_tree, tmp_path):
    ctx = new_ctx(tmp_path, exclude=["etc/ssl/private"])
    ctx.etc = etc_tree
    summary = etc.collect(ctx)
    tar = ctx.out / "etc.tar"
    assert stat.S_IMODE(tar.stat().st_mode) == 0o600
    assert summary["sockets_skipped"] == 1
    assert summary["excluded"] == ["etc/ssl/private"]
    assert summary["tar_bytes"] == tar.stat().st_size
    # 4 dirs, 6 regular files, a hard link, 2 symlinks and the fifo; not the socket
    assert (summary["entries"], summary["files"], summary["bytes"]) == (14, 6, 43)
    assert ctx.warnings == []

    # owner names travel with the numbers
    listing = run(["tar", "-tvf", str(tar)])
    assert any(" backup/backup " in ln and ln.endswith(" etc/backup.conf")
               for ln in listing.splitlines())
    names = run(["tar", "-tf", str(tar)]).split()
    assert all(n == "etc/" or n.startswith("etc/") for n in names)
    assert "etc/ssl/certs/ca.pem" in names
    assert not any("ssl/private" in n for n in names)
    assert not any("control.sock" in n for n in names)

    dest = tmp_path / "restored"
    dest.mkdir()
    run(["tar", "--acls", "--xattrs", "-xpf", str(tar), "-C", str(dest)])
    r = dest / "etc"
    st = os.lstat(r / "owned.conf")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1001, 1002, 0o640)
    assert os.lstat(r / "backup.conf").st_uid == 34
    assert stat.S_IMODE(os.lstat(r / "suid").st_mode) == 0o4750
    assert stat.S_IMODE(os.lstat(r / "private").st_mode) == 0o710
    acl = run(["getfacl", "-cp", str(r / "acl.conf")])
    assert "user:1234:rw-" in acl and "group:2345:r--" in acl
    dacl = run(["getfacl", "-cp", str(r / "private")])
    assert "default:user:1234:rwx" in dacl
    xattr = run(["getfattr", "-n", "user.amdr", "--only-values", str(r / "xattr.conf")])
    assert xattr == "hello"
    assert os.readlink(r / "link.conf") == "owned.conf"
    assert os.readlink(r / "dangling") == "/nonexistent/target"
    assert os.lstat(r / "ca-hardlink.pem").st_ino == os.lstat(r / "ssl/certs/ca.pem").st_ino
    assert stat.S_ISFIFO(os.lstat(r / "initctl").st_mode)
    assert not (r / "ssl" / "private").exists()
    assert (r / "ssl" / "certs").is_dir()

    # every xattr namespace is in the archive; tar extracts beyond user.* when asked
    dest2 = tmp_path / "restored-all"
    dest2.mkdir()
    run(["tar", "--acls", "--xattrs", "--xattrs-include=*", "-xpf", str(tar), "-C", str(dest2)])
    assert run(["getfattr", "-n", "trusted.amdr", "--only-values",
                str(dest2 / "etc" / "xattr.conf")]) == "root-only"


def test_etc_from_a_directory_not_named_etc(etc_tree, tmp_path):
    other = etc_tree.parent / "target-etc"
    etc_tree.rename(other)
    ctx = new_ctx(tmp_path, exclude=["etc/ssl/private"])
    ctx.etc = other
    etc.collect(ctx)
    names = run(["tar", "-tf", str(ctx.out / "etc.tar")]).split()
    assert "etc/owned.conf" in names and "etc/ssl/certs/ca.pem" in names
    assert not any("target-etc" in n or "ssl/private" in n for n in names)


# -- packages and network of this machine ------------------------------------------------

def test_packages_on_this_machine(tmp_path):
    ctx = new_ctx(tmp_path)
    summary = packages.collect(ctx)
    assert summary["manager"] == "dpkg" and summary["distro"] == "debian"
    assert summary["version"] == Path("/etc/debian_version").read_text().split(".")[0]
    p = ctx.out / "packages"
    selections = (p / "dpkg-selections.txt").read_text().splitlines()
    assert any(ln.split() == ["amanda-server", "install"] for ln in selections)
    assert summary["packages"] >= 100
    versions = [ln.split("\t") for ln in (p / "dpkg-versions.tsv").read_text().splitlines()]
    amanda_row = [v for v in versions if v[0] == "amanda-server"]
    assert len(amanda_row) == 1 and "3.5.1" in amanda_row[0][1]
    assert summary["manual"] == len((p / "apt-manual.txt").read_text().split())
    assert "ID=debian" in (p / "os-release").read_text()
    for f in p.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert stat.S_IMODE(p.stat().st_mode) == 0o700


def test_network_on_this_machine(tmp_path):
    ctx = new_ctx(tmp_path)
    summary = network.collect(ctx)
    net = yaml.safe_load((ctx.out / "network" / "network.yaml").read_text())
    default_dev = run(["ip", "route", "show", "default"]).split(" dev ")[1].split()[0]
    assert default_dev in {i["name"] for i in net["interfaces"]}
    assert any(r["dev"] == default_dev and r["family"] == "inet" for r in net["default_routes"])
    assert net["hostname"] == socket.gethostname() == summary["hostname"]
    assert "lo" not in {i["name"] for i in net["interfaces"]}
    for name in ("ip-addr.json", "ip-link.json", "ip-route.json", "ip-route6.json",
                 "resolv.conf", "hostname.txt"):
        assert (ctx.out / "network" / name).is_file(), name
    # the hardware keys agree with /sys; config lists only files there are
    for i in net["interfaces"]:
        dev = Path("/sys/class/net", i["name"], "device")
        assert i["physical"] == dev.exists(), i
        if i["physical"]:
            assert i["driver"] == os.path.basename(os.readlink(dev / "driver"))
            assert i["bus_path"] and os.path.realpath(dev).endswith("/" + i["bus_path"])
    assert summary["physical"] == [i["name"] for i in net["interfaces"] if i["physical"]]
    assert all(Path(f).is_file() or Path(f).is_symlink()
               for files in net["config"].values() for f in files)


# -- file capabilities ---------------------------------------------------------------------

@pytest.fixture
def capped_tree(tmp_path):
    """Scratch files with capabilities, one of them on a tmpfs mounted inside the tree."""
    top = tmp_path / "sys root"  # a space: getcap's output is split on spaces
    (top / "bin").mkdir(parents=True)
    (top / "mnt").mkdir()
    for f in ("bin/pinger", "bin/plain"):
        (top / f).write_bytes(b"\x7fELF scratch")
    run(["setcap", "cap_net_raw=ep", str(top / "bin/pinger")])
    (top / "bin/link").symlink_to("pinger")
    run(["mount", "-t", "tmpfs", "-o", "size=1m", "amdr-caps", str(top / "mnt")])
    try:
        (top / "mnt/other").write_bytes(b"x")
        run(["setcap", "cap_net_admin+ep", str(top / "mnt/other")])
        yield top
    finally:
        run(["umount", str(top / "mnt")])


def test_capabilities_of_a_scratch_tree(capped_tree, tmp_path):
    ctx = new_ctx(tmp_path, paths=[str(capped_tree), str(capped_tree / "bin")])
    summary = capabilities.collect(ctx)
    doc = yaml.safe_load((ctx.out / "system" / "capabilities.yaml").read_text())
    top = os.path.realpath(capped_tree)
    assert doc["searched"] == [top]  # bin is inside it: searched once
    # the file on the tmpfs below is another filesystem's; the link is not a file
    assert doc["files"] == [{"path": f"{top}/bin/pinger", "caps": "cap_net_raw=ep"}]
    assert summary["files"] == 1 and ctx.warnings == []
    assert doc["selinux"]["enabled"] == Path("/sys/fs/selinux/enforce").exists()
    assert stat.S_IMODE((ctx.out / "system" / "capabilities.yaml").stat().st_mode) == 0o600
    # what was collected is what setcap takes back
    (capped_tree / "bin/copy").write_bytes(b"copy")
    run(["setcap", doc["files"][0]["caps"], str(capped_tree / "bin/copy")])
    assert run(["getcap", str(capped_tree / "bin/copy")]).split()[-1] == "cap_net_raw=ep"


def test_capabilities_of_this_machine(tmp_path):
    ctx = new_ctx(tmp_path)
    summary = capabilities.collect(ctx)
    doc = yaml.safe_load((ctx.out / "system" / "capabilities.yaml").read_text())
    if Path("/bin").is_symlink():  # merged /usr: /bin, /sbin and /lib are /usr's
        assert doc["searched"] == (["/usr", "/opt"] if Path("/opt").is_dir() else ["/usr"])
    found = [f"{f['path']} {f['caps']}" for f in doc["files"]]
    everything = run(["getcap", "-r", *doc["searched"]]).splitlines()
    mounts = capabilities.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    if any(m.startswith(r + "/") for r in doc["searched"] for m in mounts):
        assert set(found) <= set(everything)  # less: what lies on other filesystems
    else:
        assert found == everything
    assert summary["files"] == len(doc["files"])


# -- Amanda, against a real lab -------------------------------------------------------------

@pytest.fixture(scope="module")
def lab():
    with AmandaLab(slots=4) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup(expect=0)
        scenario.change1(lab.mnt, lab.data_mnt)
        lab.backup(expect=1)
        yield lab


def export_stats(text):
    """{(host, disk): {level: (filenum, label)}} from `amadmin export`."""
    out, host, disk = {}, None, None
    for line in text.splitlines():
        if line.startswith("host: "):
            host = line[6:]
        elif line.startswith("disk: "):
            disk = line[6:]
        elif line.startswith("stats: "):
            f = line.split()
            out.setdefault((host, disk), {})[int(f[1])] = (int(f[6]), f[7])
    return out


def mangle(disk):
    return disk.replace("/", "_")


def test_amanda_server_database(lab, tmp_path):
    ctx = new_ctx(tmp_path, configs=[lab.name])
    summary = amanda.collect(ctx)
    assert summary["role"] == "server+client"
    (conf,) = summary["configs"]
    assert conf["config"] == lab.name and conf["trace_logs"] == 2 and conf["dles"] == 2
    assert conf["index"] == "collected"
    base = ctx.out / "amanda" / lab.name
    for name in ("amanda.conf", "disklist", "tapelist", "find.txt", "export.txt",
                 "index.tar.gz"):
        assert stat.S_IMODE((base / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    assert ctx.warnings == []

    # export: every DLE with label and file number per level, as the trace logs say
    stats = export_stats((base / "export.txt").read_text())
    expected = {}
    for run_ in lab.runs:
        for d in lab.dumps_of(run_.datestamp):
            if d.status == "OK":
                expected.setdefault((d.host, d.disk), {})[d.level] = \
                    (d.parts[0].filenum, d.parts[0].label)
    assert set(expected) == {("localhost", lab.root_disk), ("localhost", lab.data_disk)}
    assert stats == expected

    # index: one index file per dump, under ./HOST/MANGLED-DISK/
    with tarfile.open(base / "index.tar.gz") as t:
        members = {m.name: m for m in t.getmembers()}
        for (host, disk), levels in expected.items():
            for run_ in lab.runs:
                level = run_.levels[disk]
                prefix = f"./{host}/{mangle(disk)}/{run_.datestamp}_{level}"
                idx = [n for n in members if n.startswith(prefix) and n.endswith(".gz")
                       and not n.endswith(".state.gz")]
                assert idx, f"no index for {disk} {run_.datestamp} in {sorted(members)}"
        gnutar_l0 = [n for n in members if n.startswith(
            f"./localhost/{mangle(lab.root_disk)}/{lab.runs[0].datestamp}_0") and
            n.endswith(".gz")][0]
        paths = gzip.decompress(t.extractfile(gnutar_l0).read()).decode().split("\n")
        assert "/etc/app.conf" in paths and "/home/alice/notes.txt" in paths
        assert "./lock" not in members

    # client side: this host is the lab's client too
    client = yaml.safe_load((ctx.out / "amanda" / "client.yaml").read_text())
    mine = [c for c in client["configs"] if c["config"] == lab.name]
    assert len(mine) == 1 and mine[0]["hostname"] == "localhost"
    programs = {d["disk"]: d["program"] for d in mine[0]["dles"]}
    assert programs == {lab.root_disk: "GNUTAR", lab.data_disk: "DUMP"}
    assert mine[0]["last_seen"] == lab.runs[-1].datestamp
    assert lab.name in summary["client"]["configs"]
    assert any(r["disk"] == lab.root_disk for r in client["records"]["amandates"])


def test_amanda_index_over_the_cap_left_out(lab, tmp_path):
    ctx = new_ctx(tmp_path, configs=[lab.name], index_max_mb=0.0001)
    summary = amanda.collect(ctx)
    (conf,) = summary["configs"]
    assert conf["index"] == "left out" and conf["index_bytes"] > 0.0001 * 1048576
    base = ctx.out / "amanda" / lab.name
    assert not (base / "index.tar.gz").exists()
    (warning,) = [w for w in ctx.warnings if "index" in w]
    assert "left out" in warning and "index_max_mb" in warning and "MB" in warning
    for name in ("amanda.conf", "disklist", "tapelist", "find.txt", "export.txt"):
        assert (base / name).is_file(), name
    assert len(list((base / "logs").glob("log.*"))) == 2


def test_amanda_client_only(lab, tmp_path):
    """No /etc/amanda/*/amanda.conf: only client.yaml is written."""
    ctx = new_ctx(tmp_path)
    ctx.etc = tmp_path / "empty-etc"
    ctx.etc.mkdir()
    summary = amanda.collect(ctx)
    assert summary["role"] == "client" and summary["configs"] == []
    assert sorted(p.name for p in (ctx.out / "amanda").iterdir()) == ["client.yaml"]
