"""A fresh Debian 12, as a user has it, to run the README's commands in.

Why: the development machine (and CI, which runs on it) has what a session
installed by hand and a newer Python than Debian's; three times a user on a
fresh Debian hit what the suite never saw.  So the suite debootstraps a
minimal bookworm, runs the README's prerequisite line and the committed tree's
`make setup` in it, then the product.

The minbase tree is built once per recipe and kept as a tarball in
/var/cache/amanda-dr/fresh/ (outside the clone: CI on this machine re-uses
it); each test unpacks a new copy, so every run starts from a fresh system.
Downloaded .debs are kept there too, which saves the network, not the work:
every package is still installed into the new tree.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
CACHE = Path(os.environ.get("AMDR_CACHE", "/var/cache/amanda-dr")) / "fresh"
SUITE = "bookworm"
MIRROR = os.environ.get("AMDR_VM_MIRROR", "http://deb.debian.org/debian")
RECIPE = 1  # bump when base() changes in a way its inputs do not show


def base_key() -> str:
    text = f"{RECIPE} {SUITE} minbase {MIRROR}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base(progress=print) -> Path:
    """The minbase tarball of this recipe, built when missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"bookworm-minbase-{base_key()}.tar"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        work = Path(tempfile.mkdtemp(prefix="base-", dir=CACHE))
        try:
            root = work / "root"
            progress(f"debootstrap --variant=minbase {SUITE} (once; cached as {tarball})")
            (CACHE / "debs").mkdir(exist_ok=True)
            p = subprocess.run(["unshare", "--mount", "--propagation", "private",
                                "debootstrap", "--variant=minbase",
                                f"--cache-dir={CACHE / 'debs'}", SUITE, str(root), MIRROR],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if p.returncode:
                raise RuntimeError(f"debootstrap failed ({p.returncode}):\n"
                                   + p.stdout.decode("utf-8", "replace")[-3000:])
            # a chroot is no booted system: no daemon may start in it (sshd
            # would take the host's port 22)
            policy = root / "usr/sbin/policy-rc.d"
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
            part = tarball.with_suffix(".part")
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(part), "."],
                           check=True)
            part.rename(tarball)
        finally:
            subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)
        for old in CACHE.glob("bookworm-minbase-*.tar"):
            if old != tarball:
                old.unlink()
    return tarball


def readme_commands() -> dict[str, str]:
    """The Quick start's commands, from the README itself, so the two cannot drift."""
    text = (PROJECT / "README.md").read_text()
    section = text[text.index("## Quick start"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    out = {}
    for line in block.splitlines():
        cmd = line.split("#", 1)[0].strip()
        if not cmd:
            continue
        if cmd.startswith("apt-get"):
            out["prerequisites"] = cmd
        elif cmd.startswith("git clone"):
            out["clone"] = cmd
        elif cmd.startswith("make "):
            out[cmd.split()[1]] = cmd
    return out


@dataclass
class Result:
    returncode: int
    output: str
    seconds: float


class FreshMachine:
    """One fresh tree; `run(script)` runs a bash script in it as root."""

    def __init__(self, progress=print):
        self.progress = progress
        tarball = base(progress)
        self.root = Path(tempfile.mkdtemp(prefix="amdr-fresh-", dir="/var/tmp")) / "root"
        self.root.mkdir()
        subprocess.run(["tar", "-C", str(self.root), "--numeric-owner", "-xf", str(tarball)],
                       check=True)

    def run(self, script: str, timeout: float, log: Path | None = None) -> Result:
        import time
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
            f.write("set -euxo pipefail\n" + script)
        t0 = time.monotonic()
        try:
            p = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "bash",
                 str(HERE / "in-chroot.sh"), str(self.root), str(PROJECT),
                 str(CACHE / "debs"), f.name],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=timeout)
        finally:
            os.unlink(f.name)
        out = p.stdout.decode("utf-8", "replace")
        if log:
            log.write_text(out)
        return Result(p.returncode, out, time.monotonic() - t0)

    def cleanup(self):
        # the mounts lived in the namespace of each run, so nothing is mounted here
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.root.parent)], check=False)


def main():
    """`python -m tests.fresh.machine`: build (or show) the cached base."""
    print(base())


if __name__ == "__main__":
    main()
