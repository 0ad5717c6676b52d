"""Rebuild the catalog from the volumes alone, by their 32 KiB image headers.

Why: when the server, its trace logs and every mail are gone, the volumes
still say what they hold.  Each file on a volume starts with a header
(`AMANDA: SPLIT_FILE DATE HOST DISK part N/M lev L comp ... program ...`,
file 0 `AMANDA: TAPESTART DATE D TAPE LABEL`), so reading the first 32 KiB
of each file is enough: a scan costs one small read per file, not a read of
the data (see tests/lab/bench_catalog_scan.py).

What it takes: a chg-disk directory (every slot under it), one slot, single
image files (the label comes from the 00000.* file beside them), or a tape
drive, read through the runner with mt and dd since Python has no business
in the tape's data path.

Amanda 3.x writes every part as N/-1 (the taper streams and does not know
the total), so the number of parts is derived from the parts found; on disk
the SERVER-CRC size in the header (the bytes of the whole image) is compared
with the sizes of the parts' files, which catches a lost last part.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from essentials.errors import CommandError
from essentials.runner import Runner

from ..media.volumes import HEADER_SIZE, Header, parse_header
from .assemble import Seen, assemble, derive_nparts
from .model import Dump, Part

log = logging.getLogger(__name__)

_NUMBERED = re.compile(r"^(\d+)\.")
_PREFIXES = ("chg-disk:", "file:", "tape:")


@dataclass
class ScanResult:
    dumps: list[Dump] = field(default_factory=list)
    volumes: dict[str, dict] = field(default_factory=dict)  # label -> date, device
    errors: list[str] = field(default_factory=list)


@dataclass
class _Volume:
    label: str
    date: str | None
    device: str


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def read_block(path: str) -> tuple[bytes, int]:
    """The first 32 KiB of a file and the file's size; never more of it.

    FADV_RANDOM turns off the kernel's read-ahead, so not even the page
    cache pulls the data behind the header off the disk.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        chunks, got = [], 0
        while got < HEADER_SIZE:
            b = os.read(fd, HEADER_SIZE - got)
            if not b:
                break
            chunks.append(b)
            got += len(b)
        return b"".join(chunks), os.fstat(fd).st_size
    finally:
        os.close(fd)


