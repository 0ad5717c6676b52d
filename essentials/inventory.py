"""Every external tool amanda-dr calls, declared once (blivet's `availability`).

Why one table: a tool missing on a fresh Debian (iproute2, Amanda's unlisted
Perl dependency) was found by a user, not by us, because each module kept
its own idea of what it needs.  Here each tool names its Debian package, the
work that needs it and a probe that proves it *runs* (an Amanda Perl tool's
`--version` loads its modules; `which` would not notice they are broken).

`doctor` prints this table; `run`, `diskinit`, `restore` and `recover` check
their own part of it before touching anything; the package lists of `make
setup`, the VM guest and the live image are generated from it
(`python3 -m essentials.inventory packages PROFILE`).  This module uses the
standard library only: the Makefile runs it with Debian's python3 before the
venv exists.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- what needs a tool -----------------------------------------------------------


@dataclass(frozen=True)
class Use:
    key: str
    side: str  # "essentials", "recovery" or "tests": whose doctor lists it
    text: str  # how doctor names it
    required: bool = True  # False: needed only on some hosts; doctor notes, does not fail


USES = {u.key: u for u in (
    Use("seal", "essentials", "seal the bundle"),
    Use("collect.etc", "essentials", "collect /etc"),
    Use("collect.layout", "essentials", "collect the layout"),
    Use("collect.layout.ext", "essentials", "layout: ext", required=False),
    Use("collect.layout.xfs", "essentials", "layout: XFS", required=False),
    Use("collect.layout.btrfs", "essentials", "layout: btrfs", required=False),
    Use("collect.layout.lvm", "essentials", "layout: LVM", required=False),
    Use("collect.layout.md", "essentials", "layout: MD RAID", required=False),
    Use("collect.layout.luks", "essentials", "layout: LUKS", required=False),
    Use("collect.layout.efi", "essentials", "layout: UEFI", required=False),
    Use("collect.layout.multipath", "essentials", "layout: multipath", required=False),
    Use("collect.packages", "essentials", "collect packages"),
    Use("collect.packages.rpm", "essentials", "rpm hosts", required=False),
    Use("collect.network", "essentials", "collect network"),
    Use("collect.capabilities", "essentials", "file capabilities", required=False),
    Use("collect.amanda", "essentials", "Amanda server", required=False),
    Use("schedule.cron", "essentials", "install-cron", required=False),
    Use("schedule.systemd", "essentials", "install-cron --systemd", required=False),
    Use("bundle", "recovery", "open bundles"),
    Use("diskinit", "recovery", "diskinit"),
    Use("diskinit.ext", "recovery", "diskinit: ext"),
    Use("diskinit.xfs", "recovery", "diskinit: XFS"),
    Use("diskinit.btrfs", "recovery", "diskinit: btrfs"),
    Use("diskinit.vfat", "recovery", "diskinit: FAT"),
    Use("diskinit.swap", "recovery", "diskinit: swap"),
    Use("diskinit.lvm", "recovery", "diskinit: LVM"),
    Use("diskinit.md", "recovery", "diskinit: MD"),
    Use("diskinit.luks", "recovery", "diskinit: LUKS"),
    Use("restore.tar", "recovery", "restore tar"),
    Use("restore.dump", "recovery", "restore dump"),
    Use("restore.amrecover", "recovery", "amrecover"),
    Use("catalog", "recovery", "catalog"),
    Use("tape", "recovery", "tape"),
    Use("mount", "recovery", "mount/umount"),
    Use("finalize", "recovery", "finalize"),
    Use("finalize.efi", "recovery", "finalize: UEFI entry", required=False),
    Use("finalize.caps", "recovery", "finalize: capabilities", required=False),
    Use("live", "recovery", "live media", required=False),
    Use("assist", "recovery", "remote assist", required=False),
    # a runbook as PDF (HTML needs nothing): the office's machine or the server
    Use("runbook", "recovery", "runbook PDF", required=False),
    # amdr-recover drill: on the office's machine, not on the live image
    Use("drill", "recovery", "drill", required=False),
    Use("tests", "tests", "tests"),
    Use("image", "tests", "make iso"),
)}

# -- the tools -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    package: str
    uses: tuple[str, ...]
    probe: tuple[str, ...] = ()  # default: (name, "--version")
    ok: tuple[int, ...] = (0,)  # exit codes of a working probe
    expect: str = ""  # a regex the probe's output must match, when the exit code says little
    also: tuple[str, ...] = ()  # packages it needs to run that its package does not pull in
    note: str = ""
    # profiles whose package lists leave it out: rpm hosts' tools, multipathd
    # (it would claim the test disks), the guest's own init instead of systemd
    skip: tuple[str, ...] = ()
    versioned: bool = True  # False: the probe's output is no version to show

    @property
    def argv(self) -> tuple[str, ...]:
        return self.probe or (self.name, "--version")

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.package,) + self.also


# Debian's amanda-common 3.5.1 uses Encode::Locale but does not depend on it:
# without it every Amanda Perl tool dies before it starts.
_AMANDA_PERL = ("libencode-locale-perl",)
_ALL = ("setup", "guest", "image")


def _lvm(name: str, uses: tuple[str, ...]) -> Tool:
    return Tool(name, "lvm2", uses, (name, "--version"))


TOOLS: tuple[Tool, ...] = (
    # sealing and opening bundles
    Tool("gpg", "gnupg", ("seal", "bundle")),
    Tool("gpgconf", "gnupg", ("seal", "bundle")),
    Tool("tar", "tar", ("seal", "collect.etc", "restore.tar")),
    Tool("gzip", "gzip", ("restore.tar", "restore.dump"),
         note="amrestore decompresses through it"),
    # the layout and the disks
    Tool("lsblk", "util-linux", ("collect.layout", "diskinit", "mount")),
    Tool("blkid", "util-linux", ("collect.layout", "diskinit", "finalize"), ("blkid", "-V")),
    Tool("findmnt", "util-linux", ("collect.layout", "mount")),
    Tool("sfdisk", "fdisk", ("collect.layout", "diskinit")),
    Tool("partx", "util-linux", ("diskinit",)),
    Tool("wipefs", "util-linux", ("diskinit",)),
    Tool("blockdev", "util-linux", ("diskinit",)),
    Tool("mkswap", "util-linux", ("diskinit.swap",)),
    Tool("mount", "mount", ("diskinit", "mount", "finalize")),
    Tool("umount", "mount", ("diskinit", "mount", "finalize")),
    Tool("mkdir", "coreutils", ("diskinit", "restore.tar", "restore.dump", "finalize")),
    Tool("chroot", "coreutils", ("finalize",)),
    Tool("chmod", "coreutils", ("finalize",)),
    Tool("cp", "coreutils", ("finalize",)),
    Tool("mv", "coreutils", ("finalize",)),
    Tool("touch", "coreutils", ("finalize",)),
    Tool("find", "findutils", ("finalize",)),
    Tool("setcap", "libcap2-bin", ("finalize.caps", "tests"), ("setcap",), ok=(0, 1),
         expect=r"usage: setcap", versioned=False),
    Tool("dd", "coreutils", ("catalog", "tape")),
    # amdr-essentials ends a hung runbook's whole process group (WeasyPrint too)
    Tool("timeout", "coreutils", ("runbook",)),
    Tool("tail", "coreutils", ("restore.tar", "restore.dump"),
         note="cuts the header off each raw part of a compressed or encrypted split image"),
    Tool("cat", "coreutils", ("catalog",)),
    Tool("sync", "coreutils", ("seal",)),
    Tool("chown", "coreutils", ("catalog",)),
    Tool("tee", "coreutils", ("catalog", "finalize")),
    Tool("test", "coreutils", ("catalog",)),
    Tool("tune2fs", "e2fsprogs", ("collect.layout.ext", "diskinit.ext"), ("tune2fs",),
         ok=(1,), expect=r"Usage: \S*tune2fs"),
    Tool("mkfs.ext2", "e2fsprogs", ("diskinit.ext",), ("mkfs.ext2", "-V")),
    Tool("mkfs.ext3", "e2fsprogs", ("diskinit.ext",), ("mkfs.ext3", "-V")),
    Tool("mkfs.ext4", "e2fsprogs", ("diskinit.ext",), ("mkfs.ext4", "-V")),
    Tool("mke2fs", "e2fsprogs", ("drill",), ("mke2fs", "-V")),
    Tool("debugfs", "e2fsprogs", ("drill",), ("debugfs", "-V")),
    Tool("mkfs.xfs", "xfsprogs", ("diskinit.xfs",), ("mkfs.xfs", "-V")),
    Tool("xfs_admin", "xfsprogs", ("collect.layout.xfs", "diskinit.xfs"), ("xfs_admin", "-V")),
    Tool("xfs_info", "xfsprogs", ("collect.layout.xfs",), ("xfs_info", "-V")),
    Tool("mkfs.btrfs", "btrfs-progs", ("diskinit.btrfs",)),
    Tool("btrfs", "btrfs-progs", ("collect.layout.btrfs", "diskinit.btrfs")),
    Tool("mkfs.vfat", "dosfstools", ("diskinit.vfat",), ("mkfs.vfat", "--help"),
         expect=r"mkfs\.(vfat|fat)"),
    _lvm("pvs", ("collect.layout.lvm",)),
    _lvm("vgs", ("collect.layout.lvm",)),
    _lvm("lvs", ("collect.layout.lvm",)),
    _lvm("vgcfgbackup", ("collect.layout.lvm",)),
    _lvm("pvcreate", ("diskinit.lvm",)),
    _lvm("pvremove", ("diskinit.lvm",)),
    _lvm("pvresize", ("diskinit.lvm",)),
    _lvm("vgcfgrestore", ("diskinit.lvm",)),
    _lvm("vgchange", ("diskinit.lvm", "mount")),
    _lvm("lvcreate", ("diskinit.lvm",)),
    _lvm("lvchange", ("diskinit.lvm", "mount")),
    _lvm("lvconvert", ("diskinit.lvm",)),
    _lvm("lvremove", ("diskinit.lvm",)),
    Tool("thin_restore", "thin-provisioning-tools", ("diskinit.lvm",)),
    Tool("dmsetup", "dmsetup", ("diskinit.lvm", "diskinit.luks", "mount")),
    Tool("mdadm", "mdadm", ("collect.layout.md", "diskinit.md", "mount")),
    Tool("cryptsetup", "cryptsetup-bin", ("collect.layout.luks", "diskinit.luks", "mount")),
    Tool("efibootmgr", "efibootmgr", ("collect.layout.efi", "finalize.efi")),
    Tool("multipath", "multipath-tools", ("collect.layout.multipath",), ("multipath", "-h"),
         ok=(0, 1), expect=r"multipath-tools", skip=_ALL),
    Tool("fuser", "psmisc", ("mount",), ("fuser", "-V")),
    # packages, network, schedule
    Tool("dpkg-query", "dpkg", ("collect.packages",)),
    Tool("dpkg", "dpkg", ("collect.packages",)),
    Tool("apt-mark", "apt", ("collect.packages",)),
    Tool("debconf-show", "debconf", ("collect.packages", "collect.layout"),
         ("debconf-show", "--listdbs"), expect=r"\w"),
    Tool("rpm", "rpm", ("collect.packages.rpm",), skip=_ALL),
    Tool("dnf", "dnf", ("collect.packages.rpm",), note="not in Debian; rpm hosts only",
         skip=_ALL),
    Tool("ip", "iproute2", ("collect.network", "finalize"), ("ip", "-V")),
    Tool("hostname", "hostname", ("collect.network",), ("hostname", "-V")),
    # tar and amgtar (without --xattrs) drop file capabilities: the bundle keeps
    # them.  Optional: a host without libcap2-bin gets a warning, not a failure.
    Tool("getcap", "libcap2-bin", ("collect.capabilities",), ("getcap", "-h"), ok=(0, 1),
         expect=r"usage: getcap", versioned=False),
    # (not `crontab -l`: root's crontab, its addresses and secrets, would land in
    # doctor's table; nobody has none, and asking for it proves crontab runs)
    Tool("crontab", "cron", ("schedule.cron",), ("crontab", "-l", "-u", "nobody"), ok=(0, 1),
         expect=r"no crontab for nobody|^$", versioned=False, skip=("guest",)),
    Tool("systemctl", "systemd", ("schedule.systemd", "collect.network"), skip=("guest",)),
    # Amanda (server tools run as backup; --version is allowed as root and,
    # for the Perl ones, loads every Amanda module)
    Tool("amadmin", "amanda-server", ("collect.amanda", "catalog"), also=_AMANDA_PERL),
    Tool("amgetconf", "amanda-common", ("collect.amanda", "catalog"), also=_AMANDA_PERL),
    Tool("amrestore", "amanda-server", ("restore.tar", "restore.dump", "catalog"),
         also=_AMANDA_PERL),
    Tool("amfetchdump", "amanda-server", ("catalog", "restore.amrecover"), also=_AMANDA_PERL),
    Tool("amcheckdump", "amanda-server", ("catalog",), also=_AMANDA_PERL),
    Tool("amtape", "amanda-server", ("tape",), also=_AMANDA_PERL),
    Tool("amrecover", "amanda-client", ("restore.amrecover",), also=_AMANDA_PERL),
    Tool("restore", "dump", ("restore.dump",), ("restore", "--version"), ok=(1,),
         expect=r"restore 0\.\d"),
    Tool("mt", "mt-st", ("tape",)),
    Tool("mtx", "mtx", ("tape",), ("mtx", "--version"), ok=(0, 1), expect=r"mtx"),
    # the live system finds its media and waits for the network an sftp source needs
    Tool("udevadm", "udev", ("live",), skip=("guest",)),
    Tool("/lib/systemd/systemd-networkd-wait-online", "systemd", ("live",),
         ("test", "-x", "/lib/systemd/systemd-networkd-wait-online"), versioned=False,
         skip=("guest",)),
    # the runbook's PDF (recovery/runbook/output.py); its fonts, readable in black and
    # white, are not among the package's dependencies.  Not on the live image or the
    # guest (a large stack for a page the office prints): there the runbook is HTML
    Tool("weasyprint", "weasyprint", ("runbook",), also=("fonts-dejavu-core",),
         skip=("guest", "image")),
    # the tests and the lab (make setup installs these too)
    Tool("amdump", "amanda-server", ("tests",), also=_AMANDA_PERL),
    Tool("amlabel", "amanda-server", ("tests",), also=_AMANDA_PERL),
    Tool("dump", "dump", ("tests",), ("dump", "--version"), ok=(1,), expect=r"dump 0\.\d"),
    Tool("losetup", "mount", ("tests",)),
    # remote assist (recovery/assist.py): the tunnel, the office's way in, the shared screen
    Tool("sshd", "openssh-server", ("assist", "tests"), ("/usr/sbin/sshd", "-V")),
    Tool("ssh", "openssh-client", ("assist", "tests"), ("ssh", "-V")),
    Tool("ssh-keygen", "openssh-client", ("assist", "tests"), ("ssh-keygen", "-?"), ok=(1,),
         expect=r"usage: ssh-keygen"),
    Tool("chpasswd", "passwd", ("assist",), ("test", "-x", "/usr/sbin/chpasswd"),
         versioned=False, note="assist lan: the password made for this boot"),
    Tool("passwd", "passwd", ("assist",), ("test", "-x", "/usr/bin/passwd"), versioned=False,
         note="assist lan --off: the password removed"),
    Tool("setfacl", "acl", ("tests",)),
    Tool("setfattr", "attr", ("tests",)),
    Tool("qemu-system-x86_64", "qemu-system-x86", ("tests", "drill"), skip=("guest", "image")),
    Tool("qemu-img", "qemu-utils", ("tests",)),
    Tool("debootstrap", "debootstrap", ("tests",)),
    # the boot drill (tests/drill): its trees are tarred with zstd, UEFI systems boot OVMF
    Tool("zstd", "zstd", ("tests",), ("zstd", "-V")),
    Tool("OVMF", "ovmf", ("tests", "drill"), ("test", "-r", "/usr/share/OVMF/OVMF_CODE.fd"),
         skip=("guest", "image"),
         versioned=False, note="UEFI firmware for qemu (the boot drill's layout b)"),
    Tool("tmux", "tmux", ("assist", "tests"), ("tmux", "-V")),
    # the runbook's tests turn its PDF into pages and text
    Tool("pdftoppm", "poppler-utils", ("tests",), ("pdftoppm", "-v")),
    Tool("pdftotext", "poppler-utils", ("tests",), ("pdftotext", "-v")),
    # amandad under inetd (bsdtcp) for the amrecover-through-a-live-server tests
    Tool("inetd", "openbsd-inetd", ("tests",), ("test", "-x", "/usr/sbin/inetd"),
         versioned=False, note="runs amandad for amrecover over bsdtcp"),
    # the live image (make iso: image/build.py, make-iso.sh)
    Tool("unshare", "util-linux", ("image",)),
    Tool("mksquashfs", "squashfs-tools", ("image",), ("mksquashfs", "-version")),
    Tool("xorriso", "xorriso", ("image", "drill"), skip=("guest", "image")),
    Tool("grub-mkimage", "grub-common", ("image",)),
    Tool("grub-pc-bin", "grub-pc-bin", ("image",),
         ("test", "-r", "/usr/lib/grub/i386-pc/boot_hybrid.img"), versioned=False,
         note="GRUB's BIOS modules and hybrid MBR for the ISO"),
    Tool("grub-efi-amd64-bin", "grub-efi-amd64-bin", ("image",),
         ("test", "-d", "/usr/lib/grub/x86_64-efi"), versioned=False,
         note="GRUB's UEFI modules for the ISO"),
    Tool("mcopy", "mtools", ("image",)),
    Tool("mmd", "mtools", ("image",)),
    Tool("git", "git", ("tests",)),
    Tool("make", "make", ("tests",)),
)

BY_NAME = {t.name: t for t in TOOLS}

# the project's Python dependencies (pyproject.toml) as Debian packages: the
# VM guest and the live image take them from Debian
PYTHON_DEBIAN = {
    "pexpect": "python3-pexpect",
    "pyyaml": "python3-yaml",
    "python-gnupg": "python3-gnupg",
    "paramiko": "python3-paramiko",
    "urwid": "python3-urwid",
    "tqdm": "python3-tqdm",  # recover/restore's progress lines in a terminal
}

# the test suite's own Python packages, from Debian as well
PYTHON_TEST_DEBIAN = {
    "pytest": "python3-pytest",
    "aiosmtpd": "python3-aiosmtpd",
}

# what the venv of make setup is built from (pip only installs this project)
SETUP_EXTRA = ("python3", "python3-venv", "python3-pip", "python3-setuptools")

PROFILES = {
    # make setup: the product, its tests and the lab
    "setup": ("essentials", "recovery", "tests"),
    # the VM guest and the live image: what the product calls, Python from Debian
    "guest": ("essentials", "recovery"),
    "image": ("essentials", "recovery"),
}


def tools_for(sides) -> list[Tool]:
    return [t for t in TOOLS if any(USES[u].side in sides for u in t.uses)]


def packages(profile: str) -> list[str]:
    """The Debian packages of a profile, sorted and each once."""
    if profile not in PROFILES:
        raise KeyError(f"unknown profile {profile!r}; one of {', '.join(PROFILES)}")
    pkgs = {p for t in tools_for(PROFILES[profile]) if profile not in t.skip
            for p in t.packages}
    pkgs.add("python3")
    pkgs.update(PYTHON_DEBIAN.values())
    if profile == "setup":
        pkgs.update(SETUP_EXTRA)
        pkgs.update(PYTHON_TEST_DEBIAN.values())
    return sorted(pkgs)


DEBIAN_SITE = "/usr/lib/python3/dist-packages"


def check_python() -> list[str]:
    """What is wrong with the Python the product runs on (empty: nothing).

    The interpreter must be Debian's and every dependency Debian's package,
    not a PyPI copy that shadows it: that is what the live image runs."""
    import importlib.metadata as md
    import sys
    problems = []
    if not sys.base_prefix.startswith("/usr") or sys.base_prefix.startswith("/usr/local"):
        problems.append(f"the interpreter is {sys.base_prefix}/bin/python3, not Debian's "
                        f"/usr/bin/python3 (rebuild the venv: rm -rf .venv && make setup)")
    for dist, deb in {**PYTHON_DEBIAN, **PYTHON_TEST_DEBIAN}.items():
        try:
            d = md.distribution(dist)
        except md.PackageNotFoundError:
            problems.append(f"{dist}: not installed (apt-get install {deb})")
            continue
        where = str(d.locate_file(""))
        if not where.startswith(DEBIAN_SITE):
            problems.append(f"{dist} {d.version} comes from {where}, not Debian's {deb}: "
                            f"remove it (pip uninstall {dist}) so the tested version is the "
                            f"image's")
    return problems


def tools_of_uses(uses) -> list[Tool]:
    uses = set(uses)
    return [t for t in TOOLS if uses & set(t.uses)]


def main(argv=None) -> int:
    import sys
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "packages":
        try:
            print(" ".join(packages(args[1])))
        except KeyError as e:
            print(f"essentials.inventory: {e.args[0]}", file=sys.stderr)
            return 2
        return 0
    if args == ["check-python"]:
        problems = check_python()
        for p in problems:
            print(f"essentials.inventory: {p}", file=sys.stderr)
        if not problems:
            import importlib.metadata as md
            print(f"python {sys.version.split()[0]}, " + ", ".join(
                f"{d} {md.version(d)}" for d in {**PYTHON_DEBIAN, **PYTHON_TEST_DEBIAN}))
        return 1 if problems else 0
    print("usage: python3 -m essentials.inventory packages setup|guest|image\n"
          "       python3 -m essentials.inventory check-python", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
