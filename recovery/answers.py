"""The answers file: a whole recovery decided in advance, screen by screen.

YAML keyed by the recovery's screens, in their order (subiquity's
answers.yaml is the model).  Everything is checked before anything runs: an
unknown screen or key is an error naming it, paths are taken relative to the
file's own directory (the medium it sits on), and the wipe needs an explicit
`confirm:` equal to the host's name.  A screen left out takes its default,
the one a person would see proposed.

    welcome:
      network: dhcp                 # dhcp | none | original (the host's static
                                    # address from its bundle) | static:ADDR/PREFIX,GW,DNS[,LINK]
      assist: false                 # call the office at once (remote assist):
                                    # true (the image's or the bundle's settings)
                                    # or a settings file with office: (on the medium),
                                    # or lan: sshd with a password for this boot
    bundles:                        # where bundles are looked for (default:
      media: [.]                    # the attached media); mailbox, sftp too
    host: web1                      # the host to recover (its newest bundle)
    unlock:
      gnupghome: keys/recovery      # the recovery key
      passphrase-file: keys/pass    # (no passphrase: leave it out)
    disks:
      map: {/dev/sda: /dev/vdb}     # default: the proposed match
    plan:
      vtapes: vtapes                # where the volumes are (default: the
                                    # catalog's devices; or server: + config:)
    confirm: web1                   # the host's name: the disks may be wiped
    run:
      allow-partial: false          # restore what can be when a DLE cannot
      on-error: skip                # a DLE that fails: skip (go on with the
                                    # others), stop, or ask (a person at the UI)
      drill: false                  # amdr-recover drill's run: a check unit is
                                    # added to the restored (throw-away) system
    summary:
      report: reports               # a copy of the reports (a directory)
      then: poweroff                # poweroff | reboot | shell | wait
      on-failure: wait              # the same choices when recover failed

The same file runs through `amdr-recover recover --answers FILE` (no
terminal needed) and, screen by screen, through the text UI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from essentials.errors import ConfigError

SCREENS = ("welcome", "bundles", "host", "unlock", "disks", "plan", "confirm", "run",
           "summary")
NETWORK = re.compile(r"^(dhcp|none|original|static:\S+)$")
THEN = ("poweroff", "reboot", "shell", "wait")
ON_ERROR = ("ask", "skip", "stop")

# per screen: key -> (type, is a path)
KEYS: dict[str, dict[str, tuple[type | tuple, bool]]] = {
    "welcome": {"network": (str, False), "assist": ((bool, str), True)},
    "bundles": {"media": (list, True), "mailbox": (list, True), "sftp": (dict, False),
                "store": (str, True)},
    "host": {"name": (str, False), "bundle": (str, True)},
    "unlock": {"gnupghome": (str, True), "passphrase-file": (str, True),
               "signers": (list, False)},
    "disks": {"map": (dict, False), "luks-key-file": (str, True)},
    "plan": {"vtapes": (str, True), "catalog-bundle": (list, True), "server": (str, False), "config": (str, False),
             "auth": (str, False), "amanda-host": (str, False), "until": (str, False),
             "dle": (list, False), "jobs": (int, False), "nics": (dict, False)},
    "run": {"allow-partial": (bool, False), "finalize": (bool, False), "target": (str, False),
            "drill": (bool, False), "on-error": (str, False)},
    "summary": {"report": (str, True), "then": (str, False), "on-failure": (str, False)},
}
SFTP = {"host": str, "port": int, "user": str, "path": str, "host_key": str, "ssh_key": str}


@dataclass
class Answers:
    """The checked answers; paths are absolute."""

    path: Path
    screens: dict = field(default_factory=dict)

    def get(self, screen: str, key: str, default=None):
        return (self.screens.get(screen) or {}).get(key, default)

    @property
    def host(self) -> str | None:
        return self.get("host", "name")

    @property
    def confirm(self) -> str | None:
        return self.screens.get("confirm")

    def then(self, ok: bool) -> str:
        """What follows the run: summary.then, or summary.on-failure (default:
        wait, so a person finds the system as the failure left it)."""
        return self.get("summary", "then" if ok else "on-failure", "wait")


def _err(where: str, what: str) -> ConfigError:
    return ConfigError(f"answers {where}: {what}")


def _typename(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(_typename(x) for x in t)
    return {str: "a string", list: "a list", dict: "a mapping", int: "a number",
            bool: "true or false"}[t]


def validate(doc, base: Path, path: Path | None = None) -> Answers:
    """Answers from a parsed YAML document; ConfigError names the first mistake."""
    where = str(path or "file")
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise _err(where, f"expected a mapping of screens ({', '.join(SCREENS)})")
    out: dict = {}
    for screen, value in doc.items():
        if screen not in SCREENS:
            raise _err(where, f"{screen}: unknown screen (the screens: {', '.join(SCREENS)})")
        if screen == "host" and isinstance(value, str):
            value = {"name": value}
        if screen == "confirm":
            if not isinstance(value, str) or not value.strip():
                raise _err(where, "confirm: expected the host's name (the disks it may "
                                  "wipe are that host's)")
            out[screen] = value.strip()
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise _err(where, f"{screen}: expected a mapping of "
                              f"{', '.join(KEYS[screen])}")
        keys = KEYS[screen]
        checked = {}
        for k, v in value.items():
            if k not in keys:
                raise _err(where, f"{screen}.{k}: unknown key (known: {', '.join(keys)})")
            t, is_path = keys[k]
            if t is int and isinstance(v, bool) or not isinstance(v, t):
                raise _err(where, f"{screen}.{k}: expected {_typename(t)}, got {v!r}")
            if is_path and not isinstance(v, bool) and not (k == "assist" and v == "lan"):
                v = ([str(base / str(x)) for x in v] if isinstance(v, list)
                     else str(base / v))
            checked[k] = v
        out[screen] = checked
    _semantics(out, where)
    sftp = (out.get("bundles") or {}).get("sftp")
    if sftp and sftp.get("ssh_key"):  # the login key: on the medium, beside the file
        sftp["ssh_key"] = str(base / sftp["ssh_key"])
    return Answers(path or base / "answers.yaml", out)


def _semantics(out: dict, where: str) -> None:
    net = (out.get("welcome") or {}).get("network")
    if net is not None and not NETWORK.match(net):
        raise _err(where, f"welcome.network: {net!r}: expected dhcp, none, original "
                          f"or static:ADDR/PREFIX,GATEWAY,DNS[,LINK]")
    sftp = (out.get("bundles") or {}).get("sftp")
    if sftp is not None:
        for k, v in sftp.items():
            if k not in SFTP:
                raise _err(where, f"bundles.sftp.{k}: unknown key (known: {', '.join(SFTP)})")
            if not isinstance(v, SFTP[k]):
                raise _err(where, f"bundles.sftp.{k}: expected {_typename(SFTP[k])}")
        for k in ("host", "user", "path", "host_key"):
            if k not in sftp:
                raise _err(where, f"bundles.sftp: {k} is missing (the host key is pinned: "
                                  f"never trusted on first use)")
    host = out.get("host") or {}
    if not host.get("name") and not host.get("bundle"):
        if "host" in out:
            raise _err(where, "host: give name (the newest bundle of that host) or bundle")
    for k in ("then", "on-failure"):
        then = (out.get("summary") or {}).get(k)
        if then is not None and then not in THEN:
            raise _err(where, f"summary.{k}: {then!r}: expected one of {', '.join(THEN)}")
    jobs = (out.get("plan") or {}).get("jobs")
    if jobs is not None and jobs < 1:
        raise _err(where, "plan.jobs: at least 1")
    for k in ("map", "nics"):
        m = (out.get("disks" if k == "map" else "plan") or {}).get(k) or {}
        for a, b in m.items():
            if not isinstance(a, str) or not isinstance(b, str):
                raise _err(where, f"{k}: {a!r}: {b!r}: expected ORIGINAL: HERE (two names)")
    on_error = (out.get("run") or {}).get("on-error")
    if on_error is not None and on_error not in ON_ERROR:
        raise _err(where, f"run.on-error: {on_error!r}: expected one of {', '.join(ON_ERROR)}")
    target = (out.get("run") or {}).get("target")
    if target is not None and not target.startswith("/"):
        raise _err(where, f"run.target: {target!r}: expected an absolute path")


def load(path) -> Answers:
    from essentials.config import read_yaml_file
    path = Path(path).resolve()
    try:
        doc = read_yaml_file(path)
    except ConfigError as e:
        raise ConfigError(f"answers file {e}") from None
    return validate(doc, path.parent, path)


def catalog_args(a: Answers) -> list[str]:
    """The options that say where the catalog and volumes are, and how the
    disks open: `plan` and `recover` take them alike."""
    argv = []
    disks = a.screens.get("disks") or {}
    if disks.get("luks-key-file"):
        argv += ["--luks-key-file", disks["luks-key-file"]]
    plan = a.screens.get("plan") or {}
    for k in ("amanda-host", "until", "config", "auth"):
        if plan.get(k):
            argv += [f"--{k}", str(plan[k])]
    if plan.get("server"):
        argv += ["--server", plan["server"]]
    for b in plan.get("catalog-bundle") or []:
        argv += ["--catalog-bundle", b]
    for old, new in (plan.get("nics") or {}).items():
        argv += ["--nic", f"{old}={new}"]
    return argv


def run_args(a: Answers) -> list[str]:
    """The options only `recover` takes: which DLEs, how many at once, what a
    failure does, whether the system is made bootable."""
    argv = []
    plan = a.screens.get("plan") or {}
    for d in plan.get("dle") or []:
        argv += ["--dle", str(d)]
    if plan.get("jobs"):
        argv += ["--jobs", str(plan["jobs"])]
    run = a.screens.get("run") or {}
    if run.get("allow-partial"):
        argv.append("--allow-partial")
    if run.get("finalize") is False:
        argv.append("--no-finalize")
    if run.get("on-error"):
        argv += ["--on-error", run["on-error"]]
    return argv


def recover_argv(a: Answers, bundle: str, default_target: str = "/mnt/target") -> list[str]:
    """The `recover` command line the answers stand for (the same parser checks it)."""
    argv = ["recover", "--bundle", bundle,
            "--target", a.get("run", "target", default_target)]
    unlock = a.screens.get("unlock") or {}
    if unlock.get("gnupghome"):
        argv += ["--gnupghome", unlock["gnupghome"]]
    if unlock.get("passphrase-file"):
        argv += ["--passphrase-file", unlock["passphrase-file"]]
    for s in unlock.get("signers") or []:
        argv += ["--signer", str(s)]
    for old, new in ((a.screens.get("disks") or {}).get("map") or {}).items():
        argv += ["--map", f"{old}={new}"]
    if (a.screens.get("plan") or {}).get("vtapes"):
        argv += ["--vtapes", a.screens["plan"]["vtapes"]]
    return argv + catalog_args(a) + run_args(a)
