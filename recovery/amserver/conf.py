"""amanda.conf, amanda-client.conf for the rebuilt server (pure).

The old server's amanda.conf is kept (its dumptypes, applications and
scripts are what its disklist names), with what belonged to the lost
machine replaced: the state paths point at a new state directory, the
changer at the device or vtapes at hand, the dump user is `backup`, and
holding disks, include files and other paths that do not exist here are
commented out with a note instead of making every Amanda tool fail.

Restores go through the storage a trace log names ("ST:x"), which
Amanda::Restore looks up by name, so every storage the logs name is
defined again, on the device at hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog.amconf import _strip_comment
from ..media.quoting import split_quoted
from .names import qstr, quote

AMANDA_ETC = Path("/etc/amanda")

# top-level parameters that described the lost machine; always replaced
REPLACED = {"infofile", "logdir", "indexdir", "tapelist", "diskfile", "tpchanger",
            "tapedev", "changerfile", "changerdev", "amrecover-changer", "dumpuser",
            "storage", "vault-storage"}
# top-level parameters naming a file or directory; dropped when it is not here
PATHS = {"includefile", "tmpdir", "mailer", "reporter-ps", "krb5keytab"}


@dataclass
class Target:
    """Where the rebuilt server lives and which device it reads."""

    name: str
    state: Path  # new state directory: log/, index/, curinfo/
    changer: str  # tpchanger: chg-disk:DIR, chg-single:tape:/dev/nst0, chg-robot:...
    etc: Path = AMANDA_ETC

    @property
    def confdir(self) -> Path:
        return Path(self.etc) / self.name

    @property
    def logdir(self) -> Path:
        return Path(self.state) / "log"

    @property
    def indexdir(self) -> Path:
        return Path(self.state) / "index"

    @property
    def infofile(self) -> Path:
        return Path(self.state) / "curinfo"

    @property
    def tapelist(self) -> Path:
        return self.confdir / "tapelist"

    @property
    def disklist(self) -> Path:
        return self.confdir / "disklist"


def changer_for(vtapes: str | None = None, tape_device: str | None = None,
                changer: str | None = None) -> str:
    """The tpchanger value for what the person has at hand (exactly one of them)."""
    given = [x for x in (vtapes, tape_device, changer) if x]
    if len(given) != 1:
        raise ValueError("give exactly one of: a vtape directory, a tape device, a changer")
    if vtapes:
        return f"chg-disk:{os.path.abspath(vtapes)}"
    if tape_device:
        dev = tape_device if ":" in tape_device else f"tape:{tape_device}"
        return f"chg-single:{dev}"
    return changer


@dataclass
class _Item:
    lines: list[str]
    tokens: list[str]  # of the first line, comment stripped
    block: bool = False

    @property
    def key(self) -> str:
        return self.tokens[0].lower().replace("_", "-") if self.tokens else ""


def _items(text: str) -> list[_Item]:
    """Top-level items: one line each, or a whole `... {` to `}` block."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        t = split_quoted(_strip_comment(lines[i]))
        if t and t[-1] == "{":
            depth, j = 1, i + 1
            while j < len(lines) and depth:
                tj = split_quoted(_strip_comment(lines[j]))
                if tj and tj[-1] == "{":
                    depth += 1
                elif tj and tj[0] == "}":
                    depth -= 1
                j += 1
            out.append(_Item(lines[i:j], t, True))
            i = j
        else:
            out.append(_Item([lines[i]], t))
            i += 1
    return out


def _block_value(item: _Item, key: str) -> str | None:
    for line in item.lines[1:]:
        t = split_quoted(_strip_comment(line))
        if len(t) >= 2 and t[0].lower().replace("_", "-") == key:
            return t[1]
    return None


def _commented(item: _Item, why: str) -> list[str]:
    return [f"# amanda-dr: {why}:"] + [f"#   {line}" for line in item.lines]


def state_section(target: Target, storages: list[str]) -> str:
    """What the rebuilt server knows of this machine: paths, user, device."""
    ch = qstr(target.changer)
    lines = [
        "# ---- amanda-dr rebuild-server: this machine's paths and device ----",
        'dumpuser "backup"',
        f"infofile {qstr(target.infofile)}",
        f"logdir {qstr(target.logdir)}",
        f"indexdir {qstr(target.indexdir)}",
        f"tapelist {qstr(target.tapelist)}",
        f"diskfile {qstr(target.disklist)}",
        f"tpchanger {ch}",
    ]
    for st in storages:
        # an identifier, quoted only when it must be: 3.5.1 rejects some
        # quoted storage names ("validate_no_space_dquote invalid type 0")
        lines += [f"define storage {quote(st)} {{", f"  tpchanger {ch}", "}"]
    if storages:
        lines.append(f"storage {qstr(storages[0])}")
    return "\n".join(lines) + "\n"


