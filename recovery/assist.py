"""Remote assist: the office sees, then drives, the recovery of a machine it
cannot reach, because the machine calls out.

The dead machine is behind the customer's NAT and firewall, so nothing can
connect in.  The live system opens an outbound SSH connection to the
office's jump host (`ssh -R`) and forwards a port there, on the jump host's
localhost only, to its own sshd.  Everything is pinned in advance, nothing
is trusted on first use and there are no passwords:

- the jump host's host key comes from the settings (the image's site.yaml
  `office:`, or the bundle's `assist:`); another key, and no tunnel is made;
- the live system logs in there with its own key (the settings' `key`, a
  path on an attached medium or in the image), which the jump host's
  authorized_keys restricts to listening on one port:
      restrict,port-forwarding,permitlisten="localhost:2222" ssh-ed25519 AAAA... amdr-live
- the live system's sshd accepts the office's public keys only (the
  settings' `keys`), each forced into `amdr-recover assist attach`, which
  attaches it to the recovery's tmux session, read-only.

The field engineer sees who is connected on the status line, lets them
type (`approve`, Ctrl-b a, F9 in the UI) and can drop them at any time
(`end`: the tunnel closes, the office's keys are removed, every office
client is detached).  A short code and this system's host-key fingerprint
are on the status line, to be read out on the phone.  Every call, connect,
approval, drop and disconnect is an event in STATE/events.jsonl, which the
recovery's report takes along.

The tunnel (`call`, run by amdr-assist.service on the live system) comes
back by itself: keepalives end a dead link within ~15 s, ExitOnForwardFailure
ends one whose port could not be had, and ssh is started again with
backoff (1 s, doubled up to 30 s; back to 1 s after a connection that held).
The status says connecting, connected, retrying in N s, or refused and why.

Nothing secret is written anywhere but the private key's own 0600 copy in
STATE (tmpfs on the live system), and never into a log or an event.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from essentials.errors import ConfigError

STATE = Path("/run/amanda-dr/assist")
SESSION = "amdr"
HOST_KEY_PUB = Path("/etc/ssh/ssh_host_ed25519_key.pub")


@dataclass
class Settings:
    host: str
    user: str
    host_key: str          # "ssh-ed25519 AAAA..." of the jump host
    port: int = 22
    listen: int = 2222     # the port on the jump host's localhost
    keys: list = field(default_factory=list)  # the office's public keys
    key: str | None = None  # the live system's private key for the jump host
    where: str = ""         # where the settings came from, for messages

    @classmethod
    def from_doc(cls, doc: dict, where: str, base: Path | None = None) -> "Settings":
        missing = [k for k in ("host", "user", "host_key") if not doc.get(k)]
        if missing:
            raise ConfigError(f"{where}: remote assist needs {', '.join(missing)}")
        import re
        for k, pattern in (("host", r"[A-Za-z0-9][A-Za-z0-9.:_-]*"),
                           ("user", r"[A-Za-z0-9_][A-Za-z0-9._-]*")):
            if not re.fullmatch(pattern, str(doc[k])):  # it reaches ssh's command line
                raise ConfigError(f"{where}: {k} {doc[k]!r}: expected a host name or address "
                                  f"(letters, digits, '.', ':', '-', '_')" if k == "host" else
                                  f"{where}: {k} {doc[k]!r}: expected a login name")
        key = doc.get("key")
        if key and base is not None and not os.path.isabs(key):
            key = str(base / key)
        return cls(host=str(doc["host"]), user=str(doc["user"]),
                   host_key=str(doc["host_key"]).strip(), port=int(doc.get("port") or 22),
                   listen=int(doc.get("listen") or 2222), keys=list(doc.get("keys") or []),
                   key=key, where=where)


def find_settings(site: Path | None = None, manifest: dict | None = None,
                  media=()) -> Settings:
    """The site settings' `office:` (baked into the image), else the bundle's
    `assist:`; a relative `key` is looked for on the attached media."""
    from .site import DEFAULT, SiteError, load_site
    site = site or DEFAULT
    if site.exists():
        try:
            doc = load_site(site)
        except SiteError as e:
            raise ConfigError(str(e)) from None
        if doc.get("office"):
            s = Settings.from_doc(doc["office"], f"{site} office", site.parent)
            return _key_on_media(s, doc["office"].get("key"), media)
    if manifest and manifest.get("assist"):
        s = Settings.from_doc(manifest["assist"], "the bundle's assist settings")
        return _key_on_media(s, manifest["assist"].get("key"), media)
    raise ConfigError(f"no remote assist settings: neither {site} (office:) nor the bundle "
                      f"(essentials.yaml assist:) has them; `amdr-recover assist call "
                      f"--settings FILE` names a file")


def _key_on_media(s: Settings, key, media) -> Settings:
    if key and not os.path.isabs(key):
        for m in media:
            if (Path(m) / key).is_file():
                s.key = str(Path(m) / key)
                break
    return s


# -- the state directory --------------------------------------------------------------

class State:
    """STATE: what the tunnel, the attach wrapper and the approvals share."""

    def __init__(self, path: Path = STATE):
        self.path = Path(path)

    def make(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        (self.path / "clients").mkdir(exist_ok=True)

    def file(self, name: str) -> Path:
        return self.path / name

    def event(self, what: str, **data) -> None:
        rec = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": what,
               **data}
        with open(self.file("events.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")

    def events(self) -> list[dict]:
        try:
            return [json.loads(ln) for ln in self.file("events.jsonl").read_text().splitlines()
                    if ln.strip()]
        except (OSError, ValueError):
            return []

    def config(self) -> dict:
        try:
            return json.loads(self.file("config.json").read_text())
        except (OSError, ValueError):
            return {}

    def clients(self) -> list[dict]:
        """The office's clients attached now (their wrapper's pid alive)."""
        out = []
        for f in sorted((self.path / "clients").glob("*.json")):
            try:
                c = json.loads(f.read_text())
                os.kill(int(c["pid"]), 0)
            except (OSError, ValueError, KeyError):
                f.unlink(missing_ok=True)  # gone: the watcher says so
                continue
            out.append(c)
        return out

    def tunnel(self) -> str:
        try:
            return self.file("tunnel").read_text().strip()
        except OSError:
            return "off"

    def set_tunnel(self, text: str) -> None:
        _write(self.file("tunnel"), text + "\n")
        self.refresh()

    def refresh(self) -> str:
        """The status line: the tunnel, the code, who is connected and how."""
        cfg = self.config()
        parts = [f"assist: {self.tunnel()}"]
        if cfg.get("code"):
            parts.append(f"code {cfg['code']}")
        clients = self.clients()
        readonly = {c["tty"]: c for c in tmux_clients(cfg.get("session", SESSION))}
        for c in clients:
            ro = readonly.get(c.get("tty"), {}).get("readonly", True)
            parts.append(f"{c['who']} ({'watching' if ro else 'may type'})")
        line = " | ".join(parts)
        _write(self.file("status"), line + "\n")
        # the tmux status line's right side (~45 columns at 80): who first
        tunnel = self.tunnel()
        if tunnel.startswith("connected"):
            short = "connected"
        elif tunnel.startswith("refused"):
            short = "REFUSED (F9 says why)"
        elif "retrying in" in tunnel:
            short = "retrying in " + tunnel.rsplit("retrying in ", 1)[1]
        else:
            short = tunnel.split(" ")[0]
        who = ", ".join(
            f"{c['who']} "
            f"{'watching' if readonly.get(c.get('tty'), {}).get('readonly', True) else 'types'}"
            for c in clients)
        lan = self.file("lan").read_text().strip() if self.file("lan").exists() else ""
        tunnel_part = f"office {short}" if self.file("authorized_keys").exists() or not lan \
            else ""  # on the LAN only: the password says it
        _write(self.file("status.short"),
               " | ".join(x for x in (who, tunnel_part, f"LAN pw {lan}" if lan else "",
                                      cfg.get("code", "") if lan or not tunnel.startswith("off")
                                      else "") if x) + " \n")
        return line


def _write(path: Path, text: str) -> None:
    """Replaced whole (readers never see half a file; writers in several
    processes and threads each use their own temporary name)."""
    import threading
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- tmux ---------------------------------------------------------------------------

def tmux_clients(session: str) -> list[dict]:
    r = subprocess.run(["tmux", "list-clients", "-t", session, "-F",
                        "#{client_pid} #{client_tty} #{client_readonly}"],
                       capture_output=True, text=True)
    out = []
    for ln in r.stdout.splitlines():
        f = ln.split()
        if len(f) == 3:
            out.append({"pid": int(f[0]), "tty": f[1], "readonly": f[2] == "1"})
    return out


def show_status(session: str, state: State) -> None:
    """The session's status line reads the state's status file every 2 s."""
    st = shlex.quote(str(state.file("status.short")))
    for opt, val in (("status-right", f"#(cat {st} 2>/dev/null)"),
                     ("status-right-length", "60"), ("status-interval", "2")):
        subprocess.run(["tmux", "set-option", "-t", session, opt, val],
                       capture_output=True)


# -- the office's side: attached through sshd -------------------------------------------

def authorized_keys(s: Settings, state: State, amdr: str) -> str:
    """The live sshd's authorized_keys: the office's keys, each forced into
    `assist attach` (no forwarding, no agent, a terminal only)."""
    out = []
    for i, k in enumerate(s.keys):
        fields = k.strip().split()
        who = fields[2] if len(fields) > 2 else f"office-key-{i + 1}"
        who = "".join(ch for ch in who if ch.isalnum() or ch in "@._-") or f"key{i + 1}"
        cmd = f"{amdr} assist attach --state {state.path} --who {who}"
        out.append(f'restrict,pty,command="{cmd}" {fields[0]} {fields[1]} {who}')
    return "\n".join(out) + ("\n" if out else "")


def attach(state: State, who: str) -> int:
    """sshd's forced command for an office key: recorded, then attached to the
    recovery's session read-only (the field engineer lets them type)."""
    cfg = state.config()
    if not cfg or not (state.file("authorized_keys").exists() or state.file("lan").exists()):
        print("remote assist is not on at this machine", file=sys.stderr)
        return 1
    session = cfg.get("session", SESSION)
    try:
        tty = os.ttyname(0)
    except OSError:
        print("remote assist needs a terminal: ssh -t", file=sys.stderr)
        return 1
    rec = {"pid": os.getpid(), "tty": tty, "who": who,
           "from": (os.environ.get("SSH_CONNECTION") or "").split(" ")[0],
           "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write(state.path / "clients" / f"{os.getpid()}.json", json.dumps(rec))
    if not (state.file("authorized_keys").exists() or state.file("lan").exists()):
        # ended while this one was coming in: it does not stay
        (state.path / "clients" / f"{os.getpid()}.json").unlink(missing_ok=True)
        print("remote assist has just ended at this machine", file=sys.stderr)
        return 1
    state.event("connect", who=who, tty=tty)
    try:
        state.refresh()  # the engineer sees who came at once
    except OSError:
        pass
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    os.execvpe("tmux", ["tmux", "attach-session", "-r", "-t", session], env)
    return 1  # not reached


def approve(state: State, who: str | None = None) -> list[str]:
    """Let the office's clients (or the one named) type: tmux's read-only flag off."""
    session = state.config().get("session", SESSION)
    ro = {c["tty"]: c for c in tmux_clients(session)}
    done = []
    for c in state.clients():
        if who and c["who"] != who:
            continue
        t = ro.get(c["tty"])
        if t and t["readonly"]:
            subprocess.run(["tmux", "switch-client", "-c", c["tty"], "-t", session, "-r"],
                           check=False)
            state.event("approved", who=c["who"])
            done.append(c["who"])
    state.refresh()
    return done


def detach_all(state: State, why: str) -> list[str]:
    out = []
    for c in state.clients():
        subprocess.run(["tmux", "detach-client", "-t", c["tty"]], capture_output=True)
        try:
            os.kill(int(c["pid"]), signal.SIGHUP)
        except OSError:
            pass
        state.event("dropped", who=c["who"], why=why)
        (state.path / "clients" / f"{c['pid']}.json").unlink(missing_ok=True)
        out.append(c["who"])
    return out


# -- the tunnel -----------------------------------------------------------------------

REFUSALS = (
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "the jump host's host key is not the pinned "
     "one (settings host_key): no tunnel; check the settings, or someone is in between"),
    ("Host key verification failed", "the jump host's host key is not the pinned one "
     "(settings host_key): no tunnel; check the settings, or someone is in between"),
    ("No ED25519 host key is known", "the jump host's host key is not the pinned one"),
    ("remote port forwarding failed", "the port {listen} on the jump host is taken (another "
     "live system calling in?): the office frees it, or gives this one another port"),
    ("Permission denied", "the jump host does not accept this system's key (not in its "
     "authorized_keys, or expired there)"),
)
UNREACHABLE = ("Connection refused", "Connection timed out", "No route to host",
               "Could not resolve", "Network is unreachable", "Connection closed",
               "Connection reset", "Timeout, server")


