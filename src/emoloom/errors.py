"""User-facing errors: the CLI prints them as one line and exits non-zero (no traceback).

Anything a user can cause with a file, a flag or a config raises a subclass of `EmoloomError`;
everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class EmoloomError(Exception):
    """An error caused by input the user controls (files, flags, configs)."""


class DataError(EmoloomError):
    """A bad row or file: says which file, which line (1-based) and which field."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )
