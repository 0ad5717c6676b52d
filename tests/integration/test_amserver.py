"""The lost-server path against the real Amanda: the lab's server is lost
(configuration, trace logs, curinfo, index, holding disk; the vtapes stay),
then rebuilt under new configuration names from its bundle and from the
media alone, and real amrecover and amfetchdump restore from it, verified
against the manifests the lab took at backup time."""

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from essentials.runner import Cmd, Runner
from recovery.amserver import amrecover, conf, fetchdump, rebuild
from recovery.catalog import findout, tracelog
from tests.integration.helpers import collect
from tests.lab import scenario, tree
from essentials.sealed import seal
from tests.lab.keys import make_keys
from tests.lab.lab import AmandaLab

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
ETC = Path("/etc/amanda")
PASSPHRASE = "amserver recovery passphrase"


def short_history(lab):
    """Levels 0, 1, then a newer 0, 1, 2: the newest chain is runs 3-5."""
    scenario.initial(lab.mnt, lab.data_mnt)
    lab.backup(expect=0)
    scenario.change1(lab.mnt, lab.data_mnt)
    lab.backup(expect=1)
    scenario.change2(lab.mnt, lab.data_mnt)
    lab.backup(force_full=True, expect=0)
    scenario.change3(lab.mnt, lab.data_mnt)
    lab.backup(expect=1)
    scenario.change4(lab.mnt, lab.data_mnt)
    lab.backup(bump=True, expect=2)


def real_index(indexdir: Path) -> dict:
    return {str(p.relative_to(indexdir)): gzip.decompress(p.read_bytes())
            for p in indexdir.rglob("*-unsorted.gz")}


def find_keys(dumps):
    return sorted((d.host, d.disk, d.date, d.level, d.status,
                   tuple(sorted((p.label, p.filenum) for p in d.parts))) for d in dumps)


