"""Before any disk is touched: can each DLE's chain really be restored here?

For every image of every chain: all parts known, each volume at hand, each
part's header read and matching the catalog (host, disk, date, level, part
number, program), the header's decrypt and uncompress programs present and
an encryption key in place.  A tape drive's volumes are checked as they are
loaded (reading them now would mean loading each one): said so, not hidden.
"""

from __future__ import annotations

from essentials.doctor import locate
from essentials.errors import AmdrError

from . import crypt
from .driver import check_program
from .pipe import filters
from .plan import RestoreStep


def check_step(st: RestoreStep, library, provided=()) -> None:
    """Raises AmdrError naming what stops this DLE's restore."""
    for d in st.chain.dumps:
        where = f"the level {d.level} image of {d.date}"
        if d.missing_parts():
            raise AmdrError(f"{where} lacks part(s) "
                            f"{', '.join(map(str, d.missing_parts()))}")
        parts = sorted(d.parts, key=lambda p: p.partnum)
        avail = getattr(library, "available", None)
        for p in parts:
            if avail is not None and p.label not in avail:
                raise AmdrError(f"volume {p.label} (part {p.partnum} of {where}) is not at "
                                f"hand")
        if not hasattr(library, "image_path"):
            continue  # a tape drive: each header is checked when its volume is loaded
        first = None
        for p in parts:
            h = library.check_image(p.label, p.filenum, st.host, st.disk, d.date, d.level)
            if len(parts) > 1 and h.partnum is not None and h.partnum != p.partnum:
                raise AmdrError(f"{p.label} file {p.filenum} is part {h.partnum} of {where}, "
                                f"the catalog says part {p.partnum}")
            check_program(st, h, p.label, p.filenum)
            first = first or h
        for f in filters(first, where):
            if locate(f.argv[0]) is None:
                raise AmdrError(f"{where} needs `{f.argv[0]}` to {f.what}, and it is not "
                                f"installed here")
            if f.what == "decrypt":
                problem = crypt.key_problem(f.argv[0], provided)
                if problem:
                    raise AmdrError(problem)


def check(steps: list[RestoreStep], library, provided=()):
    """(steps that can be restored, [(host, disk, why not)]); provided: the key
    files (paths under ~backup) the bundles carry."""
    ok, bad = [], []
    for st in steps:
        try:
            check_step(st, library, provided)
        except AmdrError as e:
            bad.append((st.host, st.disk, f"{st.host}:{st.disk}: {e}"))
        else:
            ok.append(st)
    return ok, bad
