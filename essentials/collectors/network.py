"""Collector: the network settings the live system needs to bring the host's address back.

The field engineer boots the live image on the replacement machine and wants
it reachable at the old address (and able to reach the Amanda server) before
anything is restored.  The raw `ip -j` outputs travel in the bundle so a newer
recovery can re-derive; `network/network.yaml` is the normalised summary the
live system reads:

    version: 1
    hostname: vm                    # `hostname`
    fqdn: vm.example.com            # `hostname -f` (the short name when that fails)
    interfaces:                     # every interface but loopback, in ifindex order
      - name: eth0
        mac: 02:fc:00:00:00:01
        permanent_mac: ...          # only when ip reports one (bond slaves)
        state: UP                   # operstate
        mtu: 1500
        type: ether                 # link_type
        master: bond0               # only when enslaved (bridge, bond)
        link: eth0                  # only for stacked devices (VLANs): the parent
        physical: true              # /sys/class/net/NAME/device exists; false: bridge,
                                    # bond, VLAN, tunnel... (absent: not seen in /sys)
        driver: e1000e              # physical only: the kernel driver bound to the device
        bus: pci                    # physical only: the device's subsystem (pci, virtio, usb...)
        bus_path: 0000:00:19.0      # physical only: where it sits: the PCI address, or the
                                    # path under /sys/devices from the nearest PCI device on
                                    # (0000:00:03.0/virtio2, 0000:00:14.0/usb2/2-1/2-1:1.0)
        pci: 0000:00:19.0           # physical only, when a PCI device is on the path
        addresses:                  # static-looking: no `dynamic` flag, not link-local
          - {address: 192.0.2.2, prefix: 24, family: inet}
          - {address: 2001:db8::2, prefix: 64, family: inet6}
        dynamic:                    # DHCP / SLAAC leases: the live system should ask again
          - {address: 198.51.100.7, prefix: 24, family: inet}
    default_routes:                 # v4 and v6, in the order ip listed them
      - {family: inet, gateway: 192.0.2.1, dev: eth0, metric: 0, protocol: static}
    static_routes:                  # other routes through a gateway not made by the kernel,
      - {family: inet, dst: 10.0.0.0/8, gateway: 10.100.0.1, dev: eth0.100, protocol: static}
    dns:
      nameservers: [192.0.2.53]     # upstream servers (systemd-resolved's stub replaced)
      search: [example.com]
      stub_resolver: false          # true when /etc/resolv.conf only pointed at 127.0.0.53
    config:                         # which network configuration systems hold files, and
                                    # those files (only systems with files; paths only:
                                    # the files themselves travel in etc.tar)
      ifupdown: [/etc/network/interfaces, /etc/network/interfaces.d/lan]
      networkd: [/etc/systemd/network/10-lan.network]      # *.network, *.link, *.netdev
      networkmanager: [/etc/NetworkManager/system-connections/lan.nmconnection]
      netplan: [/etc/netplan/50-cloud-init.yaml]
      udev: [/etc/udev/rules.d/70-persistent-net.rules]    # interface names pinned to MACs

The hardware keys and `config` are for finalize, which makes the restored
system come up on other hardware: a name or a configuration tied to a MAC, a
driver or a PCI slot the new machine lacks must be rewritten, and the files
listed are the ones that can hold such ties.  Every one of these keys is
optional: bundles from before they existed still load.

Raw files beside it: ip-addr.json, ip-link.json, ip-route.json, ip-route6.json,
resolv.conf (and resolved-upstream.conf when systemd-resolved is in front),
hostname.txt.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import yaml

from . import nics as nic_facts
from .base import Context, need_tool

log = logging.getLogger(__name__)

VERSION = 1
RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")
SYS = Path("/sys")
STUB_ADDRESSES = {"127.0.0.53", "127.0.0.54"}
# route protocols set up by something that will set them up again
AUTOMATIC_PROTOCOLS = {"kernel", "dhcp", "ra", "redirect"}


def parse_resolv(text: str) -> dict:
    """nameserver, search and domain lines of a resolv.conf (the last search/domain wins)."""
    nameservers, search = [], []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]
    return {"nameservers": nameservers, "search": search}


def _is_link_local(info: dict) -> bool:
    local = info.get("local", "").lower()
    return (info.get("scope") in ("link", "host")
            or local.startswith("fe80:") or local.startswith("169.254."))


def _address(info: dict) -> dict:
    return {"address": info["local"], "prefix": info.get("prefixlen"),
            "family": info.get("family")}


def _interface(link: dict, addr: dict, hardware: dict) -> dict:
    out = {
        "name": link["ifname"],
        "mac": link.get("address"),
        "state": link.get("operstate"),
        "mtu": link.get("mtu"),
        "type": link.get("link_type"),
    }
    for src, dst in (("permaddr", "permanent_mac"), ("master", "master"), ("link", "link")):
        if link.get(src):
            out[dst] = link[src]
    out.update(hardware)
    static, dynamic = [], []
    for info in addr.get("addr_info", []):
        if "local" not in info or _is_link_local(info):
            continue
        (dynamic if info.get("dynamic") else static).append(_address(info))
    out["addresses"] = static
    out["dynamic"] = dynamic
    return out


def _routes(routes: list, family: str) -> tuple[list, list]:
    defaults, static = [], []
    for r in routes:
        if r.get("type", "unicast") != "unicast":
            continue  # unreachable, blackhole, multicast...
        default = r.get("dst") == "default"
        automatic = r.get("protocol") in AUTOMATIC_PROTOCOLS
        if not default and (not r.get("gateway") or automatic):
            continue  # on-link or recreated by DHCP/RA/the kernel
        entry = {"family": family}
        if not default:
            entry["dst"] = r["dst"]
        for key in ("gateway", "dev"):
            if r.get(key):
                entry[key] = r[key]
        entry["metric"] = r.get("metric", 0)
        if r.get("protocol"):
            entry["protocol"] = r["protocol"]
        (defaults if default else static).append(entry)
    return defaults, static


def normalise(addr: list, link: list, route4: list, route6: list, resolv: str,
              hostname: str, fqdn: str | None = None, upstream_resolv: str | None = None,
              nics: dict | None = None, config: dict | None = None) -> dict:
    """`ip -j addr/link/route/-6 route` outputs (parsed JSON), resolv.conf text -> network.yaml.

    nics ({interface: hardware keys}) and config ({system: files}) come from
    the nics module; left out (None), network.yaml has no such keys, as before."""
    nics = nics or {}
    addr_by_name = {a["ifname"]: a for a in addr}
    links = link or addr  # `ip -j addr` carries the link fields too
    interfaces = []
    for lk in sorted(links, key=lambda x: x.get("ifindex", 0)):
        if lk.get("link_type") == "loopback" or "LOOPBACK" in lk.get("flags", []):
            continue
        interfaces.append(_interface(lk, addr_by_name.get(lk["ifname"], {}),
                                     nics.get(lk["ifname"], {})))
    d4, s4 = _routes(route4, "inet")
    d6, s6 = _routes(route6, "inet6")
    dns = parse_resolv(resolv)
    stub = bool(dns["nameservers"]) and set(dns["nameservers"]) <= STUB_ADDRESSES
    if stub and upstream_resolv:
        upstream = parse_resolv(upstream_resolv)
        dns["nameservers"] = upstream["nameservers"]
        dns["search"] = dns["search"] or upstream["search"]
    dns["stub_resolver"] = stub
    net = {
        "version": VERSION,
        "hostname": hostname,
        "fqdn": fqdn or hostname,
        "interfaces": interfaces,
        "default_routes": d4 + d6,
        "static_routes": s4 + s6,
        "dns": dns,
    }
    if config is not None:
        net["config"] = config
    return net


def _ip_json(ctx: Context, argv: list, rel: str) -> list:
    text = ctx.runner.output(argv)
    ctx.write(rel, text)
    return json.loads(text) if text.strip() else []


def collect(ctx: Context) -> dict:
    need_tool("ip")
    addr = _ip_json(ctx, ["ip", "-j", "addr"], "network/ip-addr.json")
    link = _ip_json(ctx, ["ip", "-j", "link"], "network/ip-link.json")
    route4 = _ip_json(ctx, ["ip", "-j", "route"], "network/ip-route.json")
    route6 = _ip_json(ctx, ["ip", "-j", "-6", "route"], "network/ip-route6.json")

    resolv_path = ctx.etc / "resolv.conf"
    try:
        resolv = resolv_path.read_text()
        ctx.write("network/resolv.conf", resolv)
    except OSError as e:
        resolv = ""
        ctx.warn(f"cannot read {resolv_path}: {e.strerror}; no DNS settings collected")
    upstream = None
    if RESOLVED_UPSTREAM.is_file():
        upstream = RESOLVED_UPSTREAM.read_text()
        ctx.write("network/resolved-upstream.conf", upstream)

    hostname = ctx.runner.output(["hostname"]).strip()
    res = ctx.runner.run(["hostname", "-f"], check=False)
    fqdn = res.text.strip() if res.returncode == 0 else ""
    if not fqdn:
        fqdn = socket.getfqdn(hostname)
        ctx.warn(f"`hostname -f` failed (exit {res.returncode}); using {fqdn} as the FQDN")
    ctx.write("network/hostname.txt", f"hostname: {hostname}\nfqdn: {fqdn}\n")

    net = normalise(addr, link, route4, route6, resolv, hostname, fqdn, upstream,
                    nic_facts.read_nics(SYS), nic_facts.config_files(ctx.etc))
    ctx.write("network/network.yaml", yaml.safe_dump(net, sort_keys=False))
    if net["dns"]["stub_resolver"] and upstream is None:
        ctx.warn("resolv.conf points at the systemd-resolved stub and its upstream "
                 f"{RESOLVED_UPSTREAM} is missing: no real nameservers collected")
    return {
        "hostname": hostname,
        "fqdn": fqdn,
        "interfaces": len(net["interfaces"]),
        "addresses": sum(len(i["addresses"]) for i in net["interfaces"]),
        "default_routes": [f"{r.get('gateway', '-')} dev {r.get('dev', '-')}"
                           for r in net["default_routes"]],
        "nameservers": len(net["dns"]["nameservers"]),
        "physical": [i["name"] for i in net["interfaces"] if i.get("physical")],
        "config": sorted(net["config"]),
    }
