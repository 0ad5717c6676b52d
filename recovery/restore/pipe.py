"""How one dump image becomes the stream tar or restore reads: built once, run or shown.

The driver runs exactly the commands built here, and `plan` and `catalog`
print them (`ImagePipe.lines`), so what a person reads is what the tool does.

How an image is read, by case (each seen with Amanda 3.5.1 here):

- **Vtapes** (Amanda's file device: each part a plain file, its header already
  read and checked): each part is read straight off its file with `dd
  if=FILE bs=32k skip=1` (the header's own recipe), the parts in order, then
  the header's filters once for the whole: decrypt, then uncompress.  No
  amrestore: it adds a Perl start (0.11 s here) and a copy per part, and a
  run as `backup`, who may not be able to read volumes copied off a shelf.
  `dd` is as fast as `cat` here; `tail -c +N` on a file is not (8 KiB reads).
- **One part on tape** (3.x writes even an unsplit image as `SPLIT_FILE part 1/-1`):
  `amrestore -p` reads it and runs the header's decrypt and uncompress
  programs itself.
- **N parts on tape, neither compressed nor encrypted**: `amrestore -p` of each part in
  order; each part's data is the next slice of the one stream.
- **N parts on tape, compressed or encrypted**: the compressed (and encrypted) stream
  was cut into parts, and amrestore runs the filters on each part alone, which
  fails for every part of a real split (gzip: "unexpected end of file" on part
  1, "not in gzip format" on part 2).  So each part is read raw (`amrestore -r
  -p`: the part as written, its 32 KiB header first), the header is cut off
  (`tail -c +32769`), the parts are joined, and the header's filters run once
  on the whole: decrypt, then uncompress (the order of the header's own `To
  restore` line).  amfetchdump joins parts too, but needs a rebuilt server
  (config, logs, a changer it drives itself); this path works from a bundle or
  a scan of the media alone, with the same header checks and tape handling as
  any other image.

Only OS pipes carry the data (Runner.stream): Python never copies the stream.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from essentials.errors import AmdrError
from essentials.runner import Cmd, display

from ..catalog.model import Dump
from ..media.positioning import AMANDA_USER, Action, amrestore_argv
from ..media.volumes import HEADER_SIZE, Header, read_header

TAIL_HEADER = ["tail", "-c", f"+{HEADER_SIZE + 1}"]


def file_read(path) -> list[str]:
    """A vtape file's data, its header skipped (the header's own recipe; a
    regular file, so dd's blocks are whole)."""
    return ["dd", f"if={path}", f"bs={HEADER_SIZE // 1024}k", "skip=1", "status=none"]


class PipeError(AmdrError):
    """An image this version cannot turn into a stream (said before anything is wiped)."""


@dataclass
class Filter:
    argv: list[str]
    user: str | None
    what: str  # "decrypt", "uncompress"


def filters(h: Header, where: str = "the image") -> list[Filter]:
    """The header's decrypt and uncompress programs, in the order they run."""
    out = []
    if h.encrypted:
        prog = h.server_encrypt or h.client_encrypt
        if not prog:
            raise PipeError(f"{where} is encrypted, but its header names no encryption "
                            f"program (server_encrypt or client_encrypt)")
        opt = (h.server_decrypt_option if h.server_encrypt else h.client_decrypt_option) or "-d"
        # amcrypt, amcrypt-ossl and amgpgcrypt find their key in ~backup
        out.append(Filter([prog, opt], AMANDA_USER, "decrypt"))
    comp = h.comp or "N"
    if comp == ".gz":
        out.append(Filter(["gzip", "-dc"], None, "uncompress"))
    elif comp == ".cust":
        prog = h.server_custom_compress or h.client_custom_compress
        if not prog:
            raise PipeError(f"{where} has a custom compression, but its header names no "
                            f"program (server_custom_compress or client_custom_compress)")
        out.append(Filter([prog, "-d"], None, "uncompress"))
    elif comp == ".Z":
        out.append(Filter(["uncompress", "-c"], None, "uncompress"))
    elif comp != "N":
        raise PipeError(f"{where} is compressed as {comp!r}, which this version cannot "
                        f"uncompress")
    return out


@dataclass
class PartRead:
    label: str
    filenum: int
    partnum: int
    cmds: list[Cmd]  # what writes this part's slice of the stream


