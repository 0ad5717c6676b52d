"""What both command-line tools do the same way: logging and typed exit codes."""

from __future__ import annotations

import logging
import sys

from .errors import AmdrError


def run(prog: str, parser, argv=None) -> int:
    """Parse, run args.func, and turn an AmdrError into its message and exit code."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except AmdrError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return e.exit_code
