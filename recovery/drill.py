"""The site's own drill (seed 000, "Testing the kit"): `amdr-recover drill`.

On any Linux machine with qemu (the office's), with a host's bundle, its
volumes and the recovery key: make blank sparse disks of the original
sizes, boot the live ISO with them, a small medium (the bundle, the key, an
answers file) and the volumes (a read-only shared folder), let the live
system recover unattended and power off, then boot the restored disks alone
with the original's firmware and NIC address, and read what the restored
system says about itself.  The report (text, HTML, JSON) says passed or
failed, each step's seconds and what finalize changed: the evidence a site
needs that its kit works, before the day it is needed.

The restored disks are a throw-away copy: the drill adds one unit to it,
`amdr-drill-check.service`, which prints the system's state on the serial
line once multi-user.target is reached and powers it off.  The medium holds
the recovery key: it lives in the drill's private work directory (0700) and
is deleted when the drill ends (`--keep` keeps the work directory).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from essentials.errors import AmdrError, ConfigError

QEMU = "qemu-system-x86_64"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS.fd")
VTAPES_TAG = "amdr-vtapes"  # the live system mounts 9p shares tagged amdr-* (live.py)
CHECK_UNIT = "amdr-drill-check.service"
CHECK_SCRIPT = "/usr/local/sbin/amdr-drill-check"
MARK = "AMDR-DRILL"

# -- inside the restored system ---------------------------------------------------

_SCRIPT = r"""#!/bin/sh
# amanda-dr drill: what this restored system says about itself, on the serial
# line, once its boot has finished; then power off.  Added by the drill to
# its throw-away copy of the restored disks (amdr-recover drill).
# only on the drill's own machine (qemu started with this serial number):
# anywhere else, this copy of the unit removes itself and does nothing
if [ "$(cat /sys/class/dmi/id/product_serial 2>/dev/null)" != "AMDR-DRILL" ]; then
  systemctl disable amdr-drill-check.service 2>/dev/null
  rm -f /etc/systemd/system/amdr-drill-check.service /usr/local/sbin/amdr-drill-check
  exit 0
fi
out=/dev/ttyS0
[ -w "$out" ] || out=/dev/console
reached=$(cut -d' ' -f1 /proc/uptime)   # multi-user.target was reached just now
# the rest of the boot (not --wait: it would wait through a shutdown too)
i=0
while :; do
  state=$(systemctl is-system-running 2>/dev/null)
  case "$state" in initializing|starting) ;; *) break ;; esac
  [ $i -ge 120 ] && break
  sleep 1; i=$((i + 1))
done
i=0   # a DHCP or hot-plugged link may take a moment more
while [ $i -lt 30 ] && [ "$state" != stopping ] \
    && [ -z "$(ip -4 -o addr show scope global 2>/dev/null)" ]; do
  sleep 1; i=$((i + 1)); state=$(systemctl is-system-running 2>/dev/null)
done
{
  echo "AMDR-DRILL-BEGIN host=$(hostname) multiuser=$reached uptime=$(cut -d' ' -f1 /proc/uptime)"
  findmnt -rn -o TARGET,SOURCE,FSTYPE | while read -r t s f; do
    case "$f" in proc|sysfs|devtmpfs|devpts|tmpfs|cgroup*|securityfs|pstore|bpf|mqueue|\
      hugetlbfs|debugfs|tracefs|configfs|fusectl|autofs|efivarfs|binfmt_misc|ramfs|rpc_pipefs)
        continue ;;
    esac
    echo "AMDR-DRILL mount $t $s $f"
  done
  swapon --noheadings --raw --show=NAME 2>/dev/null | while read -r n; do
    echo "AMDR-DRILL swap $n"
  done
  ip -4 -o addr show scope global 2>/dev/null | while read -r _ dev _ addr _; do
    echo "AMDR-DRILL addr $dev $addr $(cat /sys/class/net/$dev/address 2>/dev/null)"
  done
  echo "AMDR-DRILL state $state failed=$(systemctl --failed --no-legend --plain 2>/dev/null \
    | awk '{printf "%s,", $1}')"
  echo "AMDR-DRILL-END"
} > "$out" 2>&1
# wait until the UART has sent it all (tcsetattr TCSADRAIN), then power off
stty -F "$out" "$(stty -F "$out" -g)" 2>/dev/null || true
sleep 1
systemctl --no-block poweroff
"""

_UNIT = f"""[Unit]
Description=amanda-dr drill: report this restored system's state, then power off
After=multi-user.target

