"""A disk plan for people and for programs (pure).

Each action with what it does in a sentence, the ids of the actions it
builds on (refs: what it reads was made, opened or mounted by them), its
commands and notes.  refs are worked out from the devices each action
reads and makes, so the planners need not keep them by hand: a partition
table refers to the wipe of its disk, a filesystem to the table, array,
mapping or volume group its device comes from, a mount to the filesystem
and to the mount of its parent directory.
"""

from __future__ import annotations

from .mapping import human


def _reads_makes(a) -> tuple[list[str], list[str], list[str]]:
    """(device paths it reads, paths it makes (a trailing / : every path under
    it), ids it builds on directly)."""
    t = a.type
    if t == "wipe":
        return [], [a.device], []
    if t == "partition_table":
        return [a.device], [p.path for p in a.partitions], []
    if t == "raid":
        return [m for m in a.members + a.spares if m != "missing"], [a.path], []
    if t == "md_assemble":
        return list(a.members), [a.path], []
    if t == "luks_format":
        return [a.path], [a.path], []
    if t == "luks_open":
        return [a.path], [a.mapper], []
    if t == "lvm_pv":
        return [a.path], [], []
    if t == "lvm_vg":
        return [], [f"/dev/{a.name}/"], [f"pv-{d}" for d in a.pvs]
    if t == "lvm_activate":
        return list(a.pvs), [f"/dev/{a.name}/"], []
    if t == "format":
        return [a.path], [], []
    if t == "check":  # the mounts after it wait for it
        paths = [f["path"] for f in a.filesystems]
        return paths, paths, []
    if t == "mount":
        return [a.path], [], [f"format-{a.filesystem}"]
    return [], [], []


def _inside(path: str, top: str) -> bool:
    top = top.rstrip("/") or "/"
    return path != top and (top == "/" or path.startswith(top + "/"))


def refs(actions) -> dict[str, list[str]]:
    """Action id -> the ids of the earlier actions it builds on."""
    out: dict[str, list[str]] = {}
    made: dict[str, str] = {}  # path -> id of the latest action making it
    mounts: list = []
    unmounts: list = []
    ids = set()
    prev_deactivation = None
    for a in actions:
        r: list[str] = []
        if a.type == "unmount":
            r = [u.id for u in unmounts if _inside(u.mountpoint, a.mountpoint)]
            unmounts.append(a)
        elif a.type in ("lvm_deactivate", "luks_close", "md_stop"):
            r = [prev_deactivation] if prev_deactivation else [u.id for u in unmounts]
            prev_deactivation = a.id
        else:
            reads, makes, direct = _reads_makes(a)
            r = [i for i in direct if i in ids]
            if not r:
                for p in reads:
                    by = made.get(p) or next((made[k] for k in reversed(list(made))
                                              if k.endswith("/") and p.startswith(k)), None)
                    if by:
                        r.append(by)
            if a.type == "mount":
                parents = [m for m in mounts if m.target == a.target
                           or _inside(a.target, m.target)]
                if parents:
                    r.append(max(parents, key=lambda m: len(m.target)).id)
                mounts.append(a)
            for p in makes:
                made.pop(p, None)
                made[p] = a.id
        out[a.id] = list(dict.fromkeys(i for i in r if i != a.id))
        ids.add(a.id)
    return out


