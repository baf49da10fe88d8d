"""DailyDialog (Li et al., 2017): 7 classes (no emotion + Ekman six), one label per utterance.

Files (the official split zips): ``{train,validation,test}/dialogues_<split>.txt`` — one dialogue
per line, utterances separated by ``__eou__`` — and ``dialogues_emotion_<split>.txt`` — one line
per dialogue, one emotion id per utterance (0 no emotion, 1 anger, 2 disgust, 3 fear,
4 happiness, 5 sadness, 6 surprise). Hub: ``li2017dailydialog/daily_dialog`` (its parquet
conversion, the script is no longer loadable).

One record per utterance; ``context`` holds the preceding turns (oldest first, capped by
``max_context_turns``); id ``dailydialog:<split>:<dialogue line, 0-based>:<utterance index>``.

The text ships tokenised ("Say , Jim , how about ... ?", "it ' s"); with
``dailydialog_detokenize`` (default) spaces before punctuation and around apostrophes are
removed, so models see ordinary text. A dialogue whose utterance and label counts differ (one in
the official train file: line 7852, 12 utterances and 11 labels) cannot be aligned; it is
skipped and reported by default, or stops the load with ``dailydialog_misaligned="error"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

from emoloom.contract import Record
from emoloom.data.base import CorpusReader, HubSource, LoadReport, ReadOptions, iter_lines
from emoloom.errors import DataError
from emoloom.labels import DAILYDIALOG

_SPLIT_DIRS = {"train": "train", "dev": "validation", "test": "test"}
_APOSTROPHE = re.compile(r"\s*[’']\s*(s|t|ll|re|m|d|ve)\b", re.IGNORECASE)
_O_CLOCK = re.compile(r"\b([oO])\s*[’']\s*clock\b")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:%)])")
_SPACE_AFTER_OPEN = re.compile(r"([($])\s+")


def detokenize(text: str) -> str:
    text = _O_CLOCK.sub(r"\1'clock", text)
    text = _APOSTROPHE.sub(r"'\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _SPACE_AFTER_OPEN.sub(r"\1", text).strip()


class DailyDialog(CorpusReader):
    name = "dailydialog"
    label_set = DAILYDIALOG
    dirname = "dailydialog"
    hub = HubSource(
        "li2017dailydialog/daily_dialog",
        revision="refs/convert/parquet",
        split_names={"dev": "validation"},
    )

    def files(self, root: Path, split: str) -> list[Path]:
        folder = root / _SPLIT_DIRS[split]
        name = _SPLIT_DIRS[split]
        return [folder / f"dialogues_{name}.txt", folder / f"dialogues_emotion_{name}.txt"]

    def read_local(
        self, root: Path, split: str, options: ReadOptions, report: LoadReport
    ) -> Iterator[Record]:
        text_path, emo_path = self.files(root, split)
        texts = iter_lines(text_path, report, keep_bad=True)
        emotions = iter_lines(emo_path, report, keep_bad=True)
        for pair in zip_longest(texts, emotions):
            if pair[0] is None or pair[1] is None:
                # Never pair dialogues with the wrong labels: a length mismatch stops the load.
                raise DataError(
                    emo_path if pair[0] is None else text_path,
                    (pair[0] or pair[1])[0],
                    None,
                    f"{text_path.name} and {emo_path.name} have different numbers of lines",
                )
            (n, line), (_, emo_line) = pair
            if line is None or emo_line is None:
                continue  # bad UTF-8, already reported
            utterances = [u.strip() for u in line.split("__eou__")]
            if utterances and not utterances[-1]:
                utterances.pop()  # each dialogue line ends with "__eou__ "
            yield from self._dialogue(
                text_path, n, split, utterances, emo_line.split(), options, report, emo_path
            )

    def read_hub(
        self,
        rows: Iterable[Mapping[str, Any]],
        split: str,
        options: ReadOptions,
        report: LoadReport,
    ) -> Iterator[Record]:
        where = self.hub.describe(split)
        for n, row in enumerate(rows, start=1):
            try:
                utterances = [str(u).strip() for u in row["dialog"]]
                emotions = [str(e) for e in row["emotion"]]
            except (KeyError, TypeError) as err:
                report.reject(DataError(where, n, None, f"unexpected row shape: {err!r}"))
                continue
            yield from self._dialogue(where, n, split, utterances, emotions, options, report)

    def _dialogue(
        self,
        path: Path | str,
        n: int,
        split: str,
        utterances: Sequence[str],
        emotion_ids: Sequence[str],
        options: ReadOptions,
        report: LoadReport,
        label_path: Path | str | None = None,
    ) -> Iterator[Record]:
        """Records of one dialogue; `label_path` is the file holding the emotion ids when it is
        not `path` (local files come in pairs: a bad id is named in the file that has it)."""
        if not utterances and not emotion_ids:
            report.reject(DataError(path, n, None, "empty dialogue (no utterances, no labels)"))
            return
        if len(utterances) != len(emotion_ids):
            error = DataError(
                path,
                n,
                None,
                f"dialogue has {len(utterances)} utterances but {len(emotion_ids)} emotion "
                "labels; skipped (labels cannot be aligned)",
            )
            if options.dailydialog_misaligned == "error":
                raise error
            report.skip_known_defect(error)
            return
        labels = []
        for k, raw in enumerate(emotion_ids):
            if raw not in ("0", "1", "2", "3", "4", "5", "6"):
                where = label_path or path
                report.reject(DataError(where, n, f"emotion[{k}]", f"unknown emotion id {raw!r}"))
                return
            labels.append(DAILYDIALOG.labels[int(raw)])
        texts = [detokenize(u) if options.dailydialog_detokenize else u for u in utterances]
        for k, text in enumerate(texts):
            if not text:
                report.reject(DataError(path, n, f"utterance[{k}]", "empty"))
                return
        for k, (text, label) in enumerate(zip(texts, labels, strict=True)):
            yield Record(
                id=f"dailydialog:{split}:{n - 1}:{k}",
                text=text,
                context=options.context(texts[:k]),
                source=self.name,
                labels=(label,),
                meta={"split": split},
            )
