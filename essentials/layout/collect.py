"""Read the live machine's disks (the only place layout facts are gathered)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from essentials.errors import CommandError
from essentials.runner import Runner

from .normalise import normalise

log = logging.getLogger(__name__)

LSBLK_COLS = "NAME,PATH,PKNAME,TYPE,SIZE,MODEL,SERIAL,WWN,FSTYPE,UUID,LABEL,PARTUUID,PARTLABEL,PARTTYPE,MOUNTPOINT"


def _blkid(runner: Runner, path: str) -> dict:
    res = runner.run(["blkid", "-p", "-o", "export", path], check=False)
    if res.returncode not in (0, 2):  # 2: nothing found on the device
        raise CommandError(f"blkid -p -o export {path}", res.returncode, res.stderr.decode())
    out = {}
    for line in res.text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def gather(runner: Runner, disks: list[str] | None, raw_dir: Path) -> dict:
    """Run the tools, keep their raw output under raw_dir, return parsed raw."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    argv = ["lsblk", "--json", "-b", "-o", LSBLK_COLS]
    if disks:
        argv += ["--nodeps"] + list(disks)
    else:
        argv += ["--nodeps", "-e", "1,7,11"]  # no ram, loop or cdrom devices
    text = runner.output(argv)
    (raw_dir / "lsblk.json").write_text(text)
    lsblk = json.loads(text)
    lsblk["blockdevices"] = [d for d in lsblk["blockdevices"] if d.get("type") in ("disk", "loop")]
    raw = {"lsblk": lsblk, "sfdisk": {}, "blkid": {}, "tune2fs": {}}
    for dev in lsblk["blockdevices"]:
        path = dev["path"]
        safe = path.strip("/").replace("/", "_")
        res = runner.run(["sfdisk", "--json", path], check=False)
        if res.returncode == 0 and res.stdout.strip():
            raw["sfdisk"][path] = json.loads(res.text)
            (raw_dir / f"sfdisk-{safe}.json").write_text(res.text)
            dump = runner.output(["sfdisk", "--dump", path])
            (raw_dir / f"sfdisk-{safe}.dump").write_text(dump)
            nodes = [p["node"] for p in raw["sfdisk"][path]["partitiontable"].get("partitions", [])]
        else:
            nodes = [path]
        for node in nodes:
            info = _blkid(runner, node)
            raw["blkid"][node] = info
            if info.get("TYPE", "").startswith("ext"):
                t = runner.output(["tune2fs", "-l", node])
                raw["tune2fs"][node] = t
                (raw_dir / f"tune2fs-{node.strip('/').replace('/', '_')}.txt").write_text(t)
    (raw_dir / "blkid.yaml").write_text(yaml.safe_dump(raw["blkid"]))
    text = runner.output(["findmnt", "--json", "--list", "-o", "SOURCE,TARGET,FSTYPE,OPTIONS"])
    (raw_dir / "findmnt.json").write_text(text)
    raw["findmnt"] = json.loads(text)
    raw["swaps"] = Path("/proc/swaps").read_text()
    (raw_dir / "swaps.txt").write_text(raw["swaps"])
    return raw


def collect(runner: Runner, out: Path, disks: list[str] | None = None, root: str = "/") -> dict:
    raw = gather(runner, disks, out / "layout" / "raw")
    layout = normalise(raw, root)
    (out / "layout.yaml").write_text(yaml.safe_dump(layout, sort_keys=False))
    return layout
