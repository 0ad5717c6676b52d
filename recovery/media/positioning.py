"""Which volumes a restore needs, in the order it uses them, and how to reach each image.

Pure: a plan of actions to show a person or hand to the driver, no I/O.

How an image is reached depends on the medium:
- a vtape (chg-disk slot) or any file device: `amrestore -f FILENUM -l LABEL`
  seeks to the file itself, and checks the label;
- a physical tape drive: the volume is loaded by the changer (`amtape CONF
  label L` through Amanda, or `mtx -f CHANGER load SLOT`), or, with no
  changer, a person is asked to insert it; then `mt -f DEV rewind` and
  `mt -f DEV fsf FILENUM` put the head at the image (file 0 is the label, so
  `fsf N` from the start lands on file N), where its 32 KiB header can be
  read with dd before amrestore runs (amrestore itself rewinds and seeks).

File numbers count from 0, the volume label; the first image is file 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from essentials.runner import display

AMANDA_USER = "backup"


@dataclass
class Action:
    """One thing to do: a command (argv), or a prompt to a person (argv None)."""

    kind: str  # "load", "unload", "prompt", "position", "header", "read"
    argv: list[str] | None = None
    text: str = ""
    user: str | None = None

    def command(self) -> str:
        """As root would type it; Amanda's tools run as the dump user."""
        line = display(self.argv)
        return f"runuser -u {self.user} -- {line}" if self.user else line

    def render(self) -> str:
        return f"# {self.text}" if self.argv is None else self.command()


@dataclass(frozen=True)
class Read:
    """One part of one image to read."""

    host: str
    disk: str
    date: str
    level: int
    label: str
    filenum: int
    partnum: int = 1
    nparts: int = 1


@dataclass
class VolumeUse:
    """A volume in the drive (or slot) while the reads on it are done, in order."""

    label: str
    device: str
    reads: list[Read] = field(default_factory=list)
    load: list[Action] = field(default_factory=list)
    steps: list[list[Action]] = field(default_factory=list)  # per read: position..read

    def actions(self) -> list[Action]:
        return self.load + [a for s in self.steps for a in s]


def amrestore_argv(device: str, label: str, filenum: int, host: str, disk: str) -> list[str]:
    # '=' makes Amanda match host and disk exactly instead of as regexes
    return ["amrestore", "-p", "-f", str(filenum), "-l", label, device, f"={host}", f"={disk}"]


# -- media ------------------------------------------------------------------------

class VtapeMedia:
    """A chg-disk library: each label in its own slot, `file:SLOTDIR`."""

    kind = "vtape"

    def __init__(self, devices: dict[str, str] | None = None, root: str | None = None):
        self.devices = dict(devices or {})
        self.root = root

    def device(self, label: str) -> str:
        if label in self.devices:
            return self.devices[label]
        if self.root:
            return f"file:{self.root}/<slot holding {label}>"
        return f"<device holding {label}>"

    def load(self, label: str, loaded: str | None) -> list[Action]:
        return []

    def position(self, label: str, filenum: int) -> list[Action]:
        return []  # amrestore -f seeks a file device itself


class FileMedia(VtapeMedia):
    """One file device (`file:DIR`), holding one volume at a time."""

    kind = "file"

    def __init__(self, device: str, label: str | None = None):
        super().__init__()
        self.path = device
        self.label = label

    def device(self, label: str) -> str:
        return self.path

    def load(self, label: str, loaded: str | None) -> list[Action]:
        if label == loaded or label == self.label:
            return []
        if loaded is None and self.label is None:
            return []  # unknown: amrestore -l checks the label
        return [Action("prompt", text=f"Put volume {label} at {self.path[5:]} (it holds "
                                      f"{loaded or self.label} now), then press Enter")]


@dataclass
class AmtapeChanger:
    """The Amanda configuration's changer; amtape finds the label itself."""

    config: str

    def load(self, label: str, device: str, loaded: str | None) -> list[Action]:
        return [Action("load", ["amtape", self.config, "label", label], user=AMANDA_USER)]