def ssh_argv(s: Settings, state: State, key: str, sshd_port: int) -> list[str]:
    return ["ssh", "-N", "-T", "-v", "-F", "/dev/null",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={state.file('known_hosts')}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "UpdateHostKeys=no",
            "-o", f"HostKeyAlgorithms={host_key_algorithms(s.host_key)}",
            "-o", "IdentitiesOnly=yes", "-i", key, "-o", "IdentityAgent=none",
            "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3", "-o", "ConnectTimeout=10",
            "-p", str(s.port), "-R", f"localhost:{s.listen}:localhost:{sshd_port}",
            f"{s.user}@{s.host}"]


def host_key_algorithms(host_key: str) -> str:
    """The pinned key's type as ssh asks for it (an RSA key is signed with
    SHA-2: OpenSSH 8.8 and later refuse ssh-rsa's SHA-1)."""
    kt = host_key.split()[0]
    return "rsa-sha2-512,rsa-sha2-256" if kt == "ssh-rsa" else kt


def known_hosts_line(s: Settings) -> str:
    host = s.host if s.port == 22 else f"[{s.host}]:{s.port}"
    kt, kb = s.host_key.split()[:2]
    return f"{host} {kt} {kb}\n"


def fingerprint(pub: Path) -> str | None:
    r = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True)
    return r.stdout.split()[1] if r.returncode == 0 and r.stdout.split()[1:] else None


