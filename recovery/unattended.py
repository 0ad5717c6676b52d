"""A whole recovery from an answers file, with no person and no terminal.

`amdr-recover recover --answers FILE`: the screens' answers in their order.
Everything is checked before any disk is touched: the file itself, the
bundle (found in the sources named, opened with the key named, its signer
accepted), and `confirm:` equal to the bundle's host.  Then the same
`recover` a person would type runs (the same parser checks its command
line), the reports are copied where `summary.report` says, and
`summary.then` happens (power-off and reboot only on the live system).
Progress goes out as plain lines, for logs and serial consoles.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from essentials.errors import EXIT_REFUSED, AmdrError, ConfigError, RefusedError

from . import answers as answers_mod
from . import store

LIVE_MARKS = ("/run/live/medium", "/etc/amanda-dr/live")
STORE = "/run/amanda-dr/bundles"


def is_live() -> bool:
    return any(os.path.exists(p) for p in LIVE_MARKS)


def say(msg: str) -> None:
    print(f"answers: {msg}", flush=True)


class Stop(AmdrError):
    """The answers end before the wipe: a person goes on from here."""

    exit_code = EXIT_REFUSED


def original_network(net: dict) -> str | None:
    """The original host's static IPv4 address, gateway and DNS from its
    bundle's network.yaml, as amdr.net's static:ADDR/PREFIX,GW,DNS,MAC (the
    MAC picks the NIC when it is here, else the first link with a carrier)."""
    for nic in net.get("interfaces") or []:
        if not nic.get("physical"):
            continue
        for a in nic.get("addresses") or []:
            if a.get("family") == "inet":
                gw = next((r.get("gateway") for r in net.get("default_routes") or []
                           if r.get("family") == "inet" and r.get("dev") == nic.get("name")),
                          "")
                dns = next((d for d in (net.get("dns") or {}).get("nameservers") or []
                            if ":" not in d), "")
                return f"static:{a['address']}/{a['prefix']},{gw or ''},{dns},{nic.get('mac', '')}"
    return None


def network(a: answers_mod.Answers, entry: store.Entry | None = None) -> None:
    net = a.get("welcome", "network")
    if not net or (net == "original") != (entry is not None):
        return  # "original" waits for the bundle; the others come first
    if net == "original":
        from .bundles import open_any
        u = a.screens.get("unlock") or {}
        b = open_any(entry.path, home=u.get("gnupghome"), passphrase_file=u.get("passphrase-file"),
                     signers=u.get("signers"), interactive=False)
        net = bundle_network(b)
        if net is None:
            return
    for line in set_network(net):
        say(line)


def bundle_network(bundle, say=say) -> str | None:
    """welcome.network original: the host's own static address from its bundle."""
    doc = bundle.load_yaml("network/network.yaml") if bundle.has("network/network.yaml") \
        else {}
    spec = original_network(doc or {})
    if spec is None:
        say("welcome.network original: the bundle has no static IPv4 address; the network "
            "is left as it is")
    return spec


def set_network(net: str) -> list[str]:
    """amdr-net --apply NET on the live system (dhcp, none, static:...), then
    the addresses it has: the lines to show."""
    tool = shutil.which("amdr-net") or ("/usr/local/sbin/amdr-net"
                                        if os.path.exists("/usr/local/sbin/amdr-net") else None)
    if not is_live() or tool is None:
        return [f"welcome.network {net}: set on the live system only; this machine's network "
                f"is left as it is"]
    r = subprocess.run([tool, "--apply", net], capture_output=True, text=True)
    out = [f"welcome.network {net}: "
           f"{(r.stdout + r.stderr).strip() or 'exit ' + str(r.returncode)}"]
    wait = subprocess.run(["/lib/systemd/systemd-networkd-wait-online", "--any", "--timeout=20"],
                          capture_output=True, text=True)
    shown = subprocess.run(["ip", "-br", "-4", "addr", "show", "scope", "global"],
                           capture_output=True, text=True).stdout.split("\n")
    out.append("network now: " + ("; ".join(" ".join(ln.split()) for ln in shown if ln.strip())
                                  or "no address") + ("" if wait.returncode == 0
                                                      else " (not online)"))
    return out