@dataclass
class ImagePipe:
    host: str
    disk: str
    date: str
    level: int
    parts: list[PartRead]
    filters: list[Filter]
    extract: Cmd
    how: str  # which case, in a few words
    known: bool = True  # False: several parts and no header read: filters not known
    loads: dict = field(default_factory=dict)  # partnum -> [Action] before that part

    @property
    def sink(self) -> list[Cmd]:
        return [Cmd(f.argv, user=f.user) for f in self.filters] + [self.extract]

    def lines(self) -> list[str]:
        """The commands for a person: one sequence for the whole image.

        The reads run in a `( cd / && ... )` group: Amanda's Perl tools, run as
        backup, die ("Cannot chdir to original working directory") where backup
        may not enter the shell's directory, as root's home."""
        ext = display(self.extract.argv)
        cd = f"cd {shlex.quote(self.extract.cwd)} && " if self.extract.cwd else ""
        tail = " | ".join([f"( cd / && {_shown(c)} )" if c.user else _shown(c)
                           for c in (Cmd(f.argv, user=f.user) for f in self.filters)] + [ext])
        head = [f"# {self.host}:{self.disk} level {self.level} of {self.date}: {self.how}"]
        if not self.known:
            head.append("# (its header was not read: add the decrypt and uncompress programs "
                        "of its 'To restore' line before the last |)")
        body = []
        for p in self.parts:
            for a in self.loads.get(p.partnum) or []:
                # inside the group, stdout is the stream: a changer's words go to stderr
                body.append(f'read -r -p "{a.text} " _ </dev/tty' if a.argv is None
                            else f"{a.command()} >&2")
            body.append(" | ".join(_shown(c) for c in p.cmds))
        as_backup = any(c.user for p in self.parts for c in p.cmds)
        if len(body) == 1 and not as_backup:
            return head + [f"{cd}{body[0]} | {tail}"]
        group = [f"{cd}( " + ("cd / && " if as_backup else "") + body[0]] + \
            ["  " + b for b in body[1:]]
        group[-1] += f" ) | {tail}"
        return head + group


def _shown(c: Cmd) -> str:
    line = display(c.argv)
    return f"runuser -u {c.user} -- {line}" if c.user else line


def build(host: str, disk: str, dump: Dump, device_of, extract: Cmd,
          header: Header | None, loads: dict | None = None, file_of=None) -> ImagePipe:
    """The pipe for `dump` (its parts in order); `header` is its first part's
    (None: not read, as for a tape not yet in the drive); file_of(label,
    filenum): the part's file where the volume is a vtape (else None)."""
    parts = sorted(dump.parts, key=lambda p: p.partnum)
    where = f"the level {dump.level} image of {host}:{disk} ({dump.date})"
    flt = filters(header, where) if header is not None else []
    files = [file_of(p.label, p.filenum) for p in parts] if file_of else []
    if header is not None and files and all(files):
        reads = [PartRead(p.label, p.filenum, p.partnum, [Cmd(file_read(f))])
                 for p, f in zip(parts, files)]
        what = " and ".join(x.what for x in flt)
        n = "one part" if len(parts) == 1 else f"{len(parts)} parts joined"
        how = f"vtape file{'s' if len(parts) > 1 else ''} read directly ({n})" + \
            (f", then one {what} for the whole" if what else "")
        return ImagePipe(host, disk, dump.date, dump.level, reads, flt, extract, how,
                         loads=dict(loads or {}))
    raw = len(parts) > 1 and (header is None or bool(flt))
    reads = []
    for p in parts:
        argv = amrestore_argv(device_of(p.label), p.label, p.filenum, host, disk)
        cmds = [Cmd(argv[:1] + ["-r"] + argv[1:], user=AMANDA_USER), Cmd(TAIL_HEADER)] \
            if raw else [Cmd(argv, user=AMANDA_USER)]
        reads.append(PartRead(p.label, p.filenum, p.partnum, cmds))
    if len(parts) == 1:
        how = "one part; amrestore decrypts and uncompresses" if flt else "one part"
        flt = []  # amrestore -p runs them itself
    elif not raw:
        how = f"{len(parts)} parts, neither compressed nor encrypted: joined as read"
    else:
        what = " and ".join(f.what for f in flt) or "decrypt or uncompress"
        how = (f"{len(parts)} parts, read raw, headers cut, joined, then one {what} "
               f"for the whole")
    return ImagePipe(host, disk, dump.date, dump.level, reads, flt, extract, how,
                     known=header is not None or len(parts) == 1, loads=dict(loads or {}))


def volume_loads(chain_dumps, media, loaded=None) -> tuple[dict, str | None]:
    """Per dump (index) and part number, the actions that put its volume in the
    drive (a changer's command or a prompt), tracking what is loaded; for vtapes
    there are none."""
    out: dict = {}
    for i, d in enumerate(chain_dumps):
        for p in sorted(d.parts, key=lambda p: p.partnum):
            acts: list[Action] = media.load(p.label, loaded) if media is not None else []
            loaded = p.label
            if acts:
                out.setdefault(i, {})[p.partnum] = acts
    return out, loaded


def header_reader(library):
    """header_of(label, filenum) for a library whose images can be read without
    moving anything (vtape slots); None where they cannot (a tape drive)."""
    file_of = file_finder(library)
    if file_of is None:
        return None

    def header_of(label: str, filenum: int) -> Header | None:
        path = file_of(label, filenum)
        try:
            return read_header(path) if path else None
        except (OSError, AmdrError):
            return None
    return header_of


def file_finder(library):
    """file_of(label, filenum) -> the image's file (None: not found) for a
    vtape library; None for a library without files (a tape drive)."""
    if library is None or not hasattr(library, "image_path"):
        return None

    def file_of(label: str, filenum: int):
        try:
            return library.image_path(label, filenum)
        except AmdrError:
            return None
    return file_of