def own_key(s: Settings, state: State) -> tuple[str, str | None]:
    """(the private key to log in to the jump host with, the public line the
    office must authorise when it was made here).  A key from the settings is
    copied 0600 into STATE (a FAT stick shows every file 0755)."""
    dest = state.file("id_jump")
    if s.key:
        try:
            data = Path(s.key).read_bytes()
        except OSError as e:
            raise ConfigError(f"{s.where}: key {s.key}: {e.strerror}; the live system's key "
                              f"for the jump host is brought on a medium or baked in") from None
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return str(dest), None
    if not dest.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "amdr-live",
                        "-f", str(dest)], check=True, stdin=subprocess.DEVNULL)
    return str(dest), Path(str(dest) + ".pub").read_text().strip()


def watch(state: State, done) -> None:
    """Who came and went: the status line and the events follow them, until
    done() (the tunnel ended; on the LAN: the password taken back)."""
    seen: set = set()
    while not done():
        now = {(c["pid"], c["who"]) for c in state.clients()}
        for pid, who in seen - now:
            state.event("disconnect", who=who)
        seen = now
        try:
            state.refresh()
        except OSError as e:  # the next round tries again
            print(f"remote assist: status: {e}", file=sys.stderr, flush=True)
        time.sleep(1)


def own_command() -> str:
    """This program's path, for the forced command (the venv's in tests)."""
    me = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(me) == "amdr-recover" and os.access(me, os.X_OK):
        return me
    beside = Path(sys.executable).parent / "amdr-recover"  # python -m recovery.cli in a venv
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("amdr-recover") or "/usr/local/sbin/amdr-recover"


