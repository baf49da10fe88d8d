"""DailyDialog reader: parallel dialogue / emotion files → one record per utterance."""

from __future__ import annotations

import pytest

from emoloom.data import ReadOptions, load_split
from emoloom.data.dailydialog import detokenize
from emoloom.errors import DataError
from emoloom.labels import DAILYDIALOG

# train line 3 (0-based 2) is the misaligned dialogue: 3 utterances, 2 labels
TRAIN_IDS = [
    "dailydialog:train:0:0",
    "dailydialog:train:0:1",
    "dailydialog:train:0:2",
    "dailydialog:train:1:0",
    "dailydialog:train:1:1",
    "dailydialog:train:3:0",
    "dailydialog:train:3:1",
]


def _train(data_dir, **options):
    return load_split("dailydialog", "train", data_dir=data_dir, options=ReadOptions(**options))


def test_ids_name_split_dialogue_line_and_utterance_index(corpora_dir):
    assert [r.id for r in _train(corpora_dir).records] == TRAIN_IDS
    dev = load_split("dailydialog", "dev", data_dir=corpora_dir).records
    test = load_split("dailydialog", "test", data_dir=corpora_dir).records
    assert [r.id for r in dev] == [
        "dailydialog:dev:0:0",
        "dailydialog:dev:0:1",
        "dailydialog:dev:1:0",
        "dailydialog:dev:1:1",
        "dailydialog:dev:1:2",
    ]
    assert [r.id for r in test] == [
        "dailydialog:test:0:0",
        "dailydialog:test:0:1",
        "dailydialog:test:1:0",
        "dailydialog:test:1:1",
    ]


def test_emotion_ids_zero_to_six_map_to_label_names(corpora_dir):
    labels = {
        split: [r.labels[0] for r in load_split("dailydialog", split, data_dir=corpora_dir).records]
        for split in ("train", "dev", "test")
    }
    # emotion files: train "0 0 4" "1 5" (misaligned) "0 0"; dev "0 2" "4 4 6"; test "3 0" "0 0"
    assert labels == {
        "train": ["no emotion", "no emotion", "happiness", "anger", "sadness"]
        + ["no emotion", "no emotion"],
        "dev": ["no emotion", "disgust", "happiness", "happiness", "surprise"],
        "test": ["fear", "no emotion", "no emotion", "no emotion"],
    }
    assert DAILYDIALOG.labels.index("fear") == 3  # ids index the label set


def test_context_holds_the_preceding_turns_oldest_first(corpora_dir):
    records = {r.id: r for r in _train(corpora_dir).records}
    assert records["dailydialog:train:0:0"].context == ()
    assert records["dailydialog:train:0:1"].context == ("Well, Tom, are you free tonight?",)
    assert records["dailydialog:train:0:2"].context == (
        "Well, Tom, are you free tonight?",
        "Sure, it's my day off.",
    )
    # context never crosses into the previous dialogue
    assert records["dailydialog:train:1:0"].context == ()


@pytest.mark.parametrize(
    ("cap", "expected"),
    [(None, 2), (5, 2), (1, 1), (0, 0)],
)
def test_max_context_turns_keeps_only_the_latest_turns(corpora_dir, cap, expected):
    records = {r.id: r for r in _train(corpora_dir, max_context_turns=cap).records}
    context = records["dailydialog:train:0:2"].context
    assert len(context) == expected
    if expected:
        assert context[-1] == "Sure, it's my day off."


def test_text_is_detokenised_by_default(corpora_dir):
    texts = [r.text for r in _train(corpora_dir).records]
    assert texts[:5] == [
        "Well, Tom, are you free tonight?",
        "Sure, it's my day off.",
        "Great! I'll book a table.",
        "You broke my lovely vase!",
        "I'm so sorry, I can't believe it.",
    ]


def test_detokenize_false_keeps_the_original_tokens(corpora_dir):
    records = _train(corpora_dir, dailydialog_detokenize=False).records
    assert records[0].text == "Well , Tom , are you free tonight ?"
    assert records[1].text == "Sure , it ' s my day off ."
    assert records[2].context == (
        "Well , Tom , are you free tonight ?",
        "Sure , it ' s my day off .",
    )


@pytest.mark.parametrize(
    ("tokenised", "plain"),
    [
        ("Say , Jim ?", "Say, Jim?"),
        ("it ' s", "it's"),
        ("I ’ ll go . ", "I'll go."),
        ("We don ' t , we can ' t ; they won ' t !", "We don't, we can't; they won't!"),
        ("It costs $ 20 ( or less ) .", "It costs $20 (or less)."),
        ("He said ' so ' .", "He said ' so '."),  # a quote before "so" is not a contraction
        ("at 5 o ’ clock .", "at 5 o'clock."),
    ],
)
def test_detokenize_joins_punctuation_and_contractions(tokenised, plain):
    assert detokenize(tokenised) == plain


def test_validation_folder_is_the_dev_split(corpora_dir):
    dev = load_split("dailydialog", "validation", data_dir=corpora_dir)
    assert dev.split == "dev"
    assert [p.name for p in dev.files] == [
        "dialogues_validation.txt",
        "dialogues_emotion_validation.txt",
    ]
    assert dev.records[2].text == "Happy birthday, Mary!"