def amdr(*args):
    return subprocess.run([str(BIN / "amdr-recover")] + [str(a) for a in args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


def recover(config, disk, out, date=None):
    """The real amrecover; a silent amrecover fails the test within 90 s."""
    return amrecover.recover(amrecover.RecoverRequest(config, "localhost", disk, str(out), date),
                             idle_timeout=90)


def amadmin(config, *args):
    return subprocess.run(["runuser", "-u", "backup", "--", "amadmin", config] + list(args),
                          capture_output=True, text=True, check=True).stdout


class Lost:
    """The lab after its server was lost, and what the tests compare with."""

    def __init__(self, lab, bundle, index, find):
        self.lab, self.bundle, self.index, self.find = lab, bundle, index, find
        self.configs: list[str] = []

    def name(self, suffix):
        n = f"{self.lab.name}{suffix}"
        self.configs.append(n)
        return n

    def state(self, suffix):
        return self.lab.base / f"server-{suffix}"

    def excludes(self, disk):
        return {"lost+found", "srv"} if disk == self.lab.root_disk else {"lost+found"}

    def compare(self, disk, directory, run=-1):
        snap = tree.snapshot(str(directory), exclude=self.excludes(disk))
        return tree.compare(self.lab.runs[run].manifests[disk], snap)


@pytest.fixture(scope="module")
def lost():
    with AmandaLab() as lab:
        short_history(lab)
        bundle = collect(lab, lab.base / "bundle")
        base = bundle / "amanda" / lab.name
        assert (base / "export.txt").is_file() and (base / "index.tar.gz").is_file()
        index = real_index(lab.state / "index")
        find = findout.parse((base / "find.txt").read_text())
        # the server is lost: configuration, state, holding disk; the vtapes stay
        for d in (lab.confdir, lab.state / "log", lab.state / "index",
                  lab.state / "curinfo", lab.holding):
            shutil.rmtree(d)
        state = Lost(lab, bundle, index, find)
        try:
            yield state
        finally:
            for name in state.configs:
                shutil.rmtree(ETC / name, ignore_errors=True)
                for kind in ("server", "client"):
                    shutil.rmtree(Path("/var/log/amanda") / kind / name, ignore_errors=True)


@pytest.fixture(scope="module")
def from_bundle(lost):
    name = lost.name("b")
    p = amdr("rebuild-server", "--bundle", lost.bundle, "--config", name,
             "--vtapes", lost.lab.vtapes, "--state-dir", lost.state("b"))
    return name, p


@pytest.fixture(scope="module")
def from_media(lost):
    """No bundle: the catalog from a media scan, the index from the images."""
    name = lost.name("m")
    p = amdr("rebuild-server", "--scan", lost.lab.vtapes, "--config", name,
             "--state-dir", lost.state("m"))
    return name, p


# -- from the bundle -----------------------------------------------------------------------

def test_bundle_rebuild_reports_the_catalog(lost, from_bundle):
    name, p = from_bundle
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"Amanda configuration {name} rebuilt from bundle" in p.stdout
    assert f"amadmin {name} find: 10 dump(s)" in p.stdout
    assert "index:         " in p.stdout and "from the bundle's index archive" in p.stdout
    # the old holding disk is gone with the server: dropped, not fatal
    assert f"holding disk lab-hold dropped: {lost.lab.holding} does not exist" in p.stdout
    assert f"localhost:{lost.lab.root_disk}: 5 image(s) OK, newest level 2" in p.stdout


def test_bundle_rebuild_is_owned_by_backup(lost, from_bundle):
    name, _ = from_bundle
    uid = int(subprocess.run(["id", "-u", "backup"], capture_output=True, text=True).stdout)
    paths = [ETC / name] + list((ETC / name).iterdir()) + [lost.state("b")] \
        + list(lost.state("b").rglob("*"))
    assert [str(p) for p in paths if p.stat().st_uid != uid] == []
    text = (ETC / name / "amanda.conf").read_text()
    assert f'logdir "{lost.state("b")}/log"' in text
    assert f'tpchanger "chg-disk:{lost.lab.vtapes}"' in text
    assert (ETC / name / "amanda-client.conf").read_text().endswith('auth "local"\n')


def test_bundle_find_is_the_lost_servers(lost, from_bundle):
    name, _ = from_bundle
    assert find_keys(findout.parse(amadmin(name, "find"))) == find_keys(lost.find)


def test_bundle_curinfo_imported(lost, from_bundle):
    name, _ = from_bundle

    def body(text):
        return [ln for ln in text.splitlines() if not ln.startswith(("CURINFO", "#"))]

    exported = (lost.bundle / "amanda" / lost.lab.name / "export.txt").read_text()
    assert body(amadmin(name, "export")) == body(exported)
    assert "disk: " in exported


def test_bundle_amrecover_gnutar_dle(lost, from_bundle):
    name, _ = from_bundle
    lab = lost.lab
    out = lab.base / "restore-b-amrecover-root"
    r = recover(name, lab.root_disk, out)
    chain = {r_.datestamp for r_ in lab.runs[2:]}
    assert r.tapes == [p.label for d in sorted(lost.find, key=lambda d: d.date)
                       if d.disk == lab.root_disk and d.date in chain for p in d.parts]
    assert lost.compare(lab.root_disk, out) == []
    assert r.tty_answers == 0


def test_bundle_amrecover_setdate_gives_the_older_state(lost, from_bundle):
    name, _ = from_bundle
    lab = lost.lab
    out = lab.base / "restore-b-amrecover-run2"
    r = recover(name, lab.root_disk, out, date=lab.runs[1].datestamp)
    assert len(r.tapes) == 2
    assert lost.compare(lab.root_disk, out, run=1) == []


def test_bundle_amrecover_dump_dle_answers_restores_tty_question(lost, from_bundle):
    """amrecover extracts DUMP images with restore -x, which does not replay
    deletions: every file of the last backup comes back identical, and
    files deleted since the level 0 come back too (Amanda's behaviour)."""
    name, _ = from_bundle
    lab = lost.lab
    out = lab.base / "restore-b-amrecover-data"
    r = recover(name, lab.data_disk, out)
    assert r.tty_answers == 3  # restore's "set owner/mode for '.'?" once per image
    diffs = lost.compare(lab.data_disk, out)
    allowed = ("unexpected (should have been deleted)", "mtime differs", "inode_group differs")
    assert [d for d in diffs if not any(a in d for a in allowed)] == []
    assert not any("missing" in d or "sha256" in d for d in diffs)


@pytest.mark.parametrize("which", ["root", "data"])
def test_bundle_amfetchdump_dle(lost, from_bundle, which):
    name, _ = from_bundle
    lab = lost.lab
    disk = lab.root_disk if which == "root" else lab.data_disk
    out = lab.base / f"restore-b-fetch-{which}"
    res = fetchdump.restore(Runner(), name, "localhost", disk, str(out))
    assert res.levels == [0, 1, 2]
    assert res.dates == [r.datestamp for r in lab.runs[2:]]
    assert lost.compare(disk, out) == []


def test_amrecover_error_names_what_amrecover_said(lost, from_bundle):
    name, _ = from_bundle
    with pytest.raises(amrecover.AmrecoverError) as e:
        recover(name, "/no/such/disk", lost.lab.base / "restore-none")
    assert "refused 'setdisk /no/such/disk'" in str(e.value)
    assert "is not in the server's disklist" in str(e.value)


def test_rebuild_refuses_an_existing_configuration(lost, from_bundle):
    name, _ = from_bundle
    p = amdr("rebuild-server", "--bundle", lost.bundle, "--config", name,
             "--vtapes", lost.lab.vtapes, "--state-dir", lost.state("b2"))
    assert p.returncode == 4
    assert "already on this machine" in p.stderr
    assert not lost.state("b2").exists()


@pytest.fixture(scope="module")
def sealed(lost):
    """The bundle as the server delivers it: encrypted to the site, signed."""
    keys = make_keys(PASSPHRASE)
    try:
        dest = lost.lab.base / f"{lost.lab.name}.amdr.gpg"
        seal(Runner(), lost.bundle, dest, keys.host_home, [keys.site_fpr], keys.host_fpr)
        passfile = lost.lab.base / "site-passphrase"
        passfile.write_text(PASSPHRASE + "\n")
        passfile.chmod(0o600)
        yield dest, keys, passfile
    finally:
        keys.cleanup()


def test_sealed_bundle_on_a_tape_device(lost, sealed):
    """--tape-device: chg-single on the drive, which holds the newest volume;
    the bundle sealed, opened with the site's recovery key."""
    lab = lost.lab
    bundle, keys, passfile = sealed
    name = lost.name("t")
    label = next(p.label for d in lost.find if d.date == lab.runs[-1].datestamp
                 for p in d.parts)
    slot = next(s for s in lab.vtapes.glob("slot*") if list(s.glob(f"00000.{label}")))
    p = amdr("rebuild-server", "--bundle", bundle, "--gnupghome", keys.recovery_home,
             "--passphrase-file", passfile, "--config", name,
             "--tape-device", f"file:{slot}", "--state-dir", lost.state("t"), "--index", "none")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "rebuilt from bundle" in p.stdout and "note: no index written" in p.stdout
    assert f"volumes via:   chg-single:file:{slot}" in p.stdout
    run = lab.runs[-1]
    out = Runner().pipeline([
        Cmd(fetchdump.fetch_argv(name, "localhost", lab.root_disk, run.datestamp, 2),
            user="backup", cwd="/"),
        Cmd(["tar", "-t", "-f", "-"])], check=False)
    assert [s.returncode for s in out.stages] == [0, 0], out.stages[0].stderr
    assert f"Reading label '{label}'" in out.stages[0].stderr


# -- from the media alone ----------------------------------------------------------------------

def test_media_rebuild_reports_the_catalog(lost, from_media):
    name, p = from_media
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"amadmin {name} find: 10 dump(s)" in p.stdout
    assert "index:         10 file(s) from the images on the volumes" in p.stdout
    assert f"volumes via:   chg-disk:{lost.lab.vtapes}" in p.stdout
    tl = (ETC / name / "tapelist").read_text().splitlines()
    assert len(tl) == 5 and all(" no-reuse " in ln for ln in tl)


def test_media_find_shows_every_image_where_the_server_had_it(lost, from_media):
    name, _ = from_media
    assert find_keys(findout.parse(amadmin(name, "find"))) == find_keys(lost.find)


def test_media_index_is_byte_for_byte_amandas(lost, from_media):
    rebuilt = real_index(lost.state("m") / "index")
    assert sorted(rebuilt) == sorted(lost.index)
    assert [k for k in rebuilt if rebuilt[k] != lost.index[k]] == []


def test_media_amrecover_gnutar_dle(lost, from_media):
    name, _ = from_media
    lab = lost.lab
    out = lab.base / "restore-m-amrecover-root"
    r = recover(name, lab.root_disk, out)
    assert len(r.tapes) == 3
    assert lost.compare(lab.root_disk, out) == []


@pytest.mark.parametrize("which", ["root", "data"])
def test_media_amfetchdump_dle(lost, from_media, which):
    name, _ = from_media
    lab = lost.lab
    disk = lab.root_disk if which == "root" else lab.data_disk
    out = lab.base / f"restore-m-fetch-{which}"
    p = amdr("restore-from-server", "--config", name, "--host", "localhost", "--disk", disk,
             "--into", out)
    assert p.returncode == 0, p.stderr
    assert "levels [0, 1, 2]" in p.stdout
    assert lost.compare(disk, out) == []


def test_media_amfetchdump_until_an_older_run(lost, from_media):
    name, _ = from_media
    lab = lost.lab
    out = lab.base / "restore-m-fetch-data-run2"
    res = fetchdump.restore(Runner(), name, "localhost", lab.data_disk, str(out),
                            until=lab.runs[1].datestamp)
    assert res.levels == [0, 1]
    assert lost.compare(lab.data_disk, out, run=1) == []


def test_amfetchdump_file_output(lost, from_media):
    name, _ = from_media
    lab = lost.lab
    out = lab.base / "images-m"
    res = fetchdump.fetch_files(Runner(), name, "localhost", lab.data_disk, str(out))
    assert res.levels == [0, 1, 2]
    sanitised = lab.data_disk.replace("/", "_")
    assert [Path(f).name for f in res.files] == [
        f"localhost.{sanitised}.{r.datestamp}.{lv}" for r, lv in zip(lab.runs[2:], (0, 1, 2))]
    for f in res.files:  # each a whole dump image, as -p pipes it
        p = subprocess.run(["restore", "-t", "-f", f], capture_output=True, text=True)
        assert p.returncode == 0 and "Dump   date" in p.stdout and "\t./" in p.stdout, \
            p.stderr
    res = fetchdump.fetch_files(Runner(), name, "localhost", lab.data_disk,
                                str(lab.base / "images-m-header"), header=True)
    assert len(res.files) == 3
    assert Path(res.files[0]).read_bytes()[:32768].startswith(b"AMANDA: ")


def test_reports_catalog_without_programs_still_indexes_every_image(lost):
    """Dump records with no program (as reports give them, here the lost
    server's own trace logs): the index lister is found by trying."""
    lab = lost.lab
    dumps = []
    for p in sorted((lost.bundle / "amanda" / lab.name / "logs").glob("log.*")):
        dumps += tracelog.parse_lines(p.read_text().splitlines(), p.name)
    assert dumps and not any(d.program for d in dumps)
    name = lost.name("r")
    t = conf.Target(name, lost.state("r"), conf.changer_for(vtapes=str(lab.vtapes)))
    plan = rebuild.plan_from_dumps(dumps, None, t, origin="the reports")
    res = rebuild.apply(plan, Runner())
    assert res.problems == []
    assert res.index_files == 10 and len(res.find) == 10
    assert real_index(lost.state("r") / "index") == lost.index
    assert plan.programs == {("localhost", lab.root_disk): "GNUTAR",
                             ("localhost", lab.data_disk): "DUMP"}
