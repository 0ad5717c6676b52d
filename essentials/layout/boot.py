"""How the machine boots: firmware, EFI boot entries, GRUB's install device (pure).

Recovery must put the boot loader back where the firmware looks for it: on
BIOS that is the MBR of the disk debconf's grub-pc/install_devices names; on
UEFI it is an NVRAM entry pointing at a file on the ESP, found again by the
ESP's partition UUID.
"""

from __future__ import annotations

import re

_ENTRY = re.compile(r"^Boot([0-9A-Fa-f]{4})(\*?)\s?(.*)$")
_HD = re.compile(r"HD\((\d+),(GPT|MBR),([^,]+),(0x[0-9a-fA-F]+),(0x[0-9a-fA-F]+)\)")
_FILE = re.compile(r"File\(([^)]*)\)")


def parse_efibootmgr(text: str) -> dict:
    """`efibootmgr -v` (efibootmgr 17/18: label and device path split by a tab)."""
    out = {"current": None, "timeout": None, "order": [], "entries": []}
    for line in text.splitlines():
        line = line.rstrip("\n")
        if line.startswith("BootCurrent:"):
            out["current"] = line.split(":", 1)[1].strip()
        elif line.startswith("Timeout:"):
            m = re.search(r"(\d+)", line)
            out["timeout"] = int(m.group(1)) if m else None
        elif line.startswith("BootOrder:"):
            out["order"] = [x for x in line.split(":", 1)[1].strip().split(",") if x]
        else:
            m = _ENTRY.match(line)
            if not m:
                continue
            num, star, rest = m.groups()
            if "\t" in rest:
                label, dp = rest.split("\t", 1)
            else:  # older efibootmgr: two or more spaces
                parts = re.split(r"\s{2,}", rest, maxsplit=1)
                label, dp = parts[0], parts[1] if len(parts) > 1 else ""
            dp = dp.strip()
            hd, f = _HD.search(dp), _FILE.search(dp)
            out["entries"].append({
                "number": num.upper(),
                "label": label.strip(),
                "active": star == "*",
                "device_path": dp or None,
                "partition_number": int(hd.group(1)) if hd else None,
                "partuuid": hd.group(3).lower() if hd and hd.group(2) == "GPT" else None,
                "loader": f.group(1) if f else None,
            })
    return out


def parse_debconf(text: str) -> dict:
    """`debconf-show PKG`: '* grub-pc/install_devices: /dev/disk/by-id/x, /dev/sdb'."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^[* ]\s*([\w.+-]+/[\w./+-]+):\s?(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def grub_install_devices(debconf: dict) -> list[str]:
    v = debconf.get("grub-pc/install_devices", "")
    return [d.strip() for d in v.split(",") if d.strip()]


def normalise_boot(raw: dict, disk_ids: dict, part_by_uuid: dict) -> dict:
    """disk_ids: disk path -> id; part_by_uuid: lower-case PARTUUID -> partition id."""
    by_id = raw.get("by_id") or {}
    firmware = raw.get("firmware")
    grub = None
    if raw.get("grub_debconf") is not None:
        conf = parse_debconf(raw["grub_debconf"])
        devices = []
        for dev in grub_install_devices(conf):
            path = dev
            if dev.startswith("/dev/disk/by-id/"):
                path = by_id.get(dev.rsplit("/", 1)[1])
            devices.append({"device": dev, "path": path, "disk": disk_ids.get(path)})
        grub = {"package": "grub-pc" if conf else None, "install_devices": devices}
    efi = None
    if raw.get("efibootmgr") is not None:
        efi = parse_efibootmgr(raw["efibootmgr"])
        for e in efi["entries"]:
            e["partition"] = part_by_uuid.get(e["partuuid"]) if e["partuuid"] else None
    return {
        "firmware": firmware,
        "cmdline": kernel_args(raw.get("cmdline")),
        "grub": grub,
        "efi": efi,
    }


def kernel_args(cmdline: str | None) -> str | None:
    """The kernel command line without BOOT_IMAGE=, which names the running
    kernel's version: every kernel update would otherwise look like a layout
    change to `check` (the raw file keeps it)."""
    if not cmdline:
        return None
    return " ".join(a for a in cmdline.split() if not a.startswith("BOOT_IMAGE=")) or None
