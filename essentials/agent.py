"""One `amdr-essentials run`: collect, seal, spool, deliver, report.

The order matters for the cron user nobody watches:
  1. everything that can be checked without collecting (keys, spool) is
     checked first, so a configuration mistake costs nothing and says so;
  2. collectors run one by one, each failure recorded, never fatal;
  3. the plaintext lives only in a 0700 work directory and is removed
     whatever happens; only the sealed bundle reaches the spool;
  4. every spooled bundle (this one and any a failed run left) is offered to
     every delivery it has not reached yet, each independently.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import bundle, collectors, sealed
from .collectors.base import Context
from .config import read_secret_file
from .deliver import deliver
from .errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, AmdrError, ConfigError
from .runner import Runner
from .spool import Spool

log = logging.getLogger(__name__)


@dataclass
class DeliveryOutcome:
    bundle: str
    delivery: str
    ok: bool
    detail: str  # where it went, or why not


@dataclass
class Outcome:
    host: str
    collectors: dict = field(default_factory=dict)
    bundle: Path | None = None
    bundle_error: str | None = None
    bundle_size: int = 0
    deliveries: list[DeliveryOutcome] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)   # still in the spool
    dropped: list[str] = field(default_factory=list)   # pruned from the spool

    @property
    def exit_code(self) -> int:
        new = self.bundle.name if self.bundle else None
        reached = [d for d in self.deliveries if d.bundle == new and d.ok]
        if not self.bundle or not reached:
            return EXIT_FAILED
        if any(s["status"] != "ok" for s in self.collectors.values()) \
                or any(not d.ok for d in self.deliveries) or self.dropped:
            return EXIT_PARTIAL
        return EXIT_OK

    @property
    def verdict(self) -> str:
        return {EXIT_OK: "ok", EXIT_PARTIAL: "PARTIAL", EXIT_FAILED: "FAILED"}[self.exit_code]


def host_name(cfg: dict) -> str:
    return cfg.get("host") or socket.gethostname().split(".")[0]


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def collect_all(cfg: dict, runner: Runner, staging: Path, only=None, root=None,
                etc=Path("/etc"), disks=None) -> dict:
    """Run each enabled collector into staging; return the manifest's status map."""
    status = {}
    for name in collectors.NAMES:
        opts = dict(cfg["collect"].get(name) or {})
        if not opts.get("enabled", True) or (only and name not in only):
            continue
        if name == "layout" and disks:
            opts["disks"] = disks
        ctx = Context(runner, staging, opts,
                      root or cfg["collect"]["layout"].get("root") or "/", etc)
        start = time.monotonic()
        try:
            detail = collectors.get(name).collect(ctx)
            st = {"status": "ok"}
            if detail:
                st["detail"] = detail
        except Exception as e:  # one failing collector never stops the others
            log.error("collector %s failed: %s", name, e)
            st = {"status": "failed", "error": str(e)}
        st["duration"] = round(time.monotonic() - start, 2)
        if ctx.warnings:
            st["warnings"] = list(ctx.warnings)
            for w in ctx.warnings:
                log.warning("collector %s: %s", name, w)
        status[name] = st
    return status


