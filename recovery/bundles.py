"""Open what the field engineer points at: a sealed .amdr.gpg or a plain directory.

A sealed bundle is decrypted into a private directory (on tmpfs when there
is /run), root's alone.  Without a recovery (no --target) it is removed when
the program ends; within one it is kept for the recovery's next commands
and removed by `umount` (see opened_dir), so the plaintext /etc and shadow
file do not outlive the recovery on the live system.
"""

from __future__ import annotations

import atexit
import getpass
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from essentials.bundle import Bundle, open_bundle, sha256_file
from essentials.config import read_secret_file
from essentials.errors import BundleError
from essentials import sealed

log = logging.getLogger(__name__)

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
        return writable_home(given)
    if os.environ.get("GNUPGHOME"):
        return os.environ["GNUPGHOME"]
    if Path(DEFAULT_GNUPGHOME).is_dir():
        return DEFAULT_GNUPGHOME
    return str(Path.home() / ".gnupg")


HOME_COPIES = Path("/run/amanda-dr/gnupg")


def writable_home(home: str) -> str:
    """gpg writes into its home (locks, the trust database, the agent's
    socket): a home on a read-only medium (the field engineer's USB stick,
    mounted read-only) is used from a private copy in memory, made once."""
    if not os.path.isdir(home) or os.access(home, os.W_OK):
        return home
    real = os.path.realpath(home)
    base = (HOME_COPIES if os.access("/run", os.W_OK)
            else Path(tempfile.gettempdir()) / "amdr-gnupg")
    dest = base / hashlib.sha256(real.encode()).hexdigest()[:16]
    if not dest.is_dir():
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = Path(tempfile.mkdtemp(dir=base))
        shutil.copytree(real, tmp / "home", ignore=shutil.ignore_patterns("S.*", "*.lock"),
                        dirs_exist_ok=True)
        os.chmod(tmp / "home", 0o700)
        os.rename(tmp / "home", dest)
        tmp.rmdir()
        log.info("GnuPG home %s is read-only: using a private copy, %s", home, dest)
    return str(dest)


def forget_home_copies() -> bool:
    """Remove the private copies of read-only GnuPG homes (they hold the
    recovery key): at umount, and when an unattended run ends."""
    if not HOME_COPIES.is_dir() or not any(HOME_COPIES.iterdir()):
        return False
    for d in HOME_COPIES.iterdir():
        sealed.forget_passphrase(d)
        shutil.rmtree(d, ignore_errors=True)
    return True


# -- a recovery opens each sealed bundle once ------------------------------------
# plan, diskinit, mount, restore are separate commands: each would decrypt the
# bundle again and ask for the passphrase again.  The plaintext is kept, for
# as long as the recovery (its state directory) lasts, in a root-only
# directory on /run (tmpfs: gone with the live system), named by the sealed
# file's sha256, so a different or altered bundle is never taken for it.
# `umount` removes it.
OPEN_ROOT = Path("/run/amanda-dr/open")
VERIFIED = ".verified"  # beside the copy: its signature was checked when it was opened


def opened_dir(state_dir: str) -> Path | None:
    """Where this recovery's opened bundles live (None: /run is not ours to use)."""
    if not os.access("/run", os.W_OK):
        return None
    key = hashlib.sha256(os.path.realpath(state_dir).encode()).hexdigest()[:16]
    return OPEN_ROOT / key


def forget_opened(state_dir: str) -> bool:
    """Remove this recovery's opened bundles; True when there were any."""
    d = opened_dir(state_dir)
    if d is None or not d.exists():
        return False
    shutil.rmtree(d, ignore_errors=True)
    return True


def _marker(d: Path) -> Path:
    return d.with_name(d.name + VERIFIED)


def _trust(home: str | None, signers: list[str] | None) -> str:
    """What the signature was checked against: a copy verified with --signer X
    is no verified copy for a run that trusts the keyring's owner trust only."""
    return json.dumps({"home": os.path.realpath(gnupghome(home)),
                       "signers": sorted(s.replace(" ", "").upper() for s in signers or [])})


def _reuse(d: Path, source: Path, verify: bool, trust: str) -> Bundle | None:
    if not (d / "manifest.yaml").is_file():
        return None
    if verify and (not _marker(d).exists() or _marker(d).read_text() != trust):
        return None
    try:
        b = open_bundle(d, verify=verify)  # the checksums again: cheap, and catches a change
    except BundleError as e:
        log.warning("opened copy of %s is damaged (%s); opening the bundle again", source, e)
        shutil.rmtree(d, ignore_errors=True)
        _marker(d).unlink(missing_ok=True)
        return None
    log.info("%s: using the copy opened earlier in this recovery (%s)", source.name, d)
    b.source = source
    return b


def open_any(path, *, home: str | None = None, passphrase_file: str | None = None,
             signers: list[str] | None = None, verify: bool = True,
             interactive: bool | None = None, keep_in: Path | None = None) -> Bundle:
    """Open a bundle; keep_in: this recovery's opened_dir(), to open it once."""
    p = Path(path)
    if p.is_dir():
        return open_bundle(p, verify=verify)
    if not p.exists():
        raise BundleError(f"{p}: no such bundle (give a HOST-...amdr.gpg file or a bundle "
                          f"directory)")
    if keep_in is not None:
        into = Path(keep_in) / sha256_file(p)[:32]
        b = _reuse(into, p, verify, _trust(home, signers))
        if b is not None:
            return b
        for d in (Path(keep_in).parent.parent, Path(keep_in).parent, Path(keep_in)):
            d.mkdir(mode=0o700, exist_ok=True)
            os.chmod(d, 0o700)
        shutil.rmtree(into, ignore_errors=True)
        _marker(into).unlink(missing_ok=True)
    else:
        into = sealed.private_dir()
        atexit.register(shutil.rmtree, into, True)
    b = _unseal_asking(p, home, passphrase_file, signers, verify, interactive, into)
    if keep_in is not None:
        if verify:
            fd = os.open(_marker(into), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(_trust(home, signers))
        print(f"note: {p.name} is opened in {into} (root's alone, in memory) for the next "
              f"steps of this recovery; `amdr-recover umount --target TARGET` removes it",
              file=sys.stderr)
    return b


def _unseal_asking(p: Path, home, passphrase_file, signers, verify, interactive,
                   into: Path) -> Bundle:
    home = gnupghome(home)
    passphrase = read_secret_file(passphrase_file, "passphrase") if passphrase_file else None
    if interactive is None:
        interactive = sys.stdin.isatty()
    cached = passphrase is None and home in _typed
    if cached:
        passphrase = _typed[home]  # the server's bundle after the client's: asked once
    try:
        b, _ = sealed.unseal(p, home, passphrase, signers, into=into, verify=verify)
        return b
    except BundleError as e:
        asked_for = "protected by a passphrase" in str(e) or (cached and "wrong passphrase"
                                                              in str(e))
        if (passphrase is not None and not cached) or not interactive or not asked_for:
            raise
    for attempt in range(1, ASK_TIMES + 1):
        passphrase = getpass.getpass(f"Passphrase for the recovery key (to open {p.name}): ")
        try:
            b, _ = sealed.unseal(p, home, passphrase, signers, into=into, verify=verify)
        except BundleError as e:
            if "wrong passphrase" not in str(e) or attempt == ASK_TIMES:
                raise
            print(f"{e}", file=sys.stderr)
            continue
        _typed[home] = passphrase
        return b


ASK_TIMES = 3
# what was typed for a keyring, in this process's memory only (never written)
_typed: dict[str, str] = {}
