"""layout.yaml: the normalised disk layout, shared by essentials and recovery.

Version 1 (documented here, validated by `validate`).  Keys marked (+) were
added to version 1 before its first release; readers must accept their
absence (an older layout.yaml) and ignore keys they do not know.

    version: 1
    root: /                    # mountpoints below are relative to this dir
    disks:
      - id: disk0              # ids are how actions refer to things
        path: /dev/sda         # the device name on the original machine
        size: 21474836480      # bytes
        sector_size: 512       # logical sector size
        model/serial/wwn: str|null
        physical_sector_size: 4096|null         (+)
        rotational: bool|null                   (+)
        transport: sata|nvme|usb|...|null       (+)
        by_id: [ata-QEMU_HARDDISK_QM00001, ...] (+) names under /dev/disk/by-id
        ptable:                # null: no partition table (whole-disk fs)
          label: gpt|dos
          id: label-id (GPT disk GUID or MBR disk id)
          first_lba/last_lba: int|null          (+) GPT only
          partitions:
            - id: disk0p1
              number: 1
              path: /dev/sda1
              start: 2048      # sectors
              size: 1048576    # sectors
              type: GPT type GUID or MBR type code
              uuid: GPT partition GUID (PARTUUID)|null; for dos (+) the
                    PARTUUID blkid derives from the disk id (1a2b3c4d-05)
              name: GPT partition name|null
              attrs: GPT attribute bits|null
              bootable: true|null              (dos active flag)
              kind: primary|extended|logical|null (+) dos only; an extended
                    partition holds the logical ones (number >= 5)
    filesystems:
      - id: fs0
        device: disk0p1        # id of the partition, disk, MD array (or its
                               # partition), LV or open LUKS mapping holding it
                               # (those on a multipath map appear under the
                               # map's path disks)
        device_path: /dev/sda1 # its name on the original machine
        type: ext4|ext3|ext2|xfs|btrfs|vfat|swap, or the blkid TYPE of a
              stack member (LVM2_member, crypto_LUKS, linux_raid_member...),
              which the sections below describe and a planner must refuse
              until it can recreate them
        uuid: str              # vfat: the volume id (1A2B-3C4D)
        label: str|null
        mountpoint: /          # relative to root; null when not mounted
                               # (the first mount when there are several)
        mount_options: str|null
        used: int              # (+) bytes in use, when known (ext and btrfs from
                               # the superblock, xfs and vfat when mounted);
                               # decides whether a smaller disk fits; `check`
                               # ignores it
        params: {}             # tuning needed to recreate it:
            ext2/3/4: block_size, inode_size, reserved_percent,
                max_mount_count, check_interval (s), features [..],
                (+) inode_count, default_mount_options [..], errors_behavior,
                raid_stride, raid_stripe_width (blocks; only when set)
            xfs (+): block_size, inode_size, sector_size, agcount,
                naming_version, ftype, log_internal, log_blocks, log_version,
                crc, finobt, sparse, rmapbt, reflink, bigtime, inobtcount,
                nrext64 (0|1), stripe_unit/stripe_width, realtime
            btrfs (+): node_size, sector_size, num_devices, csum_type,
                features [..], ro_features [..], data_profile,
                metadata_profile, system_profile
            vfat (+): fat_size (12|16|32)
        active: bool           # swap only: in /proc/swaps
        mounts (+):            # only when mounted more than once or not at
          - mountpoint: /home  # its top (btrfs subvolumes, bind mounts)
            fsroot: /@home
            options: str
        subvolumes (+):        # btrfs only; null: unknown (was not mounted)
          - {id: 256, path: "@", parent_id: 5, uuid, parent_uuid, readonly}
        default_subvolume (+): {id: 256, path: "@"}  # btrfs only; path null
                               # for the top level (id 5); null: unknown
    lvm (+):                   # volume groups with a PV on the collected disks
      - id: vg0
        name: vg0
        uuid/attr/format: str
        size/free/extent_size: bytes; extent_count: int
        physical_volumes:
          - {device: disk0p2|null (not collected), path, uuid, size,
             dev_size, pe_start}            # sizes in bytes
        logical_volumes:
          - {id: vg0lv0, name, uuid, size (bytes), path: /dev/vg0/root,
             dm_path: /dev/mapper/vg0-root, segtype, stripes, stripe_size,
             attr, active, hidden, pool, origin, segments: 2,
             devices: ["/dev/sda2(0)", "/dev/sdb(0)"]}  # PV(first extent) per segment
        vgcfgbackup: layout/raw/lvm-vgcfgbackup-vg0.vg|null  # for vgcfgrestore
    md (+):                    # assembled MD RAID arrays (mdadm --detail)
      - id: array0
        path: /dev/md0
        name: host:0|null
        uuid: 641c6a23:900819e1:2ea9ec2d:7112fb1f
        level: raid1
        metadata: "1.2"
        raid_devices: 2
        size: bytes
        chunk_size: bytes|null
        layout: left-symmetric|near=2|null
        bitmap: internal|null
        degraded: bool
        members:
          - {device: disk0p2|null, path: /dev/sda2, role: 0|spare|null,
             state: active sync}
        ptable: null, or as a disk's (partitions array0p1...)
    luks (+):                  # LUKS containers (cryptsetup luksDump)
      - id: luks0
        device: disk0p3|null
        device_path: /dev/sda3
        uuid: str
        version: 1|2
        label/subsystem: str|null           # LUKS2
        cipher: aes-xts-plain64
        key_size: 512          # bits
        hash: sha256
        pbkdf: argon2id|pbkdf2
        data_offset: bytes
        sector_size: 512
        keyslots: [0, 1]
        name: cryptroot|null   # its mapping name (open, or from crypttab)
        path: /dev/mapper/cryptroot|null
        open: bool
        header_backup: layout/raw/luks-header-dev_sda3.img|null
    multipath (+):
      - {id: mpath0, name: mpatha, path: /dev/mapper/mpatha, size (bytes),
         wwid, vendor_product, paths: [disk0, disk1]}
    fstab (+):                 # /etc/fstab, each line resolved when it can be
      - {spec: UUID=..., file: /, vfstype: ext4, options: defaults, freq: 0,
         passno: 1, filesystem: fs0|null}
    crypttab (+):
      - {name: cryptroot, device: UUID=..., keyfile: str|null,
         options: str|null, luks: luks0|null}
    boot (+):                  # null when not collected
      firmware: uefi|bios
      cmdline: str|null        # /proc/cmdline
      grub:                    # debconf's grub-pc answers; null: not asked
        package: grub-pc|null  # null: grub-pc is not installed
        install_devices:
          - {device: /dev/disk/by-id/ata-X, path: /dev/sda|null,
             disk: disk0|null}
      efi:                     # efibootmgr -v; null on BIOS
        current: "0004"
        timeout: 1             # seconds
        order: ["0004", "0000"]
        entries:
          - {number: "0004", label: debian, active: true, device_path: str,
             partition_number: 1, partuuid: str|null, loader: str|null,
             partition: disk0p1|null}
    warnings (+): [str]        # what could not be collected, and why

The raw tool outputs travel beside it under layout/raw/ (index.yaml names
each file, rawdir.load() reads them back) so a newer planner can re-derive
what this version did not normalise.
"""

