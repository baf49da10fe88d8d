"""What every corpus reader shares: splits, read options, the bad-row policy, line reading.

A reader turns a corpus's original files (or its Hugging Face hub rows) into contract
`Record`s without VAD; `data.registry.load_split` then attaches VAD targets. Readers raise
`DataError` (file, 1-based line, field) for malformed rows through `LoadReport.reject`, which
either stops (default) or, with ``skip_invalid``, counts the row as skipped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emoloom.contract import Record
from emoloom.errors import DataError, EmoloomError
from emoloom.labels import LabelSet

SPLITS = ("train", "dev", "test")
_SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev"}


def canonical_split(split: str) -> str:
    name = _SPLIT_ALIASES.get(split, split)
    if name not in SPLITS:
        raise EmoloomError(f"Unknown split {split!r}. Available: {', '.join(SPLITS)}")
    return name


@dataclass(frozen=True)
class ReadOptions:
    """Reader knobs. Each field is documented where it matters (the corpus module)."""

    skip_invalid: bool = False
    empathetic_input: str = "situation"  # situation | dialogue | both
    dailydialog_misaligned: str = "skip"  # skip | error
    dailydialog_detokenize: bool = True
    max_context_turns: int | None = None  # None keeps every preceding turn

    def __post_init__(self) -> None:
        if self.empathetic_input not in ("situation", "dialogue", "both"):
            raise EmoloomError(
                f"empathetic_input={self.empathetic_input!r}; use situation, dialogue or both"
            )
        if self.dailydialog_misaligned not in ("skip", "error"):
            raise EmoloomError(
                f"dailydialog_misaligned={self.dailydialog_misaligned!r}; use skip or error"
            )
        if self.max_context_turns is not None and self.max_context_turns < 0:
            raise EmoloomError("max_context_turns must be >= 0")

    def context(self, turns: list[str]) -> tuple[str, ...]:
        """The preceding turns kept as `Record.context` (oldest first)."""
        if self.max_context_turns is None:
            return tuple(turns)
        return tuple(turns[len(turns) - self.max_context_turns :]) if self.max_context_turns else ()


@dataclass
class LoadReport:
    """Rows skipped while reading, with their reasons. Nothing is dropped silently."""

    skip_invalid: bool = False
    skipped: list[DataError] = field(default_factory=list)

    def reject(self, error: DataError) -> None:
        """A malformed row: stop, or with `skip_invalid` record it and go on."""
        if not self.skip_invalid:
            raise error
        self.skipped.append(error)

    def skip_known_defect(self, error: DataError) -> None:
        """A defect of the original release that is skipped by default (and reported)."""
        self.skipped.append(error)


def iter_lines(
    path: Path, report: LoadReport, *, keep_bad: bool = False
) -> Iterator[tuple[int, str | None]]:
    """(1-based line number, text) for each line of `path`, decoded as strict UTF-8.

    Strips the line ending (LF or CRLF) and a UTF-8 BOM on the first line. A line that is not
    valid UTF-8 is rejected through `report` with its byte offset; when skipping is allowed it
    is left out, or, with `keep_bad`, yielded as ``(n, None)`` so that parallel files stay
    aligned.
    """
    check_file(path)
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                report.reject(DataError(path, n, None, f"invalid UTF-8 at byte {err.start}"))
                if keep_bad:
                    yield n, None
                continue
            yield n, line.rstrip("\r\n")


def check_file(path: Path) -> None:
    if path.is_dir():
        raise DataError(path, None, None, "is a directory, expected a file")
    if not path.is_file():
        raise DataError(path, None, None, "file not found")


@dataclass(frozen=True)
class HubSource:
    """Where a corpus lives on the Hugging Face hub (used when no local directory has it)."""

    path: str
    name: str | None = None
    revision: str | None = None
    split_names: Mapping[str, str] = field(default_factory=dict)  # ours → hub's
    data_files: str | None = None  # for generic builders such as "csv"

    def split(self, split: str) -> str:
        return self.split_names.get(split, split)

    def describe(self, split: str) -> str:
        return f"hf://{self.data_files or self.path}[{self.split(split)}]"


class CorpusReader(ABC):
    """One corpus: where its files are, how to read them, and its hub fallback."""

    name: str
    label_set: LabelSet | None
    dirname: str  # folder under the data directory
    hub: HubSource

    @abstractmethod
    def files(self, root: Path, split: str) -> list[Path]:
        """The original files of `split` under `root` (the corpus folder), for manifests."""

    @abstractmethod
    def read_local(
        self, root: Path, split: str, options: ReadOptions, report: LoadReport
    ) -> Iterator[Record]:
        """Records of `split` from the original files under `root` (the corpus folder)."""

    @abstractmethod
    def read_hub(
        self,
        rows: Iterable[Mapping[str, Any]],
        split: str,
        options: ReadOptions,
        report: LoadReport,
    ) -> Iterator[Record]:
        """Records of `split` from the hub dataset's rows (in the hub's schema)."""


class IdSet:
    """Remembers ids and where they were first seen, to reject duplicates with both places."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def check(self, path: Path | str, line: int, record_id: str) -> DataError | None:
        first = self._seen.setdefault(record_id, line)
        if first != line:
            return DataError(
                path, line, "id", f"duplicate id {record_id!r} (first at line {first})"
            )
        return None
