"""Fitting an original disk's partitions onto a disk of another size (pure).

The policy (shown in the plan as notes on the partition table):

* Every partition keeps its start, so alignment, gaps and the boot areas are
  as they were; only the LAST partition (by end; for MBR a logical one
  together with the extended partition holding it) changes size.
* A larger disk: the last partition grows by what the disk has more (its
  end aligned down to 1 MiB; room the original left unallocated at the end
  stays unallocated) when what it holds can use the room: an ext2/3/4,
  XFS or btrfs filesystem (made at the new size), an LVM physical volume
  (pvresize after vgcfgrestore: the volume group gains free extents, the
  logical volumes keep their sizes, so the person decides what grows), an
  MD RAID member or a LUKS container (whatever is inside gets the room).
  Swap, FAT (the EFI system partition), a BIOS boot partition or a partition
  with nothing known on it keep their size and the rest of the disk is left
  unallocated.  A filesystem or PV on the whole disk simply gets the whole
  (larger) disk.
* A smaller disk: accepted only when the last partition can shrink to what
  is left and what it holds still fits: a filesystem whose used bytes the
  layout records (`used`), with a margin of 10% + 16 MiB (XFS: at least
  300 MiB, mkfs.xfs's minimum), or swap (kept at 1 MiB or more).  Anything
  else (an unknown used size, LVM, MD, LUKS, an earlier partition that does
  not fit) is an error that says what is needed and what is there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .mapping import human
from .ptable import gpt_backup_sectors, is_extended, table_end, usable_end

MIB = 1024 ** 2
ALIGN_BYTES = MIB
GROWABLE_FS = ("ext2", "ext3", "ext4", "xfs", "btrfs")
STACK_KINDS = {"LVM2_member": "an LVM physical volume", "linux_raid_member":
               "an MD RAID member", "crypto_LUKS": "a LUKS container"}
SHRINK_MARGIN = 0.10
SHRINK_EXTRA = 16 * MIB
MIN_SIZE = {"xfs": 300 * MIB, "swap": MIB, "btrfs": 128 * MIB, "vfat": MIB}


@dataclass
class Content:
    """What a partition or whole disk holds, as far as sizing cares."""

    fstype: str | None = None  # a filesystem type or a stack member's blkid TYPE
    used: int | None = None  # bytes in use, when the layout says
    what: str = "nothing the layout knows of"

    def grows(self) -> bool:
        return self.fstype in GROWABLE_FS or self.fstype in STACK_KINDS

    def needed(self) -> int | None:
        """Bytes it needs to fit after shrinking; None: it cannot shrink."""
        if self.fstype == "swap":
            return MIN_SIZE["swap"]
        if self.fstype in STACK_KINDS or self.fstype is None or self.used is None:
            return None
        need = int(self.used * (1 + SHRINK_MARGIN)) + SHRINK_EXTRA
        return max(need, MIN_SIZE.get(self.fstype, 0))

    def why_not(self) -> str:
        if self.fstype in STACK_KINDS:
            return f"it holds {STACK_KINDS[self.fstype]}, which is not shrunk"
        if self.fstype is None:
            return "it holds nothing the layout knows of, so its size is kept"
        return (f"the layout does not say how much of it ({self.what}) is used "
                f"(filesystems[].used)")


@dataclass
class Fit:
    partitions: list[dict] = field(default_factory=list)  # start/size in new sectors
    first_lba: int | None = None
    last_lba: int | None = None
    resized: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> bytes
    notes: list[str] = field(default_factory=list)
    problem: str | None = None


def _convert(value: int | None, old_ss: int, new_ss: int) -> int | None:
    if value is None:
        return None
    b = value * old_ss
    return b // new_ss if b % new_ss == 0 else None


def fit_disk(disk: dict, new_path: str, new_bytes: int | None, new_ss: int | None,
             contents: dict[str, Content]) -> Fit:
    """The partitions of `disk` placed on a disk of new_bytes (None: unknown,
    assumed the same) with new_ss-byte sectors."""
    old_ss = disk.get("sector_size") or 512
    new_ss = new_ss or old_ss
    pt = disk.get("ptable")
    fit = Fit()
    if not pt:
        return _fit_whole(disk, new_path, new_bytes, contents.get(disk["id"]) or Content(),
                          fit)
    parts = []
    for p in pt.get("partitions") or []:
        start, size = _convert(p["start"], old_ss, new_ss), _convert(p["size"], old_ss, new_ss)
        if start is None or size is None:
            fit.problem = (f"{p['path']} cannot be placed on {new_path}: it has {new_ss}-byte "
                           f"sectors and the partition does not start and end on one "
                           f"(original sectors: {old_ss} bytes)")
            return fit
        parts.append(dict(p, start=start, size=size))
    fit.partitions = parts
    fit.first_lba = _convert(pt.get("first_lba"), old_ss, new_ss)
    same = new_bytes is None or (new_bytes == disk["size"] and new_ss == old_ss)
    if same:
        fit.last_lba = pt.get("last_lba")
        return fit
    if not parts:
        return fit
    total = new_bytes // new_ss
    uend = usable_end(pt["label"], total, new_ss)
    align = max(1, ALIGN_BYTES // new_ss)
    end = table_end({"partitions": parts})
    data = [p for p in parts if not is_extended(pt, p)]
    last = max(data, key=lambda p: p["start"] + p["size"])
    container = next((p for p in parts if is_extended(pt, p)
                      and p["start"] <= last["start"] < p["start"] + p["size"]), None)
    content = contents.get(last["id"]) or Content()
    new_end = uend // align * align
    if end <= uend:
        # the disk's extra room goes to the last partition; room the original
        # left unallocated stays unallocated
        extra = uend - usable_end(pt["label"], disk["size"] // new_ss, new_ss)
        if extra < align:
            return fit
        if not content.grows():
            fit.notes.append(f"{human(extra * new_ss)} at the end of {new_path} left "
                             f"unallocated: the last partition {last['path']} holds "
                             f"{content.what}, which keeps its size")
            return fit
        last_end = last["start"] + last["size"]
        grown_end = min(uend, last_end + extra) // align * align
        if grown_end - last_end < align:
            return fit
        cont_end = None
        if container is not None:
            cont_end = min(uend, container["start"] + container["size"] + extra)
        _resize(fit, last, container, grown_end, new_ss, cont_end)
        fit.notes.append(f"{last['path']} ({content.what}) grows from "
                         f"{human(fit.resized[last['id']][0])} to "
                         f"{human(fit.resized[last['id']][1])}: {new_path} is larger")
        return fit
    # smaller: only the last partition may give up room
    reserve = gpt_backup_sectors(new_ss) if pt["label"] == "gpt" else 0
    need = (end + reserve) * new_ss
    head = (f"{new_path} is too small for {disk['path']}: its partitions took {need} bytes "
            f"({human(need)}), {new_path} has {new_bytes} ({human(new_bytes)})")
    others = [p for p in data if p is not last and p["start"] + p["size"] > new_end]
    room = (new_end - last["start"]) * new_ss
    needed = content.needed()
    # the real minimum: the partitions before the last as they are, the last
    # one at the least it can shrink to, the table's own sectors at the end
    least = needed if needed is not None else last["size"] * new_ss
    minimum = (last["start"] * new_ss + -(-least // (align * new_ss)) * align * new_ss
               + (total - uend) * new_ss + ALIGN_BYTES)
    at_least = f"; {new_path} needs at least {human(minimum)}"
    if others or room <= 0:
        worst = max(others or [last], key=lambda p: p["start"] + p["size"])
        fit.problem = (f"{head}; {worst['path']} ends at "
                       f"{human((worst['start'] + worst['size']) * new_ss)}, past what "
                       f"{new_path} can hold, and only the last partition can shrink"
                       + at_least)
        return fit
    if needed is None:
        fit.problem = (f"{head}; the last partition {last['path']} would have to shrink to "
                       f"{human(room)}, but {content.why_not()}" + at_least)
        return fit
    if needed > room:
        fit.problem = (f"{head}; the last partition {last['path']} ({content.what}) would "
                       f"have to shrink to {human(room)}: {shrink_reason(content, needed)}"
                       + at_least)
        return fit
    _resize(fit, last, container, new_end, new_ss)
    fit.notes.append(f"{last['path']} ({content.what}) shrinks from "
                     f"{human(fit.resized[last['id']][0])} to {human(room)}: {new_path} is "
                     f"smaller, and the "
                     + (f"{human(content.used)} used still fit"
                        if content.used is not None else "swap is remade at that size"))
    return fit


MKFS = {"xfs": "mkfs.xfs", "btrfs": "mkfs.btrfs", "vfat": "mkfs.vfat", "swap": "mkswap"}


def shrink_reason(content: Content, needed: int) -> str:
    """Why it can shrink no further: the filesystem's own minimum, or its data."""
    floor = MIN_SIZE.get(content.fstype or "", 0)
    if needed == floor and content.fstype in MKFS:
        return f"{MKFS[content.fstype]} needs at least {human(floor)}"
    used = f"it uses {human(content.used)}, " if content.used is not None else ""
    return f"{used}{human(needed)} needed with the margin"


