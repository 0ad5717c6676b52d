"""Open what the field engineer points at: a sealed .amdr.gpg or a plain directory.

A sealed bundle is decrypted into a private directory (on tmpfs when there
is /run) that is removed when the program ends, so the plaintext /etc and
shadow file do not outlive the recovery run on the live system.
"""

from __future__ import annotations

import atexit
import getpass
import os
import shutil
import sys
from pathlib import Path

from essentials.bundle import Bundle, open_bundle
from essentials.config import read_secret_file
from essentials.errors import BundleError
from essentials import sealed

DEFAULT_GNUPGHOME = "/etc/amanda-dr/recovery-gnupg"


def add_key_options(p):
    """The options that open a sealed bundle: the same on every subcommand."""
    p.add_argument("--gnupghome", help="GnuPG home with the site's recovery secret key "
                   "and the hosts' public keys (default: $GNUPGHOME, "
                   "/etc/amanda-dr/recovery-gnupg, ~/.gnupg)")
    p.add_argument("--passphrase-file", help="file holding the recovery key's "
                   "passphrase (default: asked on the terminal)")
    p.add_argument("--signer", action="append", metavar="FINGERPRINT",
                   help="accept bundles signed by this key (repeatable; default: "
                        "keys with full or ultimate owner trust)")
    p.add_argument("--no-verify", action="store_true",
                   help="use a bundle even if its signature or checksums do not "
                        "verify (dangerous)")


def key_options(args) -> dict:
    """add_key_options' keys, as open_any's keyword arguments (verify aside)."""
    return {"home": args.gnupghome, "passphrase_file": args.passphrase_file,
            "signers": args.signer}


def gnupghome(given: str | None) -> str:
    if given:
        return given
    if os.environ.get("GNUPGHOME"):
        return os.environ["GNUPGHOME"]
    if Path(DEFAULT_GNUPGHOME).is_dir():
        return DEFAULT_GNUPGHOME
    return str(Path.home() / ".gnupg")


def open_any(path, *, home: str | None = None, passphrase_file: str | None = None,
             signers: list[str] | None = None, verify: bool = True,
             interactive: bool | None = None) -> Bundle:
    p = Path(path)
    if p.is_dir():
        return open_bundle(p, verify=verify)
    if not p.exists():
        raise BundleError(f"{p}: no such bundle (give a HOST-...amdr.gpg file or a bundle "
                          f"directory)")
    home = gnupghome(home)
    passphrase = read_secret_file(passphrase_file, "passphrase") if passphrase_file else None
    if interactive is None:
        interactive = sys.stdin.isatty()
    into = sealed.private_dir()
    atexit.register(shutil.rmtree, into, True)
    try:
        b, _ = sealed.unseal(p, home, passphrase, signers, into=into, verify=verify)
    except BundleError as e:
        if passphrase is not None or not interactive or "protected by a passphrase" not in str(e):
            raise
        passphrase = getpass.getpass(f"Passphrase for the recovery key (to open {p.name}): ")
        b, _ = sealed.unseal(p, home, passphrase, signers, into=into, verify=verify)
    return b
