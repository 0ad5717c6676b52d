"""The bundle store: bundles found by themselves, newest per host.

Where the field engineer's bundles are: on an attached medium (a USB stick,
a CD, a filesystem labelled AMDR, a directory the site added to the image),
on the site's sftp server (its host key pinned: never trusted on first use),
or in a mailbox file holding the mail `amdr-essentials` sent (mbox or
Maildir: the attachment is taken).  Each is copied into the store (on the
live system a directory in RAM), named as sealed, one file per bundle.

A sealed bundle is signed inside its encryption, so its signer can only be
checked once the recovery key is unlocked: `check()` opens the newest
bundle of each host with the usual key options and lists it as usable or
refused, with the reason (not signed by an accepted key, damaged, a wrong
passphrase).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import logging
import mailbox
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from essentials import sealed
from essentials.errors import AmdrError

log = logging.getLogger(__name__)

MEDIA_DEPTH = 3  # how deep below a medium's root bundles are looked for


class StoreError(AmdrError):
    """A source of bundles could not be read (said with what to do)."""


@dataclass
class Entry:
    path: Path  # in the store
    host: str
    when: datetime
    source: str  # where it was found, for people
    status: str = "not checked"  # "usable", "refused: ..." after check()

    def age(self, now: datetime | None = None) -> str:
        secs = ((now or datetime.now(timezone.utc)) - self.when).total_seconds()
        if secs < 0:
            return "in the future"
        if secs < 7200:
            return f"{secs / 60:.0f} min"
        if secs < 172800:
            return f"{secs / 3600:.0f} h"
        return f"{secs / 86400:.0f} days"


# -- where bundles are --------------------------------------------------------------

def on_media(roots, depth: int = MEDIA_DEPTH) -> list[Path]:
    """HOST-...amdr.gpg files below each root (a mounted medium, a directory)."""
    found = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            if sealed.parse_name(root.name):
                found.append(root)
            continue
        base = len(root.parts)
        for dirpath, dirnames, filenames in os.walk(root):
            if len(Path(dirpath).parts) - base >= depth:
                dirnames[:] = []
            dirnames.sort()
            found += [Path(dirpath) / f for f in sorted(filenames) if sealed.parse_name(f)]
    return found


def mailboxes_on_media(roots, depth: int = MEDIA_DEPTH) -> list[Path]:
    """mbox files (named *.mbox or mbox, beginning "From ") and Maildirs (cur/ and
    new/) below each root: a mailbox a person copied onto the medium."""
    found = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        base = len(root.parts)
        for dirpath, dirnames, filenames in os.walk(root):
            d = Path(dirpath)
            if {"cur", "new"} <= set(dirnames):
                found.append(d)
                dirnames[:] = []
                continue
            if len(d.parts) - base >= depth:
                dirnames[:] = []
            dirnames.sort()
            for f in sorted(filenames):
                if f == "mbox" or f.endswith(".mbox"):
                    try:
                        with open(d / f, "rb") as fh:
                            if fh.read(5) == b"From ":
                                found.append(d / f)
                    except OSError:
                        pass
    return found


def in_mailbox(path) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every bundle attached to a message of an mbox file
    or a Maildir directory."""
    p = Path(path)
    if p.is_dir():
        if not (p / "cur").is_dir() and not (p / "new").is_dir():
            raise StoreError(f"{p}: not a Maildir (no cur/ or new/)")
        box = mailbox.Maildir(str(p), factory=None, create=False)
    elif p.is_file():
        box = mailbox.mbox(str(p), create=False)
    else:
        raise StoreError(f"{p}: no such mailbox file or Maildir")
    out = []
    try:
        for msg in box:
            m = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
            for part in m.iter_attachments():
                name = part.get_filename() or ""
                if sealed.parse_name(os.path.basename(name)):
                    out.append((os.path.basename(name), part.get_payload(decode=True)))
    finally:
        box.close()
    return out