@dataclass
class Rewritten:
    text: str
    notes: list[str] = field(default_factory=list)
    dumptypes: set[str] = field(default_factory=set)


def rewrite_conf(old: str, target: Target, storages: list[str], exists=os.path.exists,
                 extra: str = "") -> Rewritten:
    """The old server's amanda.conf, made to work on this machine."""
    out, notes, dumptypes, dropped_hd = [], [], set(), set()
    items = _items(old)
    for it in items:
        t = it.tokens
        if it.block:
            kind = [x.lower() for x in t[:2]]
            if kind[:1] == ["define"] and len(t) >= 3:
                what = kind[1].replace("_", "-")
                if what == "dumptype":
                    dumptypes.add(t[2])
                if what == "storage":
                    out += _commented(it, f"the lost server's storage {t[2]} (redefined below)")
                    continue
                if what == "holdingdisk":
                    d = _block_value(it, "directory")
                    if d and not exists(d):
                        dropped_hd.add(t[2])
                        notes.append(f"holding disk {t[2]} dropped: {d} does not exist here "
                                     f"(restores do not use it)")
                        out += _commented(it, f"holding disk directory {d} is not here")
                        continue
            elif kind[:1] == ["holdingdisk"] and len(t) >= 3:
                d = _block_value(it, "directory")
                if d and not exists(d):
                    notes.append(f"holding disk {t[1]} dropped: {d} does not exist here "
                                 f"(restores do not use it)")
                    out += _commented(it, f"holding disk directory {d} is not here")
                    continue
            out += it.lines
            continue
        key = it.key
        if key in REPLACED:
            out += _commented(it, "replaced below")
            continue
        if key == "holdingdisk" and len(t) >= 2 and t[1] in dropped_hd:
            out += _commented(it, f"holding disk {t[1]} was dropped")
            continue
        if key in PATHS and len(t) >= 2:
            p = t[1]
            full = p if p.startswith("/") else str(target.confdir / p)
            if key == "mailer" or key == "reporter-ps":
                full = p.split()[0] if p else p
            if full and full.startswith("/") and not exists(full):
                notes.append(f"{key} {p} dropped: it does not exist here")
                out += _commented(it, f"{p} does not exist here")
                continue
        out += it.lines
    text = "\n".join(out).rstrip("\n") + "\n\n" + state_section(target, storages)
    if extra:
        text += "\n" + extra
    return Rewritten(text, notes, dumptypes)


def fresh_conf(target: Target, storages: list[str], dumptypes: str, ntapes: int) -> str:
    """A configuration for a catalog that came without one (scan, reports)."""
    head = (f"org {qstr(target.name)}\n"
            'mailto ""\n'
            f"tapecycle {max(ntapes, 1)} tapes\n"
            "dumpcycle 7 days\n"
            "runtapes 1\n"
            "define tapetype amdr-volume {\n  length 100 gbytes\n}\n"
            'tapetype "amdr-volume"\n'
            "# written by amanda-dr rebuild-server from a catalog without amanda.conf;\n"
            "# the volumes are marked no-reuse in the tapelist so that no amdump\n"
            "# overwrites them before they are looked at\n")
    return head + "\n" + state_section(target, storages) + "\n" + dumptypes


def client_conf(target: Target, server: str = "localhost") -> str:
    """amanda-client.conf: amrecover on this machine talks to this machine."""
    return (f"conf {qstr(target.name)}\n"
            f"index_server {qstr(server)}\n"
            f"tape_server {qstr(server)}\n"
            'auth "local"\n')


def storages_in_logs(texts) -> list[str]:
    """Storage names the trace logs write parts with ("ST:x"), first seen first."""
    seen = []
    for text in texts:
        for line in text.splitlines():
            if not line.startswith(("PART ", "DONE ", "START taper", "PARTIAL ")):
                continue
            for tok in split_quoted(line)[2:5]:
                if tok.startswith("ST:") and tok[3:] not in seen:
                    seen.append(tok[3:])
    return seen
