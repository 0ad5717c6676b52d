"""essentials.yaml validation: defaults filled, mistakes named by file and key."""

import os

import pytest
import yaml

from essentials import config
from essentials.config import ConfigError, example, load, read_secret_file, validate
from essentials.errors import EXIT_CONFIG

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
SIGNER = "FEDCBA9876543210FEDCBA9876543210FEDCBA98"
WHERE = "/etc/amanda-dr/essentials.yaml"


def minimal(**extra) -> dict:
    data = {"gpg": {"recipients": [FPR], "signer": SIGNER}}
    data.update(extra)
    return data


def fails(data, where: str = WHERE) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        validate(data, where)
    assert e.value.exit_code == EXIT_CONFIG == 2
    return e.value


# -- defaults ------------------------------------------------------------------

def test_minimal_config_gets_every_default():
    cfg = validate(minimal(), WHERE)
    assert cfg["host"] is None
    assert cfg["state_dir"] == "/var/lib/amanda-dr"
    assert cfg["spool_dir"] == "/var/spool/amanda-dr"
    assert cfg["spool_keep"] == 4
    assert cfg["log_file"] == "/var/log/amanda-dr/essentials.log"
    assert cfg["gpg"] == {"home": "/etc/amanda-dr/gnupg", "recipients": [FPR],
                          "signer": SIGNER, "passphrase_file": None}
    assert cfg["collect"]["etc"] == {"enabled": True, "exclude": []}
    assert cfg["collect"]["layout"] == {"enabled": True, "disks": [], "root": "/",
                                        "luks_header": False}
    assert cfg["collect"]["packages"] == {"enabled": True}
    assert cfg["collect"]["network"] == {"enabled": True}
    assert cfg["collect"]["capabilities"] == {
        "enabled": True, "paths": ["/usr", "/bin", "/sbin", "/lib", "/opt"]}
    assert cfg["collect"]["amanda"] == {"enabled": True, "configs": [], "index_max_mb": 200}
    assert cfg["deliveries"] == []


def test_list_defaults_are_not_shared_between_loads():
    a = validate(minimal(), WHERE)
    a["collect"]["etc"]["exclude"].append("etc/ssl/private")
    b = validate(minimal(), WHERE)
    assert b["collect"]["etc"]["exclude"] == []


def test_given_values_override_defaults():
    cfg = validate(minimal(state_dir="/srv/amdr", spool_keep=2, host="web1"), WHERE)
    assert (cfg["state_dir"], cfg["spool_keep"], cfg["host"]) == ("/srv/amdr", 2, "web1")
    assert cfg["spool_dir"] == "/var/spool/amanda-dr"


def test_empty_value_means_default():
    cfg = validate(minimal(spool_dir=None), WHERE)
    assert cfg["spool_dir"] == "/var/spool/amanda-dr"


def test_sftp_delivery_defaults_and_name():
    cfg = validate(minimal(deliveries=[{"type": "sftp", "host": "store.example.com",
                                        "user": "amdr"}]), WHERE)
    assert cfg["deliveries"] == [{
        "type": "sftp", "name": "sftp:store.example.com", "keep": 8,
        "host": "store.example.com", "port": 22, "user": "amdr",
        "key_file": "/etc/amanda-dr/id_ed25519", "known_hosts": "/etc/amanda-dr/known_hosts",
        "dir": ".", "timeout": 30,
    }]


def test_mail_delivery_defaults_and_name():
    cfg = validate(minimal(deliveries=[{"type": "mail", "to": ["a@example.com",
                                                                "b@example.com"]}]), WHERE)
    (d,) = cfg["deliveries"]
    assert d["name"] == "mail:a@example.com,b@example.com"
    assert d["smtp_host"] == "127.0.0.1"
    assert d["port"] == 25
    assert d["security"] == "starttls"
    assert d["max_size_mb"] == 20
    assert d["timeout"] == 30
    assert d["keep"] == 8
    assert d["user"] is None and d["password_file"] is None and d["from"] is None
    assert "host" not in d  # keys of other delivery types are not filled in


