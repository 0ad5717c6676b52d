"""make iso: the live image, built once per content hash.

Two cached stages under ${AMDR_CACHE:-/var/cache/amanda-dr}/iso/ (outside the
clone, so CI on the same machine re-uses them; a cold build works too):

- root-KEY: the Debian tree (build-root.sh): debootstrap + the inventory's
  image packages + the live ones.  Its key is the package list, the suite and
  the script, so a change to amanda-dr does not rebuild it.
- iso-KEY: that tree copied, amanda-dr and the live console installed
  (live-setup.sh, which runs the doctor inside the tree and fails the build
  when a tool is missing), squashed and made a hybrid ISO (make-iso.sh).  Its
  key adds the project's files, the site settings and SOURCE_DATE_EPOCH.

Reproducible: every timestamp comes from SOURCE_DATE_EPOCH (default: the
newest commit of the image's inputs, else a fixed date), so two builds of
the same inputs from the same packages give the same sha256.  The .debs are
kept in the cache (shared with the VM tier), so a second build installs the
same versions.

`python3 -m image.build [--site site.yaml] [--out build/iso]` prints the ISO's
path, size, sha256 and the build's seconds; `--fresh` builds both stages
anew in a scratch directory (the reproducibility test).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from image.cache import cached, key_of

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
SUITE = "bookworm"
MIRROR = os.environ.get("AMDR_MIRROR", "http://deb.debian.org/debian")
RECIPE = 1  # bump to rebuild every cached stage
FALLBACK_EPOCH = 1767225600  # 2026-01-01, when there is no git history

# the live system itself, beside the inventory's tools (essentials/inventory.py, image)
LIVE_PACKAGES = (
    "linux-image-amd64", "live-boot", "live-boot-initramfs-tools", "systemd-sysv",
    "systemd-resolved", "udev", "kmod", "iproute2", "iputils-ping", "procps", "less",
    "nano", "tmux", "openssh-server", "openssh-client", "pciutils", "usbutils", "ethtool",
    "lsscsi", "sg3-utils", "mt-st", "mtx", "mdadm", "lvm2", "cryptsetup-bin",
    "e2fsprogs", "xfsprogs", "btrfs-progs", "dosfstools", "fdisk", "gdisk", "parted",
    "grub-pc-bin", "grub-efi-amd64-bin", "efibootmgr", "zstd", "xz-utils", "ca-certificates",
)
# every tool of the image profile must be there: the doctor in the tree says so
IMAGE_TOOLS_SIDE = "image"


class BuildError(RuntimeError):
    pass


def cache_root() -> Path:
    return Path(os.environ.get("AMDR_CACHE", "/var/cache/amanda-dr")) / "iso"


def deb_cache() -> Path:
    """The .deb cache, shared with the VM tier's guest (same suite)."""
    return Path(os.environ.get("AMDR_CACHE", "/var/cache/amanda-dr")) / "vm" / "debs"


def packages() -> list[str]:
    sys.path.insert(0, str(PROJECT))
    from essentials import inventory
    return sorted(set(inventory.packages(IMAGE_TOOLS_SIDE)) | set(LIVE_PACKAGES))


