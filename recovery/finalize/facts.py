"""What finalize plans from: the restored system's files, this machine, the bundle.

The only module of finalize that reads anything.  Two ways in:
- `from_target`: the restored system under TARGET and the devices blkid
  sees now (finalize itself);
- `from_bundle`: the bundle's copy of /etc and the identities diskinit will
  give the mapped disks (`plan`, before anything is wiped), so a reference
  that cannot resolve is found before the disks are touched.
"""

from __future__ import annotations

import fnmatch
import glob
import io
import json
import logging
import os
import tarfile
from dataclasses import dataclass, field

from essentials.runner import Runner

from . import nics, refs

log = logging.getLogger(__name__)

# the files whose device references are checked, and the other files finalize reads
FILES = ("/etc/fstab", "/etc/crypttab", "/etc/default/grub", "/etc/lvm/lvm.conf",
         "/etc/mdadm/mdadm.conf", "/etc/mdadm.conf", "/etc/lvm/devices/system.devices",
         "/etc/os-release", "/etc/selinux/config", "/etc/debian_version",
         "/etc/redhat-release", "/etc/network/interfaces")
GLOBS = ("/etc/default/grub.d/*.cfg", "/etc/initramfs-tools/conf.d/*",
         "/etc/network/interfaces.d/*", "/etc/systemd/network/*",
         "/etc/NetworkManager/system-connections/*", "/etc/netplan/*.yaml",
         "/etc/netplan/*.yml", "/etc/udev/rules.d/*persistent-net*.rules")
TOOLS = ("update-initramfs", "dracut", "grub-install", "grub2-install", "update-grub",
         "grub2-mkconfig", "debconf-set-selections")
SHIM = ("/usr/lib/shim/shimx64.efi.signed", "/usr/lib/shim/shimx64.efi",
        "/boot/efi/EFI/BOOT/shimx64.efi")
ALIAS_DIRS = ("/dev/disk/by-id", "/dev/disk/by-uuid", "/dev/disk/by-label",
              "/dev/disk/by-partuuid", "/dev/disk/by-partlabel", "/dev/disk/by-path",
              "/dev/mapper", "/dev/md")
MAX_FILE = 1 << 20
EFIVARS = "/sys/firmware/efi/efivars"  # configuration files only: a bigger one is not ours to parse


@dataclass
class Facts:
    target: str
    files: dict[str, str] = field(default_factory=dict)   # path in the target -> text
    ids: refs.Identities = field(default_factory=refs.Identities)
    nics: list[dict] = field(default_factory=list)        # the NICs here
    efi: bool = False          # this machine booted with UEFI
    efivars: bool = False      # and its variables can be written (efibootmgr)
    efi_entries: dict | None = None  # efibootmgr -v of this machine, parsed
    md_scan: str | None = None  # mdadm --detail --scan of the arrays here
    tools: set[str] = field(default_factory=set)          # the restored system's
    shim: bool = False
    existing: set[str] | None = None  # of the capability files: those in the target
    source: str = "target"     # target | bundle (plan time)

    @property
    def family(self) -> str | None:
        if "/etc/debian_version" in self.files:
            return "debian"
        if "/etc/redhat-release" in self.files:
            return "rpm"
        text = self.files.get("/etc/os-release", "")
        if "debian" in text or "ubuntu" in text:
            return "debian"
        if any(w in text for w in ("rhel", "fedora", "suse", "centos")):
            return "rpm"
        return None

    @property
    def selinux(self) -> bool:
        for line in self.files.get("/etc/selinux/config", "").splitlines():
            k, _, v = line.strip().partition("=")
            if k == "SELINUX" and v.strip() in ("enforcing", "permissive"):
                return True
        return False


