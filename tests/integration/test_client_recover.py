"""The usual case: a client's bundle (its layout, no catalog) plus where the catalog is.

The client's bundle is what `amdr-essentials` collects on a client: its disks
and what its amandad saw of the server's requests (amanda/client.yaml, with
the name the server's disklist gives it).  The catalog is the server's: its
bundle, the live server, or a scan of the volumes.  One `recover` joins them
and restores every DLE onto a new disk.
"""

import os
import shutil
import subprocess

import pytest

from tests.lab import scenario, tree
from tests.lab.lab import AmandaLab

from .helpers import amdr, blank_disk, umount_target

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab():
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup(expect=0)
        client = lab.base / "client-bundle"
        p = amdr("amdr-essentials", "collect", "--out", client, "--disk", lab.loop,
                 "--root", lab.mnt, "--only", "layout", "--only", "amanda")
        assert p.returncode == 0, p.stderr
        # this machine is the Amanda server too: what a client has is client.yaml
        # alone (a client has no /etc/amanda/CONF/amanda.conf)
        for conf in (client / "amanda").iterdir():
            if conf.is_dir():
                shutil.rmtree(conf)
        rewrite_manifest(client)
        server = lab.base / "server-bundle"
        p = amdr("amdr-essentials", "collect", "--out", server, "--only", "amanda",
                 "--amanda-config", lab.name)
        assert p.returncode == 0, p.stderr
        lab.client, lab.server = client, server
        yield lab


def rewrite_manifest(root, **extra):
    from essentials import bundle
    m = bundle.load_yaml_text((root / "manifest.yaml").read_text())
    bundle.write_manifest(root, m["collectors"], {"host": m["host"], "fqdn": m["fqdn"],
                                                  **extra})


def test_the_client_bundle_has_no_catalog_but_knows_its_amanda_name(lab):
    assert not list(lab.client.glob("amanda/*/amanda.conf"))
    assert "hostname: localhost" in (lab.client / "amanda/client.yaml").read_text()


def test_alone_it_says_where_the_catalog_is(lab, tmp_path):
    p = amdr("amdr-recover", "recover", "--bundle", lab.client, "--target", tmp_path / "t",
             "--yes")
    assert p.returncode == 3, p.stdout + p.stderr
    assert "client-bundle holds no Amanda catalog" in p.stderr
    assert "--catalog-bundle" in p.stderr and "--server" in p.stderr and "--scan" in p.stderr
    assert "/run/" not in p.stderr and "/tmp/" not in p.stderr
    assert "no disk was touched" in p.stderr
    p = amdr("amdr-recover", "plan", "--bundle", lab.client, "--target", tmp_path / "t")
    assert p.returncode == 1 and "NOT RESTORABLE" in p.stdout


def test_plan_joins_the_client_to_the_servers_catalog(lab, tmp_path):
    p = amdr("amdr-recover", "plan", "--bundle", lab.client, "--catalog-bundle", lab.server,
             "--target", tmp_path / "t")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Restore plan (Amanda host localhost)" in p.stdout
    assert f"localhost:{lab.root_disk} (GNUTAR) levels 0" in p.stdout
    assert f"localhost:{lab.data_disk} (DUMP) levels 0" in p.stdout


@pytest.mark.parametrize("source", ["server bundle", "live server", "scan"])
def test_one_recover_restores_the_client(lab, tmp_path, source):
    extra = {"server bundle": ["--catalog-bundle", lab.server],
             "live server": ["--server", lab.name],
             "scan": ["--scan", lab.vtapes]}[source]
    target = tmp_path / "target"
    with blank_disk(tmp_path / "new.img", os.path.getsize(lab.image)) as new:
        try:
            p = amdr("amdr-recover", "recover", "--bundle", lab.client, *extra,
                     "--target", target, "--map", f"{lab.loop}={new}", "--yes",
                     "--no-finalize")  # the files as backed up (finalize adds /proc...)
            assert p.returncode == 0, p.stdout + p.stderr
            expected = lab.runs[-1].manifests
            got_root = tree.snapshot(str(target), exclude={"lost+found", "srv"})
            got_data = tree.snapshot(str(target / "srv"), exclude={"lost+found"})
            assert tree.compare(expected[lab.root_disk], got_root) == []
            assert tree.compare(expected[lab.data_disk], got_data) == []
        finally:
            umount_target(target)


def test_a_catalog_of_another_host_is_not_taken_for_this_one(lab, tmp_path):
    """The server's catalog has one host; a client bundle that does not know
    its Amanda name must not be restored from that host's images."""
    other = tmp_path / "other"
    subprocess.run(["cp", "-a", str(lab.client), str(other)], check=True)
    os.remove(other / "amanda/client.yaml")
    rewrite_manifest(other, host="stranger", fqdn="stranger")
    p = amdr("amdr-recover", "plan", "--bundle", other, "--catalog-bundle", lab.server,
             "--target", tmp_path / "t")
    assert p.returncode == 1
    assert "cannot tell which Amanda host is stranger" in p.stdout + p.stderr
    assert "--amanda-host" in p.stdout + p.stderr
