"""local delivery: a copy in a directory, possibly on a USB stick mounted for it.

Why mount and unmount around the copy: a stick that stays mounted is a
stick someone pulls mid-write, and a stick left unmounted between runs
cannot be damaged by anything else on the host.  A device that is already
mounted belongs to whoever mounted it: we use it where it is and leave it
mounted.  All mount, findmnt and umount calls go through the Runner, so they
are logged like every other command.

The copy is written to a hidden `.NAME.part`, fsynced and renamed, so the
medium never holds a truncated file under a bundle's name.

Why a missing directory is refused (unless `create: true`): /mnt/usb
without the stick in it is an ordinary directory on the root filesystem;
creating it and copying there filled the root filesystem week after week
while the report said ok.  `removable: true` goes further and refuses a
directory that is on the root filesystem, so an unmounted stick is a failed
delivery whose bundle waits in the spool.  With `device`, `dir` is only the
mountpoint: it is made when missing, and nothing is copied unless the mount
succeeded.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
from pathlib import Path

from ..errors import CommandError
from . import DeliveryError, companion_note, mb, part_name, to_prune

log = logging.getLogger(__name__)


# -- pure helpers -------------------------------------------------------------
def mountpoints(findmnt_json: str) -> list[str]:
    """Targets from `findmnt --json --list -o TARGET` output (empty: not mounted)."""
    if not findmnt_json.strip():
        return []
    return [fs["target"] for fs in json.loads(findmnt_json).get("filesystems", [])]


def choose_mountpoint(dir: str, mounted: list[str]) -> tuple[str, bool]:
    """(where to copy, whether we must mount it there ourselves)."""
    want = os.path.normpath(dir)
    if want in (os.path.normpath(m) for m in mounted):
        return want, False
    if mounted:
        return mounted[0], False
    return want, True


def space_complaint(target: str, size: int, free: int) -> str | None:
    if free >= size:
        return None
    return (f"not enough space in {target}: the bundle needs {mb(size)}, only {mb(free)} "
            f"free; remove old files there, lower `keep`, or use a bigger medium")


# -- the device ---------------------------------------------------------------
def _check_device(label: str, device: str) -> str:
    """The real path of `device`, or DeliveryError if it is not there."""
    if not os.path.exists(device):
        raise DeliveryError(f"{label}: device {device} does not exist: is the USB stick "
                            f"plugged in? Nothing was copied; the bundle stays in the spool")
    real = os.path.realpath(device)
    if not stat.S_ISBLK(os.stat(real).st_mode):
        raise DeliveryError(f"{label}: {device} is not a block device; `device` must "
                            f"name a disk or partition (e.g. /dev/disk/by-label/AMDR-USB)")
    return real


def _mounted_at(runner, label: str, real: str) -> list[str]:
    res = runner.run(["findmnt", "--json", "--list", "--output", "TARGET", "--source", real],
                     check=False, what=f"{label}: is {real} mounted")
    if res.returncode not in (0, 1):  # 1: not mounted
        raise DeliveryError(f"{label}: findmnt --source {real} failed (exit {res.returncode}): "
                            f"{res.stderr.decode('utf-8', 'replace').strip()}")
    return mountpoints(res.text)


def _mount(runner, label, device, target, options):
    argv = ["mount"] + (["-o", options] if options else []) + [device, target]
    try:
        runner.run(argv, what=f"{label}: mount")
    except CommandError as e:
        raise DeliveryError(f"{label}: cannot mount {device} at {target}: "
                            f"{e.stderr_tail.strip() or f'exit {e.returncode}'}. Is it "
                            f"formatted (vfat, ext4...) and not damaged? Nothing was "
                            f"copied.") from None


def _umount(runner, label, device, target, raise_on_failure: bool):
    try:
        runner.run(["umount", target], what=f"{label}: umount")
        log.info("%s: unmounted %s from %s", label, device, target)
    except CommandError as e:
        msg = (f"{label}: the bundle was copied and synced, but {device} could not be "
               f"unmounted from {target}: {e.stderr_tail.strip()}; run `umount {target}` "
               f"before unplugging it")
        if raise_on_failure:
            raise DeliveryError(msg) from None
        log.error("%s", msg)


# -- the target directory -------------------------------------------------------
def _source(runner, path: Path) -> str:
    """The device of the filesystem holding `path`, as findmnt names it (no [subvol])."""
    res = runner.run(["findmnt", "--json", "--target", str(path), "--output", "SOURCE"],
                     check=False)
    if res.returncode != 0 or not res.text.strip():
        return ""
    fss = json.loads(res.text).get("filesystems") or [{}]
    return str(fss[0].get("source") or "").split("[")[0]


def _on_root_filesystem(runner, path: Path) -> str | None:
    """The root filesystem's device when `path` is on it, else None.

    The same st_dev is the same filesystem; a btrfs subvolume has a device
    number of its own, so the same block device under both counts too."""
    root_dev = _source(runner, Path("/")) or "/"
    if os.stat(path).st_dev == os.stat("/").st_dev:
        return root_dev
    src = _source(runner, path)
    return root_dev if src.startswith("/dev/") and src == root_dev else None


def _nearest_existing(d: Path) -> Path:
    while not d.exists() and d != d.parent:
        d = d.parent
    return d


def _refuse_root(label: str, runner, d: Path, what: str):
    """A removable delivery's directory must not be on the root filesystem."""
    root_dev = _on_root_filesystem(runner, d)
    if root_dev:
        raise DeliveryError(
            f"{label}: {what} is on the root filesystem ({root_dev}), but this delivery is "
            f"`removable: true`: the medium is not mounted there. Plug in and mount it (or "
            f"set `device` so it is mounted for the copy); nothing was copied, the bundle "
            f"stays in the spool")