class Tunnel:
    """The outbound connection kept up (see the module's docstring)."""

    def __init__(self, s: Settings, state: State, sshd_port: int = 22,
                 session: str = SESSION, host_key_pub: Path = HOST_KEY_PUB, amdr=None):
        self.s, self.state, self.sshd_port, self.session = s, state, sshd_port, session
        self.host_key_pub = host_key_pub
        self.amdr = amdr or own_command()
        self.proc = None
        self.stop = False

    def setup(self) -> None:
        st = self.state
        st.make()
        code = f"{secrets.randbelow(10**6):06d}"
        fp = fingerprint(self.host_key_pub)
        _write(st.file("config.json"), json.dumps({
            "session": self.session, "code": f"{code[:3]} {code[3:]}", "host_key": fp,
            "jump": f"{self.s.user}@{self.s.host}:{self.s.port}", "listen": self.s.listen}))
        _write(st.file("known_hosts"), known_hosts_line(self.s))
        self.key, self.public = own_key(self.s, st)
        keys = authorized_keys(self.s, st, self.amdr)
        fd = os.open(st.file("authorized_keys"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(keys)
        show_status(self.session, st)
        st.event("call", jump=f"{self.s.user}@{self.s.host}:{self.s.port}",
                 listen=self.s.listen, office_keys=len(self.s.keys), host_key=fp)
        print(f"remote assist: calling {self.s.user}@{self.s.host}:{self.s.port}; the office "
              f"connects to localhost:{self.s.listen} there", flush=True)
        print(f"  read out on the phone: code {code[:3]} {code[3:]}, this system's host key "
              f"{fp or '(not found)'}", flush=True)
        if self.public:
            print("  this system made its own key: the office adds it to the jump host's "
                  "authorized_keys:", flush=True)
            print(f'  restrict,port-forwarding,permitlisten="localhost:{self.s.listen}" '
                  f'{self.public}', flush=True)

    def once(self) -> tuple[float, str]:
        """One connection, to its end: (seconds it held, why it ended)."""
        st = self.state
        st.set_tunnel(f"connecting to {self.s.host}:{self.s.port}")
        argv = ssh_argv(self.s, st, self.key, self.sshd_port)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        _write(st.file("tunnel.pid"), f"{self.proc.pid}\n")
        t0, up, why = time.monotonic(), None, ""
        for line in self.proc.stderr:
            if "remote forward success" in line and up is None:
                up = time.monotonic()
                st.set_tunnel(f"connected via {self.s.host}:{self.s.port}, office port "
                              f"{self.s.listen}")
                st.event("tunnel up", seconds=round(up - t0, 2))
            for needle, text in REFUSALS:
                if needle in line:
                    why = "refused: " + text.format(listen=self.s.listen)
            if not why:
                for needle in UNREACHABLE:
                    if needle in line:
                        why = f"unreachable: {line.strip().removeprefix('debug1: ')}"
        rc = self.proc.wait()
        held = time.monotonic() - (up or t0)
        if not why:
            why = "the link dropped" if up else f"ssh ended (exit {rc})"
        if up:
            st.event("tunnel down", why=why, held=round(held, 1))
        return (held if up else 0.0), why

    def run(self) -> int:
        self.setup()
        delay = 1.0
        signal.signal(signal.SIGTERM, lambda *_: self.end())
        signal.signal(signal.SIGINT, lambda *_: self.end())
        import threading
        watcher = threading.Thread(target=self._watch, daemon=True)
        watcher.start()
        try:
            while not self.stop:
                held, why = self.once()
                if self.stop:
                    break
                delay = 1.0 if held >= 10 else min(30.0, delay * 2 if held == 0 else delay)
                self.state.event("retry", why=why, seconds=delay)
                for left in range(int(delay), 0, -1):
                    if self.stop:
                        break
                    self.state.set_tunnel(f"{why}; retrying in {left} s")
                    time.sleep(1)
        finally:
            self.close()
        return 0

    def _watch(self) -> None:
        watch(self.state, lambda: self.stop)

    def end(self) -> None:
        self.stop = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def close(self) -> None:
        st = self.state
        st.file("authorized_keys").unlink(missing_ok=True)
        detach_all(st, "assist ended")
        for name in ("id_jump", "id_jump.pub", "tunnel.pid", "call.pid"):
            st.file(name).unlink(missing_ok=True)
        st.set_tunnel("off (ended)")
        st.event("end")


def end(state: State) -> str:
    """Stop the tunnel (its process is told; it removes the keys and detaches the
    office), or clean up what it left."""
    try:
        if not _alive(state.file("call.pid")):
            raise OSError("no call runs")
        pid = int(state.file("call.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    except (OSError, ValueError):
        pass
    state.file("authorized_keys").unlink(missing_ok=True)
    if state.file("lan").exists():
        try:
            lan(state, False)
        except ConfigError:
            state.file("lan").unlink(missing_ok=True)
    detach_all(state, "assist ended")
    return state.refresh()


# -- on the same LAN: sshd with a password for this boot --------------------------------

LAN_PORT = 2200
LAN_CONF = Path("/etc/ssh/sshd_config.d/amdr-lan.conf")
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # nothing read wrongly over a phone


def _alive(pidfile: Path) -> bool:
    """The process a pid file names runs, and is ours (not a reused pid)."""
    try:
        pid = int(pidfile.read_text())
        return b"assist" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False


def lan_password() -> str:
    return "-".join("".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(3))


def lan_config(state: State, amdr: str, port: int = LAN_PORT) -> str:
    """sshd's drop-in: the usual port for the tunnel, and `port` with a
    password, forced into the recovery's session like an office key."""
    return (f"# amanda-dr live: remote assist on the LAN (amdr-recover assist lan),\n"
            f"# a password made for this boot; removed by assist lan --off\n"
            f"Port 22\nPort {port}\nMatch LocalPort {port}\n"
            f"    PasswordAuthentication yes\n    PermitRootLogin yes\n"
            f"    AllowTcpForwarding no\n    X11Forwarding no\n"
            f"    ForceCommand {amdr} assist attach --state {state.path} --who lan\n")


def lan(state: State, on: bool, session: str = SESSION, host_key_pub: Path = HOST_KEY_PUB,
        port: int = LAN_PORT) -> list[str]:
    """The field engineer turns it on (or off): the lines to show them.  Only on
    the live system: it sets root's password (no password before, the consoles
    log in by themselves)."""
    from .unattended import is_live
    if not is_live():
        raise ConfigError("assist lan sets a password on this system's sshd: only on the "
                          "live system")
    state.make()
    if not on:
        state.file("lan").unlink(missing_ok=True)
        LAN_CONF.unlink(missing_ok=True)
        subprocess.run(["passwd", "-d", "root"], capture_output=True)
        subprocess.run(["systemctl", "try-restart", "ssh.service"], capture_output=True)
        gone = [c for c in state.clients() if c["who"] == "lan"]
        for c in gone:
            subprocess.run(["tmux", "detach-client", "-t", c["tty"]], capture_output=True)
        state.event("lan off", detached=len(gone))
        state.refresh()
        return ["remote assist on the LAN: off (the password no longer works)"]
    cfg = state.config()
    fp = fingerprint(host_key_pub)
    if not cfg:
        code = f"{secrets.randbelow(10**6):06d}"
        cfg = {"session": session, "code": f"{code[:3]} {code[3:]}", "host_key": fp}
    cfg["lan_port"] = port
    _write(state.file("config.json"), json.dumps(cfg))
    pw = lan_password()
    r = subprocess.run(["chpasswd"], input=f"root:{pw}\n", capture_output=True, text=True)
    if r.returncode != 0:
        raise ConfigError(f"assist lan: chpasswd failed: {r.stderr.strip()}")
    fd = os.open(state.file("lan"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pw + "\n")
    LAN_CONF.write_text(lan_config(state, own_command(), port))
    r = subprocess.run(["systemctl", "restart", "ssh.service"], capture_output=True, text=True)
    state.event("lan on", port=port, host_key=fp)  # (never the password)
    show_status(session, state)
    state.refresh()
    if not _alive(state.file("watch.pid")):  # one watcher, however often lan runs
        w = subprocess.Popen([own_command(), "assist", "watch", "--state", str(state.path)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        _write(state.file("watch.pid"), f"{w.pid}\n")
    addrs = subprocess.run(["ip", "-br", "-4", "addr", "show", "scope", "global"],
                           capture_output=True, text=True).stdout.split()
    ips = [a.split("/")[0] for a in addrs if "/" in a]
    return [f"remote assist on the LAN: ssh -p {port} root@{ips[0] if ips else 'THIS-ADDRESS'}",
            f"  password (this boot only): {pw}",
            f"  this system's host key: {fp}",
            "  they watch until you let them type (F9, Ctrl-b a)"
            + ("" if r.returncode == 0 else f"; sshd: {r.stderr.strip()}")]


def bundle_settings(manifest: dict, state: State | None = None) -> Path | None:
    """The bundle's assist: settings as a settings file for `call` (0600 in
    the state directory), or None when it has none."""
    if not manifest.get("assist"):
        return None
    import yaml
    state = state or State()
    state.make()
    f = state.file("office.yaml")
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump({"office": manifest["assist"]}, out)
    return f


def call_on_live(settings=None, env_file: Path = Path("/run/amanda-dr/assist.env")):
    """amdr-assist.service started (settings: a file with office:, else the
    service finds them); returns systemctl's CompletedProcess."""
    opts = ["--settings", str(settings)] if isinstance(settings, str) else []
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.write_text(f"AMDR_ASSIST_OPTS={shlex.join(opts)}\n")
    return subprocess.run(["systemctl", "start", "--no-block", "amdr-assist.service"],
                          capture_output=True, text=True)


# -- the command ------------------------------------------------------------------------

def _call(args, state: State) -> int:
    from .site import SiteError, load_site
    if args.settings:
        try:
            doc = load_site(Path(args.settings))
        except SiteError as e:
            raise ConfigError(str(e)) from None
        if not doc.get("office"):
            raise ConfigError(f"{args.settings}: no office: settings for remote assist")
        s = Settings.from_doc(doc["office"], f"{args.settings} office",
                              Path(args.settings).parent)
    else:
        from .live import MEDIA_ROOT
        media = [str(p) for p in Path(MEDIA_ROOT).glob("*")] if Path(MEDIA_ROOT).is_dir() \
            else []
        s = find_settings(media=media)
    if args.key:
        s.key = args.key
    state.make()
    _write(state.file("call.pid"), f"{os.getpid()}\n")
    t = Tunnel(s, state, sshd_port=args.sshd_port, session=args.session,
               host_key_pub=Path(args.host_key_pub))
    return t.run()


def main(args) -> int:
    state = State(Path(args.state))
    if args.action == "call":
        try:
            return _call(args, state)
        except ConfigError as e:  # the status line and F9 say why nobody was called
            state.make()
            state.set_tunnel(f"refused: {e}")
            state.event("refused", why=str(e))
            raise
    if args.action == "attach":
        return attach(state, args.who or "office")
    if args.action == "approve":
        done = approve(state, args.who)
        print(f"may type now: {', '.join(done)}" if done else "nobody was waiting to type")
        return 0
    if args.action == "end":
        print(end(state))
        return 0
    if args.action in ("lan", "lan-off"):
        for line in lan(state, args.action == "lan", args.session,
                        Path(args.host_key_pub)):
            print(line)  # to the terminal only: the password is never logged
        return 0
    if args.action == "watch":  # (started by lan: the comings and goings followed)
        watch(state, lambda: not (state.file("lan").exists()
                                  or state.file("authorized_keys").exists()))
        return 0
    if args.action == "status":
        print(state.refresh() if state.path.exists() else "assist: off")
        return 0
    raise ConfigError(f"assist {args.action}: unknown")