def test_local_delivery_name_prefers_the_device():
    cfg = validate(minimal(deliveries=[
        {"type": "local", "dir": "/mnt/usb", "device": "/dev/disk/by-label/AMDR"},
        {"type": "local", "dir": "/srv/bundles"},
    ]), WHERE)
    assert [d["name"] for d in cfg["deliveries"]] == ["local:/dev/disk/by-label/AMDR",
                                                      "local:/srv/bundles"]
    assert cfg["deliveries"][0]["mount_options"] == "rw,nosuid,nodev,noexec"


def test_explicit_delivery_name_is_kept():
    cfg = validate(minimal(deliveries=[{"type": "sftp", "name": "offsite", "host": "h",
                                        "user": "u"}]), WHERE)
    assert cfg["deliveries"][0]["name"] == "offsite"


def test_single_recipient_string_becomes_a_list():
    cfg = validate({"gpg": {"recipients": FPR, "signer": SIGNER}}, WHERE)
    assert cfg["gpg"]["recipients"] == [FPR]


def test_single_mail_recipient_string_becomes_a_list():
    cfg = validate(minimal(deliveries=[{"type": "mail", "to": "dr@example.com"}]), WHERE)
    assert cfg["deliveries"][0]["to"] == ["dr@example.com"]
    assert cfg["deliveries"][0]["name"] == "mail:dr@example.com"


def test_float_or_int_field_accepts_both():
    cfg = validate(minimal(collect={"amanda": {"index_max_mb": 50.5}}), WHERE)
    assert cfg["collect"]["amanda"]["index_max_mb"] == 50.5


# -- errors: unknown keys --------------------------------------------------------

def test_unknown_key_with_did_you_mean():
    e = fails({"gpg": {"recipents": [FPR], "signer": SIGNER}})
    assert str(e) == f"{WHERE}: gpg.recipents: unknown key (did you mean 'recipients'?)"


def test_unknown_top_level_key_lists_known_keys_when_nothing_is_close():
    e = fails(minimal(zzzz=1))
    assert str(e).startswith(f"{WHERE}: zzzz: unknown key (known keys: host, state_dir, ")
    assert "deliveries)" in str(e)


def test_unknown_nested_key_names_the_full_path():
    e = fails(minimal(collect={"layout": {"disk": ["/dev/sda"]}}))
    assert str(e) == f"{WHERE}: collect.layout.disk: unknown key (did you mean 'disks'?)"


def test_top_level_not_a_mapping():
    e = fails(["a", "b"])
    assert str(e) == f"{WHERE}: top level: expected a mapping of keys, got ['a', 'b']"


def test_section_not_a_mapping():
    e = fails({"gpg": "ABCDEF"})
    assert str(e) == f"{WHERE}: gpg: expected a mapping of keys, got 'ABCDEF'"


# -- errors: types -------------------------------------------------------------

def test_yaml_yes_is_not_an_integer():
    data = yaml.safe_load(f"gpg: {{recipients: [{FPR}], signer: {SIGNER}}}\nspool_keep: yes\n")
    assert data["spool_keep"] is True
    e = fails(data)
    assert str(e) == f"{WHERE}: spool_keep: expected an integer, got True"


def test_quoted_port_is_not_an_integer():
    e = fails(minimal(deliveries=[{"type": "sftp", "host": "h", "user": "u", "port": "22"}]))
    assert str(e) == f"{WHERE}: deliveries[0].port: expected an integer, got '22'"


def test_bool_field_rejects_a_string():
    e = fails(minimal(collect={"etc": {"enabled": "no"}}))
    assert str(e) == f"{WHERE}: collect.etc.enabled: expected true or false, got 'no'"


def test_list_item_of_wrong_type_names_its_index():
    e = fails(minimal(collect={"etc": {"exclude": ["etc/ssl", {"a": 1}]}}))
    assert str(e) == f"{WHERE}: collect.etc.exclude[1]: expected a string, got {{'a': 1}}"


def test_float_field_rejects_bool():
    e = fails(minimal(collect={"amanda": {"index_max_mb": True}}))
    assert str(e) == (f"{WHERE}: collect.amanda.index_max_mb: expected an integer or a "
                      f"number, got True")


def test_yaml_bool_is_not_a_one_item_string_list():
    # `exclude: yes` is a YAML boolean; it must not turn into the pattern "True"
    data = yaml.safe_load(f"gpg: {{recipients: [{FPR}], signer: {SIGNER}}}\n"
                          f"collect: {{etc: {{exclude: yes}}}}\n")
    e = fails(data)
    assert "collect.etc.exclude" in str(e)


