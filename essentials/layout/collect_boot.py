"""Collect how the machine boots: firmware, EFI entries, GRUB's device, by-id names.

Part of the collector (collect.py); interpreted in boot.py.
"""

from __future__ import annotations

import os

import yaml


def boot(g):
    uefi = g.sys_efi.is_dir()
    g.w.facts["firmware"] = "uefi" if uefi else "bios"
    if g.tool("efibootmgr", ["this UEFI machine"] if uefi else [], "EFI boot entries",
              "not needed: this machine boots with BIOS") and uefi:
        g.capture("efibootmgr", "efibootmgr.txt", ["efibootmgr", "-v"])
    if g.tool("debconf-show", [], "the GRUB install device", "not a Debian system?"):
        g.capture("grub_debconf", "debconf-grub-pc.txt", ["debconf-show", "grub-pc"])
    try:
        g.w.put("cmdline", "cmdline.txt", g.proc_cmdline.read_text())
    except OSError as e:
        g.warn(f"{g.proc_cmdline}: {e}")
    by_id = {}
    if g.by_id.is_dir():
        for link in sorted(g.by_id.iterdir()):
            by_id[link.name] = os.path.realpath(link)
    g.w.put("by_id", "by-id.yaml", yaml.safe_dump(by_id))
