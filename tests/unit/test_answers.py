"""The answers file's checks (recovery/answers.py): every mistake named, paths
taken relative to the file, and the recover command line it stands for."""

from pathlib import Path

import pytest
import yaml

from essentials.errors import ConfigError
from recovery import answers
from recovery.cli import build_parser

GOOD = """
welcome: {network: "static:10.0.2.15/24,10.0.2.2,10.0.2.3"}
bundles: {media: [., /media/usb]}
host: web1
unlock: {gnupghome: keys, passphrase-file: /run/pass, signers: [ABCD]}
disks: {map: {/dev/sda: /dev/vdb}}
plan: {vtapes: vtapes, jobs: 2, dle: [/srv], nics: {ens3: "52:54:00:00:00:01"}}
confirm: web1
run: {allow-partial: true, target: /mnt/t}
summary: {report: reports, then: poweroff, on-failure: shell}
"""


def load(text, tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text(text)
    return answers.load(f)


def test_paths_are_relative_to_the_file_and_the_argv_parses(tmp_path):
    a = load(GOOD, tmp_path)
    assert a.host == "web1" and a.confirm == "web1"
    assert a.get("bundles", "media") == [str(tmp_path / "."), "/media/usb"]
    assert a.get("unlock", "gnupghome") == str(tmp_path / "keys")
    assert a.get("unlock", "passphrase-file") == "/run/pass"  # absolute stays
    assert a.then(True) == "poweroff" and a.then(False) == "shell"
    argv = answers.recover_argv(a, "/b/web1-20261101T000000Z.amdr.gpg")
    args = build_parser().parse_args(argv)
    assert args.bundle == "/b/web1-20261101T000000Z.amdr.gpg"
    assert args.target == "/mnt/t" and args.vtapes == str(tmp_path / "vtapes")
    assert args.map == ["/dev/sda=/dev/vdb"] and args.nic == ["ens3=52:54:00:00:00:01"]
    assert args.gnupghome == str(tmp_path / "keys") and args.signer == ["ABCD"]
    assert args.jobs == 2 and args.dle == ["/srv"] and args.allow_partial
    assert not args.no_finalize and not args.yes  # --yes only once confirm matched


def test_defaults(tmp_path):
    a = load("host: web1\n", tmp_path)
    assert a.then(True) == "wait" and a.then(False) == "wait" and a.confirm is None
    argv = answers.recover_argv(a, "B")
    assert argv == ["recover", "--bundle", "B", "--target", "/mnt/target"]


@pytest.mark.parametrize("text,said", [
    ("hots: web1\n", "hots: unknown screen (the screens: welcome, bundles, host"),
    ("disks: {wipe: true}\n", "disks.wipe: unknown key (known: map, luks-key-file)"),
    ("plan: {jobs: many}\n", "plan.jobs: expected a number, got 'many'"),
    ("plan: {jobs: true}\n", "plan.jobs: expected a number, got True"),
    ("plan: {jobs: 0}\n", "plan.jobs: at least 1"),
    ("run: {allow-partial: yes-please}\n", "run.allow-partial: expected true or false"),
    ("welcome: {network: wifi}\n", "welcome.network: 'wifi': expected dhcp, none, original or static"),
    ("confirm: [web1]\n", "confirm: expected the host's name"),
    ("summary: {then: halt}\n", "summary.then: 'halt': expected one of poweroff, reboot"),
    ("bundles: {sftp: {host: b, user: u, path: /x}}\n",
     "bundles.sftp: host_key is missing (the host key is pinned"),
    ("bundles: {sftp: {host: b, user: u, path: /x, host_key: k, pw: s}}\n",
     "bundles.sftp.pw: unknown key"),
    ("host: {}\n", "host: give name (the newest bundle of that host) or bundle"),
    ("run: {target: mnt}\n", "run.target: 'mnt': expected an absolute path"),
    ("- host\n", "expected a mapping of screens"),
    ("host: [\n", "not valid YAML at line 2"),
])
def test_mistakes_are_named(tmp_path, text, said):
    with pytest.raises(ConfigError) as e:
        load(text, tmp_path)
    assert said in str(e.value)
    assert str(tmp_path / "a.yaml") in str(e.value)


def test_every_key_known_is_a_key_of_a_screen():
    assert set(answers.KEYS) | {"confirm"} == set(answers.SCREENS)
    doc = yaml.safe_load(answers.__doc__.split("\n\n", 2)[2].split("\n\nThe same")[0])
    # the module's documented example is itself a valid answers file
    answers.validate(doc, Path("/m"))


def test_the_original_network_from_a_bundles_network_yaml():
    from recovery.unattended import original_network
    net = {"interfaces": [
        {"name": "br0", "physical": False, "addresses": [{"family": "inet", "address": "1.1.1.1",
                                                         "prefix": 8}]},
        {"name": "ens3", "physical": True, "mac": "52:54:00:d1:00:0a",
         "addresses": [{"family": "inet6", "address": "fe80::1", "prefix": 64},
                       {"family": "inet", "address": "10.0.2.15", "prefix": 24}]}],
        "default_routes": [{"dev": "ens3", "family": "inet6", "gateway": "fe80::2"},
                           {"dev": "ens3", "family": "inet", "gateway": "10.0.2.2"}],
        "dns": {"nameservers": ["fe80::3", "10.0.2.3"]}}
    assert original_network(net) == "static:10.0.2.15/24,10.0.2.2,10.0.2.3,52:54:00:d1:00:0a"
    assert original_network({"interfaces": [{"name": "e", "physical": True,
                                             "addresses": []}]}) is None


def test_network_original_is_accepted(tmp_path):
    assert load("welcome: {network: original}\n", tmp_path).get("welcome", "network") == "original"
