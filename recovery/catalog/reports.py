"""The catalog from old report mails: amverify reports and amcheckdump output.

Why: when the Amanda server and its trace logs are gone, the mails it sent
(or the cron mails of amcheckdump) are often still in someone's mailbox, and
they say which dump is at which file of which volume.  People hand them over
in whatever form they have: one saved mail, an mbox folder, a Maildir, a
directory of text files, a pasted report; bodies may be quoted-printable or
base64.  Every text found is given to both readers (amverify, amcheckdump);
each only reacts to its own lines.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from pathlib import Path

from .amcheckdump import parse_checkdump
from .amconf import DiskEntry
from .assemble import assemble, derive_nparts
from .amverify import parse_verify
from .model import Dump

log = logging.getLogger(__name__)

# header names that make a file a mail rather than a pasted report
_MAIL_HEADERS = re.compile(
    rb"^(from|to|subject|date|received|return-path|message-id|mime-version|"
    rb"delivered-to|x-[a-z0-9-]+|content-type):", re.I)
_ATTACHED_TEXT = (".txt", ".log", ".out", ".report")


def _is_mail(data: bytes) -> bool:
    head = data.split(b"\n\n", 1)[0].split(b"\n")[:50]
    return bool(head) and all(re.match(rb"^([\x21-\x39\x3b-\x7e]+:|[ \t])", ln)
                              for ln in head if ln.strip()) \
        and any(_MAIL_HEADERS.match(ln) for ln in head)


def split_mbox(data: bytes) -> list[bytes]:
    """Messages of an mbox: each starts at a "From " line at the top or after a blank."""
    lines = data.splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines)
              if ln.startswith(b"From ") and (i == 0 or not lines[i - 1].strip())]
    out = []
    for a, b in zip(starts, starts[1:] + [len(lines)]):
        body = [re.sub(rb"^>(>*From )", rb"\1", ln) for ln in lines[a + 1:b]]  # mboxrd
        out.append(b"".join(body))
    return out


def _part_text(part) -> str | None:
    ctype = part.get_content_type()
    name = (part.get_filename() or "").lower()
    if part.get_content_maintype() != "text" and not name.endswith(_ATTACHED_TEXT):
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        content = None
    if isinstance(content, str):
        return content
    raw = part.get_payload(decode=True) or b""
    log.debug("%s part read as raw bytes", ctype)
    return raw.decode("utf-8", "replace")


def mail_texts(data: bytes) -> list[str]:
    """Every text part of one mail, decoded (quoted-printable, base64, charset)."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    texts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        t = _part_text(part)
        if t:
            texts.append(t)
    return texts


def texts_of(path: Path) -> list[tuple[str, str]]:
    """(source, text) for every report text in a file or under a directory."""
    path = Path(path)
    if path.is_dir():
        out = []
        for p in sorted(path.rglob("*")):
            if p.is_file() and not p.is_symlink():
                out += texts_of(p)
        return out
    data = path.read_bytes()
    if data.startswith(b"From "):
        out = []
        for n, msg in enumerate(split_mbox(data), 1):
            out += [(f"{path} message {n}", t) for t in mail_texts(msg)]
        return out
    if _is_mail(data):
        return [(str(path), t) for t in mail_texts(data)]
    return [(str(path), data.decode("utf-8", "replace"))]


def parse_reports(paths: list[Path], disklist: list[DiskEntry] | None = None) -> list[Dump]:
    """Dumps that the reports under `paths` place on volumes.

    With a disklist, amverify's sanitised disk names are given their real
    names back; without one (or when ambiguous) they stay as in the report
    and each such Dump's message says so.
    """
    seen = []
    for path in paths:
        for source, text in texts_of(Path(path)):
            seen += parse_verify(text, source, disklist)
            seen += parse_checkdump(text, source)
    dumps = assemble(seen)
    for d in dumps:
        derive_nparts(d)
    return sorted(dumps, key=lambda d: (d.host, d.disk, d.sortdate, d.level))
