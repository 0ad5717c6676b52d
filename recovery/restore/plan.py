"""Which DLE restores into which directory, from which images, in which order (pure)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from essentials.errors import CatalogError
from essentials.runner import Cmd
from essentials.layout.normalise import relative_mountpoint

from ..catalog.amconf import DiskEntry
from ..catalog.chains import Chain, compute_chain
from ..catalog.model import Dump
from ..media.positioning import amrestore_argv  # noqa: F401 (the driver's and render's)
from ..disks.plan import target_path

# GNU tar images: the GNUTAR program, and the amgtar application (by its plugin:
# amconf resolves a site's application-tool name to the plugin it runs)
TAR_PROGRAMS = ("GNUTAR", "APPLICATION:amgtar")
# a DLE restored through the live server (restore/remote.py): amrecover picks
# tar or restore from each image itself (the index server does not say which),
# so it is treated as restore -r is: a fresh filesystem, made again on resume
SERVER_PROGRAM = "AMRECOVER"


@dataclass
class RestoreStep:
    host: str
    disk: str
    program: str
    directory: str  # where it is restored now
    original: str  # the path on the original system
    chain: Chain

    def to_dict(self) -> dict:
        d = self.chain.to_dict()
        d.update(program=self.program, directory=self.directory, original=self.original)
        return d


def is_tar(program: str) -> bool:
    return program in TAR_PROGRAMS


def original_path(entry: DiskEntry, layout: dict) -> str:
    """The directory the DLE's data belongs in, as on the original machine."""
    dev = entry.device or entry.disk
    for f in layout["filesystems"]:
        if f.get("device_path") == dev or f.get("uuid") and dev.endswith(f["uuid"]):
            if not f.get("mountpoint"):
                raise CatalogError(f"{entry.host}:{entry.disk}: its filesystem {dev} was "
                                   f"not mounted when the layout was collected, so there "
                                   f"is nowhere to restore it")
            return f["mountpoint"]
    if dev.startswith("/dev/"):
        raise CatalogError(f"{entry.host}:{entry.disk}: device {dev} is not in the layout")
    rel = relative_mountpoint(dev, layout.get("root", "/"))
    if rel is None:
        raise CatalogError(f"{entry.host}:{entry.disk}: {dev} is outside the system root "
                           f"{layout.get('root')}")
    return rel


def plan_restores(dumps: list[Dump], disklist: list[DiskEntry], layout: dict, target: str,
                  host: str, tapelist=None, available=None, until=None):
    """Returns (steps ordered parents first, errors as (host, disk, message))."""
    steps, errors = [], []
    for e in disklist:
        if e.host != host:
            continue
        try:
            if not (is_tar(e.program) or e.program in ("DUMP", SERVER_PROGRAM)):
                raise CatalogError(f"{e.host}:{e.disk}: program {e.program} cannot be "
                                   f"restored yet (GNUTAR, amgtar and DUMP can)")
            orig = original_path(e, layout)
            chain = compute_chain(dumps, e.host, e.disk, until, tapelist, available)
            chain.program = e.program
            steps.append(RestoreStep(e.host, e.disk, e.program, target_path(target, orig),
                                     orig, chain))
        except CatalogError as err:
            errors.append((e.host, e.disk, str(err)))
    # parents first: a tar -G of / must not run after /srv was filled
    steps.sort(key=lambda s: (s.original.rstrip("/").count("/") if s.original != "/" else 0,
                              s.original))
    return steps, errors


def extract_argv(program: str, directory: str) -> list[str]:
    if is_tar(program):
        # -G: replay deletions of the incremental; numeric owners because the
        # live system's passwd is not the restored system's
        return ["tar", "-x", "-p", "-G", "--numeric-owner", "-f", "-", "-C", directory]
    return ["restore", "-r", "-y", "-f", "-"]


def tools(dles, tape: bool = False) -> dict[str, list[str]]:
    """The tools the restores will run, each with the DLEs that need it (for the
    check made before anything is wiped): amrestore decompresses through gzip.
    dles: (HOST:DISK, program) pairs."""
    out: dict[str, list[str]] = {}
    for dle, program in dles:
        names = ["mkdir", "amrestore", "gzip", "tail", extract_argv(program, "/")[0]]
        for t in names + (["mt"] if tape else []):
            out.setdefault(t, [])
            if dle not in out[t]:
                out[t].append(dle)
    return out


def extract_cmd(program: str, directory: str) -> Cmd:
    return Cmd(extract_argv(program, directory), cwd=None if is_tar(program) else directory)


def render(step: RestoreStep, devices: dict[str, str], library=None) -> list[str]:
    """The commands for a person: one sequence per image (pipe.ImagePipe.lines),
    the same the driver runs.  library: where the images' files and headers
    can be read now (vtapes: each file read directly, its header says how)."""
    if hasattr(library, "render"):  # a live server: the amrecover session
        return library.render(step)
    from .pipe import build, file_finder, header_reader
    header_of, file_of = header_reader(library), file_finder(library)
    out = []
    for d in step.chain.dumps:
        first = min(d.parts, key=lambda p: p.partnum)
        h = header_of(first.label, first.filenum) if header_of else None
        out += build(step.host, step.disk, d, lambda lab: devices.get(lab, f"<{lab}>"),
                     extract_cmd(step.program, step.directory), h, file_of=file_of).lines()
    return out


def restoresymtable(step: RestoreStep) -> str | None:
    return None if is_tar(step.program) else os.path.join(step.directory, "restoresymtable")
