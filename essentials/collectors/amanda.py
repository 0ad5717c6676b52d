"""Collect the Amanda database a server holds, and what a client knows of its backups.

Server side, per configuration (every /etc/amanda/CONF/amanda.conf, or the
ones the options name), under amanda/CONF/:
  amanda.conf, disklist, tapelist, logs/log.*   the catalog itself (the trace
                                                logs, as TRACE_LOG names them),
                                                read by recovery's catalog
  find.txt       `amadmin CONF find`
  export.txt     `amadmin CONF export`: the curinfo database (per DLE and
                 level: size, date, label and file number), so `amadmin CONF
                 import` rebuilds a server's planner state
  index.tar.gz   the index directory (`amgetconf CONF indexdir`), members
                 ./HOST/DISK/..., which amrecover needs to browse; left out
                 with a warning when larger than index_max_mb compressed
Amanda's server tools refuse root, so they run as the dump user.

Client side, amanda/client.yaml: which DLEs of this host the servers back
up and with which program, learned from what the client keeps locally (see
amclient).  A client-only host writes only that; a host that is neither
says so in the summary.
"""

from __future__ import annotations

import logging
import pwd
import re
import shutil
from pathlib import Path

import yaml

from essentials.errors import CommandError, ConfigError
from essentials import amcrypt
from essentials.runner import Runner, display

from . import amclient
from .base import Context

log = logging.getLogger(__name__)

AMANDA_ETC = Path("/etc/amanda")
AMANDA_USER = "backup"
DEFAULT_INDEX_MAX_MB = 200
CLIENT_FILE = "amanda/client.yaml"

# The trace logs in logdir, as Amanda itself finds them (find.c, and the
# pattern of Amanda::DB::Catalog): log.DATESTAMP.N, and from older versions
# log.DATESTAMP.amflush and log.DATESTAMP.  The one definition: recovery's
# --server path reads the same files this collector puts in the bundle.
TRACE_LOG = re.compile(r"^log\.(\d{8,14})(?:\.(\d+)|\.(amflush))?$")


def trace_log_order(name: str) -> tuple | None:
    """Sort key of a trace log's file name, None when the file is not one.

    Oldest datestamp first (8-digit ones read as midnight); within one,
    the order find.c reads them in: .0, .1, ..., then .amflush, then the
    bare name.
    """
    m = TRACE_LOG.match(name)
    if m is None:
        return None
    date, seq, amflush = m.groups()
    rank = (0, int(seq)) if seq is not None else (1 if amflush else 2, 0)
    return (date.ljust(14, "0"), *rank)


def configs(etc: Path = AMANDA_ETC) -> list[str]:
    if not etc.is_dir():
        return []
    return sorted(p.parent.name for p in etc.glob("*/amanda.conf"))


def _conf_path(runner: Runner, conf: str, key: str, etc: Path) -> Path:
    value = runner.output(["amgetconf", conf, key], user=AMANDA_USER).strip()
    p = Path(value)
    return p if p.is_absolute() else etc / conf / p


