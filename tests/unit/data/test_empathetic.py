"""EmpatheticDialogues reader: one CSV row per turn → one record per conversation."""

from __future__ import annotations

import pytest

from emoloom.data import ReadOptions, load_split
from emoloom.errors import DataError, EmoloomError

HEADER = "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags"
TRAIN_IDS = [
    "empathetic:hit:901_conv:1801",
    "empathetic:hit:902_conv:1803",
    "empathetic:hit:903_conv:1805",
]


def _load(data_dir, split="train", **options):
    return load_split("empathetic", split, data_dir=data_dir, options=ReadOptions(**options))


def _write_train(data_dir, *rows: str) -> None:
    text = "\n".join([HEADER, *rows]) + "\n"
    (data_dir / "empatheticdialogues" / "train.csv").write_text(text, encoding="utf-8")


def test_one_record_per_conversation_with_conv_id(corpora_dir):
    assert [r.id for r in _load(corpora_dir).records] == TRAIN_IDS
    assert [r.id for r in _load(corpora_dir, "dev").records] == [
        "empathetic:hit:904_conv:1807",
        "empathetic:hit:905_conv:1809",
    ]
    assert [r.id for r in _load(corpora_dir, "test").records] == [
        "empathetic:hit:906_conv:1811",
        "empathetic:hit:907_conv:1813",
    ]


def test_label_is_the_context_column(corpora_dir):
    assert [r.labels for r in _load(corpora_dir).records] == [("proud",), ("lonely",), ("afraid",)]
    assert [r.labels for r in _load(corpora_dir, "test").records] == [("excited",), ("sad",)]


def test_valid_csv_is_the_dev_split_under_both_aliases(corpora_dir):
    for alias in ("dev", "valid", "validation"):
        loaded = _load(corpora_dir, alias)
        assert loaded.split == "dev"
        assert [p.name for p in loaded.files] == ["valid.csv"]
        assert loaded.records[0].labels == ("grateful",)


def test_situation_mode_uses_the_unescaped_prompt_without_context(corpora_dir):
    first = _load(corpora_dir).records[0]
    assert first.text == "My daughter finished her first marathon, all 42 km."
    assert "_comma_" not in first.text
    assert first.context == ()
    assert first.meta["turns"] == 3


def test_dialogue_mode_uses_the_last_turn_with_earlier_turns_as_context(corpora_dir):
    records = _load(corpora_dir, empathetic_input="dialogue").records
    assert records[0].text == "I am! She trained for a whole year."
    assert records[0].context == (
        "My daughter ran a marathon today!",
        "Wow, that is amazing. You must be proud.",
    )
    assert records[2].text == "Cats are scary at night!"
    assert records[2].context == (
        "Something crashed downstairs last night.",
        "Oh no, what was it?",
        "Just the cat, thankfully.",
    )
    assert all("_comma_" not in t for r in records for t in (r.text, *r.context))


def test_both_mode_puts_the_situation_first_in_context(corpora_dir):
    records = _load(corpora_dir, empathetic_input="both").records
    assert records[0].text == "I am! She trained for a whole year."
    assert records[0].context == (
        "My daughter finished her first marathon, all 42 km.",
        "My daughter ran a marathon today!",
        "Wow, that is amazing. You must be proud.",
    )
    assert records[1].context == (
        "Everyone moved away and the house feels empty.",
        "The house is so quiet now.",
    )


def test_max_context_turns_caps_dialogue_context(corpora_dir):
    records = _load(corpora_dir, empathetic_input="dialogue", max_context_turns=1).records
    assert records[2].context == ("Just the cat, thankfully.",)


def test_unknown_input_mode_is_refused():
    with pytest.raises(EmoloomError, match="empathetic_input"):
        ReadOptions(empathetic_input="prompt")


# ------------------------------------------------------------------------------- bad input

GOOD_A = [
    "hit:1_conv:2,1,joyful,We won the lottery_comma_ small prize.,1,Guess what happened!,,",
    "hit:1_conv:2,2,joyful,We won the lottery_comma_ small prize.,2,Tell me!,,",
]
GOOD_B = [
    "hit:3_conv:6,1,angry,Someone scratched my car.,3,My car got scratched.,,",
    "hit:3_conv:6,2,angry,Someone scratched my car.,4,That is awful.,,",
]