def assist_from_bundle(a: answers_mod.Answers, entry: store.Entry) -> None:
    """welcome.assist: true with no office: in the image's site settings: the
    bundle's assist: settings, now that it is open."""
    from .assist import bundle_settings, call_on_live
    from .site import DEFAULT
    if a.get("welcome", "assist") is not True or DEFAULT.exists() or not is_live():
        return
    from .bundles import open_any
    u = a.screens.get("unlock") or {}
    b = open_any(entry.path, home=u.get("gnupghome"), passphrase_file=u.get("passphrase-file"),
                 signers=u.get("signers"), interactive=False)
    path = bundle_settings(getattr(b, "manifest", None) or {})
    if path is None:
        say("welcome.assist: neither the image's site settings nor the bundle have the "
            "office's settings: nobody is called")
        return
    call_on_live(str(path))
    say("welcome.assist: calling the office with the bundle's settings")


def find_bundle(a: answers_mod.Answers, store_dir: str) -> store.Entry:
    """The bundle the answers pick: host.bundle, else the newest of host.name
    among the bundles the `bundles` screen's sources (default: the attached
    media and the store the live system filled at boot) hold."""
    given = a.get("host", "bundle")
    if given:
        p = Path(given)
        parsed = store.sealed.parse_name(p.name)
        if not p.exists():
            raise ConfigError(f"answers host.bundle: {p}: no such file")
        return store.Entry(p, parsed[0] if parsed else p.name, parsed[1] if parsed else None,
                           "answers file")
    s = store.Store(a.get("bundles", "store", store_dir))
    media = a.get("bundles", "media")
    if media is None:
        from .cli import DEFAULT_MEDIA
        media = [m for m in DEFAULT_MEDIA if os.path.isdir(m)] + [str(a.path.parent)]
    from .cli import _on_media, _site
    sftp = a.get("bundles", "sftp")
    site = _site(None)
    if sftp is None and site.get("sftp"):
        sftp = dict(site["sftp"], ssh_key=_on_media(site["sftp"].get("key"), media))
    problems = store.import_all(s, media, a.get("bundles", "mailbox") or [], sftp)
    for p in problems:
        say(f"bundles: {p}")
    entries = s.newest()
    for line in store.table(entries):
        say(line)
    host = a.host
    if not host:
        raise Stop("the answers name no host (host: NAME): pick one of the bundles above")
    mine = [e for e in entries if e.host == host]
    if not mine:
        raise ConfigError(f"answers host: {host}: no bundle of that host was found (found: "
                          f"{', '.join(e.host for e in entries) or 'none'}); put its bundle "
                          f"on the medium or name the source under bundles:")
    return mine[0]


def unlock(a: answers_mod.Answers, entry: store.Entry) -> None:
    """Open the bundle once with the answers' key: a wrong key or an unaccepted
    signer stops here, before anything else."""
    from .cli import _site
    u = a.screens.get("unlock") or {}
    if entry.path.is_dir():  # an unsealed bundle: recover checks its manifest
        say(f"unlock: {entry.path}: a bundle directory, not sealed")
        return
    signers = list(u.get("signers") or []) + [str(f).replace(" ", "").upper()
                                               for f in _site(None).get("signers") or []]
    store.check([entry], home=u.get("gnupghome"), passphrase_file=u.get("passphrase-file"),
                signers=signers or None)
    say(f"unlock: {entry.path.name}: {entry.status}")
    if entry.status != "usable":
        raise RefusedError(f"the bundle of {entry.host} cannot be used, so no disk was "
                           f"touched: {entry.status}")


def confirm(a: answers_mod.Answers, host: str) -> None:
    if a.confirm is None:
        raise Stop(f"the answers have no confirm: {host}: nothing is wiped without it; the "
                   f"plan is above (amdr-recover plan shows it again)")
    if a.confirm != host:
        raise RefusedError(f"answers confirm: {a.confirm!r} is not the host being recovered "
                           f"({host}): no disk was touched")
    say(f"confirm: {host}: its disks may be wiped")


def summary(a: answers_mod.Answers, target: str, report: Path, rc: int, seconds: float) -> None:
    say(f"run: exit {rc} after {seconds:.0f} s")
    dest = a.get("summary", "report")
    state = Path(target + ".amdr")
    if not dest:
        return
    log = os.environ.get("AMDR_ANSWERS_LOG")  # the live console's copy of these lines
    files = [p for p in (report, state / "finalize-report.json", state / "restore.journal",
                         Path(log) if log else None) if p and p.exists()]
    try:
        with writable(Path(dest)):
            Path(dest).mkdir(parents=True, exist_ok=True)
            for p in files:
                shutil.copy(p, Path(dest) / p.name)
            (Path(dest) / "summary.json").write_text(json.dumps(
                {"exit": rc, "seconds": round(seconds, 1), "host": a.host,
                 "files": [p.name for p in files]}, indent=1) + "\n")
            os.sync()
        say(f"summary: reports in {dest}")
    except OSError as e:
        say(f"summary: could not write the reports to {dest}: {e}")