[Service]
# simple, not oneshot: the boot finishes without waiting for this, which
# waits for the boot to finish (systemctl is-system-running)
Type=simple
ExecStart={CHECK_SCRIPT}
# another unit's power-off must not cut the report short
KillSignal=SIGCONT
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
"""


def install_check(target: str) -> list[str]:
    """The drill's check unit into the restored system under `target`."""
    t = Path(target)
    script = t / CHECK_SCRIPT.lstrip("/")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(_SCRIPT)
    script.chmod(0o755)
    unit = t / "etc/systemd/system" / CHECK_UNIT
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(_UNIT)
    wants = t / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / CHECK_UNIT
    link.unlink(missing_ok=True)
    link.symlink_to(f"/etc/systemd/system/{CHECK_UNIT}")
    return [CHECK_SCRIPT, f"/etc/systemd/system/{CHECK_UNIT}"]


def parse_check(console: str) -> dict | None:
    """The check's lines (the last boot's), or None when they never came."""
    out = None
    for raw in console.splitlines():
        i = raw.find(MARK)
        if i < 0:
            continue
        line = raw[i:].strip()
        if line.startswith(MARK + "-BEGIN"):
            kv = dict(re.findall(r"(\w+)=(\S*)", line))
            out = {"host": kv.get("host"), "uptime": float(kv.get("uptime") or 0),
                   "multiuser": float(kv.get("multiuser") or kv.get("uptime") or 0),
                   "mounts": [], "swaps": [], "addrs": [], "state": None, "failed": [],
                   "complete": False}
        elif out is None:
            continue
        elif line.startswith(MARK + "-END"):
            out["complete"] = True
        else:
            f = line.split()[1:]
            if f[:1] == ["mount"] and len(f) >= 4:
                out["mounts"].append({"target": f[1], "source": f[2], "fstype": f[3]})
            elif f[:1] == ["swap"] and len(f) >= 2:
                out["swaps"].append(f[1])
            elif f[:1] == ["addr"] and len(f) >= 3:
                out["addrs"].append({"dev": f[1], "addr": f[2],
                                     "mac": f[3] if len(f) > 3 else ""})
            elif f[:1] == ["state"]:
                out["state"] = f[1] if len(f) > 1 and not f[1].startswith("failed=") else ""
                m = re.search(r"failed=(\S*)", line)
                out["failed"] = [u for u in (m.group(1) if m else "").split(",") if u]
    return out


# -- what the drill needs from the bundle -----------------------------------------

@dataclass
class Machine:
    host: str  # the name the restored system gives itself (its hostname)
    firmware: str  # bios | uefi
    disks: list[tuple[int, str]]  # (bytes, serial) in the layout's order
    mac: str | None
    mounts: list[str]  # the mountpoints fstab mounts at boot
    swap: bool
    addresses: list[str]  # the static addresses (ADDR/PREFIX) the host had
    bundle_host: str = ""  # the bundle's host: what `confirm:` must say


def machine_of(bundle) -> Machine:
    layout = bundle.load_yaml("layout.yaml")
    disks = []
    for i, d in enumerate(layout.get("disks") or []):
        serial = re.sub(r"[^A-Za-z0-9._-]", "", str(d.get("serial") or f"AMDRDRILL{i}"))[:20]
        disks.append((int(d["size"]), serial))
    mounts, swap = [], False
    for e in layout.get("fstab") or []:
        opts = str(e.get("options") or "").split(",")
        if e.get("vfstype") == "swap":
            swap = swap or "noauto" not in opts
        elif str(e.get("file", "")).startswith("/") and "noauto" not in opts:
            mounts.append(e["file"])
    net = {}
    try:
        net = bundle.load_yaml("network/network.yaml") or {}
    except (AmdrError, OSError):
        pass
    mac, addrs = None, []
    for nic in net.get("interfaces") or []:
        if not nic.get("physical"):
            continue
        mac = mac or nic.get("mac")
        addrs += [f"{a['address']}/{a['prefix']}" for a in nic.get("addresses") or []
                  if a.get("family") == "inet"]
    firmware = (layout.get("boot") or {}).get("firmware") or "bios"
    return Machine(net.get("hostname") or bundle.host, firmware, disks, mac, mounts, swap,
                   addrs, bundle.host)


# -- the medium and the answers ---------------------------------------------------

