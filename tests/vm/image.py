"""Build the test guest once and keep it under /var/cache/amanda-dr/vm/KEY/.

A guest is three files qemu boots directly (`-kernel`, `-initrd`, and the root
filesystem as a raw ext4 disk), which avoids a boot loader, partition table
and firmware in the loop: fewer things to go wrong and a faster boot under TCG.
The root image is only ever attached with `snapshot=on`, so no run can change
the cached image.

The key (recipe.cache_key) names the directory; a directory with a
manifest.json is complete (it is renamed into place only when done), so a
second call returns at once.  A lock file serialises concurrent builders.

`python -m tests.vm.image` builds it (what `make vm-image` runs).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from . import recipe

log = logging.getLogger(__name__)

PROJECT = recipe.HERE.parent.parent
# outside the clone, so CI's fresh clone on the same machine re-uses the guest
CACHE = Path(os.environ.get("AMDR_CACHE", "/var/cache/amanda-dr"))
DEFAULT_BUILD_DIR = CACHE / "vm"
ROOT_LABEL = "amdr-vm-root"
HOST_TOOLS = ("debootstrap", "unshare", "chroot", "mkfs.ext4")


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class GuestImage:
    """A built guest: what qemu needs to boot it."""

    directory: Path
    kernel: Path  # vmlinux (PVH boot) when it could be extracted, else vmlinuz
    initrd: Path
    rootfs: Path
    root_uuid: str
    kernel_version: str
    key: str

    @property
    def manifest(self) -> dict:
        return json.loads((self.directory / "manifest.json").read_text())

    @classmethod
    def load(cls, directory: Path) -> "GuestImage":
        m = json.loads((directory / "manifest.json").read_text())
        kernel = directory / "vmlinux"
        return cls(directory=directory,
                   kernel=kernel if kernel.exists() else directory / "vmlinuz",
                   initrd=directory / "initrd.img", rootfs=directory / "root.img",
                   root_uuid=m["root_uuid"], kernel_version=m["kernel_version"], key=m["key"])


def build_guest(build_dir: Path = DEFAULT_BUILD_DIR, *, mirror: str | None = None,
                progress=None) -> GuestImage:
    """Return the cached guest for the current recipe, building it if needed.

    `progress` (a callable taking a line) sees the build's output; by default
    it goes to the log.  Needs root (debootstrap, chroot, mknod in mkfs -d).
    """
    build_dir = Path(build_dir).resolve()
    key = recipe.cache_key()
    final = build_dir / key
    if (final / "manifest.json").exists():
        return GuestImage.load(final)
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it
        if (final / "manifest.json").exists():
            return GuestImage.load(final)
        _check_host()
        mirror = mirror or os.environ.get("AMDR_VM_MIRROR") or recipe.DEFAULT_MIRROR
        work = build_dir / f"tmp-{key}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            _build(work, key, build_dir / "debs", mirror, progress or log.info)
            os.rename(work, final)
            (build_dir / "failed-build.log").unlink(missing_ok=True)
        except BaseException:
            if (work / "build.log").exists():
                shutil.copyfile(work / "build.log", build_dir / "failed-build.log")
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        _remove_stale(build_dir, keep=key)
    return GuestImage.load(final)


def _check_host():
    if os.geteuid() != 0:
        raise BuildError("building the VM guest needs root (debootstrap, chroot)")
    missing = [t for t in HOST_TOOLS if not shutil.which(t)]
    if missing:
        raise BuildError(f"missing host tools {missing}: run `make setup`")


def _build(work: Path, key: str, debcache: Path, mirror: str, progress):
    t0 = time.monotonic()
    root = work / "root"
    argv = ["unshare", "--mount", "--propagation", "private", "bash", str(recipe.BUILD_SCRIPT),
            str(root), recipe.SUITE, mirror, str(debcache.resolve()),
            ",".join(recipe.INITRD_MODULES), *recipe.PACKAGES]
    _stream(argv, progress, work / "build.log")

    init = root / recipe.GUEST_INIT_PATH.lstrip("/")
    shutil.copyfile(recipe.INIT_SCRIPT, init)
    init.chmod(0o755)

    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise BuildError(f"expected one kernel in the guest, found {kernels}")
    kver = kernels[0].name.removeprefix("vmlinuz-")
    shutil.copyfile(kernels[0], work / "vmlinuz")
    _extract_vmlinux(work / "vmlinuz", work / "vmlinux")
    shutil.copyfile(root / "boot" / f"initrd.img-{kver}", work / "initrd.img")

    root_uuid = str(uuid.uuid4())
    _mkfs_from_tree(root, work / "root.img", root_uuid)
    packages = subprocess.run(
        ["chroot", str(root), "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        capture_output=True, text=True, check=True).stdout
    manifest = {
        "key": key, "recipe": recipe.recipe(), "mirror": mirror, "root_uuid": root_uuid,
        "kernel_version": kver, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.monotonic() - t0, 1),
        "installed": dict(line.split("\t") for line in packages.splitlines()),
    }
    shutil.rmtree(root)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    progress(f"guest image {key} built in {manifest['build_seconds']} s")


def _extract_vmlinux(vmlinuz: Path, out: Path) -> bool:
    """The uncompressed kernel, which qemu boots through its PVH entry point.

    Under TCG the bzImage's own decompressor takes ~4 s of every boot;
    Debian's kernel (CONFIG_PVH=y, xz-compressed) boots as the bare ELF.
    When the payload is not found, the guest boots vmlinuz as it is.
    """
    import lzma

    data = vmlinuz.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        return False
    try:
        elf = lzma.LZMADecompressor().decompress(data[start:])
    except lzma.LZMAError:
        return False
    if not elf.startswith(b"\x7fELF"):
        return False
    out.write_bytes(elf)
    return True


def _mkfs_from_tree(tree: Path, image: Path, fs_uuid: str):
    """An ext4 image holding `tree` (mke2fs -d keeps owners, modes, xattrs, nodes)."""
    used = int(subprocess.run(["du", "-sxm", str(tree)], capture_output=True, text=True,
                              check=True).stdout.split()[0])
    files = sum(1 + len(dirs) + len(names) for _, dirs, names in os.walk(tree))
    size_mb = int(used * 1.25) + 512  # room for what a run writes (to its snapshot)
    with open(image, "wb") as f:
        f.truncate(size_mb << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-U", fs_uuid,
                    "-N", str(files * 2 + 20000), "-d", str(tree), str(image)],
                   check=True, capture_output=True, text=True)


def _stream(argv, progress, logfile: Path):
    """Run a build step, its output to `progress` and to build.log (kept as
    failed-build.log beside the images when the build fails)."""
    with open(logfile, "w") as logf:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        tail: deque[str] = deque(maxlen=60)
        try:
            for line in p.stdout:
                logf.write(line)
                tail.append(line)
                progress(line.rstrip())
        except BaseException:  # interrupted: stop debootstrap/apt too
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise
        if p.wait() != 0:
            raise BuildError(f"guest build failed ({p.returncode}): {' '.join(argv[:8])} ...\n"
                             + "".join(tail))


def _remove_stale(build_dir: Path, keep: str):
    """Old images are 1-2 GB each; only the current recipe's is kept, and
    the work directories of interrupted builds go (called under the lock)."""
    for d in build_dir.iterdir():
        if d.is_dir() and d.name != keep and ((d / "manifest.json").exists()
                                              or d.name.startswith("tmp-")):
            shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.monotonic()
    def progress(line):  # the steps and apt's complaints; the rest is in build.log
        if line.startswith(("==", "E:", "W:", "guest image")):
            print(line, flush=True)

    try:
        image = build_guest(progress=progress)
    except BuildError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{image.directory} (kernel {image.kernel_version}, {time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
