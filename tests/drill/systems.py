"""The boot drill's source systems: three real bootable Debian 12 systems, backed up.

Three stages, each cached by content hash (tests/drill/cache.py) under
${AMDR_CACHE:-/var/cache/amanda-dr}/drill/:

  tree-FLAVOUR-KEY   debootstrap + apt into a plain directory on this host
                     (bios: grub-pc; uefi: grub-efi-amd64), kept as tree.tar.zst
  disks-L-KEY        the tree unpacked onto real disks inside the VM-tier guest
                     (its kernel has md, dm and vfat; it runs udev): partitions,
                     MD/LVM, filesystems, fstab by UUID, network, grub-install,
                     update-grub (install.sh; the initrd is the tree's, made natively)
  backup-L-KEY       a copy of those disks booted once as themselves (their own
                     grub and firmware, qemu's `pc` machine): a real `amdump` of
                     every filesystem onto vtapes, then `amdr-essentials run`
                     (job.sh); the disks as they are after that boot, the vtapes,
                     the sealed bundle and the console

Keys: a tree by its recipe (packages, scripts, files); disks by the tree's key,
install.sh and the layout; a backup by the disks' key, job.sh, the drill's
test keys and every file of essentials/ (the bundle must be the current
collector's).  `source_system(layout)` builds what is missing and returns at
once when all is cached.  `python -m tests.drill.systems [a b c]` (make
drill-sources) builds them.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from essentials import inventory

from . import cache

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
FILES = HERE / "files"
TREE_SCRIPT = HERE / "tree-build.sh"
INSTALL_SCRIPT = HERE / "install.sh"
JOB_SCRIPT = HERE / "job.sh"

TREE_RECIPE_VERSION = 1
SUITE = "bookworm"
MIRROR = os.environ.get("AMDR_VM_MIRROR", "http://deb.debian.org/debian")
ADDRESS, GATEWAY = "10.0.2.15/24", "10.0.2.2"
AMANDA_CONFIG = "drill"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")


# -- the layouts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    name: str
    firmware: str
    disk_mb: tuple[int, ...]
    mounts: tuple[str, ...]  # fstab mountpoints, each an Amanda DLE
    mac: str
    network: str  # "ifupdown" (by name) or "networkd" (by MACAddress=)

    @property
    def host(self) -> str:
        return f"drill-{self.name}"

    @property
    def flavour(self) -> str:
        return self.firmware

    def serials(self) -> list[str]:
        return [f"{self.host}-{i}" for i in range(len(self.disk_mb))]


LAYOUTS = {
    # a: BIOS, GPT, BIOS boot partition, ext4 /, xfs /srv, swap partition
    "a": Layout("a", "bios", (3072,), ("/", "/srv"), "52:54:00:d1:00:0a", "ifupdown"),
    # b: UEFI, GPT, ESP + one LVM PV: LVs root, home, swap
    "b": Layout("b", "uefi", (3072,), ("/", "/boot/efi", "/home"), "52:54:00:d1:00:0b",
                "networkd"),
    # c: BIOS, two disks, MD RAID1 for / and for swap, grub on both
    "c": Layout("c", "bios", (3072, 3072), ("/",), "52:54:00:d1:00:0c", "ifupdown"),
}


# -- stage 1: the package trees ----------------------------------------------------------------

BASE_PACKAGES = (
    "linux-image-amd64", "initramfs-tools", "systemd-sysv", "udev", "kmod", "openssh-server",
    "ifupdown", "iproute2", "procps", "zstd", "lvm2", "mdadm", "xfsprogs", "dosfstools",
    "e2fsprogs", "amanda-server", "amanda-client", "libencode-locale-perl", "gzip", "tar",
    "python3",
)
FLAVOUR_PACKAGES = {"bios": ("grub-pc",), "uefi": ("grub-efi-amd64", "efibootmgr")}


def essentials_packages() -> list[str]:
    """What `amdr-essentials` calls (the tool inventory) and its Python, from Debian."""
    pkgs = {p for t in inventory.tools_for(("essentials",)) if "setup" not in t.skip
            for p in t.packages}
    return sorted(pkgs | set(inventory.PYTHON_DEBIAN.values()))


def tree_packages(flavour: str) -> list[str]:
    return sorted(set(BASE_PACKAGES) | set(essentials_packages()) | set(FLAVOUR_PACKAGES[flavour]))


def tree_inputs(flavour: str) -> dict:
    return {"version": TREE_RECIPE_VERSION, "suite": SUITE, "flavour": flavour,
            "packages": tree_packages(flavour), "script": TREE_SCRIPT.read_text(),
            "files": {p.name: p.read_text() for p in sorted(FILES.iterdir())}}


def tree_key(flavour: str) -> str:
    return cache.key_of(tree_inputs(flavour))


def ensure_tree(flavour: str, progress=log.info) -> Path:
    def build(work: Path) -> dict:
        if os.geteuid() != 0:
            raise RuntimeError("building the drill trees needs root (debootstrap, chroot)")
        debs = cache.root() / "debs"
        _seed_debs(debs)
        root = work / "root"
        t0 = time.monotonic()
        # the .deb cache is shared by both flavours' debootstrap and apt-get, whose
        # locks are per directory: two trees built at once (drills two at a time)
        # failed with "Could not get lock /var/cache/apt/archives/lock"
        with open(debs / ".lock-amdr", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _stream(["unshare", "--mount", "--propagation", "private", "bash", str(TREE_SCRIPT),
                     str(root), SUITE, MIRROR, str(debs), str(FILES), *tree_packages(flavour)],
                    work / "build.log", progress)
        t_apt = time.monotonic() - t0
        installed = subprocess.run(
            ["chroot", str(root), "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
            capture_output=True, text=True, check=True).stdout
        kver = [p.name.removeprefix("vmlinuz-") for p in (root / "boot").glob("vmlinuz-*")]
        t1 = time.monotonic()
        subprocess.run(f"tar --numeric-owner --xattrs --xattrs-include='*' -C {root} -cf - . "
                       f"| zstd -q -T2 -3 -o {work / 'tree.tar.zst'}", shell=True, check=True)
        size_mb = int(subprocess.run(["du", "-sxm", str(root)], capture_output=True, text=True,
                                     check=True).stdout.split()[0])
        shutil.rmtree(root)
        return {"flavour": flavour, "inputs": {k: v for k, v in tree_inputs(flavour).items()
                                               if k not in ("script", "files")},
                "mirror": MIRROR, "kernel_version": kver[0] if len(kver) == 1 else kver,
                "installed": dict(ln.split("\t") for ln in installed.splitlines()),
                "tree_mb": size_mb,
                "tarball_bytes": (work / "tree.tar.zst").stat().st_size,
                "seconds": {"debootstrap_apt": round(t_apt, 1),
                            "tar": round(time.monotonic() - t1, 1)}}

    return cache.cached(f"tree-{flavour}", tree_key(flavour), build)



# -- stage 2: the disks, installed inside the VM-tier guest ---------------------------------------

DISKS_VERSION = 1


def disks_inputs(layout: str) -> dict:
    lay = LAYOUTS[layout]
    return {"version": DISKS_VERSION, "tree": tree_key(lay.flavour),
            "install": INSTALL_SCRIPT.read_text(), "layout": repr(lay)}


def disks_key(layout: str) -> str:
    return cache.key_of(disks_inputs(layout))


def ensure_disks(layout: str, progress=log.info) -> Path:
    lay = LAYOUTS[layout]
    tree = ensure_tree(lay.flavour, progress)

    def build(work: Path) -> dict:
        from tests.vm.guest import DiskSpec, Guest, build_guest
        image = build_guest()
        out = work / "install"
        out.mkdir()
        specs = [DiskSpec(size_mb=mb, path=work / f"disk{i}.img", serial=serial)
                 for i, (mb, serial) in enumerate(zip(lay.disk_mb, lay.serials()))]
        kw = {}
        if lay.firmware == "uefi":
            shutil.copyfile(OVMF_VARS, work / "OVMF_VARS.fd")
            kw = {"firmware": "uefi", "ovmf_vars": work / "OVMF_VARS.fd"}
        script = (f"set -- {lay.name} {lay.host} {lay.mac} {lay.network}\n"
                  + INSTALL_SCRIPT.read_text())
        guest = Guest(image, specs, mem_mb=1536, project=None,
                      shares={"/drill": (tree, "ro"), "/out": out}, **kw)
        progress(f"installing {lay.host} in the VM guest")
        r = guest.run(script, timeout=1500, keep_dir=work / "run")
        (work / "install.log").write_text(r.stdout + "\n--- stderr ---\n" + r.stderr)
        r.check()
        shutil.rmtree(work / "run" / "control", ignore_errors=True)
        facts = dict(ln.split("=", 1) for ln in (out / "facts.txt").read_text().splitlines()
                     if "=" in ln and " " not in ln.split("=", 1)[0])
        return {"layout": layout, "host": lay.host, "firmware": lay.firmware,
                "tree": tree.name, "kernel_version": facts.get("kernel"),
                "root_uuid": facts.get("root_uuid"), "swap_uuid": facts.get("swap_uuid"),
                "fstab": (out / "fstab").read_text(),
                "grub_linux": (out / "grub-linux.txt").read_text(),
                "efibootmgr": _read(out / "efibootmgr.txt"),
                "disks": [{"file": f"disk{i}.img", "bytes": (work / f"disk{i}.img").stat().st_size,
                           "allocated": (work / f"disk{i}.img").stat().st_blocks * 512}
                          for i in range(len(lay.disk_mb))],
                "seconds": {"guest_total": r.seconds, "guest_boot": r.boot_seconds,
                            **_marks(out / "times")}}

    return cache.cached(f"disks-{layout}", disks_key(layout), build)


def _marks(path: Path) -> dict:
    """Stage times from `NAME UPTIME` lines: each mark's seconds since the previous one."""
    out, prev = {}, None
    for line in _read(path).splitlines():
        name, _, t = line.partition(" ")
        t = float(t)
        if prev is not None:
            out[name] = round(t - prev, 1)
        prev = t
    return out