def answers_for(m: Machine, bundle_name: str, catalog: list[str], has_pass: bool,
                signers: list[str] | None) -> dict:
    unlock = {"gnupghome": "keys"}
    if has_pass:
        unlock["passphrase-file"] = "keys.pass"
    if signers:
        unlock["signers"] = list(signers)
    plan = {"vtapes": f"/media/{VTAPES_TAG}"}
    if catalog:
        plan["catalog-bundle"] = [f"bundles/{c}" for c in catalog]
    return {"welcome": {"network": "original"},  # the host's own address, as on the day
            "bundles": {"media": ["bundles"]},
            "host": {"bundle": f"bundles/{bundle_name}"},
            "unlock": unlock,
            "plan": plan,
            "confirm": m.bundle_host or m.host,
            "run": {"drill": True},
            "summary": {"report": "reports", "then": "poweroff", "on-failure": "poweroff"}}


def make_medium(work: Path, bundle: Path, catalog: list[Path], gnupghome: str,
                passphrase_file: str | None, answers: dict) -> Path:
    """An ext4 image labelled AMDR holding the bundle(s), the key and the answers."""
    stage = work / "medium"
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "bundles").mkdir(parents=True)
    for b in [bundle] + list(catalog):
        if b.is_dir():
            shutil.copytree(b, stage / "bundles" / b.name)
        else:
            shutil.copy(b, stage / "bundles" / b.name)
    shutil.copytree(gnupghome, stage / "keys", symlinks=True,
                    ignore=shutil.ignore_patterns("S.*", "*.lock", ".#*", "random_seed"))
    os.chmod(stage / "keys", 0o700)
    if passphrase_file:
        shutil.copy(passphrase_file, stage / "keys.pass")
        os.chmod(stage / "keys.pass", 0o600)
    (stage / "amdr-answers.yaml").write_text(yaml.safe_dump(answers, sort_keys=False))
    (stage / "reports").mkdir()
    used = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file())
    size_mb = max(64, used * 2 // (1 << 20) + 32)
    img = work / "medium.img"
    r = subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "AMDR", "-d", str(stage),
                        str(img), f"{size_mb}M"], capture_output=True, text=True)
    shutil.rmtree(stage)  # the key's copy: only in the image from here on
    if r.returncode != 0:
        raise AmdrError(f"could not make the drill's medium: {r.stderr.strip()}")
    return img


def read_medium(img: Path, path: str) -> bytes | None:
    """A file of the medium's ext4, read without mounting it (debugfs)."""
    r = subprocess.run(["debugfs", "-R", f"cat {path}", str(img)], capture_output=True)
    if r.returncode != 0 or not r.stdout:
        return None
    return r.stdout


# -- qemu -------------------------------------------------------------------------