def test_numeric_key_id_is_not_silently_rewritten():
    # YAML reads 01234567 as octal 342391; encrypting to "342391" is not what was written
    data = yaml.safe_load(f"gpg: {{recipients: 01234567, signer: {SIGNER}}}\n")
    try:
        cfg = validate(data, WHERE)
    except ConfigError as e:
        assert "gpg.recipients" in str(e)
    else:
        assert cfg["gpg"]["recipients"] == ["01234567"]


# -- errors: missing and empty -------------------------------------------------

def test_missing_signer():
    e = fails({"gpg": {"recipients": [FPR]}})
    assert str(e) == (f"{WHERE}: gpg.signer: missing; expected fingerprint of this host's "
                      f"signing key")


def test_missing_gpg_section_names_recipients():
    e = fails({})
    assert str(e).startswith(f"{WHERE}: gpg.recipients: missing; expected fingerprints")


def test_empty_file_is_a_missing_gpg_section():
    e = fails(None)
    assert str(e).startswith(f"{WHERE}: gpg.recipients: missing")


def test_empty_recipients():
    e = fails({"gpg": {"recipients": [], "signer": SIGNER}})
    assert str(e) == (f"{WHERE}: gpg.recipients: empty; expected at least one key to "
                      f"encrypt to")


# -- errors: checks ---------------------------------------------------------------

def test_relative_path_for_absolute_only_key():
    e = fails(minimal(spool_dir="var/spool/amdr"))
    assert str(e) == f"{WHERE}: spool_dir: expected an absolute path, got 'var/spool/amdr'"


def test_relative_capabilities_path():
    e = fails(minimal(collect={"capabilities": {"paths": ["/usr", "opt"]}}))
    assert str(e) == (f"{WHERE}: collect.capabilities.paths: expected a list of absolute "
                      f"paths, got ['/usr', 'opt']")


def test_relative_passphrase_file():
    e = fails({"gpg": {"recipients": [FPR], "signer": SIGNER, "passphrase_file": "pass"}})
    # the value is not echoed: a passphrase pasted here would reach cron mail
    assert str(e) == (f"{WHERE}: gpg.passphrase_file: expected an absolute path, got a str of "
                      f"4 characters (not shown: this key names the file of a secret)")


def test_mail_security_tls_is_not_a_choice():
    e = fails(minimal(deliveries=[{"type": "mail", "to": ["a@x"], "security": "tls"}]))
    assert str(e) == (f"{WHERE}: deliveries[0].security: expected one of starttls, ssl, "
                      f"none, got 'tls'")


def test_zero_keep_is_refused():
    e = fails(minimal(spool_keep=0))
    assert str(e) == f"{WHERE}: spool_keep: expected a number greater than 0, got 0"


# -- errors: deliveries -----------------------------------------------------------

def test_unknown_delivery_type():
    e = fails(minimal(deliveries=[{"type": "ftp", "host": "h"}]))
    assert str(e) == f"{WHERE}: deliveries[0].type: expected one of sftp, mail, local, got 'ftp'"


def test_delivery_without_type():
    e = fails(minimal(deliveries=[{"host": "h"}]))
    assert str(e) == f"{WHERE}: deliveries[0].type: missing; expected sftp, mail or local"


def test_delivery_not_a_mapping():
    e = fails(minimal(deliveries=["sftp://h"]))
    assert str(e) == f"{WHERE}: deliveries[0]: expected a mapping with a type, got 'sftp://h'"


def test_deliveries_not_a_list():
    e = fails(minimal(deliveries={"type": "sftp"}))
    assert str(e) == f"{WHERE}: deliveries: expected a list of mappings, got {{'type': 'sftp'}}"


def test_key_of_another_delivery_type_is_rejected():
    e = fails(minimal(deliveries=[{"type": "sftp", "host": "h", "user": "u",
                                   "to": ["a@x"]}]))
    assert str(e) == (f"{WHERE}: deliveries[0].to: is a key of mail deliveries, "
                      f"not of this one (type: sftp)")


def test_sftp_without_host():
    e = fails(minimal(deliveries=[{"type": "sftp", "user": "u"}]))
    assert str(e) == f"{WHERE}: deliveries[0].host: missing; a sftp delivery needs it"


