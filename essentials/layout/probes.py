"""What `blkid -p` and `sfdisk --json` answered: something, nothing, or a failure.

Why this needs care: both tools use the exit code that means "nothing here"
for failures too, so reading the code alone turned a host whose devices
could not be opened (blkid: "Operation not permitted", exit 2) into a layout
with no filesystems, and `check` into "unchanged".  How util-linux 2.38
really behaves (checked on loop devices):

  blkid -p -o export DEV
    0  found a signature (KEY=value lines)
    2  nothing found: no output and no error text; but also a device it could
       not open ("blkid: error: DEV: Permission denied") and, silently, a DEV
       that does not exist
    8  ambivalent: more than one signature ("use wipefs(8)")
    4  usage error
  sfdisk --json DEV
    0  a partition table (JSON)
    1  no table ("DEV: does not contain a recognized partition table"), or a
       failure ("cannot open DEV: Permission denied")

Everything else than "found" and "nothing found" is a failure of the layout
collector, named per device: a layout that silently misses a filesystem
recreates a system without it.
"""

from __future__ import annotations

NO_TABLE = "does not contain a recognized partition table"


def blkid_failure(returncode: int, stdout: str, stderr: str, exists: bool) -> str | None:
    """None when blkid -p found something or found nothing; else what went wrong.

    `exists`: the device node is there (blkid skips a missing one without a
    word, exit 2, exactly as for an empty device)."""
    stderr = stderr.strip()
    if returncode == 0:
        return None
    if returncode == 2 and not stdout.strip() and not stderr:
        return None if exists else "the device node does not exist"
    if returncode == 8:
        return f"more than one signature on it ({stderr or 'ambivalent result'})"
    return f"exit {returncode}: {stderr[-300:] or 'no error text'}"


def sfdisk_failure(returncode: int, stdout: str, stderr: str) -> str | None:
    """None when sfdisk --json read a table or says there is none; else what went wrong."""
    if returncode == 0:
        return None
    if NO_TABLE in stderr:
        return None
    return f"exit {returncode}: {stderr.strip()[-300:] or 'no error text'}"


def advice(failures: list[str]) -> str:
    """What to do about the failures, from what the tools said."""
    text = " ".join(failures)
    hints = []
    if "Permission denied" in text or "Operation not permitted" in text:
        hints.append("run amdr-essentials as root on the host itself (not in a container "
                     "or under a service that hides the block devices)")
    if "more than one signature" in text:
        hints.append("list the signatures with `wipefs DEVICE` and remove the stale one "
                     "(`wipefs -o OFFSET DEVICE`, after a backup)")
    if "does not exist" in text:
        hints.append("a device went away while collecting (unplugged?) or has no device "
                     "node; collect again")
    return "; ".join(hints) or "look at the device and the tool's message, then collect again"


def failure_message(failures: list[str], limit: int = 6) -> str:
    """One line for the manifest and the report: which devices, what each said, what to do."""
    shown = failures[:limit]
    more = f", and {len(failures) - limit} more" if len(failures) > limit else ""
    return (f"could not probe {len(failures)} device{'s' if len(failures) > 1 else ''}, so "
            f"what is on {'them' if len(failures) > 1 else 'it'} would be missing from the "
            f"layout: " + "; ".join(shown) + more + ". No layout was written: "
            + advice(failures))
