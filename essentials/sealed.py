"""The sealed bundle: HOST-YYYYMMDDTHHMMSSZ.amdr.gpg.

A tar whose first member is manifest.yaml, encrypted to the site's recovery
keys and signed with the host's key.  Both halves use this module: the agent
seals, recovery unseals.  Why signed and encrypted rather than only
encrypted: anybody holding the public recovery key can encrypt, so only the
signature tells recovery that the bundle came from the host and was not
swapped for one that recreates the wrong disks.

Sealing runs `tar | gpg` as an OS pipeline through the runner, so no
plaintext tar is ever written to disk.  Unsealing uses python-gnupg, whose
status parsing tells a wrong passphrase from a bad signature from a damaged
file; the plaintext goes into a private (0700) directory only.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import gnupg

from .bundle import MANIFEST, Bundle, _members, open_bundle
from .errors import BundleError, CommandError, ConfigError
from .runner import Cmd, Runner

log = logging.getLogger(__name__)

SUFFIX = ".amdr.gpg"
_NAME = re.compile(r"^(?P<host>.+)-(?P<ts>\d{8}T\d{6}Z)\.amdr\.gpg$")


def bundle_name(host: str, when: datetime) -> str:
    return f"{host}-{when.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}{SUFFIX}"


def parse_name(name: str) -> tuple[str, datetime] | None:
    """(host, time) of a bundle file name, or None when it is not one."""
    m = _NAME.match(name)
    if not m:
        return None
    try:
        ts = datetime.strptime(m["ts"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:  # looks like one, but month 13 or hour 25: not ours
        return None
    return m["host"], ts


def newest_first(names, host: str | None = None) -> list[str]:
    """Bundle file names (of one host when given), newest first; others dropped."""
    parsed = [(parse_name(n), n) for n in names]
    keep = [(p[1], n) for p, n in parsed if p and (host is None or p[0] == host)]
    return [n for _, n in sorted(keep, reverse=True)]


# -- keys -------------------------------------------------------------------

# what each half's keyring holds: the host seals with the site's public key and
# its own secret signing key; recovery opens with the site's secret key and
# verifies with each host's public key (the halves are not interchangeable)
SEALING_KEYS = ("the site's recovery PUBLIC key (gpg.recipients) and this host's signing key "
                "(amdr-essentials host-key makes it)")
OPENING_KEYS = ("the site's recovery SECRET key and the public key of every host whose "
                "bundles it opens, trusted (or name the signers with --signer FINGERPRINT)")


def keyring(home: str | Path, needs: str = SEALING_KEYS) -> gnupg.GPG:
    home = Path(home)
    if not home.is_dir():
        where = ("give --gnupghome with a keyring holding" if needs == OPENING_KEYS
                 else "create it (mode 700) and import")
        raise ConfigError(f"gpg home {home} does not exist; {where} {needs}")
    g = gnupg.GPG(gnupghome=str(home))
    g.buffer_size = 1 << 20
    return g


class AmbiguousKey(ConfigError):
    pass


def _find_key(keys, wanted: str):
    """The one key `wanted` (fingerprint, key id, e-mail or part of a user id) names.

    Why refuse a name that fits several keys instead of taking the first: the
    host's keyring holds the host's own key beside the recovery keys, so
    "amdr" or "example.com" could silently pick the host key and encrypt every
    bundle to a key that dies with the host.
    """
    w = wanted.replace(" ", "").upper()
    if w.startswith("0X"):
        w = w[2:]
    if not w:
        return None
    exact, loose = [], []
    for k in keys:
        fprs = [k["fingerprint"]] + [s[2] for s in k.get("subkey_info", {}).items()
                                     if isinstance(s, tuple) and len(s) > 2]
        uids = k.get("uids", [])
        if (any(f and f.upper() == w for f in fprs)
                or any(u == wanted or f"<{wanted.lower()}>" in u.lower() for u in uids)):
            exact.append(k)
        elif (any(f and f.upper().endswith(w) for f in fprs)
              or any(wanted.lower() in u.lower() for u in uids)):
            loose.append(k)
    found = exact or loose
    if len({k["fingerprint"] for k in found}) > 1:
        raise AmbiguousKey(
            f"'{wanted}' names {len(found)} keys ("
            + ", ".join(f"{k['fingerprint']} {(k.get('uids') or ['?'])[0]}" for k in found)
            + "); give the full fingerprint of the one meant")
    return found[0] if found else None


def sender_keys(home, recipients: list[str], signer: str) -> tuple[list[str], str]:
    """Resolve recipients and signer to fingerprints, or say which key is missing."""
    g = keyring(home)
    public = g.list_keys()
    secret = g.list_keys(secret=True)
    fprs = []
    for r in recipients:
        try:
            k = _find_key(public, r)
        except AmbiguousKey as e:
            raise ConfigError(f"gpg.recipients: {e}") from None
        if k is None:
            raise ConfigError(
                f"gpg.recipients: no public key '{r}' in {home}; import the site's recovery "
                f"PUBLIC key with `gpg --homedir {home} --import KEYFILE` (its secret key "
                f"stays off the hosts)")
        if k.get("trust") in ("e", "r") or "e" not in k.get("cap", "e").lower():
            raise ConfigError(f"gpg.recipients: key '{r}' ({k['fingerprint']}) is expired, "
                              f"revoked or cannot encrypt")
        fprs.append(k["fingerprint"])
    try:
        s = _find_key(secret, signer)
    except AmbiguousKey as e:
        raise ConfigError(f"gpg.signer: {e}") from None
    if s is None:
        raise ConfigError(
            f"gpg.signer: no secret key '{signer}' in {home}; this host needs its own "
            f"signing key there: run `amdr-essentials host-key --gnupghome {home}` and put "
            f"the fingerprint it prints in gpg.signer")
    return fprs, s["fingerprint"]


# -- seal -------------------------------------------------------------------

def _gpg_seal(home, recipients: list[str], signer: str, passphrase_file: str | None,
              out: Path) -> list[str]:
    gpg = ["gpg", "--homedir", str(home), "--batch", "--yes", "--no-tty", "--quiet",
           "--trust-model", "always", "--encrypt", "--sign", "--local-user", signer]
    for r in recipients:
        gpg += ["--recipient", r]
    if passphrase_file:
        gpg += ["--pinentry-mode", "loopback", "--passphrase-file", passphrase_file]
    return gpg + ["--output", str(out)]


def _sealing(runner: Runner, dest: Path, first: list[Cmd], src: list[str], what: str, home,
             recipients: list[str], signer: str, passphrase_file: str | None,
             nothing: str = "no bundle was made") -> Path:
    """`first` (the commands feeding gpg, if any) | gpg --encrypt --sign [src]
    into dest's .part file, renamed to dest (mode 0600); a wrong signing
    passphrase is a ConfigError saying so; no gpg-agent outlives it."""
    part = dest.with_name("." + dest.name + ".part")
    old = os.umask(0o077)
    try:
        runner.pipeline(first + [Cmd(_gpg_seal(home, recipients, signer, passphrase_file,
                                               part) + src)], what=what)
        os.chmod(part, 0o600)
        os.replace(part, dest)
    except CommandError as e:
        part.unlink(missing_ok=True)
        text = str(e)
        if "Bad passphrase" in text or "No passphrase given" in text \
                or "No pinentry" in text or "Inappropriate ioctl" in text:
            why = (f"the passphrase in {passphrase_file} does not unlock the signing key "
                   f"{signer}" if passphrase_file else
                   f"the signing key {signer} is protected by a passphrase; set "
                   f"gpg.passphrase_file")
            raise ConfigError(f"gpg.passphrase_file: {why}; {nothing}") from None
        raise
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        os.umask(old)
        # no gpg-agent (holding the signing key's passphrase) outlives the run
        runner.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    return dest


def seal(runner: Runner, staging: Path, dest: Path, home, recipients: list[str],
         signer: str, passphrase_file: str | None = None) -> Path:
    """tar (manifest first) | gpg --encrypt --sign  ->  dest, atomically, mode 0600."""
    staging, dest = Path(staging), Path(dest)
    if not (staging / MANIFEST).is_file():
        raise BundleError(f"{staging}: no {MANIFEST}; nothing to seal")
    listing = staging.parent / (staging.name + ".files")
    listing.write_text("\0".join([MANIFEST] + _members(staging)) + "\0")
    try:
        return _sealing(runner, dest, [
            Cmd(["tar", "--create", "--file", "-", "--directory", str(staging),
                 "--owner=0", "--group=0", "--numeric-owner", "--no-recursion",
                 "--null", "--verbatim-files-from", "--files-from", str(listing)]),
        ], [], f"sealing the bundle into {dest}", home, recipients, signer, passphrase_file)
    finally:
        listing.unlink(missing_ok=True)


def seal_file(runner: Runner, src: Path, dest: Path, home, recipients: list[str],
              signer: str, passphrase_file: str | None = None) -> Path:
    """One file encrypted to the recipients and signed, as a bundle is (the
    runbook beside it): gpg --decrypt gives the file back."""
    src, dest = Path(src), Path(dest)
    return _sealing(runner, dest, [], [str(src)], f"sealing {src.name} into {dest}", home,
                    recipients, signer, passphrase_file, f"{dest.name} was not written")


# -- companions: the files that travel beside a bundle ----------------------

RUNBOOK_MARK = ".runbook."


def runbook_name(bundle: str, fmt: str, sealed: bool) -> str:
    """HOST-TIME.runbook.pdf (or .html), with .gpg when sealed: beside
    HOST-TIME.amdr.gpg, named so that no bundle pattern takes it for one."""
    return bundle.removesuffix(SUFFIX) + RUNBOOK_MARK + fmt + (".gpg" if sealed else "")


_COMPANION = re.compile(r"^(?P<stem>.+)\.runbook\.(pdf|html)(\.gpg)?$")


def companion_of(name: str) -> str | None:
    """The bundle name a companion file belongs to (None: not a companion).
    Only the names runbook_name makes: a person's HOST-TIME.runbook.notes.txt
    beside the bundles is never taken for one (nor pruned with them)."""
    m = _COMPANION.match(name)
    if not m or "/" in name:
        return None
    stem = m["stem"]
    bundle = stem + SUFFIX
    return bundle if parse_name(bundle) else None


def companions(bundle: Path) -> list[Path]:
    """The files beside `bundle` that belong to it, in name order."""
    bundle = Path(bundle)
    try:
        names = os.listdir(bundle.parent)
    except OSError:
        return []
    return [bundle.parent / n for n in sorted(names) if companion_of(n) == bundle.name]


# -- unseal -----------------------------------------------------------------

@dataclass
class Signature:
    fingerprint: str
    username: str | None
    trust: str | None
    created: str | None


def private_dir(prefix: str = "amdr-bundle-") -> Path:
    """A 0700 directory for plaintext, on tmpfs when the system has /run."""
    base = "/run" if os.access("/run", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def forget_passphrase(home, runner: Runner | None = None):
    """Stop the keyring's gpg-agent: it would cache the recovery key's passphrase.

    A cached passphrase outlives the recovery run on a shared live system and
    hides a wrong passphrase typed later, so the agent goes after each use."""
    (runner or Runner()).run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)


def _decrypt_error(path: Path, st: str, status: str | None, has_passphrase: bool) -> str:
    """What a failed decryption means, from gpg's status lines (st)."""
    if "BAD_PASSPHRASE" in st or "Bad passphrase" in st:
        return (f"{path}: wrong passphrase for the recovery key; nothing was decrypted. "
                f"Check the passphrase (file) and try again")
    if "MISSING_PASSPHRASE" in st or ("NEED_PASSPHRASE" in st and not has_passphrase):
        return (f"{path}: the recovery key is protected by a passphrase; give it with "
                f"--passphrase-file FILE or run in a terminal to be asked")
    if "NO_SECKEY" in st:
        ids = sorted(set(re.findall(r"NO_SECKEY (\w+)", st)))
        return (f"{path}: none of the keys this bundle is encrypted to is in this keyring "
                f"(needs the secret key of {', '.join(ids)}); give --gnupghome with the "
                f"site's recovery SECRET key (a keyring with only its public key, such as a "
                f"host's, cannot decrypt)")
    if "NODATA" in st or "no valid OpenPGP data" in st:
        return f"{path}: not an encrypted amanda-dr bundle (no OpenPGP data); the file is damaged"
    return (f"{path}: cannot decrypt: the file is damaged or was altered "
            f"({status or 'gpg failed'}); use another copy of the bundle")


