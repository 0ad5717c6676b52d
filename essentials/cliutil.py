"""What both command-line tools do the same way: -v, logging and typed exit codes."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback

from .errors import EXIT_FAILED, EXIT_OK, AmdrError

class Terminated(BaseException):
    """SIGTERM or SIGHUP (systemd stopping the unit, a cron timeout, a closed terminal).

    A BaseException, like KeyboardInterrupt, so no `except Exception` swallows
    it: it unwinds through every `finally` (the plaintext work area removed,
    running restores killed, keys put back); the default action of SIGTERM
    would end the process on the spot and leave all that behind.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):
    # a second signal must not interrupt the cleanup the first one started
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def signals_unwind():
    """SIGTERM and SIGHUP raise Terminated while the block runs (then the
    handlers are put back); not in the main thread (a test calling main), the
    signals are left alone."""
    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, _terminate)
    except ValueError:
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


VERBOSE_HELP = "also log what is done (each command run, its exit code) to the terminal"


def add_verbose(parser: argparse.ArgumentParser):
    """-v/--verbose before the subcommand and after it (`amdr-essentials run -v`).

    On the subcommands (and theirs) its default is SUPPRESS: a subcommand's
    own default would otherwise overwrite the True that `TOOL -v run` set."""
    if not _has_verbose(parser):
        parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    for sub in _subcommands(parser):
        if not _has_verbose(sub):
            sub.add_argument("-v", "--verbose", action="store_true",
                             default=argparse.SUPPRESS, help=VERBOSE_HELP)


def _has_verbose(parser) -> bool:
    return any("--verbose" in a.option_strings for a in parser._actions)


def _subcommands(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases: once
                yield sub
                yield from _subcommands(sub)


def checked(parse, metavar: str | None = None):
    """An argparse type from a parser raising ValueError: its message becomes the
    usage error (exit 2), not argparse's "invalid parse value"."""
    def convert(text):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = metavar or parse.__name__
    return convert


def quiet_libraries(verbose: bool):
    """python-gnupg logs "gpg returned a non-zero error code: 2" at WARNING, and
    0.4 (Debian 12's) "Error sending data" with a traceback at ERROR, before our
    own message says what went wrong: only ours is shown, unless -v."""
    logging.getLogger("gnupg").setLevel(logging.NOTSET if verbose else logging.CRITICAL)


def _stdout_gone() -> bool:
    """Is our standard output a pipe whose reader has gone (POLLERR on it)?"""
    import select
    try:
        p = select.poll()
        p.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in p.poll(0))
    except (OSError, ValueError):
        return False


def run(prog: str, parser, argv=None) -> int:
    """Parse, run args.func, and turn an AmdrError into its message and exit code.

    Anything else (a bug, a full disk under the state directory) is a failure,
    exit 3: left to Python it would exit 1, which both tools document as
    "partial", and cron would be told a bundle or a restore half-succeeded.
    """
    add_verbose(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries(args.verbose)
    try:
        return args.func(args)
    except BrokenPipeError as e:
        if not _stdout_gone():  # a pipe to gpg, ssh or a child: a failure like any other
            print(f"{prog}: failed: {e}", file=sys.stderr)
            return EXIT_FAILED
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
