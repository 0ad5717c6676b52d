"""One drill: a source system's bundle and volumes -> recovery on other hardware -> boot.

The source system (systems.py) was a real Debian 12 booted as itself, backed
up by a real amdump and collected by amdr-essentials.  Here its disks are
gone: blank disks of another size on another bus (virtio -> SATA or NVMe)
and a NIC with another MAC at another PCI slot on another machine type (pc
-> q35) take their place.  `amdr-recover recover` runs in the VM-tier guest
with only the bundle and the volumes (read-only), then the restored disks
alone are booted with the original's firmware (SeaBIOS or OVMF, with the
NVRAM the recovery wrote) and must reach multi-user with every mount, swap,
the hostname and the original static address on the NIC.
"""

from __future__ import annotations

import json
import os
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.vm.guest import DiskSpec, Guest, Nic

from .boot import Booted, boot
from .systems import Source, source_system

OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")
TARGET = "/mnt/target"

# the replacement hardware: disks of another size on another bus, a new NIC
HARDWARE = {
    "a": {"disks": [("sata", 4096)], "mac": "52:54:00:dd:0a:01"},
    "b": {"disks": [("nvme", 4608)], "mac": "52:54:00:dd:0b:01"},
    "c": {"disks": [("sata", 3584), ("sata", 3584)], "mac": "52:54:00:dd:0c:01"},
}
NIC_SLOT = 5  # the original's NIC was at slot 3 of the pc machine (ens3)


@dataclass
class Drill:
    layout: str
    source: Source
    recovery_seconds: float = 0.0     # the guest's run: boot, recover, umount
    phases: dict = field(default_factory=dict)   # diskinit/restore/finalize seconds
    restores: list = field(default_factory=list)  # per DLE, from recover --report
    finalize: dict = field(default_factory=dict)  # finalize's report
    booted: Booted | None = None
    recover_to_boot: float = 0.0      # recover started -> the marker, in seconds
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    disks: list[Path] = field(default_factory=list)

    def explain(self) -> str:
        out = [f"--- recover exit {self.exit_code} ---", self.stdout[-4000:],
               "--- stderr ---", self.stderr[-3000:]]
        if self.booted is not None:
            out.append(self.booted.explain())
        return "\n".join(out)


# the site's recovery key (no passphrase, a test key), copied where gpg may write
# The test guest's init coldplugs only block devices (tests/vm/guest-init.sh);
# a live system's udev would also load the new machine's controller and NIC
# drivers, so load them as it would.
KEYS = """
set -u
modprobe -a ahci nvme virtio_net
udevadm trigger --action=add --subsystem-match=block --subsystem-match=net
udevadm settle --timeout=60
cp -a /drill-keys /root/gnupg && chmod 700 /root/gnupg
"""
KEY_OPTS = "--gnupghome /root/gnupg"


def script(src: Source) -> str:
    """The recovery, as the field engineer would type it (with --yes: no terminal)."""
    bundle = f"/drill/{src.bundle.name}"
    return KEYS + f"""
stamp() {{ echo "AMDR-T $1 $(cut -d' ' -f1 /proc/uptime)"; }}
mkdir -p {TARGET}
stamp start
python3 -m recovery.cli recover --bundle {bundle} {KEY_OPTS} --vtapes /drill-vtapes \\
    --amanda-host {src.amanda_host} --target {TARGET} --yes --report /out/restore.json
rc=$?
stamp recovered
cp {TARGET}.amdr/finalize-report.json /out/ 2>/dev/null
python3 -m recovery.cli umount --target {TARGET} || rc=$((rc ? rc : 9))
stamp end
exit $rc
"""