def version() -> str:
    for line in (PROJECT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split("=", 1)[1].strip().strip('"')
    raise BuildError("no version in pyproject.toml")


def tree_hashes(*dirs: str) -> dict:
    out = {}
    for d in dirs:
        for p in sorted((PROJECT / d).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
                out[str(p.relative_to(PROJECT))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def source_date_epoch() -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        return int(env)
    try:
        out = subprocess.run(["git", "-C", str(PROJECT), "log", "-1", "--format=%ct", "--",
                              "image", "essentials", "recovery", "pyproject.toml"],
                             capture_output=True, text=True, check=True).stdout.strip()
        return int(out) if out else FALLBACK_EPOCH
    except (OSError, subprocess.CalledProcessError, ValueError):
        return FALLBACK_EPOCH


# The Debian tree's own epoch: fixed (it is part of the tree's key), so the
# tree does not depend on when it was built, and two builds of one key match.
ROOT_EPOCH = FALLBACK_EPOCH


def root_inputs() -> dict:
    return {"recipe": RECIPE, "suite": SUITE, "packages": packages(),
            "script": (HERE / "build-root.sh").read_text(), "epoch": ROOT_EPOCH}


def tree_digest(root: Path) -> dict[str, str]:
    """path -> what the ISO keeps of it (type, mode, owner, and the bytes, the
    link target or the device number); times are left out: mksquashfs sets
    every one from SOURCE_DATE_EPOCH."""
    import stat
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            head = f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid}"
            if stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                out[rel] = f"{head} {h.hexdigest()}"
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = f"{head} -> {os.readlink(p)}"
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out[rel] = f"{head} {os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
            else:
                out[rel] = head
    return out


def verify_root(base: Path | None = None, scratch: Path | None = None, say=print) -> dict:
    """The Debian tree built a second time, from the same key, in a scratch
    cache, and compared with the cached one, path by path.  The verdict is
    kept beside the cached tree (reproduced.json), so it is made once per key.
    Returns {"key", "paths", "differ": [path: what], "seconds"}."""
    base = base or cache_root()
    rkey = key_of(root_inputs())
    first = base / f"root-{rkey}"
    verdict = first / "reproduced.json"
    if verdict.exists():
        return json.loads(verdict.read_text())
    build(base=base, say=say)  # the tree (and ISO) of this key, if not there yet
    scratch = scratch or Path(os.environ.get("TMPDIR", "/var/tmp")) / f"amdr-root-again-{rkey}"
    t0 = time.monotonic()
    try:
        second = _build_root(scratch, rkey, say)
        a, b = tree_digest(first / "root"), tree_digest(second / "root")
        differ = sorted({p for p in a.keys() | b.keys() if a.get(p) != b.get(p)})
        doc = {"key": rkey, "paths": len(a), "seconds": round(time.monotonic() - t0, 1),
               "differ": [f"{p}: {a.get(p, 'absent')} | {b.get(p, 'absent')}"
                          for p in differ[:50]], "differ_count": len(differ)}
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(scratch)], check=False)
    if not doc["differ_count"]:
        verdict.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def iso_inputs(root_key: str, site: Path | None, epoch: int) -> dict:
    return {"recipe": RECIPE, "root": root_key, "epoch": epoch, "version": version(),
            "scripts": {n: (HERE / n).read_text() for n in ("live-setup.sh", "make-iso.sh")},
            "files": tree_hashes("image/files"), "project": tree_hashes("essentials",
                                                                        "recovery"),
            "site": hashlib.sha256(site.read_bytes()).hexdigest() if site else None}


def _run(argv, log: Path, env=None, say=print):
    """A build step with its output in `log`; its tail in the error."""
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(map(str, argv))}\n")
        f.flush()
        p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env,
                             stdin=subprocess.DEVNULL)
        tail: list[str] = []
        for line in p.stdout:
            f.write(line)
            tail = (tail + [line])[-40:]
            if line.startswith("== ") or " MB " in line or "tools checked" in line:
                say(line.rstrip())
        if p.wait() != 0:
            raise BuildError(f"{argv[0]} failed (exit {p.returncode}); the end of {log}:\n"
                             + "".join(tail))


def _build_root(base: Path, rkey: str, say=print) -> Path:
    """The Debian tree of key rkey under base (cached)."""
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(ROOT_EPOCH), LC_ALL="C.UTF-8")

    def build_root(work: Path) -> dict:
        debs = deb_cache()
        debs.mkdir(parents=True, exist_ok=True)
        say(f"building the image's Debian tree ({len(packages())} packages) ...")
        with open(debs / ".lock-amdr", "w") as lock:  # the VM tier's builds share it
            fcntl.flock(lock, fcntl.LOCK_EX)
            _run(["unshare", "--mount", "--propagation", "private", "bash",
                  HERE / "build-root.sh", work / "root", SUITE, MIRROR, debs, *packages()],
                 work / "build.log", env, say)
        pkgs = subprocess.run(["chroot", str(work / "root"), "dpkg-query", "-W", "-f",
                               "${Package}\t${Version}\n"], capture_output=True, text=True,
                              check=True).stdout
        (work / "packages.txt").write_text(pkgs)
        return {"packages": len(pkgs.splitlines())}

    return cached("root", rkey, build_root, base)