def _check_signature(path: Path, res, signers: list[str] | None) -> Signature:
    st = res.stderr or ""
    if "BADSIG" in st:
        raise BundleError(f"{path}: the signature does not match the contents: the bundle "
                          f"was altered after it was made; refusing it. Use another copy")
    if not res.fingerprint or "VALIDSIG" not in st:
        if "ERRSIG" in st or "NO_PUBKEY" in st:
            raise BundleError(
                f"{path}: signed by key {res.key_id or '?'}, whose public key is not in "
                f"this keyring; import that host's public key (what amdr-essentials "
                f"host-key printed) and trust it or name it with --signer, or refuse the "
                f"bundle")
        raise BundleError(f"{path}: the bundle is not signed; refusing it (it could come "
                          f"from anybody who has the public recovery key)")
    primary = getattr(res, "pubkey_fingerprint", None) or res.fingerprint
    sig = Signature(primary, res.username, res.trust_text, getattr(res, "sig_timestamp", None))
    if signers:
        ok = any(f.upper().endswith(s.replace(" ", "").upper())
                 for s in signers for f in {primary, res.fingerprint})
        why = f"not one of the signers given ({', '.join(signers)})"
    else:
        ok = res.trust_level is not None and res.trust_level >= res.TRUST_FULLY
        why = (f"not trusted in this keyring (trust {res.trust_text or 'unknown'}); "
               f"give --signer FINGERPRINT or set the key's owner trust")
    if not ok:
        raise BundleError(f"{path}: signed by {sig.username or '?'} ({sig.fingerprint}), "
                          f"which is {why}; refusing the bundle")
    return sig


