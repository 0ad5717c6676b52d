"""Remote assist's pure parts (recovery/assist.py): the settings, the office's
authorized_keys lines, the pinned known_hosts line, the tunnel's ssh options."""

from pathlib import Path

import pytest

from essentials.errors import ConfigError
from recovery import assist

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOfficeKeyOfficeKeyOfficeKeyOfficeKey00"


def settings(**kw):
    doc = {"host": "jump.example.com", "user": "amdr-live", "host_key": KEY,
           "keys": [KEY + " alice@office", KEY]}
    doc.update(kw)
    return assist.Settings.from_doc(doc, "site.yaml office", Path("/media/AMDR"))


def test_settings_take_defaults_and_a_key_beside_them():
    s = settings(key="amdr/jump_key")
    assert (s.port, s.listen) == (22, 2222)
    assert s.key == "/media/AMDR/amdr/jump_key"
    with pytest.raises(ConfigError, match="site.yaml office: remote assist needs host_key"):
        assist.Settings.from_doc({"host": "j", "user": "u"}, "site.yaml office")


def test_each_office_key_is_forced_into_attach_and_named(tmp_path):
    lines = assist.authorized_keys(settings(), assist.State(tmp_path),
                                   "/usr/local/sbin/amdr-recover")
    first, second = lines.splitlines()
    assert first.startswith('restrict,pty,command="/usr/local/sbin/amdr-recover assist attach '
                            f'--state {tmp_path} --who alice@office" ssh-ed25519 ')
    assert "--who office-key-2" in second
    # a comment cannot break out of the forced command
    evil = settings(keys=[KEY + ' x" ,command="sh'])
    line = assist.authorized_keys(evil, assist.State(tmp_path), "amdr").strip()
    assert line.count('"') == 2 and '--who x" ' in line


def test_the_jump_host_is_pinned_and_the_tunnel_cannot_stay_half_up(tmp_path):
    s = settings(port=2022, listen=2300)
    assert assist.known_hosts_line(s) == f"[jump.example.com]:2022 {KEY}\n"
    argv = assist.ssh_argv(s, assist.State(tmp_path), "/k", 22)
    joined = " ".join(argv)
    for opt in ("StrictHostKeyChecking=yes", "BatchMode=yes", "ExitOnForwardFailure=yes",
                "ServerAliveInterval=5", "HostKeyAlgorithms=ssh-ed25519", "IdentitiesOnly=yes",
                "GlobalKnownHostsFile=/dev/null"):
        assert opt in joined
    assert argv[-3:] == ["-R", "localhost:2300:localhost:22", "amdr-live@jump.example.com"]


def test_the_status_lines(tmp_path):
    st = assist.State(tmp_path)
    st.make()
    (tmp_path / "config.json").write_text('{"session": "none-such", "code": "123 456"}')
    st.set_tunnel("refused: the port 2222 on the jump host is taken; retrying in 8 s")
    assert st.file("status").read_text().startswith("assist: refused: the port 2222")
    assert st.file("status.short").read_text().strip() == "office REFUSED (F9 says why) | 123 456"
    st.set_tunnel("connected via jump:22, office port 2222")
    assert st.file("status.short").read_text().strip() == "office connected | 123 456"


def test_on_the_lan_the_status_line_shows_the_password_and_fits(tmp_path):
    st = assist.State(tmp_path)
    st.make()
    (tmp_path / "config.json").write_text('{"session": "none-such", "code": "123 456"}')
    (tmp_path / "lan").write_text("abcd-efgh-jkmn\n")
    st.set_tunnel("off")
    line = st.file("status.short").read_text().strip()
    assert line == "LAN pw abcd-efgh-jkmn | 123 456"
    # beside tmux's left side ("[amdr] 0:recovery* 1:shell") it fits 80 columns with
    # a client's "NAME watching" in front
    assert len("[amdr] 0:recovery* 1:shell ") + len("lan watching | " + line) <= 80
    # the password goes nowhere else in the state but its own file and the status
    for f in tmp_path.iterdir():
        if f.name not in ("lan", "status.short") and f.is_file():
            assert "abcd-efgh-jkmn" not in f.read_text(), f


def test_host_and_user_cannot_become_ssh_options():
    for bad in ({"host": "-oProxyCommand=sh"}, {"user": "root\nx"}, {"host": "a b"}):
        with pytest.raises(ConfigError, match="expected a"):
            settings(**bad)
