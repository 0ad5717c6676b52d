"""The runbook's commands are the engine's: compared with what the restore
driver runs (a dry run records it) and what `plan` prints for the same chain,
and with the disk plan's own steps; the page holds what a person needs."""

from __future__ import annotations

import shlex

import pytest

from essentials.runner import Runner, display
from recovery.catalog.amconf import DiskEntry
from recovery.catalog.model import Dump, Part
from recovery.disks import show
from recovery.disks.plan import plan_disks
from recovery.media.devices import TapeDrive
from recovery.media.volumes import HEADER_SIZE, VtapeLibrary
from recovery.restore import driver
from recovery.restore.pipe import header_reader
from recovery.restore.plan import plan_restores, render
from recovery.runbook import hand, page
from recovery.runbook.content import (HostRunbook, disk_rows, fs_rows, network_rows,
                                      DleRestore)

H = "web1"
T = "/mnt/target"
ROOT_UUID = "11111111-2222-3333-4444-555555555555"
SRV_UUID = "79abe2f6-5279-4177-ad09-3282c586e72a"


def layout():
    return {
        "version": 1, "root": "/",
        "disks": [{"id": "disk0", "path": "/dev/sda", "size": 10 ** 9, "sector_size": 512,
                   "model": "QEMU HARDDISK", "serial": "QM0001", "ptable": {
                       "label": "gpt", "id": "4ED0594A-E52F-7249-B11C-096B2525BBB4",
                       "partitions": [
                           {"id": "disk0p1", "number": 1, "path": "/dev/sda1", "start": 2048,
                            "size": 409600, "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                            "uuid": "BFB10E48-11F9-664E-999E-67927C081F4D", "name": "root"},
                           {"id": "disk0p2", "number": 2, "path": "/dev/sda2",
                            "start": 411648, "size": 409600,
                            "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}]}}],
        "filesystems": [
            {"id": "fs0", "device": "disk0p1", "device_path": "/dev/sda1", "type": "ext4",
             "uuid": ROOT_UUID, "label": "root", "mountpoint": "/"},
            {"id": "fs1", "device": "disk0p2", "device_path": "/dev/sda2", "type": "ext4",
             "uuid": SRV_UUID, "label": "srv", "mountpoint": "/srv"}],
        "boot": {"firmware": "bios", "grub": {"package": "grub-pc", "install_devices": [
            {"device": "/dev/disk/by-id/ata-QEMU_HARDDISK_QM0001", "path": "/dev/sda"}]}},
    }


DUMPS = [
    Dump(H, "/", "20260101010000", 0, [Part("V-01", 1, 1)], 1),
    Dump(H, "/", "20260102010000", 1, [Part("V-02", 1, 1)], 1),
    Dump(H, "/srv", "20260101010000", 0, [Part("V-01", 2, 1)], 1),
    Dump(H, "/srv", "20260102010000", 1, [Part("V-02", 2, 1)], 1),
    Dump(H, "/srv", "20260103010000", 2, [Part("V-03", 3, 1)], 1),
]


def steps():
    disklist = [DiskEntry(H, "/", "/", "dt", "GNUTAR"),
                DiskEntry(H, "/srv", "/dev/sda2", "dt", "DUMP")]
    st, errors = plan_restores(DUMPS, disklist, layout(), T, H)
    assert errors == []
    return st


def commands(lines) -> list[str]:
    return [ln for ln in lines if not ln.startswith("#")]


def driver_on_tape(step) -> tuple[list, list[str]]:
    """What the driver runs for `step` with a tape drive (a dry run records it),
    and what it asks a person."""
    runner = Runner(dry_run=True)
    asked: list[str] = []
    drive = TapeDrive("/dev/nst0", runner, ask=asked.append)
    driver.restore_step(runner, step, drive)
    return runner.recorded, asked


def shown(cmd) -> str:
    line = display(cmd.argv)
    return f"runuser -u {cmd.user} -- {line}" if cmd.user else line


@pytest.mark.parametrize("which", [0, 1])
def test_tape_commands_are_the_drivers(which):
    """Every command the driver runs on a tape drive, in its order, is a line
    of the runbook's tape form (plus the header read the driver does through
    check_image, which a dry run skips); every prompt is the runbook's."""
    step = steps()[which]
    recorded, asked = driver_on_tape(step)
    lines = hand.tape_lines(step, "/dev/nst0")
    # (and restore -r's restoresymtable, which the driver unlinks itself)
    typed = [ln for ln in commands(lines) if ln != "dd if=/dev/nst0 bs=32k count=1"
             and "restoresymtable" not in ln]
    # a command, or a pipeline (the source | ... | the extract): one line each
    got = [[shown(c) for c in rec.commands] for rec in recorded]
    assert len(typed) == len(got), (typed, got)
    for line, cmds in zip(typed, got):
        for c in cmds:
            assert c in line, (c, line)
        if len(cmds) > 1:  # the pipe's stages in their order
            pos = [line.index(c) for c in cmds]
            assert pos == sorted(pos)
    assert [f"# {a}" for a in asked] == [ln for ln in lines if ln.startswith("# Insert")]
    labels = [p.label for d in step.chain.dumps for p in d.parts]
    files = [p.filenum for d in step.chain.dumps for p in d.parts]
    assert [ln.split()[-1] for ln in lines if " fsf " in ln] == [str(f) for f in files]
    assert [ln for ln in lines if "amrestore" in ln and "-l " + labels[0] in ln]


def test_tape_form_names_mt_and_the_images():
    step = steps()[1]  # /srv: DUMP, three levels over three volumes
    lines = hand.tape_lines(step, "/dev/nst0")
    cmds = commands(lines)
    assert cmds[:4] == ["mkdir -p /mnt/target/srv", "mt -f /dev/nst0 rewind",
                        "mt -f /dev/nst0 fsf 2", "dd if=/dev/nst0 bs=32k count=1"]
    assert ("cd /mnt/target/srv && ( cd / && runuser -u backup -- amrestore -p -f 2 -l V-01 "
            "tape:/dev/nst0 =web1 =/srv ) | restore -r -y -f -") in cmds
    assert "mt -f /dev/nst0 offline" in cmds
    assert cmds[-1].startswith("touch -r /mnt/target/srv /tmp/amdr-mtime && rm -f "
                               "/mnt/target/srv/restoresymtable && touch -r /tmp/amdr-mtime "
                               "/mnt/target/srv")


def vtapes(tmp_path, comp=".gz"):
    """A chg-disk library holding the DUMPS' images (headers only)."""
    root = tmp_path / "vt"

    def put(slot, name, text):
        (root / slot).mkdir(parents=True, exist_ok=True)
        raw = text.encode()
        (root / slot / name).write_bytes(raw + b"\0" * (HEADER_SIZE - len(raw)) + b"data")
    for n in (1, 2, 3):
        put(f"slot{n}", f"00000.V-0{n}", f"AMANDA: TAPESTART DATE 2026010{n}010000 "
                                          f"TAPE V-0{n}\n")
    for d in DUMPS:
        p = d.parts[0]
        prog = "/bin/tar" if d.disk == "/" else "/sbin/dump"
        put(f"slot{p.label[-1]}", f"{p.filenum:05d}.{H}.{d.disk.replace('/', '_')}.{d.level}",
            f"AMANDA: SPLIT_FILE {d.date} {H} {d.disk} part 1/-1 lev {d.level} comp {comp} "
            f"program {prog}\n")
    return VtapeLibrary(root)


def test_vtape_form_is_what_plan_prints(tmp_path):
    """`plan` (cli._restores) renders restore.plan.render for the library at
    hand: the runbook's vtape form is those lines, after the driver's mkdir."""
    lib = vtapes(tmp_path)
    devices = {lab: lib.device(lab) for lab in lib.labels}
    for step in steps():
        lines = hand.vtape_lines(step, devices, lib)
        assert lines[0] == f"mkdir -p {step.directory}"
        n = len(render(step, devices, lib))
        assert lines[1:1 + n] == render(step, devices, lib)
    root = hand.vtape_lines(steps()[0], devices, lib)
    assert (f"dd if={lib.root}/slot1/00001.web1._.0 bs=32k skip=1 status=none | gzip -dc "
            f"| tar -x -p -G --numeric-owner -f - -C /mnt/target") in root


def test_vtape_form_runs_as_the_driver_does(tmp_path):
    """The driver's dry run on the vtapes: its pipelines are the runbook's lines."""
    lib = vtapes(tmp_path)
    devices = {lab: lib.device(lab) for lab in lib.labels}
    for step in steps():
        runner = Runner(dry_run=True)
        driver.restore_step(runner, step, lib)
        pipes = [" | ".join(shown(c) for c in r.commands) for r in runner.recorded
                 if r.kind == "pipeline"]
        lines = commands(hand.vtape_lines(step, devices, lib))
        for p in pipes:
            src, sink = p.split(" | ", 1)
            assert any(src in ln and ln.endswith(sink) for ln in lines), (p, lines)


def test_tape_without_amanda_uses_the_headers_filters(tmp_path):
    lib = vtapes(tmp_path)
    step = steps()[0]
    lines = hand.tape_lines(step, "/dev/nst0", header_reader(lib), amanda=False)
    cmds = commands(lines)
    assert "amrestore" not in " ".join(cmds)
    assert cmds[1:4] == ["mt -f /dev/nst0 rewind", "mt -f /dev/nst0 fsf 1",
                         "dd if=/dev/nst0 bs=32k skip=1 status=none | gzip -dc | tar -x -p -G "
                         "--numeric-owner -f - -C /mnt/target"]
    # headers not known: it says how to find the filters, and runs nothing blind
    blind = hand.tape_lines(step, "/dev/nst0", None, amanda=False)
    assert not any(ln.startswith("dd ") for ln in blind)
    assert "'To restore' line" in " ".join(blind)


def test_disk_commands_are_the_plans_steps():
    """Each action's steps, as diskinit runs them; sfdisk's script as a here-document."""
    lay = layout()
    actions = plan_disks(lay, {"/dev/sda": "/dev/sda"}, None, T)
    blocks = hand.disk_blocks(actions, show.describe)
    text = "\n".join(ln for b in blocks for ln in b.lines)
    for a in actions:
        for s in a.steps():
            assert display(s.argv) in text
            if s.stdin:
                assert s.stdin.rstrip("\n") in text
    assert f"mkfs.ext4 -F -q -U {ROOT_UUID} -L root" in text
    assert "sfdisk --quiet --no-reread --wipe always --wipe-partitions always /dev/sda " \
           "<<'EOF'" in text
    assert "partx -a /dev/sda 2>/dev/null || true" in text
    assert "for s in /sys/block/sda/sda?*; do rm -f /dev/${s##*/}; mknod" in text
    # the here-document ends each script
    lines = text.splitlines()
    start = lines.index(next(ln for ln in lines if ln.endswith("<<'EOF'")))
    assert "EOF" in lines[start + 1:]


def test_a_passphrase_is_asked_never_printed():
    from recovery.disks.stack import LuksFormat, Passphrase
    a = LuksFormat("luks-luks0", device="disk0p2", path="/dev/sda2", luks="luks0",
                   uuid="abcd", passphrase=Passphrase(lambda: "SECRET-WORDS"))
    [b] = hand.disk_blocks([a], show.describe)
    assert b.lines == ["cryptsetup luksFormat --batch-mode --type luks2 --uuid abcd "
                       "/dev/sda2   # asks for the passphrase"]


def test_page_has_the_facts_and_escapes():
    lay = layout()
    disks, parts = disk_rows(lay)
    r = HostRunbook(
        host=H, identity=[("Host", H)], disks=disks, partitions=parts,
        filesystems=fs_rows(lay), stacks=[], boot=[("Boot mode", "BIOS")],
        interfaces=network_rows({"interfaces": [{"name": "eth0", "mac": "52:54:00:12:34:56",
                                                 "addresses": [{"address": "192.0.2.2",
                                                                "prefix": 24}]}],
                                 "default_routes": [{"gateway": "192.0.2.1", "dev": "eth0"}],
                                 "dns": {"nameservers": ["192.0.2.53"]}})[0],
        routes=["default via 192.0.2.1 dev eth0"], dns=[("Name servers", "192.0.2.53")],
        restores=[DleRestore(H, "/", "GNUTAR", T, "/", [{"level": 0, "date": "2026-01-01",
                                                         "label": "V-01", "filenum": 1,
                                                         "part": "", "size": "2 MiB"}],
                             ["V-01"], [hand.Block("x", ["echo a < b && c"])])],
        errors=[], disk_blocks=[], disk_notes=[], live_steps=[("boot", "amdr-recover x")],
        boot_steps=["update-grub"], target=T, forms=["vtape"])
    doc = page.document(r)
    for fact in (ROOT_UUID, SRV_UUID, "QM0001", "52:54:00:12:34:56", "192.0.2.2/24",
                 "V-01", "@page", "echo a &lt; b &amp;&amp; c"):
        assert fact in doc, fact
    # the commands are in <pre class=sh> blocks, a line each, and read back as typed
    blocks = page.typed_blocks(doc)
    assert ["echo a < b && c"] in blocks
    assert ["amdr-recover x"] in blocks and ["update-grub"] in blocks
    assert shlex.split("echo a < b && c")[0] == "echo"
