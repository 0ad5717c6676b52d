"""layout.yaml: the normalised disk layout, shared by essentials and recovery.

Version 1 (documented here, validated by `validate`):

    version: 1
    root: /                    # mountpoints below are relative to this dir
    disks:
      - id: disk0              # ids are how actions refer to things
        path: /dev/sda         # the device name on the original machine
        size: 21474836480      # bytes
        sector_size: 512
        model/serial/wwn: str|null
        ptable:                # null: no partition table (whole-disk fs)
          label: gpt|dos
          id: label-id (GPT disk GUID or MBR disk id)
          partitions:
            - id: disk0p1
              number: 1
              path: /dev/sda1
              start: 2048      # sectors
              size: 1048576    # sectors
              type: GPT type GUID or MBR type code
              uuid: GPT partition GUID (PARTUUID)|null
              name: GPT partition name|null
              attrs: GPT attribute bits|null
    filesystems:
      - id: fs0
        device: disk0p1        # id of the partition or disk holding it
        device_path: /dev/sda1 # its name on the original machine
        type: ext4|ext3|ext2|xfs|btrfs|vfat|swap
        uuid: str
        label: str|null
        mountpoint: /          # relative to root; null when not mounted
        mount_options: str|null
        params: {}             # tuning needed to recreate it (block_size...)

The raw tool outputs travel beside it under layout/raw/ so a newer planner
can re-derive what this version did not normalise.
"""

from __future__ import annotations

from essentials.errors import BundleError

VERSION = 1


def validate(layout: dict, where: str = "layout.yaml") -> dict:
    def need(obj, key, ctx):
        if not isinstance(obj, dict) or key not in obj:
            raise BundleError(f"{where}: {ctx} has no '{key}'")
        return obj[key]

    if need(layout, "version", "the layout") != VERSION:
        raise BundleError(f"{where}: layout version {layout.get('version')} is not "
                          f"supported (expected {VERSION})")
    ids = set()
    for i, d in enumerate(need(layout, "disks", "the layout")):
        for k in ("id", "path", "size"):
            need(d, k, f"disk #{i}")
        ids.add(d["id"])
        for p in (d.get("ptable") or {}).get("partitions", []):
            for k in ("id", "number", "start", "size", "type"):
                need(p, k, f"partition of {d['id']}")
            ids.add(p["id"])
    for f in need(layout, "filesystems", "the layout"):
        for k in ("id", "device", "type"):
            need(f, k, "filesystem")
        if f["device"] not in ids:
            raise BundleError(f"{where}: filesystem {f['id']} is on '{f['device']}', "
                              f"which is no disk or partition of the layout")
    return layout


def by_id(layout: dict) -> dict:
    out = {}
    for d in layout["disks"]:
        out[d["id"]] = d
        for p in (d.get("ptable") or {}).get("partitions", []):
            out[p["id"]] = p
    for f in layout["filesystems"]:
        out[f["id"]] = f
    return out