def _stamps(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("AMDR-T "):
            _, name, t = line.split()
            out[name] = float(t)
    return out


def run(layout: str, guest_image, workdir: Path, boot_timeout: float = 600) -> Drill:
    src = source_system(layout)
    hw = HARDWARE[layout]
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "out"
    out.mkdir(exist_ok=True)
    d = Drill(layout, src)
    disks = []
    for i, (bus, mb) in enumerate(hw["disks"]):
        img = workdir / f"new{i}.img"
        img.unlink(missing_ok=True)
        disks.append(DiskSpec(mb, path=img, serial=f"NEW{layout.upper()}{i}", bus=bus))
        d.disks.append(img)
    vars_file = None
    if src.firmware == "uefi":
        vars_file = workdir / "OVMF_VARS.fd"  # the new machine's NVRAM: empty of entries
        shutil.copy(OVMF_VARS, vars_file)
    # the volumes as the drive gives them: read-only; readable by `backup`,
    # who runs amrestore (the cached files are the backup job's)
    subprocess.run(["chmod", "-R", "a+rX", str(src.vtapes)], check=True)
    guest = Guest(guest_image, disks, mem_mb=1536,
                  shares={"/drill": (src.bundle.parent, "ro"), "/drill-vtapes": (src.vtapes, "ro"),
                          "/drill-keys": (src.gnupghome, "ro"), "/out": out},
                  firmware=src.firmware, ovmf_vars=vars_file,
                  nic=Nic(mac=hw["mac"], addr=NIC_SLOT))
    t0 = time.monotonic()
    r = guest.run(script(src), timeout=1800, keep_dir=workdir / "recovery")
    d.recovery_seconds = time.monotonic() - t0
    d.stdout, d.stderr, d.exit_code = r.stdout, r.stderr, r.exit_code
    st = _stamps(r.stdout)
    if (out / "restore.json").exists():
        d.restores = json.loads((out / "restore.json").read_text()).get("restored") or []
    if (out / "finalize-report.json").exists():
        d.finalize = json.loads((out / "finalize-report.json").read_text())
    if "start" in st and "recovered" in st:
        total = st["recovered"] - st["start"]
        restore_s = sum(x.get("seconds", 0) for x in d.restores)
        fin_s = d.finalize.get("seconds", 0)
        d.phases = {"recover": round(total, 1), "restore": round(restore_s, 1),
                    "finalize": round(fin_s, 1),
                    "diskinit": round(max(0.0, total - restore_s - fin_s), 1)}
    if r.exit_code != 0:
        return d
    after_recover = time.monotonic()
    d.booted = boot([(p, bus) for p, (bus, _) in zip(d.disks, hw["disks"])],
                    firmware=src.firmware, ovmf_vars=vars_file, mac=hw["mac"],
                    machine="q35", nic_addr=NIC_SLOT, timeout=boot_timeout)
    # from "recover started" (in the guest) to the marker: the recovery's own
    # time plus the restored system's boot; the guest's boot is not counted
    recover_part = d.phases.get("recover", 0.0) + (st.get("end", 0) - st.get("recovered", 0))
    d.recover_to_boot = round(recover_part + (time.monotonic() - after_recover
                                              if d.booted.seconds is None
                                              else d.booted.seconds), 1)
    return d


def check(d: Drill) -> list[str]:
    """What is wrong with the booted system (empty: it is the original, here)."""
    src, b = d.source, d.booted
    if d.exit_code != 0:
        return [f"recover exited {d.exit_code}"]
    if b is None or not b.ok:
        return ["the restored disks did not boot to the marker"]
    bad = []
    if not b.complete:
        bad.append("the marker stops after AMDR-BOOT-OK (no AMDR-BOOT-END): its lines were lost")
    if b.host != src.host:
        bad.append(f"hostname {b.host}, expected {src.host}")
    active = {m.get("target") for m in b.mounts}
    for mp in src.mounts:
        if mp not in active:
            bad.append(f"{mp} is not mounted (mounted: {sorted(active)})")
    if src.swap and not b.swaps:
        bad.append("no swap is on")
    nic = [n for n in b.net if n.get("addr") == src.address and n.get("dev") == "ens3"]
    if not nic:
        bad.append(f"no NIC has {src.address}: {b.net}")
    elif str(nic[0].get("mac", "")).lower() != HARDWARE[d.layout]["mac"]:
        bad.append(f"{src.address} is on {nic[0]}, not the new NIC {HARDWARE[d.layout]['mac']}")
    if b.failed_units:
        bad.append(f"failed units: {b.failed_units}")
    return bad


def build_seconds(manifest: dict) -> float:
    """Seconds to build the source system when it was built (cached since,
    maybe): its tree (shared by a and c), its disks, its first boot with the backup."""
    m = {k: v.get("seconds") or {} for k, v in manifest.items() if isinstance(v, dict)}
    return (sum(m.get("tree", {}).values()) + m.get("disks", {}).get("guest_total", 0)
            + m.get("backup", {}).get("qemu_total", 0))


def row(d: Drill) -> str:
    b = d.booted
    dles = " ".join(f"{x['disk']}={x['seconds']:.0f}s" for x in d.restores)
    return (f"{d.layout:6s} {d.source.host:8s} {build_seconds(d.source.manifest):7.0f} "
            f"{d.phases.get('diskinit', 0):8.0f} {dles:28s} {d.phases.get('finalize', 0):8.0f} "
            f"{(b.seconds if b and b.seconds is not None else float('nan')):6.0f} "
            f"{d.recover_to_boot:8.0f}  {'booted' if not check(d) else 'FAILED'}")


HEADER = (f"{'layout':6s} {'host':8s} {'build_s':>7s} {'diskinit':>8s} {'restore per DLE':28s} "
          f"{'finalize':>8s} {'boot_s':>6s} {'total_s':>8s}  result")


def changes(d: Drill) -> list[str]:
    return list(d.finalize.get("changes") or [])


def workdir_for(layout: str) -> Path:
    base = Path(os.environ.get("AMDR_DRILL_WORK", "/var/tmp/amdr-drill"))
    return base / layout


@dataclass
class Fallback:
    """A UEFI system finalized where there are no EFI variables, booted by the fallback path."""

    exit_code: int
    stdout: str
    stderr: str
    report: dict
    booted: Booted | None

    def explain(self) -> str:
        return "\n".join([f"--- finalize exit {self.exit_code} ---", self.stdout[-4000:],
                          "--- stderr ---", self.stderr[-3000:]]
                         + ([self.booted.explain()] if self.booted else []))


def fallback(d: Drill, guest_image, workdir: Path, boot_timeout: float = 600) -> Fallback:
    """The second try, where the firmware cannot be told: `mount` then `finalize
    --restart` in a guest booted without UEFI (no /sys/firmware/efi), then the
    disks booted on a machine whose NVRAM has no entry for them."""
    src, hw = d.source, HARDWARE[d.layout]
    out = workdir / "fallback-out"
    out.mkdir(parents=True, exist_ok=True)
    bundle = f"/drill/{src.bundle.name}"
    cmd = KEYS + f"""
mkdir -p {TARGET}
python3 -m recovery.cli mount --bundle {bundle} {KEY_OPTS} --target {TARGET} || exit 7
python3 -m recovery.cli finalize --bundle {bundle} {KEY_OPTS} --target {TARGET} --restart
rc=$?
cp {TARGET}.amdr/finalize-report.json /out/ 2>/dev/null
python3 -m recovery.cli umount --target {TARGET} || rc=$((rc ? rc : 9))
exit $rc
"""
    disks = [DiskSpec(path=p, bus=bus) for p, (bus, _) in zip(d.disks, hw["disks"])]
    r = Guest(guest_image, disks, mem_mb=1536, shares={"/drill": (src.bundle.parent, "ro"),
                                                        "/drill-keys": (src.gnupghome, "ro"),
                                                        "/out": out},
              nic=Nic(mac=hw["mac"], addr=NIC_SLOT)).run(cmd, timeout=1200,
                                                          keep_dir=workdir / "fallback")
    report = {}
    if (out / "finalize-report.json").exists():
        report = json.loads((out / "finalize-report.json").read_text())
    booted = None
    if r.exit_code == 0:
        fresh = workdir / "OVMF_VARS.fresh.fd"  # another machine: no entry for this disk
        shutil.copy(OVMF_VARS, fresh)
        booted = boot([(p, bus) for p, (bus, _) in zip(d.disks, hw["disks"])],
                      firmware="uefi", ovmf_vars=fresh, mac=hw["mac"], machine="q35",
                      nic_addr=NIC_SLOT, timeout=boot_timeout)
    return Fallback(r.exit_code, r.stdout, r.stderr, report, booted)


@dataclass
class DrillSet:
    drills: dict[str, Drill]
    fallback: Fallback | None = None
    errors: dict[str, str] = field(default_factory=dict)  # layout -> traceback of a crash


def run_all(layouts: list[str], guest_image, jobs: int = 1,
            with_fallback: bool = False) -> DrillSet:
    """Every layout's drill, `jobs` at a time (each guest is one qemu, mostly
    one busy vCPU under TCG: two at a time use this 2-core host's both cores).
    With `with_fallback`, layout b's UEFI fallback follows b in b's worker.
    Each drill has its own workdir, disks, NVRAM and user-mode network; a
    drill that crashes is recorded in `errors` and the others go on."""
    out = DrillSet({})
    lock = threading.Lock()

    def one(layout):
        try:
            d = run(layout, guest_image, workdir_for(layout))
            with lock:
                out.drills[layout] = d
            if with_fallback and layout == "b" and not check(d):
                f = fallback(d, guest_image, workdir_for("b"))
                with lock:
                    out.fallback = f
        except Exception:  # noqa: BLE001 - reported per layout, the rest go on
            with lock:
                out.errors[layout] = traceback.format_exc()

    # the longest chain first (b and its fallback), so the workers end together
    order = sorted(layouts, key=lambda x: (x != "b" or not with_fallback, x))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for f in [pool.submit(one, x) for x in order]:
            f.result()
    out.drills = {x: out.drills[x] for x in layouts if x in out.drills}
    return out


def jobs_default() -> int:
    """AMDR_DRILL_JOBS, else 2 where the host has two cores or more."""
    env = os.environ.get("AMDR_DRILL_JOBS")
    if env:
        return max(1, int(env))
    return 2 if (os.cpu_count() or 1) >= 2 else 1
