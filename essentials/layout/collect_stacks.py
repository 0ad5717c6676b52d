"""Collect the devices stacked on the disks: LVM, MD RAID, LUKS, multipath.

Part of the collector (collect.py): these run tools against the live
machine and keep their output; what they find is interpreted in stack.py.
Each needs a tool many machines lack, so each first asks the gatherer
whether it is installed, and the gatherer warns naming who needed it.
"""

from __future__ import annotations

import json
import os

from essentials.errors import CommandError

from .rawdir import safe_name

LVM_ENV = {"LVM_SUPPRESS_FD_WARNINGS": "1"}


def lvm(g):
    pvs = g.typed("LVM2_member")
    if not g.tool("pvs", [f"LVM physical volume {p}" for p in pvs], "LVM volume groups"):
        return
    if not pvs:
        return
    env = dict(os.environ, **LVM_ENV)
    # --readonly: reading a VG whose backup in /etc/lvm is missing or old
    # would otherwise write one (and an archive): a collector writes nothing
    opts = ["--readonly", "--reportformat", "json", "--units", "b", "--nosuffix"]
    try:  # which VGs: those with a PV here
        text = g.runner.output(["pvs"] + opts + ["-o", "pv_name,vg_name"] + pvs, env=env)
        vgs = sorted({r["vg_name"] for part in json.loads(text or "{}").get("report", [])
                      for r in part.get("pv", []) if r.get("vg_name")})
    except (CommandError, ValueError) as e:
        g.warn(f"pvs {' '.join(pvs)} failed: {e}")
        return
    if not vgs:
        return
    # every PV of those VGs, also one on a disk not collected
    g.capture("lvm_pvs", "lvm-pvs.json", ["pvs"] + opts + [
        "-o", "pv_name,pv_uuid,pv_size,dev_size,pe_start,vg_name,pv_fmt,pv_attr",
        "--select", " || ".join(f"vg_name={vg}" for vg in vgs)], env=env)
    g.capture("lvm_vgs", "lvm-vgs.json", ["vgs"] + opts + [
        "-o", "vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_extent_count,pv_count,"
              "lv_count,vg_attr,vg_fmt"] + vgs, env=env)
    g.capture("lvm_lvs", "lvm-lvs.json", ["lvs", "-a"] + opts + [
        "-o", "lv_name,lv_full_name,lv_uuid,vg_name,lv_size,segtype,lv_attr,lv_path,"
              "lv_dm_path,stripes,stripe_size,devices,lv_active,pool_lv,origin,lv_role"]
        + vgs, env=env)
    for vg in vgs:
        name = f"lvm-vgcfgbackup-{vg}.vg"
        try:
            g.runner.run(["vgcfgbackup", "--readonly", "-f", str(g.w.path(name)), vg],
                         env=env)
        except CommandError as e:
            g.warn(f"vgcfgbackup of volume group {vg} failed: {e}")
            continue
        if g.w.path(name).exists():
            os.chmod(g.w.path(name), 0o600)
        g.w.record("vgcfgbackup", name, vg)


def md(g, nodes: list[dict]):
    arrays = list(dict.fromkeys(n["path"] for n in nodes
                                if str(n.get("type", "")).startswith(("raid", "linear"))))
    members = g.typed("linux_raid_member")
    needed = [f"MD RAID member {m}" for m in members] + [f"MD array {a}" for a in arrays]
    if not g.tool("mdadm", needed, "MD RAID arrays"):
        return
    for a in arrays:
        g.capture("mdadm_detail", f"mdadm-detail-{safe_name(a)}.txt",
                  ["mdadm", "--detail", a], a)
    for m in members:
        g.capture("mdadm_examine", f"mdadm-examine-{safe_name(m)}.txt",
                  ["mdadm", "--examine", m], m)
    if members and not arrays:
        g.warn(f"{', '.join(members)}: MD RAID members, but no array is assembled "
               f"from them; only 'mdadm --examine' was kept")


def luks(g):
    devs = g.typed("crypto_LUKS")
    if not g.tool("cryptsetup", [f"LUKS container {d}" for d in devs], "LUKS headers"):
        return
    for d in devs:
        s = safe_name(d)
        g.capture("luks_dump", f"luksDump-{s}.txt", ["cryptsetup", "luksDump", d], d)
        if g.luks_header:
            _header_backup(g, d, f"luks-header-{s}.img")


def _header_backup(g, dev: str, name: str):
    """The header itself (only when configured): with it and a passphrase
    the data can be read, so the file is root's alone, like the bundle."""
    target = g.w.path(name)
    if target.exists():
        target.unlink()  # luksHeaderBackup refuses an existing file
    try:
        g.runner.run(["cryptsetup", "luksHeaderBackup", dev, "--header-backup-file",
                      str(target)])
    except CommandError as e:
        g.warn(f"the LUKS header of {dev} could not be saved: {e}")
        return
    if target.exists():
        os.chmod(target, 0o600)
    g.w.record("luks_header", name, dev)


def multipath(g, nodes: list[dict]):
    maps = list(dict.fromkeys(n["path"] for n in nodes if n.get("type") == "mpath"))
    if g.tool("multipath", [f"multipath map {m}" for m in maps], "multipath maps") and maps:
        g.capture("multipath", "multipath-ll.txt", ["multipath", "-ll"])
