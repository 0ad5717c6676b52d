"""Trace logs, tapelist and disklist written from Dump records (pure).

Why: a media scan or the reports give Dump records, not a server's files,
and amadmin, amindexd, amidxtaped and amfetchdump read only the files.  So
the catalog is written back in Amanda 3.5's own format, the one
tests/fixtures/amanda35 holds, with what each reader needs and no more:

- find_dump() walks the tapelist and reads logdir/log.WRITTEN.N for each
  volume's datestamp, so the tapelist date of a volume and the name of
  the trace log that mentions it must agree, and the log must say
  `START taper datestamp WRITTEN ... label LABEL`;
- a part counts when its label was STARTed in the same log and the dump
  is OK when a DONE line for it follows its parts;
- Amanda::DB::Catalog (amfetchdump, amidxtaped) dies on a DONE line
  without its `[sec … bytes|kb …]` block, and restores through the
  storage named by "ST:x", which the configuration must define.

Sizes and times are not known from a scan; 0 is written where Amanda
expects a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalog.model import OK, Dump
from .names import quote

DUMPTYPES = {"GNUTAR": "amdr-gnutar", "DUMP": "amdr-dump"}


@dataclass
class Synthesized:
    logs: dict[str, str] = field(default_factory=dict)  # file name -> text
    tapelist: str = ""
    notes: list[str] = field(default_factory=list)


def volume_date(info) -> str | None:
    """The write datestamp a scan or a tapelist gives for a volume."""
    if info is None:
        return None
    if isinstance(info, str):
        return info or None
    if isinstance(info, dict):
        for k in ("datestamp", "written", "date"):
            if info.get(k):
                return str(info[k])
        return None
    return getattr(info, "datestamp", None) or None


def write_dates(dumps: list[Dump], volumes: dict | None) -> tuple[dict[str, str], list[str]]:
    """label -> datestamp of the run that wrote it, and notes on guesses.

    The volume's own TAPESTART date (what a scan reads) comes first, then
    the date the source recorded with a part, then the newest dump on the
    volume (right unless it was written by amflush or amvault later).
    """
    out, notes = {}, []
    for label, info in (volumes or {}).items():
        d = volume_date(info)
        if d:
            out[label] = d
    guessed = {}
    for d in dumps:
        for p in d.parts:
            if p.label in out:
                continue
            if p.written:
                out[p.label] = p.written
            else:
                guessed[p.label] = max(guessed.get(p.label, ""), d.date)
    for label, date in sorted(guessed.items()):
        if label not in out:
            out[label] = date
            notes.append(f"volume {label}: no label date known; taken as written on "
                         f"{date}, the newest dump on it")
    return out, notes


def _stats(n: int = 0) -> str:
    return f"[sec 0.000000 bytes {n} kps 0.000000 orig-kb 0]"


def trace_logs(dumps: list[Dump], volumes: dict | None, storage: str,
               pool: str | None = None, config: str | None = None) -> Synthesized:
    """One log.DATESTAMP.0 per write datestamp holding every usable dump's parts."""
    pool = pool or storage
    st = f"{quote('ST:' + storage)} {quote('POOL:' + pool)}"
    written, notes = write_dates(dumps, volumes)
    usable = [d for d in dumps if d.status == OK and d.parts and not d.missing_parts()]
    if len(usable) < len(dumps):
        notes.append(f"{len(dumps) - len(usable)} dump(s) not written to the catalog: "
                     f"failed, partial or with parts missing")
    # every part, grouped by the run that wrote its volume, then by volume
    places: dict[str, dict[str, list]] = {}
    for d in usable:
        runs = {written[p.label] for p in d.parts}
        if len(runs) > 1:
            notes.append(f"{d.host}:{d.disk} level {d.level} of {d.date}: its parts are on "
                         f"volumes written by different runs ({', '.join(sorted(runs))}); "
                         f"Amanda sees it only if every part is in one trace log")
        for p in d.parts:
            places.setdefault(written[p.label], {}).setdefault(p.label, []).append((p, d))

    out = Synthesized(notes=notes)
    for run in sorted(places, key=lambda s: s.ljust(14, "0")):
        lines = [f"START planner date {run}", f"START driver date {run}"]
        emitted: dict[int, int] = {}
        for tape, label in enumerate(sorted(places[run]), 1):
            lines.append(f"START taper datestamp {run} {st} label {quote(label)} tape {tape}")
            for p, d in sorted(places[run][label], key=lambda x: x[0].filenum):
                host, disk = quote(d.host), quote(d.disk)
                lines.append(f"PART taper {st} {quote(label)} {p.filenum} {host} {disk} "
                             f"{d.date} {p.partnum}/-1 {d.level} {_stats()}")
                emitted[id(d)] = emitted.get(id(d), 0) + 1
                if emitted[id(d)] == len(d.parts):
                    lines.append(f"DONE taper {st} {host} {disk} {d.date} {len(d.parts)} "
                                 f"{d.level} {_stats()}")
            lines.append(f"INFO taper tape {quote(label)} kb 0 fm "
                         f"{len(places[run][label])} [OK]")
        lines.append(f"FINISH driver date {run} time 0.000")
        out.logs[f"log.{run}.0"] = "\n".join(lines) + "\n"
    out.tapelist = tapelist_text(written, storage, pool, config or storage)
    return out