def _read(path: str) -> str | None:
    try:
        if os.path.getsize(path) > MAX_FILE:
            return None
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def target_files(target: str) -> dict[str, str]:
    out = {}
    names = list(FILES)
    for g in GLOBS:
        names += sorted("/" + os.path.relpath(p, target)
                        for p in glob.glob(os.path.join(target, g.lstrip("/"))))
    for name in names:
        full = os.path.join(target, name.lstrip("/"))
        if os.path.isfile(full) and not os.path.islink(full):
            text = _read(full)
            if text is not None:
                out[name] = text
    return out


def present_ids(runner: Runner) -> refs.Identities:
    """blkid's low-level probe of every block device (no cache: loop numbers
    and disks are reused), and the udev links that name them."""
    ids = refs.Identities()
    res = runner.run(["blkid", "-c", "/dev/null", "-o", "export"], check=False)
    for block in res.text.split("\n\n"):
        kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        dev = kv.get("DEVNAME")
        if not dev:
            continue
        real = os.path.realpath(dev)
        ids.add(real, uuid=kv.get("UUID"), label=kv.get("LABEL"),
                partuuid=kv.get("PARTUUID"), partlabel=kv.get("PARTLABEL"))
        ids.alias(dev, real)
    for d in ALIAS_DIRS + tuple(glob.glob("/dev/*/")):
        d = d.rstrip("/")
        if not os.path.isdir(d) or d in ("/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/hugepages",
                                          "/dev/char", "/dev/block", "/dev/net", "/dev/input",
                                          "/dev/snd", "/dev/dri", "/dev/cpu", "/dev/bus",
                                          "/dev/fd", "/dev/disk"):
            continue
        for name in os.listdir(d):
            p = os.path.join(d, name)
            real = os.path.realpath(p)
            if real.startswith("/dev/") and os.path.exists(real):
                ids.alias(p, real)
    for name in os.listdir("/sys/class/block"):
        ids.add(f"/dev/{name}")
    return ids


def present_nics(runner: Runner, sysfs: str = "/sys/class/net") -> list[dict]:
    res = runner.run(["ip", "-j", "link", "show"], check=False)
    try:
        links = json.loads(res.text or "[]")
    except ValueError:
        links = []
    out = []
    for link in links:
        name = link.get("ifname")
        if not name or link.get("link_type") != "ether":
            continue
        dev = os.path.join(sysfs, name, "device")
        driver = os.path.join(dev, "driver")
        out.append({"name": name, "mac": str(link.get("address", "")).lower(),
                    "permanent_mac": link.get("permaddr"),
                    "driver": os.path.basename(os.path.realpath(driver))
                    if os.path.exists(driver) else None,
                    "physical": os.path.exists(dev)})
    return out


def machine(runner: Runner, facts: Facts, layout: dict):
    """This machine's firmware, NVRAM, arrays and NICs."""
    from essentials.layout.boot import parse_efibootmgr
    facts.efi = os.path.isdir("/sys/firmware/efi")
    if facts.efi:
        if os.path.isdir(EFIVARS) and not os.path.ismount(EFIVARS):
            # efibootmgr reads and writes the NVRAM through efivarfs, which a
            # minimal live system may not have mounted; mounting it changes nothing
            runner.run(["mount", "-t", "efivarfs", "efivarfs", EFIVARS], check=False)
        res = runner.run(["efibootmgr", "-v"], check=False)
        facts.efivars = res.returncode == 0
        if res.returncode == 0:
            facts.efi_entries = parse_efibootmgr(res.text)
        else:
            log.warning("efibootmgr -v: %s", res.stderr.decode("utf-8", "replace").strip())
    if layout.get("md"):
        facts.md_scan = runner.run(["mdadm", "--detail", "--scan"], check=False).text
    facts.nics = present_nics(runner)


def from_target(runner: Runner, target: str, layout: dict, cap_paths=()) -> Facts:
    f = Facts(target, target_files(target), present_ids(runner))
    f.tools = {t for t in TOOLS
               if any(os.path.exists(os.path.join(target, d, t))
                      for d in ("usr/sbin", "usr/bin", "sbin", "bin"))}
    f.shim = any(os.path.exists(os.path.join(target, p.lstrip("/"))) for p in SHIM)
    f.existing = {p for p in cap_paths if os.path.isfile(os.path.join(target, p.lstrip("/")))}
    machine(runner, f, layout)
    return f