from __future__ import annotations

from essentials.errors import BundleError

VERSION = 1


def _sections(layout: dict, where: str) -> None:
    for key in ("lvm", "md", "luks", "multipath", "fstab", "crypttab", "warnings"):
        if key in layout and not isinstance(layout[key], list):
            raise BundleError(f"{where}: '{key}' must be a list, not "
                              f"{type(layout[key]).__name__}")
    boot = layout.get("boot")
    if boot is not None and (not isinstance(boot, dict)
                             or boot.get("firmware") not in ("uefi", "bios", None)):
        raise BundleError(f"{where}: boot.firmware must be uefi or bios")


def validate(layout: dict, where: str = "layout.yaml") -> dict:
    def need(obj, key, ctx):
        if not isinstance(obj, dict) or key not in obj:
            raise BundleError(f"{where}: {ctx} has no '{key}'")
        return obj[key]

    if need(layout, "version", "the layout") != VERSION:
        raise BundleError(f"{where}: layout version {layout.get('version')} is not "
                          f"supported (expected {VERSION})")
    ids: set = set()

    def add(i):
        if i in ids:
            raise BundleError(f"{where}: the id '{i}' is used twice")
        ids.add(i)

    def add_table(owner):
        for p in (owner.get("ptable") or {}).get("partitions", []):
            for k in ("id", "number", "start", "size", "type"):
                need(p, k, f"partition of {owner['id']}")
            add(p["id"])

    for i, d in enumerate(need(layout, "disks", "the layout")):
        for k in ("id", "path", "size"):
            need(d, k, f"disk #{i}")
        add(d["id"])
        add_table(d)
    _sections(layout, where)
    for i, vg in enumerate(layout.get("lvm") or []):
        for k in ("id", "name", "physical_volumes", "logical_volumes"):
            need(vg, k, f"volume group #{i}")
        add(vg["id"])
        for lv in vg["logical_volumes"]:
            for k in ("id", "name", "size"):
                need(lv, k, f"a logical volume of {vg['name']}")
            add(lv["id"])
    for i, a in enumerate(layout.get("md") or []):
        for k in ("id", "path", "level", "uuid", "members"):
            need(a, k, f"MD array #{i}")
        add(a["id"])
        add_table(a)
    for i, c in enumerate(layout.get("luks") or []):
        for k in ("id", "device_path", "uuid"):
            need(c, k, f"LUKS container #{i}")
        add(c["id"])
    for i, m in enumerate(layout.get("multipath") or []):
        for k in ("id", "name", "path"):
            need(m, k, f"multipath map #{i}")
        add(m["id"])

    def ref(value, what):
        if value is not None and value not in ids:
            raise BundleError(f"{where}: {what} refers to '{value}', which is no device "
                              f"of the layout")

    for vg in layout.get("lvm") or []:
        for pv in vg["physical_volumes"]:
            ref(pv.get("device"), f"physical volume {pv.get('path')} of {vg['name']}")
    for a in layout.get("md") or []:
        for m in a["members"]:
            ref(m.get("device"), f"member {m.get('path')} of {a['path']}")
    for c in layout.get("luks") or []:
        ref(c.get("device"), f"LUKS container {c['device_path']}")
    for m in layout.get("multipath") or []:
        for p in m.get("paths") or []:
            ref(p, f"multipath map {m['name']}")
    fs_ids = set()
    for f in need(layout, "filesystems", "the layout"):
        for k in ("id", "device", "type"):
            need(f, k, "filesystem")
        if f["device"] not in ids:
            raise BundleError(f"{where}: filesystem {f['id']} is on '{f['device']}', "
                              f"which is no disk, partition or device of the layout")
        fs_ids.add(f["id"])
    for e in layout.get("fstab") or []:
        for k in ("spec", "file"):
            need(e, k, "an fstab entry")
        if e.get("filesystem") is not None and e["filesystem"] not in fs_ids:
            raise BundleError(f"{where}: fstab entry {e['file']} refers to filesystem "
                              f"'{e['filesystem']}', which the layout does not have")
    luks_ids = {c["id"] for c in layout.get("luks") or []}
    for e in layout.get("crypttab") or []:
        need(e, "name", "a crypttab entry")
        if e.get("luks") is not None and e["luks"] not in luks_ids:
            raise BundleError(f"{where}: crypttab entry {e['name']} refers to '{e['luks']}', "
                              f"which is no LUKS container of the layout")
    return layout


def by_id(layout: dict) -> dict:
    """Every id of the layout -> its entry (disks, partitions, stacked devices,
    filesystems)."""
    out = {}
    for d in layout["disks"]:
        out[d["id"]] = d
        for p in (d.get("ptable") or {}).get("partitions", []):
            out[p["id"]] = p
    for vg in layout.get("lvm") or []:
        out[vg["id"]] = vg
        for lv in vg["logical_volumes"]:
            out[lv["id"]] = lv
    for a in layout.get("md") or []:
        out[a["id"]] = a
        for p in (a.get("ptable") or {}).get("partitions", []):
            out[p["id"]] = p
    for key in ("luks", "multipath"):
        for item in layout.get(key) or []:
            out[item["id"]] = item
    for f in layout["filesystems"]:
        out[f["id"]] = f
    return out
