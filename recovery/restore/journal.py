"""The restore journal: which images of which DLE are restored, so a re-run continues.

One JSON line per event, appended and fsync'ed, beside the disk journal
(`TARGET.amdr/restore.journal`):

    {"dle": "web1:/srv", "date": "20261206...", "level": 0, "event": "start"}
    {"dle": "web1:/srv", "date": "20261206...", "level": 0, "event": "done", "bytes": N}

After a kill -9 or a power cut a re-run skips the images done (in chain
order), and the one started but not done is the interrupted one: a GNU tar
image is extracted again over what it left (`tar -xpG` brings the tree to
the image's state whatever is there), a dump image cannot be continued
(`restore -r` wants a fresh filesystem), so its filesystem is made again and
its chain restarts (`remake`).  The lines are only ever appended: what
happened stays readable.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


@dataclass
class Position:
    done: int  # images of the chain restored, in order
    interrupted: bool  # the next one was started and not finished


class RestoreJournal:
    def __init__(self, path: str):
        self.path = path

    def _events(self) -> list[dict]:
        try:
            with open(self.path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for ln in lines:
            try:
                out.append(json.loads(ln))
            except ValueError:
                continue  # a line cut by a power cut: the lines after it still count
        return out

    def _append(self, **event):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        line = json.dumps(event, sort_keys=True) + "\n"
        try:  # after a line cut by a power cut, start on a line of its own
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
        except OSError:
            pass  # a new or empty journal
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def start(self, dle: str, date: str, level: int):
        self._append(dle=dle, date=date, level=level, event="start")

    def done(self, dle: str, date: str, level: int, nbytes: int = 0):
        self._append(dle=dle, date=date, level=level, event="done", bytes=nbytes)

    def reset(self, dle: str, why: str):
        """Forget the DLE's images (its filesystem was made again)."""
        self._append(dle=dle, event="reset", why=why)

    def position(self, dle: str, images: list[tuple[str, int]]) -> Position:
        """Where the DLE's chain (its images as (date, level), in order) stands."""
        done: list[tuple[str, int]] = []
        started = None
        for e in self._events():
            if e.get("dle") != dle:
                continue
            if e["event"] == "reset":
                done, started = [], None
            elif e["event"] == "start":
                started = (e["date"], e["level"])
            elif e["event"] == "done":
                done.append((e["date"], e["level"]))
                started = None
        n = 0
        while n < len(images) and n < len(done) and done[n] == images[n]:
            n += 1
        if n < len(done):  # another chain was restored there (--until changed)
            return Position(0, True)
        if started is not None and (n >= len(images) or images[n] != started):
            # interrupted in an image this chain would not restore next: the tree
            # is in no state the chain knows
            return Position(0, True)
        return Position(n, started is not None)

    def restart(self) -> str | None:
        """Set the journal aside (everything is restored anew); its new name."""
        if not os.path.exists(self.path):
            return None
        n = 1
        while os.path.exists(f"{self.path}.{n}"):
            n += 1
        os.rename(self.path, f"{self.path}.{n}")
        return f"{self.path}.{n}"
