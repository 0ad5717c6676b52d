"""The runbook on the real lab: its PDF, turned into pages (pdftoppm) and text
(pdftotext), holds the volume labels, file numbers and UUIDs; its hand
commands, typed as a person would after the disk is lost, rebuild the disk
and restore every DLE as the lab's manifest says; secrets planted in the
bundle never reach it.  The pages are kept under AMDR_ARTIFACTS/runbook/."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from essentials import bundle as bundle_mod
from recovery.runbook import page
from tests.lab.lab import DATA_UUID, ROOT_UUID, SWAP_UUID, sh

from .helpers import amdr, collect, differences, keys_fixture, lab_after_two_runs

pytestmark = pytest.mark.integration
PASS = "runbook lab words"
ARTIFACTS = Path(os.environ.get("AMDR_ARTIFACTS", "/var/tmp/amdr-artifacts")) / "runbook"


keys = keys_fixture(PASS)


@pytest.fixture(scope="module")
def lab(keys):
    with lab_after_two_runs(keys) as lab:
        lab.plain = Path(collect(lab, str(lab.base / "plain")))
        yield lab


def parts_of(lab):
    """(label, file number) of every image the lab wrote, from its trace logs."""
    out = set()
    for run in lab.runs:
        for d in lab.dumps_of(run.datestamp):
            for p in d.parts:
                out.add((p.label, p.filenum))
    return out


def pdf_pages(pdf: Path, name: str) -> tuple[list[Path], str]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    sh(["pdftoppm", "-r", "110", "-png", str(pdf), str(ARTIFACTS / name)])
    pngs = sorted(ARTIFACTS.glob(f"{name}-*.png"))
    text = sh(["pdftotext", "-layout", str(pdf), "-"])
    shutil.copy(pdf, ARTIFACTS / f"{name}.pdf")
    return pngs, text


def test_pdf_of_the_sealed_bundle_holds_labels_file_numbers_uuids(lab, keys, tmp_path):
    pw = tmp_path / "pass"
    pw.write_text(PASS + "\n")
    os.chmod(pw, 0o600)
    out = tmp_path / "localhost.pdf"
    p = amdr("amdr-recover", "runbook", "--bundle", lab.sealed, "--gnupghome",
             keys.recovery_home, "--passphrase-file", pw, "--out", out)
    assert p.returncode == 0, p.stdout + p.stderr
    assert out.read_bytes().startswith(b"%PDF")
    pngs, text = pdf_pages(out, "lab-host")
    assert 1 <= len(pngs) <= 6, pngs  # a host fits in a few pages
    assert all(png.stat().st_size > 10_000 for png in pngs)
    flat = " ".join(text.split())
    for uuid in (ROOT_UUID, DATA_UUID, SWAP_UUID):
        assert uuid in flat, uuid
    for label, filenum in parts_of(lab):
        assert label in flat
        # the chain's table row and the mt line a person types
        assert f"-f {filenum} -l {label}" in flat, (label, filenum)
    assert "mt -f /dev/nst0 rewind" in flat and "mt -f /dev/nst0 fsf 1" in flat
    for heading in ("1. Identity", "2. Disks", "3. Network", "4. Restore",
                    "5. With amanda-dr", "6. By hand"):
        assert heading in flat, heading


def plant_secrets(src: Path, dst: Path) -> list[str]:
    """A copy of the bundle with secrets where a bundle keeps them: the shadow
    file in etc.tar, Amanda's encryption passphrase and key, a LUKS header
    backup, a GnuPG secret key block; the manifest made again so it verifies."""
    shutil.copytree(src, dst)
    secrets = ["$6$PLANTEDsalt$Zq9PlantedShadowHashNeverPrinted0123456789",
               "planted-amanda-passphrase-8d1f", "PLANTED-AMCRYPT-KEY-77aa",
               "PLANTED-LUKS-HEADER-KEYSLOT-5c3e", "PLANTED-GPG-SECRET-KEY-BLOCK-91b0"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in (("etc/shadow", f"root:{secrets[0]}:19000:0:99999:7:::\n"),
                           ("etc/amanda-dr/luks.key", secrets[3] + "\n")):
            raw = data.encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            t.addfile(info, io.BytesIO(raw))
    (dst / "etc.tar").write_bytes(buf.getvalue())
    (dst / "amanda" / "keys").mkdir(parents=True)
    (dst / "amanda" / "keys" / ".am_passphrase").write_text(secrets[1] + "\n")
    (dst / "amanda" / "keys" / "am_key.gpg").write_text(secrets[2] + "\n")
    (dst / "layout" / "raw" / "luks-header-dev_sda3.img").write_text(secrets[3])
    (dst / "gnupg-secret.asc").write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\n"
                                          + secrets[4] + "\n")
    old = bundle_mod.load_yaml_text((src / "manifest.yaml").read_text())
    extra = {k: v for k, v in old.items() if k not in ("files", "collectors")}
    bundle_mod.write_manifest(dst, old["collectors"], extra)
    return secrets


def test_planted_secrets_never_reach_the_runbook(lab, tmp_path):
    b = tmp_path / "bundle"
    secrets = plant_secrets(lab.plain, b)
    bundle_mod.open_bundle(b)  # it verifies: the runbook reads it as any bundle
    assert secrets[0].encode() in (b / "etc.tar").read_bytes()  # they are in it
    html_out, pdf_out = tmp_path / "rb.html", tmp_path / "rb.pdf"
    for out in (html_out, pdf_out):
        p = amdr("amdr-recover", "runbook", "--bundle", b, "--out", out)
        assert p.returncode == 0, p.stdout + p.stderr
    text = sh(["pdftotext", str(pdf_out), "-"])
    found = {s for s in secrets for where in (html_out.read_text(), text,
                                              pdf_out.read_bytes().decode("latin-1"))
             if s in where or s[:16] in where}
    assert found == set()
    assert ROOT_UUID in html_out.read_text()  # the runbook itself is all there


def test_site_runbook_from_the_site_plan(lab, keys, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    shutil.copy(lab.sealed, store)
    pw = tmp_path / "pass"
    pw.write_text(PASS + "\n")
    os.chmod(pw, 0o600)
    out = tmp_path / "site.pdf"
    p = amdr("amdr-recover", "site-plan", "--store", store, "--gnupghome", keys.recovery_home,
             "--passphrase-file", pw, "--runbook", out)
    assert p.returncode == 0, p.stdout + p.stderr  # every DLE of the lab planned
    pngs, text = pdf_pages(out, "site")
    assert pngs and "Site recovery plan" in text and "amdr-recover runbook" in text
    # the volume the lab's level 0 went to, in a drive's sequence
    assert f"{lab.name.upper()}-01" in text, text[:3000]


def test_hand_commands_typed_after_the_loss_restore_the_lab(lab, tmp_path):
    """Last in this module: the lab's disk is lost.  The runbook's commands (the
    disk blocks and the vtape form of each DLE), run one block after another
    in a shell as a person types them, rebuild it and restore both DLEs."""
    target = tmp_path / "target"
    out = tmp_path / "rb.html"
    p = amdr("amdr-recover", "runbook", "--bundle", lab.plain, "--out", out,
             "--target", target, "--forms", "vtape")
    assert p.returncode == 0, p.stdout + p.stderr
    doc = out.read_text()
    blocks = page.typed_blocks(doc)
    by_hand = doc.index("6. By hand")
    typed = page.typed_blocks(doc[by_hand:doc.index("6.3 Make it boot")])
    assert typed and all(b in blocks for b in typed)
    script = "\n".join(ln for b in typed for ln in b)
    assert f"mkfs.ext4 -F -q -U {ROOT_UUID} -L lab-root" in script
    assert f"mkswap -f -U {SWAP_UUID} -L lab-swap" in script
    lab.destroy_disk()
    assert sh(["blkid", "-p", lab.loop], check=False) == ""
    try:
        for b in typed:
            r = subprocess.run(["bash", "-e", "-o", "pipefail"], input="\n".join(b) + "\n",
                               capture_output=True, text=True, stdin=None,
                               start_new_session=True, timeout=600)
            assert r.returncode == 0, ("\n".join(b), r.stdout[-2000:], r.stderr[-2000:])
        assert differences(lab, target, run=-1) == {d: [] for d in lab.dle_dirs()}
        assert sh(["blkid", "-p", "-o", "value", "-s", "UUID", lab.part(1)]).strip() == \
            ROOT_UUID
        assert sh(["blkid", "-p", "-o", "value", "-s", "LABEL", lab.part(3)]).strip() == \
            "lab-swap"
    finally:
        subprocess.run(["umount", "-R", str(target)], capture_output=True)
