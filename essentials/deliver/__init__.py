"""Getting an encrypted bundle off the host: sftp, mail or a local/USB copy.

Why a dispatcher with one small module per type: each delivery is
independent (one failing never stops the others), and each transport has its
own failure modes that deserve their own wording in cron mail.  The modules
are imported only when used, so a host that only copies to a USB stick never
loads paramiko, and the pure helpers below (names, pruning, sizes) can be
imported by the modules without an import cycle.

Every failure is a DeliveryError whose message says what failed, against
what (host:port, path) and what to do; messages never hold passwords or key
material.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from ..errors import EXIT_FAILED, AmdrError
from ..sealed import SUFFIX, companion_of, companions, parse_name

TYPES = ("sftp", "mail", "local")

log = logging.getLogger(__name__)



class DeliveryError(AmdrError):
    """A bundle could not be delivered to one destination."""

    exit_code = EXIT_FAILED


def bundle_stamp(name: str, host: str) -> str | None:
    """The timestamp of `name` if it is a bundle of exactly this host.

    Why a strict pattern and not the glob HOST-*.amdr.gpg: host `web1` must
    never prune the bundles of host `web1-db` kept in the same directory.
    """
    parsed = parse_name(name)
    if parsed is None or parsed[0] != host:
        return None
    return parsed[1].strftime("%Y%m%dT%H%M%SZ")  # UTC: sorts as text


def bundle_date(name: str, host: str) -> str:
    """YYYY-MM-DD of a bundle name (for mail subjects)."""
    stamp = bundle_stamp(name, host)
    if not stamp:
        raise DeliveryError(f"{name}: not a bundle name of host {host} "
                            f"(expected {host}-YYYYMMDDTHHMMSSZ{SUFFIX})")
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}"


def to_prune(names, host: str, keep: int, protect: str | None = None) -> list[str]:
    """Which of `names` to delete so only the newest `keep` bundles of `host` stay.

    Only names that are bundles of this host count; anything else in the
    directory is never returned.  `protect` (the bundle just delivered) is
    always kept and counts towards `keep`, even if a clock that went
    backwards made it look older than the others.  Oldest first.
    """
    ours = sorted((n for n in set(names) if bundle_stamp(n, host)),
                  key=lambda n: bundle_stamp(n, host), reverse=True)
    kept = []
    if protect in ours:
        kept.append(protect)
    for n in ours:
        if len(kept) >= keep:
            break
        if n not in kept:
            kept.append(n)
    gone = sorted((n for n in ours if n not in kept), key=lambda n: bundle_stamp(n, host))
    # a pruned bundle's runbook goes with it, after it
    beside: dict[str, list[str]] = {}
    for n in sorted(set(names)):
        beside.setdefault(companion_of(n), []).append(n)
    return [x for b in gone for x in [b, *beside.get(b, [])]]


def part_name(name: str) -> str:
    """The temporary name a bundle is written under before its rename.

    Hidden and with a suffix that never matches the bundle pattern, so a
    half-written file is neither mistaken for a bundle nor pruned as one.
    """
    return f".{name}.part"


def companion_note(label: str, name: str, why) -> str:
    """A companion (the runbook) that did not go: logged and said beside the
    delivery's result; the bundle goes all the same."""
    log.warning("%s: %s not delivered (the bundle is): %s", label, name, why)
    return f"; {name} NOT delivered: {why}"


def mb(n: int | float) -> str:
    """Bytes as MB (10^6, the unit mail providers and disk vendors quote)."""
    return f"{n / 1e6:.2f} MB"


def deliver(dest: dict, bundle: Path, host: str, runner) -> str:
    """Deliver `bundle` to one validated delivery entry; return where it went.

    `dest` is one entry of config.validate(...)["deliveries"].  Raises
    DeliveryError for anything that went wrong.  The files beside the bundle
    that belong to it (its runbook) go with it, written before it: where the
    bundle is, its runbook is.  They never cost the bundle its delivery: one
    that cannot go is said in the result and the log, and the bundle goes.
    """
    kind = dest.get("type")
    if kind not in TYPES:
        raise DeliveryError(f"delivery {dest.get('name') or kind!r}: unknown type {kind!r}; "
                            f"expected one of {', '.join(TYPES)}")
    bundle = Path(bundle)
    if not bundle.is_file():
        raise DeliveryError(f"{dest['name']}: bundle {bundle} does not exist or is not a "
                            f"file; nothing to deliver")
    if not bundle_stamp(bundle.name, host):
        raise DeliveryError(f"{dest['name']}: {bundle.name} is not a bundle name of host "
                            f"{host} (expected {host}-YYYYMMDDTHHMMSSZ{SUFFIX})")
    module = importlib.import_module(f"{__name__}.{kind}")
    return module.deliver(dest, bundle, host, runner, companions(bundle))
