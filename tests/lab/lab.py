"""The Amanda lab: a real Amanda 3.5 server and a loop-disk "client" on this host.

Used by the integration tests, `make demo` and `make bench`.  Everything it
creates lives under one temporary directory plus /etc/amanda/<name>, and
`cleanup()` (also run by the context manager when a test fails) removes it:
mounts, loop device, config, gnutar lists and dumpdates lines.

Facts it relies on (found on this machine, see README "Lab notes"):
- Amanda 3.5.1's sendbackup deadlocks when GNU tar prints an unexpected
  message (e.g. "directory is on a different filesystem"), so the GNUTAR
  dumptype excludes the nested mountpoint ./srv;
- with no holding disk (or one too small for the estimate) dumps go straight
  to tape through a shared-memory ring that also hangs here, so the lab has
  a holding disk and client estimates;
- there is no udev: the data partition is made readable by group disk so
  DUMP, run as backup, can read it.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from recovery.catalog import tracelog
from recovery.disks import devnodes

from . import tree

AMANDA_USER = "backup"
ROOT_UUID = "5d1f3c2a-0b4e-4c6d-9a7e-1f2e3d4c5b6a"
DATA_UUID = "8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d"
SWAP_UUID = "0e6f2a1b-3c4d-4e5f-a6b7-c8d9e0f1a2b3"
HOME_UUID = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f80912"
LINUX_FS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
LINUX_SWAP = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"


def sh(argv, *, user=None, check=True, timeout=600, input=None):
    """Run a lab command (test infrastructure; the product uses its runner)."""
    if user:
        argv = ["runuser", "-u", user, "--"] + list(argv)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"lab command failed ({p.returncode}): {' '.join(argv)}\n"
                           f"{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout


@dataclass
class Run:
    number: int
    datestamp: str
    levels: dict  # disk -> level
    manifests: dict = field(default_factory=dict)  # disk -> tree snapshot


HOSTS_FILE = Path("/etc/hosts")
HOSTS_MARK = "# amanda-dr lab "


@contextlib.contextmanager
def _hosts_locked():
    import fcntl
    with open("/run/lock/amdr-lab-hosts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _edit_hosts(hosts_file: Path, add: str | None = None, drop: str | None = None):
    """Under the lock: drop `drop` and the lines of lab runs whose process is
    gone (a test killed with SIGKILL), add `add`; written whole, then renamed
    over (/etc/hosts is never seen half-written)."""
    kept = []
    for ln in hosts_file.read_text().splitlines():
        if ln == drop:
            continue
        if HOSTS_MARK in ln:
            pid = ln.rsplit(HOSTS_MARK, 1)[1].strip()
            if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
                continue
        kept.append(ln)
    if add:
        kept.append(add)
    tmp = hosts_file.with_name(f".{hosts_file.name}.amdr-lab")
    tmp.write_text("\n".join(kept) + "\n")
    os.chmod(tmp, os.stat(hosts_file).st_mode & 0o7777)
    try:
        os.replace(tmp, hosts_file)
    except OSError:  # a bind-mounted /etc/hosts cannot be renamed over: rewrite it
        hosts_file.write_text(tmp.read_text())
        tmp.unlink()


@contextlib.contextmanager
def local_names(*names: str, hosts_file: Path = HOSTS_FILE):
    """Names that resolve to 127.0.0.1 while the block runs: one marked line
    in /etc/hosts, removed after (under a lock, so concurrent lab runs keep
    each other's; a killed run's line goes with the next edit).  For
    AmandaLab.other_hosts: several Amanda hosts on one machine."""
    line = f"127.0.0.1 {' '.join(names)} {HOSTS_MARK}{os.getpid()}"
    with _hosts_locked():
        _edit_hosts(hosts_file, add=line)
    try:
        yield list(names)
    finally:
        with _hosts_locked():
            _edit_hosts(hosts_file, drop=line)


class AmandaLab:
    def __init__(self, root_mb=160, data_mb=64, swap_mb=16, slots=12, basedir="/var/tmp",
                 holding_mb=4000, home_mb=0):
        self.name = "amdrlab" + "".join(random.choices("abcdefghijkmnpqrstuvwxyz23456789", k=6))
        self.base = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=basedir))
        os.chmod(self.base, 0o755)
        self.root_mb, self.data_mb, self.swap_mb = root_mb, data_mb, swap_mb
        self.slots = slots
        self.holding_mb = holding_mb
        # home_mb: a fourth partition, ext4 on /home, a GNUTAR DLE beside /srv
        # (siblings under /: restored at the same time with --jobs)
        self.home_mb = home_mb
        # other_hosts: {Amanda host name: directory}, set before entering (the
        # directories under self.base): one GNUTAR DLE each in the same
        # disklist, a site of several hosts in one catalog.  auth "local" takes
        # a name only when it resolves to this machine (Amanda 3.5's
        # local-security: "Unresolved hostname ... assumed nonlocal"): see
        # local_names()
        self.other_hosts: dict[str, str] = {}
        self.confdir = Path("/etc/amanda") / self.name
        self.vtapes = self.base / "vtapes"
        self.state = self.base / "state"
        self.holding = self.base / "holding"
        self.mnt = self.base / "mnt"  # the client's "/"
        self.image = self.base / "disk.img"
        self.loop: str | None = None
        self.runs: list[Run] = []

    # -- context manager: always clean up -------------------------------------
    def __enter__(self):
        # a killed demo or CI timeout must still unmount and detach
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(SystemExit(143)))
        try:
            self.setup()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # -- names -----------------------------------------------------------------
    def part(self, n: int) -> str:
        return f"{self.loop}p{n}"

    @property
    def root_disk(self) -> str:
        """The GNUTAR DLE: the root filesystem's mountpoint."""
        return str(self.mnt)

    @property
    def data_disk(self) -> str:
        """The DUMP DLE: the second filesystem's device."""
        return self.part(2)

    @property
    def data_mnt(self) -> Path:
        return self.mnt / "srv"

    @property
    def home_disk(self) -> str:
        """The second GNUTAR DLE (with home_mb): /home's mountpoint."""
        return str(self.mnt / "home")

    def dle_dirs(self) -> dict:
        out = {self.root_disk: self.mnt, self.data_disk: self.data_mnt}
        if self.home_mb:
            out[self.home_disk] = self.mnt / "home"
        return out

    # -- setup -----------------------------------------------------------------
    def setup(self):
        for d in ("log", "index", "curinfo"):
            (self.state / d).mkdir(parents=True)
        for i in range(1, self.slots + 1):
            (self.vtapes / f"slot{i}").mkdir(parents=True)
        self.holding.mkdir()
        self.mnt.mkdir()
        size_mb = 1 + self.root_mb + self.data_mb + self.swap_mb + self.home_mb + 1
        with open(self.image, "wb") as f:
            f.truncate(size_mb << 20)
        self.loop = sh(["losetup", "-f", "--show", str(self.image)]).strip()
        script = (f"label: gpt\nunit: sectors\n\n"
                  f"size={self.root_mb}MiB, type={LINUX_FS}, name=\"lab-root\"\n"
                  f"size={self.data_mb}MiB, type={LINUX_FS}, name=\"lab-data\"\n"
                  f"size={self.swap_mb}MiB, type={LINUX_SWAP}, name=\"lab-swap\"\n")
        if self.home_mb:
            script += f"size={self.home_mb}MiB, type={LINUX_FS}, name=\"lab-home\"\n"
        parts = (1, 2, 3, 4) if self.home_mb else (1, 2, 3)
        sh(["sfdisk", "-q", "--no-reread", self.loop], input=script)
        for attempt in range(3):  # another process's partx -d on a reused loop name races us
            sh(["partx", "-a", self.loop], check=False)
            sh(["partx", "-u", self.loop])
            if not devnodes.wait_for([self.part(n) for n in parts]):
                break
        for n in parts:
            self._wait(self.part(n))
        self._clear_dumpdates()
        sh(["mkfs.ext4", "-q", "-F", "-U", ROOT_UUID, "-L", "lab-root", "-m", "2",
            self.part(1)])
        sh(["tune2fs", "-c", "30", "-i", "90d", self.part(1)])
        sh(["mkfs.ext4", "-q", "-F", "-U", DATA_UUID, "-L", "lab-data", self.part(2)])
        sh(["mkswap", "-U", SWAP_UUID, "-L", "lab-swap", self.part(3)])
        if self.home_mb:
            sh(["mkfs.ext4", "-q", "-F", "-U", HOME_UUID, "-L", "lab-home", self.part(4)])
        self.mount()
        self._write_config()

    def _wait(self, path):
        if devnodes.wait_for([path]):
            raise RuntimeError(f"{path} did not appear (not in /sys/class/block either)")

    def mount(self):
        sh(["mount", self.part(1), str(self.mnt)])
        self.data_mnt.mkdir(exist_ok=True)
        sh(["mount", self.part(2), str(self.data_mnt)])
        if self.home_mb:
            (self.mnt / "home").mkdir(exist_ok=True)
            sh(["mount", self.part(4), str(self.mnt / "home")])
        # no udev here: DUMP reads the device as backup, which is in group disk
        os.chown(self.part(2), 0, 6)
        os.chmod(self.part(2), 0o660)

    def _write_config(self):
        self.confdir.mkdir(parents=True)
        (self.confdir / "amanda.conf").write_text(f'''\
org "{self.name}"
mailto ""
dumpuser "{AMANDA_USER}"
dumpcycle 7 days
runspercycle 7
tapecycle {self.slots} tapes
runtapes 1
tpchanger "chg-disk:{self.vtapes}"
autolabel "{self.name.upper()}-%%" empty
labelstr "^{self.name.upper()}-[0-9][0-9]*$"
tapelist "{self.confdir}/tapelist"
infofile "{self.state}/curinfo"
logdir "{self.state}/log"
indexdir "{self.state}/index"
etimeout 300
dtimeout 1800

define tapetype LAB-VTAPE {{
  length 16000 mbytes
}}
tapetype "LAB-VTAPE"

holdingdisk lab-hold {{
  directory "{self.holding}"
  use {self.holding_mb} mbytes
  chunksize 0
}}

define dumptype lab-base {{
  auth "local"
  compress none
  index yes
  record yes
  estimate client
  maxpromoteday 0
}}

define dumptype lab-gnutar {{
  lab-base
  program "GNUTAR"
  exclude "./srv"{' "./home"' if self.home_mb else ""}
}}

define dumptype lab-gnutar-home {{
  lab-base
  program "GNUTAR"
}}

define dumptype lab-dump {{
  lab-base
  program "DUMP"
}}
''')
        (self.confdir / "disklist").write_text(
            f"localhost {self.root_disk} lab-gnutar\n"
            f"localhost {self.data_disk} lab-dump\n"
            + (f"localhost {self.home_disk} lab-gnutar-home\n" if self.home_mb else "")
            + "".join(f"{h} {d} lab-gnutar-home\n" for h, d in self.other_hosts.items()))
        (self.confdir / "tapelist").write_text("")
        sh(["chown", "-R", f"{AMANDA_USER}:{AMANDA_USER}", str(self.confdir),
            str(self.vtapes), str(self.state), str(self.holding)])

    # -- running Amanda ---------------------------------------------------------
    def amadmin(self, *args):
        return sh(["amadmin", self.name] + list(args), user=AMANDA_USER)

    # amdump's exit status is a bit mask: 2 = "strange" lines (e.g. amcrypt-ossl's
    # OpenSSL 3 warning about key derivation, on every encrypted dump)
    ok_exit = (0,)

    def amdump(self, timeout=900, only=()) -> str:
        """One real amdump run (of the DLEs `only` names, else all); returns its
        datestamp.  Each run writes to a volume of its own."""
        sh(["sync"])
        sh(["blockdev", "--flushbufs", self.part(2)])  # DUMP reads the device
        before = set(os.listdir(self.state / "log"))
        dles = [a for d in only for a in ("localhost", f"={d}")]
        p = subprocess.Popen(["runuser", "-u", AMANDA_USER, "--", "amdump", self.name, *dles],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise RuntimeError(f"amdump {self.name} hung for {timeout}s; see "
                               f"/var/log/amanda/server/{self.name}")
        new = sorted(set(os.listdir(self.state / "log")) - before)
        logs = [n for n in new if re.match(r"log\.\d+\.\d+$", n)]
        if not logs:
            raise RuntimeError(f"amdump wrote no trace log (exit {p.returncode}): {out!r}")
        if p.returncode not in self.ok_exit:
            text = (self.state / "log" / logs[-1]).read_text()
            raise RuntimeError(f"amdump exit {p.returncode}:\n{text[-3000:]}")
        return logs[-1].split(".")[1]

    def levels_of(self, datestamp: str) -> dict:
        """disk -> level of the dumps taped in that run, from the trace log."""
        return {d.disk: d.level for d in self.dumps_of(datestamp) if d.status == "OK"}

    def dumps_of(self, datestamp: str):
        """The dumps recorded in that run's trace log."""
        out = []
        for path in (self.state / "log").glob(f"log.{datestamp}.*"):
            out += tracelog.parse_lines(path.read_text().splitlines(), str(path),
                                        config=self.name)
        return out

    def backup(self, force_full=False, bump=False, expect=None, only=()) -> Run:
        if force_full:
            self.amadmin("force", "localhost")
        if bump:
            self.amadmin("force-bump", "localhost")
        nested = {"lost+found", "srv"} | ({"home"} if self.home_mb else set())
        manifests = {disk: tree.snapshot(str(d), exclude=nested
                                         if disk == self.root_disk else {"lost+found"})
                     for disk, d in self.dle_dirs().items()}
        ds = self.amdump(only=only)
        levels = self.levels_of(ds)
        run = Run(len(self.runs) + 1, ds, levels, manifests)
        if expect is not None and levels != {d: expect for d in (only or self.dle_dirs())}:
            raise RuntimeError(f"lab run {run.number}: expected level {expect} for both "
                               f"DLEs, Amanda did {levels}")
        self.runs.append(run)
        # distinct seconds between runs: dump's incremental dates are in seconds
        time.sleep(1.1)
        return run

    # -- the scripted history ---------------------------------------------------
    def run_history(self) -> list[Run]:
        """Levels 0, 1, 2, then a newer 0, 1, 2, with changes between runs."""
        from . import scenario
        scenario.initial(self.mnt, self.data_mnt)
        self.backup(expect=0)
        scenario.change1(self.mnt, self.data_mnt)
        self.backup(expect=1)
        scenario.change2(self.mnt, self.data_mnt)
        self.backup(bump=True, expect=2)
        scenario.change3(self.mnt, self.data_mnt)
        self.backup(force_full=True, expect=0)
        scenario.change4(self.mnt, self.data_mnt)
        self.backup(expect=1)
        scenario.change5(self.mnt, self.data_mnt)
        self.backup(bump=True, expect=2)
        return self.runs

    # -- disaster ----------------------------------------------------------------
    def umount(self):
        for m in (self.mnt / "home", self.data_mnt, self.mnt):
            if os.path.ismount(m):
                sh(["umount", str(m)])

    def destroy_disk(self):
        """The disk is lost: signatures wiped and the first MiBs zeroed."""
        self.umount()
        for n in (1, 2, 3, 4):
            if os.path.exists(self.part(n)):
                sh(["wipefs", "-a", "-q", self.part(n)], check=False)
        sh(["wipefs", "-a", "-q", self.loop])
        with open(self.loop, "r+b") as f:
            f.write(b"\0" * (8 << 20))
            f.flush()
            os.fsync(f.fileno())
        sh(["partx", "-d", self.loop], check=False)

    # -- cleanup -------------------------------------------------------------------
    def _clear_dumpdates(self):
        p = Path("/var/lib/dumpdates")
        if p.exists() and self.loop:
            lines = [ln for ln in p.read_text().splitlines(True)
                     if not ln.startswith(self.loop + "p")]
            p.write_text("".join(lines))

    def cleanup(self):
        errors = []
        # everything mounted under the lab directory, deepest first
        with open("/proc/self/mounts") as f:
            mps = [ln.split()[1] for ln in f if ln.split()[1].startswith(str(self.base))]
        for m in sorted(mps, key=len, reverse=True):
            r = subprocess.run(["umount", m], capture_output=True)
            if r.returncode:
                subprocess.run(["umount", "-l", m], capture_output=True)
        if self.loop:
            subprocess.run(["partx", "-d", self.loop], capture_output=True)
            r = subprocess.run(["losetup", "-d", self.loop], capture_output=True)
            if r.returncode:
                errors.append(r.stderr)
            self._clear_dumpdates()
        subprocess.run(["runuser", "-u", AMANDA_USER, "--", "amcleanup", "-k", self.name],
                       capture_output=True)
        shutil.rmtree(self.confdir, ignore_errors=True)
        amandates = Path("/var/lib/amanda/amandates")  # the client's record of the lab's DLEs
        if amandates.exists():
            keep = [ln for ln in amandates.read_text().splitlines(True)
                    if str(self.base) not in ln
                    and (not self.loop or not ln.startswith(self.loop + "p"))]
            amandates.write_text("".join(keep))
        gl = Path("/var/lib/amanda/gnutar-lists")
        for p in gl.glob("localhost" + str(self.mnt).replace("/", "_") + "_*"):
            p.unlink()
        for d in (Path("/var/log/amanda/server") / self.name,
                  Path("/var/log/amanda/client") / self.name):
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)
        return errors
