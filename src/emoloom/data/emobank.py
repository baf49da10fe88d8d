"""EmoBank (Buechel & Hahn, 2017): 10k sentences with gold VAD, no emotion labels.

File: ``emobank.csv`` (JULIELab/EmoBank ``corpus/``), header ``id,split,V,A,D,text``; ``split``
is train/dev/test; V, A, D are reader-writer means on a 1–5 scale, mapped to [0, 1] as
``(x - 1) / 4``. Standard CSV quoting (texts contain commas and quotes). Hub: the same file
through the generic ``csv`` builder.

One record per sentence, id ``emobank:<id>``, ``labels`` empty, ``vad`` gold.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from emoloom.contract import VAD, Record
from emoloom.data.base import CorpusReader, HubSource, IdSet, LoadReport, ReadOptions, iter_lines
from emoloom.errors import DataError

COLUMNS = ("id", "split", "V", "A", "D", "text")


class EmoBank(CorpusReader):
    name = "emobank"
    label_set = None
    dirname = "emobank"
    hub = HubSource(
        "csv",
        data_files="https://raw.githubusercontent.com/JULIELab/EmoBank/master/corpus/emobank.csv",
        split_names={"train": "train", "dev": "train", "test": "train"},  # one file, split column
    )

    def files(self, root: Path, split: str) -> list[Path]:
        return [root / "emobank.csv"]

    def read_local(
        self, root: Path, split: str, options: ReadOptions, report: LoadReport
    ) -> Iterator[Record]:
        (path,) = self.files(root, split)
        # Decode line by line (exact line numbers for bad UTF-8), then let a strict csv reader
        # handle quoting; a quoted field may span lines, so track where each row starts.
        numbered = [(n, line) for n, line in iter_lines(path, report) if line is not None]
        reader = csv.reader(io.StringIO("\n".join(line for _, line in numbered)), strict=True)
        try:
            header = next(reader, None)  # None also for a file of blank lines
        except csv.Error as err:  # e.g. a stray quote in the header
            raise DataError(path, numbered[0][0], None, f"malformed CSV ({err})") from None
        if not header:
            raise DataError(path, None, None, "file is empty (no header)")
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise DataError(path, numbered[0][0], missing[0], "column missing from the header")
        ids = IdSet()
        while True:
            start = reader.line_num  # lines consumed so far: this row starts at numbered[start]
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                report.reject(DataError(path, numbered[start][0], None, f"malformed CSV ({err})"))
                continue
            n = numbered[start][0]
            if len(fields) != len(header):
                what = (
                    "empty line"
                    if not fields
                    else f"expected {len(header)} columns, got {len(fields)}"
                )
                report.reject(DataError(path, n, None, what))
                continue
            row = dict(zip(header, fields, strict=True))
            yield from self._row(path, n, row, split, ids, report)

    def read_hub(
        self,
        rows: Iterable[Mapping[str, Any]],
        split: str,
        options: ReadOptions,
        report: LoadReport,
    ) -> Iterator[Record]:
        where = self.hub.describe(split)
        ids = IdSet()
        for n, row in enumerate(rows, start=2):  # line 1 of the file is the header
            yield from self._row(where, n, {c: row.get(c) for c in COLUMNS}, split, ids, report)

    def _row(
        self,
        path: Path | str,
        n: int,
        row: Mapping[str, Any],
        split: str,
        ids: IdSet,
        report: LoadReport,
    ) -> Iterator[Record]:
        if row["split"] not in ("train", "dev", "test"):
            report.reject(DataError(path, n, "split", f"unknown split {row['split']!r}"))
            return
        if row["split"] != split:
            return
        text = row["text"]
        if not isinstance(text, str) or not text.strip():
            report.reject(DataError(path, n, "text", "empty"))
            return
        values = []
        for col in ("V", "A", "D"):
            try:
                x = float(row[col])
            except (TypeError, ValueError):
                report.reject(DataError(path, n, col, f"not a number: {row[col]!r}"))
                return
            if not 1.0 <= x <= 5.0:  # also rejects NaN
                report.reject(DataError(path, n, col, f"{x} outside the 1-5 scale"))
                return
            values.append(round((x - 1.0) / 4.0, 4))
        record_id = f"emobank:{str(row['id']).strip()}"
        if (dup := ids.check(path, n, record_id)) is not None:
            report.reject(dup)
            return
        yield Record(
            id=record_id,
            text=text,
            source=self.name,
            vad=VAD(v=values[0], a=values[1], d=values[2]),
            meta={"split": split, "vad_source": "gold"},
        )
