"""Boot a drill system from its own disks (its own boot loader and firmware) and read its marker.

The system's `amdr-boot-marker` unit (tests/drill/files/) prints, once
multi-user.target is reached, `AMDR-*` lines on ttyS0 and powers off:

    AMDR-BOOT-OK host=drill-a root=/dev/vda2
    AMDR-SWAP dev=/dev/vda4 size=511M uuid=...        (or: AMDR-SWAP none)
    AMDR-MOUNT target=/ source=/dev/vda2 fstype=ext4 uuid=...
    AMDR-NET dev=ens3 addr=10.0.2.15/24 mac=52:54:00:...
    AMDR-LINK dev=ens3 mac=52:54:00:... state=up
    AMDR-STATE system=running failed=
    AMDR-UPTIME 26.09
    AMDR-KERNEL 6.1.0-50-amd64 cmdline=BOOT_IMAGE=... root=UUID=... ro console=...
    AMDR-BOOT-END

`parse_markers` turns a console into data (pure); `boot` runs qemu (one at a
time on this 2-core host), waits for AMDR-BOOT-OK, gives the system `grace`
seconds to power itself off, and returns a `Booted`.  The disks are attached
with snapshot=on unless `writable=True`, and an OVMF vars file is always
copied first, so cached images are never changed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.vm.qemu import DiskSpec, Firmware, Machine, Nic, Share, qemu_argv

MARK = re.compile(r"AMDR-([A-Z]+(?:-[A-Z]+)*)(?: (.*))?$")
# where a boot ends without ever reaching the marker: no need to wait for the timeout
DEAD_ENDS = (
    ("(initramfs) ", "dropped to the initramfs shell"),
    ("Kernel panic - not syncing", "kernel panic"),
    ("grub rescue>", "GRUB rescue prompt"),
    ("No bootable device", "the firmware found no bootable disk"),
    ("BdsDxe: No bootable option", "the firmware found no bootable option"),
)
_KV = re.compile(r"(\w+)=(\S*)")
TAIL = 4000


def parse_markers(console: str) -> dict:
    """The AMDR-* lines of a console as data (the last boot's, if it booted twice)."""
    out = {"ok": False, "complete": False, "host": None, "root": None, "mounts": [],
           "swaps": [], "net": [], "links": [], "state": None, "failed_units": [],
           "uptime": None, "kernel": None, "cmdline": None, "job_exit": None}
    for raw in console.splitlines():
        i = raw.find("AMDR-")
        if i < 0:
            continue
        m = MARK.match(raw[i:].rstrip())
        if not m:
            continue
        kind, rest = m.group(1), m.group(2) or ""
        kv = dict(_KV.findall(rest))
        if kind == "BOOT-OK":  # a second boot starts the account afresh
            out.update({"ok": True, "complete": False, "mounts": [], "swaps": [], "net": [],
                        "links": [], "host": kv.get("host"), "root": kv.get("root")})
        elif kind == "BOOT-END":
            out["complete"] = True
        elif kind == "MOUNT":
            out["mounts"].append(kv)
        elif kind == "SWAP":
            if rest.strip() != "none":
                out["swaps"].append(kv)
        elif kind == "NET":
            out["net"].append(kv)
        elif kind == "LINK":
            out["links"].append(kv)
        elif kind == "STATE":
            out["state"] = kv.get("system")
            out["failed_units"] = [u for u in kv.get("failed", "").split(",") if u]
        elif kind == "UPTIME":
            out["uptime"] = float(rest.split()[0]) if rest.split() else None
        elif kind == "KERNEL":
            ver, _, cmd = rest.partition(" cmdline=")
            out["kernel"], out["cmdline"] = ver.strip() or None, cmd.strip() or None
        elif kind == "JOB":
            out["job_exit"] = int(kv["exit"]) if kv.get("exit", "").lstrip("-").isdigit() else None
    return out


WAIT_ROOT = "Waiting for root file system"
ROOT_FOUND = "/scripts/local-bottom"  # initramfs-tools: the root was found and mounted


def dead_end(console: str) -> str | None:
    """Why a console shows a boot that will never reach the marker, or None."""
    for needle, why in DEAD_ENDS:
        if needle in console:
            return why
    return None


def alerts(console: str) -> list[str]:
    """The initramfs's ALERT! lines (what it waited for and did not find)."""
    return [ln[ln.find("ALERT!"):].strip() for ln in console.splitlines() if "ALERT!" in ln]


@dataclass
class Booted:
    ok: bool  # AMDR-BOOT-OK seen
    seconds: float | None  # qemu's start to the marker
    host: str | None = None
    root: str | None = None
    mounts: list[dict] = field(default_factory=list)
    swaps: list[dict] = field(default_factory=list)
    net: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    failed_units: list[str] = field(default_factory=list)
    state: str | None = None
    complete: bool = False  # AMDR-BOOT-END seen
    kernel: str | None = None
    cmdline: str | None = None
    job_exit: int | None = None
    console: str = ""
    qemu_seconds: float = 0.0  # qemu's start to its exit
    powered_off: bool = False  # the system powered itself off (else: killed)
    argv: list[str] = field(default_factory=list)
    qemu_stderr: str = ""
    stuck: str | None = None  # a dead end seen on the console (the boot was stopped there)

    @property
    def mountpoints(self) -> list[str]:
        return [m.get("target") for m in self.mounts]

    def explain(self) -> str:
        """A readable account for assertion messages."""
        if not self.ok:
            head = "NO BOOT: AMDR-BOOT-OK never appeared" + (f" ({self.stuck})" if self.stuck else "")
        else:
            head = f"booted in {self.seconds:.1f} s: host={self.host} root={self.root}"
        mounts = ", ".join("{}={}({})".format(m.get("target"), m.get("source"), m.get("fstype"))
                           for m in self.mounts) or "-"
        swaps = ", ".join(s.get("dev", "?") for s in self.swaps) or "-"
        net = ", ".join("{} {} {}".format(n.get("dev"), n.get("addr"), n.get("mac"))
                        for n in self.net) or "-"
        links = ", ".join("{}:{}".format(n.get("dev"), n.get("state")) for n in self.links) or "-"
        failed = ", ".join(self.failed_units) or "-"
        lines = [head, f"  mounts: {mounts}", f"  swaps: {swaps}", f"  net: {net} (links: {links})",
                 f"  state: {self.state} failed: {failed}"
                 f" complete={self.complete} powered_off={self.powered_off}",
                 f"  kernel: {self.kernel} cmdline: {self.cmdline}"]
        if self.qemu_stderr.strip():
            lines.append(f"  qemu: {self.qemu_stderr.strip()[-500:]}")
        marks = [ln[ln.find("AMDR-"):].rstrip() for ln in self.console.splitlines()
                 if "AMDR-" in ln]
        lines.append("--- AMDR lines of the whole console ---")
        lines.extend(marks or ["(none)"])
        lines.append(f"--- console (tail) ---\n{self.console[-TAIL:]}")
        return "\n".join(lines)


def boot(disks: list[tuple[Path, str]], *, firmware: str, ovmf_vars: Path | None, mac: str,
         machine: str = "q35", nic_addr: int | None = 5, timeout: float = 600,
         shares: list[Share] = (), writable: bool = False, serials: list[str] | None = None,
         grace: float = 60, mem_mb: int = 1024, nic_model: str = "virtio-net-pci",
         keep_dir: Path | None = None, root_wait: float | None = None) -> Booted:
    """Boot `disks` [(image, bus)] on `machine` and wait (up to `timeout` s) for the marker.

    The first disk is the one the firmware boots.  `firmware` is "bios" or
    "uefi" (then `ovmf_vars`, copied before use); the NIC (`mac`, PCI slot
    `nic_addr`) is on qemu's user network.  `shares` are 9p shares for the
    system (the drill's first boot uses the tag `drilljob`).  With `root_wait`,
    an initramfs that has waited that many seconds for the root filesystem
    is taken as stuck (Debian's waits 180 s before its shell)."""
    if firmware not in ("bios", "uefi"):
        raise ValueError(f"firmware {firmware!r}: bios or uefi")
    if keep_dir is not None:
        Path(keep_dir).mkdir(parents=True, exist_ok=True)
        return _boot(Path(keep_dir), disks, firmware, ovmf_vars, mac, machine, nic_addr, timeout,
                     shares, writable, serials, grace, mem_mb, nic_model, root_wait)
    with tempfile.TemporaryDirectory(prefix="amdr-boot-") as tmp:
        return _boot(Path(tmp), disks, firmware, ovmf_vars, mac, machine, nic_addr, timeout,
                     shares, writable, serials, grace, mem_mb, nic_model, root_wait)


def _boot(rundir, disks, firmware, ovmf_vars, mac, machine, nic_addr, timeout, shares, writable,
          serials, grace, mem_mb, nic_model, root_wait=None) -> Booted:
    fw = None
    if firmware == "uefi":
        if ovmf_vars is None:
            raise ValueError("firmware='uefi' needs ovmf_vars")
        vars_copy = rundir / "OVMF_VARS.fd"
        shutil.copyfile(ovmf_vars, vars_copy)
        fw = Firmware(vars_copy)
    specs = []
    for i, (path, bus) in enumerate(disks):
        serial = serials[i] if serials and i < len(serials) else None
        specs.append((Path(path), DiskSpec(path=Path(path), bus=bus, serial=serial,
                                           snapshot=not writable)))
    console = rundir / "console.log"
    argv = qemu_argv(disks=specs, console=console, mem_mb=mem_mb, machine=machine,
                     shares=list(shares), nic=Nic(mac=mac, addr=nic_addr, model=nic_model),
                     firmware=fw)
    machine_ = Machine(argv, console, rundir / "qemu.stderr")
    seen_at = None
    powered_off = False
    stuck = None
    waiting_since = None
    with machine_:
        while True:
            status = machine_.poll()
            text = machine_.console_text()
            if seen_at is None and "AMDR-BOOT-OK" in text:
                seen_at = machine_.seconds
            if seen_at is None and (stuck := dead_end(text)):
                time.sleep(2)  # the rest of the message reaches the console
                break
            if root_wait is not None and seen_at is None:
                if waiting_since is None and WAIT_ROOT in text:
                    waiting_since = machine_.seconds
                if (waiting_since is not None and ROOT_FOUND not in text
                        and machine_.seconds - waiting_since > root_wait):
                    stuck = f"the initramfs waited {root_wait:.0f} s for the root filesystem"
                    break
            if status is not None:
                powered_off = seen_at is not None
                break
            if seen_at is None and machine_.seconds > timeout:
                break
            if seen_at is not None and machine_.seconds - seen_at > grace:
                break
            time.sleep(0.5)
        qemu_seconds = machine_.seconds
    text = machine_.console_text()
    facts = parse_markers(text)
    return Booted(ok=facts["ok"], seconds=None if seen_at is None else round(seen_at, 1),
                  host=facts["host"], root=facts["root"], mounts=facts["mounts"],
                  swaps=facts["swaps"], net=facts["net"], links=facts["links"],
                  failed_units=facts["failed_units"], state=facts["state"],
                  complete=facts["complete"], kernel=facts["kernel"], cmdline=facts["cmdline"],
                  job_exit=facts["job_exit"], console=text, qemu_seconds=round(qemu_seconds, 1),
                  powered_off=powered_off, argv=argv, qemu_stderr=machine_.qemu_stderr(),
                  stuck=stuck)
