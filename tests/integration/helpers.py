import contextlib
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def amdr(tool, *args, input=None):
    return subprocess.run([str(BIN / tool)] + [str(a) for a in args], capture_output=True,
                          text=True, input=input, stdin=None if input else subprocess.DEVNULL)


def collect(lab, out):
    p = amdr("amdr-essentials", "collect", "--out", out, "--disk", lab.loop,
             "--root", lab.mnt, "--amanda-config", lab.name)
    assert p.returncode == 0, p.stderr
    return out


@contextlib.contextmanager
def blank_disk(image: Path, size: int):
    """A blank loop disk of `size` bytes for a recovery to land on; detached after,
    with whatever was left mounted under a target by the test unmounted first."""
    from tests.lab.lab import sh
    with open(image, "wb") as f:
        f.truncate(size)
    dev = sh(["losetup", "-f", "--show", str(image)]).strip()
    try:
        yield dev
    finally:
        sh(["partx", "-d", dev], check=False)
        sh(["losetup", "-d", dev], check=False)


def umount_target(target: Path):
    return subprocess.run([str(BIN / "amdr-recover"), "umount", "--target", str(target)],
                          capture_output=True, text=True)


def differences(lab, target: Path, run=-1) -> dict:
    """Per DLE of the lab, how the tree restored under `target` differs from the
    lab run's manifest (every list empty: restored as it was)."""
    from tests.lab import tree
    nested = {"lost+found", "srv"} | ({"home"} if lab.home_mb else set())
    out = {}
    for disk, src in lab.dle_dirs().items():
        rel = Path(src).relative_to(lab.mnt)
        got = tree.snapshot(str(Path(target) / rel),
                            exclude=nested if disk == lab.root_disk else {"lost+found"})
        out[disk] = tree.compare(lab.runs[run].manifests[disk], got)
    return out


def essentials_run(lab, keys, tmp: Path, out: Path, host: str = "localhost",
                   amanda: bool = True, signer_home=None, signer_fpr=None, **extra) -> Path:
    """A real `amdr-essentials run` as `host` on the lab's disk (no etc, packages,
    network or capabilities: the lab's are this machine's), the Amanda catalog
    collected when `amanda`, sealed to the site key and signed by the host key
    (or `signer_home`'s `signer_fpr`), delivered into `out`; `extra` goes into
    the configuration (site:, runbook:...).  Returns the bundle delivered."""
    import yaml
    amanda_cfg = {"configs": [lab.name]} if amanda else {"enabled": False}
    cfg = {"host": host, "state_dir": str(tmp / "state"),
           "spool_dir": str(tmp / "spool"), "log_file": str(tmp / "log" / "essentials.log"),
           "gpg": {"home": str(signer_home or keys.host_home), "recipients": [keys.site_fpr],
                   "signer": signer_fpr or keys.host_fpr},
           "collect": {"layout": {"disks": [lab.loop], "root": str(lab.mnt)},
                       "amanda": amanda_cfg,
                       "etc": {"enabled": False}, "packages": {"enabled": False},
                       "network": {"enabled": False}, "capabilities": {"enabled": False}},
           "deliveries": [{"type": "local", "dir": str(out), "create": True}], **extra}
    tmp.mkdir()
    (tmp / "essentials.yaml").write_text(yaml.safe_dump(cfg))
    p = subprocess.run([str(BIN / "amdr-essentials"), "run", "-c", str(tmp / "essentials.yaml")],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout + p.stderr
    return sorted(out.glob(f"{host}-*.amdr.gpg"))[-1]


def seal(lab, keys, signer_home=None, signer_fpr=None) -> Path:
    """`amdr-essentials run` with a local delivery: the lab's sealed bundle
    (signed by the host key, or by `signer_home`'s `signer_fpr`)."""
    tmp = lab.base / ("run" if signer_fpr is None else f"run-{signer_fpr[:8]}")
    out = tmp / "usb"
    b = essentials_run(lab, keys, tmp, out, signer_home=signer_home, signer_fpr=signer_fpr)
    lab.run_dir = tmp
    assert sorted(out.glob("*.amdr.gpg")) == [b]
    return b


def seal_one(tmp_path: Path, keys, host: str, stamp: str, home=None, fpr=None) -> Path:
    """A small sealed bundle of `host` made at `stamp` (YYYYMMDDTHHMMSSZ): a
    layout and a manifest only, sealed to the site key, signed by the host
    key (or by `home`'s `fpr`)."""
    from essentials import bundle, sealed
    from essentials.runner import Runner
    st = tmp_path / f"staging-{host}-{stamp}"
    st.mkdir(parents=True)
    (st / "layout.yaml").write_text("version: 1\n")
    bundle.write_manifest(st, {"layout": {"status": "ok"}}, {"host": host})
    out = tmp_path / f"{host}-{stamp}.amdr.gpg"
    sealed.seal(Runner(), st, out, home or keys.host_home, [keys.site_fpr],
                fpr or keys.host_fpr)
    return out


class Tmux:
    """A terminal a person looks at: 80x24, keys sent, the screen captured
    (each screen waited for is kept in `shots` when given: test artifacts)."""

    def __init__(self, name: str, command: str, shots: Path | None = None):
        self.name, self.shots, self.n = name, shots, 0
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24",
                        command], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True).stdout

    def wait(self, text: str, timeout: float = 90) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = self.screen()
            if text in s:
                self.n += 1
                if self.shots is not None:
                    (self.shots / f"{self.n:02d}.txt").write_text(s)
                return s
            time.sleep(0.3)
        raise AssertionError(f"{text!r} not on {self.name} in {timeout} s:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)
        self.keys("Enter")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def keys_fixture(passphrase: str):
    """A module's `keys` fixture: the lab's key set, the recovery key under
    `passphrase` (tests/lab/keys.py), removed after the module."""
    import pytest

    from tests.lab.keys import make_keys

    @pytest.fixture(scope="module")
    def keys():
        k = make_keys(passphrase)
        yield k
        k.cleanup()
    return keys


@contextlib.contextmanager
def lab_after_two_runs(keys):
    """The lab after a level 0 and a level 1 (tests/lab/scenario.py), its
    bundle sealed as `lab.sealed`."""
    from tests.lab import scenario
    from tests.lab.lab import AmandaLab
    with AmandaLab(root_mb=48, data_mb=32, swap_mb=8) as lab:
        scenario.initial(lab.mnt, lab.data_mnt)
        lab.backup(expect=0)
        scenario.change1(lab.mnt, lab.data_mnt)
        lab.backup(expect=1)
        lab.sealed = seal(lab, keys)
        yield lab
