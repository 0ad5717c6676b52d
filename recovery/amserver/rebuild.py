"""Rebuild a lost Amanda server's database on this machine: plan, then apply.

The plan (pure) says which files are written with which text and what
then runs; `render()` shows it and nothing runs.  Applying it writes the
files as root, hands them to `backup` (Amanda's server tools refuse root
and need their configuration and state to be theirs), imports curinfo with
`amadmin import`, puts the index in place (the bundle's archive, or lists
every image on the media the way the client did when it was dumped), and
ends with `amadmin CONF find`: the catalog must show every dump the plan
wrote, or the rebuild failed.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from essentials.errors import (AmdrError, CatalogError, CommandError, ConfigError,
                               RefusedError)
from essentials.runner import Cmd, Runner

from ..catalog import amconf, findout, tapelist as tapelistmod, tracelog
from ..catalog.model import OK, Dump
from ..catalog.source import server_configs
from . import conf as confmod
from . import indexfmt, synth

log = logging.getLogger(__name__)

AMANDA_USER = "backup"
INDEX_MODES = ("auto", "archive", "media", "none")


@dataclass
class FileSpec:
    path: Path
    text: str
    mode: int = 0o600


@dataclass
class RebuildPlan:
    target: confmod.Target
    origin: str  # what the catalog came from, for the person
    files: list[FileSpec] = field(default_factory=list)
    curinfo: str | None = None  # amadmin export text to import
    index_archive: Path | None = None  # the bundle's index.tar.gz
    expect: list[Dump] = field(default_factory=list)  # what amadmin find must show
    programs: dict = field(default_factory=dict)  # (host, disk) -> program
    notes: list[str] = field(default_factory=list)

    def render(self, index: str = "auto") -> list[str]:
        t = self.target
        out = [f"# rebuild Amanda configuration {t.name} from {self.origin}"]
        for d in (t.confdir, t.logdir, t.indexdir, t.infofile):
            out.append(f"mkdir -p {d}")
        for f in self.files:
            out.append(f"write {f.path} ({len(f.text.splitlines())} lines, mode {f.mode:04o})")
        out.append(f"chown -R {AMANDA_USER}:{AMANDA_USER} {t.confdir} {t.state}")
        if self.curinfo is not None:
            out.append(f"amadmin {t.name} import < export.txt   (as {AMANDA_USER})")
        else:
            out.append("# no curinfo export: skipped (restores do not need it)")
        how = index_source(self, index)
        if how == "archive":
            out.append(f"tar -xzf {self.index_archive} -C {t.indexdir}")
        elif how == "media":
            for d in self.expect:
                prog = self.programs.get(d.dle) or "GNUTAR"
                try:
                    lister = " ".join(indexfmt.lister_argv(prog))
                except ValueError:
                    lister = f"<no lister for {prog}>"
                if not self.programs.get(d.dle):
                    lister += "  (program unknown: else restore -t -v -f -)"
                out.append(" | ".join([" ".join(fetch_argv(t.name, d)), lister])
                           + f"  > {indexfmt.index_file(t.indexdir, d.host, d.disk, d.date, d.level)}")
        out.append(f"amadmin {t.name} find   (as {AMANDA_USER}; must list "
                   f"{len(self.expect)} dumps)")
        return out

    def to_dict(self) -> dict:
        return {"config": self.target.name, "origin": self.origin,
                "confdir": str(self.target.confdir), "state": str(self.target.state),
                "tpchanger": self.target.changer,
                "files": [str(f.path) for f in self.files],
                "dumps": len(self.expect), "notes": self.notes}


def index_source(plan: RebuildPlan, index: str) -> str:
    if index not in INDEX_MODES:
        raise AmdrError(f"index {index!r}: expected one of {', '.join(INDEX_MODES)}")
    if index == "auto":
        return "archive" if plan.index_archive else "media"
    if index == "archive" and not plan.index_archive:
        raise CatalogError("the bundle holds no index archive (index.tar.gz); use "
                           "--index media to list the images on the volumes instead")
    return index


def fetch_argv(config: str, d: Dump) -> list[str]:
    # '=' makes Amanda match host and disk exactly instead of as patterns
    return ["amfetchdump", "-p", "-a", config, f"={d.host}", f"={d.disk}", d.date,
            str(d.level)]


# -- building the plan -----------------------------------------------------------

def _on_volume(d: Dump, vols: dict) -> bool:
    """Still where the catalog says: every volume in the tapelist, none rewritten."""
    for p in d.parts:
        v = vols.get(p.label)
        if v is None:
            return False
        if p.written and v.datestamp.ljust(14, "0") != p.written.ljust(14, "0"):
            return False
    return True


def _usable(d: Dump) -> bool:
    return d.status == OK and bool(d.parts) and not d.missing_parts()


def _common_files(target: confmod.Target, conf_text: str, disklist: str, tapelist: str,
                  logs: dict[str, str]) -> list[FileSpec]:
    files = [FileSpec(target.confdir / "amanda.conf", conf_text),
             FileSpec(target.confdir / "amanda-client.conf", confmod.client_conf(target),
                      0o644),
             FileSpec(target.disklist, disklist),
             FileSpec(target.tapelist, tapelist)]
    files += [FileSpec(target.logdir / name, text) for name, text in sorted(logs.items())]
    return files


def plan_from_bundle(bundle, target: confmod.Target, old_name: str | None = None,
                     exists=os.path.exists) -> RebuildPlan:
    """Input 1: the server's own files, as `amdr-essentials collect` took them."""
    names = server_configs(bundle)
    if not names:
        raise CatalogError(f"{bundle.root}: the bundle holds no Amanda server database "
                           f"(it was not collected on the Amanda server)")
    if old_name is None:
        if len(names) > 1:
            raise CatalogError(f"the bundle holds the Amanda configurations "
                               f"{', '.join(names)}; say which one with --from-config")
        old_name = names[0]
    if old_name not in names:
        raise CatalogError(f"no Amanda configuration {old_name} in the bundle (it holds "
                           f"{', '.join(names)})")
    base = f"amanda/{old_name}"
    if not bundle.has(f"{base}/amanda.conf"):
        raise CatalogError(f"{base}/amanda.conf is not in the bundle")
    logs = {rel.rsplit("/", 1)[1]: bundle.read_text(rel)
            for rel in bundle.listdir(f"{base}/logs")}
    if not logs:
        raise CatalogError(f"{base}/logs: the bundle holds no trace logs, so no catalog to "
                           f"rebuild (give a media scan instead)")
    plan = RebuildPlan(target, f"bundle {bundle.root} (configuration {old_name})")
    old_conf = bundle.read_text(f"{base}/amanda.conf")
    storages = confmod.storages_in_logs(logs.values())
    dumps = []
    for name in tracelog.in_order(logs):
        dumps += tracelog.parse_lines(logs[name].splitlines(), name, config=old_name)
    if bundle.has(f"{base}/tapelist"):
        tl_text = bundle.read_text(f"{base}/tapelist")
    else:
        # find_dump() reaches the trace logs through the tapelist only
        written, _ = synth.write_dates(dumps, None)
        st = storages[0] if storages else target.name
        tl_text = synth.tapelist_text(written, st, st, target.name)
        plan.notes.append("no tapelist in the bundle: written from the trace logs' volumes")
    vols = tapelistmod.parse(tl_text)

    parsed = amconf.parse_conf(old_conf)
    dl_text = bundle.read_text(f"{base}/disklist") if bundle.has(f"{base}/disklist") else ""
    entries = amconf.parse_disklist(dl_text, parsed) if dl_text else []
    undefined = sorted({e.dumptype for e in entries
                        if e.dumptype not in parsed.dumptypes})
    extra = ""
    if not entries or undefined:
        # a dumptype that is not defined says nothing of the program
        progs = {(e.host, e.disk): "" if e.dumptype in undefined else e.program
                 for e in entries}
        seen, _ = synth.programs(dumps)
        for dle, prog in seen.items():
            progs[dle] = progs.get(dle) or prog
        why = (f"its dumptypes {', '.join(undefined)} are not defined in amanda.conf"
               if undefined else "the bundle has none")
        plan.notes.append(f"disklist written from the DLEs in the catalog: {why}")
        dl_text = synth.disklist_text(progs)
        extra = synth.dumptype_defs(set(progs.values()))
        plan.programs = progs
    else:
        plan.programs = {(e.host, e.disk): e.program for e in entries}
    rw = confmod.rewrite_conf(old_conf, target, storages, exists=exists, extra=extra)
    plan.notes += rw.notes
    if not storages:
        plan.notes.append("the trace logs name no storage (Amanda before 3.4): restores "
                          f"use the configuration's own, {target.name}")
    plan.files = _common_files(target, rw.text, dl_text, tl_text, logs)
    if bundle.has(f"{base}/export.txt"):
        plan.curinfo = bundle.read_text(f"{base}/export.txt")
    else:
        plan.notes.append("no amadmin export in the bundle: curinfo not imported (restores "
                          "do not need it; the next amdump starts with full dumps)")
    if bundle.has(f"{base}/index.tar.gz"):
        plan.index_archive = bundle.path(f"{base}/index.tar.gz")
    plan.expect = [d for d in dumps if _usable(d) and _on_volume(d, vols)]
    return plan


