"""make demo: back up the lab, lose its disk, bring it back with amanda-dr.

1. the lab runs six real amdump runs (levels 0,1,2, then a newer 0,1,2)
2. `amdr-essentials run` collects the bundle (/etc, layout, packages,
   network, the Amanda database), encrypts it to the site's recovery key,
   signs it with the host's key and delivers it to a "USB" directory
3. the disk is destroyed (signatures wiped, first MiBs zeroed)
4. the text UI, driven by an answers file (host, key, confirm), opens the
   sealed bundle with the recovery key (checking the host's signature and
   every checksum), rebuilds the disk and restores every DLE, using only the
   bundle and the vtapes
5. each restored tree is compared with the manifest of the last backup, and
   the recreated filesystems' identities with the original ones

Exit status 0 only when everything matches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from . import tree
from .keys import make_keys
from .lab import AmandaLab, sh

BIN = Path(sys.executable).parent


def identities(lab: AmandaLab) -> dict:
    out = {}
    for n in (1, 2, 3):
        info = {}
        for line in sh(["blkid", "-p", "-o", "export", lab.part(n)]).splitlines():
            k, _, v = line.partition("=")
            if k in ("UUID", "LABEL", "TYPE", "PART_ENTRY_UUID", "PART_ENTRY_NAME",
                     "PART_ENTRY_TYPE", "PART_ENTRY_OFFSET", "PART_ENTRY_SIZE"):
                info[k] = v
        out[n] = info
    return out


def essentials_config(lab: AmandaLab, keys, usb: Path) -> Path:
    cfg = {
        "host": "labhost",
        "state_dir": str(lab.base / "amdr-state"),
        "spool_dir": str(lab.base / "amdr-spool"),
        "log_file": str(lab.base / "amdr-essentials.log"),
        "gpg": {"home": str(keys.host_home), "recipients": [keys.site_fpr],
                "signer": keys.host_fpr},
        "collect": {"layout": {"disks": [lab.loop], "root": str(lab.mnt)},
                    "amanda": {"configs": [lab.name]}},
        "deliveries": [{"type": "local", "name": "usb", "dir": str(usb),
                        "create": True}],
    }
    path = lab.base / "essentials.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_demo(log=print) -> dict:
    """Returns a result dict; result['ok'] is the verdict."""
    result = {"ok": False, "rows": [], "problems": []}
    keys = make_keys(SITE_PASSPHRASE)
    try:
        return _run_demo(log, result, keys)
    finally:
        keys.cleanup()


SITE_PASSPHRASE = "demo recovery passphrase"


def _run_demo(log, result, keys) -> dict:
    with AmandaLab() as lab:
        t0 = time.monotonic()
        log(f"lab {lab.name}: disk {lab.loop}, config {lab.confdir}, vtapes {lab.vtapes}")
        runs = lab.run_history()
        for r in runs:
            log(f"  run {r.number} {r.datestamp}: levels "
                + ", ".join(f"{d}={lv}" for d, lv in r.levels.items()))
        log(f"history: {len(runs)} amdump runs in {time.monotonic() - t0:.1f}s")
        before = identities(lab)
        result["runs"] = [(r.datestamp, r.levels) for r in runs]

        usb = lab.base / "usb"
        config = essentials_config(lab, keys, usb)
        t1 = time.monotonic()
        p = subprocess.run([str(BIN / "amdr-essentials"), "run", "-c", str(config)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        result["essentials_seconds"] = time.monotonic() - t1
        log((p.stdout + p.stderr).rstrip())
        if p.returncode != 0:
            result["problems"].append(f"amdr-essentials run exit {p.returncode}")
            return result
        bundle = next(usb.glob("labhost-*.amdr.gpg"))
        passfile = lab.base / "site-passphrase"
        passfile.write_text(SITE_PASSPHRASE + "\n")
        passfile.chmod(0o600)

        lab.destroy_disk()
        log(f"disk {lab.loop} destroyed")

        target = lab.base / "target"
        report = Path(str(target) + ".amdr") / "restore-report.json"
        # the field engineer's way, decided in advance: the text UI driven by an
        # answers file (no terminal here: it runs headless, in plain lines)
        answers = lab.base / "demo-answers.yaml"
        answers.write_text(yaml.safe_dump({
            "bundles": {"media": [str(usb)], "store": str(lab.base / "store")},
            "host": "labhost",
            "unlock": {"gnupghome": str(keys.recovery_home), "passphrase-file": str(passfile)},
            "confirm": "labhost",
            # the lab's root is a file tree, not a bootable system: finalize is
            # what the boot drill (make drill) proves
            "run": {"target": str(target), "finalize": False},
            "summary": {"then": "wait"}}, sort_keys=False))
        t1 = time.monotonic()
        p = subprocess.run([str(BIN / "amdr-recover"), "tui", "--answers", str(answers)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        log(p.stdout.rstrip())
        result["recover_seconds"] = time.monotonic() - t1
        if p.returncode != 0:
            result["problems"].append(f"amdr-recover tui exit {p.returncode}: {p.stderr}")
            return result
        restored = {r["disk"]: r for r in json.loads(report.read_text())["restored"]}

        last = runs[-1]
        dirs = {lab.root_disk: target, lab.data_disk: target / "srv"}
        for disk, expected in last.manifests.items():
            exclude = {"lost+found", "srv"} if disk == lab.root_disk else {"lost+found"}
            actual = tree.snapshot(str(dirs[disk]), exclude=exclude)
            diffs = tree.compare(expected, actual)
            s = tree.summary(actual)
            r = restored.get(disk)
            if r is None:
                result["problems"].append(f"{disk}: not restored")
                continue
            result["rows"].append({
                "dle": disk, "levels": r["levels"], "dates": r["dates"],
                "files": s["files"], "bytes": s["bytes"],
                "seconds": r["seconds"], "diffs": diffs})
            result["problems"] += [f"{disk}: {d}" for d in diffs]

        after = identities(lab)
        for n in (1, 2, 3):
            for k, v in before[n].items():
                if after[n].get(k) != v:
                    result["problems"].append(
                        f"partition {n}: {k} was {v}, recreated as {after[n].get(k)}")
        result["identities"] = after
        sh(["umount", str(target / "srv")])
        sh(["umount", str(target)])
        result["ok"] = not result["problems"] and len(result["rows"]) == 2
    return result


def main() -> int:
    if os.geteuid() != 0:
        print("make demo must run as root (loop devices, mounts, Amanda)", file=sys.stderr)
        return 2
    res = run_demo()
    print()
    print(f"{'DLE':44s} {'levels':8s} {'files':>6s} {'bytes':>10s} {'seconds':>8s} "
          f"{'MB/s':>7s}  verified")
    for row in res["rows"]:
        mbs = row["bytes"] / 1e6 / row["seconds"] if row["seconds"] else 0.0
        print(f"{row['dle']:44s} {','.join(map(str, row['levels'])):8s} {row['files']:6d} "
              f"{row['bytes']:10d} {row['seconds']:8.2f} {mbs:7.1f}  "
              f"{'yes' if not row['diffs'] else 'NO'}")
    for p in res["problems"][:50]:
        print("PROBLEM:", p)
    print("demo:", "every DLE verified" if res["ok"] else "FAILED")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
