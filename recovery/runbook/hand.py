"""The runbook's commands for a person with a plain rescue system (pure).

Nothing here decides a command: every line comes from the renderers the
engine runs (the disk plan's actions' steps, restore/pipe.py's image pipes,
media/positioning.py's tape loading and positioning), so what is printed is
what amanda-dr itself would do.  This module only lays them out for a
terminal: a script read on stdin becomes a here-document, a passphrase fed
on stdin becomes cryptsetup's own question, and a tape drive gets the `mt`
lines the driver runs before it reads an image.

Three ways to read an image, since sites have either and a rescue system
may lack Amanda:
- vtape: the volumes' files, as the driver reads them (`dd if=FILE bs=32k
  skip=1 | ... | tar`), or amrestore on the slot when the files are not at hand;
- tape: the volume in the drive, `mt rewind`, `mt fsf N`, the header read,
  then `amrestore -p ... tape:DEV | tar` (the driver's TapeDrive);
- tape without Amanda: after the same `mt` lines, `dd if=DEV bs=32k skip=1`
  piped through the header's own filters (only where the header was read
  when the runbook was made: it says how the image was compressed).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from essentials.runner import display

from ..media import positioning
from ..restore import pipe
from ..restore.plan import RestoreStep, extract_cmd, render, restoresymtable

DEFAULT_TAPE = "/dev/nst0"
HEREDOC = "EOF"

FORMS = ("vtape", "tape", "tape-dd")
TITLES = {
    "vtape": "vtapes (the volumes' files)",
    "tape": "tape drive, with Amanda's amrestore",
    "tape-dd": "tape drive, without Amanda (dd and the header's filters)",
}


@dataclass
class Block:
    """Lines to type, in order, under a heading; '#' lines are comments."""

    title: str
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- disks ---------------------------------------------------------------------------

def _step_lines(step) -> list[str]:
    """One disk action's step as typed: its script as a here-document, a
    passphrase asked by the tool itself (never printed)."""
    argv = list(step.argv)
    if step.secret_stdin is not None:
        # `--key-file -` reads the passphrase from stdin: without it cryptsetup asks
        for i in range(len(argv) - 1):
            if argv[i] == "--key-file" and argv[i + 1] == "-":
                del argv[i:i + 2]
                break
        return [f"{display(argv)}   # asks for the passphrase"]
    if step.stdin is not None:
        return [f"{display(argv)} <<'{HEREDOC}'"] + step.stdin.rstrip("\n").splitlines() \
            + [HEREDOC]
    return [display(argv)]


def disk_blocks(actions, describe, files: dict[str, str] | None = None) -> list[Block]:
    """Per disk action (the plan diskinit applies): what it does, its commands.

    describe(action) -> its sentence (disks/show.describe); files: path the
    plan names -> its text (an LVM metadata backup), written first."""
    out = []
    for path, text in (files or {}).items():
        out.append(Block(f"write {path} (read by a command below)",
                         [f"cat > {shlex.quote(path)} <<'{HEREDOC}'"]
                         + text.rstrip("\n").splitlines() + [HEREDOC]))
    for a in actions:
        if a.type == "preflight":
            if a.tools:
                out.append(Block("the tools these commands need",
                                 [f"# {', '.join(a.tools)}"]))
            continue
        lines = [ln for s in a.steps() for ln in _step_lines(s)]
        if a.type == "partition_table":
            # what diskinit does after partitioning when the nodes do not
            # appear by themselves (ptable.PartitionTable.after)
            first = next((p.path for p in a.partitions), None)
            if first:
                disk = a.device.rsplit("/", 1)[-1]
                lines.append(f"partx -a {a.device} 2>/dev/null || true  # any the kernel lacks")
                # where no udev runs (a rescue shell) a node can be missing or
                # stale: made as the kernel numbers them (recovery/disks/devnodes.py)
                lines.append(f"for s in /sys/block/{disk}/{disk}?*; do rm -f /dev/${{s##*/}}; "
                             f"mknod /dev/${{s##*/}} b $(tr : ' ' < $s/dev); done")
        b = Block(f"{a.id}: {describe(a)}", lines, list(getattr(a, "notes", None) or []))
        out.append(b)
    return out


# -- restores ------------------------------------------------------------------------

def vtape_lines(step: RestoreStep, devices: dict[str, str], library=None) -> list[str]:
    """The commands `plan` shows and the driver runs for vtapes (restore/plan.render):
    each image file read directly when the library is at hand, else amrestore
    on the slot (file:DIR) the catalog names."""
    return [display(["mkdir", "-p", step.directory])] + render(step, devices, library) \
        + _after(step)


def _after(step: RestoreStep) -> list[str]:
    """restore -r's bookkeeping file removed, the directory's times kept: what
    the driver does after the chain (os.unlink, then os.utime)."""
    sym = restoresymtable(step)
    if not sym:
        return []
    d, ref = shlex.quote(step.directory), "/tmp/amdr-mtime"
    return [f"touch -r {d} {ref} && rm -f {shlex.quote(sym)} && touch -r {ref} {d}"
            f"   # restore -r's bookkeeping"]


def _position(media: positioning.TapeMedia, label: str, filenum: int,
              header: bool) -> list[positioning.Action]:
    return [a for a in media.position(label, filenum) if header or a.kind != "header"]


def _shown(a: positioning.Action) -> str:
    return f"# {a.text}" if a.argv is None else a.command()


def tape_lines(step: RestoreStep, tape: str = DEFAULT_TAPE, header_of=None,
               amanda: bool = True, changer=None) -> list[str]:
    """What the driver does with a tape drive (media/devices.TapeDrive): per
    image, the volume loaded (a person, or the changer), `mt rewind`, `mt fsf
    N`, the header read, then the image piped into tar or restore.

    amanda=False: no amrestore; after positioning, `dd bs=32k skip=1` off the
    drive through the filters the header names (pipe.build's vtape-file
    case, with the drive for the file).  header_of(label, filenum): the
    headers read when the runbook was made (None: not known)."""
    media = positioning.TapeMedia(tape, changer)
    extract = extract_cmd(step.program, step.directory)
    out = [display(["mkdir", "-p", step.directory])]
    loaded = None
    for d in step.chain.dumps:
        parts = sorted(d.parts, key=lambda p: p.partnum)
        first = parts[0]
        h = header_of(first.label, first.filenum) if header_of else None
        for a in media.load(first.label, loaded):
            out.append(_shown(a))
        loaded = first.label
        if amanda or h is not None:
            out += [a.command() for a in _position(media, first.label, first.filenum,
                                                    header=amanda)]
        # the parts after the first: loaded and positioned inside the image's group
        loads = {}
        for p in parts[1:]:
            acts = media.load(p.label, loaded) + _position(media, p.label, p.filenum,
                                                           header=False)
            loaded = p.label
            loads[p.partnum] = acts
        if amanda:
            lines = pipe.build(step.host, step.disk, d, media.device, extract, h,
                               loads=loads).lines()
        elif h is None:
            lines = [f"# {step.host}:{step.disk} level {d.level} of {d.date}: its header was "
                     f"not read when this runbook was made; read it after positioning "
                     f"(`dd if={media.path} bs=32k count=1`): its 'To restore' line "
                     f"names the programs to pipe `dd if={media.path} bs=32k skip=1` "
                     f"through"]
        else:
            lines = pipe.build(step.host, step.disk, d, media.device, extract, h,
                               loads=loads, file_of=lambda label, filenum: media.path).lines()
            # the drive read as the vtape file would be: say so in the image's comment
            lines[0] = lines[0].replace("vtape files read directly", f"{media.path} read with dd") \
                .replace("vtape file read directly", f"{media.path} read with dd")
        out += lines
    return out + _after(step)


def restore_blocks(step: RestoreStep, forms, *, devices=None, library=None,
                   tape: str = DEFAULT_TAPE, header_of=None) -> list[Block]:
    """The DLE's commands in each form asked for (FORMS)."""
    out = []
    for form in forms:
        if form == "vtape":
            lines = vtape_lines(step, devices or {}, library)
        elif form == "tape":
            lines = tape_lines(step, tape, header_of)
        elif form == "tape-dd":
            lines = tape_lines(step, tape, header_of, amanda=False)
        else:
            raise ValueError(f"unknown form {form!r}; one of {', '.join(FORMS)}")
        out.append(Block(TITLES[form], lines))
    return out