def _resize(fit: Fit, last: dict, container: dict | None, new_end: int, ss: int,
            container_end: int | None = None):
    old = last["size"]
    last["size"] = new_end - last["start"]
    fit.resized[last["id"]] = (old * ss, last["size"] * ss)
    if container is not None:
        container["size"] = max(container_end or 0, new_end) - container["start"]


def _fit_whole(disk, new_path, new_bytes, content: Content, fit: Fit) -> Fit:
    old = disk["size"]
    if new_bytes is None or new_bytes == old:
        return fit
    if new_bytes > old:
        if content.fstype is not None:
            fit.resized[disk["id"]] = (old, new_bytes)
            fit.notes.append(f"{content.what} on the whole of {new_path} gets "
                             f"{human(new_bytes)} (was {human(old)})")
        return fit
    needed = content.needed()
    head = (f"{new_path} is too small for {disk['path']}: the whole disk held "
            f"{content.what}, {old} bytes ({human(old)}), {new_path} has {new_bytes} "
            f"({human(new_bytes)})")
    if needed is None:
        fit.problem = f"{head}; {content.why_not()}"
    elif needed > new_bytes:
        fit.problem = (f"{head}; {shrink_reason(content, needed)}; {new_path} needs at "
                       f"least {human(needed)}")
    else:
        fit.resized[disk["id"]] = (old, new_bytes)
        fit.notes.append(f"{content.what} on {new_path} shrinks from {human(old)} to "
                         f"{human(new_bytes)}: its used data still fits")
    return fit
