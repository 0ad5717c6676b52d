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
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from . import bundle, collectors, config, doctor, inventory, sealed
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
    partly: bool = False  # not ok, but some mail recipients got it


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
    runbook: str | None = None  # the runbook written beside the bundle
    runbook_note: str | None = None  # what it lacks (a client's: no volumes)
    runbook_error: str | None = None  # configured, but not written: why
    runbook_partial: bool = False  # written, but a DLE of the catalog has no chain

    @property
    def exit_code(self) -> int:
        new = self.bundle.name if self.bundle else None
        reached = [d for d in self.deliveries if d.bundle == new and (d.ok or d.partly)]
        if not self.bundle or not reached:
            return EXIT_FAILED
        if any(s["status"] != "ok" for s in self.collectors.values()) \
                or any(not d.ok for d in self.deliveries) or self.dropped \
                or self.runbook_error or self.runbook_partial:
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


def signing_key_excludes(cfg: dict, etc: Path) -> list[str]:
    """The host's secret signing key never goes into its own bundle.

    Whoever opens bundles with the recovery key must not thereby be able to
    sign bundles as this host; a rebuilt host makes a new key (host-key)."""
    home = Path(cfg.get("gpg", {}).get("home") or "")
    try:
        rel = home.relative_to(etc)
    except ValueError:
        return []
    base = f"etc/{rel}" if str(rel) != "." else "etc"
    return [f"{base}/private-keys-v1.d", f"{base}/secring.gpg"]


def collect_all(cfg: dict, runner: Runner, staging: Path, only=None, root=None,
                etc=Path("/etc"), disks=None, sealed: bool = True) -> dict:
    """Run each enabled collector into staging; return the manifest's status map.
    sealed=False: staging stays a plain directory (`collect`), so Amanda's
    encryption keys are left out of it."""
    status = {}
    for name in collectors.NAMES:
        opts = dict(cfg["collect"].get(name) or {})
        if not opts.get("enabled", True) or (only and name not in only):
            continue
        if name == "layout" and disks:
            opts["disks"] = disks
        if name == "amanda":
            opts["sealed"] = sealed
        if name == "etc":
            opts["exclude"] = list(opts.get("exclude") or []) + signing_key_excludes(cfg, etc)
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


# what make_bundle leaves in state_dir/work: HOST-STAMP/ and HOST-STAMP.files
_STAGING = re.compile(r"^.+-\d{8}T\d{6}Z(\.files|\.runbook)?$")


def _free_name(spool: Spool, host: str, now: datetime) -> str:
    """This run's bundle name, one no spooled bundle (or its state) has.

    Two runs in the same second (a clock stepped back, a run right after
    another) would otherwise seal over a bundle still waiting in the spool and
    inherit its state file, so the new bundle would count as already delivered
    wherever the old one went.
    """
    name = sealed.bundle_name(host, now)
    while spool.path_for(name).exists() or spool.state_path(spool.path_for(name)).exists():
        now += timedelta(seconds=1)
        name = sealed.bundle_name(host, now)
    return name


def make_bundle(cfg: dict, runner: Runner, out: Outcome, spool: Spool, keys, now,
                **collect_kw) -> Path | None:
    state = Path(cfg["state_dir"])
    work = _private_dir(state / "work")
    for stale in work.iterdir():  # a run killed mid-way left plaintext: remove it
        if not _STAGING.match(stale.name):
            continue  # not ours: a state_dir shared with something else keeps its files
        log.warning("removing %s left by an interrupted run", stale)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    name = _free_name(spool, out.host, now)
    staging = _private_dir(work / name.removesuffix(sealed.SUFFIX))
    try:
        start = time.monotonic()
        out.collectors = collect_all(cfg, runner, staging, **collect_kw)
        if all(s["status"] != "ok" for s in out.collectors.values()):
            out.bundle_error = "every collector failed; no bundle was made"
            return None
        bundle.write_manifest(staging, out.collectors, {
            "host": out.host, "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "collect_seconds": round(time.monotonic() - start, 2),
            **config.manifest_extra(cfg)})
        recipients, signer = keys
        passfile = cfg["gpg"]["passphrase_file"]
        path = sealed.seal(runner, staging, spool.path_for(name), cfg["gpg"]["home"],
                           recipients, signer, passfile)
        out.bundle_size = path.stat().st_size
        if (staging / "layout.yaml").is_file():
            layouts = _private_dir(state / "layouts")
            shutil.copyfile(staging / "layout.yaml", layouts / (name + ".layout.yaml"))
        if cfg["runbook"]["format"] != "none":
            make_runbook(cfg, runner, out, staging, work, path, keys)
        return path
    except AmdrError as e:
        out.bundle_error = str(e)
        log.error("no bundle: %s", e)
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


RUNBOOK_TIMEOUT = 600


