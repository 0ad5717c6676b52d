"""The original machine's NICs matched to the ones here (pure).

On other hardware the NIC has another MAC and often another name (ens3 on
one machine is enp0s5 on the next), so the restored network configuration
names an interface that does not exist and the host comes up without its
address.  Each original physical NIC whose MAC is not here is matched to a
NIC that is (same driver first, then in order; `--nic ORIG=NEW` pins one),
and the restored system gets:

- a systemd `.link` file giving the new NIC the original name, which keeps
  every configuration by name working (ifupdown, networkd `Name=`,
  NetworkManager `interface-name=`, netplan by name) and is copied into the
  initramfs, so the name is set before anything looks for it;
- the old MAC replaced by the new one wherever a configuration matches by
  MAC (networkd `MACAddress=`, NetworkManager `mac-address=`, netplan
  `macaddress:`, ifupdown `hwaddress`, udev's 70-persistent-net.rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VIRTUAL_PREFIXES = ("lo", "br", "bond", "team", "veth", "docker", "virbr", "vnet", "tap",
                    "tun", "wg", "dummy", "vxlan", "podman", "cni", "flannel")
LINK_DIR = "/etc/systemd/network"
CONFIG_PATTERNS = (
    re.compile(r"^/etc/network/interfaces(\.d/.*)?$"),
    re.compile(r"^/etc/systemd/network/[^/]+\.(network|link|netdev)$"),
    re.compile(r"^/etc/NetworkManager/system-connections/[^/]+$"),
    re.compile(r"^/etc/netplan/[^/]+\.ya?ml$"),
    re.compile(r"^/etc/udev/rules\.d/[^/]*persistent-net[^/]*\.rules$"),
)


def is_config(path: str) -> bool:
    return any(p.match(path) for p in CONFIG_PATTERNS)


@dataclass
class NicMatch:
    name: str          # the original interface name (what the configuration uses)
    old_mac: str
    new_name: str      # what the NIC is called here, now
    new_mac: str
    reason: str

    def link_path(self) -> str:
        return f"{LINK_DIR}/10-amdr-{self.name}.link"

    def link_file(self) -> str:
        if self.new_mac == self.old_mac:
            why = (f"# Written by amanda-dr finalize: {self.name} ({self.old_mac}) of the original\n"
                   f"# machine is here under another name ({self.new_name}); it keeps its name,\n"
                   f"# so the network configuration of {self.name} applies to it.\n")
        else:
            why = (f"# Written by amanda-dr finalize: {self.name} ({self.old_mac}) of the original\n"
                   f"# machine is not here; this NIC ({self.reason}) takes its name, so the\n"
                   f"# network configuration of {self.name} applies to it.\n")
        return why + f"[Match]\nMACAddress={self.new_mac}\n\n[Link]\nName={self.name}\n"


def physical(nic: dict) -> bool:
    if "physical" in nic:
        return bool(nic["physical"])
    if nic.get("type", "ether") != "ether" or nic.get("link") or nic.get("master"):
        return False
    return not str(nic.get("name", "")).startswith(VIRTUAL_PREFIXES)


def _mac(nic: dict) -> str:
    return str(nic.get("permanent_mac") or nic.get("mac") or "").lower()


def match(original: list[dict], present: list[dict], pins: dict[str, str] | None = None,
          ) -> tuple[list[NicMatch], list[str]]:
    """(matches for the original NICs that are gone or renamed, warnings).

    pins: original name -> a NIC here, by name or MAC (the answers file's or
    `--nic`'s choice); a pin naming nothing here is a warning, not a guess."""
    pins = dict(pins or {})
    here = [n for n in present if physical(n) and _mac(n)]
    here_macs = {_mac(n) for n in here} | {str(n.get("mac", "")).lower() for n in here}
    orig = [n for n in original if physical(n) and _mac(n)]
    orig_macs = {_mac(n) for n in orig}
    free = [n for n in here if _mac(n) not in orig_macs]
    out, warnings = [], []
    for o in orig:
        if _mac(o) in here_macs:
            same = next((n for n in here if _mac(n) == _mac(o)
                         or str(n.get("mac", "")).lower() == _mac(o)), None)
            if same is not None and same.get("name") and same["name"] != o["name"]:
                # the same NIC, found under another name (another slot or bus, the
                # same card moved, a VM's NIC on another machine type)
                out.append(NicMatch(o["name"], _mac(o), same["name"], _mac(o),
                                    f"the same NIC, called {same['name']} here"))
            continue  # the same NIC is here (a disk-only replacement)
        pick, reason = None, ""
        if o["name"] in pins:
            want = pins.pop(o["name"]).lower()
            pick = next((n for n in free if n["name"].lower() == want or _mac(n) == want), None)
            if pick is None:
                warnings.append(f"--nic {o['name']}={want}: no free NIC here by that name or MAC")
                continue
            reason = "chosen by --nic"
        if pick is None and o.get("driver"):
            pick = next((n for n in free if n.get("driver") == o["driver"]), None)
            reason = f"same driver {o['driver']}"
        if pick is None and free:
            pick = free[0]
            reason = (f"the next NIC here (driver {pick.get('driver') or 'unknown'}"
                      + (f", was {o['driver']}" if o.get("driver") else "") + ")")
        if pick is None:
            warnings.append(f"the original NIC {o['name']} ({_mac(o)}) is not here and no other "
                            f"NIC is free: its configuration will not come up")
            continue
        free.remove(pick)
        out.append(NicMatch(o["name"], _mac(o), pick["name"], _mac(pick), reason))
    for name in pins:
        warnings.append(f"--nic {name}=...: the original machine had no NIC {name}")
    return out, warnings


def _mac_re(mac: str) -> re.Pattern:
    parts = mac.split(":")
    return re.compile(r"(?<![0-9a-fA-F:-])" + "[:-]".join(re.escape(p) for p in parts)
                      + r"(?![0-9a-fA-F:-])", re.IGNORECASE)


def rewrite_macs(files: dict[str, str], matches: list[NicMatch]) -> dict[str, str]:
    """path -> new text, for the network configuration files naming an old MAC."""
    out = {}
    for path, text in sorted(files.items()):
        if not is_config(path):
            continue
        new = text
        for m in matches:
            new = _mac_re(m.old_mac).sub(m.new_mac, new)
        if new != text:
            out[path] = new
    return out
