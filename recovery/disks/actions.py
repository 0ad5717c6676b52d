"""Disk actions: each renders its commands (testable without running) and applies them.

The plan is a flat ordered list of these, with ids other actions refer to
(the curtin storage-config model).  `render()` is pure; `apply()` only feeds
the rendered commands to the runner, so what the person approved is exactly
what runs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from essentials.errors import AmdrError
from essentials.runner import Runner

from . import devnodes

log = logging.getLogger(__name__)


@dataclass
class Step:
    """One command and, when it reads a script, its stdin."""

    argv: list[str]
    stdin: str | None = None


@dataclass
class Action:
    id: str

    type = "action"

    def steps(self) -> list[Step]:
        raise NotImplementedError

    def render(self) -> list[list[str]]:
        return [s.argv for s in self.steps()]

    def apply(self, runner: Runner):
        for s in self.steps():
            runner.run(s.argv, input=s.stdin.encode() if s.stdin is not None else None,
                       what=f"{self.type} {self.id}")

    def to_dict(self) -> dict:
        d = {"id": self.id, "type": self.type}
        d.update({k: v for k, v in asdict(self).items() if k != "id" and v not in (None, [], {})})
        d["commands"] = [" ".join(s.argv) + (" <<script" if s.stdin else "") for s in self.steps()]
        return d


@dataclass
class WipeDisk(Action):
    """Remove every signature on the disk: partition tables, fs superblocks."""

    device: str = ""
    type = "wipe"

    def steps(self):
        return [Step(["wipefs", "--all", "--force", self.device])]


@dataclass
class Partition:
    number: int
    path: str
    start: int
    size: int
    type: str
    uuid: str | None = None
    name: str | None = None
    attrs: str | None = None
    bootable: bool | None = None


@dataclass
class PartitionTable(Action):
    device: str = ""
    disk: str = ""  # id of the original disk this recreates
    label: str = "gpt"
    label_id: str | None = None
    partitions: list[Partition] = field(default_factory=list)
    type = "partition_table"

    def script(self) -> str:
        lines = [f"label: {self.label}"]
        if self.label_id:
            lines.append(f"label-id: {self.label_id}")
        lines.append("unit: sectors")
        lines.append("")
        for p in self.partitions:
            fields = [f"start={p.start}", f"size={p.size}", f"type={p.type}"]
            if p.uuid and self.label == "gpt":
                fields.append(f"uuid={p.uuid}")
            if p.name and self.label == "gpt":
                fields.append('name="' + p.name.replace('"', "") + '"')
            if p.attrs and self.label == "gpt":
                fields.append(f'attrs="{p.attrs}"')
            if p.bootable:
                fields.append("bootable")
            lines.append(f"{p.path} : " + ", ".join(fields))
        return "\n".join(lines) + "\n"

    def steps(self):
        # the kernel here does not rescan by itself: partx -u (PLATFORM.md)
        return [
            Step(["sfdisk", "--quiet", "--no-reread", "--wipe", "always",
                  "--wipe-partitions", "always", self.device], self.script()),
            Step(["partx", "-u", self.device]),
        ]

    def apply(self, runner: Runner):
        super().apply(runner)
        if runner.dry_run:
            return
        paths = [p.path for p in self.partitions]
        missing = devnodes.wait_for(paths, timeout=3)
        if missing:  # the kernel did not take the table in: ask it again
            runner.run(["partx", "-a", self.device], check=False)
            missing = devnodes.wait_for(missing, timeout=10)
        if missing:
            raise AmdrError(f"{', '.join(missing)} did not appear after partitioning "
                            f"{self.device}; run 'partx -a {self.device}' and retry")


@dataclass
class Format(Action):
    device: str = ""  # id of the partition or disk
    path: str = ""
    fstype: str = ""
    uuid: str | None = None
    label: str | None = None
    params: dict = field(default_factory=dict)
    type = "format"

    def steps(self):
        p, u, lab = self.params, self.uuid, self.label
        t = self.fstype
        if t in ("ext2", "ext3", "ext4"):
            argv = [f"mkfs.{t}", "-F", "-q"]
            if u:
                argv += ["-U", u]
            if lab:
                argv += ["-L", lab]
            if p.get("block_size"):
                argv += ["-b", str(p["block_size"])]
            if p.get("inode_size"):
                argv += ["-I", str(p["inode_size"])]
            if p.get("reserved_percent") is not None:
                argv += ["-m", str(p["reserved_percent"])]
            steps = [Step(argv + [self.path])]
            tune = []
            if p.get("max_mount_count") is not None:
                tune += ["-c", str(p["max_mount_count"])]
            if p.get("check_interval") is not None:
                tune += ["-i", f"{p['check_interval']}s"]
            if tune:
                steps.append(Step(["tune2fs"] + tune + [self.path]))
            return steps
        if t == "xfs":
            argv = ["mkfs.xfs", "-f", "-q"]
            if u:
                argv += ["-m", f"uuid={u}"]
            if lab:
                argv += ["-L", lab]
            return [Step(argv + [self.path])]
        if t == "btrfs":
            argv = ["mkfs.btrfs", "-f", "-q"]
            if u:
                argv += ["-U", u]
            if lab:
                argv += ["-L", lab]
            return [Step(argv + [self.path])]
        if t == "vfat":
            argv = ["mkfs.vfat"]
            if u:
                argv += ["-i", u.replace("-", "")]
            if lab:
                argv += ["-n", lab]
            return [Step(argv + [self.path])]
        if t == "swap":
            argv = ["mkswap", "-f"]
            if u:
                argv += ["-U", u]
            if lab:
                argv += ["-L", lab]
            return [Step(argv + [self.path])]
        raise AmdrError(f"cannot create a {t} filesystem on {self.path} (not supported yet)")


@dataclass
class Mount(Action):
    filesystem: str = ""  # id of the Format action's filesystem
    path: str = ""
    fstype: str = ""
    mountpoint: str = ""  # as on the original system
    target: str = ""  # where it is mounted now
    type = "mount"

    def steps(self):
        return [Step(["mkdir", "-p", self.target]),
                Step(["mount", "-t", self.fstype, self.path, self.target])]