def _rel(name: str) -> str:
    """A member's path inside the bundle: without empty and "." components."""
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _member_problem(m: tarfile.TarInfo, seen: set) -> str | None:
    """Why a member may not be extracted, or None.

    Explicit checks rather than tarfile's extraction filters: those arrived in
    3.11.4, and Debian 12's python3 (what the live image runs) is 3.11.2."""
    name = m.name
    if not name or "\0" in name:
        return "has an empty or invalid name"
    if name.startswith("/"):
        return "has an absolute path"
    rel = _rel(name)
    if not rel:
        return "names the bundle's top directory"
    parts = rel.split("/")
    if ".." in parts:
        return "has a '..' component (it would be written outside the bundle)"
    if m.issym() or m.islnk():
        return f"is a {'symbolic' if m.issym() else 'hard'} link to {m.linkname!r}"
    if m.ischr() or m.isblk():
        return "is a device node"
    if m.isfifo():
        return "is a named pipe"
    if not (m.isreg() or m.isdir()):
        return "is not a plain file or directory"
    if rel in seen:
        return "appears twice (the second copy would replace the first)"
    seen.add(rel)
    return None


def extract_tar(tar_path: Path, into: Path, where: Path):
    """Untar a bundle's plaintext: manifest first, plain files and directories
    only, each written by us (0600 files, 0700 directories) inside `into`.

    Every member is checked before the first is written, so a bundle with one
    bad member leaves nothing behind to be mistaken for a good one."""
    into = Path(into)
    try:
        with tarfile.open(tar_path, "r:") as tf:
            members = tf.getmembers()
            if not members or members[0].name.lstrip("./") != MANIFEST:
                raise BundleError(f"{where}: the first member is not {MANIFEST}; "
                                  f"not an amanda-dr bundle")
            seen: set = set()
            for m in members:
                why = _member_problem(m, seen)
                if why:
                    raise BundleError(f"{where}: bundle member {m.name!r} {why}; refusing "
                                      f"the bundle (it was not made by amdr-essentials, or "
                                      f"was altered). Nothing was extracted")
            for m in members:
                rel = _rel(m.name)
                dest = into / rel
                if m.isdir():
                    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out, tf.extractfile(m) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (tarfile.TarError, OSError) as e:
        raise BundleError(f"{where}: the decrypted bundle is not a readable tar: {e}") from e