def _read(path: Path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return ""


# -- stage 3: booted once as itself: amdump + amdr-essentials run ------------------------------------

BACKUP_VERSION = 1
JOB_TAG, PROJECT_TAG = "drilljob", "drillproject"


def essentials_hash() -> dict:
    """Each file of essentials/ by its path in the project (not on this disk:
    every clone of the same commit, CI's among them, has the same key)."""
    import hashlib
    files = sorted(p for p in (PROJECT / "essentials").rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts)
    return {str(p.relative_to(PROJECT)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def drill_keys() -> dict:
    """The drill's GnuPG keys (made once, kept in the cache): the host's
    signing key + the site's public key for essentials; the site's secret key
    + the host's public key for recovery.  No passphrase."""
    base = cache.root() / "keys"
    meta = base / "keys.json"
    if meta.exists():
        return json.loads(meta.read_text())
    base.mkdir(parents=True, exist_ok=True)
    with open(cache.root() / ".lock-keys", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if meta.exists():
            return json.loads(meta.read_text())
        from tests.lab.keys import make_keys
        keys = make_keys("")
        try:
            for name, home in (("host", keys.host_home), ("recovery", keys.recovery_home)):
                shutil.rmtree(base / name, ignore_errors=True)
                shutil.copytree(home, base / name,
                                ignore=shutil.ignore_patterns("S.*", "*.lock", ".#*"))
                (base / name).chmod(0o700)
            info = {"host_home": str(base / "host"), "recovery_home": str(base / "recovery"),
                    "host_fpr": keys.host_fpr, "site_fpr": keys.site_fpr, "passphrase": ""}
        finally:
            keys.cleanup()
        meta.write_text(json.dumps(info, indent=1))
    return info


def backup_inputs(layout: str) -> dict:
    keys = drill_keys()
    return {"version": BACKUP_VERSION, "disks": disks_key(layout), "job": JOB_SCRIPT.read_text(),
            "essentials": essentials_hash(), "keys": [keys["host_fpr"], keys["site_fpr"]]}


def backup_key(layout: str) -> str:
    return cache.key_of(backup_inputs(layout))


def ensure_backup(layout: str, progress=log.info) -> Path:
    lay = LAYOUTS[layout]
    disks_dir = ensure_disks(layout, progress)
    keys = drill_keys()

    def build(work: Path) -> dict:
        from .boot import boot
        from tests.vm.qemu import Share
        t0 = time.monotonic()
        disks = []
        for i in range(len(lay.disk_mb)):
            subprocess.run(["cp", "--sparse=always", str(disks_dir / f"disk{i}.img"),
                            str(work / f"disk{i}.img")], check=True)
            disks.append(work / f"disk{i}.img")
        job = work / "job"
        job.mkdir()
        shutil.copyfile(JOB_SCRIPT, job / "job.sh")
        shutil.copytree(keys["host_home"], job / "gnupg-host")
        (job / "env").write_text(
            f"CONFIG={AMANDA_CONFIG}\nHOST={lay.host}\nDLES='{' '.join(lay.mounts)}'\n"
            f"HOST_FPR={keys['host_fpr']}\nSITE_FPR={keys['site_fpr']}\n")
        copy_s = time.monotonic() - t0
        progress(f"booting {lay.host} as itself: amdump + amdr-essentials run")
        b = boot([(d, "virtio") for d in disks], firmware=lay.firmware,
                 ovmf_vars=disks_dir / "OVMF_VARS.fd" if lay.firmware == "uefi" else None,
                 mac=lay.mac, machine="pc", nic_addr=3, timeout=2400, writable=True,
                 serials=lay.serials(), keep_dir=work / "run",
                 shares=[Share(JOB_TAG, job, readonly=False),
                         Share(PROJECT_TAG, PROJECT, readonly=True)])
        (work / "console.log").write_text(b.console)
        (work / "first-boot.txt").write_text(b.explain())
        shutil.rmtree(work / "run", ignore_errors=True)
        shutil.rmtree(job / "gnupg-host", ignore_errors=True)
        shutil.rmtree(job / "holding", ignore_errors=True)
        code = _read(job / "exit_code").strip()
        if not b.ok or code != "0":
            raise RuntimeError(f"{lay.host}'s first boot: job exit {code or 'missing'}\n"
                               f"{_read(job / 'log')[-4000:]}\n{b.explain()}")
        bundles = sorted((job / "bundle").glob(f"{lay.host}-*.amdr.gpg"))
        if not bundles:
            raise RuntimeError(f"{lay.host}: no bundle came back\n{_read(job / 'log')[-3000:]}")
        return {"layout": layout, "host": lay.host, "disks_key": disks_dir.name,
                "bundle": str(bundles[-1].relative_to(work)),
                "amadmin_find": _read(job / "amadmin-find.txt"),
                "amreport": _read(job / "amreport.txt"),
                "first_boot": {"ok": b.ok, "seconds": b.seconds, "host": b.host, "root": b.root,
                               "mounts": b.mounts, "swaps": b.swaps, "net": b.net,
                               "failed_units": b.failed_units, "state": b.state,
                               "complete": b.complete, "powered_off": b.powered_off,
                               "job_exit": b.job_exit, "cmdline": b.cmdline},
                "disks": [{"file": d.name, "bytes": d.stat().st_size,
                           "allocated": d.stat().st_blocks * 512} for d in disks],
                "vtapes_bytes": sum(f.stat().st_size for f in (job / "vtapes").rglob("*")
                                    if f.is_file()),
                "seconds": {"copy_disks": round(copy_s, 1), "boot_to_marker": b.seconds,
                            "qemu_total": b.qemu_seconds, **_marks(job / "times")}}

    return cache.cached(f"backup-{layout}", backup_key(layout), build)


# -- what the recovery test uses -----------------------------------------------------------------


@dataclass
class Source:
    layout: str  # "a" | "b" | "c"
    host: str  # "drill-a"
    firmware: str  # "bios" | "uefi"
    disks: list[Path]  # the original disk images (raw), cached: never attach them writable
    disk_sizes: list[int]  # bytes
    ovmf_vars: Path | None  # b: the VARS file with the debian entry (copy it before use)
    bundle: Path  # the sealed bundle amdr-essentials wrote
    vtapes: Path  # chg-disk root (slot dirs) with the dumps
    amanda_config: str  # "drill"
    address: str  # "10.0.2.15/24"
    gateway: str
    mac: str  # the original NIC's MAC
    mounts: list[str]  # fstab mountpoints that must be active after boot
    swap: bool
    manifest: dict  # timings etc. (the three stages' manifests)
    gnupghome: Path | None = None  # recovery's GnuPG home: the site's secret key, the host's public
    passphrase: str = ""  # of the site key
    amanda_host: str = "localhost"  # the DLEs' host in Amanda's catalog (auth local)


def source_system(layout: str, progress=log.info) -> Source:
    """The source system `layout`, built when missing (cold: several minutes), else at once."""
    if layout not in LAYOUTS:
        raise KeyError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
    lay = LAYOUTS[layout]
    backup = ensure_backup(layout, progress)
    disks_dir = cache.root() / f"disks-{layout}-{disks_key(layout)}"
    tree_dir = cache.root() / f"tree-{lay.flavour}-{tree_key(lay.flavour)}"
    m_backup = json.loads((backup / "manifest.json").read_text())
    m_disks = json.loads((disks_dir / "manifest.json").read_text())
    m_tree = json.loads((tree_dir / "manifest.json").read_text())
    keys = drill_keys()
    disks = [backup / d["file"] for d in m_backup["disks"]]
    return Source(
        layout=layout, host=lay.host, firmware=lay.firmware, disks=disks,
        disk_sizes=[d.stat().st_size for d in disks],
        ovmf_vars=disks_dir / "OVMF_VARS.fd" if lay.firmware == "uefi" else None,
        bundle=backup / m_backup["bundle"], vtapes=backup / "job" / "vtapes",
        amanda_config=AMANDA_CONFIG, address=ADDRESS, gateway=GATEWAY, mac=lay.mac,
        mounts=list(lay.mounts), swap=True,
        manifest={"tree": {k: v for k, v in m_tree.items() if k != "installed"},
                  "disks": m_disks, "backup": m_backup,
                  "installed": m_tree.get("installed", {})},
        gnupghome=Path(keys["recovery_home"]), passphrase=keys["passphrase"])


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    layouts = list(argv if argv is not None else sys.argv[1:]) or list(LAYOUTS)
    rc = 0
    for name in layouts:
        t0 = time.monotonic()
        try:
            s = source_system(name, progress=print)
        except Exception as e:  # noqa: BLE001 - report every layout
            print(f"layout {name}: FAILED: {e}", file=sys.stderr)
            rc = 1
            continue
        print(f"layout {name}: {s.host} {s.firmware} disks={[str(d) for d in s.disks]} "
              f"bundle={s.bundle.name} ({time.monotonic() - t0:.1f} s)", flush=True)
    return rc


def _seed_debs(debs: Path):
    """First build: hard-link the VM guest's .deb cache (same suite) so little is downloaded."""
    debs.mkdir(parents=True, exist_ok=True)
    vm_debs = cache.root().parent / "vm" / "debs"
    if not any(debs.glob("*.deb")) and vm_debs.is_dir():
        for deb in vm_debs.glob("*.deb"):
            try:
                os.link(deb, debs / deb.name)
            except OSError:
                pass


def _stream(argv, logfile: Path, progress, env=None):
    with open(logfile, "w") as logf:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        tail = []
        try:
            for line in p.stdout:
                logf.write(line)
                tail = (tail + [line])[-60:]
                if line.startswith(("==", "E:")):
                    progress(line.rstrip())
        except BaseException:
            os.killpg(p.pid, 9)
            p.wait()
            raise
        if p.wait() != 0:
            raise RuntimeError(f"{' '.join(map(str, argv[:6]))} ... failed ({p.returncode}):\n"
                               + "".join(tail))


if __name__ == "__main__":
    sys.exit(main())