# ---------------------------------------------------------------------- misaligned dialogue


def test_misaligned_dialogue_is_skipped_and_named(corpora_dir):
    loaded = _train(corpora_dir)
    assert not any(r.id.startswith("dailydialog:train:2:") for r in loaded.records)
    (error,) = loaded.report.skipped
    assert "dialogues_train.txt:3: " in str(error)
    assert "3 utterances but 2 emotion labels" in str(error)


def test_misaligned_dialogue_is_skipped_even_when_invalid_rows_stop_the_load(corpora_dir):
    # the known defect of the release is not an "invalid row": skip_invalid=False still loads
    assert ReadOptions().skip_invalid is False
    assert len(_train(corpora_dir).records) == 7


def test_misaligned_dialogue_raises_when_asked_to(corpora_dir, located):
    with pytest.raises(DataError) as info:
        _train(corpora_dir, dailydialog_misaligned="error")
    assert "cannot be aligned" in located(info.value, "dialogues_train.txt", 3)


def test_emotion_file_with_an_extra_line_raises(data_copy, located):
    path = data_copy / "dailydialog" / "train" / "dialogues_emotion_train.txt"
    path.write_text(path.read_text(encoding="utf-8") + "0 0 \n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        _train(data_copy)
    text = located(info.value, "dialogues_emotion_train.txt", 5)
    assert "different numbers of lines" in text


def test_dialogue_file_with_an_extra_line_raises(data_copy, located):
    path = data_copy / "dailydialog" / "train" / "dialogues_train.txt"
    path.write_text(path.read_text(encoding="utf-8") + "One more . __eou__ \n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        _train(data_copy, skip_invalid=True)  # never skippable: labels would shift
    assert "different numbers of lines" in located(info.value, "dialogues_train.txt", 5)


def test_unknown_emotion_id_raises_with_its_position(data_copy, rewrite_line, located):
    rewrite_line(data_copy / "dailydialog" / "train" / "dialogues_emotion_train.txt", 1, "0 0 7 ")
    with pytest.raises(DataError) as info:
        _train(data_copy)
    # named in the file that holds the id, not in its dialogue file
    text = located(info.value, "dialogues_emotion_train.txt", 1, "emotion[2]")
    assert "unknown emotion id '7'" in text


def test_empty_utterance_raises_with_its_position(data_copy, rewrite_line, located):
    rewrite_line(
        data_copy / "dailydialog" / "train" / "dialogues_train.txt",
        4,
        "Please pass the salt . __eou__  __eou__ ",
    )
    with pytest.raises(DataError) as info:
        _train(data_copy)
    located(info.value, "dialogues_train.txt", 4, "utterance[1]")


def test_an_empty_dialogue_line_pair_is_an_error_not_a_silent_gap(data_copy, rewrite_line, located):
    folder = data_copy / "dailydialog" / "train"
    rewrite_line(folder / "dialogues_train.txt", 2, "")
    rewrite_line(folder / "dialogues_emotion_train.txt", 2, "")
    with pytest.raises(DataError) as info:
        _train(data_copy)
    assert "empty dialogue" in located(info.value, "dialogues_train.txt", 2)


def test_invalid_utf8_dialogue_raises_with_its_line(data_copy, rewrite_line, located):
    rewrite_line(
        data_copy / "dailydialog" / "train" / "dialogues_train.txt", 2, b"Caf\xe9 ! __eou__ "
    )
    with pytest.raises(DataError) as info:
        _train(data_copy)
    assert "invalid UTF-8" in located(info.value, "dialogues_train.txt", 2)


def test_skip_invalid_drops_bad_dialogues_without_shifting_labels(data_copy, rewrite_line):
    folder = data_copy / "dailydialog" / "train"
    rewrite_line(folder / "dialogues_train.txt", 1, b"Caf\xe9 ! __eou__ Oui . __eou__ ")
    rewrite_line(folder / "dialogues_emotion_train.txt", 4, "0 9 ")
    loaded = _train(data_copy, skip_invalid=True)
    assert [r.id for r in loaded.records] == ["dailydialog:train:1:0", "dailydialog:train:1:1"]
    assert [r.labels for r in loaded.records] == [("anger",), ("sadness",)]
    assert [r.text for r in loaded.records] == [
        "You broke my lovely vase!",
        "I'm so sorry, I can't believe it.",
    ]
    reasons = sorted(str(e).split("dialogues_")[-1] for e in loaded.report.skipped)
    assert reasons == [
        "emotion_train.txt:4: emotion[1]: unknown emotion id '9'",
        "train.txt:1: invalid UTF-8 at byte 3",
        "train.txt:3: dialogue has 3 utterances but 2 emotion labels; skipped (labels cannot "
        "be aligned)",
    ]


def test_missing_emotion_file_is_named(data_copy):
    (data_copy / "dailydialog" / "test" / "dialogues_emotion_test.txt").unlink()
    with pytest.raises(DataError, match=r"dialogues_emotion_test\.txt: file not found"):
        load_split("dailydialog", "test", data_dir=data_copy)
