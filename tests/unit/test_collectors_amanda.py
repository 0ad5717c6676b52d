"""The amanda collector's decisions that need no Amanda: roles and a named config missing."""

from pathlib import Path

import pytest

from essentials.collectors import amanda, amclient
from essentials.collectors.base import Context
from essentials.errors import ConfigError
from essentials.runner import Runner

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "collectors" / "amclient"


@pytest.fixture
def client_state(monkeypatch, tmp_path):
    """Point the client-side paths at an empty tree; tests fill what they need."""
    state = tmp_path / "state"
    state.mkdir()
    for name, value in (("DEBUG_DIR", state / "log"), ("AMANDATES", state / "amandates"),
                        ("GNUTAR_LISTS", state / "gnutar-lists"),
                        ("DUMPDATES", state / "dumpdates")):
        monkeypatch.setattr(amclient, name, value)
    monkeypatch.setattr(amanda, "_amandahosts_path", lambda: None)
    return state


def ctx(tmp_path, **options):
    (tmp_path / "etc").mkdir(exist_ok=True)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return Context(Runner(dry_run=True), out, options, etc=tmp_path / "etc")


def test_neither_server_nor_client(client_state, tmp_path):
    c = ctx(tmp_path)
    summary = amanda.collect(c)
    assert summary["role"] == "none" and summary["configs"] == []
    assert "neither an Amanda server" in summary["note"]
    assert not (c.out / "amanda").exists()
    assert c.runner.recorded == []


def test_client_only_writes_client_yaml(client_state, tmp_path, monkeypatch):
    monkeypatch.setattr(amclient, "DEBUG_DIR", FIX)
    c = ctx(tmp_path)
    summary = amanda.collect(c)
    assert summary["role"] == "client"
    assert summary["client"]["configs"] == ["amdrlabxz3gqk"]
    assert summary["client"]["dles"] == 3
    assert sorted(p.name for p in (c.out / "amanda").iterdir()) == ["client.yaml"]
    assert (c.out / "amanda" / "client.yaml").stat().st_mode & 0o777 == 0o600
    assert c.runner.recorded == []  # no server tools on a client


def test_records_without_logs_warn(client_state, tmp_path):
    (client_state / "amandates").write_text((FIX / "amandates").read_text())
    c = ctx(tmp_path)
    summary = amanda.collect(c)
    assert summary["role"] == "client" and summary["client"]["recorded_dles"] == 2
    assert any("no request logs" in w for w in c.warnings)


def test_named_config_missing_is_an_error(client_state, tmp_path):
    with pytest.raises(ConfigError) as e:
        amanda.collect(ctx(tmp_path, configs=["DailySet1"]))
    assert "DailySet1" in str(e.value)
