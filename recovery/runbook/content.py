"""What a host's runbook says, as data: read from a bundle and its catalog.

The facts come from the bundle's public parts only: the manifest, layout.yaml,
network/network.yaml, the package collector's summary and the Amanda
catalog.  etc.tar (the shadow file), amanda/keys (the encryption keys), the
LUKS header backups and the network configuration files are never opened:
what is not read cannot be printed.

The commands come from the engine's renderers (hand.py); this module picks
what to render them for: the plan's restore steps, the layout's disks under
their original names, the volumes as the catalog saw them.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field

from essentials.errors import AmdrError

from ..disks import show
from ..disks.mapping import human
from ..disks.plan import PlanError, needed_disks, plan_disks
from ..media import positioning
from ..restore import pipe
from . import hand

log = logging.getLogger(__name__)


@dataclass
class DleRestore:
    host: str
    disk: str
    program: str
    directory: str
    original: str
    images: list[dict]  # level, date, label, filenum, part, size
    volumes: list[str]
    blocks: list[hand.Block]


@dataclass
class HostRunbook:
    host: str
    identity: list[tuple[str, str]]
    disks: list[dict]
    partitions: list[dict]
    filesystems: list[dict]
    stacks: list[tuple[str, str]]  # (kind, one line): MD, LVM, LUKS
    boot: list[tuple[str, str]]
    interfaces: list[dict]
    routes: list[str]
    dns: list[tuple[str, str]]
    restores: list[DleRestore]
    errors: list[str]
    disk_blocks: list[hand.Block]
    disk_notes: list[str]
    live_steps: list[tuple[str, str]]  # (what, command)
    boot_steps: list[str]
    target: str
    forms: list[str]
    notes: list[str] = field(default_factory=list)


def amanda_date(d: str) -> str:
    """20261207043721 -> 2026-12-07 04:37:21 (a date alone stays a date)."""
    if len(d) >= 8 and d[:8].isdigit():
        out = f"{d[:4]}-{d[4:6]}-{d[6:8]}"
        if len(d) >= 14:
            out += f" {d[8:10]}:{d[10:12]}:{d[12:14]}"
        return out
    return d


# -- identity, disks, network (the bundle's facts) ---------------------------------

def os_name(bundle) -> str:
    det = ((bundle.manifest.get("collectors") or {}).get("packages") or {}).get("detail") or {}
    if det.get("name"):
        return det["name"]
    if bundle.has("packages/os-release"):
        for line in bundle.read_text("packages/os-release").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return "not collected"


def identity(bundle, layout: dict, network: dict | None, newest: str | None,
             amanda_host: str | None, bundle_name: str = "") -> list[tuple[str, str]]:
    m = bundle.manifest
    disks = ", ".join(f"{d['path']} {human(d['size'])}"
                      + (f" {d['model']}" if d.get("model") else "")
                      for d in layout.get("disks") or [])
    nics = ", ".join(f"{i['name']} ({i['driver']})" for i in (network or {})
                     .get("interfaces") or [] if i.get("driver"))
    fw = (layout.get("boot") or {}).get("firmware")
    hw = "; ".join(x for x in (f"firmware {fw.upper()}" if fw else "", f"disks: {disks}"
                               if disks else "", f"NICs: {nics}" if nics else "") if x)
    out = [("Host", m.get("host", "")), ("FQDN", m.get("fqdn") or ""),
           ("OS", os_name(bundle)), ("Hardware", hw or "not collected"),
           ("Bundle", f"{bundle_name} made {m.get('created', '')}".strip()),
           ("Newest backup", amanda_date(newest) if newest else "no backup found"),
           ("Amanda's name for it", amanda_host or "unknown")]
    site = m.get("site") or {}
    if site.get("role") or site.get("priority"):
        out.append(("Site plan", ", ".join(x for x in (
            f"role {site['role']}" if site.get("role") else "",
            f"priority {site['priority']}" if site.get("priority") else "") if x)))
    out.append(("amanda-dr", f"agent {m.get('agent_version', '?')}"))
    return out


def disk_rows(layout: dict) -> tuple[list[dict], list[dict]]:
    disks, parts = [], []
    for d in layout.get("disks") or []:
        pt = d.get("ptable") or {}
        disks.append({"path": d["path"], "model": d.get("model") or "", "serial":
                      d.get("serial") or "", "size": human(d["size"]),
                      "bytes": d["size"], "table": f"{pt.get('label', 'none')}"
                      + (f" {pt['id']}" if pt.get("id") else "")})
        ss = d.get("sector_size") or 512
        for p in pt.get("partitions") or []:
            parts.append({"path": p.get("path") or "", "number": p["number"],
                          "start": p["start"], "size": human(p["size"] * ss),
                          "sectors": p["size"], "type": p["type"], "name": p.get("name") or "",
                          "partuuid": p.get("uuid") or ""})
    return disks, parts


def fs_rows(layout: dict) -> list[dict]:
    out = []
    for f in layout.get("filesystems") or []:
        out.append({"device": f.get("device_path") or f.get("device") or "",
                    "type": f["type"], "uuid": f.get("uuid") or "", "label": f.get("label") or "",
                    "mountpoint": f.get("mountpoint") or "",
                    "used": human(f["used"]) if f.get("used") else ""})
    return out


def stack_rows(layout: dict) -> list[tuple[str, str]]:
    out = []
    for a in layout.get("md") or []:
        out.append(("RAID", f"{a['path']} {a.get('level')} UUID {a.get('uuid')}, members "
                            + " ".join(m.get("path") or "?" for m in a.get("members") or [])))
    for vg in layout.get("lvm") or []:
        pvs = " ".join(pv.get("path") or "?" for pv in vg.get("physical_volumes") or [])
        out.append(("LVM", f"volume group {vg['name']} on {pvs}"))
        for lv in vg.get("logical_volumes") or []:
            out.append(("LVM", f"  {lv.get('path')} {human(lv.get('size') or 0)}"
                               f" {lv.get('segtype') or ''}".rstrip()))
    for c in layout.get("luks") or []:
        out.append(("LUKS", f"{c.get('device_path')} LUKS{c.get('version')} UUID {c.get('uuid')}"
                            f" {c.get('cipher') or ''}, opened as {c.get('name') or '?'}"))
    return out


def boot_rows(layout: dict) -> list[tuple[str, str]]:
    b = layout.get("boot") or {}
    if not b:
        return [("Boot", "not collected")]
    out = [("Boot mode", (b.get("firmware") or "unknown").upper())]
    grub = b.get("grub") or {}
    devs = [g.get("path") or g.get("device") for g in grub.get("install_devices") or []]
    if grub.get("package"):
        out.append(("Boot loader", f"{grub['package']} on {', '.join(devs) or '(none)'}"))
    for e in ((b.get("efi") or {}).get("entries") or []):
        out.append(("EFI entry", f"Boot{e.get('number')} {e.get('label')}: "
                                 f"{e.get('loader') or ''} on partition "
                                 f"{e.get('partition_number')} "
                                 f"(PARTUUID {e.get('partuuid') or '?'})"))
    if b.get("cmdline"):
        out.append(("Kernel command line", b["cmdline"]))
    return out


def network_rows(net: dict | None):
    if not net:
        return [], [], [("DNS", "network not collected")]
    ifs = []
    for i in net.get("interfaces") or []:
        addrs = [f"{a['address']}/{a.get('prefix')}" for a in i.get("addresses") or []]
        dyn = [f"{a['address']}/{a.get('prefix')} (DHCP)" for a in i.get("dynamic") or []]
        ifs.append({"name": i["name"], "mac": i.get("mac") or "",
                    "addresses": ", ".join(addrs + dyn) or "(none)",
                    "hw": " ".join(x for x in (i.get("driver") or "", i.get("pci") or "") if x)})
    routes = []
    for r in (net.get("default_routes") or []) + (net.get("static_routes") or []):
        routes.append(f"{r.get('dst', 'default')} via {r.get('gateway', '?')}"
                      + (f" dev {r['dev']}" if r.get("dev") else ""))
    dns = net.get("dns") or {}
    return ifs, routes, [("Name servers", ", ".join(dns.get("nameservers") or []) or "(none)"),
                         ("Search", " ".join(dns.get("search") or []) or "(none)")]


# -- the commands ------------------------------------------------------------------

def disk_plan(bundle, layout: dict, target: str):
    """(blocks, notes): the disk plan diskinit would run on the original disks."""
    files: dict[str, str] = {}

    def file_for(rel: str) -> str:
        path = f"/tmp/amdr-{posixpath.basename(rel)}"
        try:
            files[path] = bundle.read_text(rel)
        except AmdrError:
            pass
        return path
    mapping = {d["path"]: d["path"] for d in needed_disks(layout)}
    try:
        actions = plan_disks(layout, mapping, None, target, files=file_for,
                             read=bundle.read_text)
    except PlanError as e:
        return [], [f"the disks cannot be recreated by these commands: {e}"]
    notes = [f"These commands recreate the disks under their original names "
             f"({', '.join(mapping) or 'none'}); on other disks, replace each name "
             f"everywhere below (partitions too), and check the sizes."]
    return hand.disk_blocks(actions, show.describe, files), notes


def live_steps(bundle_name: str, catalog_bundle: str | None, target: str,
               vtapes: str | None) -> list[tuple[str, str]]:
    cat = f" --catalog-bundle {catalog_bundle}" if catalog_bundle else ""
    vt = f" --vtapes {vtapes}" if vtapes else ""
    return [
        ("Boot the amanda-dr live image; find the bundles (USB stick, mail, sftp) and "
         "check they open",
         "amdr-recover bundles --check"),
        ("Look at the plan: the disks, every DLE's chain and volumes; nothing is changed",
         f"amdr-recover plan --bundle {bundle_name}{cat} --target {target}{vt}"),
        ("Recover: recreate the disks, restore every DLE, make it boot",
         f"amdr-recover recover --bundle {bundle_name}{cat} --target {target}{vt}"),
    ]


def boot_steps(layout: dict, target: str) -> list[str]:
    """By hand, after the restores: what finalize does in the common case."""
    b = layout.get("boot") or {}
    grub = b.get("grub") or {}
    devs = [g.get("path") or g.get("device") for g in grub.get("install_devices") or []]
    out = [f"for d in dev proc sys run; do mount --rbind /$d {target}/$d; done"]
    if b.get("firmware") == "uefi":
        out.append(f"chroot {target} grub-install --target=x86_64-efi --efi-directory=/boot/efi")
    elif devs:
        out += [f"chroot {target} grub-install {d}" for d in devs]
    else:
        disks = " or ".join(d["path"] for d in layout.get("disks") or []) or "the boot disk"
        out.append(f"# no GRUB install device was recorded: install the boot loader the "
                   f"system used on the disk the BIOS boots ({disks})")
    out += [f"chroot {target} update-initramfs -u -k all",
            f"chroot {target} update-grub",
            f"umount -R {target}"]
    return out


def image_rows(step, library) -> list[dict]:
    from ..restore.driver import image_bytes
    out = []
    for d in step.chain.dumps:
        try:
            size = image_bytes(library, [d]) if library is not None else None
        except (AmdrError, OSError):
            size = None
        if size is None and all(p.size for p in d.parts):
            size = sum(p.size for p in d.parts)
        for p in sorted(d.parts, key=lambda p: p.partnum):
            n = d.nparts or len(d.parts)
            out.append({"level": d.level, "date": amanda_date(d.date), "label": p.label,
                        "filenum": p.filenum, "part": f"{p.partnum}/{n}" if n > 1 else "",
                        "size": human(size) if size and p.partnum == 1 else ""})
    return out


def from_session(s, target: str, forms=hand.FORMS, tape: str = hand.DEFAULT_TAPE,
                 catalog_bundle: str | None = None) -> HostRunbook:
    """Everything the runbook prints, for the session's host (s: session.Session)."""
    b, layout = s.bundle, s.layout
    net = b.load_yaml("network/network.yaml") if b.has("network/network.yaml") else None
    notes, errors, restores = [], [], []
    amanda_host = None
    library = None
    newest = None
    try:
        amanda_host = s.host()
        try:
            library = s.library()
        except AmdrError as e:
            notes.append(f"the volumes were not at hand when this was made ({e}); the image "
                         f"files and their headers are not shown")
        steps, errs = s.restore_plan(getattr(library, "available", None))
        errors += [f"{h}:{d}: {m}" if not m.startswith(f"{h}:") else m for h, d, m in errs]
    except AmdrError as e:
        steps = []
        errors.append(str(e))
    devices = dict(getattr(s.cat, "devices", None) or {})
    if library is not None and hasattr(library, "labels"):
        devices.update({lab: library.device(lab) for lab in library.labels})
    if library is None or not hasattr(library, "image_path"):
        library = None
        media = positioning.VtapeMedia(devices)
        devices = {lab: media.device(lab) for lab in devices}
    header_of = pipe.header_reader(library)
    for st in steps:
        for d in st.chain.dumps:
            newest = max(newest or d.date, d.date)
        try:
            blocks = hand.restore_blocks(st, forms, devices=devices, library=library,
                                         tape=tape, header_of=header_of)
        except pipe.PipeError as e:
            blocks = [hand.Block("cannot be restored by hand", [f"# {e}"])]
        restores.append(DleRestore(st.host, st.disk, st.program, st.directory, st.original,
                                   image_rows(st, library),
                                   positioning.volumes_needed([st.chain]), blocks))
    disks, parts = disk_rows(layout)
    ifs, routes, dns = network_rows(net)
    dblocks, dnotes = disk_plan(b, layout, target)
    vtapes = getattr(s, "vtapes", None)
    name = getattr(s, "bundle_name", "") or b.host
    return HostRunbook(
        host=b.host, identity=identity(b, layout, net, newest, amanda_host, name),
        disks=disks, partitions=parts, filesystems=fs_rows(layout),
        stacks=stack_rows(layout), boot=boot_rows(layout), interfaces=ifs, routes=routes,
        dns=dns, restores=restores, errors=errors, disk_blocks=dblocks, disk_notes=dnotes,
        live_steps=live_steps(name, catalog_bundle, target, vtapes),
        boot_steps=boot_steps(layout, target), target=target, forms=list(forms), notes=notes)
