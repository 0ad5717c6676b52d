"""Real servers on 127.0.0.1 for delivery tests: OpenSSH's sshd and aiosmtpd.

Why real servers and not mocks: what must be proven is how our code behaves
against the real thing: host key checks, key-only auth, STARTTLS that is
offered or not, AUTH that fails.  Each server is a separate process with its
own throwaway keys and certificates under the test's tmp directory, and is
killed (with its whole process group) when the context manager exits.
"""

from __future__ import annotations

import contextlib
import datetime
import email
import email.policy
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
HERE = Path(__file__).parent


def free_port() -> int:
    """A port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, log: Path, ready, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready:\n"
                               f"{log.read_text(errors='replace')}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n{log.read_text(errors='replace')}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (sshd's per-connection children call setsid(),
    so killing the process group alone would miss them)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _stop(proc: subprocess.Popen):
    """Kill the server and everything it started."""
    for pid in _descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # it leads its own process group
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def silent_port():
    """A port that accepts TCP connections and never says anything: the local
    stand-in for a hung server (a timeout, not a refusal)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # the kernel completes handshakes; nobody ever answers
        yield s.getsockname()[1]


def keygen(path: Path, comment: str = "amdr-test") -> Path:
    """A new ed25519 key pair without passphrase; returns the private key's path."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL)
    os.chmod(path, 0o600)
    return path


# -- sshd -----------------------------------------------------------------------
@dataclass
class SshdServer:
    port: int
    host: str
    user: str
    known_hosts: Path      # "[127.0.0.1]:PORT ssh-ed25519 ..." for this server
    client_key: Path       # ed25519 private key, mode 600, authorized for root
    root_dir: Path         # sftp's start directory: relative paths land here
    host_key: Path         # the server's private host key
    host_key_pub: Path
    authorized_keys: Path
    log: Path              # sshd's stderr (-e)
    pid: int

    def host_key_line(self) -> str:
        """The known_hosts line for this server."""
        return self.known_hosts.read_text().strip()


@contextlib.contextmanager
def sshd_server(tmp: Path, name: str = "sshd", authorized_keys_file: Path | None = None):
    """Run OpenSSH's sshd on 127.0.0.1 with throwaway keys; yields an SshdServer.

    `Subsystem sftp internal-sftp -d ROOT_DIR` makes the sftp session start in
    root_dir, so a relative `dir` in a delivery lands under root_dir instead of
    /root.  `name`: its directory under tmp (two servers side by side);
    `authorized_keys_file`: the keys it accepts are read there (else its own
    file, holding client_key).
    """
    base = Path(tmp) / name
    base.mkdir(parents=True)
    root_dir = base / "root"
    root_dir.mkdir()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    host_key = keygen(base / "ssh_host_ed25519_key", "amdr-test-host")
    client_key = keygen(base / "client_ed25519", "amdr-test-client")
    authorized = base / "authorized_keys"
    authorized.write_text(Path(f"{client_key}.pub").read_text())
    port = free_port()
    known = base / "known_hosts"
    pub = Path(f"{host_key}.pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    config = base / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {base / 'sshd.pid'}
AuthorizedKeysFile {authorized_keys_file or authorized}
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
LogLevel VERBOSE
Subsystem sftp internal-sftp -d {root_dir}
""")
    log = base / "sshd.log"
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True)
    with open(log, "wb") as logf:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=logf, start_new_session=True)
    try:
        _wait_ready(proc, log, lambda: _accepts(port), f"sshd on port {port}")
        yield SshdServer(port=port, host="127.0.0.1", user="root", known_hosts=known,
                         client_key=client_key, root_dir=root_dir, host_key=host_key,
                         host_key_pub=Path(f"{host_key}.pub"), authorized_keys=authorized,
                         log=log, pid=proc.pid)
    finally:
        _stop(proc)


# -- SMTP -----------------------------------------------------------------------
def make_cert(cert: Path, key: Path, names=("127.0.0.1", "localhost")):
    """A self-signed certificate for `names`, usable as its own CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    k = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.SubjectAlternativeName(sans), critical=False)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .sign(k, hashes.SHA256()))
    cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(k.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    os.chmod(key, 0o600)


@dataclass
class SmtpServer:
    port: int
    host: str
    security: str
    ca_file: Path          # the server's self-signed certificate (PEM)
    spool: Path            # one msg-N.eml (+ msg-N.json envelope) per message
    log: Path
    pid: int

    def _files(self, ext: str) -> list[Path]:
        return sorted(self.spool.glob(f"msg-*.{ext}"), key=lambda p: int(p.stem.split("-")[1]))

    def messages(self) -> list[email.message.EmailMessage]:
        """Messages received so far, parsed (EmailMessage is an email.message.Message)."""
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in self._files("eml")]

    def connections(self) -> int:
        """How many clients have connected so far (from aiosmtpd's log)."""
        return self.log.read_text(errors="replace").count("Peer: ")

    def envelopes(self) -> list[dict]:
        """Per message: mail_from, rcpt_tos, tls (was the session encrypted), auth user."""
        return [json.loads(p.read_text()) for p in self._files("json")]


@contextlib.contextmanager
def smtp_server(tmp: Path, security: str = "starttls", auth: tuple | None = None,
                refuse_file: Path | None = None):
    """Run aiosmtpd (tests/integration/smtpd_main.py) on 127.0.0.1; yields an SmtpServer.

    security: "starttls" (STARTTLS offered and required before MAIL),
    "ssl" (implicit TLS, SMTPS) or "none" (no TLS offered at all).
    auth: (user, password) makes AUTH required and checked.
    refuse_file: recipients listed there (read at each RCPT) get 550.
    """
    assert security in ("starttls", "ssl", "none"), security
    base = Path(tmp) / f"smtpd-{security}-{free_port()}"
    spool = base / "spool"
    spool.mkdir(parents=True)
    cert, key = base / "cert.pem", base / "key.pem"
    make_cert(cert, key)
    port = free_port()
    argv = [sys.executable, str(HERE / "smtpd_main.py"), "--port", str(port),
            "--spool", str(spool), "--security", security,
            "--cert", str(cert), "--key", str(key)]
    env = dict(os.environ)
    if refuse_file:
        argv += ["--refuse-file", str(refuse_file)]
    if auth:
        argv += ["--user", auth[0]]
        env["AMDR_TEST_SMTP_PASSWORD"] = auth[1]  # not on the command line
    log = base / "smtpd.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                env=env, start_new_session=True)
    try:
        # readiness from its own "listening" line, not a probe connection: tests
        # check the log for "Peer:" to prove a client never connected
        _wait_ready(proc, log, lambda: b"listening on" in log.read_bytes(),
                    f"smtpd on port {port}")
        yield SmtpServer(port=port, host="127.0.0.1", security=security, ca_file=cert,
                         spool=spool, log=log, pid=proc.pid)
    finally:
        _stop(proc)