def kvm_runs(iso: Path, work: Path, timeout: float = 30) -> tuple[bool, str]:
    """Whether KVM runs a kernel here: the ISO's kernel, booted with no root,
    must panic (and qemu end) in `timeout` s.  /dev/kvm alone says too little:
    on some hosts (nested, restricted CPUs) a KVM guest hangs in the kernel."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "no usable /dev/kvm"
    kernel = work / "probe-vmlinuz"
    r = subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract",
                        "/live/vmlinuz", str(kernel)], capture_output=True, text=True)
    if r.returncode != 0:
        return False, f"could not read the kernel from {iso.name}"
    out = work / "probe-console.txt"
    try:
        p = subprocess.run([QEMU, "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-m", "256",
                            "-display", "none", "-monitor", "none", "-no-reboot",
                            "-serial", f"file:{out}", "-kernel", str(kernel),
                            "-append", "console=ttyS0 panic=-1"],
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        ok = p.returncode == 0 and "Kernel panic" in out.read_text(errors="replace")
        return ok, "" if ok else "a KVM guest did not run its kernel"
    except subprocess.TimeoutExpired:
        return False, f"a KVM guest hung (no kernel panic in {timeout:.0f} s)"
    finally:
        kernel.unlink(missing_ok=True)
        out.unlink(missing_ok=True)


def qemu_argv(*, console: Path, disks: list[tuple[Path, str]], firmware: str,
              vars_file: Path | None, mac: str | None, mem_mb: int, iso: Path | None = None,
              medium: Path | None = None, vtapes: Path | None = None,
              accel: str = "tcg") -> list[str]:
    a = [QEMU, "-accel", accel] + (["-cpu", "host"] if accel == "kvm" else []) + [
         "-machine", "q35", "-m", str(mem_mb), "-smp", "2",
         # the drill's check unit acts on this machine only (see _SCRIPT)
         "-smbios", "type=1,serial=AMDR-DRILL",
         "-display", "none", "-monitor", "none", "-no-reboot",
         "-serial", f"file:{console}"]
    if firmware == "uefi":
        a += ["-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
              "-drive", f"if=pflash,format=raw,file={vars_file}"]
    nic = "virtio-net-pci" + (f",mac={mac}" if mac else "")
    a += ["-netdev", "user,id=n0", "-device", f"{nic},netdev=n0"]
    boot = 0
    if iso is not None:
        a += ["-drive", f"if=none,id=cd,media=cdrom,readonly=on,file={iso}",
              "-device", f"ide-cd,bus=ide.2,drive=cd,bootindex={boot}"]
        boot += 1
    for i, (img, serial) in enumerate(disks):
        a += ["-drive", f"if=none,id=d{i},format=raw,file={img},cache=unsafe",
              "-device", f"virtio-blk-pci,drive=d{i},serial={serial},bootindex={boot + i}"]
    if medium is not None:
        a += ["-drive", f"if=none,id=medium,format=raw,file={medium}",
              "-device", "virtio-blk-pci,drive=medium,serial=AMDR-MEDIUM"]
    if vtapes is not None:
        a += ["-virtfs", f"local,path={vtapes},mount_tag={VTAPES_TAG},security_model=none,"
                         f"readonly=on"]
    return a


def run_qemu(argv: list[str], console: Path, timeout: float, until: str | None = None,
             progress=None) -> tuple[float, bool]:
    """Run until qemu exits (the guest powered off) or `until` shows on the
    console and the guest had 60 s more to power off; (seconds, ended in time)."""
    err = open(console.with_suffix(".qemu.err"), "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                         start_new_session=True)
    t0 = time.monotonic()
    seen_at = None
    last = ""
    try:
        while p.poll() is None:
            now = time.monotonic() - t0
            if now > timeout or (seen_at is not None and now - seen_at > 60):
                return now, seen_at is not None
            text = console.read_text(errors="replace") if console.exists() else ""
            if until and seen_at is None and until in text:
                seen_at = now
            if progress:
                text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
                lines = [ln.strip() for ln in text.splitlines() if ln.startswith("answers: ")
                         or ln.startswith("amanda-dr")]
                if lines and lines[-1] != last:
                    last = lines[-1]
                    progress(f"[{now:5.0f} s] {last.strip()}")
            time.sleep(1)
        return time.monotonic() - t0, True
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        err.close()


# -- the drill --------------------------------------------------------------------

@dataclass
class Result:
    host: str
    firmware: str
    passed: bool = False
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    steps: dict = field(default_factory=dict)  # step -> seconds
    restores: list = field(default_factory=list)
    finalize_changes: list = field(default_factory=list)
    booted: dict | None = None
    recover_exit: int | None = None
    workdir: str = ""
    accel: str = ""
    iso: str = ""
    started: str = ""

    def to_json(self) -> dict:
        return self.__dict__


def check(m: Machine, booted: dict | None) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the restored system's own account."""
    if booted is None:
        return ["the restored disks did not boot to multi-user (no report on the serial "
                "line)"], []
    bad, warn = [], []
    if not booted["complete"]:
        bad.append("the restored system's report was cut short")
    if booted["host"] != m.host:
        bad.append(f"the restored system calls itself {booted['host']}, not {m.host}")
    mounted = {x["target"] for x in booted["mounts"]}
    for mp in m.mounts:
        if mp not in mounted:
            bad.append(f"{mp} is not mounted")
    if m.swap and not booted["swaps"]:
        bad.append("no swap is on")
    have = {a["addr"] for a in booted["addrs"]}
    for a in m.addresses:
        if a not in have:
            warn.append(f"the original address {a} is not configured (found: "
                        f"{', '.join(sorted(have)) or 'none'})")
    if booted["failed"]:
        warn.append(f"failed units: {', '.join(booted['failed'])}")
    return bad, warn


