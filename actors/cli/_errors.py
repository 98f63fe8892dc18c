"""The one error the command line reports: a message and the exit code that goes with it."""

from __future__ import annotations

__all__ = ("EXIT_ERROR", "EXIT_USAGE", "CliError")

EXIT_ERROR = 1
"""The command ran and failed (the API refused, the store answered an error)."""
EXIT_USAGE = 2
"""What was asked for is wrong (a bad configuration value, cron expression or argument)."""


class CliError(Exception):
    """Printed as one line, ``lark-scheduler: error: <message>``, then exit with ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