def plan_from_dumps(dumps: list[Dump], volumes: dict | None, target: confmod.Target,
                    origin: str = "a media scan") -> RebuildPlan:
    """Input 2: Dump records (a media scan, the reports) and nothing else."""
    if not dumps:
        raise CatalogError(f"{origin}: no dump images found, nothing to rebuild a catalog "
                           f"from")
    plan = RebuildPlan(target, origin)
    syn = synth.trace_logs(dumps, volumes, storage=target.name, config=target.name)
    plan.notes += syn.notes
    progs, notes = synth.programs(dumps)
    plan.notes += notes
    plan.programs = progs
    tapelist = syn.tapelist.replace(" reuse ", " no-reuse ")
    text = confmod.fresh_conf(target, [target.name], synth.dumptype_defs(set(progs.values())),
                              len(tapelist.splitlines()))
    plan.files = _common_files(target, text, synth.disklist_text(progs), tapelist, syn.logs)
    plan.notes.append("no curinfo (no amadmin export): restores do not need it; the next "
                      "amdump would start with full dumps")
    plan.expect = [d for d in dumps if _usable(d)]
    return plan


# -- applying it -------------------------------------------------------------------

@dataclass
class RebuildResult:
    config: str
    written: list[str] = field(default_factory=list)
    index_files: int = 0
    index_source: str = ""
    find: list[Dump] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _guard(target: confmod.Target, replace: bool):
    conf = target.confdir / "amanda.conf"
    if conf.exists() and not replace:
        raise RefusedError(f"{conf} exists: an Amanda configuration {target.name} is already "
                           f"on this machine; choose another --config name or pass --replace")
    st = Path(target.state)
    if st.exists() and any(st.iterdir()) and not replace:
        raise RefusedError(f"state directory {st} is not empty; choose another --state-dir "
                           f"or pass --replace")


