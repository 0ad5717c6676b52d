"""The catalog's chains for programs (one JSON shape) and for people (text)."""

from __future__ import annotations

from essentials.runner import Cmd

from .pipe import PipeError, build, file_finder, header_reader, volume_loads
from .plan import extract_cmd, is_tar
from ..media import positioning
from ..catalog.chains import Chain


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


def text(cat, chains: list[Chain], errors, media, files=None,
         into: str = "DIR", header_of=None) -> list[str]:
    """For people: per DLE its images and, per image, one command sequence
    (restore/pipe.py: the one the driver runs), a split image's parts joined
    in one stream.  files: a library whose image files are at hand (vtapes:
    read directly, their headers say how they were compressed); header_of:
    the headers where they are known but no files are (tapes read earlier)."""
    header_of, file_of = header_of or header_reader(files), file_finder(files)
    out = [f"Catalog from: {', '.join(cat.sources)}; {len(cat.dumps)} dump records, "
           f"{len(cat.dles())} DLEs"]
    if cat.available is None:
        out.append("Volumes at hand: not known (no vtape directory here, no scan, no "
                   "--volume); no chain is refused for a missing volume")
    else:
        where = f" (in {', '.join(cat.vtape_roots)})" if cat.vtape_roots else ""
        out.append(f"Volumes at hand: {len(cat.available)}{where}")
    loaded = None
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
        if c.program and (is_tar(c.program) or c.program == "DUMP"):
            ext = extract_cmd(c.program, into)
        else:
            out.append(f"  # program {c.program or 'unknown'}: each image's stream is shown "
                       f"going to `cat`; pipe it to the program its header names")
            ext = Cmd(["cat"])
        loads, loaded = volume_loads(c.dumps, media, loaded)
        for i, d in enumerate(c.dumps):
            first = min(d.parts, key=lambda p: p.partnum)
            h = header_of(first.label, first.filenum) if header_of else None
            try:
                lines = build(c.host, c.disk, d, media.device, ext, h, loads.get(i),
                              file_of=file_of).lines()
            except PipeError as e:
                lines = [f"# level {d.level} of {d.date}: {e}"]
            out += ["  " + line for line in lines]
    if errors:
        out.append("")
    for h, d, m in errors:
        # the message names the DLE itself
        out.append(f"NO CHAIN {m}" if m.startswith(f"{h}:{d}: ") else f"NO CHAIN {h}:{d}: {m}")
    return out
