"""The spool: sealed bundles waiting until every delivery has taken them.

Why a spool: cron runs once a week, and the week the sftp server is down
must not be the week without a bundle.  A bundle stays here, with a small
state file saying which deliveries already have it, until all have; the next
run retries the rest.  Only encrypted bundles ever live here.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .errors import AmdrError
from .sealed import RUNBOOK_MARK, SUFFIX, companion_of, companions, newest_first

log = logging.getLogger(__name__)


class SpoolError(AmdrError):
    pass


class Spool:
    def __init__(self, directory, keep: int = 4):
        self.dir = Path(directory)
        self.keep = keep

    def ensure(self):
        """Create the spool (0700) and prove it is writable before collecting anything."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.dir, 0o700)
            probe = self.dir / f".probe.{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            # what a run killed mid-way (kill -9, power loss) left: a half-sealed
            # bundle or a half-written state file; the caller holds the run lock
            # (and the state of a bundle removed just before the crash, which a new
            # bundle of the same name would otherwise inherit)
            orphans = [st for st in self.dir.glob(f"*{SUFFIX}.state")
                       if not st.with_name(st.name.removesuffix(".state")).exists()]
            # a runbook whose bundle is gone (removed, or never sealed)
            for c in self.dir.glob(f"*{RUNBOOK_MARK}*"):
                owner = companion_of(c.name)
                if owner and not (self.dir / owner).exists():
                    orphans.append(c)
            for stale in [*self.dir.glob(f".*{SUFFIX}.part"), *self.dir.glob(".*.state.tmp"),
                          *self.dir.glob(f".*{RUNBOOK_MARK}*.part"),
                          *self.dir.glob(".probe.*"), *orphans]:
                log.warning("removing %s left by an interrupted run", stale)
                stale.unlink(missing_ok=True)
        except OSError as e:
            raise SpoolError(f"spool_dir {self.dir} is not writable ({e.strerror}); no bundle "
                             f"was made. Fix its permissions or free space, or set spool_dir "
                             f"in the config") from None

    def path_for(self, name: str) -> Path:
        return self.dir / name

    def bundles(self) -> list[Path]:
        """Spooled bundles, oldest first."""
        names = [p.name for p in self.dir.glob(f"*{SUFFIX}")]
        return [self.dir / n for n in reversed(newest_first(names))]

    def state_path(self, bundle: Path) -> Path:
        return bundle.with_name(bundle.name + ".state")

    def state(self, bundle: Path) -> dict:
        try:
            return json.loads(self.state_path(bundle).read_text())
        except (OSError, ValueError):
            return {"delivered": {}, "failures": {}}

    def record(self, bundle: Path, delivery: str, ok: bool, detail: str,
               reached: list[str] | None = None):
        """reached: recipients a partly failed delivery did get the bundle to."""
        st = self.state(bundle)
        if ok:
            st["delivered"][delivery] = detail
            st["failures"].pop(delivery, None)
        else:
            f = st["failures"].setdefault(delivery, {"attempts": 0})
            f["attempts"] += 1
            f["error"] = detail
            if reached:
                f["reached"] = sorted(set(f.get("reached", [])) | set(reached))
        p = self.state_path(bundle)
        tmp = p.with_name("." + p.name + ".tmp")
        tmp.write_text(json.dumps(st, indent=1))
        os.replace(tmp, p)

    def reached(self, bundle: Path, delivery: str) -> list[str]:
        """Recipients an earlier, partly failed attempt of `delivery` already reached."""
        return list(self.state(bundle)["failures"].get(delivery, {}).get("reached", []))

    def pending(self, bundle: Path, deliveries: list[str]) -> list[str]:
        done = self.state(bundle)["delivered"]
        return [d for d in deliveries if d not in done]

    def remove(self, bundle: Path):
        for c in companions(bundle):  # its runbook goes with it
            c.unlink(missing_ok=True)
        bundle.unlink(missing_ok=True)
        self.state_path(bundle).unlink(missing_ok=True)

    def prune(self) -> list[str]:
        """Drop the oldest undelivered bundles beyond `keep`; returns their names."""
        dropped = []
        bundles = self.bundles()
        for b in bundles[:max(0, len(bundles) - self.keep)]:
            log.error("spool holds more than %d bundles: dropping the oldest, %s", self.keep,
                      b.name)
            self.remove(b)
            dropped.append(b.name)
        return dropped