class _Scanner:
    def __init__(self, runner: Runner | None):
        self.runner = runner
        self.res = ScanResult()
        self.seen: list[Seen] = []
        self.sizes: dict[tuple, tuple] = {}  # (label, filenum) -> (data bytes, image bytes)
        self.last_file: dict[str, int] = {}  # label -> its last file number
        self.done: set[str] = set()  # real paths already read

    def error(self, msg: str):
        log.warning("%s", msg)
        self.res.errors.append(msg)

    # -- what a device is ------------------------------------------------------
    def device(self, dev: str):
        path, tape = dev, False
        for prefix in _PREFIXES:
            if dev.startswith(prefix):
                path, tape = dev[len(prefix):], prefix == "tape:"
        if tape:
            return self.tape(path)
        p = Path(path)
        try:
            mode = p.stat().st_mode
        except OSError as e:
            return self.error(f"{dev}: {e.strerror}")
        if stat.S_ISCHR(mode):
            return self.tape(path)
        if stat.S_ISDIR(mode):
            slots = sorted((d for d in p.iterdir() if d.is_dir() and not d.is_symlink()
                            and any(_NUMBERED.match(f.name) for f in d.iterdir())),
                           key=lambda d: _natural(d.name))
            if any(_NUMBERED.match(f.name) for f in p.iterdir() if f.is_file()):
                return self.slot(p)
            if slots:
                for s in slots:
                    self.slot(s)
                return
            return self.error(f"{dev}: holds no vtape (no slot directories, no NNNNN.* files)")
        if stat.S_ISREG(mode):
            return self.image_file(p)
        return self.error(f"{dev}: neither a directory, an image file nor a tape device")

    # -- files on disk -----------------------------------------------------------
    def label_of(self, slot: Path) -> _Volume | None:
        first = sorted(slot.glob("00000.*"))
        if not first:
            self.error(f"{slot}: no label file (00000.*): an unlabelled or damaged volume")
            return None
        h, _ = self.header_of(str(first[0]))
        if h is None or h.kind != "TAPESTART":
            if h is not None:
                self.error(f"{first[0]}: file 0 is not a volume label ({h.kind})")
            return None
        return _Volume(h.label, h.date, f"file:{slot}")

    def add_volume(self, vol: _Volume) -> bool:
        known = self.res.volumes.get(vol.label)
        if known and known["device"] != vol.device:
            self.error(f"{vol.device}: volume {vol.label} again (already read from "
                       f"{known['device']}); this copy is skipped")
            return False
        self.res.volumes[vol.label] = {"date": vol.date, "device": vol.device}
        return True

    def slot(self, slot: Path):
        real = os.path.realpath(slot)
        if real in self.done:
            return
        self.done.add(real)
        vol = self.label_of(slot)
        if vol is not None and not self.add_volume(vol):
            return
        files = []
        for entry in os.scandir(slot):
            if not entry.is_file(follow_symlinks=False):
                continue
            m = _NUMBERED.match(entry.name)
            if m:
                files.append((int(m.group(1)), entry.path))
            elif not entry.name.endswith("-lock"):
                self.error(f"{entry.path}: not a vtape file (no file number in its name)")
        for filenum, path in sorted(files):
            if filenum > 0:
                self.file(path, filenum, vol)

    def image_file(self, p: Path):
        m = _NUMBERED.match(p.name)
        if not m:
            return self.error(f"{p}: cannot tell its file number (vtape files are NNNNN.*)")
        filenum = int(m.group(1))
        vol = self.label_of(p.parent)
        if filenum == 0:
            if vol is not None:
                self.add_volume(vol)
            return
        if vol is not None and not self.add_volume(vol):
            return
        self.file(str(p), filenum, vol)

    def header_of(self, path: str) -> tuple[Header | None, int]:
        """(header, file size); an error entry and None when there is none."""
        try:
            block, size = read_block(path)
        except OSError as e:
            self.error(f"{path}: {e.strerror}")
            return None, 0
        return self.parse(block, path), size

    def parse(self, block: bytes, where: str) -> Header | None:
        if not block:
            self.error(f"{where}: empty")
            return None
        try:
            h = parse_header(block)
        except (IndexError, ValueError):
            self.error(f"{where}: an unreadable Amanda header: {block[:80]!r}")
            return None
        if h is None:
            self.error(f"{where}: not an Amanda file")
            return None
        if len(block) < HEADER_SIZE:
            self.error(f"{where}: truncated header ({len(block)} of {HEADER_SIZE} bytes)")
            return None
        return h

    def file(self, path: str, filenum: int, vol: _Volume | None):
        real = os.path.realpath(path)
        if real in self.done:
            return
        self.done.add(real)
        h, size = self.header_of(path)
        if h is not None and self.image(h, filenum, vol, path, size - HEADER_SIZE) \
                and vol is not None:
            # parts on unlabelled volumes share the label "": their sizes say nothing
            self.sizes[(vol.label, filenum)] = (size - HEADER_SIZE, h.server_size)

    # -- one header --------------------------------------------------------------
    def image(self, h: Header, filenum: int, vol: _Volume | None, where: str,
              size: int | None = None) -> bool:
        if h.kind not in ("FILE", "SPLIT_FILE"):
            what = {"CONT_FILE": "a holding-disk chunk, not a volume file",
                    "TAPESTART": "a volume label in the middle of a volume"}.get(h.kind)
            if h.kind != "TAPEEND":
                self.error(f"{where}: {what or f'an Amanda {h.kind} file'}; skipped")
            return False
        if h.level is None or not h.host or not h.date:
            self.error(f"{where}: an image header without host, date or level; skipped")
            return False
        label = vol.label if vol else ""
        self.last_file[label] = max(filenum, self.last_file.get(label, 0))
        total = h.totalparts if h.totalparts and h.totalparts > 0 else None
        self.seen.append(Seen(
            h.host, h.disk, h.date, h.level,
            Part(label, filenum, h.partnum or 1, vol.date if vol else None,
                 size if size is not None and size >= 0 else None),
            nparts=total if h.kind == "SPLIT_FILE" else 1, program=h.restore_program,
            message="" if vol else f"{where} is not on a labelled volume",
            source=vol.device if vol else where))
        return True

    # -- tape ------------------------------------------------------------------------
    def tape(self, dev: str):
        """mt rewind, then per file: one 32 KiB block with dd, mt fsf 1.

        A tape written with blocks larger than 32 KiB makes dd fail
        (ENOMEM from the st driver); the error says so.
        """
        runner = self.runner or Runner()
        try:
            runner.run(["mt", "-f", dev, "rewind"], what=f"rewind {dev}")
        except CommandError as e:
            return self.error(f"{dev}: cannot rewind: {e}")
        vol: _Volume | None = None
        filenum = 0
        while True:
            r = runner.run(["dd", f"if={dev}", "bs=32k", "count=1"], check=False)
            where = f"{dev} file {filenum}"
            if r.returncode != 0:
                tail = r.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
                self.error(f"{where}: dd failed ({tail[0]}); the rest of the tape is not "
                           f"read (a block size over 32 KiB?)")
                break
            if not r.stdout:
                if filenum == 0:
                    self.error(f"{dev}: nothing on the tape (blank, or not rewound)")
                break  # end of recorded data
            h = self.parse(r.stdout, where)
            if filenum == 0:
                if h is None or h.kind != "TAPESTART":
                    self.error(f"{dev}: no Amanda volume label at file 0; not read further")
                    break
                vol = _Volume(h.label, h.date, dev)
                if not self.add_volume(vol):
                    break
            elif h is not None:
                if h.kind == "TAPEEND":
                    break
                self.image(h, filenum, vol, where)
            try:
                runner.run(["mt", "-f", dev, "fsf", "1"], what=f"skip to file {filenum + 1}")
            except CommandError as e:
                self.error(f"{where}: cannot skip to the next file: {e}")
                break
            filenum += 1

    # -- the catalog -------------------------------------------------------------------
    def drop_cut_parts(self):
        """A part that hit the end of a volume is written again on the next.

        The cut copy is the last file of its volume and shorter than the
        copy that made it; without this it would look like a second image.
        """
        by_part: dict[tuple, list[Seen]] = {}
        for s in self.seen:
            by_part.setdefault((s.host, s.disk, s.date, s.level, s.part.partnum), []).append(s)
        drop = set()
        for group in by_part.values():
            if len(group) < 2:
                continue
            sizes = [self.sizes.get((s.part.label, s.part.filenum), (None,))[0] for s in group]
            if None in sizes:
                continue
            for s, size in zip(group, sizes):
                if size < max(sizes) and s.part.filenum == self.last_file.get(s.part.label):
                    drop.add(id(s))
                    self.error(f"{s.part.label} file {s.part.filenum}: part {s.part.partnum} "
                               f"of {s.host}:{s.disk} {s.date} is cut short at the end of the "
                               f"volume and was written again elsewhere; ignored")
        self.seen = [s for s in self.seen if id(s) not in drop]

    def check_sizes(self, d: Dump):
        """Find lost parts, the last one too: the parts' data against the image's size.

        Every part but the last holds part-size bytes, so the largest part
        found tells how many parts the image must have.
        """
        known = [self.sizes.get((p.label, p.filenum)) for p in d.parts]
        if not known or None in known or any(k[1] is None for k in known):
            return
        have, whole, biggest = sum(k[0] for k in known), known[0][1], max(k[0] for k in known)
        if have < whole and biggest > 0:
            d.nparts = max(d.nparts or 0, -(-whole // biggest))
            d.message = "; ".join(x for x in (d.message, (
                f"the parts found hold {have} of the image's {whole} bytes: it has "
                f"{d.nparts} parts or more, part(s) {d.missing_parts()} are on a volume "
                f"not scanned")) if x)

    def result(self) -> ScanResult:
        self.drop_cut_parts()
        dumps = assemble(self.seen)
        for d in dumps:
            stated = d.nparts is not None
            derive_nparts(d)
            if not stated:
                self.check_sizes(d)
        self.res.dumps = sorted(dumps, key=lambda d: (d.host, d.disk, d.sortdate, d.level))
        return self.res


def scan(devices: list[str], runner: Runner | None = None) -> ScanResult:
    """The dumps, volumes and problems found on `devices`, read header by header."""
    sc = _Scanner(runner)
    for dev in devices:
        sc.device(str(dev))
    return sc.result()
