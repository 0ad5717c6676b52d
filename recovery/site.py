"""Site settings baked into the live image (`make iso SITE=site.yaml`).

Read by the build (checked before anything is built) and on the live system.

Optional, and checked before anything is built, like essentials.yaml: a
mistake is named with its place and what is expected.  The image carries the
file as /etc/amanda-dr/site.yaml.

    signers:            # bundles signed by these keys are listed as usable
      - 0123456789ABCDEF0123456789ABCDEF01234567
    recovery_keys:      # the public keys bundles are sealed to (armored), to
      - |               # tell the engineer which secret key a bundle needs
        -----BEGIN PGP PUBLIC KEY BLOCK-----
        ...
    sftp:               # where bundles are fetched from
      host: backup1.example.com
      port: 22
      user: amdr
      path: /srv/amdr/bundles
      host_key: ssh-ed25519 AAAAC3...   # pinned: never trusted on first use
      key: amdr/sftp_key    # the login key: absolute, or a path on an attached
                            # medium (a secret is better brought than baked in)
    office:             # remote assist (the office's jump host and keys)
      host: jump.example.com
      port: 22
      user: amdr-live
      host_key: ssh-ed25519 AAAAC3...
      listen: 2222      # the port on the jump host's localhost (its permitlisten)
      key: amdr/jump_key   # this system's key there (on a medium, like sftp's)
      keys:             # the only keys this system's sshd accepts
        - ssh-ed25519 AAAAC3... alice@office
"""

from __future__ import annotations

import re
from pathlib import Path

FPR = re.compile(r"^[0-9A-F]{40}$")
SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) "
                     r"[A-Za-z0-9+/]+={0,3}( .*)?$")
TOP = {"signers", "recovery_keys", "sftp", "office"}
SFTP = {"host": str, "port": int, "user": str, "path": str, "host_key": str, "key": str}
DEFAULT = Path("/etc/amanda-dr/site.yaml")  # where the live image carries them
OFFICE = {"host": str, "port": int, "user": str, "host_key": str, "keys": list, "listen": int,
          "key": str}


class SiteError(ValueError):
    pass


def _fields(doc, spec: dict, where: str, required=("host", "user", "host_key")) -> None:
    if not isinstance(doc, dict):
        raise SiteError(f"{where}: expected a mapping of {', '.join(spec)}")
    for k, v in doc.items():
        if k not in spec:
            raise SiteError(f"{where}.{k}: unknown setting (known: {', '.join(spec)})")
        if not isinstance(v, spec[k]) or isinstance(v, bool):
            raise SiteError(f"{where}.{k}: expected {spec[k].__name__}, got {v!r}")
    for k in required:
        if k not in doc:
            raise SiteError(f"{where}: {k} is missing")
    for k in ("port", "listen"):
        if k in doc and not 0 < doc[k] < 65536:
            raise SiteError(f"{where}.{k}: {doc[k]} is not a TCP port")
    if not SSH_KEY.match(doc["host_key"].strip()):
        raise SiteError(f"{where}.host_key: expected an OpenSSH public key line "
                        f"('ssh-ed25519 AAAA...', as in known_hosts without the host)")


def validate(doc) -> dict:
    """The settings, checked; SiteError names the first mistake."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise SiteError("site settings: expected a mapping (signers, recovery_keys, sftp, "
                        "office)")
    for k in doc:
        if k not in TOP:
            raise SiteError(f"{k}: unknown setting (known: {', '.join(sorted(TOP))})")
    for i, f in enumerate(doc.get("signers") or []):
        norm = str(f).replace(" ", "").upper()
        if not FPR.match(norm):
            raise SiteError(f"signers[{i}]: {f!r} is not a 40-hex-digit OpenPGP fingerprint "
                            f"(gpg --fingerprint shows it)")
    for i, k in enumerate(doc.get("recovery_keys") or []):
        if not isinstance(k, str) or "BEGIN PGP PUBLIC KEY BLOCK" not in k:
            raise SiteError(f"recovery_keys[{i}]: expected an armored public key "
                            f"(gpg --export --armor KEYID)")
    if "sftp" in doc:
        _fields(doc["sftp"], SFTP, "sftp", ("host", "user", "path", "host_key"))
    if "office" in doc:
        _fields(doc["office"], OFFICE, "office")
        for i, k in enumerate(doc["office"].get("keys") or []):
            if not isinstance(k, str) or not SSH_KEY.match(k.strip()):
                raise SiteError(f"office.keys[{i}]: expected an OpenSSH public key line")
    return doc


def load_site(path: Path) -> dict:
    from essentials.config import read_yaml_file
    from essentials.errors import ConfigError
    try:
        doc = read_yaml_file(path)
    except ConfigError as e:
        raise SiteError(str(e)) from None
    try:
        return validate(doc)
    except SiteError as e:
        raise SiteError(f"{path}: {e}") from None
