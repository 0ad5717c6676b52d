"""Where the volumes are: find the device holding a label, read image headers.

Amanda's file device (vtapes, chg-disk) keeps each slot as a directory: file
0 is `00000.LABEL`, then `NNNNN.HOST.DISK.LEVEL`, each starting with a 32 KiB
header.  amrestore does not fail on a wrong label or image (it prints ERROR
and exits 0), so every image is checked here before it is piped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from essentials.errors import AmdrError

from .quoting import split_quoted

HEADER_SIZE = 32768


class MediaError(AmdrError):
    """A volume or image is not where the catalog says."""


@dataclass
class Header:
    kind: str  # TAPESTART, FILE, SPLIT_FILE, CONT_FILE
    date: str
    host: str = ""
    disk: str = ""
    level: int | None = None
    label: str = ""
    part: str = ""
    program: str = ""
    # from "part N/M": M is -1 when the taper did not know the total (3.x
    # streams to the device, so every part it writes says N/-1)
    partnum: int | None = None
    totalparts: int | None = None
    # bytes of the whole image as written (SERVER-CRC=crc:size), so the
    # parts found on disk can be checked for completeness without reading them
    server_size: int | None = None
    # bytes of the native stream (what tar or restore reads: NATIVE-CRC=crc:size)
    native_size: int | None = None
    # the dumptype's program as the DLE block says (GNUTAR, DUMP, APPLICATION)
    dle_program: str = ""
    # how the stream was written: `comp .gz` (N: none), `crypt enc`, and the
    # programs the header names for a custom compression or an encryption
    comp: str = "N"
    encrypted: bool = False
    server_custom_compress: str = ""
    client_custom_compress: str = ""
    server_encrypt: str = ""
    client_encrypt: str = ""
    server_decrypt_option: str = ""
    client_decrypt_option: str = ""

    @property
    def restore_program(self) -> str:
        """The program in amconf's terms (GNUTAR, DUMP, APPLICATION:amgtar)."""
        if self.program.startswith("APPLICATION:"):
            return self.program
        if self.dle_program:
            return self.dle_program
        base = self.program.rsplit("/", 1)[-1]
        if base in ("tar", "gtar", "gnutar", "smbclient"):
            return "GNUTAR"
        if base.endswith(("dump", "backup")):  # dump, xfsdump, vxdump, vdump, backup (AIX)
            return "DUMP"
        return self.program


def parse_header(block: bytes) -> Header | None:
    text = block.split(b"\0", 1)[0].decode("utf-8", "replace")
    first = text.splitlines()[0] if text else ""
    if not first.startswith("AMANDA: "):
        return None
    t = split_quoted(first[len("AMANDA: "):])
    kind = t[0]
    if kind == "TAPESTART":
        # AMANDA: TAPESTART DATE d TAPE label
        return Header(kind, t[2], label=t[4] if len(t) > 4 else "")
    if kind in ("FILE", "SPLIT_FILE", "CONT_FILE"):
        h = Header(kind, t[1], host=t[2], disk=t[3])
        rest = t[4:]  # keywords come after host and disk, which may look like them
        if "lev" in rest:
            h.level = int(rest[rest.index("lev") + 1])
        if "part" in rest:
            h.part = rest[rest.index("part") + 1]
            num, _, total = h.part.partition("/")
            h.partnum = int(num) if num.isdigit() else None
            h.totalparts = int(total) if total.lstrip("-").isdigit() else None
        m = re.search(r"^SERVER-CRC=[0-9a-fA-F]+:(\d+)$", text, re.M)
        if m:
            h.server_size = int(m.group(1))
        m = re.search(r"^NATIVE-CRC=[0-9a-fA-F]+:(\d+)$", text, re.M)
        if m:
            h.native_size = int(m.group(1))
        m = re.search(r"<program>([^<]+)</program>", text)
        if m:
            h.dle_program = m.group(1).strip().upper()
            plugin = re.search(r"<backup-program>\s*<plugin>([^<]+)</plugin>", text)
            if h.dle_program == "APPLICATION" and plugin:
                h.dle_program = f"APPLICATION:{plugin.group(1).strip()}"
        if "program" in rest:
            h.program = rest[rest.index("program") + 1]
        if "comp" in rest:
            h.comp = rest[rest.index("comp") + 1]
        h.encrypted = "crypt" in rest and rest[rest.index("crypt") + 1:][:1] == ["enc"]
        for key in ("server_custom_compress", "client_custom_compress", "server_encrypt",
                    "client_encrypt", "server_decrypt_option", "client_decrypt_option"):
            if key in rest and rest.index(key) + 1 < len(rest):
                setattr(h, key, rest[rest.index(key) + 1])
        m = re.search(r"^APPLICATION=(\S+)", text, re.M)
        if m:
            h.program = f"APPLICATION:{m.group(1)}"
        return h
    # TAPEEND DATE d, and kinds this version does not restore from
    if len(t) > 2 and t[1] == "DATE":
        return Header(kind, t[2])
    return Header(kind, t[1] if len(t) > 1 else "")


def expect_header(h: Header | None, want: tuple, where: str, why: str) -> Header:
    """The header read at `where` must be the image the catalog names
    (host, disk, date, level); else a MediaError ending in `why`."""
    if h is None or (h.host, h.disk, h.date, h.level) != want:
        got = (h.host, h.disk, h.date, h.level) if h else "no Amanda header"
        raise MediaError(f"{where} holds {got}, the catalog says {want}{why}")
    return h


def read_header(path: Path) -> Header | None:
    with open(path, "rb") as f:
        return parse_header(f.read(HEADER_SIZE))


class VtapeLibrary:
    """A chg-disk directory of slotN subdirectories."""

    def __init__(self, root):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MediaError(f"{self.root}: no such vtape directory")
        self.labels: dict[str, Path] = {}
        for slot in sorted(self.root.glob("slot*")):
            first = sorted(slot.glob("00000.*"))
            if not first:
                continue
            h = read_header(first[0])
            if h and h.kind == "TAPESTART":
                self.labels[h.label] = slot

    def device(self, label: str) -> str:
        return f"file:{self.slot(label)}"

    def slot(self, label: str) -> Path:
        if label not in self.labels:
            raise MediaError(f"volume {label} is not in {self.root} (found: "
                             f"{', '.join(sorted(self.labels)) or 'no labelled volumes'}); "
                             f"put it in a slot or give the directory that holds it")
        return self.labels[label]

    def image_path(self, label: str, filenum: int) -> Path:
        slot = self.slot(label)
        found = sorted(slot.glob(f"{filenum:05d}.*"))
        if not found:
            raise MediaError(f"volume {label} ({slot}) has no file {filenum}")
        return found[0]

    def check_image(self, label: str, filenum: int, host: str, disk: str, date: str,
                    level: int) -> Header:
        path = self.image_path(label, filenum)
        return expect_header(read_header(path), (host, disk, date, level),
                             f"{label} file {filenum} ({path})",
                             "; the volume was overwritten or the catalog is stale")

    @property
    def available(self) -> set[str]:
        return set(self.labels)