def test_mail_without_recipients():
    e = fails(minimal(deliveries=[{"type": "sftp", "host": "h", "user": "u"},
                                  {"type": "mail", "to": []}]))
    assert str(e) == f"{WHERE}: deliveries[1].to: missing; a mail delivery needs it"


def test_local_without_dir():
    e = fails(minimal(deliveries=[{"type": "local", "device": "/dev/sdb1"}]))
    assert str(e) == f"{WHERE}: deliveries[0].dir: missing; a local delivery needs it"


def test_local_create_and_removable_are_booleans_and_local_only():
    e = fails(minimal(deliveries=[{"type": "local", "dir": "/mnt/usb", "removable": "yes"}]))
    assert str(e) == f"{WHERE}: deliveries[0].removable: expected true or false, got 'yes'"
    e = fails(minimal(deliveries=[{"type": "local", "dir": "/mnt/usb", "create": 1}]))
    assert str(e) == f"{WHERE}: deliveries[0].create: expected true or false, got 1"
    e = fails(minimal(deliveries=[{"type": "sftp", "host": "h", "user": "u",
                                   "removable": True}]))
    assert "deliveries[0].removable: is a key of local deliveries" in str(e)
    cfg = validate(minimal(deliveries=[{"type": "local", "dir": "/mnt/usb"}]))
    assert (cfg["deliveries"][0]["create"], cfg["deliveries"][0]["removable"]) == (False, False)


def test_duplicate_default_names():
    e = fails(minimal(deliveries=[{"type": "sftp", "host": "h", "user": "a"},
                                  {"type": "sftp", "host": "h", "user": "b", "port": 2222}]))
    assert str(e) == (f"{WHERE}: deliveries[1].name: 'sftp:h' is used twice; give each "
                      f"delivery its own name")


def test_duplicate_explicit_names():
    e = fails(minimal(deliveries=[{"type": "sftp", "name": "x", "host": "h", "user": "a"},
                                  {"type": "local", "name": "x", "dir": "/mnt"}]))
    assert str(e).startswith(f"{WHERE}: deliveries[1].name: 'x' is used twice")


# -- load --------------------------------------------------------------------

def test_load_missing_file(tmp_path):
    p = tmp_path / "essentials.yaml"
    with pytest.raises(ConfigError) as e:
        load(p)
    assert e.value.exit_code == 2
    assert str(e.value) == (f"{p}: no such file; write one from "
                            f"`amdr-essentials config-example`")