def unseal(path, home, passphrase: str | None = None, signers: list[str] | None = None,
           into: Path | None = None, verify: bool = True) -> tuple[Bundle, Signature | None]:
    """Decrypt, check the signature and every checksum; return the opened bundle.

    With verify=False (the person said so in so many words) an unsigned or
    untrusted signature and checksum mismatches are logged, not refused.
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle file")
    g = keyring(home, OPENING_KEYS)
    into = Path(into) if into else private_dir()
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(into, 0o700)
    tar_path = into.parent / (into.name + ".tar")
    old_umask = os.umask(0o077)  # gpg creates the plaintext tar: root's alone, never 0644
    try:
        extra = ["--pinentry-mode", "loopback"] if passphrase is None else None
        try:
            # a file object: python-gnupg 0.4 (Debian 12's) takes no path here
            with open(path, "rb") as f:
                try:
                    res = g.decrypt_file(f, passphrase=passphrase, output=str(tar_path),
                                         extra_args=extra)
                except BrokenPipeError:
                    # gpg stopped reading the bundle: it could not decrypt the
                    # session key (no passphrase given); python-gnupg 0.5 raises
                    # this where 0.4 returns the status
                    raise BundleError(_decrypt_error(path, "[GNUPG:] MISSING_PASSPHRASE",
                                                     None, False)) from None
        finally:
            os.umask(old_umask)
        if not res.ok:
            raise BundleError(_decrypt_error(path, res.stderr or "", res.status,
                                             passphrase is not None))
        sig = None
        try:
            sig = _check_signature(path, res, signers)
        except BundleError as e:
            if verify:
                raise
            log.warning("signature not verified (told not to): %s", e)
        extract_tar(tar_path, into, path)
        tar_path.unlink(missing_ok=True)
        b = open_bundle(into, verify=verify)  # refused: its plaintext goes too
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise
    finally:
        tar_path.unlink(missing_ok=True)
        forget_passphrase(home)
    b.source = path
    return b, sig
