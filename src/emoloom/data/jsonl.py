"""Plain contract JSONL: one `emoloom.contract.Record` per line.

The way to bring your own data: any file of contract records (see ``emoloom schema``). Ids must
be unique; with a label set, every gold label must belong to it. Records without ``vad`` get a
weak target like any corpus; records with ``vad`` keep it as gold.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emoloom.contract import Record, RecordError, parse_record_line
from emoloom.data.base import IdSet, LoadReport, iter_lines
from emoloom.errors import DataError
from emoloom.labels import LabelSet


def read_jsonl(
    path: str | Path, report: LoadReport, label_set: LabelSet | None = None
) -> Iterator[Record]:
    path = Path(path)
    ids = IdSet()
    for n, line in iter_lines(path, report):
        if line is None:
            continue
        if not line.strip():
            report.reject(DataError(path, n, None, "empty line"))
            continue
        try:
            record = parse_record_line(line)
        except RecordError as err:
            report.reject(DataError(path, n, err.field, err.message))
            continue
        if label_set is not None:
            unknown = [lab for lab in record.labels if lab not in label_set]
            if unknown:
                report.reject(
                    DataError(path, n, "labels", f"{unknown} not in label set {label_set.name!r}")
                )
                continue
            if not label_set.multi_label and len(record.labels) > 1:
                report.reject(
                    DataError(path, n, "labels", f"label set {label_set.name!r} is single-label")
                )
                continue
        if (dup := ids.check(path, n, record.id)) is not None:
            report.reject(dup)
            continue
        yield record
