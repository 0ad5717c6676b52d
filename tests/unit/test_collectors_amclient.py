"""The Amanda client's local knowledge, parsed from files captured on a lab client.

The fixtures come from one real lab (config amdrlabxz3gqk): two amdump runs of a
GNUTAR DLE (the root fs), a DUMP DLE (/dev/loop0p2) and, in the second run, an
APPLICATION DLE `apphome` (amgtar, device .../mnt/home), then an amcheck.
"""

from pathlib import Path

import pytest

from essentials.collectors import amclient

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "collectors" / "amclient"
CONF = "amdrlabxz3gqk"
MNT = "/var/tmp/amdrlabxz3gqk-_5oa35w8/mnt"


def amandad(name):
    return amclient.parse_amandad_debug((FIX / "amandad" / name).read_text())


def test_sendsize_request_lists_every_dle_of_the_run():
    reqs = amandad("amandad.20261122020440.debug")
    assert [r.service for r in reqs] == ["noop", "sendsize"]
    noop, sendsize = reqs
    assert noop.dles == [] and "config" not in noop.options
    assert sendsize.options["config"] == CONF
    assert sendsize.options["hostname"] == "localhost"
    assert sendsize.options["timestamp"] == "20261122020440"
    assert sendsize.peer == "vm"
    assert sendsize.dles == [
        {"disk": "apphome", "program": "APPLICATION", "device": f"{MNT}/home",
         "application": "amgtar"},
        {"disk": "/dev/loop0p2", "program": "DUMP"},
        {"disk": MNT, "program": "GNUTAR", "exclude": ["./srv"]},
    ]


def test_sendbackup_request_names_one_dle():
    (req,) = amandad("amandad.20261122020419.debug")
    assert req.service == "sendbackup" and req.options["timestamp"] == "20261122020415"
    assert req.dles == [{"disk": "/dev/loop0p2", "program": "DUMP"}]


def test_selfcheck_request_without_timestamp():
    reqs = amandad("amandad.20261122020618.debug")
    check = [r for r in reqs if r.service == "selfcheck"][0]
    assert "timestamp" not in check.options
    assert {d["disk"]: d["program"] for d in check.dles} == {
        "apphome": "APPLICATION", "/dev/loop0p2": "DUMP", MNT: "GNUTAR"}


def test_sendsize_client_log():
    text = (FIX / "client" / CONF / "sendsize.20261122020442.debug").read_text()
    assert amclient.parse_sendsize_debug(text) == [
        {"disk": MNT, "program": "GNUTAR"},
        {"disk": "/dev/loop0p2", "program": "DUMP", "device": f"{MNT}/srv"},
        {"disk": "apphome", "program": "APPLICATION", "device": f"{MNT}/home",
         "application": "amgtar"},
    ]


@pytest.mark.parametrize("name, expected", [
    ("sendbackup.20261122020420.debug",
     {"program": "DUMP", "disk": "/dev/loop0p2", "hostname": "localhost"}),
    ("sendbackup.20261122020447.debug",
     {"program": "GNUTAR", "disk": MNT, "hostname": "localhost"}),
    # an application's sendbackup log has no "start:" line naming the host
    ("sendbackup.20261122020446.debug",
     {"program": "APPLICATION", "application": "amgtar", "disk": "apphome",
      "device": f"{MNT}/home"}),
])
def test_sendbackup_client_log(name, expected):
    text = (FIX / "client" / CONF / name).read_text()
    assert amclient.parse_sendbackup_debug(text) == expected


def test_sendbackup_log_without_request():
    assert amclient.parse_sendbackup_debug("sendbackup: pid 1 ruid 34 start\n") is None


def test_records():
    dates = amclient.parse_amandates((FIX / "amandates").read_text())
    assert dates[0] == {"disk": MNT, "level": 0, "time": "2026-11-22T02:04:21Z"}
    assert {(d["disk"], d["level"]) for d in dates} == {(MNT, 0), (MNT, 1), ("apphome", 0)}
    dd = amclient.parse_dumpdates((FIX / "dumpdates").read_text())
    assert dd == [
        {"device": "/dev/loop0p2", "level": 0, "date": "Sun Nov 22 02:04:20 2026 +0000"},
        {"device": "/dev/loop0p2", "level": 1, "date": "Sun Nov 22 02:04:49 2026 +0000"},
    ]