class writable:
    """The medium the reports go to is mounted read-only on the live system:
    read-write for the copy, then read-only again."""

    def __init__(self, path: Path):
        self.mount = None
        p = path
        while not p.exists():
            p = p.parent
        self.probe = p
        r = subprocess.run(["findmnt", "-n", "-o", "TARGET,OPTIONS", "-T", str(p)],
                           capture_output=True, text=True)
        fields = r.stdout.split()
        if r.returncode == 0 and len(fields) == 2 and "ro" in fields[1].split(","):
            self.mount = fields[0]

    def __enter__(self):
        if self.mount:
            # the filesystem's flag, then (a bind mount) the mount's own
            for opts in ("remount,rw", "remount,bind,rw"):
                subprocess.run(["mount", "-o", opts, self.mount], check=False,
                               capture_output=True)
                if os.access(self.probe, os.W_OK):
                    break

    def __exit__(self, *exc):
        if self.mount:
            os.sync()
            subprocess.run(["mount", "-o", "remount,ro", self.mount], check=False,
                           capture_output=True)


def then(a: answers_mod.Answers, target: str, rc: int) -> None:
    what = a.then(rc == 0)
    if what in ("poweroff", "reboot"):
        if not is_live():
            say(f"summary.then {what}: only on the live system; this machine stays up")
            return
        from .cli import main as cli_main
        cli_main(["umount", "--target", target])
        say(f"summary.then: {what}")
        subprocess.run(["systemctl", what], check=False)
    elif what == "shell":
        say("summary.then: shell")
    else:
        say("summary.then: wait (the restored system is mounted under " + target + ")")


def run(args, parse, recover) -> int:
    """`recover --answers`: parse(argv) -> args and recover(args) -> exit code are
    the CLI's own, so the answers go through the same checks as typed options."""
    try:
        return _run(args, parse, recover)
    finally:
        from .bundles import forget_home_copies
        forget_home_copies()


def _run(args, parse, recover) -> int:
    a = answers_mod.load(args.answers)
    say(f"{a.path}: {', '.join(s for s in answers_mod.SCREENS if s in a.screens) or 'empty'}")
    network(a)
    if a.get("welcome", "assist") == "lan":
        from .assist import State, lan
        try:
            lines = lan(State(), True)
            say(lines[0] + " (the password is on the status line, not in this log)")
        except ConfigError as e:
            say(f"welcome.assist lan: {e}")
    elif a.get("welcome", "assist"):
        if is_live():
            from .assist import call_on_live
            r = call_on_live(a.get("welcome", "assist"))
            say("welcome.assist: calling the office (the status line says how it goes)"
                + (f": {(r.stdout + r.stderr).strip()}" if r.returncode else ""))
        else:
            say("welcome.assist: the office is called from the live system only")
    entry = find_bundle(a, getattr(args, "store", None) or STORE)
    say(f"host: {entry.host}, bundle {entry.path.name} ({entry.source})")
    unlock(a, entry)
    network(a, entry)
    assist_from_bundle(a, entry)
    confirm(a, entry.host)
    target = args.target or a.get("run", "target", "/mnt/target")
    report = Path(target + ".amdr") / "restore-report.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    argv = answers_mod.recover_argv(a, str(entry.path), target) + ["--yes", "--report",
                                                                     str(report)]
    if "--on-error" not in argv:  # nobody is asked in an answers run, even on a terminal
        argv += ["--on-error", "skip"]
    say("recover " + " ".join(argv[1:]))
    t0 = time.monotonic()
    rc = 3
    try:
        rc = recover(parse(argv))
    except AmdrError as e:
        print(f"amdr-recover: {e}", file=sys.stderr, flush=True)
        rc = e.exit_code
    finally:
        if rc == 0 and a.get("run", "drill"):
            from .drill import install_check
            say("run.drill: added to the restored system: " + ", ".join(install_check(target)))
        summary(a, target, report, rc, time.monotonic() - t0)
    then(a, target, rc)
    return rc