def bundle_files(etc_tar: bytes) -> dict[str, str]:
    """The files finalize reads, from the bundle's etc.tar (members etc/...)."""
    out = {}
    want = set(FILES)
    with tarfile.open(fileobj=io.BytesIO(etc_tar)) as tf:
        for m in tf:
            name = "/" + m.name.lstrip("./")
            if not m.isfile() or m.size > MAX_FILE:
                continue
            if name in want or any(fnmatch.fnmatch(name, g) for g in GLOBS):
                out[name] = tf.extractfile(m).read().decode("utf-8", "replace")
    return out


def expected_ids(layout: dict, new_paths: dict[str, str]) -> refs.Identities:
    """The identities the layout will have once diskinit ran on the mapped disks:
    every UUID, LABEL, PARTUUID and PARTLABEL is recreated as it was."""
    ids = refs.Identities()
    where = dict(new_paths)
    for m in layout.get("md") or []:
        where[m["id"]] = m["path"]
        ids.add(m["path"])
        for p in (m.get("ptable") or {}).get("partitions") or []:
            where[p["id"]] = p["path"]
            ids.add(p["path"], partuuid=p.get("uuid"), partlabel=p.get("name"))
    for vg in layout.get("lvm") or []:
        for lv in vg.get("logical_volumes") or []:
            where[lv["id"]] = lv.get("dm_path") or lv["path"]
            ids.add(where[lv["id"]])
            ids.alias(lv["path"], where[lv["id"]])
    for c in layout.get("luks") or []:
        if c.get("path"):
            where[c["id"]] = c["path"]
            ids.add(c["path"])
        if c.get("device") in where:
            ids.add(where[c["device"]], uuid=c.get("uuid"))
    for d in layout.get("disks") or []:
        for p in (d.get("ptable") or {}).get("partitions") or []:
            if p["id"] in where:
                ids.add(where[p["id"]], partuuid=p.get("uuid"), partlabel=p.get("name"))
        if d["id"] in where:
            ids.add(where[d["id"]])
    for fs in layout.get("filesystems") or []:
        dev = where.get(fs["device"])
        if dev:
            ids.add(dev, uuid=fs.get("uuid"), label=fs.get("label"))
    return ids


def from_bundle(runner: Runner, bundle, layout: dict, new_paths: dict[str, str]) -> Facts:
    files = {}
    if bundle.has("etc.tar"):
        with open(bundle.path("etc.tar"), "rb") as fh:
            files = bundle_files(fh.read())
    # fstab and crypttab as the layout read them: from the collected root (a
    # system collected under --root has them there, not in the host's /etc)
    for path, key, cols in (("/etc/fstab", "fstab", ("spec", "file", "vfstype", "options",
                                                     "freq", "passno")),
                            ("/etc/crypttab", "crypttab", ("name", "device", "keyfile",
                                                           "options"))):
        if layout.get(key):
            files[path] = "".join(" ".join(str(e.get(c) if e.get(c) is not None else "none")
                                           for c in cols) + "\n" for e in layout[key])
    f = Facts("(the restored system)", files, expected_ids(layout, new_paths), source="bundle")
    here = present_ids(runner)  # the by-id names of the disks here are known already
    for link, dev in here.paths.items():
        if link.startswith(refs.BY_ID):
            f.ids.alias(link, dev)
    fam = f.family
    f.tools = ({"update-initramfs", "grub-install", "update-grub", "debconf-set-selections"}
               if fam == "debian" else {"dracut", "grub2-install", "grub2-mkconfig"}
               if fam == "rpm" else set())
    machine(runner, f, layout)
    return f


def network_config(files: dict[str, str]) -> dict[str, str]:
    return {p: t for p, t in files.items() if nics.is_config(p)}