def make_bundle(cfg: dict, runner: Runner, out: Outcome, spool: Spool, keys, now,
                **collect_kw) -> Path | None:
    state = Path(cfg["state_dir"])
    work = _private_dir(state / "work")
    for stale in work.iterdir():  # a run killed mid-way left plaintext: remove it
        log.warning("removing %s left by an interrupted run", stale)
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
    name = sealed.bundle_name(out.host, now)
    staging = _private_dir(work / name.removesuffix(sealed.SUFFIX))
    try:
        start = time.monotonic()
        out.collectors = collect_all(cfg, runner, staging, **collect_kw)
        if all(s["status"] != "ok" for s in out.collectors.values()):
            out.bundle_error = "every collector failed; no bundle was made"
            return None
        bundle.write_manifest(staging, out.collectors, {
            "host": out.host, "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "collect_seconds": round(time.monotonic() - start, 2)})
        recipients, signer = keys
        passfile = cfg["gpg"]["passphrase_file"]
        path = sealed.seal(runner, staging, spool.path_for(name), cfg["gpg"]["home"],
                           recipients, signer, passfile)
        out.bundle_size = path.stat().st_size
        if (staging / "layout.yaml").is_file():
            layouts = _private_dir(state / "layouts")
            shutil.copyfile(staging / "layout.yaml", layouts / (name + ".layout.yaml"))
        return path
    except AmdrError as e:
        out.bundle_error = str(e)
        log.error("no bundle: %s", e)
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remember_layout(cfg: dict, name: str):
    """The newest delivered bundle's layout is what `check` compares against."""
    layouts = Path(cfg["state_dir"]) / "layouts"
    src = layouts / (name + ".layout.yaml")
    if not src.is_file():
        return
    last = Path(cfg["state_dir"]) / "last-layout.yaml"
    marker = Path(cfg["state_dir"]) / "last-bundle"
    prev = marker.read_text().strip() if marker.is_file() else ""
    if sealed.newest_first([prev, name])[:1] == [name] or not prev:
        shutil.copyfile(src, last)
        os.chmod(last, 0o600)
        marker.write_text(name + "\n")


def deliver_spool(cfg: dict, runner: Runner, out: Outcome, spool: Spool):
    names = [d["name"] for d in cfg["deliveries"]]
    by_name = {d["name"]: d for d in cfg["deliveries"]}
    for b in spool.bundles():
        for dname in spool.pending(b, names):
            try:
                where = deliver(by_name[dname], b, out.host, runner)
                spool.record(b, dname, True, where)
                out.deliveries.append(DeliveryOutcome(b.name, dname, True, where))
                log.info("delivered %s to %s: %s", b.name, dname, where)
            except Exception as e:  # one failing delivery never stops the others
                spool.record(b, dname, False, str(e))
                out.deliveries.append(DeliveryOutcome(b.name, dname, False, str(e)))
                log.error("delivery of %s to %s failed: %s", b.name, dname, e)
        if spool.state(b)["delivered"]:
            _remember_layout(cfg, b.name)
        if not spool.pending(b, names):
            spool.remove(b)
            (Path(cfg["state_dir"]) / "layouts" / (b.name + ".layout.yaml")).unlink(
                missing_ok=True)
    out.dropped = spool.prune()
    for name in out.dropped:
        (Path(cfg["state_dir"]) / "layouts" / (name + ".layout.yaml")).unlink(missing_ok=True)
    out.waiting = [b.name for b in spool.bundles()]


def run(cfg: dict, runner: Runner | None = None, now: datetime | None = None,
        **collect_kw) -> Outcome:
    """The whole run; raises only for configuration errors found before collecting."""
    runner = runner or Runner()
    now = now or datetime.now(timezone.utc)
    out = Outcome(host_name(cfg))
    if not cfg["deliveries"]:
        raise ConfigError("deliveries: empty; a bundle would never leave this host. "
                          "Add an sftp, mail or local delivery")
    keys = sealed.sender_keys(cfg["gpg"]["home"], cfg["gpg"]["recipients"],
                              cfg["gpg"]["signer"])
    if cfg["gpg"]["passphrase_file"]:  # mode and presence, before collecting anything
        read_secret_file(cfg["gpg"]["passphrase_file"], "signing key passphrase")
    spool = Spool(cfg["spool_dir"], cfg["spool_keep"])
    spool.ensure()
    out.bundle = make_bundle(cfg, runner, out, spool, keys, now, **collect_kw)
    deliver_spool(cfg, runner, out, spool)
    return out


def report(out: Outcome) -> str:
    """The text cron mails: what happened, what failed and what is waiting."""
    lines = [f"amdr-essentials run on {out.host}: {out.verdict} (exit {out.exit_code})"]
    if out.collectors:
        lines.append("collectors:")
        for n, s in out.collectors.items():
            extra = s.get("error") or _summary(s.get("detail"))
            lines.append(f"  {n:9s} {s['status']:7s} {s['duration']:6.2f}s  {extra}".rstrip())
            for w in s.get("warnings", []):
                lines.append(f"            warning: {w}")
    if out.bundle:
        lines.append(f"bundle: {out.bundle.name} ({_size(out.bundle_size)})")
    else:
        lines.append(f"bundle: none: {out.bundle_error}")
    if out.deliveries:
        lines.append("deliveries:")
        for d in out.deliveries:
            state = "ok" if d.ok else "FAILED"
            lines.append(f"  {d.delivery}: {d.bundle}: {state}: {d.detail}")
    if out.dropped:
        lines.append("dropped from the spool (never delivered): " + ", ".join(out.dropped))
    if out.waiting:
        lines.append(f"waiting in the spool, retried next run: {', '.join(out.waiting)}")
    return "\n".join(lines)


def _summary(detail) -> str:
    if not isinstance(detail, dict):
        return ""
    parts = []
    for k, v in detail.items():
        if isinstance(v, (str, int, float)):
            parts.append(f"{k}={v}")
        elif isinstance(v, list):
            parts.append(f"{k}={len(v)}")
    return " ".join(parts)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"
