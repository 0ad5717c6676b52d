"""Amanda's spellings of names in files and on command lines.

Why here: the rebuilt server must name files exactly as Amanda looks them
up (a disk name becomes a directory name one way in the index and another
way on a vtape) and quote tokens exactly as Amanda's own parser unquotes
them, or amadmin and amrecover silently see nothing.
"""

from __future__ import annotations

_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\\": "\\\\", '"': '\\"'}


def quote(s: str) -> str:
    """common-src/util.c quote_string: quoted when it holds ':', a quote,
    a backslash, a control character or a space, or is empty."""
    if s == "":
        return '""'
    if not any(c in ":'\\\"" or c <= " " or c == "\x7f" for c in s):
        return s
    return '"' + "".join(_ESCAPES.get(c, c) for c in s) + '"'


def sanitise_filename(s: str) -> str:
    """common-src/util.c sanitise_filename: the index and curinfo directory
    names of a host or disk ('/', ':' and '\\' become '_')."""
    return s.replace("/", "_").replace(":", "_").replace("\\", "_")


def nice_date(datestamp: str) -> str:
    """An Amanda datestamp as amrecover's setdate wants it (YYYY-MM-DD[-hh-mm-ss])."""
    d = "".join(c for c in datestamp if c.isdigit())
    if len(d) not in (8, 14):
        raise ValueError(f"{datestamp!r}: not an Amanda datestamp (YYYYMMDD or "
                         f"YYYYMMDDhhmmss)")
    out = f"{d[0:4]}-{d[4:6]}-{d[6:8]}"
    if len(d) == 14:
        out += f"-{d[8:10]}-{d[10:12]}-{d[12:14]}"
    return out


def qstr(s) -> str:
    """A string value in amanda.conf: always double-quoted, escaped inside."""
    return '"' + "".join(_ESCAPES.get(c, c) for c in str(s)) + '"'
