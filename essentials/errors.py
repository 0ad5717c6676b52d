"""Typed errors shared by both halves.

Each error carries the process exit code it maps to, so cron mail and
monitoring can tell a configuration mistake from a partial run from a total
failure without parsing text (the borg model).
"""

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_CONFIG = 2
EXIT_FAILED = 3
EXIT_REFUSED = 4


class AmdrError(Exception):
    """Base of every error amanda-dr reports to a person."""

    exit_code = EXIT_FAILED


class ConfigError(AmdrError):
    exit_code = EXIT_CONFIG


class BundleError(AmdrError):
    """A bundle is missing, unreadable, or fails its checksums."""


class CatalogError(AmdrError):
    """The Amanda catalog cannot give a usable restore chain."""


class RefusedError(AmdrError):
    """A destructive step was refused by a guard (boot disk, mounted device...)."""

    exit_code = EXIT_REFUSED


class CommandError(AmdrError):
    """An external command failed; carries what is needed to diagnose it."""

    def __init__(self, argv_display, returncode, stderr_tail="", what=None, also=None):
        self.argv_display = argv_display
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        msg = f"command failed (exit {returncode}): {argv_display}"
        if what:
            msg = f"{what}: {msg}"
        if stderr_tail:
            msg += "\n  stderr: " + stderr_tail.strip().replace("\n", "\n  stderr: ")
        for line in also or []:
            msg += "\n  also: " + line
        super().__init__(msg)