def test_amandates_quoted_name():
    text = '"/srv/my data" 0 1795313061\n"tab\\there" 1 1795313087\ngarbage\n'
    assert [d["disk"] for d in amclient.parse_amandates(text)] == ["/srv/my data", "tab\there"]


def test_amandahosts():
    assert amclient.parse_amandahosts("# c\nbackup1.example.com backup amdump\nlocalhost\n") == [
        {"host": "backup1.example.com", "user": "backup", "services": ["amdump"]},
        {"host": "localhost", "user": None, "services": []},
    ]


def test_stamp_of():
    assert amclient.stamp_of("/x/amandad.20261122020440.debug") == "20261122020440"
    assert amclient.stamp_of("killpgrp.20261122011811000.debug") == "20261122011811"
    assert amclient.stamp_of("amandad.debug") == ""


# -- client.yaml from the whole capture ----------------------------------------------

@pytest.fixture(scope="module")
def client():
    return amclient.gather(debug_dir=FIX, amandates=FIX / "amandates",
                           gnutar_lists=FIX / "no-such-dir", dumpdates=FIX / "dumpdates",
                           amandahosts=FIX / "no-amandahosts")


def test_client_dles_and_programs(client):
    assert client["backed_up"] is True
    (conf,) = client["configs"]
    assert conf["config"] == CONF and conf["hostname"] == "localhost"
    assert conf["servers"] == ["vm"]
    dles = {d["disk"]: d for d in conf["dles"]}
    assert {d: x["program"] for d, x in dles.items()} == {
        MNT: "GNUTAR", "/dev/loop0p2": "DUMP", "apphome": "APPLICATION"}
    assert dles["apphome"]["application"] == "amgtar"
    assert dles["apphome"]["device"] == f"{MNT}/home"
    # the amcheck at 02:06:18 is the newest request naming each DLE
    assert {x["last_seen"] for x in dles.values()} == {"20261122020618"}
    assert all(x["source"] == "selfcheck request" for x in dles.values())
    assert conf["last_seen"] == "20261122020618"
    assert client["amandahosts"] is None
    assert client["records"]["gnutar_lists"] == []
    assert len(client["records"]["dumpdates"]) == 2
    assert client["sources"]["amandad_logs"] == 8


def test_client_logs_alone_still_give_programs(tmp_path):
    """When amandad's logs are gone, the per-config client logs still tell the program."""
    (tmp_path / "client").symlink_to(FIX / "client")
    c = amclient.gather(debug_dir=tmp_path, amandates=tmp_path / "x", gnutar_lists=tmp_path,
                        dumpdates=tmp_path / "x", amandahosts=None)
    (conf,) = c["configs"]
    dles = {d["disk"]: d for d in conf["dles"]}
    assert {d: x["program"] for d, x in dles.items()} == {
        MNT: "GNUTAR", "/dev/loop0p2": "DUMP", "apphome": "APPLICATION"}
    assert conf["hostname"] == "localhost"  # from sendbackup's "start: localhost:..." line
    assert dles[MNT]["source"] == "client debug log"


def test_records_only_is_still_a_client(tmp_path):
    c = amclient.gather(debug_dir=tmp_path, amandates=FIX / "amandates",
                        gnutar_lists=tmp_path, dumpdates=tmp_path / "x", amandahosts=None)
    assert c["backed_up"] and c["configs"] == []
    assert len(c["records"]["amandates"]) == 3


def test_nothing_is_not_a_client(tmp_path):
    c = amclient.gather(debug_dir=tmp_path, amandates=tmp_path / "x", gnutar_lists=tmp_path,
                        dumpdates=tmp_path / "x", amandahosts=None)
    assert c["backed_up"] is False and c["configs"] == []