def from_sftp(host: str, path: str, user: str, host_key: str, *, port: int = 22,
              key_file: str | None = None, timeout: float = 20.0) -> list[tuple[str, bytes]]:
    """Every bundle in `path` on the sftp server, its host key checked against
    the pinned one ('ssh-ed25519 AAAA...'); the newest per host only."""
    import paramiko
    kind, _, rest = host_key.strip().partition(" ")
    blob = rest.split()[0] if rest else ""
    client = paramiko.SSHClient()
    where = f"[{host}]:{port}" if port != 22 else host
    # a known_hosts line: how Debian's paramiko (2.12) reads a key of any type
    entry = None
    try:
        entry = paramiko.hostkeys.HostKeyEntry.from_line(f"{where} {kind} {blob}")
    except Exception:  # noqa: BLE001 (paramiko raises many kinds here)
        pass
    if entry is None or entry.key is None:
        raise StoreError(f"sftp {host}: the pinned host key {host_key[:40]!r} is not a "
                         f"public key line ('ssh-ed25519 AAAA...', as in its .pub file)")
    client.get_host_keys().add(where, kind, entry.key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(host, port=port, username=user, key_filename=key_file,
                       timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                       look_for_keys=key_file is None, allow_agent=False)
    except paramiko.BadHostKeyException as e:
        raise StoreError(f"sftp {host}:{port}: the server's host key is "
                         f"{e.key.get_name()} {e.key.get_base64()[:24]}..., not the pinned "
                         f"one: refused (a wrong server, or its key changed: check with "
                         f"the site before changing the pin)") from None
    except paramiko.AuthenticationException:
        raise StoreError(f"sftp {user}@{host}:{port}: the key was not accepted "
                         f"({key_file or 'no key file given'})") from None
    except (OSError, paramiko.SSHException) as e:
        raise StoreError(f"sftp {host}:{port}: cannot connect ({e}); is the network up "
                         f"and the server reachable?") from None
    try:
        sftp = client.open_sftp()
        try:
            names = [n for n in sftp.listdir(path) if sealed.parse_name(n)]
        except OSError as e:
            raise StoreError(f"sftp {host}:{path}: cannot list it ({e})") from None
        out = []
        for name in _newest_per_host(names):
            with sftp.open(f"{path.rstrip('/')}/{name}", "rb") as f:
                out.append((name, f.read()))
        return out
    finally:
        client.close()


def _newest_per_host(names) -> list[str]:
    best: dict[str, tuple[datetime, str]] = {}
    for n in names:
        host, when = sealed.parse_name(n)
        if host not in best or when > best[host][0]:
            best[host] = (when, n)
    return sorted(n for _, n in best.values())


# -- the store --------------------------------------------------------------------------

class Store:
    """A directory of sealed bundles, one file each, named as sealed."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        # file name -> where it came from; kept beside them for the next listing
        self._sources_file = self.root / ".sources.json"
        try:
            self.sources: dict[str, str] = json.loads(self._sources_file.read_text())
        except (OSError, ValueError):
            self.sources = {}

    def add_bytes(self, name: str, data: bytes, source: str) -> Path | None:
        """Keep a bundle (None: not a bundle's name).  The same bytes twice are
        kept once; another bundle of the same name is refused (never replaced)."""
        name = os.path.basename(name)
        if not sealed.parse_name(name):
            return None
        dest = self.root / name
        if dest.exists():
            if hashlib.sha256(dest.read_bytes()).digest() != hashlib.sha256(data).digest():
                raise StoreError(f"{name} from {source} differs from the one already taken "
                                 f"from {self.sources.get(name, 'another source')}: kept "
                                 f"the first; look at both before using either")
            return dest
        tmp = dest.with_suffix(".part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.rename(tmp, dest)
        self.sources[name] = source
        tmp = self._sources_file.with_suffix(".part")
        tmp.write_text(json.dumps(self.sources, indent=1, sort_keys=True) + "\n")
        os.rename(tmp, self._sources_file)
        return dest

    def add_file(self, path, source: str) -> Path | None:
        return self.add_bytes(Path(path).name, Path(path).read_bytes(), source)

    def entries(self) -> list[Entry]:
        out = []
        for p in sorted(self.root.glob(f"*{sealed.SUFFIX}")):
            parsed = sealed.parse_name(p.name)
            if parsed:
                out.append(Entry(p, parsed[0], parsed[1], self.sources.get(p.name, "store")))
        return out

    def newest(self) -> list[Entry]:
        """The newest bundle of each host, by host name."""
        best: dict[str, Entry] = {}
        for e in self.entries():
            if e.host not in best or e.when > best[e.host].when:
                best[e.host] = e
        return [best[h] for h in sorted(best)]


def import_all(s: "Store", media, mailboxes, sftp: dict | None) -> list[str]:
    """Every bundle of the sources into the store: the media (and the mailboxes
    on them), the mailboxes named, the sftp server (a mapping: host, port, user,
    path, host_key, ssh_key).  The problems, said for people; the rest goes on."""
    problems = []
    for p in on_media(media):
        try:
            s.add_file(p, f"medium {p.parent}")
        except (OSError, StoreError) as e:
            problems.append(str(e))
    for mb in list(mailboxes) + [m for m in mailboxes_on_media(media) if str(m) not in
                                 set(map(str, mailboxes))]:
        try:
            for name, data in in_mailbox(mb):
                s.add_bytes(name, data, f"mailbox {mb}")
        except (OSError, StoreError) as e:
            problems.append(str(e))
    if sftp:
        try:
            for name, data in from_sftp(sftp["host"], sftp["path"], sftp["user"],
                                        sftp["host_key"], port=sftp.get("port") or 22,
                                        key_file=sftp.get("ssh_key")):
                s.add_bytes(name, data, f"sftp {sftp['host']}")
        except StoreError as e:
            problems.append(str(e))
    return problems


def check(entries: list[Entry], *, home=None, passphrase_file=None, signers=None) -> None:
    """Open each bundle (the recovery key unlocked once): usable, or refused
    with the reason.  Nothing of the opened bundle is kept."""
    from essentials.config import read_secret_file
    from .bundles import gnupghome
    passphrase = read_secret_file(passphrase_file, "passphrase") if passphrase_file else None
    for e in entries:
        into = sealed.private_dir("amdr-check-")
        try:
            sealed.unseal(e.path, gnupghome(home), passphrase, signers, into)
            e.status = "usable"
        except AmdrError as err:
            e.status = f"refused: {err}"
        finally:
            shutil.rmtree(into, ignore_errors=True)


def table(entries: list[Entry], now: datetime | None = None) -> list[str]:
    out = [f"{'host':20s} {'bundle (UTC)':17s} {'age':>8s}  {'from':24s} status"]
    for e in entries:
        out.append(f"{e.host[:20]:20s} {e.when:%Y-%m-%d %H:%M}  {e.age(now):>8s}  "
                   f"{e.source[:24]:24s} {e.status}")
    return out