def _write(spec: FileSpec):
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(spec.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, spec.mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(spec.text)
    os.chmod(spec.path, spec.mode)


def _chown(runner: Runner, *paths):
    runner.run(["chown", "-R", f"{AMANDA_USER}:{AMANDA_USER}"] + [str(p) for p in paths])


def _has_index(indexdir: Path, d: Dump) -> bool:
    where = Path(str(indexfmt.index_dir(indexdir, d.host, d.disk)))
    return any((where / n).exists() for n in indexfmt.existing_names(d.date, d.level))


def _list_image(runner: Runner, config: str, d: Dump, prog: str, tmp: str):
    """(index lines, None) or (None, why): one image listed by its client's lister."""
    listing = Path(tmp) / "listing"
    listing.unlink(missing_ok=True)
    out = runner.pipeline(
        [Cmd(fetch_argv(config, d), user=AMANDA_USER, cwd="/"),
         Cmd(indexfmt.lister_argv(prog), cwd=tmp),
         Cmd(["tee", str(listing)], cwd=tmp)],
        check=False, what=f"listing {d.host}:{d.disk} level {d.level} for the index")
    if runner.dry_run:
        return [], None
    fetch, lst, tee = out.stages
    text = listing.read_text(encoding="utf-8", errors="surrogateescape") \
        if listing.exists() else ""
    lines = indexfmt.index_lines(prog, text)
    # restore -t stops reading after the directory part of a DUMP image, so
    # there amfetchdump losing its reader is no failure
    fetched = fetch.returncode == 0 or (prog == "DUMP" and lst.returncode == 0)
    if lst.returncode == 0 and tee.returncode == 0 and fetched and lines:
        return lines, None
    if fetch.returncode and not (lst.returncode and prog != "DUMP"):
        why = (fetch.stderr.strip().splitlines() or ["no output"])[-1]
    else:
        why = lst.stderr.strip()[-300:] or "an empty listing"
    return None, why


def rebuild_index(runner: Runner, plan: RebuildPlan, only_missing: bool = True,
                  progress=None) -> tuple[int, list[str]]:
    """List every image on the media into Amanda's index; (files written, problems).

    amfetchdump of the rebuilt configuration reads each image (it finds the
    volume through the changer, joins split parts and decompresses), the
    lister the client ran when it was dumped makes the listing, and only
    that listing passes through Python.  When no source said the program
    (reports), tar is tried first and restore after it: tar gives up on a
    dump image at its first block, so a wrong guess costs little.
    """
    t = plan.target
    written, problems = 0, []
    todo = sorted(plan.expect, key=lambda d: (d.host, d.disk, d.sortdate))
    with tempfile.TemporaryDirectory(prefix="amdr-index-") as tmp:
        os.chmod(tmp, 0o755)
        for n, d in enumerate(todo, 1):
            if only_missing and not runner.dry_run and _has_index(t.indexdir, d):
                continue
            name = f"{d.host}:{d.disk} level {d.level} of {d.date}"
            prog = plan.programs.get(d.dle, "")
            tries = [prog] if prog else ["GNUTAR", "DUMP"]
            if progress:
                progress(f"indexing {name} ({n}/{len(todo)})")
            lines, whys = None, []
            for p in tries:
                try:
                    lines, why = _list_image(runner, t.name, d, p, tmp)
                except ValueError as e:  # a program no lister reads
                    lines, why = None, str(e)
                if lines is not None:
                    if not prog and not runner.dry_run:
                        plan.programs[d.dle] = p  # the DLE's other images are the same
                    break
                whys.append(why if len(tries) == 1 else f"{p}: {why}")
            if runner.dry_run:
                continue
            if lines is None:
                problems.append(f"{name}: not indexed: {'; '.join(whys)}")
                continue
            path = Path(str(indexfmt.index_file(t.indexdir, d.host, d.disk, d.date, d.level)))
            path.parent.mkdir(parents=True, exist_ok=True)
            data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(gzip.compress(data, mtime=0))
            written += 1
    return written, problems


def check_catalog(runner: Runner, plan: RebuildPlan) -> tuple[list[Dump], list[str]]:
    """`amadmin CONF find` as backup: every planned dump must be there, OK."""
    text = runner.output(["amadmin", plan.target.name, "find"], user=AMANDA_USER, cwd="/",
                         what="checking the rebuilt catalog")
    if runner.dry_run:
        return [], []
    found = findout.parse(text)
    ok = {(d.host, d.disk, d.date, d.level) for d in found if d.status == OK}
    missing = [d for d in plan.expect if (d.host, d.disk, d.date, d.level) not in ok]
    problems = [f"amadmin find does not show {d.host}:{d.disk} level {d.level} of {d.date} "
                f"({', '.join(f'{p.label} file {p.filenum}' for p in d.parts)})"
                for d in missing]
    return found, problems


def _check_access(runner: Runner, t: confmod.Target):
    """What backup must reach, checked as backup, with the remedy when it cannot."""
    checks = [("-w", t.logdir, f"the state directory {t.state} (or a directory above it)"),
              ("-r", t.confdir / "amanda.conf", f"the configuration {t.confdir}")]
    if t.changer.startswith("chg-disk:"):
        vt = t.changer[len("chg-disk:"):]
        checks.append(("-w", vt, f"the vtape directory {vt} (chg-disk keeps its state and "
                                 f"locks there; chown -R backup:backup it)"))
    for flag, path, what in checks:
        r = runner.run(["test", flag, str(path)], user=AMANDA_USER, check=False)
        if r.returncode != 0:
            raise ConfigError(f"user {AMANDA_USER} cannot {'write' if flag == '-w' else 'read'} "
                              f"{what}: Amanda's server tools run as {AMANDA_USER}")


def apply(plan: RebuildPlan, runner: Runner, *, index: str = "auto", replace: bool = False,
          progress=None) -> RebuildResult:
    start = time.monotonic()
    t = plan.target
    res = RebuildResult(t.name, notes=list(plan.notes))
    how = index_source(plan, index)
    res.index_source = how
    if not runner.dry_run:
        _guard(t, replace)
        for d in (t.confdir, t.logdir, t.indexdir, t.infofile):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(t.state, 0o750)
        for f in plan.files:
            _write(f)
            res.written.append(str(f.path))
    _chown(runner, t.confdir, t.state)
    _check_access(runner, t)
    if plan.curinfo is not None:
        try:
            runner.run(["amadmin", t.name, "import"], user=AMANDA_USER, cwd="/",
                       input=plan.curinfo.encode("utf-8"), what="importing curinfo")
        except CommandError as e:
            # the planner's history only: restores work without it
            res.notes.append(f"curinfo not imported: {e}")
    # the configuration must load and show the catalog before images are read
    res.find, problems = check_catalog(runner, plan)
    res.problems += problems
    if how == "archive":
        runner.run(["tar", "-x", "-z", "-f", str(plan.index_archive), "-C", str(t.indexdir)],
                   what="extracting the index")
        _chown(runner, t.indexdir)
        if not runner.dry_run:
            res.index_files = sum(1 for p in Path(t.indexdir).rglob("*") if p.is_file()
                                  and p.name != "lock")
    elif how == "media":
        res.index_files, problems = rebuild_index(runner, plan, progress=progress)
        res.problems += problems
        _chown(runner, t.indexdir)
    else:
        res.notes.append("no index written: amrecover cannot browse; amfetchdump works")
    res.seconds = time.monotonic() - start
    return res


def summary(res: RebuildResult) -> list[str]:
    """The `amadmin find` view: per DLE, the images and the volumes they are on."""
    per: dict[tuple, list[Dump]] = {}
    for d in res.find:
        per.setdefault(d.dle, []).append(d)
    out = []
    for (host, disk), ds in sorted(per.items()):
        ok = [d for d in ds if d.status == OK]
        vols = sorted({p.label for d in ok for p in d.parts})
        newest = max(ok, key=lambda d: d.sortdate) if ok else None
        out.append(f"{host}:{disk}: {len(ok)} image(s) OK"
                   + (f", newest level {newest.level} of {newest.date}" if newest else "")
                   + (f", on {', '.join(vols)}" if vols else ""))
    return out
