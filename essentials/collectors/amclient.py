"""What an Amanda 3.5 client knows locally about how its servers back it up.

A client holds no disklist: the server sends the DLEs with every request.
What stays on the client, found by running real backups in the lab:

- amandad's debug logs (`/var/log/amanda/amandad/amandad.STAMP.debug`) quote
  every request packet.  A `sendsize` or `selfcheck` request carries *all*
  DLEs of this host in that config, a `sendbackup` request one, each as XML
  (`<program>GNUTAR|DUMP|APPLICATION</program>`, `<backup-program><plugin>
  amgtar</plugin>` for applications, `<disk>`, `<diskdevice>`), and the
  OPTIONS line names the config, the host name the server uses for this
  machine (`hostname=`) and the run (`timestamp=`).  This is the best source.
- the per-config client logs (`/var/log/amanda/client/CONF/`):
  `sendsize.*.debug` says "calculating for amname DISK, dirname DIR, spindle N
  PROGRAM" and `sendbackup.*.debug` "Parsed request as: program `P'" / "disk
  `D'" (an application shows as its plugin, e.g. `amgtar').
  Both kinds of debug log are deleted after `debug_days` (4 by default).
- records that are never pruned, but say neither config nor program and may
  name DLEs the server dropped long ago: `/var/lib/amanda/amandates` (GNU tar
  based DLEs, amgtar included: `DISK LEVEL UNIXTIME`), the listed-incremental
  files in `/var/lib/amanda/gnutar-lists/` (`HOST` + mangled disk + `_LEVEL`)
  and `/var/lib/dumpdates` (DUMP: `DEVICE LEVEL DATE`).
- `~backup/.amandahosts`: which servers may connect, as which user.

This module only parses (pure functions) and reads those files (gather);
client.yaml's shape is documented on summarise().
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

DEBUG_DIR = Path("/var/log/amanda")
AMANDATES = Path("/var/lib/amanda/amandates")
GNUTAR_LISTS = Path("/var/lib/amanda/gnutar-lists")
DUMPDATES = Path("/var/lib/dumpdates")

PROGRAMS = {"GNUTAR", "DUMP"}  # anything else a client log names is an application
DLE_SERVICES = {"sendsize", "sendbackup", "selfcheck"}
FORMAT = 1

_STAMP = re.compile(r"\.(\d{14})\d*\.debug$")
_PEER = re.compile(r"authenticated peer name is '([^']*)'")
_SENDSIZE = re.compile(r"sendsize: calculating for amname (.*), dirname (.*), spindle -?\d+ (\S+)$")
_SB_PROGRAM = re.compile(r"sendbackup:\s+Parsed request as: program `(.*)'$")
_SB_FIELD = re.compile(r"sendbackup:\s+(disk|device|level) `?(.*?)'?$")
_SB_START = re.compile(r"sendbackup: start: (.*?):(.*) lev (\d+)$")


@dataclass
class Request:
    """One request packet amandad received."""

    service: str
    options: dict
    dles: list = field(default_factory=list)
    peer: str | None = None


def stamp_of(path: str) -> str:
    """The 14-digit datestamp in a debug file's name ('' when there is none)."""
    m = _STAMP.search(str(path))
    return m.group(1) if m else ""


