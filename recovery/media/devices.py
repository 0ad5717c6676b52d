"""The device a field engineer names, as something the restore driver can read from.

`--device` takes what Amanda calls a device, or just a path:
  chg-disk:DIR, or a DIR of slotN directories    a vtape library
  file:DIR, or a DIR holding 00000.LABEL        one vtape slot (its siblings
                                                too, when it sits in a library)
  tape:DEV, or a character device               a tape drive, with a changer
                                                (amtape or mtx) or a person
                                                loading the volumes
Each gives the driver `device(label)`, `check_image(...)` (the 32 KiB header
against the catalog, before anything is piped) and, for tapes, `prepare()`:
loading and positioning (recovery.media.positioning), run through the
runner.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from essentials.errors import ConfigError
from essentials.runner import Runner

from . import positioning
from .volumes import (Header, MediaError, VtapeLibrary, expect_header, parse_header,
                    read_header)

log = logging.getLogger(__name__)


class SlotLibrary(VtapeLibrary):
    """Volumes at known slot directories: a file: device and its siblings."""

    def __init__(self, slots: dict[str, Path], where: str):
        self.root = Path(where)
        self.labels = dict(slots)


def _label_of(slot: Path) -> str | None:
    first = sorted(slot.glob("00000.*"))
    h = read_header(first[0]) if first else None
    return h.label if h and h.kind == "TAPESTART" else None


def _is_library(p: Path) -> bool:
    return any(c.is_dir() and c.name.startswith("slot") for c in p.iterdir())


def ask_on_terminal(text: str):
    """A person loads the volume: asked on the terminal, or in the text UI's
    dialog (recovery/events.ask); nobody to ask is an error naming the way out."""
    from ..events import ask
    choice = ask("volume", text, ["loaded", "stop"], default=None)
    if choice is None:
        raise ConfigError(f"a person must act ({text}), but there is no terminal to ask on; "
                          f"give --changer, or run this on a terminal")
    if choice == "stop":
        from ..events import StopAsked
        raise StopAsked(f"stopped, as asked, at: {text}")


class TapeDrive:
    """A tape drive: volumes loaded by a changer or a person, positioned with mt."""

    def __init__(self, path: str, runner: Runner, changer=None, ask=None):
        self.media = positioning.TapeMedia(path, changer)
        self.runner = runner
        self.ask = ask or ask_on_terminal
        self.loaded: str | None = None
        self.available = None  # not known without reading every volume

    def device(self, label: str) -> str:
        return self.media.device(label)

    def _do(self, runner: Runner, actions):
        for a in actions:
            if a.argv is None:
                self.ask(a.text)
            elif a.kind != "header":  # check_image reads it, and compares
                runner.run(a.argv, user=a.user, what=f"{a.kind} for the restore")

    def prepare(self, runner: Runner, label: str, filenum: int):
        """The volume in the drive (changer or a person), the head at the file."""
        self._do(runner, self.media.load(label, self.loaded))
        self.loaded = label
        self._do(runner, self.media.position(label, filenum))

    def check_image(self, label, filenum, host, disk, date, level) -> Header:
        r = self.runner.run(["dd", f"if={self.media.path}", "bs=32k", "count=1"],
                            what=f"reading the header of {label} file {filenum}")
        return expect_header(parse_header(r.stdout), (host, disk, date, level),
                             f"{label} file {filenum} on {self.media.path}",
                             ": a wrong volume in the drive, or the catalog is stale")


def changer_from(spec: str | None, slots: dict[str, int] | None = None):
    """--changer amtape:CONF or mtx:/dev/sgN (with --slot LABEL=N for mtx)."""
    if not spec:
        return None
    kind, sep, arg = spec.partition(":")
    if sep and arg and kind == "amtape":
        return positioning.AmtapeChanger(arg)
    if sep and arg and kind == "mtx":
        return positioning.MtxChanger(arg, dict(slots or {}))
    raise ConfigError(f"--changer {spec}: expected amtape:CONFIG or mtx:/dev/sgN")


def open_device(spec: str, runner: Runner, changer=None, ask=None):
    """The library for --device SPEC (see the module's docstring)."""
    for prefix in ("chg-disk:", "file:", "tape:"):
        if spec.startswith(prefix):
            kind, path = prefix[:-1], spec[len(prefix):]
            break
    else:
        kind, path = None, spec
    if kind == "tape":
        return TapeDrive(path, runner, changer, ask)
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except OSError as e:
        raise ConfigError(f"--device {spec}: {e.strerror}")
    if stat.S_ISCHR(mode):
        return TapeDrive(path, runner, changer, ask)
    if not stat.S_ISDIR(mode):
        raise ConfigError(f"--device {spec}: neither a vtape directory nor a tape drive")
    if kind == "chg-disk" or (kind is None and _is_library(p)):
        return VtapeLibrary(p)
    label = _label_of(p)
    if label is None:
        raise MediaError(f"--device {spec}: no volume label (00000.*) in {p}")
    slots = {}
    if _is_library(p.parent):
        # a slot of a library: the chain's other volumes are beside it
        slots.update(VtapeLibrary(p.parent).labels)
    slots[label] = p
    return SlotLibrary(slots, str(p.parent if len(slots) > 1 else p))


def from_devices(devices: dict[str, str]) -> SlotLibrary | None:
    """The volumes a catalog knows the place of (label -> file:SLOT), if on disk here."""
    slots = {}
    for label, dev in devices.items():
        path = dev[5:] if dev.startswith("file:") else dev
        if Path(path).is_dir():
            slots[label] = Path(path)
    return SlotLibrary(slots, "the volumes the catalog found") if slots else None
