"""The real corpora under ../shared/data (or $EMOLOOM_DATA): counts the issue pins down.

CI has ../shared/data; a missing directory fails these tests rather than skipping them.
"""

from __future__ import annotations

from functools import cache

import pytest

from emoloom.data import load_split, resolve_data_dir
from emoloom.labels import DAILYDIALOG, EMPATHETIC, GOEMOTIONS

pytestmark = pytest.mark.integration

EXPECTED = {
    ("goemotions", "train"): 43_410,
    ("goemotions", "dev"): 5_426,
    ("goemotions", "test"): 5_427,
    ("dailydialog", "train"): 87_159,
    ("dailydialog", "dev"): 8_069,
    ("dailydialog", "test"): 7_740,
    # conversations of the re-split ~22% part of the official ED train split
    ("empathetic", "train"): 3_456,
    ("empathetic", "dev"): 432,
    ("empathetic", "test"): 431,
}
LABEL_SETS = {"goemotions": GOEMOTIONS, "dailydialog": DAILYDIALOG, "empathetic": EMPATHETIC}


@pytest.fixture(scope="module")
def data_dir():
    root = resolve_data_dir()
    assert root is not None and (root / "goemotions").is_dir(), (
        "the integration tests need ../shared/data or EMOLOOM_DATA"
    )
    return root


@cache
def load(corpus, split):
    return load_split(corpus, split)  # reading the same split once per session saves seconds


@pytest.mark.parametrize("corpus, split", list(EXPECTED), ids=[f"{c}-{s}" for c, s in EXPECTED])
def test_real_split_loads_with_the_published_counts(data_dir, corpus, split):
    loaded = load(corpus, split)
    records = loaded.records
    assert len(records) == EXPECTED[(corpus, split)]
    assert len({r.id for r in records}) == len(records), "ids must be unique"
    label_set = LABEL_SETS[corpus]
    for r in records:
        assert r.vad is not None and all(0.0 <= x <= 1.0 for x in r.vad.as_tuple()), r.id
        assert r.meta["vad_source"] in ("lexicon", "prior"), r.id
        assert r.labels and all(lab in label_set for lab in r.labels), r.id
    # most texts have enough lexicon hits for a lexicon-based target
    assert sum(r.meta["vad_source"] == "lexicon" for r in records) > 0.7 * len(records)


def test_the_misaligned_dailydialog_train_dialogue_is_named_and_skipped(data_dir):
    loaded = load("dailydialog", "train")
    (error,) = loaded.report.skipped
    assert error.path.endswith("dialogues_train.txt") and error.line == 7852  # 0-based 7851
    assert "12 utterances but 11 emotion labels" in error.message
    assert not any(r.id.startswith("dailydialog:train:7851:") for r in loaded.records)


def test_goemotions_multi_label_rows_match_the_data_readme(data_dir):
    # the data README counts 7,102 / 878 / 837 lines with more than one label
    for split, expected in (("train", 7_102), ("dev", 878), ("test", 837)):
        records = load("goemotions", split).records
        assert sum(len(r.labels) > 1 for r in records) == expected


def test_lexicon_targets_separate_positive_from_negative_gold_labels(data_dir):
    # weak VAD must carry signal, not noise: joy rows score above sadness rows on valence
    records = load("goemotions", "dev").records

    def mean_v(label):
        vs = [r.vad.v for r in records if r.labels == (label,)]
        return sum(vs) / len(vs)

    assert mean_v("joy") > mean_v("neutral") > mean_v("sadness")
