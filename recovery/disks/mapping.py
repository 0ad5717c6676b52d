"""Which present disk recreates which original disk (pure).

Order of evidence, strongest first:
  1. --map OLD=NEW, as given (OLD: the original path or the layout's disk id);
  2. the same disk: WWN, serial or a /dev/disk/by-id name in common;
  3. the same name and the same size, for an original disk that had no
     serial, WWN or by-id name (virtual disks, loop devices);
  4. size, among the free disks: the same size first, then the smallest
     larger disk, then the largest smaller one (the planner then checks the
     used data fits); blank disks before disks with something on them.
Steps 2 and 3 may land on a disk that is in use (the original disk, still
mounted): the guard then refuses it and says why, rather than something else
quietly being chosen.  Step 4 never picks a disk in use, the live system's
disk, a removable or read-only disk, or a loop device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 1024 ** 3


@dataclass
class Match:
    mapping: dict[str, str] = field(default_factory=dict)  # original path -> new path
    reasons: dict[str, str] = field(default_factory=dict)  # original path -> why
    problems: list[str] = field(default_factory=list)
    unmatched: dict[str, str] = field(default_factory=dict)  # original path -> why not


def human(n: int | None) -> str:
    if n is None:
        return "unknown size"
    for unit, size in (("TiB", 1024 ** 4), ("GiB", GIB), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _wwn(v) -> str | None:
    v = str(v or "").strip().lower()
    return v.removeprefix("0x") or None


def _serial(v) -> str | None:
    v = str(v or "").strip()
    return v or None


def _blank(d: dict) -> bool:
    return not (d.get("children") or d.get("fstype") or d.get("pttype"))


def identity_match(orig: dict, present: list[dict]) -> tuple[dict | None, str | None]:
    """The one present disk that is this original disk, and by what."""
    checks = (
        ("WWN", lambda d: _wwn(d.get("wwn")), _wwn(orig.get("wwn"))),
        ("serial", lambda d: _serial(d.get("serial")), _serial(orig.get("serial"))),
    )
    for what, get, want in checks:
        if want is None:
            continue
        hits = [d for d in present if get(d) == want]
        if len(hits) == 1:
            return hits[0], f"{what} {orig.get(what.lower()) or want}"
    names = set(orig.get("by_id") or [])
    if names:
        hits = [d for d in present if names & set(d.get("by_id") or [])]
        if len(hits) == 1:
            common = sorted(names & set(hits[0].get("by_id") or []))[0]
            return hits[0], f"/dev/disk/by-id/{common}"
    return None, None


def _has_identity(orig: dict) -> bool:
    return bool(_wwn(orig.get("wwn")) or _serial(orig.get("serial")) or orig.get("by_id"))


def size_candidates(free: list[dict], want: int) -> list[dict]:
    def key(d):
        size = int(d.get("size") or 0)
        cls = 0 if size == want else (1 if size > want else 2)
        return (cls, not _blank(d), abs(size - want), d["path"])
    return sorted(free, key=key)


def match_disks(layout_disks: list[dict], present_disks: list[dict], maps: dict | None = None,
                refused: dict[str, list[str]] | None = None) -> Match:
    """layout_disks: the layout's disks that need a disk; present_disks: top-level
    nodes of `lsblk --json -b -O` (with an optional by_id list added);
    refused: present path -> why it must not be wiped."""
    maps, refused = dict(maps or {}), refused or {}
    m = Match()
    by_path = {d["path"]: d for d in present_disks}
    used: set[str] = set()
    pending = []
    known = {d["path"] for d in layout_disks} | {d["id"] for d in layout_disks}
    for old in maps:
        if old not in known:
            m.problems.append(f"--map {old}={maps[old]}: the layout has no disk {old} (its "
                              f"disks: {', '.join(d['path'] for d in layout_disks)})")
    for d in layout_disks:
        new = maps.get(d["path"], maps.get(d["id"]))
        if new is not None:
            m.mapping[d["path"]] = new
            m.reasons[d["path"]] = "--map"
            used.add(new)
        else:
            pending.append(d)

    rest = []
    for d in pending:
        cand = [p for p in present_disks if p["path"] not in used]
        hit, why = identity_match(d, cand)
        if hit is None and not _has_identity(d):
            same = by_path.get(d["path"])
            if same and same["path"] not in used and int(same.get("size") or 0) == d["size"]:
                hit, why = same, "the same name and size (no serial or WWN to go by)"
        if hit is None:
            rest.append(d)
            continue
        m.mapping[d["path"]] = hit["path"]
        m.reasons[d["path"]] = why
        used.add(hit["path"])

    free = [p for p in present_disks
            if p.get("type") == "disk" and not refused.get(p["path"])
            and not p.get("rm") and not p.get("hotplug") and not p.get("ro")
            and int(p.get("size") or 0) > 0 and not str(p.get("name", "")).startswith("zram")]
    for d in sorted(rest, key=lambda d: -d["size"]):
        cand = size_candidates([p for p in free if p["path"] not in used], d["size"])
        if not cand:
            m.unmatched[d["path"]] = _why_none(d, present_disks, refused, used)
            continue
        hit = cand[0]
        size = int(hit["size"])
        if size == d["size"]:
            why = f"the same size ({human(size)})"
        elif size > d["size"]:
            why = f"size: the smallest free disk larger than {human(d['size'])} ({human(size)})"
        else:
            why = (f"size: no free disk of {human(d['size'])} or more; the largest is "
                   f"{human(size)}")
        if not _blank(hit):
            why += "; it is not blank"
        m.mapping[d["path"]] = hit["path"]
        m.reasons[d["path"]] = why
        used.add(hit["path"])
    return m


def _why_none(d: dict, present: list[dict], refused: dict, used: set) -> str:
    lines = ["no free disk to put it on"]
    for p in present:
        if p["path"] in used:
            continue
        if refused.get(p["path"]):
            lines.append(f"{p['path']} ({human(int(p.get('size') or 0))}) is not used: "
                         + "; ".join(refused[p["path"]]))
        elif p.get("type") != "disk":
            continue
        elif p.get("rm") or p.get("hotplug"):
            lines.append(f"{p['path']} is removable: name it with --map to use it")
        elif p.get("ro"):
            lines.append(f"{p['path']} is read-only")
    return "; ".join(lines)
