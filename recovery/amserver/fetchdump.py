"""Restore a DLE from the rebuilt server with the real amfetchdump.

amfetchdump reads the configuration's catalog and changer itself (it finds
the volume, joins split parts, decompresses), so a restore needs only
host, disk and date: the chain comes from `amadmin CONF find`, and each
image is piped, `amfetchdump -p` as backup into `tar -xpG` or `restore -r`
as root, through the runner's OS pipes.  amfetchdump waits for Enter even
with -a, so its stdin is /dev/null (the runner's first stage always is).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from essentials.errors import AmdrError, CatalogError
from essentials.runner import Cmd, Runner

from ..catalog import amconf, findout
from ..catalog.chains import Chain, compute_chain
from ..restore.plan import extract_argv, is_tar
from .conf import AMANDA_ETC

log = logging.getLogger(__name__)

AMANDA_USER = "backup"


@dataclass
class FetchResult:
    host: str
    disk: str
    directory: str
    levels: list[int] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # image files, in file mode
    bytes: int = 0
    seconds: float = 0.0


def catalog(runner: Runner, config: str, host: str | None = None,
            disk: str | None = None):
    """The rebuilt server's dumps, as amadmin find shows them."""
    argv = ["amadmin", config, "find"] + ([f"={host}"] if host else []) \
        + ([f"={disk}"] if host and disk else [])
    return findout.parse(runner.output(argv, user=AMANDA_USER, cwd="/",
                                       what=f"reading the catalog of {config}"))


def program_of(config: str, host: str, disk: str, etc: Path = AMANDA_ETC) -> str:
    """The DLE's program from the configuration's disklist and dumptypes."""
    confdir = Path(etc) / config
    conf = amconf.parse_conf((confdir / "amanda.conf").read_text())
    dl = conf.params.get("diskfile", "disklist").strip('"')
    path = Path(dl) if dl.startswith("/") else confdir / dl
    for e in amconf.parse_disklist(path.read_text(), conf):
        if e.host == host and e.disk == disk:
            return e.program
    raise CatalogError(f"{host}:{disk} is not in the disklist of {config} ({path})")


def chain_for(runner: Runner, config: str, host: str, disk: str,
              until: str | None = None) -> Chain:
    return compute_chain(catalog(runner, config, host, disk), host, disk, until)


def fetch_argv(config: str, host: str, disk: str, date: str, level: int,
               pipe: bool = True, outdir: str | None = None, header: bool = False) -> list[str]:
    argv = ["amfetchdump", "-a"]
    argv += ["-p"] if pipe else ["-O", outdir or "."]
    if header:
        argv.append("-h")  # the 32 KiB Amanda header first, as on the volume
    return argv + [config, f"={host}", f"={disk}", date, str(level)]


def restore(runner: Runner, config: str, host: str, disk: str, directory: str,
            until: str | None = None, program: str | None = None,
            etc: Path = AMANDA_ETC, progress=None) -> FetchResult:
    """Every image of the chain, oldest first, piped into tar or restore in directory."""
    program = program or program_of(config, host, disk, etc)
    if not (is_tar(program) or program == "DUMP"):
        raise CatalogError(f"{host}:{disk}: program {program} cannot be restored this way "
                           f"(GNUTAR, amgtar and DUMP can)")
    chain = chain_for(runner, config, host, disk, until)
    res = FetchResult(host, disk, directory)
    runner.run(["mkdir", "-p", directory])
    start = time.monotonic()
    for d in chain.dumps:
        left = Cmd(fetch_argv(config, host, disk, d.date, d.level), user=AMANDA_USER, cwd="/")
        right = Cmd(extract_argv(program, directory),
                    cwd=None if is_tar(program) else directory)
        log.info("amfetchdump %s:%s level %d of %s into %s", host, disk, d.level, d.date,
                 directory)
        out = runner.pipeline([left, right], progress=progress,
                              what=f"amfetchdump {host}:{disk} level {d.level} of {d.date}")
        res.levels.append(d.level)
        res.dates.append(d.date)
        res.bytes += out.bytes_through
    if not is_tar(program) and not runner.dry_run:
        sym = os.path.join(directory, "restoresymtable")
        if os.path.exists(sym):
            # restore -r's bookkeeping; removing it must not change the mtime
            st = os.stat(directory)
            os.unlink(sym)
            os.utime(directory, ns=(st.st_atime_ns, st.st_mtime_ns))
    res.seconds = time.monotonic() - start
    return res


def fetch_files(runner: Runner, config: str, host: str, disk: str, outdir: str,
                until: str | None = None, header: bool = False) -> FetchResult:
    """amfetchdump's own file output: each image of the chain as a file in outdir.

    The files, HOST.DISK.DATE.LEVEL (disk with '/' as '_'), hold the
    decompressed image, as `-p` would pipe it; with header, Amanda's 32 KiB
    header comes first, so `dd bs=32k skip=1` restores it as from a volume.
    They are written by backup, so outdir is made and handed to backup first.
    """
    chain = chain_for(runner, config, host, disk, until)
    res = FetchResult(host, disk, outdir)
    runner.run(["mkdir", "-p", outdir])
    runner.run(["chown", f"{AMANDA_USER}:{AMANDA_USER}", outdir])
    start = time.monotonic()
    for d in chain.dumps:
        before = set(os.listdir(outdir)) if not runner.dry_run else set()
        runner.run(fetch_argv(config, host, disk, d.date, d.level, pipe=False, outdir=outdir,
                              header=header),
                   user=AMANDA_USER, cwd="/", input=b"",  # it waits for Enter
                   what=f"amfetchdump {host}:{disk} level {d.level} of {d.date}")
        res.levels.append(d.level)
        res.dates.append(d.date)
        if not runner.dry_run:
            new = sorted(set(os.listdir(outdir)) - before)
            if not new:
                raise AmdrError(f"amfetchdump wrote no file for {host}:{disk} level "
                                f"{d.level} of {d.date} into {outdir}")
            res.files += [os.path.join(outdir, n) for n in new]
            res.bytes += sum(os.path.getsize(os.path.join(outdir, n)) for n in new)
    res.seconds = time.monotonic() - start
    return res
