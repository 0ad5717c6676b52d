"""Parse Amanda's tapelist: `DATESTAMP LABEL reuse|no-reuse [BLOCKSIZE:..] [POOL:..] ...`.

Why it matters: a volume whose tapelist datestamp is newer than a dump on it
has been overwritten since, so that dump is gone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Volume:
    label: str
    datestamp: str
    reuse: bool
    pool: str | None = None


def parse(text: str) -> dict[str, Volume]:
    vols = {}
    for line in text.splitlines():
        t = line.split()
        if len(t) < 2 or t[0].startswith("#"):
            continue
        pool = next((x[5:] for x in t[3:] if x.startswith("POOL:")), None)
        vols[t[1]] = Volume(t[1], t[0], len(t) < 3 or t[2] != "no-reuse", pool)
    return vols