def _copy(src: Path, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(src, dst)
    dst.chmod(0o600)


def _write(path: Path, text: str):
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def collect_config(runner: Runner, conf: str, out: Path, etc: Path = AMANDA_ETC) -> dict:
    base = out / "amanda" / conf
    for d in (base.parent, base):
        d.mkdir(exist_ok=True, mode=0o700)
    _copy(etc / conf / "amanda.conf", base / "amanda.conf")
    disklist = _conf_path(runner, conf, "diskfile", etc)
    if disklist.is_file():
        _copy(disklist, base / "disklist")
    tapelist = _conf_path(runner, conf, "tapelist", etc)
    if tapelist.is_file():
        _copy(tapelist, base / "tapelist")
    logdir = _conf_path(runner, conf, "logdir", etc)
    n = 0
    for p in sorted(logdir.glob("log.*")):
        if trace_log_order(p.name) is not None:
            _copy(p, base / "logs" / p.name)
            n += 1
    find = runner.output(["amadmin", conf, "find"], user=AMANDA_USER)
    _write(base / "find.txt", find)
    return {"config": conf, "trace_logs": n}


def collect_export(runner: Runner, conf: str, out: Path) -> int:
    """`amadmin CONF export` into amanda/CONF/export.txt; returns the number of DLEs."""
    text = runner.output(["amadmin", conf, "export"], user=AMANDA_USER)
    _write(out / "amanda" / conf / "export.txt", text)
    return sum(1 for line in text.splitlines() if line.startswith("disk: "))


def collect_index(ctx: Context, conf: str, etc: Path) -> dict:
    """The index directory as amanda/CONF/index.tar.gz, unless it is over the size cap."""
    max_mb = ctx.options.get("index_max_mb") or DEFAULT_INDEX_MAX_MB
    indexdir = _conf_path(ctx.runner, conf, "indexdir", etc)
    if not indexdir.is_dir():
        ctx.warn(f"{conf}: index directory {indexdir} does not exist; no index collected")
        return {"index": "missing"}
    rel = f"amanda/{conf}/index.tar.gz"
    out = ctx.write(rel, b"")  # 0600 before tar fills it
    argv = ["tar", "--create", "--gzip", "--file", str(out), "--directory", str(indexdir),
            "--exclude=./lock", "."]
    res = ctx.runner.run(argv, check=False, what=f"archiving the {conf} index")
    err = res.stderr.decode("utf-8", "replace")
    if res.returncode not in (0, 1):
        out.unlink(missing_ok=True)
        raise CommandError(display(argv), res.returncode, err[-2000:],
                           f"archiving the {conf} index")
    if res.returncode == 1:
        ctx.warn(f"{conf}: tar exit 1 on the index (files changed while read, an amdump "
                 f"running?); the archive is usable: {err.strip()[-300:]}")
    size = out.stat().st_size
    if size > max_mb * 1024 * 1024:
        out.unlink()
        ctx.warn(f"{conf}: index left out: {indexdir} is {size / 1048576:.1f} MB compressed, "
                 f"over index_max_mb {max_mb}; amrecover cannot browse without it "
                 f"(restores by date and level still work); raise index_max_mb to keep it")
        return {"index": "left out", "index_bytes": size}
    return {"index": "collected", "index_bytes": size}


def _amandahosts_path() -> Path | None:
    try:
        return Path(pwd.getpwnam(AMANDA_USER).pw_dir) / ".amandahosts"
    except KeyError:
        return None


def collect_client(ctx: Context) -> dict | None:
    """amanda/client.yaml, or None when nothing says Amanda backs this host up."""
    client = amclient.gather(amclient.DEBUG_DIR, amclient.AMANDATES, amclient.GNUTAR_LISTS,
                             amclient.DUMPDATES, _amandahosts_path())
    if not client["backed_up"]:
        return None
    if not client["configs"]:
        ctx.warn("Amanda client records (amandates, dumpdates, gnutar-lists) exist but no "
                 "request logs: which config and program back up each DLE is unknown "
                 "(the debug logs are pruned after debug_days)")
    ctx.write(CLIENT_FILE, yaml.safe_dump(client, sort_keys=False))
    return {
        "configs": sorted({c["config"] for c in client["configs"]}),
        "dles": sum(len(c["dles"]) for c in client["configs"]),
        "recorded_dles": len({r["disk"] for r in client["records"]["amandates"]}
                             | {r["device"] for r in client["records"]["dumpdates"]}),
    }


KEYS_DIR = "amanda/keys"


def _backup_home() -> Path | None:
    try:
        return Path(pwd.getpwnam(AMANDA_USER).pw_dir)
    except KeyError:
        return None


def _key_members(home: Path, rel: str):
    """(member path under home) for a key file or every file of a key directory
    (gpg's sockets and locks left out)."""
    p = home / rel
    if p.is_file():
        yield rel
    elif p.is_dir():
        for f in sorted(p.rglob("*")):
            if f.is_file() and not f.is_symlink() and not f.name.startswith("S.") \
                    and not f.name.endswith(".lock"):
                yield str(f.relative_to(home))


def collect_keys(ctx: Context, programs: list[str], home: Path | None = None,
                 client_side: tuple = ()) -> dict | None:
    """The encryption programs' key files, into amanda/keys/ of the sealed bundle.

    What the configurations name decides (an unknown program: its keys are the
    site's business, said in a warning); with no program named, the key files
    whose presence says the host encrypts (a client with `encrypt client`).
    Programs in `client_side` (client-encrypt) run on the clients, whose own
    bundles carry their keys: collected here when present, never missed.
    Never in an unsealed collection, never logged."""
    home = home or _backup_home()
    if home is None:
        return None
    wanted: list[str] = []
    missing: list[str] = []
    for prog in programs:
        files = amcrypt.files_for(prog)
        if files is None:
            ctx.warn(f"the Amanda configuration encrypts with {prog}, whose key files this "
                     f"version does not know: keep them with the recovery kit yourself")
            continue
        for rel in files[0]:
            if (home / rel).exists():
                wanted.append(rel)
            elif prog not in client_side:
                missing.append(rel)
        wanted += [rel for rel in files[1] if (home / rel).exists()]
    if not programs or set(programs) <= set(client_side):
        wanted += [rel for rel in amcrypt.SIGNS if (home / rel).is_file()]
    wanted = list(dict.fromkeys(wanted))
    for rel in missing:
        ctx.warn(f"the Amanda configuration encrypts with {', '.join(programs)}, but "
                 f"{home / rel} is missing here: the images could not be decrypted after a "
                 f"loss")
    if not wanted and not missing:
        return None
    if not ctx.options.get("sealed", True):
        ctx.warn(f"Amanda's encryption keys ({', '.join(wanted)} in {home}) are left out of "
                 f"an unsealed collection: `amdr-essentials run` seals them into the bundle")
        return {"programs": programs, "keys": [], "left_out": wanted, "missing": missing}
    members = []
    for rel in wanted:
        for m in _key_members(home, rel):
            ctx.write(f"{KEYS_DIR}/{m}", (home / m).read_bytes())
            members.append(m)
    return {"programs": programs, "keys": members, "missing": missing}


def collect(ctx: Context) -> dict:
    etc = ctx.etc / "amanda"
    names = ctx.options.get("configs") or configs(etc)
    missing = [c for c in names if not (etc / c / "amanda.conf").is_file()]
    if missing:
        raise ConfigError(f"no Amanda configuration {', '.join(missing)} under {etc}")
    server = []
    for conf in names:
        summary = collect_config(ctx.runner, conf, ctx.out, etc)
        summary["dles"] = collect_export(ctx.runner, conf, ctx.out)
        summary.update(collect_index(ctx, conf, etc))
        server.append(summary)
    client = collect_client(ctx)
    programs: list[str] = []
    server_side: set[str] = set()
    for conf in names:
        text = (etc / conf / "amanda.conf").read_text(errors="replace")
        server_side.update(amcrypt.programs_in(text, "server"))
        for prog in amcrypt.programs_in(text):
            if prog not in programs:
                programs.append(prog)
    # the keys of the system whose /etc is read: a test's own /etc has none
    # unless it names a home (keys_home)
    home = ctx.options.get("keys_home") or (None if ctx.etc != Path("/etc") else
                                             _backup_home())
    keys = collect_keys(ctx, programs, Path(home),
                        tuple(p for p in programs if p not in server_side)) if home else None
    role = {(True, True): "server+client", (True, False): "server",
            (False, True): "client", (False, False): "none"}[(bool(server), client is not None)]
    out = {"role": role, "configs": server}
    if keys is not None:
        out["encryption"] = keys
    if client is not None:
        out["client"] = client
    if role == "none":
        out["note"] = (f"neither an Amanda server (no {etc}/*/amanda.conf) nor a client "
                       f"(no Amanda requests or records found)")
    return out
