"""The live system's attached media: found, mounted read-only, searched for
bundles and an answers file, at boot and by themselves.

Which filesystems are a medium: one labelled AMDR (on any bus), any on a
removable or USB disk, a CD.  Never the live system's own boot medium (its
site directory is searched where it is mounted already), never anything
mounted, never a RAID, LVM or LUKS member or swap: the dead machine's own
disks are left alone, so the recovery can wipe them and nothing holds them.
Each is mounted read-only under /media/NAME; the reports of an unattended
run are written there through a brief read-write remount.

`amdr-media` (the unit amdr-media.service, before the consoles) runs main():
mounts, then imports every bundle found (and fetched from the site's or the
answers' sftp server) into the store, checked with the answers' key when an
answers file is there, and prints the list on the console.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MEDIA_ROOT = Path("/media")
LIVE_MEDIUM = Path("/run/live/medium")
ANSWERS_NAME = "amdr-answers.yaml"
ANSWERS_FOUND = Path("/run/amanda-dr/answers")  # the path of the answers file found
NOT_MEDIA = {"swap", "LVM2_member", "linux_raid_member", "crypto_LUKS", "zfs_member",
             "bcache", "ddf_raid_member", "isw_raid_member"}


@dataclass
class Dev:
    path: str
    kind: str  # disk, part, rom, ...
    fstype: str
    label: str
    disk: str  # the whole disk it is on (itself for a disk or rom)
    removable: bool
    tran: str  # the disk's transport: usb, sata, nvme, ...
    mountpoint: str


def devices(lsblk: dict) -> list[Dev]:
    """Every block device of `lsblk -J -p -o NAME,TYPE,FSTYPE,LABEL,RM,TRAN,MOUNTPOINT`."""
    out = []

    def walk(node, disk, rm, tran):
        if node.get("type") in ("disk", "rom", "loop"):
            disk, rm, tran = node["name"], bool(node.get("rm")), node.get("tran") or ""
        out.append(Dev(node["name"], node.get("type") or "", node.get("fstype") or "",
                       node.get("label") or "", disk, rm, tran, node.get("mountpoint") or ""))
        for c in node.get("children") or []:
            walk(c, disk, rm, tran)

    for n in lsblk.get("blockdevices") or []:
        walk(n, n["name"], bool(n.get("rm")), n.get("tran") or "")
    return out


def candidates(devs: list[Dev], live_disk: str | None) -> list[Dev]:
    """The media among them, in a stable order: AMDR-labelled first."""
    held = {d.disk for d in devs if d.mountpoint}  # a disk in use is no one's medium
    out = []
    for d in devs:
        if not d.fstype or d.fstype in NOT_MEDIA or d.mountpoint:
            continue
        if live_disk and d.disk == live_disk:
            continue
        if d.label == "AMDR" or ((d.removable or d.tran == "usb" or d.kind == "rom")
                                 and d.disk not in held):
            out.append(d)
    return sorted(out, key=lambda d: (d.label != "AMDR", d.path))


def mount_name(d: Dev, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", d.label) or os.path.basename(d.path)
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}-{i}"
    taken.add(name)
    return name


def live_disk() -> str | None:
    r = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(LIVE_MEDIUM)],
                       capture_output=True, text=True)
    src = r.stdout.strip()
    if not src:
        return None
    r = subprocess.run(["lsblk", "-n", "-p", "-s", "-o", "NAME,TYPE", src],
                       capture_output=True, text=True)
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 2 and f[1] in ("disk", "rom"):
            return f[0].lstrip("`|-\u2514\u2500\u251c\u2502 ")
    return src


def mount_all(devs: list[Dev], root: Path = MEDIA_ROOT) -> list[tuple[Dev, Path]]:
    taken = {p.name for p in root.iterdir()} if root.is_dir() else set()
    done = []
    for d in devs:
        where = root / mount_name(d, taken)
        where.mkdir(parents=True, exist_ok=True)
        opts = "ro,nosuid,nodev"
        if d.fstype in ("vfat", "exfat", "ntfs", "ntfs3"):
            # no owners on these: root's alone, so a key or passphrase file on
            # the stick is as private as its readers require (0600)
            opts += ",uid=0,gid=0,fmask=0177,dmask=0077"
        r = subprocess.run(["mount", "-o", opts, d.path, str(where)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            done.append((d, where))
        else:
            print(f"amanda-dr media: {d.path} ({d.fstype}) could not be mounted: "
                  f"{r.stderr.strip()}", flush=True)
            where.rmdir()
    return done


def shares() -> list[str]:
    """A virtual machine's shared folders tagged amdr-* (the drill's volumes)."""
    out = []
    for t in Path("/sys/bus/virtio/drivers/9pnet_virtio").glob("virtio*/mount_tag"):
        tag = t.read_bytes().rstrip(b"\0\n").decode(errors="replace")
        if tag.startswith("amdr-"):
            out.append(tag)
    return sorted(out)


def mount_shares(tags: list[str], root: Path = MEDIA_ROOT) -> list[Path]:
    done = []
    for tag in tags:
        where = root / tag
        where.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "9p", "-o",
                            "trans=virtio,version=9p2000.L,msize=524288,ro", tag, str(where)],
                           capture_output=True, text=True)
        if r.returncode == 0:
            print(f"amanda-dr media: shared folder {tag} on {where}, read-only", flush=True)
            done.append(where)
        else:
            print(f"amanda-dr media: shared folder {tag} could not be mounted: "
                  f"{r.stderr.strip()}", flush=True)
    return done


def doctor_line(prefix: str, present_only: bool = True) -> tuple[bool, str]:
    """The console's doctor line.  At boot, presence only: every tool the
    recovery calls is on the image (the image's build ran each of them inside
    its root and failed otherwise, and a live system's files are the build's,
    read-only); the full probe (`amdr-recover doctor`) follows in the
    background (amdr-doctor-full.service) and says so if anything fails."""
    from essentials import doctor
    from essentials.inventory import tools_for
    if not present_only:
        rep = doctor.examine(("recovery",))
        return not rep.failed, doctor.summary(rep, prefix)
    rows = []
    for t in tools_for(("recovery",)):
        if t.argv[0] == "test" and len(t.argv) == 3:  # a file, not a program
            ok = os.path.exists(t.argv[2])
        else:
            ok = doctor.locate(t.argv[0]) is not None
        required = any(doctor.USES[u].required for u in t.uses
                       if doctor.USES[u].side == "recovery")
        rows.append((doctor.Status(t, None, ok, "present" if ok else
                                   f"not installed (Debian package {t.package})"),
                     [], required))
    rep = doctor.Report(rows)
    return not rep.failed, doctor.summary(rep, prefix)


def machine_facts(media=()) -> list[str]:
    """What the welcome screen shows of this machine: its disks (the boot
    medium and disks in use marked), its wired links and addresses, the
    volumes found on the media (chg-disk directories: slot*)."""
    out = ["disks here:"]
    r = subprocess.run(["lsblk", "-J", "-d", "-b", "-o", "NAME,SIZE,MODEL,SERIAL,TRAN,TYPE"],
                       capture_output=True, text=True)
    devs = read_devices()
    held = {d.disk for d in devs if d.mountpoint}
    boot = live_disk()
    for n in json.loads(r.stdout or "{}").get("blockdevices") or []:
        if n.get("type") not in ("disk", "rom"):
            continue
        path = f"/dev/{n['name']}"
        note = " (the live system's medium)" if path == boot else \
            " (in use: mounted)" if path in held else ""
        size = int(n.get("size") or 0)
        out.append(f"  {path:14s} {size / 2**30:8.1f} GiB  {(n.get('model') or '').strip()[:20]:20s}"
                   f" {(n.get('tran') or '').strip():5s}{note}")
    out.append("network:")
    r = subprocess.run(["ip", "-br", "addr", "show"], capture_output=True, text=True)
    out += [f"  {' '.join(ln.split())}" for ln in r.stdout.splitlines()
            if ln.strip() and not ln.startswith("lo ")]
    vols = []
    for m in media:
        for d in sorted(Path(m).glob("*")) + sorted(Path(m).glob("*/*")):
            if d.is_dir() and any(d.glob("slot*")):
                vols.append(str(d))
    out.append("volumes (vtape directories): " + (", ".join(vols[:4]) or "none found"))
    return out


def find_answers(roots: list[Path], cmdline: str) -> Path | None:
    """amdr.answers=PATH on the kernel command line (absolute, or relative to
    a medium's root), else the first medium's amdr-answers.yaml."""
    want = None
    for w in cmdline.split():
        if w.startswith("amdr.answers="):
            want = w.split("=", 1)[1]
    if want == "none":
        return None
    if want and want.startswith("/"):
        return Path(want) if Path(want).is_file() else None
    for r in roots:
        p = r / (want or ANSWERS_NAME)
        if p.is_file():
            return p
    return None


def read_devices() -> list[Dev]:
    r = subprocess.run(["lsblk", "-J", "-p", "-o", "NAME,TYPE,FSTYPE,LABEL,RM,TRAN,MOUNTPOINT"],
                       capture_output=True, text=True)
    return devices(json.loads(r.stdout or "{}"))


def usb_settled(timeout: float = 10.0) -> list[Dev]:
    """The devices, once every USB mass-storage interface has its disk (a
    stick enumerates seconds after udev has settled)."""
    import glob
    import time
    end = time.monotonic() + timeout
    while True:
        devs = read_devices()
        want = len(glob.glob("/sys/bus/usb/drivers/usb-storage/[0-9]*")
                   + glob.glob("/sys/bus/usb/drivers/uas/[0-9]*"))
        have = len({d.disk for d in devs if d.tran == "usb"})
        if have >= want or time.monotonic() > end:
            return devs
        time.sleep(0.5)
        subprocess.run(["udevadm", "settle", "--timeout=5"], check=False)


def main() -> int:
    devs = usb_settled()
    mounted = mount_all(candidates(devs, live_disk()))
    for d, where in mounted:
        print(f"amanda-dr media: {d.path} ({d.fstype}{', ' + d.label if d.label else ''}) "
              f"on {where}, read-only", flush=True)
    roots = [w for _, w in mounted]
    mount_shares(shares())
    answers = find_answers(roots, Path("/proc/cmdline").read_text())
    ANSWERS_FOUND.parent.mkdir(parents=True, exist_ok=True)
    argv = ["bundles"]
    for m in roots + ([LIVE_MEDIUM] if LIVE_MEDIUM.is_dir() else []):
        argv += ["--media", str(m)]
    ANSWERS_FOUND.unlink(missing_ok=True)
    sftp = False
    if answers:
        from essentials.errors import AmdrError
        from .answers import load
        try:
            sftp = bool(load(answers).get("bundles", "sftp"))
            ANSWERS_FOUND.write_text(str(answers) + "\n")
            print(f"amanda-dr media: answers file {answers}", flush=True)
            argv += ["--answers", str(answers)]
        except AmdrError as e:  # said on the console; nothing runs by itself
            print(f"amanda-dr media: {e}: not used", flush=True)
    from .cli import _site
    try:
        sftp = sftp or bool(_site(None).get("sftp"))
    except Exception as e:  # noqa: BLE001 - a bad site file is said, the media still listed
        print(f"amanda-dr media: {e}", flush=True)
    if sftp:  # the bundles' sftp server needs the network: DHCP takes a moment
        subprocess.run(["/lib/systemd/systemd-networkd-wait-online", "--any", "--timeout=30"],
                       check=False, capture_output=True)
    from .cli import main as cli_main
    sys.stdout.flush()
    rc = cli_main(argv)
    return 0 if rc in (0, 1) else rc
