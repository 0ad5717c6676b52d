"""What both command-line tools do the same way: logging and typed exit codes."""

from __future__ import annotations

import logging
import os
import sys
import traceback

from .errors import EXIT_FAILED, EXIT_OK, AmdrError


def run(prog: str, parser, argv=None) -> int:
    """Parse, run args.func, and turn an AmdrError into its message and exit code.

    Anything else (a bug, a full disk under the state directory) is a failure,
    exit 3: left to Python it would exit 1, which both tools document as
    "partial", and cron would be told a bundle or a restore half-succeeded.
    """
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except BrokenPipeError:
        # `amdr-recover plan | head`: the reader has what it wanted; end quietly
        # (stdout to /dev/null, so the interpreter's final flush fails no more)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except AmdrError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:
        print(f"{prog}: failed with an unexpected error: {type(e).__name__}: {e}\n"
              + "".join(traceback.format_exc()), file=sys.stderr)
        return EXIT_FAILED