def unquote(s: str) -> str:
    """Undo Amanda's quote_string(): "..." with backslash escapes."""
    if len(s) < 2 or not (s.startswith('"') and s.endswith('"')):
        return s
    out, i, body = [], 0, s[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "\\": "\\", '"': '"'}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            if m and nxt not in escapes:
                out.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
                continue
            out.append(escapes.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def program_of(name: str) -> tuple[str, str | None]:
    """(program, application) from the name a client log prints."""
    return (name, None) if name in PROGRAMS else ("APPLICATION", name)


# -- amandad request packets ------------------------------------------------------

def parse_dle_xml(body: str) -> list[dict]:
    """The <dle> elements of a request body."""
    try:
        root = ET.fromstring(f"<dles>{body}</dles>")
    except ET.ParseError as e:
        log.warning("unparsable DLE XML in an amandad request: %s", e)
        return []
    out = []
    for el in root.iter("dle"):
        disk = (el.findtext("disk") or "").strip()
        if not disk:
            continue
        dle = {"disk": disk, "program": (el.findtext("program") or "").strip() or None}
        device = (el.findtext("diskdevice") or "").strip()
        if device and device != disk:
            dle["device"] = device
        plugin = el.findtext("backup-program/plugin")
        if plugin:
            dle["application"] = plugin.strip()
        for kind in ("exclude", "include"):
            sub = el.find(kind)
            if sub is not None:
                files = [f.text.strip() for f in sub.findall("file") if f.text]
                lists = [f.text.strip() for f in sub.findall("list") if f.text]
                if files:
                    dle[kind] = files
                if lists:
                    dle[f"{kind}_list"] = lists
        out.append(dle)
    return out


def _options(line: str) -> dict:
    out = {}
    for part in line[len("OPTIONS "):].split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_amandad_debug(text: str) -> list[Request]:
    """The REQ packets quoted in one amandad debug log."""
    out = []
    peer = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _PEER.search(line)
        if m:
            peer = m.group(1)
        if line.endswith("accept recv REQ pkt:") and i + 1 < len(lines) \
                and lines[i + 1].startswith("<<<<<"):
            j = i + 2
            packet = []
            while j < len(lines) and not lines[j].startswith(">>>>>"):
                packet.append(lines[j])
                j += 1
            i = j
            service, options, body = "", {}, []
            for pl in packet:
                if pl.startswith("SERVICE "):
                    service = pl.split(None, 1)[1].strip()
                elif pl.startswith("OPTIONS "):
                    options = _options(pl)
                else:
                    body.append(pl)
            req = Request(service, options, peer=peer)
            if service in DLE_SERVICES:
                req.dles = parse_dle_xml("\n".join(body))
            out.append(req)
        i += 1
    return out


# -- per-config client debug logs ---------------------------------------------------

def parse_sendsize_debug(text: str) -> list[dict]:
    out, seen = [], set()
    for line in text.splitlines():
        m = _SENDSIZE.search(line)
        if not m or m.group(1) in seen:
            continue
        seen.add(m.group(1))
        disk, dirname, name = unquote(m.group(1)), unquote(m.group(2)), m.group(3)
        program, app = program_of(name)
        dle = {"disk": disk, "program": program}
        if dirname and dirname != disk:
            dle["device"] = dirname
        if app:
            dle["application"] = app
        out.append(dle)
    return out


def parse_sendbackup_debug(text: str) -> dict | None:
    """The DLE one sendbackup run dumped, or None when the log names none."""
    dle, host = {}, None
    for line in text.splitlines():
        m = _SB_PROGRAM.search(line)
        if m:
            dle["program"], app = program_of(m.group(1))
            if app:
                dle["application"] = app
            continue
        if "program" in dle and "level" not in dle:
            m = _SB_FIELD.search(line)
            if m:
                dle[m.group(1)] = unquote(m.group(2))
                continue
        m = _SB_START.search(line)
        if m:
            host = m.group(1)
    if "disk" not in dle:
        return None
    if dle.get("device") == dle["disk"]:
        del dle["device"]
    dle.pop("level", None)
    if host:
        dle["hostname"] = host
    return dle


# -- records that outlive the debug logs --------------------------------------------

def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_amandates(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        parts = line.rstrip().rsplit(None, 2)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].lstrip("-").isdigit():
            continue
        out.append({"disk": unquote(parts[0]), "level": int(parts[1]),
                    "time": _iso(int(parts[2]))})
    return out


def parse_dumpdates(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1].isdigit():
            out.append({"device": parts[0], "level": int(parts[1]), "date": parts[2].strip()})
    return out


def parse_amandahosts(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            out.append({"host": words[0], "user": words[1] if len(words) > 1 else None,
                        "services": words[2:]})
    return out


# -- client.yaml ---------------------------------------------------------------------

def summarise(requests: list[tuple[str, Request]], client_logs: dict,
              amandates: list, dumpdates: list, gnutar_lists: list,
              amandahosts: list | None) -> dict:
    """client.yaml from everything gathered.

    requests:    [(debug file stamp, Request)] from amandad's logs
    client_logs: {config: [(debug file stamp, dle dict)]} from sendsize/sendbackup logs

    The result:
      format: 1
      backed_up: true            # any request, client log or record seen
      configs:                   # newest knowledge first per DLE
        - config: DailySet1
          hostname: db1          # this host's name in the server's disklist (null: unknown)
          servers: [backup1]     # peers amandad authenticated, when logged
          last_seen: "20261122020440"   # newest run (or debug file) naming this host
          dles:
            - {disk: /, program: GNUTAR, last_seen: "..."}
            - {disk: /dev/sda2, program: DUMP, last_seen: "..."}
            - {disk: apphome, device: /home, program: APPLICATION, application: amgtar, ...}
      records:                   # never pruned; no config, no program; may be stale
        amandates: [{disk, level, time}]   # GNU tar based DLEs (GNUTAR and amgtar)
        dumpdates: [{device, level, date}] # DUMP
        gnutar_lists: [file names]
      amandahosts: [{host, user, services}]  # null when there is no .amandahosts
    """
    groups: dict = {}

    def group(conf, host):
        return groups.setdefault((conf, host), {"config": conf, "hostname": host,
                                               "servers": set(), "last_seen": "", "dles": {}})

    def note(g, dle, seen, source):
        old = g["dles"].get(dle["disk"])
        if old is None or seen >= old["last_seen"]:
            new = {k: v for k, v in dle.items() if k != "hostname"}
            new["last_seen"] = seen
            new["source"] = source
            g["dles"][dle["disk"]] = new
        g["last_seen"] = max(g["last_seen"], seen)

    for stamp, req in requests:
        conf = req.options.get("config")
        if not conf or not req.dles:
            continue
        g = group(conf, req.options.get("hostname"))
        if req.peer:
            g["servers"].add(req.peer)
        seen = req.options.get("timestamp") or stamp
        for dle in req.dles:
            note(g, dle, seen, f"{req.service} request")

    for conf, entries in client_logs.items():
        # sendsize logs do not name the host; take it from the requests or sendbackup logs
        hosts = {h for (c, h) in groups if c == conf} or \
            {d["hostname"] for _, d in entries if d.get("hostname")}
        default_host = next(iter(hosts)) if len(hosts) == 1 else None
        for stamp, dle in sorted(entries, key=lambda e: e[0], reverse=True):  # newest wins
            known = [g for (c, _), g in groups.items() if c == conf and dle["disk"] in g["dles"]]
            if known:
                for g in known:  # the request is the better source; only refresh the date
                    if stamp > g["dles"][dle["disk"]]["last_seen"]:
                        g["dles"][dle["disk"]]["last_seen"] = stamp
                continue
            note(group(conf, dle.get("hostname") or default_host), dle, stamp,
                 "client debug log")

    configs = []
    for (conf, host), g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        configs.append({
            "config": conf, "hostname": host, "servers": sorted(g["servers"]),
            "last_seen": g["last_seen"],
            "dles": [g["dles"][d] for d in sorted(g["dles"])],
        })
    records = {"amandates": amandates, "dumpdates": dumpdates, "gnutar_lists": gnutar_lists}
    return {
        "format": FORMAT,
        "backed_up": bool(configs or amandates or dumpdates or gnutar_lists),
        "configs": configs,
        "records": records,
        "amandahosts": amandahosts,
    }


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None


def gather(debug_dir: Path = DEBUG_DIR, amandates: Path = AMANDATES,
           gnutar_lists: Path = GNUTAR_LISTS, dumpdates: Path = DUMPDATES,
           amandahosts: Path | None = None) -> dict:
    """Read what the client keeps and return client.yaml's content plus what was read."""
    requests = []
    amandad_logs = sorted((debug_dir / "amandad").glob("amandad.*.debug")) \
        if (debug_dir / "amandad").is_dir() else []
    for p in amandad_logs:
        text = _read(p)
        if text and "accept recv REQ pkt" in text:
            requests += [(stamp_of(p.name), r) for r in parse_amandad_debug(text)]
    client_logs: dict = {}
    n_client = 0
    client_dir = debug_dir / "client"
    for conf_dir in sorted(client_dir.iterdir()) if client_dir.is_dir() else []:
        if not conf_dir.is_dir():
            continue
        for p in sorted(conf_dir.glob("sendsize.*.debug")):
            n_client += 1
            client_logs.setdefault(conf_dir.name, []).extend(
                (stamp_of(p.name), d) for d in parse_sendsize_debug(_read(p) or ""))
        for p in sorted(conf_dir.glob("sendbackup.*.debug")):
            n_client += 1
            d = parse_sendbackup_debug(_read(p) or "")
            if d:
                client_logs.setdefault(conf_dir.name, []).append((stamp_of(p.name), d))
    lists = sorted(p.name for p in gnutar_lists.iterdir()) if gnutar_lists.is_dir() else []
    hosts_text = _read(amandahosts) if amandahosts else None
    out = summarise(requests, client_logs,
                    parse_amandates(_read(amandates) or ""),
                    parse_dumpdates(_read(dumpdates) or ""), lists,
                    parse_amandahosts(hosts_text) if hosts_text is not None else None)
    out["sources"] = {"amandad_logs": len(amandad_logs), "client_logs": n_client,
                      "debug_dir": str(debug_dir)}
    return out
