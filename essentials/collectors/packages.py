"""Collector: which packages make up this system, so a rebuild can reinstall them.

A restore from Amanda brings the files back, but when the engineer chooses
to reinstall the OS instead (new hardware, another release) the package list
is what turns a bare install into this server again.  The raw outputs are
kept as the tools print them, because the tools that read them back
(`dpkg --set-selections`, `apt-mark manual`, `dnf install`) want that form:

  packages/os-release            copy of /etc/os-release
  Debian-likes:
  packages/dpkg-selections.txt   `dpkg --get-selections`
  packages/dpkg-versions.tsv     `dpkg-query -W -f '${Package}\\t${Version}\\t${Architecture}\\n'`
  packages/apt-manual.txt        `apt-mark showmanual`
  RPM systems:
  packages/rpm-qa.txt            `rpm -qa`
  packages/rpm-versions.tsv      name, [epoch:]version-release, arch
  packages/dnf-userinstalled.txt `dnf history userinstalled` (when dnf is there)
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from .base import CollectorError, Context, ToolMissing, have_tool

log = logging.getLogger(__name__)

DPKG_FORMAT = "${Package}\\t${Version}\\t${Architecture}\\n"
RPM_FORMAT = "%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n"
INSTALLED_SELECTIONS = {"install", "hold"}


class NoPackageManager(ToolMissing):
    def __init__(self):
        CollectorError.__init__(self, "'dpkg-query' (Debian package dpkg) and 'rpm' are not "
                                      "installed: there is no package database to collect; "
                                      "disable this collector on this system")
        self.tool = "dpkg-query or rpm"
        self.package = "dpkg or rpm"


def parse_os_release(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        out[key] = words[0] if words else ""
    return out


def count_selections(text: str) -> int:
    """Packages `dpkg --get-selections` lists as installed or held (not deinstall/purge)."""
    return sum(1 for line in text.splitlines()
               if len(line.split()) == 2 and line.split()[1] in INSTALLED_SELECTIONS)


def _lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def _os_release(ctx: Context) -> dict:
    for path in (ctx.etc / "os-release", Path("/usr/lib/os-release")):
        try:
            text = path.read_text()
        except OSError:
            continue
        ctx.write("packages/os-release", text)
        return parse_os_release(text)
    ctx.warn(f"no {ctx.etc / 'os-release'} nor /usr/lib/os-release: distribution unknown")
    return {}


def _dpkg(ctx: Context) -> dict:
    selections = ctx.runner.output(["dpkg", "--get-selections"])
    ctx.write("packages/dpkg-selections.txt", selections)
    versions = ctx.runner.output(["dpkg-query", "-W", "-f", DPKG_FORMAT])
    ctx.write("packages/dpkg-versions.tsv", versions)
    manual = None
    if have_tool("apt-mark"):
        text = ctx.runner.output(["apt-mark", "showmanual"])
        ctx.write("packages/apt-manual.txt", text)
        manual = _lines(text)
    else:
        ctx.warn("apt-mark is not installed: which packages were installed by hand is unknown")
    return {"manager": "dpkg", "packages": count_selections(selections), "manual": manual}


def _rpm(ctx: Context) -> dict:
    qa = ctx.runner.output(["rpm", "-qa"])
    ctx.write("packages/rpm-qa.txt", qa)
    ctx.write("packages/rpm-versions.tsv",
              ctx.runner.output(["rpm", "-qa", "--queryformat", RPM_FORMAT]))
    manual = None
    if have_tool("dnf"):
        res = ctx.runner.run(["dnf", "-q", "-C", "history", "userinstalled"], check=False)
        if res.returncode == 0:
            ctx.write("packages/dnf-userinstalled.txt", res.text)
            manual = _lines(res.text)
        else:
            ctx.warn(f"`dnf history userinstalled` failed (exit {res.returncode}): "
                     f"which packages were installed by hand is unknown")
    return {"manager": "rpm", "packages": _lines(qa), "manual": manual}


def collect(ctx: Context) -> dict:
    if have_tool("dpkg-query") and have_tool("dpkg"):
        found = _dpkg
    elif have_tool("rpm"):
        found = _rpm
    else:
        raise NoPackageManager()
    osr = _os_release(ctx)
    summary = {"distro": osr.get("ID"), "version": osr.get("VERSION_ID"),
               "name": osr.get("PRETTY_NAME")}
    summary.update(found(ctx))
    return summary
