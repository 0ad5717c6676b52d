"""Amanda's encryption programs and the key files each reads from the dump user's home.

The paths are the programs' own (Amanda 3.5.1's scripts in /usr/sbin), relative
to `~backup` on Debian.  Without them a lost server's encrypted images cannot be
read by anyone: essentials seals them into the bundle (never into a log or an
unsealed collection) and recovery puts them back for the run (recovery/restore/crypt.py).
"""

from __future__ import annotations

import os
import re

AMANDA_USER = "backup"

# program -> (files it cannot decrypt without, files it uses when present)
KEY_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "amcrypt-ossl": ((".am_passphrase",), ()),
    "amcrypt": ((".am_passphrase",), (".gnupg/am_key.gpg",)),
    "amcryptsimple": ((".am_passphrase",), (".gnupg",)),
    "amgpgcrypt": ((".am_passphrase", ".gnupg"), ()),
    "amcrypt-ossl-asym": (("backup-privkey.pem",), (".am_passphrase",)),
}
# files whose presence alone says this host encrypts (a client with `encrypt client`)
SIGNS = (".am_passphrase", "backup-privkey.pem")

# `server-encrypt "/usr/sbin/amcrypt-ossl"` (or server_encrypt) in a dumptype
_ENCRYPT = re.compile(r'^\s*(server|client)[-_]encrypt\s+"?([^"\s]+)"?', re.M | re.I)


def programs_in(conf_text: str, side: str | None = None) -> list[str]:
    """The encryption programs an amanda.conf names (server-encrypt and
    client-encrypt, or one `side`), in order, each once."""
    out: list[str] = []
    for where, prog in _ENCRYPT.findall(conf_text):
        if (side is None or where.lower() == side) and prog not in out:
            out.append(prog)
    return out


def name(prog: str) -> str:
    return os.path.basename(prog)


def files_for(prog: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    return KEY_FILES.get(name(prog))