def run(bundle_path: Path, vtapes: Path, iso: Path, *, gnupghome: str,
        passphrase_file: str | None = None, signers: list[str] | None = None,
        catalog: list[Path] = (), workdir: Path | None = None, mem_mb: int = 2048,
        timeout: float = 3600, keep: bool = False, accel: str = "auto",
        say=print) -> Result:
    from .bundles import gnupghome as resolve_home
    from .bundles import open_any
    gnupghome = resolve_home(gnupghome)
    b = open_any(bundle_path, home=gnupghome, passphrase_file=passphrase_file,
                 signers=signers, interactive=False)
    m = machine_of(b)
    res = Result(m.host, m.firmware, iso=str(iso), started=time.strftime("%Y-%m-%d %H:%M:%S"))
    if shutil.which(QEMU) is None:
        raise ConfigError(f"{QEMU} is not installed: apt install qemu-system-x86")
    if m.firmware == "uefi" and not (OVMF_CODE.exists() and OVMF_VARS.exists()):
        raise ConfigError(f"{m.host} boots UEFI: its drill needs OVMF (apt install ovmf)")
    if not m.disks:
        raise ConfigError(f"the bundle of {m.host} describes no disk")
    from essentials import doctor
    doctor.require({t: ["the drill"] for t in ("xorriso", "mke2fs", "debugfs")}, "the drill")
    # always a new directory of the drill's own (inside --workdir when given):
    # nothing of the person's is changed or deleted
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=f"amdr-drill-{m.host}-", dir=workdir))
    os.chmod(base, 0o700)
    res.workdir = str(base)
    try:
        if accel == "auto":
            ok, why = kvm_runs(iso, base)
            accel = "kvm" if ok else "tcg"
            if not ok:
                say(f"drill {m.host}: software emulation (TCG): {why}")
        res.accel = accel
        _drill(res, m, base, bundle_path, vtapes, iso, gnupghome, passphrase_file, signers,
               list(catalog), mem_mb, timeout, say)
    finally:
        (base / "medium.img").unlink(missing_ok=True)  # it holds the recovery key
        if not keep:
            for p in base.glob("disk*.img"):
                p.unlink()
    return res


def _drill(res, m, base, bundle_path, vtapes, iso, gnupghome, passphrase_file, signers,
           catalog, mem_mb, timeout, say) -> None:
    accel = res.accel
    total = sum(s for s, _ in m.disks)
    free = shutil.disk_usage(base).free
    say(f"drill {m.host}: {len(m.disks)} disk(s), {total / 2**30:.1f} GiB (sparse), "
        f"{m.firmware.upper()}, {accel.upper()}; work in {base}")
    disks = []
    for i, (size, serial) in enumerate(m.disks):
        img = base / f"disk{i}.img"
        with open(img, "wb") as f:
            f.truncate(size)
        disks.append((img, serial))
    vars_file = None
    if m.firmware == "uefi":
        vars_file = base / "OVMF_VARS.fd"  # a new machine: no boot entries
        shutil.copy(OVMF_VARS, vars_file)
    t = time.monotonic()
    answers = answers_for(m, bundle_path.name, [c.name for c in catalog],
                          passphrase_file is not None, signers)
    medium = make_medium(base, bundle_path, catalog, gnupghome, passphrase_file, answers)
    res.steps["medium"] = round(time.monotonic() - t, 1)
    if free < 2 << 30:
        res.warnings.append(f"{free / 2**30:.1f} GiB free under {base}: the restored disks "
                            f"may fill it")
    console = base / "live-console.txt"
    say(f"drill {m.host}: booting {iso.name} to recover unattended ...")
    secs, _ = run_qemu(qemu_argv(console=console, disks=disks, firmware=m.firmware,
                                 vars_file=vars_file, mac=m.mac, mem_mb=mem_mb, iso=iso,
                                 medium=medium, vtapes=vtapes, accel=accel),
                       console, timeout, progress=say)
    res.steps["live system (boot, recover, power-off)"] = round(secs, 1)
    summary = read_medium(medium, "/reports/summary.json")
    if summary is None:
        res.problems.append(f"the live system wrote no report (after {secs:.0f} s): see "
                            f"{console}")
        return
    s = json.loads(summary)
    res.recover_exit = s.get("exit")
    res.steps["recover"] = s.get("seconds")
    rep = read_medium(medium, "/reports/restore-report.json")
    if rep:
        res.restores = json.loads(rep).get("restored") or []
    fin = read_medium(medium, "/reports/finalize-report.json")
    if fin:
        res.finalize_changes = json.loads(fin).get("changes") or []
    log = read_medium(medium, "/reports/answers.log")
    if log:
        (base / "answers.log").write_bytes(log)
    if res.recover_exit != 0:
        res.problems.append(f"the recovery ended with exit {res.recover_exit}: see "
                            f"{base / 'answers.log'}")
        return
    console2 = base / "restored-console.txt"
    say(f"drill {m.host}: booting the restored disks ...")
    secs, _ = run_qemu(qemu_argv(console=console2, disks=disks, firmware=m.firmware,
                                 vars_file=vars_file, mac=m.mac, mem_mb=mem_mb, accel=accel),
                       console2, min(timeout, 900), until=MARK + "-END")
    res.steps["restored system's boot"] = round(secs, 1)
    res.booted = parse_check(console2.read_text(errors="replace") if console2.exists() else "")
    problems, warnings = check(m, res.booted)
    res.problems += problems
    res.warnings += warnings
    if res.booted is not None:
        res.steps["restored system: kernel start to multi-user"] = res.booted["multiuser"]
    res.passed = not res.problems