# (rows after the header, 1-based line of the error, field, message fragment)
BAD_FILES = {
    "wrong field count": (
        [GOOD_A[0], "hit:1_conv:2,2,joyful,We won.,2,Tell me, now!,,"],
        3,
        None,
        "expected 8 comma-separated fields, got 9",
    ),
    "unknown emotion label": (
        ["hit:1_conv:2,1,elated,We won.,1,Guess what!,,"],
        2,
        "context",
        "unknown emotion label 'elated'",
    ),
    "utterance_idx not an integer": (
        [GOOD_A[0], "hit:1_conv:2,two,joyful,We won.,2,Tell me!,,"],
        3,
        "utterance_idx",
        "not an integer: 'two'",
    ),
    "utterance_idx out of sequence": (
        [GOOD_A[0], "hit:1_conv:2,3,joyful,We won.,2,Tell me!,,"],
        3,
        "utterance_idx",
        "expected turn 2, got 3",
    ),
    "first utterance_idx is not 1": (
        ["hit:1_conv:2,2,joyful,We won.,1,Tell me!,,"],
        2,
        "utterance_idx",
        "expected turn 1, got 2",
    ),
    "label changes inside a conversation": (
        [GOOD_A[0], "hit:1_conv:2,2,proud,We won.,2,Tell me!,,"],
        3,
        "context",
        "label changes inside conversation 'hit:1_conv:2'",
    ),
    "conversation rows not consecutive": (
        [*GOOD_A, *GOOD_B, "hit:1_conv:2,3,joyful,We won.,1,More!,,"],
        6,
        "conv_id",
        "reappears (first at line 2)",
    ),
    "empty utterance": (
        [GOOD_A[0], "hit:1_conv:2,2,joyful,We won.,2, ,,"],
        3,
        "utterance",
        "empty",
    ),
    "empty situation": (
        ["hit:1_conv:2,1,joyful, ,1,Guess what!,,"],
        2,
        "prompt",
        "empty situation",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_malformed_rows_raise_data_error_with_file_line_and_field(case, data_copy, located):
    rows, line, field, fragment = BAD_FILES[case]
    _write_train(data_copy, *rows)
    with pytest.raises(DataError) as info:
        _load(data_copy)
    assert fragment in located(info.value, "train.csv", line, field)


def test_header_missing_a_column_is_named(data_copy, located):
    _write_train(data_copy, *GOOD_A)
    path = data_copy / "empatheticdialogues" / "train.csv"
    path.write_text(path.read_text().replace(",utterance,", ",text,", 1), encoding="utf-8")
    with pytest.raises(DataError) as info:
        _load(data_copy)
    assert "missing from the header" in located(info.value, "train.csv", 1, "utterance")


def test_empty_file_is_named(data_copy, located):
    (data_copy / "empatheticdialogues" / "test.csv").write_bytes(b"")
    with pytest.raises(DataError) as info:
        _load(data_copy, "test")
    assert "empty" in located(info.value, "test.csv", None)


def test_header_only_file_has_no_records(data_copy):
    (data_copy / "empatheticdialogues" / "test.csv").write_text(HEADER + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="no test records"):
        _load(data_copy, "test")


def test_bom_and_crlf_are_accepted(data_copy):
    text = "\r\n".join([HEADER, *GOOD_A, *GOOD_B]) + "\r\n"
    path = data_copy / "empatheticdialogues" / "train.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    records = _load(data_copy, empathetic_input="dialogue").records
    assert [r.id for r in records] == ["empathetic:hit:1_conv:2", "empathetic:hit:3_conv:6"]
    assert records[1].text == "That is awful."  # no stray "\r"


def test_skip_invalid_drops_bad_conversations_and_keeps_good_ones(data_copy):
    _write_train(
        data_copy,
        *GOOD_A,  # lines 2-3: dropped, the conversation reappears on line 12
        "hit:5_conv:10,1,elated,Unknown label.,5,Hi.,,",  # 4: unknown label
        "hit:5_conv:10,2,elated,Unknown label.,6,Hello.,,",  # 5: same conversation
        "hit:7_conv:14,1,sad,Lost keys.,7,I lost my keys.,,",  # 6
        "hit:7_conv:14,x,sad,Lost keys.,8,Oh no.,,",  # 7: utterance_idx not an integer
        "hit:8_conv:16,1,sad,Rainy day.,9,It rains.,,",  # 8
        "hit:8_conv:16,2,content,Rainy day.,10,I like rain.,,",  # 9: label changes
        *GOOD_B,  # 10-11: kept
        "hit:1_conv:2,3,joyful,We won.,1,Again!,,",  # 12: conversation reappears
    )
    loaded = _load(data_copy, skip_invalid=True)
    assert [r.id for r in loaded.records] == ["empathetic:hit:3_conv:6"]
    assert sorted((e.line, e.field) for e in loaded.report.skipped) == [
        (4, "context"),
        (7, "utterance_idx"),
        (9, "context"),
        (12, "conv_id"),
    ]
    assert all("train.csv:" in str(e) for e in loaded.report.skipped)


def test_skip_invalid_drops_a_conversation_whose_last_row_is_malformed(data_copy):
    # a conversation is all or nothing: never a shorter dialogue passed off as complete
    _write_train(
        data_copy,
        *GOOD_B,
        "hit:9_conv:18,1,sad,Lost keys.,7,I lost my keys.,,",
        "hit:9_conv:18,2,sad,Lost keys.,8,Oh no.,,,too,many",
    )
    loaded = _load(data_copy, skip_invalid=True, empathetic_input="dialogue")
    assert [r.id for r in loaded.records] == ["empathetic:hit:3_conv:6"]
    assert [e.line for e in loaded.report.skipped] == [5]
