"""EmpatheticDialogues (Rashkin et al., 2019): 32 emotions, one label per conversation.

Files: ``{train,valid,test}.csv`` of the original release, header ``conv_id,utterance_idx,
context,prompt,speaker_idx,utterance,selfeval,tags``, one row per turn, commas inside text
written ``_comma_`` (so a plain split on "," is the original format's own rule). ``context`` is
the emotion label, ``prompt`` the situation the speaker wrote. Hub:
``facebook/empathetic_dialogues`` (same columns, parquet conversion).

One record per conversation, id ``empathetic:<conv_id>``. ``empathetic_input`` chooses the text:

- ``situation`` (default): the situation prompt, the speaker's own account of the feeling;
  no context.
- ``dialogue``: the last turn as text, the earlier turns as context (situation unseen).
- ``both``: as ``dialogue``, with the situation prepended as the first context line.

The copy under ../shared/data is a ~22% part of the official train split re-split 8:1:1, so
numbers on it are not comparable to published ED results.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from emoloom.contract import Record
from emoloom.data.base import CorpusReader, HubSource, LoadReport, ReadOptions, iter_lines
from emoloom.errors import DataError
from emoloom.labels import EMPATHETIC

COLUMNS = ("conv_id", "utterance_idx", "context", "prompt", "speaker_idx", "utterance")
_SPLIT_FILES = {"train": "train.csv", "dev": "valid.csv", "test": "test.csv"}


def _unescape(text: str) -> str:
    return text.replace("_comma_", ",").strip()


class _Conversation:
    """Turns of one conversation, checked row by row."""

    def __init__(self, conv_id: str, line: int, label: str, prompt: str) -> None:
        self.conv_id, self.line, self.label, self.prompt = conv_id, line, label, prompt
        self.turns: list[str] = []


class EmpatheticDialogues(CorpusReader):
    name = "empathetic"
    label_set = EMPATHETIC
    dirname = "empatheticdialogues"
    hub = HubSource(
        "facebook/empathetic_dialogues",
        revision="refs/convert/parquet",
        split_names={"dev": "validation"},
    )

    def files(self, root: Path, split: str) -> list[Path]:
        return [root / _SPLIT_FILES[split]]

    def read_local(
        self, root: Path, split: str, options: ReadOptions, report: LoadReport
    ) -> Iterator[Record]:
        (path,) = self.files(root, split)
        header: list[str] | None = None
        rows: list[tuple[int, str, dict[str, str] | None]] = []
        for n, line in iter_lines(path, report, keep_bad=True):
            if line is None:  # bad UTF-8, reported; its conversation cannot be trusted
                rows.append((n, rows[-1][1] if rows else "", None))
                continue
            if header is None:
                header = line.split(",")
                missing = [c for c in COLUMNS if c not in header]
                if missing:
                    raise DataError(path, n, missing[0], "column missing from the header")
                continue
            parts = line.split(",")
            if len(parts) != len(header):
                report.reject(
                    DataError(
                        path,
                        n,
                        None,
                        f"expected {len(header)} comma-separated fields, got "
                        f"{len(parts)} (commas in text must be written _comma_)",
                    )
                )
                rows.append((n, parts[0].strip(), None))
                continue
            row = dict(zip(header, parts, strict=True))
            rows.append((n, row["conv_id"].strip(), row))
        if header is None:
            raise DataError(path, None, None, "file is empty (no header)")
        yield from self._conversations(path, rows, split, options, report)

    def read_hub(
        self,
        rows: Iterable[Mapping[str, Any]],
        split: str,
        options: ReadOptions,
        report: LoadReport,
    ) -> Iterator[Record]:
        where = self.hub.describe(split)
        parsed: list[tuple[int, str, dict[str, str] | None]] = []
        for n, row in enumerate(rows, start=1):
            conv_id = str(row.get("conv_id", "")).strip()
            try:
                parsed.append((n, conv_id, {c: str(row[c]) for c in COLUMNS}))
            except KeyError as err:
                report.reject(DataError(where, n, str(err.args[0]), "column missing"))
                parsed.append((n, conv_id, None))
        yield from self._conversations(where, parsed, split, options, report)

    def _conversations(
        self,
        path: Path | str,
        rows: list[tuple[int, str, dict[str, str] | None]],
        split: str,
        options: ReadOptions,
        report: LoadReport,
    ) -> Iterator[Record]:
        """One record per conversation. A conversation is all or nothing: one bad row (already
        reported with its line) drops it whole, so a partial dialogue never passes as complete,
        and so does a conversation whose rows are not consecutive."""
        blocks: list[tuple[str, list[tuple[int, dict[str, str] | None]]]] = []
        for n, conv_id, row in rows:
            if blocks and blocks[-1][0] == conv_id:
                blocks[-1][1].append((n, row))
            else:
                blocks.append((conv_id, [(n, row)]))
        first_line: dict[str, int] = {}
        scattered: set[str] = set()
        for conv_id, block in blocks:
            if conv_id in first_line:
                scattered.add(conv_id)
                report.reject(
                    DataError(
                        path,
                        block[0][0],
                        "conv_id",
                        f"{conv_id!r} reappears (first at line {first_line[conv_id]}); rows of "
                        "a conversation must be consecutive",
                    )
                )
            else:
                first_line[conv_id] = block[0][0]
        for conv_id, block in blocks:
            if conv_id in scattered or any(row is None for _, row in block):
                continue
            try:
                conv = self._conversation(path, conv_id, block)  # type: ignore[arg-type]
                yield self._record(path, conv, split, options)
            except DataError as err:
                report.reject(err)

    def _conversation(
        self, path: Path | str, conv_id: str, block: list[tuple[int, dict[str, str]]]
    ) -> _Conversation:
        n, first = block[0]
        if not conv_id:
            raise DataError(path, n, "conv_id", "empty")
        conv = _Conversation(conv_id, n, first["context"].strip(), _unescape(first["prompt"]))
        if conv.label not in EMPATHETIC:
            raise DataError(path, n, "context", f"unknown emotion label {conv.label!r}")
        for n, row in block:
            error = self._check_row(path, n, row, conv)
            if error is not None:
                raise error
            conv.turns.append(_unescape(row["utterance"]))
        return conv

    @staticmethod
    def _check_row(
        path: Path | str, n: int, row: dict[str, str], conv: _Conversation
    ) -> DataError | None:
        try:
            idx = int(row["utterance_idx"])
        except ValueError:
            return DataError(path, n, "utterance_idx", f"not an integer: {row['utterance_idx']!r}")
        if idx != len(conv.turns) + 1:
            return DataError(
                path, n, "utterance_idx", f"expected turn {len(conv.turns) + 1}, got {idx}"
            )
        if row["context"].strip() != conv.label:
            return DataError(
                path, n, "context", f"label changes inside conversation {conv.conv_id!r}"
            )
        if not _unescape(row["utterance"]):
            return DataError(path, n, "utterance", "empty")
        return None

    @staticmethod
    def _record(path: Path | str, conv: _Conversation, split: str, options: ReadOptions) -> Record:
        mode = options.empathetic_input
        if mode == "situation":
            if not conv.prompt:
                raise DataError(path, conv.line, "prompt", "empty situation")
            text, context = conv.prompt, ()
        else:
            earlier = ([conv.prompt] if mode == "both" and conv.prompt else []) + conv.turns[:-1]
            text, context = conv.turns[-1], options.context(earlier)
        return Record(
            id=f"empathetic:{conv.conv_id}",
            text=text,
            context=context,
            source="empathetic",
            labels=(conv.label,),
            meta={"split": split, "turns": len(conv.turns)},
        )
