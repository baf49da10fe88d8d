"""User-facing errors: the CLI prints them as one line and exits non-zero (no traceback).

Anything a user can cause with a file, a flag or a config raises a subclass of `EmoloomError`;
everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class EmoloomError(Exception):
    """An error caused by input the user controls (files, flags, configs)."""

    def __str__(self) -> str:
        # One line, always: messages quoting other libraries (transformers, PyYAML) can hold
        # line breaks, and the CLI's promise is a single ``emoloom: error: ...`` line.
        return _one_line(super().__str__())


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
        return _one_line(
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
