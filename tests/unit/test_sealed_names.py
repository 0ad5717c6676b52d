"""Bundle file names: HOST-YYYYMMDDTHHMMSSZ.amdr.gpg (the pure part of sealed.py)."""

from datetime import datetime, timedelta, timezone

from essentials.sealed import SUFFIX, bundle_name, newest_first, parse_name

UTC = timezone.utc


def test_suffix():
    assert SUFFIX == ".amdr.gpg"


def test_bundle_name_utc():
    assert bundle_name("web1", datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC)) == \
        "web1-20261122T010203Z.amdr.gpg"


def test_bundle_name_converts_to_utc():
    cet = timezone(timedelta(hours=1))
    assert bundle_name("web1", datetime(2026, 11, 22, 1, 2, 3, tzinfo=cet)) == \
        "web1-20261122T000203Z.amdr.gpg"
    west = timezone(timedelta(hours=-5))
    assert bundle_name("web1", datetime(2026, 12, 31, 22, 0, 0, 999999, tzinfo=west)) == \
        "web1-20270101T030000Z.amdr.gpg"


def test_parse_name():
    assert parse_name("web1-20261122T010203Z.amdr.gpg") == \
        ("web1", datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC))


def test_parse_name_round_trip():
    when = datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)
    host, ts = parse_name(bundle_name("mail.example.com", when))
    assert host == "mail.example.com"
    assert ts == when
    assert ts.tzinfo is UTC


def test_parse_name_host_with_dashes():
    assert parse_name("db-01-20261122T010203Z.amdr.gpg") == \
        ("db-01", datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC))
    assert parse_name("a-20261122T010203Z-20261123T000000Z.amdr.gpg")[0] == \
        "a-20261122T010203Z"


def test_parse_name_not_a_bundle():
    for name in ["web1-20261122T010203Z.amdr.gpg.state",
                 ".web1-20261122T010203Z.amdr.gpg.part",
                 "web1-20261122T010203Z.amdr",
                 "web1-20261122T010203.amdr.gpg",
                 "web1-2026112T010203Z.amdr.gpg",
                 "web1_20261122T010203Z.amdr.gpg",
                 "-20261122T010203Z.amdr.gpg",
                 "20261122T010203Z.amdr.gpg",
                 "web1-20261122T010203Z.amdrxgpg",
                 "web1.tar",
                 ""]:
        assert parse_name(name) is None, name


def test_parse_name_impossible_date_is_not_a_bundle():
    # matches the pattern, but month 13 / hour 25 is no time: not a bundle, no crash
    assert parse_name("web1-20261340T250000Z.amdr.gpg") is None


def test_newest_first():
    names = ["web1-20261108T010203Z.amdr.gpg", "db-01-20261122T010203Z.amdr.gpg",
             "web1-20261122T010204Z.amdr.gpg", "notes.txt",
             "web1-20261115T010203Z.amdr.gpg.state", "db-01-20261101T000000Z.amdr.gpg"]
    assert newest_first(names) == ["web1-20261122T010204Z.amdr.gpg",
                                   "db-01-20261122T010203Z.amdr.gpg",
                                   "web1-20261108T010203Z.amdr.gpg",
                                   "db-01-20261101T000000Z.amdr.gpg"]


def test_newest_first_one_host():
    names = ["web1-20261108T010203Z.amdr.gpg", "db-01-20261122T010203Z.amdr.gpg",
             "web1-20261122T010204Z.amdr.gpg", "db-01-20261101T000000Z.amdr.gpg",
             "web-20261130T000000Z.amdr.gpg"]
    assert newest_first(names, host="web1") == ["web1-20261122T010204Z.amdr.gpg",
                                                "web1-20261108T010203Z.amdr.gpg"]
    assert newest_first(names, host="db-01") == ["db-01-20261122T010203Z.amdr.gpg",
                                                 "db-01-20261101T000000Z.amdr.gpg"]
    assert newest_first(names, host="db") == []


def test_newest_first_accepts_any_iterable_and_empty():
    assert newest_first(iter([])) == []
    assert newest_first(n for n in ["x-20260101T000000Z.amdr.gpg"]) == \
        ["x-20260101T000000Z.amdr.gpg"]
