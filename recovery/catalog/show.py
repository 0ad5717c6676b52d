"""The catalog's chains for programs (one JSON shape) and for people (text)."""

from __future__ import annotations

from ..restore.plan import is_tar
from . import positioning
from .chains import Chain


def doc(chains: list[Chain], errors) -> dict:
    """{"chains": [...], "errors": [...]}: the shape other programs rely on.

    filenum counts from 0, the volume label, so the first image is file 1;
    dates are Amanda's datestamps as written.
    """
    return {"chains": [c.to_dict() for c in chains],
            "errors": [{"host": h, "disk": d, "message": m} for h, d, m in errors]}


def extract_line(program: str | None, directory: str = "DIR") -> str | None:
    if not program:
        return None
    if is_tar(program):
        return f"tar -x -p -G --numeric-owner -f - -C {directory}"
    if program == "DUMP":
        return f"(cd {directory} && restore -r -y -f -)"
    return None


def text(cat, chains: list[Chain], errors, media) -> list[str]:
    out = [f"Catalog from: {', '.join(cat.sources)}; {len(cat.dumps)} dump records, "
           f"{len(cat.dles())} DLEs"]
    if cat.available is None:
        out.append("Volumes at hand: not known (no vtape directory here, no scan, no "
                   "--volume); no chain is refused for a missing volume")
    else:
        where = f" (in {', '.join(cat.vtape_roots)})" if cat.vtape_roots else ""
        out.append(f"Volumes at hand: {len(cat.available)}{where}")
    for c in chains:
        out.append("")
        out.append(f"{c.host}:{c.disk}  program {c.program or 'unknown'}  "
                   f"levels {' '.join(map(str, c.levels))}")
        for d in c.dumps:
            parts = sorted(d.parts, key=lambda p: p.partnum)
            where = ", ".join(f"{p.label} file {p.filenum}" for p in parts)
            split = f" ({len(parts)} parts)" if len(parts) > 1 else ""
            out.append(f"  level {d.level}  {d.date}  {where}{split}")
        out.append(f"  volumes, in order: {', '.join(positioning.volumes_needed([c]))}")
        tail = extract_line(c.program)
        out += ["  " + line for line in positioning.render(
            positioning.plan([c], media), {(c.host, c.disk): tail} if tail else None)]
    if errors:
        out.append("")
    for h, d, m in errors:
        # the message names the DLE itself
        out.append(f"NO CHAIN {m}" if m.startswith(f"{h}:{d}: ") else f"NO CHAIN {h}:{d}: {m}")
    return out