def build(site: Path | None = None, out_dir: Path | None = None, base: Path | None = None,
          say=print) -> dict:
    """Build (or find) the ISO; copy it to out_dir; return its manifest."""
    if os.geteuid() != 0:
        raise BuildError("building the image needs root (debootstrap, chroot, mounts)")
    sys.path.insert(0, str(PROJECT))
    from essentials import doctor, inventory
    tools = ["debootstrap", "mkfs.vfat"] + [t.name for t in inventory.tools_of_uses(["image"])]
    try:
        doctor.require({t: ["make iso"] for t in tools}, "make iso")
    except doctor.ToolsMissing as e:
        raise BuildError(f"{e}\n  (`make setup` installs them)") from None
    if site is not None:
        from recovery.site import load_site
        load_site(site)  # refused here, before anything is built
    base = base or cache_root()
    epoch = source_date_epoch()
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), LC_ALL="C.UTF-8")
    t0 = time.monotonic()
    rkey = key_of(root_inputs())

    root_dir = _build_root(base, rkey, say)
    ikey = key_of(iso_inputs(rkey, site, epoch))
    name = f"amanda-dr-live-{version()}.iso"

    def build_iso(work: Path) -> dict:
        say("installing amanda-dr into a copy of the tree ...")
        subprocess.run(["cp", "-a", str(root_dir / "root"), str(work / "root")], check=True)
        project = work / "project"
        project.mkdir()
        for d in ("essentials", "recovery"):
            shutil.copytree(PROJECT / d, project / d,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (project / "VERSION").write_text(version() + "\n")
        _run(["unshare", "--mount", "--propagation", "private", "bash",
              HERE / "live-setup.sh", work / "root", HERE / "files", project]
             + ([site] if site else []), work / "build.log", env, say)
        _run(["bash", HERE / "make-iso.sh", work / "root", work, work / name, version()],
             work / "build.log", env, say)
        subprocess.run(["rm", "-rf", "--one-file-system", str(work / "root"),
                        str(work / "iso"), str(work / "efi"), str(project)], check=True)
        data = (work / name).read_bytes()
        return {"iso": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "version": version(), "epoch": epoch, "root_key": rkey,
                "root_seconds": json.loads((root_dir / "manifest.json").read_text())
                .get("seconds")}

    iso_dir = cached("iso", ikey, build_iso, base)
    m = json.loads((iso_dir / "manifest.json").read_text())
    m["path"] = str(iso_dir / m["iso"])
    m["this_run_seconds"] = round(time.monotonic() - t0, 1)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        dest = out_dir / m["iso"]
        if dest.exists():
            dest.unlink()
        try:
            os.link(m["path"], dest)
        except OSError:
            shutil.copy2(m["path"], dest)
        m["copied_to"] = str(dest)
    return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="make iso", description=__doc__.split("\n\n")[0])
    p.add_argument("--site", type=Path, help="site settings baked into the image")
    p.add_argument("--out", type=Path, default=PROJECT / "build" / "iso")
    p.add_argument("--cache", type=Path, help="cache directory (default: the shared one)")
    args = p.parse_args(argv)
    from recovery.site import SiteError
    try:
        m = build(args.site, args.out, args.cache)
    except (BuildError, SiteError) as e:
        print(f"make iso: {e}", file=sys.stderr)
        return 1
    print(f"{m.get('copied_to', m['path'])}: {m['bytes'] / 1e6:.0f} MB, sha256 {m['sha256']}")
    print(f"built in {m['seconds']} s (the Debian tree: {m['root_seconds']} s, cached by its "
          f"key); this run {m['this_run_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
