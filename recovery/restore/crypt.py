"""Amanda's encryption keys on the live system: checked before any wipe, put in
place for the restore, taken away after.

Each of Amanda's programs reads its key from the dump user's home (`~backup`
on Debian; the table is essentials/amcrypt.py).  The Amanda server's sealed
bundle carries those files (amanda/keys/), a client's bundle its own for
`encrypt client`; `installed()` copies them into ~backup for the run only
(0600, the dump user's), and puts back whatever was there.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd

from essentials.amcrypt import AMANDA_USER, files_for, name

log = logging.getLogger(__name__)

KEYS_DIR = "amanda/keys/"


def home(user: str = AMANDA_USER) -> str:
    return pwd.getpwnam(user).pw_dir


def bundle_keys(bundles) -> dict:
    """{path under ~backup: (bundle, member)} of every key file the bundles carry."""
    out = {}
    for b in bundles or []:
        for rel in b.listdir(KEYS_DIR.rstrip("/")):
            out.setdefault(rel[len(KEYS_DIR):], (b, rel))
    return out


def key_problem(prog: str, provided=(), user_home: str | None = None) -> str | None:
    """Why `prog` could not decrypt here (None: its keys are here or in `provided`,
    the paths under ~backup the bundles carry)."""
    files = files_for(prog)
    if files is None:
        return None  # a site's own program: its keys are its own business
    base = user_home or home()
    have = set(provided)
    missing = [f for f in files[0] if not os.path.exists(os.path.join(base, f))
               and f not in have and not any(p.startswith(f + "/") for p in have)]
    if not missing:
        return None
    return (f"the images are encrypted with {name(prog)}, whose key is neither here nor in "
            f"the bundles ({', '.join(missing)} of ~{AMANDA_USER} missing): the Amanda "
            f"server's sealed bundle carries it when `amdr-essentials run` ran there with the "
            f"key in place; without it nobody can read these images")


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


@contextlib.contextmanager
def installed(bundles, user: str = AMANDA_USER, base: str | None = None):
    """The bundles' key files in ~user (or `base`) while the block runs; then
    removed, and any different file that was there put back."""
    keys = bundle_keys(bundles)
    if not keys:
        yield []
        return
    pw = pwd.getpwnam(user)
    base = base or pw.pw_dir
    placed, saved, made = [], [], []
    try:
        for rel, (b, member) in sorted(keys.items()):
            dest = os.path.join(base, rel)
            src = str(b.path(member))
            mark = dest + ".amdr-placed"
            if os.path.lexists(mark):
                # an earlier run was killed before it could take its copy away: ours
                if os.path.lexists(dest):
                    os.unlink(dest)
                os.unlink(mark)
                if os.path.lexists(dest + ".amdr-saved"):
                    os.rename(dest + ".amdr-saved", dest)
            if _digest(dest) == _digest(src):
                continue  # already there, the same (the system's own)
            parent = os.path.dirname(dest)
            missing_dirs = []
            d = parent
            while not os.path.isdir(d):
                missing_dirs.append(d)
                d = os.path.dirname(d)
            for d in reversed(missing_dirs):
                os.mkdir(d, 0o700)
                os.chown(d, pw.pw_uid, pw.pw_gid)
                made.append(d)
            if os.path.lexists(dest):
                if os.path.lexists(dest + ".amdr-saved"):
                    raise OSError(f"{dest}.amdr-saved exists: an earlier run's copy of "
                                  f"{dest}; not overwriting it (look, then remove one)")
                os.rename(dest, dest + ".amdr-saved")
                saved.append(dest)
            with open(mark, "w"):
                pass  # says the file beside it is ours, should we be killed
            with open(src, "rb") as f:
                data = f.read()
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chown(dest, pw.pw_uid, pw.pw_gid)
            placed.append(dest)
        if placed:
            log.info("Amanda encryption keys in place for the run: %d file(s) in %s",
                     len(placed), base)
        yield [os.path.relpath(p, base) for p in placed]
    finally:
        for p in placed:
            with contextlib.suppress(OSError):
                os.unlink(p)
            with contextlib.suppress(OSError):
                os.unlink(p + ".amdr-placed")
        for p in saved:
            with contextlib.suppress(OSError):
                os.rename(p + ".amdr-saved", p)
        for d in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(d)