def text(res: Result) -> str:
    out = [f"amanda-dr drill of {res.host} ({res.firmware.upper()}, {res.accel.upper()}), "
           f"{res.started}: "
           + ("PASSED" if res.passed else "FAILED")]
    out += [f"  problem: {p}" for p in res.problems]
    out += [f"  warning: {w}" for w in res.warnings]
    out.append("steps (seconds):")
    out += [f"  {k:52s} {v if v is not None else '-':>8}" for k, v in res.steps.items()]
    if res.restores:
        out.append("restored (DLE, levels, MB, seconds):")
        for r in res.restores:
            out.append(f"  {r.get('disk', '?'):20s} {','.join(map(str, r.get('levels', []))):8s} "
                       f"{(r.get('bytes') or 0) / 1e6:10.1f} {r.get('seconds', 0):8.1f}")
    if res.finalize_changes:
        out.append("finalize changed:")
        out += [f"  {c}" for c in res.finalize_changes]
    if res.booted:
        b = res.booted
        out.append(f"the restored system: host {b['host']}, state {b['state'] or '?'}")
        out += [f"  mounted {x['target']} ({x['source']}, {x['fstype']})" for x in b["mounts"]]
        out += [f"  swap {s}" for s in b["swaps"]]
        out += [f"  address {a['addr']} on {a['dev']} ({a['mac']})" for a in b["addrs"]]
    out.append(f"ISO {res.iso}; work directory {res.workdir}")
    return "\n".join(out) + "\n"


def to_html(res: Result) -> str:
    e = html.escape
    verdict = "PASSED" if res.passed else "FAILED"
    rows = "".join(f"<tr><td>{e(k)}</td><td class=n>{e(str(v))}</td></tr>"
                   for k, v in res.steps.items())
    dles = "".join(f"<tr><td>{e(str(r.get('disk')))}</td><td>{e(','.join(map(str, r.get('levels', []))))}"
                   f"</td><td class=n>{(r.get('bytes') or 0) / 1e6:.1f}</td>"
                   f"<td class=n>{r.get('seconds', 0):.1f}</td></tr>" for r in res.restores)
    items = lambda xs: "".join(f"<li>{e(str(x))}</li>" for x in xs)  # noqa: E731
    b = res.booted or {}
    seen = [f"host {b.get('host')}, state {b.get('state')}"] + \
        [f"mounted {x['target']} ({x['source']}, {x['fstype']})" for x in b.get("mounts", [])] + \
        [f"swap {s}" for s in b.get("swaps", [])] + \
        [f"address {a['addr']} on {a['dev']}" for a in b.get("addrs", [])]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>amanda-dr drill: {e(res.host)}</title>
<style>
body {{ font-family: sans-serif; max-width: 50em; margin: 2em auto; color: #000; }}
h1 {{ font-size: 1.4em; }} .verdict {{ font-weight: bold; border: 2px solid #000;
padding: .2em .6em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #444; padding: .2em .5em; text-align: left; }}
td.n {{ text-align: right; }} @media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>amanda-dr drill of {e(res.host)} <span class="verdict">{verdict}</span></h1>
<p>{e(res.started)}, {e(res.firmware.upper())}, ISO {e(res.iso)}</p>
{"<h2>Problems</h2><ul>" + items(res.problems) + "</ul>" if res.problems else ""}
{"<h2>Warnings</h2><ul>" + items(res.warnings) + "</ul>" if res.warnings else ""}
<h2>Steps</h2><table><tr><th>step</th><th>seconds</th></tr>{rows}</table>
<h2>Restored</h2><table><tr><th>DLE</th><th>levels</th><th>MB</th><th>seconds</th></tr>{dles}
</table>
<h2>Finalize changed</h2><ul>{items(res.finalize_changes)}</ul>
<h2>The restored system said</h2><ul>{items(seen if res.booted else ['nothing'])}</ul>
</body></html>
"""
