"""Throwaway GnuPG keys for the tests: a site recovery key, a host key, a rogue key.

Homes are short paths under /tmp (gpg-agent's socket path has a length
limit) and every agent started is killed on exit.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def gpg(home, *args, input=None) -> str:
    p = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes", *args],
                       input=input, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError(f"gpg {' '.join(args)}: {p.stderr.decode()}")
    return p.stdout.decode(errors="replace")


def new_home(prefix: str) -> Path:
    home = Path(tempfile.mkdtemp(prefix=f"g{prefix}", dir="/tmp"))
    home.chmod(0o700)
    return home


def make_key(home: Path, uid: str, passphrase: str = "") -> str:
    """An ed25519 signing key with a cv25519 encryption subkey; returns its fingerprint."""
    gpg(home, "--pinentry-mode", "loopback", "--passphrase", passphrase,
        "--quick-gen-key", uid, "ed25519", "sign", "never")
    fpr = fingerprint(home, uid)
    gpg(home, "--pinentry-mode", "loopback", "--passphrase", passphrase,
        "--quick-add-key", fpr, "cv25519", "encr", "never")
    return fpr


def fingerprint(home: Path, uid: str) -> str:
    out = gpg(home, "--with-colons", "--list-keys", uid)
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def move_public(src: Path, dst: Path, fpr: str, trust: bool = False):
    data = subprocess.run(["gpg", "--homedir", str(src), "--batch", "--export", fpr],
                          capture_output=True, check=True).stdout
    gpg(dst, "--import", input=data)
    if trust:
        gpg(dst, "--import-ownertrust", input=f"{fpr}:6:\n".encode())


def move_secret(src: Path, dst: Path, fpr: str, passphrase: str = ""):
    data = subprocess.run(["gpg", "--homedir", str(src), "--batch", "--pinentry-mode",
                           "loopback", "--passphrase", passphrase,
                           "--export-secret-keys", fpr], capture_output=True, check=True).stdout
    gpg(dst, "--pinentry-mode", "loopback", "--passphrase", passphrase, "--import", input=data)


def kill_agent(home: Path):
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)


@dataclass
class Keys:
    """host: this host's secret signing key + the site's public key (what essentials uses).
    recovery: the site's secret key + the host's public key, trusted (what recovery uses)."""

    host_home: Path
    recovery_home: Path
    rogue_home: Path
    host_fpr: str
    site_fpr: str
    rogue_fpr: str
    site_passphrase: str
    homes: list = field(default_factory=list)

    def cleanup(self):
        for h in self.homes:
            kill_agent(h)
            shutil.rmtree(h, ignore_errors=True)


def make_keys(site_passphrase: str = "") -> Keys:
    """Keys for one test module: each home is new, so no agent caches a passphrase."""
    gen = new_home("gen")
    host, rec, rogue = new_home("host"), new_home("rec"), new_home("rogue")
    host_fpr = make_key(gen, "amdr host <root@host.test>")
    site_fpr = make_key(gen, "amdr site recovery <dr@site.test>", site_passphrase)
    rogue_fpr = make_key(gen, "someone else <rogue@evil.test>")
    move_secret(gen, host, host_fpr)
    move_public(gen, host, site_fpr)
    move_secret(gen, rec, site_fpr, site_passphrase)
    move_public(gen, rec, host_fpr, trust=True)
    move_secret(gen, rogue, rogue_fpr)
    move_public(gen, rogue, site_fpr)
    kill_agent(gen)
    shutil.rmtree(gen, ignore_errors=True)
    return Keys(host, rec, rogue, host_fpr, site_fpr, rogue_fpr, site_passphrase,
                [host, rec, rogue])
