"""Just enough of amanda.conf and disklist to plan a restore.

What recovery needs from them: each DLE's program (GNUTAR, DUMP or an
application), which follows from its dumptype and the dumptypes that one
inherits; and where the volumes live (tpchanger).  Amanda's own default
program is DUMP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..media.quoting import split_quoted


@dataclass
class DumpType:
    """A block's lines in order: ("set", key, value) or ("inherit", name).

    Order matters: Amanda merges a parent's values at the line naming it,
    so a setting after it overrides the parent and one before it does not.
    """

    name: str
    items: list[tuple] = field(default_factory=list)

    @property
    def params(self) -> dict:
        return {i[1]: i[2] for i in self.items if i[0] == "set"}

    @property
    def parents(self) -> list[str]:
        return [i[1] for i in self.items if i[0] == "inherit"]


@dataclass
class AmandaConf:
    params: dict = field(default_factory=dict)
    dumptypes: dict[str, DumpType] = field(default_factory=dict)

    # `define application-tool NAME { plugin "amgtar" ... }` (and `define application`)
    applications: dict[str, DumpType] = field(default_factory=dict)

    def resolve(self, dumptype: str, key: str, default=None, _seen=None, table=None):
        table = self.dumptypes if table is None else table
        seen = _seen or set()
        dt = table.get(dumptype)
        if dt is None or dumptype in seen:
            return default
        seen.add(dumptype)
        for item in reversed(dt.items):
            if item[0] == "set" and item[1] == key:
                return item[2]
            if item[0] == "inherit":
                v = self.resolve(item[1], key, None, set(seen), table)
                if v is not None:
                    return v
        return default

    def program(self, dumptype: str) -> str:
        """GNUTAR, DUMP, or APPLICATION:PLUGIN: an application by the plugin its
        application-tool runs (`application "site_tar"` with `plugin "amgtar"` is
        amgtar), not by the name a site gave it."""
        prog = (self.resolve(dumptype, "program", "DUMP") or "DUMP").upper()
        if prog == "APPLICATION":
            app = self.resolve(dumptype, "application")
            if not app:
                return prog
            plugin = self.resolve(app, "plugin", None, table=self.applications)
            return f"APPLICATION:{plugin or app}"
        return prog

    @property
    def changer(self) -> str | None:
        return self.params.get("tpchanger") or self.params.get("tapedev")


def _strip_comment(line: str) -> str:
    out, q = [], False
    for ch in line:
        if ch == '"':
            q = not q
        if ch == "#" and not q:
            break
        out.append(ch)
    return "".join(out).strip()


def _block(tokens_lines, i, dt: DumpType) -> int:
    """Read a { ... } body into dt; return the index after the closing brace."""
    depth = 1
    while i < len(tokens_lines):
        t = tokens_lines[i]
        i += 1
        if not t:
            continue
        if t[0] == "}":
            depth -= 1
            if depth == 0:
                return i
            continue
        if t[-1] == "{":
            depth += 1
            continue
        if depth > 1:
            continue
        if len(t) == 1:
            dt.items.append(("inherit", t[0]))
        else:
            dt.items.append(("set", t[0].lower().replace("_", "-"), " ".join(t[1:])))
    return i


def parse_conf(text: str) -> AmandaConf:
    conf = AmandaConf()
    lines = [split_quoted(_strip_comment(l)) for l in text.splitlines()]
    i = 0
    while i < len(lines):
        t = lines[i]
        i += 1
        if not t:
            continue
        if t[0] == "define" and len(t) >= 3:
            kind, name = t[1].lower(), t[2]
            dt = DumpType(name)
            if t[-1] == "{":
                i = _block(lines, i, dt)
            if kind == "dumptype":
                conf.dumptypes[name] = dt
            elif kind in ("application-tool", "application"):
                conf.applications[name] = dt
            continue
        if t[-1] == "{":  # holdingdisk NAME { ... } and the like
            i = _block(lines, i, DumpType("_"))
            continue
        conf.params[t[0].lower().replace("_", "-")] = " ".join(t[1:])
    return conf


@dataclass
class DiskEntry:
    host: str
    disk: str
    device: str
    dumptype: str
    program: str


def parse_disklist(text: str, conf: AmandaConf | None = None) -> list[DiskEntry]:
    conf = conf or AmandaConf()
    lines = [split_quoted(_strip_comment(l)) for l in text.splitlines()]
    out, i = [], 0
    while i < len(lines):
        t = lines[i]
        i += 1
        if len(t) < 3:
            continue
        # hostname diskname [diskdevice] dumptype|{...} [spindle [interface]]
        host, disk, rest = t[0], t[1], t[2:]
        has_device = len(rest) >= 2 and not rest[1].lstrip("-").isdigit()
        device = rest[0] if has_device else disk
        dt_token = rest[1] if has_device else rest[0]
        if dt_token == "{":
            name = f"_inline_{host}:{disk}"
            conf.dumptypes[name] = DumpType(name)
            i = _block(lines, i, conf.dumptypes[name])
            dt_token = name
        dumptype = dt_token
        out.append(DiskEntry(host, disk, device, dumptype, conf.program(dumptype)))
    return out
