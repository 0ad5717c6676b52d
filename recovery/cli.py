"""amdr-recover: rebuild a machine's disks and restore it from Amanda.

Subcommands:
  plan      show the disk and restore plans (--json for programs); change nothing
  diskinit  recreate partitions and filesystems, mount them under --target
  restore   restore every DLE into the mounted --target
  recover   diskinit, then restore, then finalize, then a summary per DLE
  finalize  make the restored system under --target boot here: device references,
            mdadm.conf, NIC names, initramfs, GRUB (BIOS or UEFI) and its entry
  mount     assemble, open, activate and mount an existing (recreated or restored)
            system under --target, for repair; nothing is wiped or formatted
  umount    unmount everything under --target, then deactivate what mount or
            diskinit activated (LVM, LUKS, MD)
  bundles   find bundles on media, in mailboxes, on an sftp server (pinned host
            key); the newest per host, --check: usable or refused and why
  catalog   the restore chain of every DLE, from a live server, bundles, report
            mails or a scan of the volumes (--json for programs)
  site-plan after a site is lost: which host first, which volumes in which drive,
            when each host is back (--json for programs, --html FILE)
  runbook   one printable document (HTML or PDF) per host: identity, disks, network,
            every DLE's chain, and the commands to restore it by hand
  restore-tar, restore-dump
            restore one DLE (one image, or its whole chain) into a directory
  rebuild-server
            rebuild a lost Amanda server's database (config, tapelist, logs,
            index) from its bundle or a scan of the volumes
  restore-from-server
            restore a DLE through a rebuilt (or live) server: amfetchdump or
            amrecover
  doctor    is every tool recovery calls installed, and does it run

Exit status:
  0  done, every DLE restored
  1  partial: some DLE could not be restored (each is named)
  2  usage or configuration error (a --map naming no disk of the layout)
  3  failed; also: the layout cannot be recreated (or mounted) on the disks
     here, each device and why named before anything is touched
  4  refused by a safety guard (boot disk, mounted device, no confirmation,
     a filesystem to mount whose UUID is not on the disk mapped for it)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from essentials.errors import (EXIT_OK, EXIT_PARTIAL, AmdrError, CatalogError, ConfigError,
                               RefusedError)
from essentials import cliutil, doctor

from . import events, progress
from essentials.runner import Cmd, Recorded, Runner, display

from .bundles import add_key_options, forget_home_copies, forget_opened, key_options
from .disks import activate, guard, show
from .restore import driver
from .restore.plan import render as render_restore
from .restore.plan import tools as restore_tools
from .finalize import run as finalize_run
from .finalize.actions import FinalizeError
from .session import Session, default_state_dir

log = logging.getLogger(__name__)


def _maps(values) -> dict:
    out = {}
    for v in values or []:
        old, sep, new = v.partition("=")
        if not sep or not old or not new:
            raise ConfigError(f"--map {v}: expected OLD=NEW, e.g. --map /dev/sda=/dev/vdb")
        out[old] = new
    return out


def _remote(args):
    """--server HOST --config CONF: restore through that live Amanda server."""
    config = getattr(args, "config", None)
    if not config:
        return None
    from .restore.remote import RemoteServer
    servers = getattr(args, "server", None) or []
    if len(servers) != 1:
        raise ConfigError("--config CONF restores through a live Amanda server: name it "
                          "once with --server HOST (its amandad answers amrecover)")
    return RemoteServer(servers[0], config, args.auth)


def _session(args) -> Session:
    from .catalog.gather import Request
    remote = _remote(args)
    req = Request(servers=[] if remote else getattr(args, "server", None) or [],
                  bundles=getattr(args, "catalog_bundle", None) or [],
                  reports=getattr(args, "reports", None) or [],
                  scan=getattr(args, "scan", None) or [],
                  keys=key_options(args), verify=not args.no_verify)
    return Session.load(args.bundle, os.path.abspath(args.target), _maps(args.map),
                        getattr(args, "amanda_host", None), getattr(args, "vtapes", None),
                        getattr(args, "until", None),
                        verify=not args.no_verify,
                        keys=key_options(args),
                        luks_key_file=getattr(args, "luks_key_file", None),
                        state_dir=getattr(args, "state_dir", None),
                        catalog_sources=req, remote=remote)


def _restores(s: Session):
    """(restore steps with their commands, errors): what plan shows of the restores."""
    try:
        amanda_host = s.host()
    except CatalogError as e:  # a bundle without a catalog still has a disk plan
        return None, [], [(s.bundle.host, None, str(e))]
    try:
        lib = s.library()
        devices = {lab: lib.device(lab) for lab in lib.available or ()}
        available = lib.available
    except AmdrError as e:
        print(f"note: {e}", file=sys.stderr)
        lib, devices, available = None, {}, None
    steps, errors = s.restore_plan(available)
    if lib is not None and s.remote is None:
        # every image of every chain checked as recover will check it, before a wipe
        from .restore import crypt, preflight
        steps, bad = preflight.check(steps, lib, crypt.bundle_keys(getattr(s, "key_bundles",
                                                                         [])))
        errors = errors + bad
    return amanda_host, [(st, render_restore(st, devices, lib)) for st in steps], errors


def cmd_plan(args) -> int:
    s = _session(args)
    # a layout that cannot be recreated here stops this before anything is
    # printed (PlanError, exit 3): every device named with what is wrong
    actions = s.disk_plan(Runner())
    m = s.matched
    amanda_host, steps, errors = _restores(s)
    # what diskinit's guard will refuse, said now, not found out at the wipe
    refused = guard.refusals(Runner(), sorted({a.device for a in actions if a.type == "wipe"}))
    # (shown, not an exit code: plan looks, and looking at a mounted system is fine)
    code = EXIT_PARTIAL if errors else EXIT_OK
    # finalize as the bundle's /etc says it will go (the restored files decide in the end)
    fin = s.finalize_plan(Runner(), from_bundle=True, nic_pins=_nics(args.nic))
    if args.json:
        doc = {"host": s.bundle.host, "amanda_host": amanda_host, "target": s.target,
               "state_dir": s.workdir,
               "mapping": show.mapping_doc(s.layout, m.mapping, m.reasons),
               "disks": show.doc(actions),
               # commands: the shell lines (a split image's group spans several);
               # how: per image, how it is read
               "restores": [dict(st.to_dict(),
                                 commands=[c for c in cmds if not c.startswith("#")],
                                 how=[c[2:] for c in cmds if c.startswith("# ")])
                            for st, cmds in steps],
               "errors": [{"host": h, "disk": d, "message": msg} for h, d, msg in errors],
               "refused": refused,
               "wipe": wipe_summary(s, actions)[1:],
               "finalize": fin.to_dict()}
        sizes = _image_sizes(s, [st for st, _ in steps])
        for r, (st, _) in zip(doc["restores"], steps):
            r["bytes"] = sizes.get((st.host, st.disk))
        doc["estimate"] = _estimate(s, [st for st, _ in steps], sizes)
        print(json.dumps(doc, indent=1, default=str))
        return code
    print(f"Host {s.bundle.host}, target {s.target} (journal and state in {s.workdir})")
    print("Disks (original -> here):")
    print("\n".join(show.mapping_text(s.layout, m.mapping, m.reasons)))
    print("Disk plan (diskinit runs it; nothing has been changed):")
    print("\n".join(show.text(actions)))
    print(f"Restore plan (Amanda host {amanda_host or 'unknown'}):")
    for st, cmds in steps:
        print(f"  {st.host}:{st.disk} ({st.program}) levels "
              f"{','.join(map(str, st.chain.levels))} into {st.directory}")
        # a comment, a command, or the next line of a split image's ( ... ) group
        print("\n".join(f"    {c}" if c.startswith("#") else f"      {c}" if c.startswith(" ")
                        else f"    $ {c}" for c in cmds))
    for h, d, msg in errors:
        print(f"  NOT RESTORABLE {h}:{d or '*'}: {msg}")
    if steps:
        steps_only = [st for st, _ in steps]
        print(f"  {estimate_text(_estimate(s, steps_only, _image_sizes(s, steps_only)))}")
    print("Finalize plan (after the restore; from the bundle's /etc):")
    print("\n".join(show.text(fin.actions)))
    for f in fin.findings:
        if f.status == "rewrite":
            print(f"  rewrite {f.describe()}")
    print("\n".join(f"  note: {n}" for n in fin.notes))
    if fin.problems:
        print("FINALIZE WILL REFUSE (the restored system could not boot):")
        print("\n".join(f"  {p}" for p in fin.problems))
    if refused:
        print("DISKINIT WILL REFUSE this plan (nothing would be changed):")
        print("\n".join(f"  {r}" for r in refused))
        print("  map the disks elsewhere with --map ORIGINAL=DISK")
    return code


def _estimate(s: Session, steps, sizes: dict) -> dict:
    """The restores' bytes and the throughput measured on their volumes now
    (restore/estimate.py): {"bytes", "rate", "measured", "seconds"}."""
    from .restore import estimate
    known = [sizes.get((st.host, st.disk)) for st in steps]
    total = sum(b for b in known if b) or None
    try:
        m = estimate.measure(s.library(), steps)
    except (AmdrError, OSError):
        m = None
    return {"bytes": total, "unknown": sum(1 for b in known if not b),
            "rate": round(m.rate) if m else None, "measured": m.what if m else None,
            "seconds": round(estimate.seconds_for(total, m), 1)
            if estimate.seconds_for(total, m) is not None else None}


def estimate_text(e: dict) -> str:
    """The estimate as one line for people (plan, the text UI)."""
    if not e.get("bytes"):
        return "Estimate: the images' sizes are not known here (a tape drive or a server)"
    size = f"{e['bytes'] / 1e6:,.0f} MB on the volumes"
    if not e.get("rate"):
        return f"Estimate: {size}; the throughput could not be measured here"
    secs = e["seconds"]
    took = f"{max(1, secs):.0f} s" if secs < 120 else f"{secs / 60:.0f} min"
    return (f"Estimate: {size} at {e['rate'] / 1e6:.0f} MB/s (measured now: "
            f"{e['measured']}): about {took} of reading, the restores' writes on top")


def _image_sizes(s: Session, steps) -> dict:
    """(host, disk) -> bytes the chain's images hold on the volumes (for the
    estimate and the progress total); missing where it cannot be known."""
    from .restore.driver import image_bytes
    try:
        lib = s.library()
    except AmdrError:
        return {}
    out = {}
    for st in steps:
        try:
            out[(st.host, st.disk)] = image_bytes(lib, st.chain.dumps)
        except (AmdrError, OSError):
            pass
    return out


def confirm(s: Session, actions, disks: list[str], yes: bool):
    if yes:
        return
    if not sys.stdin.isatty():
        raise RefusedError("refusing to wipe without confirmation: no terminal to ask on; "
                           "pass --yes after checking the plan with 'amdr-recover plan'")
    print("\n".join(show.text(actions)))
    print()
    print("\n".join(wipe_summary(s, actions)))
    answer = input(f"Type the host name ({s.bundle.host}) to go ahead: ").strip()
    if answer != s.bundle.host:
        raise RefusedError("not confirmed; nothing was changed")


def wipe_summary(s: Session, actions) -> list[str]:
    """What the person is asked about, right above the question: each disk that
    is wiped, as they can recognise it (model, serial, size), and what it becomes."""
    from .disks.mapping import human
    out = [f"These disks will be WIPED and recreated as host {s.bundle.host}'s:"]
    for a in actions:
        if a.type != "wipe":
            continue
        node = (s.present_nodes or {}).get(a.device) or {}
        model = " ".join(str(node.get(k) or "").strip() for k in ("vendor", "model")).strip()
        desc = ", ".join(x for x in (model or None,
                                     f"serial {node['serial']}" if node.get("serial") else None,
                                     human(int(node["size"])) if node.get("size") else None)
                         if x)
        held = [c.get("path") for c in node.get("children") or []]
        orig = {d["id"]: d.get("path") for d in s.layout.get("disks") or []}.get(a.disk)
        out.append(f"  {a.device} ({desc or 'no model or serial known'}) becomes "
                   f"{orig or a.disk}" + (f"; it holds {', '.join(held)} now" if held else ""))
    return out


def do_diskinit(s: Session, runner: Runner, yes: bool, restart: bool = False):
    actions = s.disk_plan(runner)
    disks = sorted({a.device for a in actions if a.type == "wipe"})
    guard.check_disks(runner, disks)
    confirm(s, actions, disks, yes)
    j = actions[0].journal if actions else None
    if restart and j is not None:
        old = j.restart()
        if old:
            print(f"starting over: the journal of the earlier runs is set aside as {old}")
    # what it will assemble, open and activate, for umount (before: an
    # interrupted run leaves them active too)
    activate.record(s.active_file, activate.stack_items(actions))
    for a in actions:
        print(f"  {a.id}")
        a.apply(runner)
    journaled = [a for a in actions if a.journaled]
    if j is not None and journaled and j.skipped == len(journaled):
        print(f"nothing was recreated: every disk action was done in an earlier run "
              f"(journal {j.path}) and the disks still carry its work; "
              f"`--restart` recreates them anyway")
    else:  # new, empty filesystems: nothing of an earlier restore is on them
        from .restore.journal import RestoreJournal
        RestoreJournal(restore_journal_path(s)).restart()
    return actions


def restore_journal_path(s: Session) -> str:
    return os.path.join(s.workdir, "restore.journal")


def remake_filesystem(s: Session, runner: Runner, st, actions=None):
    """A dump DLE whose restore was interrupted: its filesystem made again (same
    UUID and label, by the disk plan's own format action) and mounted again,
    with what is mounted below it.  Only with the plan this run's diskinit
    carried out (never a plan matched anew), and only on a device that still
    carries the UUID that plan gave it."""
    dle = f"{st.host}:{st.disk}"
    if not actions:
        raise AmdrError(f"{dle}: its dump restore was interrupted, and restore -r needs a "
                        f"fresh filesystem: run the same `amdr-recover recover` again (it "
                        f"makes that filesystem again and continues), or `diskinit "
                        f"--restart` and restore anew")
    mounts = [a for a in actions if a.type == "mount"]
    m = next((a for a in mounts if a.mountpoint == st.original), None)
    fmt = next((a for a in actions if m is not None and a.id == f"format-{m.filesystem}"),
               None)
    if m is None or fmt is None:
        raise AmdrError(f"{dle}: its dump restore was interrupted, and no filesystem of the "
                        f"disk plan is mounted at {st.original} to make again; restore it "
                        f"into a fresh filesystem")
    found = runner.run(["blkid", "-p", "-o", "value", "-s", "UUID", fmt.path],
                       check=False).text.strip()
    if fmt.uuid and found.lower() != fmt.uuid.lower():
        raise AmdrError(f"{dle}: {fmt.path} carries UUID {found or 'none'}, not the "
                        f"{fmt.uuid} diskinit gave it: not formatting it; restore it into a "
                        f"fresh filesystem")
    top = m.target.rstrip("/")
    below = [a for a in mounts if a.target == m.target or a.target.startswith(top + "/")]
    for a in sorted(below, key=lambda a: len(a.target), reverse=True):
        if os.path.ismount(a.target):
            runner.run(["umount", a.target], what="a fresh filesystem for restore -r")
    try:
        fmt.execute(runner)
    finally:  # mounted again whatever happened: nothing may land on the filesystem above
        for a in sorted(below, key=lambda a: len(a.target)):
            a.execute(runner)
    print(f"{dle}: its dump restore was interrupted, and restore -r needs a fresh "
          f"filesystem: {fmt.path} made again ({fmt.fstype}, same UUID and label); its "
          f"chain restarts", flush=True)


def cmd_diskinit(args) -> int:
    s = _session(args)
    do_diskinit(s, Runner(), args.yes, args.restart)
    print(f"disks recreated and mounted under {s.target}")
    return EXIT_OK


def _only(steps, errors, only):
    if only:
        steps = [st for st in steps if st.disk in only]
        errors = [e for e in errors if e[1] in only]
    return steps, errors


def check_restore_tools(dles, lib, what="the restore"):
    """dles: (HOST:DISK, program) pairs; probed before anything is wiped or written."""
    from .media.devices import TapeDrive
    if getattr(lib, "remote", False):  # amrecover runs tar or restore as the image says
        doctor.require({t: [d for d, _ in dles] for t in ("amrecover", "tar", "restore")},
                       what)
        return
    doctor.require(restore_tools(dles, isinstance(lib, TapeDrive)), what)


def _dles(steps):
    return [(f"{st.host}:{st.disk}", st.program) for st in steps]


def planned_restores(s: Session, only=None):
    """(library, steps that passed the preflight, errors): every image of every
    chain checked before anything is written (restore/preflight.py)."""
    from .restore import crypt, preflight
    if s.remote is not None:  # the server's catalog, read through amrecover, is the check
        try:
            steps, errors = _only(*s.restore_plan(), only)
        except AmdrError as e:
            raise CatalogError(str(e)) from None
        return s.remote, steps, errors
    lib = s.library()
    steps, errors = _only(*s.restore_plan(lib.available), only)
    steps, bad = preflight.check(steps, lib, crypt.bundle_keys(getattr(s, "key_bundles", [])))
    return lib, steps, errors + bad


def restore_jobs(jobs, lib) -> int:
    """--jobs, else: one stream on a tape drive; on vtapes two where there are two
    cores (a stream is mostly one busy process: amrestore, gzip or tar)."""
    from .media.devices import TapeDrive
    if isinstance(lib, TapeDrive) or getattr(lib, "remote", False):
        if jobs and jobs > 1:
            print("note: one tape drive reads one stream at a time: --jobs 1" if
                  isinstance(lib, TapeDrive) else "note: the live server's amidxtaped "
                  "serves one restore at a time from its changer: --jobs 1")
        return 1
    if jobs:
        return jobs
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def do_restore(s: Session, runner: Runner, only=None, planned=None, results=None,
               errors=None, jobs=None, disk_actions=None, on_error="ask"):
    """Each DLE on its own, `jobs` at a time (restore/streams.py: parents first,
    never two streams on one volume).  A DLE that fails is put to the person
    (on_error "ask": retry once the cause is fixed, skip it, stop the run;
    with nobody to ask, and with "skip", it is recorded with its reason and
    the others go on; "stop" ends the run there).  Returns (results, errors:
    not restorable or failed); the lists given are filled as it goes, so an
    interrupted run still reports; s.stopped says the run was stopped."""
    import threading

    from .restore import crypt, streams
    results = [] if results is None else results
    errors = [] if errors is None else errors
    lib, steps, planned_errors = planned or planned_restores(s, only)
    errors.extend(planned_errors)
    check_restore_tools(_dles(steps), lib)
    from .restore.journal import RestoreJournal
    from .restore.plan import is_tar
    n = restore_jobs(jobs, lib)
    lock = threading.Lock()
    journal = RestoreJournal(restore_journal_path(s))
    s.restore_steps = steps
    if not runner.dry_run:
        # a GNU tar DLE restored (again) in this run empties the mountpoints below
        # it: the DLEs there are restored again after it, whatever the journal says
        for st in steps:
            pos = journal.position(f"{st.host}:{st.disk}",
                                   [(d.date, d.level) for d in st.chain.dumps])
            if not is_tar(st.program) or pos.done == len(st.chain.dumps):
                continue
            for o in steps:
                op = journal.position(f"{o.host}:{o.disk}",
                                      [(d.date, d.level) for d in o.chain.dumps])
                if streams.inside(o.directory, st.directory) and (op.done or op.interrupted):
                    journal.reset(f"{o.host}:{o.disk}", f"{st.host}:{st.disk} is restored "
                                  f"again, which empties the mountpoints below it")

    def one(st):
        with lock:
            via = f" through amrecover from {lib.host}" if getattr(lib, "remote", False) \
                else ""
            progress.say(f"restoring {st.host}:{st.disk} levels {st.chain.levels} into "
                         f"{st.directory}{via}")
        if not is_tar(st.program) and not runner.dry_run and os.path.isdir(st.directory):
            pos = journal.position(f"{st.host}:{st.disk}",
                                   [(d.date, d.level) for d in st.chain.dumps])
            # (the mountpoints of the filesystems below it are diskinit's, not data)
            left = sorted(n for n in set(os.listdir(st.directory))
                          - {"lost+found", "restoresymtable"}
                          if not os.path.ismount(os.path.join(st.directory, n)))
            if pos.done == 0 and not pos.interrupted and left:
                raise AmdrError(f"restore -r wants a fresh filesystem, and {st.directory} "
                                f"holds {', '.join(left[:5])}{' ...' if len(left) > 5 else ''}"
                                f": `amdr-recover recover --restart` makes it again")
        events.emit("dle", dle=f"{st.host}:{st.disk}", state="restoring")
        shown = progress.Progress()
        try:
            r = driver.restore_step(runner, st, lib, progress=shown, journal=journal,
                                    remake=lambda x: remake_filesystem(s, runner, x,
                                                                       disk_actions))
        finally:
            shown.close()
        if not runner.dry_run:
            r.files = count_entries(st.directory)
        events.emit("dle", dle=f"{st.host}:{st.disk}", state="done", bytes=r.bytes,
                    seconds=round(r.seconds, 1), levels=r.levels, files=r.files)
        with lock:
            if r.skipped == len(st.chain.dumps):
                progress.say(f"{st.host}:{st.disk}: every image was restored by an earlier "
                             f"run (journal {journal.path}); `restore --restart` restores "
                             f"it again")
            elif r.skipped:
                progress.say(f"{st.host}:{st.disk}: {r.skipped} image(s) restored by an "
                             f"earlier run, continued from level "
                             f"{st.chain.levels[r.skipped]}")
            results.append(r)
        return r

    stop = threading.Event()
    s.stopped = False

    def decide(st, e) -> str:
        if stop.is_set():
            return "stop"
        if on_error in ("skip", "stop"):
            return on_error
        lines = str(e).splitlines() or ["(no message)"]
        said = lines[:1] + (["..."] if len(lines) > 5 else []) + lines[1:][-4:]
        return events.ask("failed", f"{st.host}:{st.disk} was not restored:\n"
                          + "\n".join(said), ["retry", "skip", "stop"],
                          default="skip") or "skip"

    def attempt(st):
        while True:
            if stop.is_set():
                raise AmdrError("not restored: the recovery was stopped")
            try:
                return one(st)
            except Exception as e:  # noqa: BLE001 - put to the person, then recorded
                choice = "stop" if isinstance(e, events.StopAsked) else decide(st, e)
                if choice == "retry":
                    print(f"{st.host}:{st.disk}: failed ({e}); restoring it again, as asked "
                          f"(the journal keeps the images already restored)", flush=True)
                    continue
                if choice == "stop" and not stop.is_set():
                    stop.set()
                    s.stopped = True
                    print("stopping, as asked: no other DLE is started, the streams "
                          "running now are ended", flush=True)
                    runner.terminate_all()
                raise

    def failed(st, e):
        if not isinstance(e, AmdrError):
            log.error("restoring %s:%s", st.host, st.disk, exc_info=e)
        print(f"FAILED {st.host}:{st.disk}: {e}", file=sys.stderr, flush=True)
        events.emit("dle", dle=f"{st.host}:{st.disk}", state="failed", message=str(e))
        errors.append((st.host, st.disk, f"{st.host}:{st.disk}: {e}"))

    # Amanda's encryption keys from the bundles, in ~backup for this run only
    with crypt.installed([] if runner.dry_run else getattr(s, "key_bundles", [])) as keys:
        if keys:
            print(f"Amanda's encryption keys from the bundle in ~backup for the restore: "
                  f"{', '.join(keys)} (removed after)")
        if n > 1 and len(steps) > 1:
            print(f"restoring up to {n} DLEs at once (--jobs): parents first, one stream "
                  f"per volume")
        def interrupted():  # Ctrl-C, SIGTERM: nobody is asked about the streams it ends
            stop.set()
            runner.terminate_all()

        streams.run(steps, n, attempt, on_error=failed, on_interrupt=interrupted,
                    should_stop=stop.is_set)
    seen = {(r.host, r.disk) for r in results} | {(h, d) for h, d, _ in errors}
    for st in steps:
        if (st.host, st.disk) not in seen:
            errors.append((st.host, st.disk, f"{st.host}:{st.disk}: not restored: the "
                                             f"recovery was stopped before it began"))
    order = {(st.host, st.disk): i for i, st in enumerate(steps)}
    results.sort(key=lambda r: order.get((r.host, r.disk), 0))
    return results, errors


def count_entries(top: str, seconds: float = 20.0) -> int | None:
    """Files, directories and links of the filesystem at `top` (not below
    another mount: those are their own DLEs' counts); None when counting
    would take longer than `seconds` (millions of files: the restore's
    volumes wait meanwhile)."""
    import time
    try:
        dev = os.lstat(top).st_dev
    except OSError:
        return None
    n = 0
    end = time.monotonic() + seconds
    for root, dirs, files in os.walk(top):
        if time.monotonic() > end:
            return None
        keep = []
        for d in dirs:
            try:
                if os.lstat(os.path.join(root, d)).st_dev == dev:
                    keep.append(d)
            except OSError:
                pass
        dirs[:] = keep
        n += len(files) + len(keep)
    return n


def go_on_without(errors, allow: bool) -> str:
    """Some DLEs cannot be restored: the person decides, before any wipe.
    "retry" (check again: the medium with a missing volume attached) or
    "skip" (go on without them); stopping raises RefusedError."""
    print("These DLEs cannot be restored (checked before any disk is touched):")
    for _, _, m in errors:
        print(f"  {m}")
    if allow:
        print("going on without them (--allow-partial): their filesystems are made, empty")
        return "skip"
    text = ("These DLEs cannot be restored (no disk was touched yet):\n"
            + "\n".join(f"  {m}" for _, _, m in errors)
            + "\nAttach what is missing and retry, or recreate the disks and restore "
              "the others without them.")
    choice = events.ask("unrestorable", text, ["retry", "skip", "stop"], default=None)
    if choice is None:
        raise RefusedError("no disk was touched: some DLEs cannot be restored (named above); "
                           "fix what is named, or pass --allow-partial to recreate the disks "
                           "and restore the others")
    if choice == "stop":
        raise RefusedError("stopped, as asked; no disk was touched")
    return choice


_ARGV: list[str] = []  # this run's arguments (main), for the resume command
_DROP = {"--yes", "--restart", "--allow-partial", "--no-finalize"}
_DROP_VALUE = {"--dle", "--report", "--jobs", "--nic", "--on-error"}


def resume_hint(s: Session, errors, steps=()) -> list[str]:
    """The command that restores each DLE not restored, once its cause is fixed:
    this run's own options (catalog sources, --until, keys, volumes...), as
    `restore`, with the DLE and every DLE below it (a GNU tar restore of a
    directory empties the mountpoints below it, so they come again after it)."""
    from .restore.streams import inside
    rest, skip = [], False
    for a in (_ARGV[1:] if _ARGV else []):
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in _DROP:
            continue
        if name in _DROP_VALUE:
            skip = "=" not in a
            continue
        rest.append(a)
    if not rest:  # called without main (a test): the essentials
        rest = ["--bundle", s.bundle_arg, "--target", s.target] + \
            (["--vtapes", s.vtapes] if s.vtapes else [])
    dirs = {(st.host, st.disk): st.directory for st in steps}
    out = []
    for h, d, _ in errors:
        if not d:
            continue
        dles = [d] + [st.disk for st in steps if (h, d) in dirs
                      and inside(st.directory, dirs[(h, d)])]
        out.append("  amdr-recover restore " + " ".join(shlex.quote(a) for a in rest) + "".join(
            f" --dle {shlex.quote(x)}" for x in dles))
    return out


def print_results(results, errors):
    print(f"{'DLE':36s} {'levels':8s} {'files':>7s} {'MB':>9s} {'seconds':>8s} {'MB/s':>7s}")
    for r in results:
        mb = r.bytes / 1e6
        files = "" if r.files is None else str(r.files)
        print(f"{r.host + ':' + r.disk:36s} {','.join(map(str, r.levels)):8s} {files:>7s} "
              f"{mb:9.1f} {r.seconds:8.2f} {mb / r.seconds if r.seconds else 0:7.1f}")
    for r in results:
        for n in r.notes:
            print(f"note {r.host}:{r.disk}: {n}")
    for h, d, m in errors:
        print(f"NOT RESTORED {h}:{d}: {m}")


def write_report(s: Session, path, results, errors) -> list[str]:
    """Always into the state directory, and to --report when given."""
    doc = {"host": s.bundle.host, "target": s.target,
           "restored": [r.__dict__ for r in results],
           "errors": [{"host": h, "disk": d, "message": m} for h, d, m in errors]}
    from .assist import STATE, State
    assist = State(Path(os.environ.get("AMDR_ASSIST_STATE") or STATE)).events()
    if assist:  # who from the office saw or drove this recovery, and when
        doc["assist"] = assist
    out = []
    for p in [os.path.join(s.workdir, "restore-report.json")] + ([path] if path else []):
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
        with open(p, "w") as f:
            json.dump(doc, f, indent=1)
        out.append(p)
    return out


def end_of_restore(s: Session, results, errors, report_path):
    print_results(results, errors)
    for p in write_report(s, report_path, results, errors):
        print(f"report: {p}")
    if errors:
        hint = resume_hint(s, errors, getattr(s, "restore_steps", ()))
        if hint:
            print("once what is named above is fixed, each is restored with:")
            print("\n".join(hint))


def cmd_restore(args) -> int:
    s = _session(args)
    results, errors = [], []
    if args.restart:
        from .restore.journal import RestoreJournal
        old = RestoreJournal(restore_journal_path(s)).restart()
        if old:
            print(f"restoring everything again: the restore journal is set aside as {old}")
    try:
        do_restore(s, Runner(), args.dle, results=results, errors=errors, jobs=args.jobs,
                   on_error=args.on_error)
    finally:
        finalize_run.reset(s.workdir)  # the files it changed are restored anew
        end_of_restore(s, results, errors, args.report)
    return EXIT_PARTIAL if errors else EXIT_OK


def _nics(values) -> dict:
    out = {}
    for v in values or []:
        old, sep, new = v.partition("=")
        if not sep or not old or not new:
            raise ConfigError(f"--nic {v}: expected ORIGINAL=NIC, the original interface's "
                              f"name and a NIC here by name or MAC, e.g. --nic ens3=enp1s0")
        out[old] = new
    return out


def do_finalize(s: Session, runner: Runner, restart: bool = False, nic_pins=None) -> dict:
    if not os.path.ismount(s.target):
        raise FinalizeError(f"nothing is mounted at {s.target}: finalize works on a restored "
                            f"system mounted there (run recover, or `amdr-recover mount` "
                            f"first)")
    fp = s.finalize_plan(runner, nic_pins=nic_pins)
    if fp.problems:
        raise FinalizeError("finalize refused, nothing was changed or installed:\n  "
                            + "\n  ".join(fp.problems))
    check_finalize_tools(fp)
    print("finalize:")
    report = finalize_run.apply(fp, runner, s.workdir, restart, host=s.bundle.host)
    if report["changes"]:
        print("finalize changed:")
        print("\n".join(f"  {c}" for c in report["changes"]))
    else:
        print(f"finalize changed nothing: every step was done in an earlier run (journal "
              f"{s.workdir}/finalize.journal) and every device reference resolves")
    for n in report["notes"]:
        print(f"note: {n}")
    for path in report.get("saved") or []:
        print(f"report: {path}")
    return report


def check_finalize_tools(fp):
    """The live system's tools each step runs (what runs in the chroot is the
    restored system's own), probed before anything is changed."""
    needs: dict[str, list[str]] = {}
    for a in fp.actions:
        for argv in a.render():
            needs.setdefault(argv[0], []).append(a.id)
    doctor.require(needs, "finalize")


def cmd_finalize(args) -> int:
    s = _session(args)
    do_finalize(s, Runner(), args.restart, _nics(args.nic))
    return EXIT_OK


def cmd_recover(args) -> int:
    if args.answers:
        from . import unattended
        given = [o for o, v in (("--bundle", args.bundle), ("--map", args.map),
                                ("--vtapes", args.vtapes), ("--gnupghome", args.gnupghome),
                                ("--yes", args.yes)) if v]
        if given:
            raise ConfigError(f"--answers takes the recovery from the file: {', '.join(given)} "
                              f"belong in it (host.bundle, disks.map, plan.vtapes, "
                              f"unlock.gnupghome, confirm)")
        return unattended.run(args, lambda argv: build_parser().parse_args(argv), cmd_recover)
    if not args.bundle or not args.target:
        raise ConfigError("recover needs --bundle and --target (or --answers FILE)")
    s = _session(args)
    runner = Runner()
    # plan the restores first: a bundle that cannot restore anything must
    # be found out before the disks are wiped
    try:
        lib, steps, planned_errors = planned_restores(s, args.dle)
    except CatalogError as e:
        raise CatalogError(f"nothing can be restored, so no disk was touched: {e}") from None
    if not steps:
        msgs = "\n  ".join(m for _, _, m in planned_errors) or \
            "no DLE of this host in the disklist"
        raise AmdrError(f"nothing can be restored, so no disk was touched:\n  {msgs}")
    check_restore_tools(_dles(steps), lib)  # and diskinit's preflight checks its own
    events.emit("plan", host=s.bundle.host,
                dles=[{"dle": f"{st.host}:{st.disk}", "levels": st.chain.levels}
                      for st in steps],
                errors=[m for _, _, m in planned_errors])
    while planned_errors and go_on_without(planned_errors, args.allow_partial) == "retry":
        lib, steps, planned_errors = planned_restores(s, args.dle)
        print(f"checked again: {len(steps)} DLE(s) can be restored, "
              f"{len(planned_errors)} cannot", flush=True)
        if not steps:
            raise AmdrError("nothing can be restored, so no disk was touched:\n  "
                            + "\n  ".join(m for _, _, m in planned_errors))
    if not args.no_finalize:
        s.disk_plan(runner)  # the mapping finalize plans with (and diskinit's refusals)
        fin = s.finalize_plan(runner, from_bundle=True, nic_pins=_nics(args.nic))
        if fin.problems:
            raise FinalizeError("the restored system could not be made to boot, so no disk "
                                "was touched:\n  " + "\n  ".join(fin.problems)
                                + "\n  (--no-finalize restores the files anyway)")
    events.emit("step", step="diskinit", state="start")
    actions = do_diskinit(s, runner, args.yes, args.restart)
    events.emit("step", step="diskinit", state="done")
    results, errors = [], []
    events.emit("step", step="restore", state="start")
    try:
        do_restore(s, runner, args.dle, planned=(lib, steps, planned_errors), results=results,
                   errors=errors, jobs=args.jobs, disk_actions=actions,
                   on_error=args.on_error)
    finally:
        end_of_restore(s, results, errors, args.report)
        events.emit("step", step="restore", state="done", restored=len(results),
                    failed=len(errors))
    root_back = any(st.original == "/" for st in steps
                    if (st.host, st.disk) in {(r.host, r.disk) for r in results})
    if getattr(s, "stopped", False):
        print("finalize not run: the recovery was stopped; `amdr-recover restore` restores "
              "what is named above, then `amdr-recover finalize` makes it bootable")
    elif args.no_finalize:
        print("finalize not run (--no-finalize): `amdr-recover finalize` makes it bootable")
    elif not root_back:
        print("finalize not run: the root filesystem was not restored; restore it, then run "
              "`amdr-recover finalize`")
    else:
        if errors:
            print("finalize runs: the root filesystem is back; the DLEs named above are not "
                  "(once restored, run `amdr-recover finalize` again)")
        events.emit("step", step="finalize", state="start")
        do_finalize(s, runner, restart=True, nic_pins=_nics(args.nic))
        events.emit("step", step="finalize", state="done")
    return EXIT_PARTIAL if errors else EXIT_OK


def cmd_mount(args) -> int:
    s = _session(args)
    actions = s.mount_plan(Runner())  # (reading the disks is done even in a dry run)
    m = s.matched
    print(f"Disks of {s.bundle.host} (original -> here):")
    print("\n".join(show.mapping_text(s.layout, m.mapping, m.reasons)))
    print("Mount plan (nothing is wiped or formatted):")
    print("\n".join(show.text(actions)))
    if args.dry_run:
        return EXIT_OK
    runner = Runner()
    activate.record(s.active_file, activate.stack_items(actions))
    print("Applying:")
    for a in actions:
        print(f"  {a.id}")
        a.apply(runner)
    print(f"mounted under {s.target}; when done: amdr-recover umount --target {s.target}")
    return EXIT_OK


def cmd_umount(args) -> int:
    target = os.path.abspath(args.target)
    state_dir = args.state_dir or default_state_dir(target)
    if not args.dry_run and forget_opened(state_dir):
        print("the bundles opened for this recovery are removed from /run")
    if not args.dry_run and forget_home_copies():
        print("the copies of read-only GnuPG homes are removed from /run")
    state = activate.state_path(state_dir)
    recorded = activate.read_state(state)
    active = [i for i in recorded if activate.is_active(i)]
    actions = activate.plan_umount(activate.mounts_under(target), active)
    if not actions:
        if not args.dry_run:
            activate.forget(state, recorded)
        print(f"nothing is mounted under {target}"
              + (", and nothing it recorded is still active" if recorded else ""))
        return EXIT_OK
    if args.dry_run:
        print("\n".join(show.text(actions)))
        return EXIT_OK
    runner = Runner()
    for a in actions:
        print(f"  {a.id}: {show.describe(a)}")
        a.apply(runner)
    activate.forget(state, recorded)
    print(f"nothing is mounted under {target} any more"
          + (" and what was activated is deactivated" if active else ""))
    return EXIT_OK


# -- catalog, restore-tar, restore-dump ------------------------------------------

def _catalog_request(args, extra_volumes=()):
    from .catalog.gather import Request
    return Request(servers=args.server or [], bundles=args.bundle or [],
                   reports=args.reports or [], scan=args.scan or [], disklist=args.disklist,
                   vtapes=args.vtapes or [], volumes=list(args.volume or []) + list(extra_volumes),
                   keys=key_options(args),
                   verify=not args.no_verify)


def _slots(values) -> dict:
    out = {}
    for v in values or []:
        label, sep, slot = v.partition("=")
        if not sep or not slot.isdigit():
            raise ConfigError(f"--slot {v}: expected LABEL=SLOTNUMBER")
        out[label] = int(slot)
    return out


def _device(args, runner, ask=None):
    from .media.devices import changer_from, open_device
    if not args.device:
        return None
    return open_device(args.device, runner, changer_from(args.changer, _slots(args.slot)),
                       ask)


def _media(library, cat):
    """What the positioning is shown for: the named device, else where the catalog saw them."""
    from .media import positioning
    from .media.devices import TapeDrive
    if isinstance(library, TapeDrive):
        return library.media
    if library is not None:
        return positioning.VtapeMedia({lab: library.device(lab) for lab in library.labels})
    return positioning.VtapeMedia(cat.devices)


DEFAULT_MEDIA = ("/run/live/medium", "/media", "/mnt")


def _site(path) -> dict:
    from .site import DEFAULT, SiteError, load_site
    if path is None and not DEFAULT.exists():
        return {}
    try:
        return load_site(path or DEFAULT)
    except SiteError as e:
        raise ConfigError(f"site settings: {e}") from None


def _on_media(name: str | None, media: list[str]) -> str | None:
    """A file the settings name: absolute, else found on one of the media."""
    if not name or os.path.isabs(name):
        return name
    for m in media:
        if os.path.isfile(os.path.join(m, name)):
            return os.path.join(m, name)
    raise ConfigError(f"sftp key {name}: not on any medium here ({', '.join(media) or 'none'})")


def cmd_bundles(args) -> int:
    from . import answers as answers_mod
    from . import store
    a = answers_mod.load(args.answers) if args.answers else None
    site = _site(args.site)
    s = store.Store((a and a.get("bundles", "store")) or args.store)
    media = list(args.media or [])
    if a:
        media += a.get("bundles", "media") or [str(a.path.parent)]
    mailboxes = list(args.mailbox or []) + list((a and a.get("bundles", "mailbox")) or [])
    sftp = (a and a.get("bundles", "sftp")) or None
    if args.sftp:
        who, _, path = args.sftp.partition(":")
        user, _, host = who.rpartition("@")
        if not (user and host and path) or not args.host_key:
            raise ConfigError("--sftp USER@HOST:DIR needs --host-key 'TYPE BASE64' (the "
                              "server's key, pinned: never trusted on first use)")
        sftp = {"host": host, "path": path, "user": user, "host_key": args.host_key,
                "port": args.port, "ssh_key": args.ssh_key}
    elif sftp is None and site.get("sftp"):
        sftp = dict(site["sftp"], ssh_key=_on_media(site["sftp"].get("key"), media))
    if not media and not mailboxes and not sftp:
        media = [m for m in DEFAULT_MEDIA if os.path.isdir(m)]
    problems = store.import_all(s, media, mailboxes, sftp)
    entries = s.newest()
    keys = key_options(args)
    unlock = (a and a.screens.get("unlock")) or {}
    keys["home"] = unlock.get("gnupghome") or keys["home"]
    keys["passphrase_file"] = unlock.get("passphrase-file") or keys["passphrase_file"]
    signers = list(keys["signers"] or []) + list(unlock.get("signers") or []) \
        + [str(f).replace(" ", "").upper() for f in site.get("signers") or []]
    keys["signers"] = signers or None
    if (args.check or "unlock" in ((a and a.screens) or {})) and entries:
        try:
            store.check(entries, **keys)
        finally:
            forget_home_copies()
    if entries:
        print("\n".join(store.table(entries)))
    else:
        print(f"no bundle found (looked in: {', '.join(map(str, media)) or 'no medium'}"
              f"{', mailboxes' if mailboxes else ''}{', sftp' if sftp else ''})")
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    refused = [e for e in entries if e.status.startswith("refused")]
    return EXIT_PARTIAL if problems or refused or not entries else EXIT_OK


def default_iso() -> Path | None:
    """The ISO `make iso` built beside this project, else one installed."""
    from pathlib import Path
    from . import __file__ as here
    roots = [Path(here).resolve().parent.parent / "build" / "iso", Path("/usr/share/amanda-dr")]
    found = [p for r in roots for p in sorted(r.glob("amanda-dr-live-*.iso"))]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def cmd_tui(args) -> int:
    from .tui.app import main as tui_main
    return tui_main(args)


def cmd_assist(args) -> int:
    from . import assist
    return assist.main(args)


def cmd_drill(args) -> int:
    from datetime import datetime
    from pathlib import Path
    from . import drill
    iso = Path(args.iso) if args.iso else default_iso()
    if iso is None or not iso.is_file():
        raise ConfigError(f"no live ISO {'at ' + str(iso) if iso else 'found'}: give --iso "
                          f"(`make iso` builds build/iso/amanda-dr-live-VERSION.iso)")
    vt = [Path(v) for v in (args.vtapes or []) + (args.scan or [])]
    if len(vt) != 1 or not vt[0].is_dir():
        raise ConfigError("the drill reads the volumes from one vtape directory: give "
                          "--vtapes DIR (a chg-disk directory with its slots; tapes: copy "
                          "them into one first)")
    res = drill.run(Path(args.bundle), vt[0], iso, gnupghome=args.gnupghome,
                    passphrase_file=args.passphrase_file, signers=args.signer,
                    catalog=[Path(c) for c in args.catalog_bundle or []],
                    workdir=Path(args.workdir) if args.workdir else None,
                    mem_mb=args.memory, timeout=args.timeout, keep=args.keep, accel=args.accel,
                    say=lambda line: print(line, flush=True))
    text = drill.text(res)
    print(text, end="")
    out = Path(args.report_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"amdr-drill-{res.host}-{datetime.now():%Y%m%dT%H%M%S}"
    stem.with_suffix(".txt").write_text(text)
    stem.with_suffix(".html").write_text(drill.to_html(res))
    stem.with_suffix(".json").write_text(json.dumps(res.to_json(), indent=1) + "\n")
    print(f"report: {stem}.txt, .html, .json")
    return EXIT_OK if res.passed else EXIT_PARTIAL


def cmd_catalog(args) -> int:
    from .catalog import gather
    from .restore import listing
    runner = Runner()
    library = _device(args, runner)
    cat = gather.load(_catalog_request(args, getattr(library, "labels", {}) or ()), runner)
    chains, errors = cat.chains(args.host, args.disk, args.until)
    if args.json:
        print(json.dumps(listing.doc(chains, errors), indent=1))
    else:
        from .media.devices import from_devices
        # the images' files: the named device, else the slots the catalog saw
        files = library if hasattr(library, "image_path") else \
            from_devices(cat.devices or {})
        print("\n".join(listing.text(cat, chains, errors, _media(library, cat), files,
                                  into=args.into)))
    return EXIT_PARTIAL if errors else EXIT_OK


RUNBOOK_TARGET = "/mnt/target"


def cmd_runbook(args) -> int:
    import tempfile
    from .runbook import content, hand, output, page
    forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    bad = [f for f in forms if f not in hand.FORMS]
    if bad or not forms:
        raise ConfigError(f"--forms {args.forms}: expected some of {','.join(hand.FORMS)}")
    output.kind(args.out)  # a wrong name is said before the bundle is opened
    # the bundle is opened for this command only: its plaintext is removed at the end
    with tempfile.TemporaryDirectory(prefix="amdr-runbook-") as state:
        args.state_dir, args.map = state, None
        try:
            s = _session(args)
            if args.bundle_name:
                s.bundle_name = args.bundle_name
            cat = (args.catalog_bundle or [None])[0]
            r = content.from_session(s, args.target, forms, args.tape,
                                     Path(cat).name if cat else None)
        finally:
            forget_opened(state)
    out = output.write(page.document(r), args.out, Runner())
    print(f"runbook of {r.host}: {out} ({len(r.restores)} DLE(s), forms {', '.join(forms)})")
    for e in r.errors:
        print(f"  NOT RESTORABLE {e}")
    return EXIT_PARTIAL if r.errors else EXIT_OK


def cmd_site_plan(args) -> int:
    from pathlib import Path
    from .bundles import open_any
    from .siteplan import check, collect, show
    from .siteplan.schedule import Params, plan_site
    if args.throughput is not None and args.measured:
        raise ConfigError("--throughput and --measured both say the rate: give one")
    how = "given"
    if args.measured:
        rate, how = collect.measured_throughput(args.measured)
    elif args.throughput is not None:
        rate = args.throughput * 1e6
    else:
        rate, how = DEFAULT_MBPS * 1e6, (f"assumed ({DEFAULT_MBPS:.0f} MB/s): give "
                                         f"--throughput MB/s or --measured REPORT.json")
    params = Params(drives=args.drives, throughput=rate, load_s=args.load_seconds,
                    seek_s=args.seek_seconds, rebuild_s=args.rebuild_seconds,
                    streams=args.streams or None)
    params.check()
    keys = key_options(args)
    site = collect.load_site(Path(args.store),
                             lambda p: open_any(p, verify=not args.no_verify, **keys),
                             until=args.until, overrides=collect.priorities(args.priority))
    plan = plan_site(site.hosts, params, site.files)
    plan.notes.insert(0, f"throughput {rate / 1e6:.0f} MB/s per drive, {how}")
    plan.notes += site.notes
    broken = check.violations(plan, site.hosts)
    for v in broken:  # the scheduler's bug, never the site's: say so, do not hide it
        print(f"amdr-recover site-plan: BUG: the plan breaks a rule: {v}", file=sys.stderr)
    if args.html:
        with open(args.html, "w") as f:
            f.write(show.to_html(plan, site.errors))
    if args.runbook:
        from .runbook import output, site as site_runbook
        output.write(site_runbook.document(plan, site.errors, site.bundles), args.runbook,
                     Runner())
    if args.json:
        print(json.dumps(show.to_json(plan, site.errors), indent=1))
    else:
        print("\n".join(show.text(plan, site.errors, reads=not args.brief)))
        if args.html:
            print(f"html: {args.html}")
        if args.runbook:
            print(f"runbook: {args.runbook}")
    return EXIT_PARTIAL if site.errors or broken else EXIT_OK


DEFAULT_MBPS = 100.0


def _restore_one(args, program: str) -> int:
    from pathlib import Path

    from .catalog import gather
    from .restore import single
    from .media.devices import from_devices
    # reading catalogs and headers changes nothing, so it is done even in a dry run
    reader, runner = Runner(), Runner(dry_run=args.dry_run)
    library = _device(args, runner, (lambda text: runner.recorded.append(
        Recorded("prompt", [Cmd([text])]))) if args.dry_run else None)
    if (args.label is None) != (args.filenum is None):
        raise ConfigError("--label and --filenum go together (the image at that file of "
                          "that volume)")
    if args.label is not None:
        if library is None:
            raise ConfigError("--label/--filenum need --device (the volume's slot, vtape "
                              "directory or tape drive)")
        chain = single.single_image(library, reader, args.host, args.disk, args.label,
                                    args.filenum)
        if chain.dumps[0].level > 0:
            print(f"note: {args.label} file {args.filenum} is a level {chain.dumps[0].level} "
                  f"image: it applies on top of the lower levels restored before it",
                  file=sys.stderr)
    else:
        req = _catalog_request(args, getattr(library, "labels", {}) or ())
        if req.empty:
            raise ConfigError("which image? give --label and --filenum, or a catalog source "
                              "(--server, --bundle, --reports, --scan) to restore the chain")
        cat = gather.load(req, reader)
        chain = single.chain_from(cat, args.host, args.disk, args.until)
        library = library or from_devices(cat.devices)
        if library is None:
            raise ConfigError(f"no device here holds {', '.join(chain.volumes())}: give "
                              f"--device (vtape directory, slot or tape drive)")
    single.check_program(chain, program)
    into = Path(os.path.abspath(args.into))
    if not args.dry_run:
        single.guard_into(into, args.force)
        check_restore_tools([(f"{chain.host}:{chain.disk}", program)], library,
                            f"restore-{program.lower()}")
    for d in chain.dumps:
        where = ", ".join(f"{p.label} file {p.filenum}" for p in d.parts)
        print(f"{chain.host}:{chain.disk} level {d.level} of {d.date} from {where}")
    r = single.restore(runner, chain, program, into, library)
    if args.dry_run:
        for rec in runner.recorded:
            if rec.kind == "prompt":
                print(f"# {rec.commands[0].argv[0]}")
                continue
            print(" | ".join((f"runuser -u {c.user} -- " if c.user else "") + display(c.argv)
                             for c in rec.commands))
        return EXIT_OK
    mb = r.bytes / 1e6
    print(f"restored {r.host}:{r.disk} levels {','.join(map(str, r.levels))} into "
          f"{r.directory}: {mb:.1f} MB in {r.seconds:.1f} s")
    return EXIT_OK


def cmd_restore_tar(args) -> int:
    return _restore_one(args, "GNUTAR")


def cmd_restore_dump(args) -> int:
    return _restore_one(args, "DUMP")


def catalog_sources(g, bundle_flag: str):
    """Where a catalog can be read: the same options for `catalog` and the restores."""
    g.add_argument(bundle_flag, action="append", metavar="PATH",
                   help="the Amanda server's bundle: sealed (HOST-...amdr.gpg) or a bundle "
                        "directory (repeatable; opened with the same keys)")
    g.add_argument("--server", action="append", metavar="CONF",
                   help="the live Amanda server's configuration CONF, on this machine "
                        "(repeatable); for restore and recover with --config CONF: the "
                        "live server HOST to restore through")
    g.add_argument("--reports", nargs="+", action="extend", metavar="FILE",
                   help="Amanda's report mails, mbox files or directories of them")
    g.add_argument("--scan", nargs="+", action="extend", metavar="DEVICE",
                   help="read the volumes' headers: vtape directories, slots, tape drives")


def _catalog_options(sp):
    g = sp.add_argument_group("catalog sources (any combination)")
    catalog_sources(g, "--bundle")
    g.add_argument("--disklist", metavar="FILE",
                   help="a disklist, for the real disk names in reports")
    add_key_options(g)
    g = sp.add_argument_group("volumes")
    g.add_argument("--vtapes", action="append", metavar="DIR",
                   help="a chg-disk directory whose volumes are at hand (besides the ones "
                        "the configurations name)")
    g.add_argument("--volume", action="append", metavar="LABEL",
                   help="a volume at hand (repeatable)")
    g.add_argument("--device", help="where to read: chg-disk:DIR or DIR (vtapes), "
                   "file:SLOTDIR, tape:/dev/nstN")
    g.add_argument("--changer", metavar="SPEC",
                   help="with a tape drive: amtape:CONFIG or mtx:/dev/sgN (default: ask "
                        "for each volume)")
    g.add_argument("--slot", action="append", metavar="LABEL=N",
                   help="with --changer mtx: the slot of a volume (repeatable)")
    sp.add_argument("--until", help="the state as of this Amanda datestamp (default: newest)")


EXAMPLES = {
    "plan": ("Show the disk mapping, every disk action and the restore plan; change "
             "nothing.",
             "amdr-recover plan --bundle web1-20261122T030000Z.amdr.gpg --catalog-bundle "
             "backup1-20261122T030000Z.amdr.gpg --target /mnt/target"),
    "diskinit": ("Wipe the mapped disks and recreate their partitions, RAID, LUKS, LVM and "
                 "filesystems with the original identities, mounted under --target.",
                 "amdr-recover diskinit --bundle web1-....amdr.gpg --target /mnt/target "
                 "--map /dev/sda=/dev/vdb"),
    "restore": ("Restore every DLE of the host into the mounted --target, level 0 then "
                "each incremental.",
                "amdr-recover restore --bundle web1-....amdr.gpg --catalog-bundle "
                "backup1-....amdr.gpg --target /mnt/target"),
    "recover": ("diskinit, then restore: the whole host back from its bundle and the "
                "volumes.",
                "amdr-recover recover --bundle web1-....amdr.gpg --catalog-bundle "
                "backup1-....amdr.gpg --target /mnt/target --vtapes /srv/vtapes"),
    "finalize": ("Make the restored system under --target boot on these disks and this "
                 "hardware: empty its /proc, /sys, /dev, /run; check every device reference "
                 "(fstab, crypttab, resume, kernel command line) and rewrite the renamed "
                 "ones; mdadm.conf; the new NICs get the old names; initramfs; GRUB for the "
                 "original's firmware and its EFI entry; file capabilities. `recover` runs "
                 "it; run it alone for a second try (it continues from its journal).",
                 "amdr-recover finalize --bundle web1-....amdr.gpg --target /mnt/target"),
    "mount": ("Find the disks of an existing (recreated or restored) system again, "
              "assemble, open, activate and mount them under --target; nothing is wiped.",
              "amdr-recover mount --bundle web1-....amdr.gpg --target /mnt/target"),
    "umount": ("Unmount everything under --target, deactivate what mount or diskinit "
               "activated, and remove the bundles opened for this recovery from /run.",
               "amdr-recover umount --target /mnt/target"),
    "catalog": ("Every DLE's restore chain (volumes and file numbers) from the sources "
                "named; exit 1 when a DLE has none.",
                "amdr-recover catalog --bundle backup1-....amdr.gpg --scan /srv/vtapes"),
    "site-plan": ("After a fire or a flood: the Amanda server first (restored, then its "
                  "database rebuilt), then every host by priority (smallest first among "
                  "equals); which volume goes in which drive when, what is read from it, "
                  "when each host starts and is back.  Reads the newest bundle of each "
                  "host in --store (the server's holds the catalog); changes nothing.  "
                  "Exit 1 when a DLE has no restore chain (named).",
                  "amdr-recover site-plan --store /run/amanda-dr/bundles --drives 4 "
                  "--throughput 160"),
    "runbook": ("One printable document for a host: identity, disks (layout, UUIDs, "
                "labels), network, every DLE's chain (levels, volumes, file numbers), the "
                "three steps with amanda-dr, and every command to recover it by hand from a "
                "plain rescue system (the commands amanda-dr itself runs).  No passphrase, "
                "key or /etc/shadow line is in it.  Exit 1 when a DLE has no chain (named).",
                "amdr-recover runbook --bundle web1-20260301T020000Z.amdr.gpg "
                "--catalog-bundle backup1-20260301T030000Z.amdr.gpg --out web1.pdf"),
    "restore-tar": ("Restore one GNU tar DLE (one image, or its chain) into a directory.",
                    "amdr-recover restore-tar --host web1 --disk /srv --into /mnt/srv "
                    "--scan /srv/vtapes"),
    "restore-dump": ("Restore one dump DLE (one image, or its chain) into a directory.",
                     "amdr-recover restore-dump --host web1 --disk /dev/sda2 --into /mnt/data "
                     "--device file:/srv/vtapes/slot3 --label DAILY-03 --filenum 2"),
}


def _nic_option(sp):
    sp.add_argument("--nic", action="append", metavar="ORIG=NIC",
                    help="the original interface ORIG is this NIC here (name or MAC); "
                         "default: matched by driver, then in order (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amdr-recover", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, bundle=True, restores=True, answers=False):
        if answers:
            sp.add_argument("--answers", metavar="FILE",
                            help="an answers file (YAML keyed by the recovery's screens): "
                                 "the bundle, key, volumes, disks and confirm: HOSTNAME are "
                                 "taken from it, checked before any disk is touched; no "
                                 "terminal needed (see recovery/answers.py)")
        if bundle:
            sp.add_argument("--bundle", required=not answers,
                            help="sealed bundle (HOST-...amdr.gpg) or bundle directory")
            add_key_options(sp)
            sp.add_argument("--map", action="append", metavar="OLD=NEW",
                            help="original disk OLD is disk NEW here (repeatable)")
            sp.add_argument("--luks-key-file", metavar="FILE",
                            help="key file for the LUKS containers (all of its bytes are "
                                 "the key; default: a passphrase asked on the terminal)")
            if restores:
                sp.add_argument("--amanda-host", help="the host's name in the Amanda disklist")
                sp.add_argument("--vtapes", help="chg-disk directory holding the volumes "
                                "(default: the one in the catalog's amanda.conf)")
                sp.add_argument("--until", metavar="DATESTAMP",
                                help="restore the state as of this Amanda datestamp "
                                     "(YYYYMMDD or YYYYMMDDhhmmss; default: the newest)")
                g = sp.add_argument_group(
                    "where the catalog is (a client's bundle has none: the server has it)")
                catalog_sources(g, "--catalog-bundle")
                g = sp.add_argument_group(
                    "or restore through the live Amanda server (amrecover; its catalog, "
                    "volumes and recovery-limit)")
                g.add_argument("--config", metavar="CONF",
                               help="the server's Amanda configuration; with --server HOST "
                                    "(the server's name): every DLE through amrecover")
                g.add_argument("--auth", default="bsdtcp",
                               help="amrecover's authentication (default bsdtcp: amandad "
                                    "under inetd on the server, port 10080)")
        sp.add_argument("--target", required=not answers,
                        help="the directory the system is (to be) mounted under"
                             + (" (with --answers: run.target, else /mnt/target)"
                                if answers else ""))
        sp.add_argument("--state-dir", metavar="DIR",
                        help="the diskinit journal, scratch mounts and what is active "
                             "(default: TARGET.amdr, beside the target)")

    for name, fn, helptext in (("plan", cmd_plan, "show what would be done"),
                               ("diskinit", cmd_diskinit, "recreate and mount the disks"),
                               ("restore", cmd_restore, "restore into mounted target"),
                               ("recover", cmd_recover, "diskinit + restore")):
        what, example = EXAMPLES[name]
        sp = sub.add_parser(name, help=helptext, description=what,
                            epilog=f"example: {example}")
        common(sp, answers=name == "recover")
        if name in ("restore", "recover"):
            sp.add_argument("--dle", action="append", metavar="DISK",
                            help="restore only this DLE (its disk name; repeatable)")
            sp.add_argument("--report", metavar="FILE",
                            help="write the per-DLE results as JSON to FILE")
            sp.add_argument("--jobs", type=int, metavar="N",
                            help="DLEs restored at once (default: 2 on vtapes with two "
                                 "cores or more, 1 on a tape drive); a DLE waits for the "
                                 "one whose directory holds it, and no volume is read by "
                                 "two at once")
            sp.add_argument("--on-error", choices=("ask", "skip", "stop"), default="ask",
                            help="a DLE whose restore fails: ask (retry, skip, stop) when "
                                 "a person can answer, else skip it and go on (default); "
                                 "skip; or stop the run there")
        if name == "restore":
            sp.add_argument("--restart", action="store_true",
                            help="restore every DLE anew (a re-run otherwise skips the images "
                                 "its journal says are restored, and redoes the interrupted "
                                 "one)")
        if name in ("diskinit", "recover"):
            sp.add_argument("--yes", action="store_true",
                            help="do not ask before wiping the mapped disks")
            sp.add_argument("--restart", action="store_true",
                            help="start over: set the journal of earlier runs aside and "
                                 "recreate every disk (a re-run otherwise continues, "
                                 "skipping what is done and still on the disks)")
        if name in ("plan", "recover"):
            _nic_option(sp)
        if name == "recover":
            sp.add_argument("--no-finalize", action="store_true",
                            help="restore the files only; do not make the system bootable")
            sp.add_argument("--allow-partial", action="store_true",
                            help="when the check made before any wipe finds DLEs that cannot "
                                 "be restored (named), recreate the disks and restore the "
                                 "others anyway (without it: asked on a terminal, else "
                                 "refused)")
        if name == "plan":
            sp.add_argument("--json", action="store_true",
                            help='print {"mapping", "disks", "restores", "errors"} for '
                                 "programs")
        sp.set_defaults(func=fn)
    sp = sub.add_parser("finalize", help="make the restored system under --target bootable "
                        "here", description=EXAMPLES["finalize"][0],
                        epilog=f"example: {EXAMPLES['finalize'][1]}")
    common(sp, restores=False)
    _nic_option(sp)
    sp.add_argument("--restart", action="store_true",
                    help="run every step again (a re-run otherwise skips what its journal "
                         "says is done)")
    sp.set_defaults(func=cmd_finalize)
    sp = sub.add_parser("mount", help="activate and mount an existing system under --target "
                        "(no wiping, no formatting)", description=EXAMPLES["mount"][0],
                        epilog=f"example: {EXAMPLES['mount'][1]}")
    common(sp, restores=False)
    sp.add_argument("--dry-run", action="store_true", help="show the plan only")
    sp.set_defaults(func=cmd_mount)
    sp = sub.add_parser("umount", help="unmount everything under --target and deactivate "
                        "what was activated", description=EXAMPLES["umount"][0],
                        epilog=f"example: {EXAMPLES['umount'][1]}")
    common(sp, bundle=False)
    sp.add_argument("--dry-run", action="store_true", help="show the plan only")
    sp.set_defaults(func=cmd_umount)

    sp = sub.add_parser("bundles", help="find bundles on media, in mailboxes, on an sftp "
                        "server; list the newest per host",
                        description="Copy every bundle found (attached media, mbox or "
                        "Maildir files holding the mail amdr-essentials sent, an sftp "
                        "server with a pinned host key) into the store and list the newest "
                        "of each host; with --check open each with the recovery key: usable, "
                        "or refused and why.  Exit 1 when nothing was found, a source could "
                        "not be read or a bundle is refused.",
                        epilog="example: amdr-recover bundles --media /media/usb --check")
    sp.add_argument("--media", action="append", metavar="DIR",
                    help="a mounted medium or directory (repeatable; default: the live "
                         "system's boot medium, /media, /mnt)")
    sp.add_argument("--mailbox", action="append", metavar="PATH",
                    help="an mbox file or a Maildir with the bundles' mail (repeatable)")
    sp.add_argument("--sftp", metavar="USER@HOST:DIR", help="fetch the newest bundle of "
                    "each host from this sftp directory")
    sp.add_argument("--host-key", metavar="'TYPE BASE64'",
                    help="the sftp server's public host key (its .pub file's line)")
    sp.add_argument("--port", type=int, default=22, help="the sftp server's port")
    sp.add_argument("--ssh-key", metavar="FILE", help="the private key to log in with")
    sp.add_argument("--store", default="/run/amanda-dr/bundles",
                    help="where the bundles are kept (default: /run/amanda-dr/bundles, in "
                         "memory)")
    sp.add_argument("--check", action="store_true",
                    help="open each newest bundle with the recovery key: usable or refused")
    sp.add_argument("--answers", metavar="FILE",
                    help="take the sources (bundles:) and the key (unlock:, then checked) "
                         "from an answers file; its directory is a medium too")
    sp.add_argument("--site", metavar="FILE",
                    help="site settings: the sftp source and the accepted signers "
                         "(default: /etc/amanda-dr/site.yaml when there)")
    add_key_options(sp)
    sp.set_defaults(func=cmd_bundles)

    sp = sub.add_parser("tui", help="the recovery as screens: pick the host, give the "
                        "passphrase, type the host name; the rest runs by itself",
                        description="The text UI (urwid) of the live system: welcome, "
                        "bundles, host, unlock, disks, plan, confirm, run, summary.  Screens "
                        "whose defaults are right are passed; Esc goes back.  With --answers "
                        "the answers file answers its screens; without a terminal it runs "
                        "headless with plain lines, and a screen it leaves unanswered ends "
                        "the run before anything is wiped (exit 4).",
                        epilog="example: amdr-recover tui --answers /media/AMDR/amdr-answers.yaml")
    sp.add_argument("--answers", metavar="FILE", help="an answers file (recovery/answers.py)")
    sp.add_argument("--target", help="where the system is recreated (default /mnt/target)")
    sp.add_argument("--store", help="the bundle store (default /run/amanda-dr/bundles)")
    sp.add_argument("--media", action="append", metavar="DIR",
                    help="where bundles are looked for (default: /run/live/medium, /media, "
                         "/mnt)")
    sp.add_argument("--vtapes", metavar="DIR", help="the volumes' chg-disk directory "
                    "(default: the catalog's)")
    sp.add_argument("--gnupghome", help="GnuPG home with the recovery key")
    sp.add_argument("--signer", action="append", metavar="FINGERPRINT",
                    help="accept bundles signed by this key (repeatable)")
    sp.add_argument("--no-finalize", action="store_true",
                    help="restore the files only; do not make the system bootable")
    sp.add_argument("--assist", metavar="OPTIONS",
                    help="more options for `assist call` when F9 calls the office (e.g. "
                         "'--settings site.yaml --sshd-port 2200')")
    sp.add_argument("--assist-state", metavar="DIR",
                    help="remote assist's state directory (default /run/amanda-dr/assist)")
    sp.set_defaults(func=cmd_tui)

    sp = sub.add_parser("assist", help="remote assist: call the office (an outbound SSH "
                        "tunnel), let it type, end it",
                        description=("The office sees and then drives this recovery "
                                     "through an outbound SSH connection to its jump host "
                                     "(recovery/assist.py): call starts it (and keeps it "
                                     "up), approve lets the office type, end closes it."),
                        epilog="example: amdr-recover assist call   (settings from "
                               "/etc/amanda-dr/site.yaml office:, or the bundle's assist:)")
    sp.add_argument("action", choices=("call", "approve", "end", "status", "attach", "lan",
                                       "lan-off", "watch"),
                    help="call: open the tunnel and keep it up (runs until ended); "
                         "approve: let the office's clients type; end: close the tunnel, "
                         "remove the office's keys, detach them; status: one line; "
                         "lan / lan-off: on the same LAN, sshd on port 2200 with a password "
                         "made for this boot (shown, never logged); "
                         "attach: sshd's forced command for an office key; watch: "
                         "follows who comes and goes (lan starts it)")
    sp.add_argument("--state", default="/run/amanda-dr/assist",
                    help="the assist's state directory (default %(default)s)")
    sp.add_argument("--settings", metavar="FILE",
                    help="site settings with office: (default: the image's site.yaml, "
                         "else the bundle's assist:)")
    sp.add_argument("--key", metavar="FILE",
                    help="this system's private key for the jump host (default: the "
                         "settings' key; none: one is made and its line shown)")
    sp.add_argument("--sshd-port", type=int, default=22,
                    help="this system's sshd, where the office's port leads")
    sp.add_argument("--session", default="amdr", help="the tmux session the office sees")
    sp.add_argument("--host-key-pub", default="/etc/ssh/ssh_host_ed25519_key.pub",
                    help="this system's sshd host key (its fingerprint is read out)")
    sp.add_argument("--who", help="attach, approve: the office member (key comment)")
    sp.set_defaults(func=cmd_assist)

    sp = sub.add_parser("drill", help="the kit's own test: recover a host from its bundle "
                        "and volumes in qemu with the live ISO, boot the result, report",
                        description="Make blank sparse disks of the original sizes, boot "
                        "the live ISO in qemu with them, the bundle, the key and the volumes; "
                        "it recovers unattended (an answers file) and powers off; then the "
                        "restored disks boot alone with the original's firmware and NIC "
                        "address and say what they are.  The report (text, HTML, JSON) says "
                        "passed or failed, each step's seconds, what finalize changed.  Exit "
                        "0 passed, 1 failed.",
                        epilog="example: amdr-recover drill --bundle web1-....amdr.gpg "
                        "--vtapes /srv/vtapes --iso amanda-dr-live-0.1.0.iso")
    sp.add_argument("--bundle", required=True, help="the host's sealed bundle")
    sp.add_argument("--catalog-bundle", action="append", metavar="PATH",
                    help="the Amanda server's bundle, when the host's has no catalog")
    sp.add_argument("--vtapes", action="append", metavar="DIR",
                    help="the chg-disk directory holding the host's volumes (shared "
                         "read-only with the live system)")
    sp.add_argument("--scan", action="append", metavar="DIR", help="the same as --vtapes")
    sp.add_argument("--iso", help="the live ISO (default: the newest make iso built)")
    sp.add_argument("--workdir", help="where the disks and consoles go (default: a new "
                    "private directory under $TMPDIR; it needs the restored data's size)")
    sp.add_argument("--report-dir", default=".", help="where the reports are written "
                    "(default: here)")
    sp.add_argument("--memory", type=int, default=2048, help="MiB for the machine "
                    "(default 2048)")
    sp.add_argument("--timeout", type=float, default=3600,
                    help="seconds the live system may take to recover (default 3600)")
    sp.add_argument("--keep", action="store_true", help="keep the restored disk images")
    sp.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto",
                    help="qemu's accelerator (default auto: KVM when a KVM guest runs a "
                         "kernel here, else software emulation)")
    add_key_options(sp)
    sp.set_defaults(func=cmd_drill)

    sp = sub.add_parser("catalog", help="restore chains of every DLE; exit 1 when one "
                        "has none", description=EXAMPLES["catalog"][0],
                        epilog=f"example: {EXAMPLES['catalog'][1]}")
    _catalog_options(sp)
    sp.add_argument("--host", action="append", help="only this host (repeatable)")
    sp.add_argument("--disk", action="append", help="only this disk (repeatable)")
    sp.add_argument("--json", action="store_true",
                    help='print {"chains": [...], "errors": [...]} for programs')
    sp.add_argument("--into", default="DIR", metavar="DIR",
                    help="the directory the printed commands restore into (default: DIR, "
                         "to be replaced)")
    sp.set_defaults(func=cmd_catalog)
    sp = sub.add_parser("site-plan", help="plan a whole site's recovery: the server "
                        "first, volumes on drives, when each host is back",
                        description=EXAMPLES["site-plan"][0],
                        epilog=f"example: {EXAMPLES['site-plan'][1]}")
    sp.add_argument("--store", default="/run/amanda-dr/bundles", metavar="DIR",
                    help="the bundles of the site, the newest of each host taken (default: "
                         "/run/amanda-dr/bundles, where `bundles` puts them)")
    sp.add_argument("--drives", type=int, default=1, metavar="N",
                    help="tape drives (or readers) at once (default 1)")
    sp.add_argument("--throughput", type=float, metavar="MB/s",
                    help="what one drive reads and restores, in MB/s (default: measured "
                         f"by --measured, else {DEFAULT_MBPS:.0f})")
    sp.add_argument("--measured", action="append", metavar="REPORT.json",
                    help="take the throughput from the last recoveries' restore reports "
                         "(restore-report.json; repeatable)")
    sp.add_argument("--load-seconds", type=float, default=60.0, metavar="S",
                    help="unload, load and position a volume (default 60)")
    sp.add_argument("--seek-seconds", type=float, default=10.0, metavar="S",
                    help="space to a file further on or back on a loaded volume (default "
                         "10; reading over the files between is used when shorter)")
    sp.add_argument("--rebuild-seconds", type=float, default=600.0, metavar="S",
                    help="rebuild the Amanda server's database after its restore "
                         "(default 600)")
    sp.add_argument("--streams", type=int, default=2, metavar="N",
                    help="images one host restores at once, as recover --jobs (default 2; "
                         "0: no limit)")
    sp.add_argument("--priority", action="append", metavar="HOST=N",
                    help="this host's priority, 1 first (over its bundle's; repeatable)")
    sp.add_argument("--until", metavar="DATESTAMP",
                    help="the state as of this Amanda datestamp (default: the newest)")
    sp.add_argument("--brief", action="store_true",
                    help="each volume's load without the list of its reads")
    sp.add_argument("--json", action="store_true",
                    help='print {"hosts", "drives", "makespan", "bound", ...} for programs')
    sp.add_argument("--html", metavar="FILE", help="also write the plan as one HTML page")
    sp.add_argument("--runbook", metavar="FILE.{html,pdf}",
                    help="also write the site's runbook (the plan for paper: A4, black and "
                         "white, each host's runbook named); .pdf through WeasyPrint")
    add_key_options(sp)
    sp.set_defaults(func=cmd_site_plan)
    sp = sub.add_parser("runbook", help="a host's printable runbook (HTML or PDF)",
                        description=EXAMPLES["runbook"][0],
                        epilog=f"example: {EXAMPLES['runbook'][1]}")
    sp.add_argument("--bundle", required=True,
                    help="the host's bundle: sealed (HOST-...amdr.gpg) or a bundle directory")
    add_key_options(sp)
    sp.add_argument("--out", required=True, metavar="FILE.{html,pdf}",
                    help="where to write it; .pdf is rendered with WeasyPrint")
    sp.add_argument("--target", default=RUNBOOK_TARGET,
                    help=f"where the printed commands rebuild the system (default "
                         f"{RUNBOOK_TARGET})")
    sp.add_argument("--forms", default="vtape,tape,tape-dd",
                    help="how the volumes are read in the by-hand commands, some of "
                         "vtape (the volumes' files, or amrestore on a slot), tape "
                         "(mt and amrestore), tape-dd (mt and dd, no Amanda) "
                         "(default: all three)")
    sp.add_argument("--tape", default="/dev/nst0", metavar="DEV",
                    help="the tape drive the tape forms name (default /dev/nst0)")
    sp.add_argument("--bundle-name", metavar="NAME",
                    help="the bundle's name as it is delivered (default: --bundle's file "
                         "name; amdr-essentials gives the sealed bundle's)")
    sp.add_argument("--amanda-host", help="the host's name in the Amanda disklist")
    sp.add_argument("--vtapes", help="chg-disk directory holding the volumes (default: the "
                    "one in the catalog's amanda.conf): their files and headers are shown")
    sp.add_argument("--until", metavar="DATESTAMP",
                    help="the state as of this Amanda datestamp (default: the newest)")
    g = sp.add_argument_group("where the catalog is (a client's bundle has none: the "
                              "server has it)")
    catalog_sources(g, "--catalog-bundle")
    sp.set_defaults(func=cmd_runbook)
    for name, fn, tool in (("restore-tar", cmd_restore_tar, "amrestore -p | tar -xpG"),
                           ("restore-dump", cmd_restore_dump, "amrestore -p | restore -rf -")):
        sp = sub.add_parser(name, help=f"restore one DLE into a directory ({tool})",
                            description=EXAMPLES[name][0],
                            epilog=f"example: {EXAMPLES[name][1]}")
        sp.add_argument("--host", required=True, help="the DLE's host as Amanda names it")
        sp.add_argument("--disk", required=True, help="the DLE's disk (mountpoint or device) "
                        "as Amanda names it")
        sp.add_argument("--into", required=True, help="directory to restore into (empty)")
        sp.add_argument("--label", help="the volume of the one image to restore")
        sp.add_argument("--filenum", type=int, help="its file number (the label is file 0)")
        sp.add_argument("--force", action="store_true",
                        help="restore into a directory that is not empty")
        sp.add_argument("--dry-run", action="store_true", help="show the commands only")
        _catalog_options(sp)
        sp.set_defaults(func=fn)
    from .amserver import cli as amserver_cli
    amserver_cli.register(sub)
    doctor.register(sub, ("recovery",), "amdr-recover")
    return p


def main(argv=None) -> int:
    """SIGTERM and SIGHUP (a closed ssh session, a timeout) unwind like Ctrl-C, so
    every `finally` runs: running restores are killed, the Amanda keys put in
    ~backup for the run are taken away, the report is written."""
    import signal
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    with cliutil.signals_unwind():
        try:
            return cliutil.run("amdr-recover", build_parser(), argv)
        except cliutil.Terminated as e:
            print(f"amdr-recover: stopped by {signal.Signals(e.signum).name}; run the same "
                  f"command again to continue (the journals know what is done)",
                  file=sys.stderr)
            return 3


if __name__ == "__main__":
    sys.exit(main())
