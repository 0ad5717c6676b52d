"""network.yaml from `ip -j` output captured on this machine and a hand-extended two-NIC case."""

import json
from pathlib import Path

import yaml

from essentials.collectors.network import normalise, parse_resolv
from essentials.collectors.nics import config_files, device_facts, read_nics

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "collectors" / "network"


def load(case, hostname="vm", fqdn=None, upstream=None):
    d = FIX / case
    j = {n: json.loads((d / f"{n}.json").read_text())
         for n in ("ip-addr", "ip-link", "ip-route", "ip-route6")}
    return normalise(j["ip-addr"], j["ip-link"], j["ip-route"], j["ip-route6"],
                     (d / "resolv.conf").read_text(), hostname, fqdn, upstream)


def by_name(net):
    return {i["name"]: i for i in net["interfaces"]}


# -- captured on the build machine (iproute2 6.1) ---------------------------------

def test_captured_interfaces_skip_loopback_and_link_local():
    net = load("vm")
    ifs = by_name(net)
    assert list(ifs) == ["ifb0", "ifb1", "eth0"]  # ifindex order, lo left out
    eth0 = ifs["eth0"]
    assert eth0["mac"] == "02:fc:00:00:00:01"
    assert eth0["state"] == "UP" and eth0["mtu"] == 1400 and eth0["type"] == "ether"
    assert eth0["addresses"] == [
        {"address": "192.0.2.2", "prefix": 24, "family": "inet"},
        {"address": "fd00::2", "prefix": 64, "family": "inet6"},
    ]
    assert eth0["dynamic"] == []
    assert ifs["ifb0"]["addresses"] == [] and ifs["ifb0"]["state"] == "DOWN"


def test_captured_default_routes_both_families():
    net = load("vm")
    assert net["default_routes"] == [
        {"family": "inet", "gateway": "192.0.2.1", "dev": "eth0", "metric": 0},
        {"family": "inet6", "gateway": "fd00::1", "dev": "eth0", "metric": 1024},
    ]
    assert net["static_routes"] == []  # only kernel on-link routes besides the defaults


def test_captured_dns_and_names():
    net = load("vm", "vm", "vm.example.org")
    assert net["dns"] == {"nameservers": ["10.255.255.53"], "search": [],
                          "stub_resolver": False}
    assert net["hostname"] == "vm" and net["fqdn"] == "vm.example.org"
    assert net["version"] == 1


def test_fqdn_falls_back_to_hostname():
    assert load("vm", "vm", None)["fqdn"] == "vm"


# -- hand-extended: two NICs, a VLAN, static and dynamic IPv6, v6 default ----------

def test_two_nics_static_and_dynamic_addresses():
    ifs = by_name(load("two-nics"))
    assert list(ifs) == ["eth0", "eth1", "eth0.100", "eth2"]
    assert [a["address"] for a in ifs["eth0"]["addresses"]] == \
        ["192.0.2.10", "192.0.2.11", "2001:db8:10::10"]
    assert ifs["eth0"]["mtu"] == 9000
    eth1 = ifs["eth1"]
    # the static v6 stays, the DHCP v4 lease and the SLAAC address are only noted
    assert eth1["addresses"] == [{"address": "2001:db8:20::53", "prefix": 64,
                                  "family": "inet6"}]
    assert eth1["dynamic"] == [
        {"address": "198.51.100.7", "prefix": 24, "family": "inet"},
        {"address": "2001:db8:20::7", "prefix": 64, "family": "inet6"},
    ]
    assert eth1["mac"] == "52:54:00:ab:cd:ef" and eth1["permanent_mac"] == "52:54:00:ab:cd:00"
    assert ifs["eth0.100"]["link"] == "eth0"
    assert ifs["eth0.100"]["addresses"] == [{"address": "10.100.0.5", "prefix": 24,
                                             "family": "inet"}]
    assert "link" not in ifs["eth0"] and "permanent_mac" not in ifs["eth0"]
    assert ifs["eth2"]["state"] == "DOWN" and ifs["eth2"]["addresses"] == []


def test_two_nics_routes():
    net = load("two-nics")
    assert net["default_routes"] == [
        {"family": "inet", "gateway": "192.0.2.1", "dev": "eth0", "metric": 0,
         "protocol": "static"},
        {"family": "inet", "gateway": "198.51.100.1", "dev": "eth1", "metric": 100,
         "protocol": "dhcp"},
        {"family": "inet6", "gateway": "2001:db8:10::1", "dev": "eth0", "metric": 1024,
         "protocol": "static"},
        {"family": "inet6", "gateway": "fe80::1", "dev": "eth1", "metric": 100,
         "protocol": "ra"},
    ]
    # through a gateway and not made by kernel/DHCP/RA; the blackhole is left out
    assert net["static_routes"] == [
        {"family": "inet", "dst": "10.0.0.0/8", "gateway": "10.100.0.1", "dev": "eth0.100",
         "metric": 0, "protocol": "static"},
        {"family": "inet6", "dst": "2001:db8:99::/48", "gateway": "2001:db8:10::fe",
         "dev": "eth0", "metric": 1024, "protocol": "static"},
    ]


def test_two_nics_dns_search_wins_over_domain_and_comments_dropped():
    dns = load("two-nics")["dns"]
    assert dns["nameservers"] == ["192.0.2.53", "2001:db8:10::53"]
    assert dns["search"] == ["example.com", "corp.example.com"]


def test_yaml_round_trip():
    net = load("two-nics", "db1", "db1.example.com")
    assert yaml.safe_load(yaml.safe_dump(net, sort_keys=False)) == net


# -- resolv.conf -------------------------------------------------------------------