def tapelist_text(written: dict[str, str], storage: str, pool: str, config: str) -> str:
    """Newest first, as Amanda keeps it."""
    rows = sorted(written.items(), key=lambda x: (x[1].ljust(14, "0"), x[0]), reverse=True)
    return "".join(f"{date} {label} reuse POOL:{pool} STORAGE:{storage} CONFIG:{config}\n"
                   for label, date in rows)


def dumptype_for(program: str) -> str:
    """The generated dumptype of a program; GNUTAR's when it is not known."""
    if program in DUMPTYPES:
        return DUMPTYPES[program]
    if program.startswith("APPLICATION:"):
        return "amdr-app-" + program.split(":", 1)[1]
    return DUMPTYPES["GNUTAR"]


def normalise_program(program: str) -> str:
    """GNUTAR, DUMP or APPLICATION:plugin, from a header, a disklist or a report."""
    p = (program or "").strip()
    if p.upper().startswith("APPLICATION"):
        rest = p[len("APPLICATION"):].lstrip(": ").strip()
        return f"APPLICATION:{rest}" if rest else "APPLICATION"
    base = p.rsplit("/", 1)[-1].lower()
    if base in ("gnutar", "tar", "gtar"):
        return "GNUTAR"
    if base.endswith("dump") or base == "dump":
        return "DUMP"
    return p.upper()


def programs(dumps: list[Dump]) -> tuple[dict[tuple[str, str], str], list[str]]:
    """(host, disk) -> program, from what the dumps say; notes on unknown ones."""
    out, notes = {}, []
    for d in sorted(dumps, key=lambda d: d.sortdate):
        prog = normalise_program(d.program) if d.program else ""
        if prog:
            out[d.dle] = prog
        else:
            out.setdefault(d.dle, "")
    for dle, prog in sorted(out.items()):
        if not prog:
            notes.append(f"{dle[0]}:{dle[1]}: program unknown; the disklist says GNUTAR "
                         f"(amrecover takes the restore program from the image header)")
        elif prog not in ("GNUTAR", "DUMP") and not prog.startswith("APPLICATION:"):
            notes.append(f"{dle[0]}:{dle[1]}: program {prog} is not one Amanda names in a "
                         f"dumptype; the disklist says GNUTAR")
            out[dle] = "GNUTAR"
    return out, notes


def disklist_text(progs: dict[tuple[str, str], str]) -> str:
    return "".join(f"{quote(h)} {quote(d)} {dumptype_for(p)}\n"
                   for (h, d), p in sorted(progs.items()))


def dumptype_defs(progs) -> str:
    """The dumptypes (and application tools) the generated disklist names."""
    out = []
    apps = sorted({p.split(":", 1)[1] for p in progs if p and p.startswith("APPLICATION:")})
    base = ('  auth "local"\n  index yes\n  record no\n  compress none\n'
            '  estimate client\n')
    out.append(f"define dumptype amdr-base {{\n{base}}}\n")
    out.append('define dumptype amdr-gnutar {\n  amdr-base\n  program "GNUTAR"\n}\n')
    out.append('define dumptype amdr-dump {\n  amdr-base\n  program "DUMP"\n}\n')
    for a in apps:
        out.append(f'define application-tool amdr-app-{a} {{\n  plugin "{a}"\n}}\n')
        out.append(f'define dumptype amdr-app-{a} {{\n  amdr-base\n  program "APPLICATION"\n'
                   f'  application "amdr-app-{a}"\n}}\n')
    return "\n".join(out)