def make_runbook(cfg: dict, runner: Runner, out: Outcome, staging: Path, work: Path,
                 bundle_path: Path, keys):
    """The host's runbook from the bundle just sealed (its plaintext still in
    staging), written beside it in the spool, sealed or plain as configured:
    every delivery then takes both.  A runbook that cannot be made is said
    in the report (exit PARTIAL); the bundle goes all the same."""
    fmt, seal_it = cfg["runbook"]["format"], cfg["runbook"]["sealed"]
    name = sealed.runbook_name(bundle_path.name, fmt, seal_it)
    # its own 0700 directory in the work area (what an earlier run killed
    # mid-way left there goes first, and at the next run's start as staging does)
    rdir = work / (staging.name + ".runbook")
    shutil.rmtree(rdir, ignore_errors=True)
    _private_dir(rdir)
    plain = rdir / sealed.runbook_name(bundle_path.name, fmt, False)
    try:
        # amdr-recover's own renderer, as a program: recovery imports essentials,
        # never the reverse; the same interpreter and package as this run.
        # timeout(1) ends its whole process group (WeasyPrint too) when it hangs
        res = runner.run(["timeout", "-k", "10", str(RUNBOOK_TIMEOUT), sys.executable, "-m",
                          "recovery", "runbook", "--bundle", staging,
                          "--bundle-name", bundle_path.name, "--out", plain], check=False,
                         timeout=RUNBOOK_TIMEOUT + 30, what="writing the runbook")
        text = (res.stdout + res.stderr).decode("utf-8", "replace")
        if res.returncode == 124:
            raise AmdrError(f"amdr-recover runbook took more than {RUNBOOK_TIMEOUT} s and "
                            f"was stopped")
        if res.returncode not in (EXIT_OK, EXIT_PARTIAL) or not plain.is_file():
            tail = " ".join(text.strip().splitlines()[-3:]) or f"exit {res.returncode}"
            raise AmdrError(f"amdr-recover runbook failed: {tail}")
        if res.returncode == EXIT_PARTIAL:  # written, without some DLE's restore chain
            missing = [ln.strip().removeprefix("NOT RESTORABLE ").strip()
                       for ln in text.splitlines() if "NOT RESTORABLE" in ln]
            shown = "; ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            if missing and all("no Amanda catalog" in m for m in missing):
                out.runbook_note = ("without the volumes: a client's bundle holds no "
                                    "catalog; the Amanda server's runbook and site-plan "
                                    "have them")
            else:  # the server's own catalog lacks a chain: as the restore would say
                out.runbook_note = f"PARTIAL: no restore chain for {shown or '?'}"
                out.runbook_partial = True
        dest = bundle_path.with_name(name)
        if seal_it:
            recipients, signer = keys
            sealed.seal_file(runner, plain, dest, cfg["gpg"]["home"], recipients, signer,
                             cfg["gpg"]["passphrase_file"])
        else:
            part = dest.with_name("." + dest.name + ".part")
            shutil.copyfile(plain, part)
            os.chmod(part, 0o644)
            os.replace(part, dest)
        out.runbook = name
    except (AmdrError, OSError) as e:
        out.runbook_error = str(e)
        out.runbook_partial = False
        log.error("no runbook: %s", e)
    finally:
        shutil.rmtree(rdir, ignore_errors=True)


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
        # write then rename: `check` (not under the run lock) never reads half a
        # file, and a crash mid-copy keeps the previous layout whole
        tmp = last.with_name("." + last.name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f, open(src, "rb") as s:
            shutil.copyfileobj(s, f)
        os.replace(tmp, last)
        tmp = marker.with_name("." + marker.name + ".tmp")
        tmp.write_text(name + "\n")
        os.replace(tmp, marker)


def deliver_spool(cfg: dict, runner: Runner, out: Outcome, spool: Spool):
    names = [d["name"] for d in cfg["deliveries"]]
    by_name = {d["name"]: d for d in cfg["deliveries"]}
    for b in spool.bundles():
        for dname in spool.pending(b, names):
            dest = by_name[dname]
            reached = spool.reached(b, dname)
            if reached and dest["type"] == "mail":  # mail only those still without it
                dest = dict(dest, to=[t for t in dest["to"] if t not in reached])
            # the host the bundle was made under: after a rename (host: in the config,
            # or the hostname) the bundles still waiting would be refused forever
            host = (sealed.parse_name(b.name) or (out.host,))[0]
            try:
                if dest["type"] == "mail" and not dest["to"]:
                    where = f"mail to {', '.join(reached)} (by an earlier run)"
                else:
                    where = deliver(dest, b, host, runner)
                spool.record(b, dname, True, where)
                out.deliveries.append(DeliveryOutcome(b.name, dname, True, where))
                log.info("delivered %s to %s: %s", b.name, dname, where)
            except Exception as e:  # one failing delivery never stops the others
                accepted = getattr(e, "accepted", None)
                spool.record(b, dname, False, str(e), reached=accepted)
                out.deliveries.append(DeliveryOutcome(b.name, dname, False, str(e),
                                                      partly=bool(accepted)))
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
    # sealing's tools, probed before anything is collected (each collector
    # still reports its own missing tool alone)
    doctor.require({t.name: ["sealing the bundle"] for t in inventory.tools_of_uses(["seal"])},
                   "amdr-essentials run")
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
        width = max([9, *map(len, out.collectors)])
        for n, s in out.collectors.items():
            extra = s.get("error") or _summary(s.get("detail"))
            lines.append(f"  {n:{width}s} {s['status']:7s} {s['duration']:6.2f}s  "
                         f"{extra}".rstrip())
            for w in s.get("warnings", []):
                lines.append(f"            warning: {w}")
    if out.bundle:
        lines.append(f"bundle: {out.bundle.name} ({_size(out.bundle_size)})")
    else:
        lines.append(f"bundle: none: {out.bundle_error}")
    if out.runbook:
        lines.append(f"runbook: {out.runbook}"
                     + (f" ({out.runbook_note})" if out.runbook_note else ""))
    elif out.runbook_error:
        lines.append(f"runbook: NOT WRITTEN: {out.runbook_error}")
    if out.deliveries:
        lines.append("deliveries:")
        for d in out.deliveries:
            state = "ok" if d.ok else "PARTLY" if d.partly else "FAILED"
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
