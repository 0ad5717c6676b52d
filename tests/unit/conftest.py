"""Fixtures the unit tests share."""

import pytest

from essentials import doctor


@pytest.fixture
def only_path(monkeypatch, tmp_path):
    """Tools are looked up in one (empty) directory only, the standard ones hidden,
    and no earlier probe is remembered: what a host without them would show."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setattr(doctor, "SEARCH", ())
    monkeypatch.setattr(doctor, "_cache", {})
    monkeypatch.setenv("PATH", str(bindir))
    return bindir