@dataclass
class MtxChanger:
    """A SCSI changer driven with mtx; the slot of each label from a scan or inventory."""

    device: str
    slots: dict[str, int] = field(default_factory=dict)
    drive: int = 0

    def load(self, label: str, device: str, loaded: str | None) -> list[Action]:
        out = []
        if loaded is not None:
            # without a slot, mtx puts the volume back where it came from
            back = [str(self.slots[loaded]), str(self.drive)] if loaded in self.slots else []
            out.append(Action("unload", ["mtx", "-f", self.device, "unload"] + back))
        slot = self.slots.get(label)
        if slot is None:
            out.append(Action("prompt", text=f"Load volume {label} into {device} (its slot "
                                             f"is not known: see `mtx -f {self.device} "
                                             f"status`), then press Enter"))
        else:
            out.append(Action("load", ["mtx", "-f", self.device, "load", str(slot),
                                       str(self.drive)]))
        return out


class TapeMedia:
    """A physical tape drive, with or without a changer."""

    kind = "tape"

    def __init__(self, device: str, changer: AmtapeChanger | MtxChanger | None = None):
        self.path = device[5:] if device.startswith("tape:") else device
        self.changer = changer

    def device(self, label: str) -> str:
        return f"tape:{self.path}"

    def load(self, label: str, loaded: str | None) -> list[Action]:
        if label == loaded:
            return []
        if self.changer is not None:
            return self.changer.load(label, self.path, loaded)
        out = []
        if loaded is not None:
            out.append(Action("unload", ["mt", "-f", self.path, "offline"]))
        out.append(Action("prompt", text=f"Insert volume {label} into {self.path}, "
                                         f"then press Enter"))
        return out

    def position(self, label: str, filenum: int) -> list[Action]:
        out = [Action("position", ["mt", "-f", self.path, "rewind"])]
        if filenum:
            out.append(Action("position", ["mt", "-f", self.path, "fsf", str(filenum)]))
        out.append(Action("header", ["dd", f"if={self.path}", "bs=32k", "count=1"],
                          text="the image's header, checked before it is restored"))
        return out


# -- the plan ---------------------------------------------------------------------

def reads(chains) -> list[Read]:
    """Every part of every image of the chains, in restore order."""
    out = []
    for c in chains:
        for d in c.dumps:
            n = d.nparts or len(d.parts) or 1
            for p in sorted(d.parts, key=lambda p: p.partnum):
                out.append(Read(c.host, c.disk, d.date, d.level, p.label, p.filenum,
                                p.partnum, n))
    return out


def volumes_needed(chains) -> list[str]:
    """Labels in the order they are first used, each once."""
    seen, out = set(), []
    for r in reads(chains):
        if r.label not in seen:
            seen.add(r.label)
            out.append(r.label)
    return out


def plan(chains, media) -> list[VolumeUse]:
    """Volume after volume, in the order the restore uses them.

    A volume used again after another one is a new use (it must be loaded
    again); reads on the same volume in a row share one load.
    """
    uses: list[VolumeUse] = []
    loaded = None
    for r in reads(chains):
        if not uses or uses[-1].label != r.label:
            uses.append(VolumeUse(r.label, media.device(r.label), load=media.load(r.label,
                                                                                  loaded)))
            loaded = r.label
        use = uses[-1]
        use.reads.append(r)
        use.steps.append(media.position(r.label, r.filenum) + [Action(
            "read", amrestore_argv(use.device, r.label, r.filenum, r.host, r.disk),
            user=AMANDA_USER)])
    return uses


def render(uses: list[VolumeUse], extract: dict | None = None) -> list[str]:
    """The plan for a person: one line per action, a comment per volume and image.

    extract: (host, disk) -> the extracting command line, shown after each
    read's `|`; without it the read is shown alone.
    """
    out = []
    for u in uses:
        out.append(f"# volume {u.label} on {u.device}")
        out += [a.render() for a in u.load]
        for r, step in zip(u.reads, u.steps):
            part = f" part {r.partnum}/{r.nparts}" if r.nparts > 1 else ""
            out.append(f"#   {r.host}:{r.disk} level {r.level} of {r.date}{part}, "
                       f"file {r.filenum}")
            for a in step:
                tail = (extract or {}).get((r.host, r.disk))
                out.append(f"{a.render()} | {tail}" if a.kind == "read" and tail
                           else a.render())
    return out