def test_resolved_stub_replaced_by_upstream():
    stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"
    upstream = "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example.com\n"
    net = normalise([], [], [], [], stub, "h", None, upstream)
    assert net["dns"] == {"nameservers": ["192.0.2.53", "192.0.2.54"], "search": ["lan"],
                          "stub_resolver": True}
    net = normalise([], [], [], [], stub, "h", None, None)
    assert net["dns"]["nameservers"] == ["127.0.0.53"] and net["dns"]["stub_resolver"]


def test_parse_resolv_last_search_or_domain_wins():
    assert parse_resolv("search a b\ndomain c\n; comment\nnameserver 1.1.1.1 ; x\n") == \
        {"nameservers": ["1.1.1.1"], "search": ["c"]}
    assert parse_resolv("") == {"nameservers": [], "search": []}


# -- NIC hardware (a fake /sys per case) and the configuration systems ------------------

def test_device_facts_start_bus_path_at_the_nearest_pci_device():
    assert device_facts("pci0000:00/0000:00:1c.0/0000:03:00.0", "../../../bus/pci/drivers/"
                        "e1000e", "../../../bus/pci") == {
        "physical": True, "driver": "e1000e", "bus": "pci", "bus_path": "0000:03:00.0",
        "pci": "0000:03:00.0"}
    assert device_facts("pci0000:00/0000:00:03.0/virtio2", "x/virtio_net", "x/virtio") == {
        "physical": True, "driver": "virtio_net", "bus": "virtio",
        "bus_path": "0000:00:03.0/virtio2", "pci": "0000:00:03.0"}
    # no PCI above it: the whole path; an unbound device has no driver
    assert device_facts("platform/soc/1c30000.ethernet", None, "../bus/platform") == {
        "physical": True, "bus": "platform", "bus_path": "platform/soc/1c30000.ethernet"}


def test_read_nics_from_a_fake_sys():
    assert read_nics(FIX / "vm" / "sys") == {
        "eth0": {"physical": True, "driver": "virtio_net", "bus": "virtio",
                 "bus_path": "0000:00:03.0/virtio2", "pci": "0000:00:03.0"},
        "ifb0": {"physical": False}, "ifb1": {"physical": False}, "lo": {"physical": False}}
    nics = read_nics(FIX / "two-nics" / "sys")
    assert nics["eth0"] == {"physical": True, "driver": "e1000e", "bus": "pci",
                            "bus_path": "0000:00:19.0", "pci": "0000:00:19.0"}
    assert nics["eth1"]["bus_path"] == "0000:03:00.0/virtio0"  # behind a PCI bridge
    assert nics["eth2"] == {"physical": True, "driver": "r8152", "bus": "usb",
                            "bus_path": "0000:00:14.0/usb2/2-1/2-1:1.0", "pci": "0000:00:14.0"}
    assert nics["eth0.100"] == {"physical": False}
    assert read_nics(FIX / "nowhere") == {}


def test_network_yaml_carries_the_hardware_keys():
    d = FIX / "two-nics"
    j = {n: json.loads((d / f"{n}.json").read_text())
         for n in ("ip-addr", "ip-link", "ip-route", "ip-route6")}
    net = normalise(j["ip-addr"], j["ip-link"], j["ip-route"], j["ip-route6"], "", "db1",
                    nics=read_nics(d / "sys"), config={"networkd": ["/etc/systemd/network/a"]})
    ifs = by_name(net)
    eth1 = ifs["eth1"]
    assert (eth1["driver"], eth1["bus_path"], eth1["permanent_mac"], eth1["physical"]) == \
        ("virtio_net", "0000:03:00.0/virtio0", "52:54:00:ab:cd:00", True)
    assert list(eth1)[:9] == ["name", "mac", "state", "mtu", "type", "permanent_mac",
                              "physical", "driver", "bus"]
    assert ifs["eth0.100"]["physical"] is False and "driver" not in ifs["eth0.100"]
    assert net["config"] == {"networkd": ["/etc/systemd/network/a"]}
    assert yaml.safe_load(yaml.safe_dump(net, sort_keys=False)) == net


def test_older_calls_have_no_hardware_keys():
    net = load("two-nics")
    assert "config" not in net
    assert not any({"physical", "driver", "bus_path"} & set(i) for i in net["interfaces"])


def test_config_files_only_systems_with_files(tmp_path):
    etc = tmp_path / "etc"
    for rel in ("network/interfaces", "network/interfaces.d/lan", "network/if-up.d/x",
                "systemd/network/10-lan.network", "systemd/network/10-lan.link",
                "systemd/network/br0.netdev", "systemd/network/README",
                "netplan/50-cloud-init.yaml", "netplan/old.yaml.bak",
                "udev/rules.d/70-persistent-net.rules", "udev/rules.d/60-other.rules"):
        (etc / rel).parent.mkdir(parents=True, exist_ok=True)
        (etc / rel).write_text("x\n")
    (etc / "systemd/network/99-default.link").symlink_to("/dev/null")  # names turned off
    (etc / "NetworkManager/system-connections").mkdir(parents=True)  # empty: not in use
    (etc / "network/interfaces.d/sub").mkdir()
    assert config_files(etc) == {
        "ifupdown": ["/etc/network/interfaces", "/etc/network/interfaces.d/lan"],
        "networkd": ["/etc/systemd/network/10-lan.network", "/etc/systemd/network/10-lan.link",
                     "/etc/systemd/network/99-default.link",
                     "/etc/systemd/network/br0.netdev"],
        "netplan": ["/etc/netplan/50-cloud-init.yaml"],
        "udev": ["/etc/udev/rules.d/70-persistent-net.rules"],
    }
    assert config_files(tmp_path / "empty") == {}
