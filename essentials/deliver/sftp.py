"""sftp delivery: upload to DIR/HOST/ on a server we authenticate strictly.

Why so strict: the agent runs unattended from cron, so nobody would notice a
server that changed its host key (a man-in-the-middle would receive every
bundle) or a login that fell back to a password.  Key authentication only,
the host key must already be in our own known_hosts file, and RejectPolicy
refuses anything else.  An unknown and a changed key are refused with
different words, because the second one may be an attack.

The upload goes to a hidden `.NAME.part` first and is renamed only once the
server reports the full size, so the directory never holds a truncated
bundle under a real bundle name.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import posixpath
import socket
import stat
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeys
from paramiko.ssh_exception import NoValidConnectionsError

from . import DeliveryError, companion_note, part_name, to_prune

log = logging.getLogger(__name__)


# -- known_hosts, for pointing a person at the right line -------------------
def host_key_name(host: str, port: int) -> str:
    """The name OpenSSH (and paramiko) files a server's key under."""
    return host if port == 22 else f"[{host}]:{port}"


def known_hosts_lines(text: str, host: str, port: int) -> list[tuple[int, str, str]]:
    """(line number, key type, base64 key) of every entry for host:port.

    Matches the way paramiko looks keys up (plain names, comma lists, hashed
    `|1|salt|hash` names; no wildcards), so the line we name in an error is
    the line paramiko compared against.
    """
    name = host_key_name(host, port)
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("@"):
            continue
        fields = line.split()
        if len(fields) < 3:
            continue
        for h in fields[0].split(","):
            if h == name or (h.startswith("|1|") and HostKeys.hash_host(name, h) == h):
                found.append((lineno, fields[1], fields[2]))
                break
    return found


