"""mail delivery: the bundle as an attachment of one message.

Why mail at all: it is often the only way out of a locked-down site, and a
mailbox is a store the DR team already watches.  Why the care: a mail relay
limits message size, and a base64 attachment is a third larger than the
file, so the size is checked (on the encoded size) before connecting; and
"starttls" must mean TLS or nothing, because smtplib would otherwise
happily continue in clear text on a server that does not offer it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from ..config import read_secret_file
from ..errors import ConfigError
from . import DeliveryError, bundle_date, companion_note, mb

log = logging.getLogger(__name__)


class PartlyDelivered(DeliveryError):
    """The message went out, but some recipients were refused.

    The spool remembers `accepted`, so the next run mails only the refused
    ones instead of sending the bundle again to everyone every week.
    """

    def __init__(self, message: str, accepted: list[str]):
        super().__init__(message)
        self.accepted = accepted


# -- pure helpers -------------------------------------------------------------
def encoded_size(n: int) -> int:
    """Bytes `n` bytes take as a base64 MIME body (76-char lines + CRLF)."""
    chars = 4 * math.ceil(n / 3)
    return chars + 2 * math.ceil(chars / 76)


def size_complaint(size: int, max_size_mb, label: str) -> str | None:
    """Why a bundle of `size` bytes may not be mailed, or None.

    The limit is compared with the base64-encoded size: that is what the
    relay's message size limit sees.
    """
    enc = encoded_size(size)
    if enc <= max_size_mb * 1e6:
        return None
    return (f"bundle is {mb(size)} ({mb(enc)} once base64-encoded for mail), above "
            f"max_size_mb {max_size_mb} for {label}; use an sftp or local delivery for it, "
            f"or raise max_size_mb (if the mail server accepts messages that large)")


def subject(host: str, name: str) -> str:
    return f"amanda-dr bundle {host} {bundle_date(name, host)}"


def body(host: str, name: str, size: int, sha256: str, extra=()) -> str:
    text = (f"The amanda-dr disaster-recovery bundle of host {host} is attached.\n\n"
            f"  host:    {host}\n"
            f"  bundle:  {name}\n"
            f"  size:    {size} bytes ({mb(size)})\n"
            f"  sha256:  {sha256}\n\n"
            f"It is encrypted and signed. Save the attachment and decrypt it with\n"
            f"amdr-recover (import it into the bundle store on the recovery image).\n")
    for x in extra:
        how = ("encrypted and signed as the bundle is: gpg --decrypt it, then print it"
               if x.endswith(".gpg") else "print it")
        text += (f"\nIts runbook is attached too: {x}\n({how} and keep it with the "
                 f"recovery kit: it says how to recover {host} by hand).\n")
    return text


def build_message(dest: dict, host: str, name: str, data: bytes,
                  extra: list[tuple[str, bytes]] = ()) -> EmailMessage:
    msg = EmailMessage()
    sender = sender_address(dest)
    msg["From"] = sender
    msg["To"] = ", ".join(dest["to"])
    msg["Subject"] = subject(host, name)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body(host, name, len(data), hashlib.sha256(data).hexdigest(),
                         [n for n, _ in extra]))
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    for n, raw in extra:  # the runbook
        if n.endswith(".html"):
            msg.add_attachment(raw.decode("utf-8", "replace"), subtype="html", filename=n)
        else:
            msg.add_attachment(raw, maintype="application",
                               subtype="pdf" if n.endswith(".pdf") else "octet-stream",
                               filename=n)
    return msg


def sender_address(dest: dict) -> str:
    return dest["from"] or f"root@{socket.getfqdn()}"


# -- talking to the server ----------------------------------------------------
def _label(dest) -> str:
    return f"mail:{','.join(dest['to'])}"


def _addr(dest) -> str:
    return f"{dest['smtp_host']}:{dest['port']}"


def _tls_context(dest) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=dest["ca_file"] or None)
    except (OSError, ssl.SSLError) as e:
        raise DeliveryError(f"{_label(dest)}: cannot load ca_file {dest['ca_file']}: "
                            f"{getattr(e, 'strerror', None) or e}; it must be a PEM "
                            f"certificate file") from None


def _open(dest) -> smtplib.SMTP:
    """A connected SMTP session, TLS as asked; never clear text when TLS was asked."""
    host, port, t, sec = dest["smtp_host"], dest["port"], dest["timeout"], dest["security"]
    if sec == "ssl":
        smtp = smtplib.SMTP_SSL(host, port, timeout=t, context=_tls_context(dest))
    else:
        smtp = smtplib.SMTP(host, port, timeout=t)
    try:
        smtp.ehlo()
        if sec == "starttls":
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    f"{_label(dest)}: the SMTP server {_addr(dest)} does not offer STARTTLS, "
                    f"and security is starttls: nothing was sent (never in clear text). Use "
                    f"the server's submission port (587) or security: ssl (port 465), or "
                    f"enable STARTTLS on the server.")
            smtp.starttls(context=_tls_context(dest))
            smtp.ehlo()
        return smtp
    except BaseException:
        smtp.close()
        raise


def _login(smtp, dest):
    if not dest["user"]:
        return
    if not dest["password_file"]:
        raise DeliveryError(f"{_label(dest)}: user {dest['user']} is set but no "
                            f"password_file; add password_file (mode 600)")
    try:
        password = read_secret_file(dest["password_file"], "SMTP password")
    except ConfigError as e:
        raise DeliveryError(f"{_label(dest)}: {e}") from None
    if dest["security"] == "none":
        log.warning("%s: sending the SMTP password to %s without TLS (security: none)",
                    _label(dest), _addr(dest))
    try:
        smtp.login(dest["user"], password)
    except smtplib.SMTPAuthenticationError as e:
        raise DeliveryError(
            f"{_label(dest)}: the SMTP server {_addr(dest)} refused the login of user "
            f"{dest['user']} ({_reply(e)}); check the user and the password in "
            f"{dest['password_file']}") from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError(
            f"{_label(dest)}: the SMTP server {_addr(dest)} does not offer AUTH (on this "
            f"connection); remove `user` or use the server's submission port") from None


def _reply(e) -> str:
    text = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) \
        else str(e.smtp_error)
    return f"{e.smtp_code} {text}".strip()


def _send(smtp, dest, msg):
    label, addr = _label(dest), _addr(dest)
    try:
        refused = smtp.send_message(msg, from_addr=sender_address(dest), to_addrs=dest["to"])
    except smtplib.SMTPRecipientsRefused as e:
        who = "; ".join(f"{r} ({c} {m.decode('utf-8', 'replace')})"
                        for r, (c, m) in e.recipients.items())
        raise DeliveryError(f"{label}: the SMTP server {addr} refused every recipient: "
                            f"{who}; check `to` and whether this server relays for them "
                            f"(AUTH?)") from None
    except smtplib.SMTPSenderRefused as e:
        if e.smtp_code == 552:
            raise DeliveryError(f"{label}: the SMTP server {addr} refused a message of "
                                f"{mb(len(msg.as_bytes()))} as too large ({_reply(e)}); "
                                f"lower max_size_mb or use an sftp or local delivery") from None
        raise DeliveryError(f"{label}: the SMTP server {addr} refused the sender "
                            f"{e.sender} ({_reply(e)}); set `from` to an address it "
                            f"accepts") from None
    except smtplib.SMTPDataError as e:
        raise DeliveryError(f"{label}: the SMTP server {addr} refused the message "
                            f"({_reply(e)})") from None
    if refused:
        who = "; ".join(f"{r} ({c} {m.decode('utf-8', 'replace')})"
                        for r, (c, m) in refused.items())
        accepted = [t for t in dest["to"] if t not in refused]
        raise PartlyDelivered(f"{label}: sent to {', '.join(accepted)}, but the SMTP server "
                              f"{addr} refused some recipients: {who}; check `to`. Only "
                              f"those are retried next run", accepted)


def _explain(e, dest) -> DeliveryError:
    label, addr = _label(dest), _addr(dest)
    if isinstance(e, ssl.SSLCertVerificationError):
        hint = "give its CA in ca_file" if not dest["ca_file"] else \
            f"is {dest['ca_file']} the CA that signed it, and is smtp_host the name in it?"
        return DeliveryError(f"{label}: the certificate of the SMTP server {addr} was not "
                             f"accepted: {e.verify_message}; {hint}. Nothing was sent.")
    if isinstance(e, ssl.SSLError):
        return DeliveryError(f"{label}: TLS with the SMTP server {addr} failed: {e.reason or e} "
                             f"(is security right? ssl is for port 465, starttls for 25/587)")
    if isinstance(e, ConnectionRefusedError):
        return DeliveryError(f"{label}: cannot connect to the SMTP server {addr}: connection "
                             f"refused; check smtp_host and port, and that the server runs")
    if isinstance(e, socket.gaierror):
        return DeliveryError(f"{label}: cannot resolve smtp_host {dest['smtp_host']}: "
                             f"{e.strerror}")
    if isinstance(e, (TimeoutError, socket.timeout)):
        return DeliveryError(f"{label}: no answer from the SMTP server {addr} within "
                             f"timeout {dest['timeout']}s (firewall? wrong port?)")
    if isinstance(e, smtplib.SMTPServerDisconnected) and "timed out" in str(e):
        return DeliveryError(f"{label}: the SMTP server {addr} did not answer within timeout "
                             f"{dest['timeout']}s (wrong port? ssl on a starttls port, or "
                             f"the other way round? an overloaded server?)")
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"{label}: the SMTP server {addr} closed the connection: {e} "
                             f"(wrong security for this port?)")
    if isinstance(e, smtplib.SMTPResponseException):
        return DeliveryError(f"{label}: the SMTP server {addr} answered {_reply(e)}")
    if isinstance(e, smtplib.SMTPException):
        return DeliveryError(f"{label}: SMTP with {addr} failed: {e}")
    return DeliveryError(f"{label}: talking to the SMTP server {addr} failed: "
                         f"{getattr(e, 'strerror', None) or e}")


def deliver(dest: dict, bundle: Path, host: str, runner, extra=()) -> str:
    label = _label(dest)
    size = bundle.stat().st_size
    complaint = size_complaint(size, dest["max_size_mb"], label)
    if complaint:
        raise DeliveryError(complaint)
    notes, attach = "", []
    for x in map(Path, extra):  # the runbook rides along while the message stays small
        more = x.stat().st_size
        if size_complaint(size + more, dest["max_size_mb"], label):
            notes += companion_note(label, x.name, f"{mb(more)} more would pass max_size_mb "
                                                   f"{dest['max_size_mb']}")
            continue
        size += more
        attach.append(x)
    if not dest["to"]:
        raise DeliveryError(f"{label}: no recipients in `to`")
    msg = build_message(dest, host, bundle.name, bundle.read_bytes(),
                        [(x.name, x.read_bytes()) for x in attach])
    try:
        smtp = _open(dest)
        try:
            _login(smtp, dest)
            _send(smtp, dest, msg)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except DeliveryError:
        raise
    except (smtplib.SMTPException, OSError) as e:
        raise _explain(e, dest) from None
    log.info("%s: sent %s via %s (%s)", label, bundle.name, _addr(dest), dest["security"])
    return (f"mail to {', '.join(dest['to'])} via {_addr(dest)} ({dest['security']})"
            f"{notes}")
