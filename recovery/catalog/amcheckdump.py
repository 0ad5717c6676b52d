"""Read what amcheckdump printed (often kept only as a cron mail).

Why: amcheckdump reads every part of every image of a run back from the
volumes, so its output says where each part is, and which images did not
read back.  Amanda 3.3 to 3.5 print, per image:

  Validating image HOST:DISK dumped DATE level L[ (N parts)]
  Reading volume LABEL file N          one line per part, in part order
  READ SIZE: 5080 kb                   progress ("\\r5080 kb    \\r" on a tty)
  application stderr: ...              anything else is an error: amcheckdump
  recovery failed: server-crc ...      counts the image as failed
and at the end "All images (2) successfully validated" or counts of failed
images.  The disk name is printed as is (not sanitised, not quoted).

Amanda 3.0 and 3.1 printed one line per part instead, and the verdict on an
image only when the next one started:

  Validating image HOST:DISK datestamp D level L part P/T on tape LABEL file #N
  Dump was not successfully validated: Validation process returned 2 ...
"""

from __future__ import annotations

import logging
import re

from .assemble import Seen
from .model import FAILED, Part

log = logging.getLogger(__name__)

_IMAGE = re.compile(r"^Validating image (?P<host>[^:]+):(?P<disk>.+) dumped (?P<date>\d+) "
                    r"level (?P<level>\d+)(?: \((?P<nparts>\d+) parts\))?$")
_OLD_PART = re.compile(
    r"^Validating image (?P<host>[^:]+):(?P<disk>.+) datestamp (?P<date>\d+) level "
    r"(?P<level>\d+) part (?P<part>\d+)(?:/(?P<total>-?\d+))? on tape (?P<label>.+) "
    r"file #(?P<filenum>\d+)$")
_READING = re.compile(r"^Reading volume (?P<label>.+) file (?P<filenum>\d+)$")
_PROGRESS = re.compile(r"^(?:(?:READ )?SIZE: )?\d+ kb$")
_SUMMARY = re.compile(
    r"^(?:All images? (?:\(\d+\) )?successfully validated|No images validated\.|"
    r"\d+ images? (?:successfully validated|failed to be correctly validated|not validated)\.|"
    r"Some images failed to be correc?l?tl?y validated\.)$")
_OLD_PROCESS_FAILED = "Dump was not successfully validated: Validation process returned"
# neither a part nor a failure: prompts, headings of the error lists, verdicts
_HARMLESS = ("Reading '", "Press enter", "Insert volume labeled", "and press enter",
             "You will need the following", "The following volumes are needed",
             "volume(s) needed", "holding file(s) needed", "Validation errors:",
             "While reading from volumes:", "Dump was successfully validated.",
             "Using previously started command", "Continuing with previously started",
             "Using command ", "Could not find any matching dumps")


class _Image:
    def __init__(self, m, source):
        self.host, self.disk = m.group("host"), m.group("disk")
        self.date, self.level = m.group("date"), int(m.group("level"))
        self.nparts = int(m.groupdict().get("nparts") or 0) or None
        self.per_image = "nparts" in m.groupdict()  # the 3.3+ form, not a line per part
        self.seen: list[Seen] = []
        self.errors: list[str] = []
        self.source = source

    @property
    def key(self):
        return (self.host, self.disk, self.date, self.level)

    def part(self, label: str, filenum: int, partnum: int | None = None,
             nparts: int | None = None):
        partnum = partnum or len(self.seen) + 1
        self.seen.append(Seen(self.host, self.disk, self.date, self.level,
                              Part(label, filenum, partnum),
                              nparts=nparts or self.nparts or None, source=self.source))

    def close(self):
        if self.per_image and not self.nparts:
            # 3.3 and later name the number of parts only when there are several
            for s in self.seen:
                s.nparts = len(self.seen)
        if self.errors:
            for s in self.seen:
                s.status = FAILED
                s.message = "amcheckdump: " + "; ".join(self.errors)
            if not self.seen:
                log.warning("%s: %s:%s of %s level %d: no part read: %s", self.source,
                            self.host, self.disk, self.date, self.level, self.errors)


def _segments(text: str):
    """Lines, with a tty's carriage-return progress split off."""
    for line in text.splitlines():
        for seg in line.split("\r"):
            seg = seg.strip()
            if seg:
                yield seg


def parse_checkdump(text: str, source: str = "") -> list[Seen]:
    images: list[_Image] = []
    cur: _Image | None = None
    just_started = False  # the last line began a new image (3.0/3.1 verdicts lag)
    for line in _segments(text):
        m = _IMAGE.match(line)
        if m:
            cur, just_started = _Image(m, source), True
            images.append(cur)
            continue
        m = _OLD_PART.match(line)
        if m:
            key = (m.group("host"), m.group("disk"), m.group("date"), int(m.group("level")))
            if cur is None or cur.key != key or int(m.group("part")) <= 1:
                cur, just_started = _Image(m, source), True
                images.append(cur)
            total = int(m.group("total") or 0)
            cur.part(m.group("label"), int(m.group("filenum")), int(m.group("part")),
                     total if total > 0 else None)
            continue
        if cur is None or _PROGRESS.match(line) or line.startswith(_HARMLESS):
            continue
        if _SUMMARY.match(line):
            cur, just_started = None, False
            continue
        m = _READING.match(line)
        if m:
            cur.part(m.group("label"), int(m.group("filenum")))
            just_started = False
            continue
        target = cur
        if line.startswith(_OLD_PROCESS_FAILED) and just_started and len(images) > 1:
            target = images[-2]  # the verdict on the image before this one
        target.errors.append(line)
    out: list[Seen] = []
    for img in images:
        img.close()
        out += img.seen
    return out