def test_load_not_yaml_gives_line_and_column(tmp_path):
    p = tmp_path / "essentials.yaml"
    p.write_text("gpg:\n  signer: X\n  recipients: [A, B\nspool_keep: 3\n")
    with pytest.raises(ConfigError) as e:
        load(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: not valid YAML at line 4, column ")
    assert e.value.exit_code == 2


def test_load_tab_indentation(tmp_path):
    p = tmp_path / "essentials.yaml"
    p.write_text("gpg:\n\tsigner: X\n")
    with pytest.raises(ConfigError) as e:
        load(p)
    assert str(e.value).startswith(f"{p}: not valid YAML at line 2, column 1: ")


def test_load_a_directory(tmp_path):
    with pytest.raises(ConfigError) as e:
        load(tmp_path)
    assert str(e.value) == f"{tmp_path}: cannot read it: Is a directory"
    assert e.value.exit_code == 2


def test_load_validates_with_the_file_name(tmp_path):
    p = tmp_path / "essentials.yaml"
    p.write_text(f"gpg:\n  recipients: [{FPR}]\n  signer: {SIGNER}\nspool_kep: 3\n")
    with pytest.raises(ConfigError) as e:
        load(p)
    assert str(e.value) == f"{p}: spool_kep: unknown key (did you mean 'spool_keep'?)"


def test_load_good_file(tmp_path):
    p = tmp_path / "essentials.yaml"
    p.write_text(f"gpg:\n  recipients: {FPR}\n  signer: {SIGNER}\n"
                 f"deliveries:\n  - type: local\n    dir: /mnt/usb\n")
    cfg = load(p)
    assert cfg["gpg"]["recipients"] == [FPR]
    assert cfg["deliveries"][0]["name"] == "local:/mnt/usb"
    assert cfg["deliveries"][0]["keep"] == 8


# -- example -------------------------------------------------------------------

def test_example_parses_and_validates():
    text = example()
    data = yaml.safe_load(text)
    cfg = validate(data, "config-example")
    assert cfg["gpg"]["recipients"] == [FPR]
    assert cfg["gpg"]["signer"] == SIGNER
    assert cfg["state_dir"] == "/var/lib/amanda-dr"
    assert [d["name"] for d in cfg["deliveries"]] == [
        "sftp:backup-store.example.com", "mail:dr-team@example.com",
        "local:/dev/disk/by-label/AMDR-USB", "usb-stick"]
    assert cfg["deliveries"][0]["dir"] == "bundles"
    assert cfg["deliveries"][2]["keep"] == 4
    assert (cfg["deliveries"][2]["create"], cfg["deliveries"][2]["removable"]) == (False, False)
    assert (cfg["deliveries"][3]["create"], cfg["deliveries"][3]["removable"]) == (False, True)


def test_example_shows_every_top_level_key():
    text = example()
    for key in config.SCHEMA.keys:
        assert f"\n{key}:" in text or f"\n# {key}:" in text, key


# -- read_secret_file -----------------------------------------------------------

def test_secret_file_readable_by_others_is_refused(tmp_path):
    p = tmp_path / "smtp-password"
    p.write_text("s3cret\n")
    os.chmod(p, 0o644)
    with pytest.raises(ConfigError) as e:
        read_secret_file(str(p), "SMTP password")
    assert str(e.value) == (f"{p}: the SMTP password file is readable by others "
                            f"(mode 644); chmod 600 it")
    assert e.value.exit_code == 2


def test_secret_file_readable_by_group_is_refused(tmp_path):
    p = tmp_path / "pass"
    p.write_text("x")
    os.chmod(p, 0o640)
    with pytest.raises(ConfigError) as e:
        read_secret_file(str(p), "signing key passphrase")
    assert "(mode 640)" in str(e.value)


def test_secret_file_600_strips_the_newline(tmp_path):
    p = tmp_path / "pass"
    p.write_text("correct horse \n")
    os.chmod(p, 0o600)
    assert read_secret_file(str(p), "signing key passphrase") == "correct horse "


def test_secret_file_missing(tmp_path):
    p = tmp_path / "nope"
    with pytest.raises(ConfigError) as e:
        read_secret_file(str(p), "SMTP password")
    assert str(e.value) == f"{p}: cannot read the SMTP password: No such file or directory"


def test_a_password_pasted_for_its_file_is_not_echoed():
    for value in ("S3cr3t pw!", 12345678):
        e = fails(minimal(deliveries=[{"type": "mail", "to": ["a@x"], "user": "u",
                                       "password_file": value}]))
        assert "deliveries[0].password_file: expected" in str(e)
        assert str(value) not in str(e) and "not shown" in str(e)
    e = fails(minimal(deliveries=[{"type": "sftp", "host": "h", "user": "u",
                                   "key_file": "-----BEGIN OPENSSH PRIVATE KEY-----"}]))
    assert "BEGIN" not in str(e) and "deliveries[0].key_file" in str(e)


def test_site_and_assist_are_checked_and_carried_in_the_manifest():
    base = {"gpg": {"recipients": ["A"], "signer": "B"}}
    cfg = config.validate(dict(base, site={"priority": 1, "role": "mail"},
                               assist={"host": "jump.example.com", "user": "amdr-live",
                                       "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA",
                                       "keys": ["ssh-ed25519 AAAAC3Nza alice@office"]}))
    extra = config.manifest_extra(cfg)
    assert extra["site"] == {"priority": 1, "role": "mail"}
    assert extra["assist"]["listen"] == 2222 and extra["assist"]["port"] == 22
    assert config.manifest_extra(config.validate(base)) == {}
    with pytest.raises(ConfigError, match=r"assist.host_key: missing"):
        config.validate(dict(base, assist={"host": "jump", "user": "u"}))
    with pytest.raises(ConfigError, match=r"assist.keys\[0\]: expected an OpenSSH"):
        config.validate(dict(base, assist={"host": "j", "user": "u",
                                           "host_key": "ssh-ed25519 AAAA", "keys": ["pw"]}))
    with pytest.raises(ConfigError, match=r"site.priority"):
        config.validate(dict(base, site={"priority": 0}))
