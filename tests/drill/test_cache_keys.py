"""The drill's cache keys change with their inputs, and the cache builds once."""

import json

from . import cache, systems


def test_keys_follow_every_input(monkeypatch, tmp_path):
    base = {"bios": systems.tree_key("bios"), "uefi": systems.tree_key("uefi")}
    assert base["bios"] != base["uefi"]
    monkeypatch.setattr(systems, "TREE_RECIPE_VERSION", systems.TREE_RECIPE_VERSION + 1)
    assert systems.tree_key("bios") != base["bios"]
    monkeypatch.undo()

    script = tmp_path / "install.sh"
    script.write_text(systems.INSTALL_SCRIPT.read_text())
    monkeypatch.setattr(systems, "INSTALL_SCRIPT", script)
    before = {name: systems.disks_key(name) for name in systems.LAYOUTS}
    assert len(set(before.values())) == 3
    script.write_text(script.read_text() + "\n# changed\n")
    assert all(systems.disks_key(n) != before[n] for n in systems.LAYOUTS)


def test_a_backup_key_follows_the_collector_and_the_job(monkeypatch, tmp_path):
    monkeypatch.setattr(systems, "drill_keys", lambda: {"host_fpr": "H", "site_fpr": "S"})
    job = tmp_path / "job.sh"
    job.write_text("echo job\n")
    monkeypatch.setattr(systems, "JOB_SCRIPT", job)
    k = systems.backup_key("a")
    monkeypatch.setattr(systems, "essentials_hash", lambda: {"essentials/agent.py": "x"})
    k2 = systems.backup_key("a")
    assert k2 != k
    job.write_text("echo other job\n")
    assert systems.backup_key("a") != k2


def test_cached_builds_once_and_removes_stale_keys(tmp_path):
    calls = []

    def build(work):
        calls.append(work)
        (work / "out").write_text("x")
        return {"what": "test"}

    d1 = cache.cached("thing", "k1", build, base=tmp_path)
    assert cache.cached("thing", "k1", build, base=tmp_path) == d1 and len(calls) == 1
    assert json.loads((d1 / "manifest.json").read_text())["what"] == "test"
    d2 = cache.cached("thing", "k2", build, base=tmp_path)
    assert d2.exists() and not d1.exists() and len(calls) == 2
    assert not list(tmp_path.glob("tmp-*"))


def test_a_failed_build_leaves_no_entry(tmp_path):
    def build(work):
        raise RuntimeError("boom")

    try:
        cache.cached("thing", "k1", build, base=tmp_path)
    except RuntimeError:
        pass
    assert not (tmp_path / "thing-k1").exists() and (tmp_path / "failed-thing").is_dir()