def fingerprint(key) -> str:
    """`ssh-ed25519 SHA256:...`, as ssh-keygen -l prints it (computed here:
    paramiko 2.12, Debian 12's, has no PKey.fingerprint)."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class _Unknown(Exception):
    def __init__(self, key):
        super().__init__("host key not in known_hosts")
        self.key = key


class _RecordingReject(paramiko.RejectPolicy):
    """RejectPolicy that keeps the offered key, so the error can show its fingerprint."""

    def missing_host_key(self, client, hostname, key):
        raise _Unknown(key)


# -- connecting ---------------------------------------------------------------
def _where(dest) -> str:
    return f"sftp {dest['user']}@{dest['host']}:{dest['port']}"


_KEY_CLASSES = ("Ed25519Key", "ECDSAKey", "RSAKey")


def _key_from_path(path: str):
    """The private key in `path`, whatever its type.

    paramiko 2.12 (Debian 12's, what the hosts and the live image run) has no
    PKey.from_path: each key class is tried in turn; a passphrase error is
    final, a wrong type moves on."""
    with open(path, "rb"):  # FileNotFoundError and PermissionError, before any parsing
        pass
    last = None
    for name in _KEY_CLASSES:
        cls = getattr(paramiko, name)
        try:
            return cls.from_private_key_file(path)
        except paramiko.PasswordRequiredException:
            raise
        except (paramiko.SSHException, ValueError) as e:
            last = e
    raise last


def _load_key(path: str, where: str):
    try:
        return _key_from_path(path)
    except FileNotFoundError:
        raise DeliveryError(
            f"{where}: key_file {path} does not exist; create it with "
            f"`ssh-keygen -t ed25519 -N '' -f {path}` and add {path}.pub to the "
            f"server's authorized_keys") from None
    except PermissionError:
        raise DeliveryError(f"{where}: cannot read key_file {path}: permission denied "
                            f"(amdr-essentials runs as root from cron)") from None
    except (paramiko.PasswordRequiredException, TypeError):
        # cryptography raises TypeError for an encrypted key without a password
        raise DeliveryError(
            f"{where}: key_file {path} is protected by a passphrase, which cron cannot "
            f"type; use a key without one (`ssh-keygen -p -N '' -f {path}`)") from None
    except (ValueError, paramiko.SSHException) as e:
        raise DeliveryError(f"{where}: key_file {path} is not a private key we can use "
                            f"({type(e).__name__}); expected an OpenSSH ed25519, ecdsa "
                            f"or rsa private key") from None


def _changed_message(dest, offered, expected) -> str:
    kh, name = dest["known_hosts"], host_key_name(dest["host"], dest["port"])
    try:
        lines = known_hosts_lines(Path(kh).read_text(), dest["host"], dest["port"])
    except OSError:
        lines = []
    at = (f"line {', '.join(str(n) for n, _, _ in lines)} of {kh}" if lines else kh)
    return (
        f"{_where(dest)}: REFUSED: the server's host key has CHANGED. It offered "
        f"{fingerprint(offered)}, but {at} holds {fingerprint(expected)} for {name}. "
        f"This may be a man-in-the-middle attack; nothing was uploaded. Only if the "
        f"server was really reinstalled or its key replaced (check the new fingerprint "
        f"with its administrator: `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` there), "
        f"fix {at}: `ssh-keygen -R '{name}' -f {kh}` then "
        f"`ssh-keyscan -p {dest['port']} {dest['host']} >> {kh}`.")


def _unknown_message(dest, offered, missing_file: bool) -> str:
    kh, name = dest["known_hosts"], host_key_name(dest["host"], dest["port"])
    where = f"{kh} does not exist" if missing_file else f"{name} is not in {kh}"
    return (
        f"{_where(dest)}: REFUSED: the server's host key is UNKNOWN ({where}); it offered "
        f"{fingerprint(offered)}. Nothing was uploaded. Check that fingerprint with the "
        f"server's administrator (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` there), "
        f"then add it: `ssh-keyscan -p {dest['port']} {dest['host']} >> {kh}`.")


def _open_sftp(client: paramiko.SSHClient, timeout: float) -> paramiko.SFTPClient:
    """The sftp subsystem on a channel opened within `timeout`.

    paramiko 2.12 (Debian 12's) has no channel_timeout for connect(), and
    open_sftp() would wait an hour for a server that never opens the channel."""
    chan = client.get_transport().open_session(timeout=timeout)
    chan.settimeout(timeout)
    chan.invoke_subsystem("sftp")
    return paramiko.SFTPClient(chan)


def _connect(dest, key) -> paramiko.SSHClient:
    """An authenticated client, or DeliveryError; the client is closed on failure."""
    where, kh = _where(dest), dest["known_hosts"]
    addr = f"{dest['host']}:{dest['port']}"
    client = paramiko.SSHClient()
    missing = not Path(kh).exists()
    try:
        if not missing:
            try:
                client.load_system_host_keys(kh)  # system keys are never written back
            except OSError as e:
                raise DeliveryError(f"{where}: cannot read known_hosts {kh}: "
                                    f"{e.strerror or e}") from None
            except paramiko.hostkeys.InvalidHostKey:
                raise DeliveryError(f"{where}: known_hosts {kh} has a line whose key is not "
                                    f"valid base64; `ssh-keygen -l -f {kh}` shows which, "
                                    f"fix or remove it") from None
        client.set_missing_host_key_policy(_RecordingReject())
        t = dest["timeout"]
        client.connect(dest["host"], dest["port"], username=dest["user"], pkey=key,
                       allow_agent=False, look_for_keys=False, timeout=t,
                       banner_timeout=t, auth_timeout=t)
        return client
    except BaseException as e:
        # when the handshake does not finish within the timeout, paramiko's
        # start_client just returns and the next call says "No existing session"
        tr = client.get_transport()
        if type(e) is paramiko.SSHException and tr is not None and not tr.initial_kex_done:
            e = TimeoutError("no ssh handshake")
        client.close()
        if isinstance(e, DeliveryError):
            raise
        raise _explain_connect(e, dest, key, missing, addr) from None


def _explain_connect(e, dest, key, missing, addr) -> Exception:
    where = _where(dest)
    if isinstance(e, _Unknown):
        return DeliveryError(_unknown_message(dest, e.key, missing))
    if isinstance(e, paramiko.BadHostKeyException):
        return DeliveryError(_changed_message(dest, e.key, e.expected_key))
    if isinstance(e, paramiko.AuthenticationException):
        return DeliveryError(
            f"{where}: the server refused key authentication for user {dest['user']} "
            f"with {dest['key_file']} ({fingerprint(key)}). Add the public key "
            f"(`ssh-keygen -y -f {dest['key_file']}`) to ~{dest['user']}/.ssh/authorized_keys "
            f"on the server, and check the user name.")
    if isinstance(e, NoValidConnectionsError) or isinstance(e, ConnectionRefusedError):
        return DeliveryError(
            f"{where}: cannot connect to {addr}: connection refused. Is sshd running "
            f"there, is the port right, does a firewall reject it? Nothing was uploaded.")
    if isinstance(e, socket.gaierror):
        return DeliveryError(f"{where}: cannot resolve host name {dest['host']}: "
                             f"{e.strerror}; check `host` and DNS")
    if isinstance(e, (TimeoutError, socket.timeout)) or "banner" in str(e):
        return DeliveryError(
            f"{where}: no ssh answer from {addr} within timeout {dest['timeout']}s. Is the "
            f"server up, the address and port right (an ssh server there?), and the port "
            f"open in the firewall?")
    if isinstance(e, OSError):
        return DeliveryError(f"{where}: cannot connect to {addr}: {e.strerror or e}")
    if isinstance(e, (paramiko.SSHException, EOFError)):
        return DeliveryError(f"{where}: the ssh handshake with {addr} failed: {e or type(e).__name__}; "
                             f"is it an ssh server, and does it accept ssh connections from here?")
    return e  # not ours to explain (KeyboardInterrupt, a bug)


# -- the transfer -------------------------------------------------------------
def _why(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _makedirs(sftp, path: str, where: str):
    """mkdir -p, relative to the login directory unless absolute."""
    cur = "/" if path.startswith("/") else ""
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        cur = posixpath.join(cur, comp) if cur else comp
        try:
            st = sftp.stat(cur)
        except FileNotFoundError:
            try:
                sftp.mkdir(cur, 0o700)
                log.info("%s: created %s", where, cur)
                continue
            except OSError as e:
                raise DeliveryError(f"{where}: cannot create directory {cur}: {_why(e)}; "
                                    f"check `dir` and the user's rights there") from None
        except OSError as e:
            raise DeliveryError(f"{where}: cannot look at {cur}: {_why(e)}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise DeliveryError(f"{where}: {cur} exists but is not a directory; "
                                f"change `dir` or move it away")


def _rename(sftp, part: str, final: str, where: str):
    """posix-rename (atomic replace) when the server has it, else remove + rename."""
    try:
        sftp.posix_rename(part, final)
        return
    except OSError as e:
        log.info("%s: posix-rename refused (%s); removing %s, then renaming",
                 where, _why(e), final)
    try:
        try:
            sftp.remove(final)
        except FileNotFoundError:
            pass
        sftp.rename(part, final)
    except OSError as e:
        raise DeliveryError(f"{where}: uploaded {part} but cannot rename it to {final}: "
                            f"{_why(e)}") from None


def _upload(sftp, bundle: Path, remote_dir: str, where: str) -> str:
    part = posixpath.join(remote_dir, part_name(bundle.name))
    final = posixpath.join(remote_dir, bundle.name)
    size = bundle.stat().st_size
    try:
        sftp.put(str(bundle), part, confirm=False)
        got = sftp.stat(part).st_size
    except (OSError, EOFError, paramiko.SSHException) as e:
        _remove_quietly(sftp, part)
        raise DeliveryError(
            f"{where}: upload of {bundle.name} to {part} failed: {_why(e)} (server disk "
            f"full or quota reached? connection dropped?); it will be retried") from None
    if got != size:
        _remove_quietly(sftp, part)
        raise DeliveryError(
            f"{where}: {part} has {got} bytes on the server but the bundle has {size}; "
            f"the upload was cut short (server disk full?). Nothing was renamed; "
            f"it will be retried")
    try:
        sftp.chmod(part, 0o600)
    except OSError as e:  # some servers forbid chmod; the bundle is encrypted anyway
        log.warning("%s: cannot chmod 600 %s: %s", where, part, _why(e))
    _rename(sftp, part, final, where)
    return final


def _remove_quietly(sftp, path):
    try:
        sftp.remove(path)
    except (OSError, EOFError, paramiko.SSHException):
        pass


def _prune(sftp, remote_dir: str, host: str, keep: int, protect: str, where: str):
    """Delete this host's oldest bundles; a failure here is logged, not fatal.

    Why not fatal: the bundle was delivered; failing the delivery would make
    the next run upload it again without fixing anything.
    """
    try:
        names = sftp.listdir(remote_dir)
        for name in to_prune(names, host, keep, protect):
            sftp.remove(posixpath.join(remote_dir, name))
            log.info("%s: removed old bundle %s/%s (keep %d)", where, remote_dir, name, keep)
    except (OSError, EOFError, paramiko.SSHException) as e:
        log.warning("%s: delivered, but could not remove old bundles in %s: %s",
                    where, remote_dir, _why(e))


def deliver(dest: dict, bundle: Path, host: str, runner, extra=()) -> str:
    where = _where(dest)
    key = _load_key(dest["key_file"], where)
    client = _connect(dest, key)
    try:
        try:
            sftp = _open_sftp(client, dest["timeout"])
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise DeliveryError(f"{where}: logged in, but the server refused the sftp "
                                f"subsystem: {_why(e)}; is sftp enabled in its sshd_config "
                                f"(Subsystem sftp)?") from None
        sftp.get_channel().settimeout(dest["timeout"])
        remote_dir = posixpath.join(dest["dir"] or ".", host)
        _makedirs(sftp, remote_dir, where)
        notes = ""
        for x in extra:  # the runbook first, best effort: where the bundle is, it is
            try:
                _upload(sftp, Path(x), remote_dir, where)
            except DeliveryError as e:
                notes += companion_note(where, Path(x).name, e)
        final = _upload(sftp, bundle, remote_dir, where)
        _prune(sftp, remote_dir, host, dest["keep"], bundle.name, where)
        try:
            shown = sftp.normalize(final)
        except (OSError, paramiko.SSHException):
            shown = final
        log.info("%s: delivered %s", where, shown)
        return (f"sftp://{dest['user']}@{dest['host']}:{dest['port']}/{shown.lstrip('/')}"
                f"{notes}")
    except (OSError, EOFError, paramiko.SSHException) as e:
        raise DeliveryError(f"{where}: the connection failed during the upload: "
                            f"{_why(e)}; it will be retried") from None
    finally:
        client.close()