def _check_target(label: str, runner, d: Path, create: bool, removable: bool):
    """The directory to copy into exists (or may be made) and is where it must be."""
    if d.exists() and not d.is_dir():
        raise DeliveryError(f"{label}: {d} exists but is not a directory")
    if not d.exists():
        if not create:
            raise DeliveryError(
                f"{label}: {d} does not exist. If it is on a USB stick or a network "
                f"filesystem, mount it; else create it (mkdir -m 700 {d}) or set "
                f"`create: true` for this delivery. Nothing was copied; the bundle stays in "
                f"the spool")
        if removable:
            parent = _nearest_existing(d)
            _refuse_root(label, runner, parent, f"{d} does not exist and {parent}")
        _ensure_dir(label, d)
    if removable:
        _refuse_root(label, runner, d, str(d))


# -- the copy -----------------------------------------------------------------
def _ensure_dir(label: str, d: Path):
    if d.is_dir():
        return
    if d.exists():
        raise DeliveryError(f"{label}: {d} exists but is not a directory")
    try:
        d.mkdir(parents=True, mode=0o700)
        os.chmod(d, 0o700)
    except OSError as e:
        raise DeliveryError(f"{label}: cannot create {d}: {e.strerror}") from None


def _explain_write(e: OSError, label: str, target: Path, size: int) -> str:
    if e.errno == errno.EROFS:
        return (f"{label}: {target} is read-only (mounted read-only, or the medium's "
                f"write-protect switch is on?); the bundle needs {mb(size)} there")
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        free = _free(target)
        return (f"{label}: {target} is full: the bundle needs {mb(size)}, "
                f"{mb(free) if free is not None else 'unknown'} free; remove old files "
                f"there, lower `keep`, or use a bigger medium")
    return f"{label}: cannot write into {target}: {e.strerror or e}"


def _free(target: Path) -> int | None:
    try:
        st = os.statvfs(target)
        return st.f_bavail * st.f_frsize
    except OSError:
        return None


def _fsync_dir(d: Path):
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; umount/sync still flush


def _copy(label: str, bundle: Path, target: Path) -> Path:
    size = bundle.stat().st_size
    final, tmp = target / bundle.name, target / part_name(bundle.name)
    try:
        st = os.statvfs(target)
    except OSError as e:
        raise DeliveryError(f"{label}: cannot look at {target}: {e.strerror}") from None
    if st.f_flag & os.ST_RDONLY:
        raise DeliveryError(_explain_write(OSError(errno.EROFS, "read-only"), label, target, size))
    complaint = space_complaint(str(target), size, st.f_bavail * st.f_frsize)
    if complaint:
        raise DeliveryError(f"{label}: {complaint}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out, open(bundle, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, final)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise DeliveryError(_explain_write(e, label, target, size)) from None
    _fsync_dir(target)
    return final


def _companions(label: str, extra, target: Path) -> str:
    """The runbook first, best effort: where the bundle is, its runbook is,
    but a full stick never keeps the bundle off it."""
    notes = ""
    for x in extra:
        try:
            _copy(label, Path(x), target)
        except DeliveryError as e:
            notes += companion_note(label, Path(x).name, e)
    return notes


def _prune(label: str, target: Path, host: str, keep: int, protect: str):
    """Delete this host's oldest bundles (and their runbooks); logged, not fatal
    (the copy succeeded)."""
    try:
        for name in to_prune(os.listdir(target), host, keep, protect):
            (target / name).unlink()
            log.info("%s: removed old bundle %s (keep %d)", label, target / name, keep)
    except OSError as e:
        log.warning("%s: copied, but could not remove old bundles in %s: %s",
                    label, target, e.strerror or e)


def deliver(dest: dict, bundle: Path, host: str, runner, extra=()) -> str:
    label = dest["name"]
    device = dest["device"]
    if not device:
        target = Path(dest["dir"])
        _check_target(label, runner, target, dest["create"], dest["removable"])
        notes = _companions(label, extra, target)
        final = _copy(label, bundle, target)
        _prune(label, target, host, dest["keep"], bundle.name)
        log.info("%s: copied %s", label, final)
        return f"local:{final}{notes}"

    real = _check_device(label, device)
    where, must_mount = choose_mountpoint(dest["dir"], _mounted_at(runner, label, real))
    target = Path(where)
    if must_mount:
        _ensure_dir(label, target)
        _mount(runner, label, device, where, dest["mount_options"])
    done = False
    try:
        if dest["removable"]:
            _refuse_root(label, runner, target, str(target))
        notes = _companions(label, extra, target)
        final = _copy(label, bundle, target)
        _prune(label, target, host, dest["keep"], bundle.name)
        try:
            runner.run(["sync"], what=f"{label}: sync")
        except CommandError as e:
            raise DeliveryError(f"{label}: sync after copying to {target} failed: "
                                f"{e.stderr_tail.strip() or e}") from None
        done = True
    finally:
        if must_mount:
            _umount(runner, label, device, where, raise_on_failure=done)
    note = "mounted for the copy, unmounted again" if must_mount else "already mounted"
    log.info("%s: copied %s (%s, %s)", label, final, device, note)
    return f"local:{final} on {device} ({note}){notes}"
