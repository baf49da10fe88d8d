"""GoEmotions (Demszky et al., 2020), the "simplified" split: 28 labels, multi-label.

Files (google-research ``goemotions/data``): ``{train,dev,test}.tsv`` with no header and three
tab-separated columns — text, comma-separated label ids (indices into ``emotions.txt``), Reddit
comment id — plus ``emotions.txt`` and ``ekman_mapping.json``. Both are checked against the
tables in `emoloom.labels` so a reordered label file can never shift labels silently.
Hub: ``google-research-datasets/go_emotions``, config ``simplified``.

One record per comment; id ``goemotions:<comment id>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from emoloom.contract import Record
from emoloom.data.base import (
    CorpusReader,
    HubSource,
    IdSet,
    LoadReport,
    ReadOptions,
    iter_lines,
)
from emoloom.errors import DataError
from emoloom.labels import GOEMOTIONS, GOEMOTIONS_EKMAN_GROUPS


class GoEmotions(CorpusReader):
    name = "goemotions"
    label_set = GOEMOTIONS
    dirname = "goemotions"
    hub = HubSource(
        "google-research-datasets/go_emotions", name="simplified", split_names={"dev": "validation"}
    )

    def files(self, root: Path, split: str) -> list[Path]:
        ekman = root / "ekman_mapping.json"
        return [root / f"{split}.tsv", root / "emotions.txt"] + ([ekman] if ekman.exists() else [])

    def read_local(
        self, root: Path, split: str, options: ReadOptions, report: LoadReport
    ) -> Iterator[Record]:
        _check_label_files(root)
        path = root / f"{split}.tsv"
        ids = IdSet()
        for n, line in iter_lines(path, report):
            parts = line.split("\t")
            if len(parts) != 3:
                report.reject(
                    DataError(path, n, None, f"expected 3 tab-separated columns, got {len(parts)}")
                )
                continue
            text, raw_ids, comment_id = parts
            try:
                record = self._record(path, n, text, raw_ids.split(","), comment_id, split)
            except DataError as err:
                report.reject(err)
                continue
            if (dup := ids.check(path, n, record.id)) is not None:
                report.reject(dup)
                continue
            yield record

    def read_hub(
        self,
        rows: Iterable[Mapping[str, Any]],
        split: str,
        options: ReadOptions,
        report: LoadReport,
    ) -> Iterator[Record]:
        where = self.hub.describe(split)
        ids = IdSet()
        for n, row in enumerate(rows, start=1):
            try:
                labels = [str(i) for i in row["labels"]]
                record = self._record(where, n, row["text"], labels, str(row["id"]), split)
            except DataError as err:
                report.reject(err)
                continue
            except (KeyError, TypeError) as err:
                report.reject(DataError(where, n, None, f"unexpected row shape: {err!r}"))
                continue
            if (dup := ids.check(where, n, record.id)) is not None:
                report.reject(dup)
                continue
            yield record

    def _record(
        self, path: Path | str, n: int, text: str, raw_ids: list[str], comment_id: str, split: str
    ) -> Record:
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, n, "text", "empty")
        if not comment_id.strip():
            raise DataError(path, n, "id", "empty comment id")
        labels = []
        for raw in raw_ids:
            # ASCII digits only: int() also takes "1_0", " 3" and other scripts' digits
            if not (raw.isascii() and raw.isdigit()):
                raise DataError(path, n, "labels", f"label id {raw!r} is not an integer")
            i = int(raw)
            if not 0 <= i < len(GOEMOTIONS):
                raise DataError(
                    path, n, "labels", f"unknown label id {i} (0..{len(GOEMOTIONS) - 1})"
                )
            labels.append(GOEMOTIONS.labels[i])
        return Record(
            id=f"goemotions:{comment_id.strip()}",
            text=text,
            source=self.name,
            labels=GOEMOTIONS.canonical(labels),
            meta={"split": split},
        )


def _check_label_files(root: Path) -> None:
    """emotions.txt must list our label set in order; ekman_mapping.json, when present, must
    match the official grouping we hard-code."""
    path = root / "emotions.txt"
    names = [(n, line.strip()) for n, line in iter_lines(path, LoadReport()) if line.strip()]
    for k, expected in enumerate(GOEMOTIONS.labels):
        if k >= len(names):
            raise DataError(
                path, None, None, f"lists {len(names)} labels, expected 28 (missing {expected!r})"
            )
        n, got = names[k]
        if got != expected:
            raise DataError(
                path,
                n,
                None,
                f"expected label {expected!r} here, got {got!r} (names and order must match "
                "the GoEmotions label set)",
            )
    if len(names) > len(GOEMOTIONS):
        raise DataError(path, names[len(GOEMOTIONS)][0], None, "more than the 28 GoEmotions labels")
    ekman = root / "ekman_mapping.json"
    if ekman.exists():
        try:
            groups = json.loads(ekman.read_text(encoding="utf-8-sig"))  # a BOM is harmless
            theirs = {k: sorted(v) for k, v in groups.items()}
        except (ValueError, AttributeError, TypeError) as err:
            raise DataError(ekman, None, None, f"invalid JSON mapping ({err})") from None
        if theirs != {k: sorted(v) for k, v in GOEMOTIONS_EKMAN_GROUPS.items()}:
            raise DataError(ekman, None, None, "differs from the official GoEmotions→Ekman mapping")
