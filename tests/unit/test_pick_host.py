"""Which Amanda host a bundle's machine is: never another machine's by accident."""

import pytest

from essentials.errors import CatalogError
from recovery.catalog.source import pick_host


def test_exact_name_wins():
    assert pick_host({"web1", "web1.example.com"}, ["web1.example.com"], None) == \
        "web1.example.com"


def test_same_short_name_in_another_domain_only_when_unique():
    assert pick_host({"web1.corp.example", "db1"}, ["web1"], None, sole_ok=False) == \
        "web1.corp.example"
    with pytest.raises(CatalogError, match="--amanda-host"):
        pick_host({"web1.a.example", "web1.b.example"}, ["web1"], None, sole_ok=False)


def test_ip_addresses_are_never_shortened():
    with pytest.raises(CatalogError, match="cannot tell which Amanda host is 10.0.0.5"):
        pick_host({"10.0.0.7", "backup1"}, ["10.0.0.5"], None, sole_ok=False)


def test_a_sole_host_is_taken_only_when_it_is_loopback():
    assert pick_host({"localhost"}, ["labhost"], None, sole_ok=True) == "localhost"
    with pytest.raises(CatalogError):  # the server's config backs up db2 only
        pick_host({"db2"}, ["backup1"], None, sole_ok=True)
    with pytest.raises(CatalogError):  # a catalog from elsewhere: never
        pick_host({"localhost"}, ["labhost"], None, sole_ok=False)


def test_named_host_must_be_in_the_catalog():
    assert pick_host({"a", "b"}, ["x"], "b") == "b"
    with pytest.raises(CatalogError, match="no Amanda host 'c'"):
        pick_host({"a", "b"}, ["x"], "c")