def describe(a) -> str:
    """What the action does, in one sentence."""
    if hasattr(a, "what"):  # finalize's actions say it themselves
        return a.what()
    t = a.type
    if t == "preflight":
        s = ("check before changing anything that these are installed: "
             + (", ".join(a.tools) or "(none)"))
        if getattr(a, "passphrase_for", None):
            s += f"; ask the passphrase for {', '.join(a.passphrase_for)}"
        if getattr(a, "unique_uuids", None) or getattr(a, "unique_pv_uuids", None):
            s += "; no disk that stays carries a UUID to be recreated"
        return s
    if t == "wipe":
        s = f"wipe every signature on {a.device}, the disk for {' and '.join([a.disk] + a.also)}"
        if a.holders:
            s += f", after stopping {', '.join(h['path'] for h in a.holders)}"
        return s
    if t == "partition_table":
        parts = ", ".join(p.path for p in a.partitions)
        return (f"{a.label.upper()} partition table on {a.device}"
                + (f": {parts}" if parts else ", no partitions"))
    if t == "raid":
        return (f"create {a.level} array {a.path} (UUID {a.uuid}) from "
                f"{' '.join(a.members + a.spares)}")
    if t == "md_assemble":
        return f"assemble array {a.path} (UUID {a.uuid}) from {' '.join(a.members)}"
    if t == "luks_format":
        key = f"key file {a.key_file}" if a.key_file else "the passphrase asked"
        return f"LUKS{a.version} container on {a.path} (UUID {a.uuid}), {key}"
    if t == "luks_open":
        key = f"key file {a.key_file}" if a.key_file else "the passphrase asked"
        return f"open {a.path} as {a.mapper} with {key}"
    if t == "lvm_pv":
        return f"LVM physical volume on {a.path} (UUID {a.uuid})"
    if t == "lvm_vg":
        return (f"volume group {a.name} and its logical volumes from {a.restorefile}, "
                f"activated")
    if t == "lvm_activate":
        return f"activate volume group {a.name}"
    if t == "format":
        s = f"{a.fstype} on {a.path} (UUID {a.uuid}" + (f", label {a.label}" if a.label
                                                         else "") + ")"
        if a.subvolumes:
            s += f" with subvolumes {', '.join(sv['path'] for sv in a.subvolumes)}"
        return s
    if t == "check":
        return ("check the filesystems on activated devices carry their UUIDs: "
                + ", ".join(f"{f['path']} {f['uuid']}" for f in a.filesystems))
    if t == "mount":
        return (f"mount {a.path} ({a.fstype}, {a.mountpoint} of the system) on {a.target}"
                + (f" with -o {a.options}" if a.options else ""))
    if t == "unmount":
        return f"unmount {a.mountpoint}"
    if t == "lvm_deactivate":
        return f"deactivate volume group {a.name}"
    if t == "luks_close":
        return f"close /dev/mapper/{a.name}"
    if t == "md_stop":
        return f"stop array {a.path}"
    return t


def notes_of(a) -> list[str]:
    return list(getattr(a, "notes", None) or [])


def action_doc(a, its_refs: list[str]) -> dict:
    """One action for programs: commands are render()'s argv lists; stdin,
    when a command reads a script, has it at the same index (a passphrase
    is never shown: "<passphrase>")."""
    steps = a.steps()
    d = {"id": a.id, "type": a.type, "does": describe(a), "refs": its_refs,
         "commands": [s.argv for s in steps], "notes": notes_of(a)}
    if any(s.stdin is not None or s.secret_stdin is not None for s in steps):
        d["stdin"] = [s.stdin if s.stdin is not None else
                      ("<passphrase>" if s.secret_stdin is not None else None) for s in steps]
    details = a.fields()
    details.pop("notes", None)
    d["details"] = details
    return d


def doc(actions) -> list[dict]:
    r = refs(actions)
    return [action_doc(a, r[a.id]) for a in actions]


def text(actions, indent: str = "  ") -> list[str]:
    """Per action: its id, what it does, what it builds on; its commands (and
    the scripts they read), its notes."""
    r = refs(actions)
    out = []
    for a in actions:
        after = f"  [after {', '.join(r[a.id])}]" if r[a.id] else ""
        out.append(f"{indent}{a.id}: {describe(a)}{after}")
        for s in a.steps():
            out.append(f"{indent}    $ {s.shown()}")
            if s.stdin is not None:
                out += [f"{indent}        {ln}".rstrip()
                        for ln in s.stdin.rstrip("\n").splitlines()]
        for n in notes_of(a):
            out.append(f"{indent}    note: {n}")
    return out


def mapping_doc(layout: dict, mapping: dict[str, str], reasons: dict[str, str]) -> list[dict]:
    out = []
    for d in layout["disks"]:
        if d["path"] in mapping:
            out.append({"disk": d["id"], "original": d["path"], "size": d["size"],
                        "present": mapping[d["path"]], "reason": reasons.get(d["path"])})
    return out


def mapping_text(layout: dict, mapping: dict[str, str], reasons: dict[str, str],
                 indent: str = "  ") -> list[str]:
    return [f"{indent}{m['original']} ({m['disk']}, {human(m['size'])}) -> {m['present']}"
            + (f"  chosen by: {m['reason']}" if m.get("reason") else "")
            for m in mapping_doc(layout, mapping, reasons)]
