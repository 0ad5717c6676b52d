"""Issue 11: each half's keyring error names what that half needs, not the other's.

The host seals with the site's recovery PUBLIC key and its own signing key;
recovery opens with the site's recovery SECRET key and the hosts' public keys.
A missing keyring on the recovery side said to import "the recovery public
keys and this host's signing key": the wrong half."""

import pytest

from essentials import sealed
from essentials.errors import ConfigError


def test_a_missing_sealing_keyring_names_the_public_key_and_host_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        sealed.sender_keys(tmp_path / "gnupg", ["SITE"], "HOST")
    msg = str(e.value)
    assert msg.startswith(f"gpg home {tmp_path / 'gnupg'} does not exist; create it (mode 700) "
                          f"and import the site's recovery PUBLIC key")
    assert "amdr-essentials host-key" in msg and "SECRET" not in msg


def test_a_missing_recovery_keyring_names_the_secret_key_and_the_hosts_keys(tmp_path):
    b = tmp_path / "web1-20261122T010203Z.amdr.gpg"
    b.write_bytes(b"not opened: the keyring is checked first")
    with pytest.raises(ConfigError) as e:
        sealed.unseal(b, tmp_path / "no-such-gnupg")
    msg = str(e.value)
    assert msg == (f"gpg home {tmp_path / 'no-such-gnupg'} does not exist; give --gnupghome "
                   f"with a keyring holding the site's recovery SECRET key and the public key "
                   f"of every host whose bundles it opens, trusted (or name the signers with "
                   f"--signer FINGERPRINT)")
    assert "PUBLIC key (gpg.recipients)" not in msg and "host-key" not in msg
