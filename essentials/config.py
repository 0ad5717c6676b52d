"""/etc/amanda-dr/essentials.yaml: loaded once, validated before anything runs.

Why a schema of our own instead of trusting YAML: the agent runs from cron
with nobody watching, so a typo ("recipents") must stop the run with a
message naming the file, the key and what was expected, not silently fall
back to a default and deliver nothing for months.

A schema node is one of:
  Field(type, default, required, doc, check)  a scalar or a list of scalars
  Section({key: node})                        a mapping with known keys
  ListOf(Section)                             a list of mappings
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from .collectors.capabilities import SYSTEM_PATHS
from .errors import ConfigError

DEFAULT_PATH = Path("/etc/amanda-dr/essentials.yaml")


@dataclass
class Field:
    type: type | tuple
    default: Any = None
    required: bool = False
    doc: str = ""
    check: Callable[[Any], str | None] | None = None  # returns a complaint or None
    items: type | None = None  # for type=list: the type of each item
    # names a file holding a secret: a secret pasted in its place must not be
    # echoed by an error into cron mail and the log
    secret: bool = False


@dataclass
class Section:
    keys: dict
    doc: str = ""


@dataclass
class ListOf:
    section: Section
    doc: str = ""


def _one_of(*choices):
    def check(v):
        return None if v in choices else f"one of {', '.join(map(str, choices))}"
    return check


def _positive(v):
    return None if v > 0 else "a number greater than 0"


def _absolute(v):
    return None if str(v).startswith("/") else "an absolute path"


def _all_absolute(v):
    return None if all(str(p).startswith("/") for p in v) else "a list of absolute paths"


DELIVERY_COMMON = {
    "type": Field(str, required=True, check=_one_of("sftp", "mail", "local"),
                  doc="sftp, mail or local"),
    "name": Field(str, doc="shown in logs and the spool; default: TYPE:TARGET"),
    "keep": Field(int, 8, check=_positive, doc="bundles of this host kept there (sftp, local)"),
}

SFTP = {
    "host": Field(str, doc="sftp server"),
    "port": Field(int, 22, check=_positive),
    "user": Field(str, doc="login name"),
    "key_file": Field(str, "/etc/amanda-dr/id_ed25519", check=_absolute,
                      doc="private key for key authentication (no passphrase: cron)",
                      secret=True),
    "known_hosts": Field(str, "/etc/amanda-dr/known_hosts", check=_absolute,
                         doc="the server's host key must be listed here"),
    "dir": Field(str, ".", doc="base directory; bundles go to DIR/HOST/"),
    "timeout": Field(int, 30, check=_positive, doc="seconds to connect"),
}

MAIL = {
    "smtp_host": Field(str, "127.0.0.1"),
    "port": Field(int, 25, check=_positive),
    "security": Field(str, "starttls", check=_one_of("starttls", "ssl", "none"),
                      doc="starttls, ssl (SMTPS) or none"),
    "user": Field(str, doc="SMTP AUTH login (optional)"),
    "password_file": Field(str, check=_absolute, doc="file holding the SMTP password",
                           secret=True),
    "ca_file": Field(str, check=_absolute, doc="CA to verify the server's certificate"),
    "from": Field(str, doc="sender address; default root@FQDN"),
    "to": Field(list, items=str, doc="recipient addresses"),
    "max_size_mb": Field((int, float), 20, check=_positive,
                         doc="a bundle larger than this is not mailed"),
    "timeout": Field(int, 30, check=_positive),
}

LOCAL = {
    "dir": Field(str, check=_absolute,
                 doc="directory to copy into (on the mounted medium when device is set)"),
    "device": Field(str, check=_absolute,
                    doc="removable device to mount at `dir` for the copy and unmount after"),
    "mount_options": Field(str, "rw,nosuid,nodev,noexec"),
    "create": Field(bool, False,
                    doc="make `dir` when it is missing (default: a missing dir fails the "
                        "delivery, e.g. a USB stick that is not mounted)"),
    "removable": Field(bool, False,
                       doc="`dir` is on a removable or mounted medium: refuse it when it is "
                           "on the root filesystem (the medium is not mounted)"),
}

DELIVERY_TYPES = {t: Section({**DELIVERY_COMMON, **keys})
                  for t, keys in (("sftp", SFTP), ("mail", MAIL), ("local", LOCAL))}
# which keys each delivery type needs, checked after the common validation
DELIVERY_REQUIRED = {"sftp": ("host", "user"), "mail": ("to",), "local": ("dir",)}


def _host_name(v):
    # it becomes a file name (spool, staging) and a remote directory (sftp DIR/HOST):
    # a `/` or `..` would put bundles outside them
    ok = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) and ".." not in v
    return None if ok else "a host name (letters, digits, '.', '-', '_'; no '/')"


SCHEMA = Section({
    "host": Field(str, check=_host_name,
                  doc="name used for the bundle; default: the short hostname"),
    "state_dir": Field(str, "/var/lib/amanda-dr", check=_absolute,
                       doc="lock, work area (root only) and the last bundle's layout"),
    "spool_dir": Field(str, "/var/spool/amanda-dr", check=_absolute,
                       doc="encrypted bundles waiting for delivery"),
    "spool_keep": Field(int, 4, check=_positive,
                        doc="undelivered bundles kept in the spool (oldest dropped first)"),
    "log_file": Field(str, "/var/log/amanda-dr/essentials.log", check=_absolute),
    "gpg": Section({
        "home": Field(str, "/etc/amanda-dr/gnupg", check=_absolute,
                      doc="GnuPG home holding the recipients' public keys and the host key"),
        "recipients": Field(list, required=True, items=str,
                            doc="fingerprints (or key ids / e-mails) to encrypt to"),
        "signer": Field(str, required=True, doc="fingerprint of this host's signing key"),
        "passphrase_file": Field(str, check=_absolute, secret=True,
                                 doc="file holding the signing key's passphrase, if it has one"),
    }, doc="encryption and signing"),
    "collect": Section({
        "etc": Section({
            "enabled": Field(bool, True),
            "exclude": Field(list, [], items=str,
                             doc="tar --exclude patterns, relative to / (e.g. etc/ssl/private)"),
        }),
        "layout": Section({
            "enabled": Field(bool, True),
            "disks": Field(list, [], items=str, doc="only these disks (default: all)"),
            "root": Field(str, "/", check=_absolute,
                          doc="directory the mountpoints are relative to (a system "
                              "mounted elsewhere, e.g. a chroot)"),
            "luks_header": Field(bool, False,
                                 doc="also keep a LUKS header backup (it holds key slots)"),
        }),
        "packages": Section({"enabled": Field(bool, True)}),
        "network": Section({"enabled": Field(bool, True)}),
        "capabilities": Section({
            "enabled": Field(bool, True),
            "paths": Field(list, list(SYSTEM_PATHS), items=str,
                           check=_all_absolute,
                           doc="where getcap -r looks (each on its own filesystem only)"),
        }),
        "amanda": Section({
            "enabled": Field(bool, True),
            "configs": Field(list, [], items=str, doc="server configs (default: all)"),
            "index_max_mb": Field((int, float), 200, check=_positive,
                                  doc="the index is left out when larger (compressed)"),
        }),
    }),
    "site": Section({
        "priority": Field(int, check=_positive,
                          doc="the site plan restores hosts in this order (1 first; "
                              "none given: after those with one)"),
        "role": Field(str, doc="what this host does (mail, database...): the site plan "
                               "and the runbook show it"),
    }, doc="this host in the site's recovery plan (amdr-recover site-plan)"),
    "assist": Section({
        "host": Field(str, doc="the office's jump host the live system calls out to"),
        "port": Field(int, 22, check=_positive, doc="its SSH port"),
        "user": Field(str, doc="the login there (authorized_keys lets it only forward "
                               "its port)"),
        "host_key": Field(str, doc="the jump host's public host key (ssh-ed25519 AAAA...): "
                                   "pinned, never trusted on first use"),
        "listen": Field(int, 2222, check=_positive,
                        doc="the port on the jump host's localhost the live system's sshd "
                            "is forwarded to (its permitlisten)"),
        "keys": Field(list, [], items=str,
                      doc="the office staff's public keys: the only keys the live "
                          "system's sshd accepts"),
    }, doc="remote assist: carried in the bundle for the live system"),
    "runbook": Section({
        "format": Field(str, "none", check=_one_of("none", "pdf", "html"),
                        doc="write this host's printable runbook beside each bundle "
                            "(amdr-recover runbook): pdf, html or none"),
        "sealed": Field(bool, True,
                        doc="encrypt and sign it as the bundle is (it holds no secret, "
                            "but disks, addresses and volumes: false sends it plain, "
                            "ready to print)"),
    }, doc="the runbook for the recovery kit, delivered with each bundle"),
    "deliveries": ListOf(Section({}), doc="where bundles go; each one independent"),
})

SSH_PUBLIC = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) "
                        r"[A-Za-z0-9+/]+={0,3}( .*)?$")


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "a list"}.get(t, t.__name__)


def _isinstance(v, t) -> bool:
    types = t if isinstance(t, tuple) else (t,)
    if isinstance(v, bool) and bool not in types:
        return False  # yaml `yes` must not pass as an integer
    return isinstance(v, types)


class _Validator:
    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, msg: str):
        raise ConfigError(f"{self.where}: {key}: {msg}")

    def section(self, node: Section, data, path: str) -> dict:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail(path or "top level", f"expected a mapping of keys, got {data!r}")
        for k in data:
            if k not in node.keys:
                owner = [t for t, sec in DELIVERY_TYPES.items()
                         if node in DELIVERY_TYPES.values() and k in sec.keys]
                if owner:
                    self.fail(_join(path, k), f"is a key of {' and '.join(owner)} deliveries, "
                              f"not of this one (type: {data.get('type')})")
                close = difflib.get_close_matches(str(k), list(node.keys), 1)
                hint = f" (did you mean '{close[0]}'?)" if close else \
                    f" (known keys: {', '.join(node.keys)})"
                self.fail(_join(path, k), f"unknown key{hint}")
        out = {}
        for k, sub in node.keys.items():
            out[k] = self.node(sub, data.get(k), _join(path, k), k in data)
        return out

    def delivery(self, data, path: str) -> dict:
        """A delivery's keys depend on its type, so the type is checked first."""
        if not isinstance(data, dict):
            self.fail(path, f"expected a mapping with a type, got {data!r}")
        t = self.node(DELIVERY_COMMON["type"], data.get("type"), f"{path}.type", "type" in data)
        return self.section(DELIVERY_TYPES[t], data, path)

    def node(self, node, value, path: str, present: bool):
        if isinstance(node, Section):
            return self.section(node, value, path)
        if isinstance(node, ListOf):
            if value is None:
                return []
            if not isinstance(value, list):
                self.fail(path, f"expected a list of mappings, got {value!r}")
            return [self.delivery(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if not present or value is None:
            if node.required:
                self.fail(path, f"missing; expected {node.doc or _type_name(node.type)}")
            return list(node.default) if isinstance(node.default, list) else node.default
        if node.type is list and node.items is str and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            # YAML read a bare key id such as 01234567 as a (maybe octal) number: the
            # text written is lost, so it cannot be repaired, only refused
            self.fail(path, f"got the number {value!r}; quote it ('...') so YAML keeps it "
                            f"as written")
        if node.type is list and isinstance(value, str) and node.items is str:
            value = [value]  # a single recipient needs no list brackets
        got = (f"a {type(value).__name__} of {len(str(value))} characters (not shown: this "
               f"key names the file of a secret)" if node.secret else repr(value))
        if not _isinstance(value, node.type):
            self.fail(path, f"expected {_type_name(node.type)}, got {got}")
        if node.type is list and node.items:
            for i, item in enumerate(value):
                if not _isinstance(item, node.items):
                    self.fail(f"{path}[{i}]", f"expected {_type_name(node.items)}, got {item!r}")
        if node.check:
            complaint = node.check(value)
            if complaint:
                self.fail(path, f"expected {complaint}, got {got}")
        return value


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def validate(data, where: str = "essentials.yaml") -> dict:
    v = _Validator(where)
    cfg = v.section(SCHEMA, data, "")
    if not cfg["gpg"]["recipients"]:
        v.fail("gpg.recipients", "empty; expected at least one key to encrypt to")
    names = set()
    for i, d in enumerate(cfg["deliveries"]):
        path = f"deliveries[{i}]"
        t = d["type"]
        for k in DELIVERY_REQUIRED[t]:
            if not d.get(k):
                v.fail(f"{path}.{k}", f"missing; a {t} delivery needs it")
        if not d["name"]:
            target = {"sftp": d.get("host"), "mail": ",".join(d.get("to") or []),
                      "local": d.get("device") or d.get("dir")}[t]
            d["name"] = f"{t}:{target}"
        if d["name"] in names:
            v.fail(f"{path}.name", f"'{d['name']}' is used twice; give each delivery its own name")
        names.add(d["name"])
        if t == "mail" and d["user"] and d["security"] == "none" \
                and d["smtp_host"] not in LOOPBACK:
            v.fail(f"{path}.security", f"none would send the SMTP password of {d['user']} to "
                                       f"{d['smtp_host']} in clear text; use starttls or ssl "
                                       f"(or no user)")
        if t == "local":
            where = _inside(d["dir"], cfg)
            if where:
                v.fail(f"{path}.dir", f"{d['dir']} is {where}; the copy there would be "
                                      f"removed again. Use a directory of its own")
    a = cfg["assist"]
    if any(a[k] for k in ("host", "user", "host_key")) or a["keys"]:
        for k in ("host", "user", "host_key"):
            if not a[k]:
                v.fail(f"assist.{k}", "missing; remote assist needs host, user and host_key")
        if not SSH_PUBLIC.match(a["host_key"].strip()):
            v.fail("assist.host_key", "expected an OpenSSH public key line ('ssh-ed25519 "
                                      "AAAA...', as in known_hosts without the host name)")
        for i, k in enumerate(a["keys"]):
            if not SSH_PUBLIC.match(k.strip()):
                v.fail(f"assist.keys[{i}]", "expected an OpenSSH public key line")
        if not 0 < a["port"] < 65536 or not 0 < a["listen"] < 65536:
            v.fail("assist.port", "a TCP port (1-65535)")
    spool, work = os.path.normpath(cfg["spool_dir"]), _work_dir(cfg)
    if _under(spool, work):
        v.fail("spool_dir", f"{spool} is inside {work}, the work area every run empties; "
                            f"use a directory of its own")
    return cfg


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def manifest_extra(cfg) -> dict:
    """What the bundle's manifest carries of the configuration: the host's
    place in the site plan and the office's remote-assist settings (public
    keys and addresses only, nothing secret)."""
    out = {}
    site = {k: v for k, v in cfg["site"].items() if v is not None}
    if site:
        out["site"] = site
    if cfg["assist"]["host"]:
        out["assist"] = dict(cfg["assist"])
    return out


def _work_dir(cfg) -> str:
    return os.path.join(os.path.normpath(cfg["state_dir"]), "work")


def _under(path: str, top: str) -> bool:
    path, top = os.path.normpath(path), os.path.normpath(top)
    return path == top or path.startswith(top.rstrip("/") + "/")


def _inside(d: str, cfg) -> str | None:
    """Why a local delivery may not copy into `d`, or None."""
    d = os.path.normpath(d)
    if d == os.path.normpath(cfg["spool_dir"]):
        return "spool_dir, which a bundle leaves once delivered everywhere"
    if _under(d, _work_dir(cfg)):
        return f"inside {_work_dir(cfg)}, the work area every run empties"
    return None


def read_yaml_file(path: Path | str, missing_hint: str = ""):
    """A YAML file's document; ConfigError names the file and, for a syntax
    error, the line and column (essentials.yaml, answers files, site settings)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file{missing_hint}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: "
                          f"{getattr(e, 'problem', None) or e}") from None


def load(path: Path | str = DEFAULT_PATH) -> dict:
    data = read_yaml_file(path, "; write one from `amdr-essentials config-example`")
    return validate(data, str(path))


def read_secret_file(path: str, what: str) -> str:
    """A passphrase or password from a file only root may read."""
    try:
        st = os.stat(path)
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror}") from None
    if st.st_mode & 0o077:
        raise ConfigError(f"{path}: the {what} file is readable by others "
                          f"(mode {st.st_mode & 0o777:o}); chmod 600 it")
    return text.rstrip("\n")


def _example_lines(node, indent: int) -> list[str]:
    pad = "  " * indent
    lines = []
    for k, sub in node.keys.items():
        if isinstance(sub, Section):
            if sub.doc:
                lines.append(f"{pad}# {sub.doc}")
            lines.append(f"{pad}{k}:")
            lines += _example_lines(sub, indent + 1)
        elif isinstance(sub, ListOf):
            continue
        elif isinstance(sub, Field):
            doc = f"  # {sub.doc}" if sub.doc else ""
            if sub.required:
                doc = f"  # required: {sub.doc}" if sub.doc else "  # required"
            val = yaml.safe_dump(sub.default, default_flow_style=True).strip()
            if val.endswith("..."):
                val = val[:-3].strip()
            if sub.default is None:
                lines.append(f"{pad}# {k}:{doc}")
            else:
                lines.append(f"{pad}{k}: {val}{doc}")
    return lines


EXAMPLE_TAIL = """\
# Where bundles go. Each delivery is independent: one failing never stops the
# others, and a bundle not delivered everywhere stays in spool_dir and is
# retried on the next run.
deliveries:
  - type: sftp
    host: backup-store.example.com
    port: 22
    user: amdr
    key_file: /etc/amanda-dr/id_ed25519      # key authentication only
    known_hosts: /etc/amanda-dr/known_hosts  # unknown or changed host key = refused
    dir: bundles                             # bundles go to bundles/HOST/
    keep: 8                                  # newest 8 of this host kept there
  - type: mail
    smtp_host: mail.example.com
    port: 587
    security: starttls                       # starttls, ssl (port 465) or none
    user: amdr                               # optional SMTP AUTH
    password_file: /etc/amanda-dr/smtp-password
    to: [dr-team@example.com]
    max_size_mb: 20
  - type: local
    dir: /mnt/usb/amanda-dr                  # a directory, or the mountpoint of:
    device: /dev/disk/by-label/AMDR-USB      # optional: mounted for the copy, unmounted after
    keep: 4
  - type: local
    name: usb-stick
    dir: /media/usb/amanda-dr                # a stick someone else mounts
    removable: true                          # refused while it is not mounted (it would
                                             # be a directory on the root filesystem)
    create: false                            # true: make dir when it is missing; false (the
                                             # default): a missing dir fails the delivery
"""


def example() -> str:
    head = ["# /etc/amanda-dr/essentials.yaml: amdr-essentials configuration",
            "# Validated on load: an unknown key or a wrong type stops the run (exit 2).", ""]
    body = _example_lines(SCHEMA, 0)
    body = [ln.replace("# recipients:", "recipients: [0123456789ABCDEF0123456789ABCDEF01234567]", 1) if "recipients:" in ln else ln for ln in body]
    body = [ln.replace("# signer:", "signer: FEDCBA9876543210FEDCBA9876543210FEDCBA98", 1)
            if "signer:" in ln else ln for ln in body]
    return "\n".join(head + body) + "\n\n" + EXAMPLE_TAIL
