"""The NICs' hardware and the files that configure the network, for network.yaml.

Why: a restored system on other hardware finds its interfaces renamed or its
configuration tied to a MAC, a driver or a PCI slot that is not there any more,
and comes up without a network.  finalize can only rewrite what it knows: which
interfaces were real devices (and on which driver and slot), and which of the
configuration systems (ifupdown, networkd, NetworkManager, netplan, udev's
persistent-net rules) hold files.

/sys and /etc are read under a root given by the caller, so the tests use a
small fake tree (tests/fixtures/collectors/network/*/sys).  `device_facts` is
the pure part: the device's path and its links turned into the yaml's keys.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PCI_ADDRESS = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")

# per configuration system, its files as globs relative to /etc, in the order
# the system reads them (the main file before its drop-in directory)
CONFIG_FILES = {
    "ifupdown": ("network/interfaces", "network/interfaces.d/*"),
    "networkd": ("systemd/network/*.network", "systemd/network/*.link",
                 "systemd/network/*.netdev"),
    "networkmanager": ("NetworkManager/system-connections/*",),
    "netplan": ("netplan/*.yaml",),
    "udev": ("udev/rules.d/*persistent-net*.rules",),
}


def device_facts(device: str, driver: str | None, subsystem: str | None) -> dict:
    """A physical NIC's keys from its device's path under /sys/devices and the
    targets of the device's `driver` and `subsystem` links.

    bus_path starts at the nearest PCI device on the path: the PCI address is
    what stays put across boots and names the slot (predictable interface names
    are made from it), while the prefix (pci0000:00/, bridges) says nothing
    recovery needs.  A device with no PCI device above it (platform, vmbus)
    keeps its whole path."""
    parts = [p for p in device.split("/") if p]
    pci_at = max((i for i, p in enumerate(parts) if PCI_ADDRESS.fullmatch(p)), default=None)
    facts: dict = {"physical": True}
    if driver:
        facts["driver"] = os.path.basename(driver.rstrip("/"))
    if subsystem:
        facts["bus"] = os.path.basename(subsystem.rstrip("/"))
    facts["bus_path"] = "/".join(parts[pci_at or 0:])
    if pci_at is not None:
        facts["pci"] = parts[pci_at]
    return facts


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def read_nics(sys_root: Path = Path("/sys")) -> dict[str, dict]:
    """{interface: its hardware keys} for every interface in sys_root/class/net.

    An interface is physical when it has a `device` link (what udev and
    systemd's naming go by too); bridges, bonds, VLANs and loopback have none."""
    net = sys_root / "class" / "net"
    devices = os.path.realpath(sys_root / "devices")
    try:
        names = sorted(os.listdir(net))
    except OSError:
        return {}
    found = {}
    for name in names:
        if not (net / name).is_dir():
            continue  # bonding_masters
        dev = net / name / "device"
        if not dev.exists():
            found[name] = {"physical": False}
            continue
        real = os.path.realpath(dev)
        rel = real[len(devices) + 1:] if real.startswith(devices + "/") else real
        found[name] = device_facts(rel, _readlink(dev / "driver"), _readlink(dev / "subsystem"))
    return found


def config_files(etc: Path = Path("/etc")) -> dict[str, list[str]]:
    """{system: [its files, as /etc/... paths]} for the systems that have files.

    Symlinks count (a networkd .link masked to /dev/null turns predictable
    names off); directories do not.  The paths are named /etc/... whatever
    directory etc is, as they will be on the restored system."""
    systems = {}
    for system, patterns in CONFIG_FILES.items():
        files = []
        for pattern in patterns:
            for p in sorted(etc.glob(pattern)):
                if p.is_symlink() or p.is_file():
                    files.append("/etc/" + p.relative_to(etc).as_posix())
        if files:
            systems[system] = files
    return systems
