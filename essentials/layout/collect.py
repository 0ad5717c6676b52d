"""Read the live machine's disks (the only place layout facts are gathered).

Every output is written under layout/raw/ as the tool printed it and listed
in its index (rawdir.py); layout.yaml is then derived from that directory
alone, so what the bundle carries is always enough to derive it again.

A missing tool never fails the layout: what it would have told is left out
and a warning says so, naming the devices that needed it and the Debian
package to install.  A device that blkid or sfdisk cannot read does fail it
(probes.py): "could not look" must never read as "nothing there".
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import yaml

from essentials.errors import AmdrError, CommandError
from essentials.doctor import locate
from essentials.inventory import BY_NAME
from essentials.runner import Runner

from . import collect_boot, collect_stacks, probes, rawdir
from .normalise import normalise
from .rawdir import RawWriter, safe_name

log = logging.getLogger(__name__)

LSBLK_COLS = ("NAME,PATH,PKNAME,TYPE,SIZE,MODEL,SERIAL,WWN,FSTYPE,UUID,LABEL,PARTUUID,"
              "PARTLABEL,PARTTYPE,MOUNTPOINT,LOG-SEC,PHY-SEC,ROTA,TRAN")
FINDMNT_COLS = "SOURCE,TARGET,FSTYPE,OPTIONS,FSROOT"
# the tools beyond util-linux and e2fsprogs, and the Debian package of each
# read from the running kernel; tests point these elsewhere
SYS_EFI = Path("/sys/firmware/efi")
PROC_CMDLINE = Path("/proc/cmdline")
PROC_SWAPS = Path("/proc/swaps")
BY_ID = Path("/dev/disk/by-id")


class DiskMissing(AmdrError):
    """A disk the configuration names is not here (not attached, renamed)."""


def missing_disks(disks: list[str]):
    """Each named disk must be a block device now, else say which, plainly."""
    problems = []
    for d in disks:
        try:
            if not stat.S_ISBLK(os.stat(d).st_mode):
                problems.append(f"disk {d} is not a block device")
        except FileNotFoundError:
            problems.append(f"disk {d} does not exist")
        except OSError as e:
            problems.append(f"disk {d} cannot be read: {e.strerror}")
    if problems:
        raise DiskMissing("; ".join(problems) + " (collect.layout.disks or --disk names it: "
                          "attach it, or name the disks this host has now)")


class ProbeFailed(AmdrError):
    """blkid or sfdisk could not tell what is on a device: the layout would be wrong."""


def have_tool(tool: str) -> bool:
    return locate(tool) is not None  # where doctor looks


def _walk(nodes):
    for n in nodes:
        yield n
        yield from _walk(n.get("children") or [])


class Gatherer:
    """One collection run: the runner, the raw directory and what was found so
    far (blkid of every device, the mount table) that later steps depend on."""

    def __init__(self, runner: Runner, raw_dir: Path, etc: Path = Path("/etc"),
                 luks_header: bool = False):
        self.runner = runner
        self.w = RawWriter(raw_dir)
        self.etc = Path(etc)
        self.luks_header = luks_header
        self.warnings: list[str] = []
        self.blkid: dict[str, dict] = {}
        self.failures: list[str] = []  # devices blkid or sfdisk could not read
        self.mounts: dict[str, str] = {}
        # read at creation, so tests can point the module's paths elsewhere
        self.sys_efi, self.proc_cmdline, self.by_id = SYS_EFI, PROC_CMDLINE, BY_ID
        self.proc_swaps = PROC_SWAPS

    # -- helpers ---------------------------------------------------------------
    def warn(self, msg: str):
        log.info("warning: %s", msg)  # the caller reports them (manifest, layout.yaml)
        self.warnings.append(msg)

    def tool(self, tool: str, needed_by: list[str], purpose: str,
             idle: str = "none on the collected disks") -> bool:
        """True when the tool is installed; else warn, naming who needed it."""
        if have_tool(tool):
            return True
        pkg = BY_NAME[tool].package
        if needed_by:
            self.warn(f"{', '.join(needed_by)}: {purpose} cannot be collected without "
                      f"'{tool}', which is not installed; install the Debian package {pkg} "
                      f"and collect again")
        else:
            # nothing here needs it: a note in the log, not a warning in every
            # week's cron mail
            log.info("'%s' is not installed (Debian package %s), so %s cannot be collected "
                     "(%s)", tool, pkg, purpose, idle)
        return False

    def capture(self, kind: str, name: str, argv: list, key: str | None = None,
                ok=(0,), **kw) -> str | None:
        """Run a read-only tool and keep its output; a failure is a warning."""
        try:
            res = self.runner.run(argv, check=False, **kw)
        except CommandError as e:
            self.warn(f"{' '.join(argv)}: {e}")
            return None
        if res.returncode not in ok:
            self.warn(f"{' '.join(argv)} failed (exit {res.returncode}): "
                      f"{res.stderr.decode('utf-8', 'replace').strip()[-300:]}")
            return None
        self.w.put(kind, name, res.text, key)
        return res.text

    # -- disks -----------------------------------------------------------------
    def all_disks(self) -> list[str]:
        text = self.runner.output(["lsblk", "--json", "-b", "--nodeps", "-o",
                                   "NAME,PATH,TYPE,SIZE", "-e", "1,7,11"])
        return [d["path"] for d in json.loads(text or '{"blockdevices": []}')["blockdevices"]
                if d.get("type") == "disk" and int(d.get("size") or 0) > 0
                and not d["name"].startswith("zram")]

    def disks(self, disks: list[str] | None) -> list[dict]:
        if disks and not self.runner.dry_run:  # (a dry run's answers are canned)
            missing_disks(disks)
        disks = list(disks) if disks else self.all_disks()
        if disks:
            text = self.runner.output(["lsblk", "--json", "-b", "-o", LSBLK_COLS] + disks)
        else:
            text = '{"blockdevices": []}'
        doc = json.loads(text)
        # lsblk lists in kernel order; disk0, disk1... follow the order named
        order = {p: i for i, p in enumerate(disks)}
        doc["blockdevices"].sort(key=lambda d: order.get(d.get("path"), len(order)))
        self.w.put("lsblk", "lsblk.json", json.dumps(doc, indent=2) + "\n")
        top = doc["blockdevices"]
        for d in top:
            if d.get("type") not in ("disk", "loop"):
                self.warn(f"{d.get('path')} is a {d.get('type')}, not a disk: left out "
                          f"(name the disks under it)")
        return [d for d in top if d.get("type") in ("disk", "loop")]

    def ptable(self, path: str) -> list[str] | None:
        """sfdisk --json and --dump of one device; its partition nodes or None."""
        res = self.runner.run(["sfdisk", "--json", path], check=False)
        failed = probes.sfdisk_failure(res.returncode, res.text,
                                       res.stderr.decode("utf-8", "replace"))
        if failed:
            self.failures.append(f"{path}: sfdisk --json {failed}")
        if res.returncode != 0 or not res.stdout.strip():
            return None
        self.w.put("sfdisk", f"sfdisk-{safe_name(path)}.json", res.text, path)
        self.capture("sfdisk_dump", f"sfdisk-{safe_name(path)}.dump", ["sfdisk", "--dump", path],
                     path)
        return [p["node"] for p in json.loads(res.text)["partitiontable"].get("partitions", [])]

    def probe(self, path: str):
        res = self.runner.run(["blkid", "-p", "-o", "export", path], check=False)
        failed = probes.blkid_failure(res.returncode, res.text,
                                      res.stderr.decode("utf-8", "replace"),
                                      os.path.exists(path))
        if failed:
            self.failures.append(f"{path}: blkid -p {failed}")
        info = {}
        for line in res.text.splitlines():
            k, sep, v = line.partition("=")
            if sep:
                info[k] = v
        self.blkid[path] = info

    def typed(self, *types: str) -> list[str]:
        return [p for p, i in self.blkid.items() if i.get("TYPE") in types]

    # -- the mount table -----------------------------------------------------------
    def mount_table(self):
        text = self.runner.output(["findmnt", "--json", "--list", "-o", FINDMNT_COLS])
        self.w.put("findmnt", "findmnt.json", text)
        for m in json.loads(text or '{"filesystems": []}')["filesystems"]:
            src = (m.get("source") or "").split("[")[0]
            self.mounts.setdefault(src, m["target"])
        self.capture("findmnt_tree", "findmnt-tree.json", ["findmnt", "--json"])
        self.w.put("swaps", "swaps.txt", self.proc_swaps.read_text())
        for name in ("fstab", "crypttab"):
            p = self.etc / name
            if p.is_file():
                self.w.put(name, name, p.read_text(errors="replace"))

    # -- filesystems -----------------------------------------------------------------
    def filesystems(self):
        for dev in self.typed("ext2", "ext3", "ext4"):
            self.capture("tune2fs", f"tune2fs-{safe_name(dev)}.txt", ["tune2fs", "-l", dev], dev)
        xfs = self.typed("xfs")
        if self.tool("xfs_info", xfs, "XFS parameters"):
            for dev in xfs:
                self.capture("xfs_info", f"xfs_info-{safe_name(dev)}.txt", ["xfs_info", dev], dev)
        if self.tool("xfs_admin", xfs, "XFS UUIDs and labels"):
            for dev in xfs:
                self.capture("xfs_admin", f"xfs_admin-{safe_name(dev)}.txt",
                             ["xfs_admin", "-l", "-u", dev], dev)
        btr = self.typed("btrfs")
        if self.tool("btrfs", btr, "btrfs subvolumes"):
            for dev in btr:
                self.btrfs(dev)
        self.usage(self.typed("xfs", "vfat"))

    def usage(self, devices: list[str]):
        """Bytes in use of mounted filesystems whose superblock does not say
        (ext and btrfs do): recovery needs it to tell whether a smaller disk fits."""
        usage = {}
        for dev in devices:
            mnt = self.mounts.get(dev)
            if not mnt:
                continue
            try:
                st = os.statvfs(mnt)
            except OSError as e:
                self.warn(f"statvfs {mnt} ({dev}): {e.strerror}")
                continue
            usage[dev] = {"used": (st.f_blocks - st.f_bfree) * st.f_frsize,
                          "size": st.f_blocks * st.f_frsize}
        if usage:
            self.w.put("usage", "usage.yaml", yaml.safe_dump(usage))

    def btrfs(self, dev: str):
        s = safe_name(dev)
        self.capture("btrfs_super", f"btrfs-super-{s}.txt",
                     ["btrfs", "inspect-internal", "dump-super", dev], dev)
        mnt = self.mounts.get(dev)
        if not mnt:
            self.warn(f"btrfs {dev} is not mounted: its subvolumes and default subvolume "
                      f"were not collected (the collector does not mount filesystems)")
            return
        # -a: without it the paths of subvolumes below the mounted one are
        # relative to it ("var-lib" for "@/var-lib" when @ is mounted)
        self.capture("btrfs_subvolumes", f"btrfs-subvolumes-{s}.txt",
                     ["btrfs", "subvolume", "list", "-a", "-p", "-u", "-q", mnt], dev)
        self.capture("btrfs_readonly", f"btrfs-readonly-{s}.txt",
                     ["btrfs", "subvolume", "list", "-a", "-r", mnt], dev)
        self.capture("btrfs_default", f"btrfs-default-{s}.txt",
                     ["btrfs", "subvolume", "get-default", mnt], dev)
        self.capture("btrfs_df", f"btrfs-df-{s}.txt", ["btrfs", "filesystem", "df", mnt], dev)

    # -- all of it ---------------------------------------------------------------------
    def run(self, disks: list[str] | None) -> list[str]:
        top = self.disks(disks)
        nodes = [n for n in _walk(top) if n.get("type") not in ("disk", "loop")]
        devices = []
        for d in top:
            devices += self.ptable(d["path"]) or [d["path"]]
        for n in nodes:
            if str(n.get("type", "")).startswith(("raid", "linear")) and n.get("children"):
                self.ptable(n["path"])  # an array with partitions of its own
        for path in dict.fromkeys(devices + [n["path"] for n in nodes]):
            self.probe(path)
        if self.failures:
            raise ProbeFailed(probes.failure_message(self.failures))
        self.w.put("blkid", "blkid.yaml", yaml.safe_dump(self.blkid))
        self.mount_table()
        self.filesystems()
        collect_stacks.md(self, nodes)
        collect_stacks.luks(self)
        collect_stacks.lvm(self)
        collect_stacks.multipath(self, nodes)
        collect_boot.boot(self)
        self.w.facts["warnings"] = self.warnings
        self.w.finish()
        return self.warnings


def gather(runner: Runner, disks: list[str] | None, raw_dir: Path, *, etc: Path = Path("/etc"),
           luks_header: bool = False) -> dict:
    """Run the tools, keep their raw output under raw_dir, return the raw dict."""
    Gatherer(runner, raw_dir, etc, luks_header).run(disks)
    return rawdir.load(raw_dir)


def collect(runner: Runner, out: Path, disks: list[str] | None = None, root: str = "/", *,
            etc: Path = Path("/etc"), luks_header: bool = False) -> dict:
    raw = gather(runner, disks, out / "layout" / "raw", etc=etc, luks_header=luks_header)
    layout = normalise(raw, root)
    path = out / "layout.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(layout, f, sort_keys=False)
    return layout
