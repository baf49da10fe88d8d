"""EmoBank reader: one CSV (id, split, V, A, D, text) with gold VAD on 1-5."""

from __future__ import annotations

import shutil

import pytest

from emoloom.data import ReadOptions, load_split
from emoloom.errors import DataError
from emoloom.lexicon import WeakVADConfig

HEADER = "id,split,V,A,D,text"


def _load(data_dir, split="train", **options):
    return load_split("emobank", split, data_dir=data_dir, options=ReadOptions(**options))


def _write(data_dir, *rows: str) -> None:
    text = "\n".join([HEADER, *rows]) + "\n"
    (data_dir / "emobank" / "emobank.csv").write_text(text, encoding="utf-8")


def test_split_column_selects_the_rows_of_each_split(corpora_dir):
    ids = {s: [r.id for r in _load(corpora_dir, s).records] for s in ("train", "dev", "test")}
    assert ids == {
        "train": ["emobank:fx_b01", "emobank:fx_b02", "emobank:fx_b03", "emobank:fx_b08"],
        "dev": ["emobank:fx_b04", "emobank:fx_b05"],
        "test": ["emobank:fx_b06", "emobank:fx_b07"],
    }


def test_one_to_five_scale_maps_to_unit_gold_vad(corpora_dir):
    records = {r.id: r for r in _load(corpora_dir, "dev").records}
    assert records["emobank:fx_b04"].vad.as_tuple() == (1.0, 0.0, 0.375)  # 5.0, 1.0, 2.5
    assert records["emobank:fx_b05"].vad.as_tuple() == (0.3, 0.45, 0.475)  # 2.2, 2.8, 2.9
    for r in records.values():
        assert r.meta["vad_source"] == "gold"
        assert r.labels == ()
        assert "vad_lexicon" not in r.meta


def test_gold_vad_is_kept_whatever_the_weak_vad_lexicon(corpora_dir):
    for lexicon in ("nrc", "warriner", "none"):
        loaded = load_split(
            "emobank", "test", data_dir=corpora_dir, weak_vad=WeakVADConfig(lexicon=lexicon)
        )
        assert [r.vad.as_tuple() for r in loaded.records] == [(0.0, 1.0, 0.6), (0.6, 0.35, 0.525)]
        assert {r.meta["vad_source"] for r in loaded.records} == {"gold"}


def test_csv_quoting_keeps_commas_and_quotes_in_text(corpora_dir):
    texts = {r.id: r.text for r in _load(corpora_dir).records}
    assert texts["emobank:fx_b02"] == "What a wonderful, sunny morning!"
    assert texts["emobank:fx_b03"] == 'He said "never again" and left.'


def test_dev_split_answers_to_validation_and_valid(corpora_dir):
    for alias in ("validation", "valid"):
        loaded = _load(corpora_dir, alias)
        assert loaded.split == "dev"
        assert [r.id for r in loaded.records] == ["emobank:fx_b04", "emobank:fx_b05"]


def test_gold_vad_corpus_loads_without_a_lexicon_folder(data_copy):
    # every record has gold VAD, so no weak-VAD lexicon is needed
    shutil.rmtree(data_copy / "nrc_vad")
    loaded = _load(data_copy, "dev")
    assert [r.id for r in loaded.records] == ["emobank:fx_b04", "emobank:fx_b05"]


# ------------------------------------------------------------------------------- bad input

GOOD = "ok1,train,3.0,3.0,3.0,A plain sentence."

# (row at line 3, field, message fragment)
BAD_ROWS = {
    "non-numeric V": ("x,train,high,3,3,Text.", "V", "not a number: 'high'"),
    "empty A": ("x,train,3,,3,Text.", "A", "not a number: ''"),
    "V above 5": ("x,train,5.5,3,3,Text.", "V", "outside the 1-5 scale"),
    "D below 1": ("x,train,3,3,0.5,Text.", "D", "outside the 1-5 scale"),
    "NaN": ("x,train,NaN,3,3,Text.", "V", "nan outside the 1-5 scale"),
    "infinity": ("x,train,3,inf,3,Text.", "A", "outside the 1-5 scale"),
    "wrong column count": ("x,train,3,3,3,Text,with an unquoted comma", None, "expected 6"),
    "too few columns": ("x,train,3,3", None, "got 4"),
    "empty text": ('x,train,3,3,3," "', "text", "empty"),
    "unknown split": ("x,training,3,3,3,Text.", "split", "unknown split 'training'"),
    "duplicate id": ("ok1,train,3,3,3,Again.", "id", "first at line 2"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS), ids=list(BAD_ROWS))
def test_malformed_row_raises_data_error_with_file_line_and_field(case, data_copy, located):
    row, field, fragment = BAD_ROWS[case]
    _write(data_copy, GOOD, row)
    with pytest.raises(DataError) as info:
        _load(data_copy)
    assert fragment in located(info.value, "emobank.csv", 3, field)


def test_header_missing_a_column_is_named(data_copy, located):
    (data_copy / "emobank" / "emobank.csv").write_text(
        "id,split,Valence,A,D,text\n" + GOOD + "\n", encoding="utf-8"
    )
    with pytest.raises(DataError) as info:
        _load(data_copy)
    assert "missing from the header" in located(info.value, "emobank.csv", 1, "V")


def test_empty_file_is_named(data_copy, located):
    (data_copy / "emobank" / "emobank.csv").write_bytes(b"")
    with pytest.raises(DataError) as info:
        _load(data_copy)
    assert "empty" in located(info.value, "emobank.csv", None)


def test_invalid_utf8_raises_with_its_line(data_copy, located):
    path = data_copy / "emobank" / "emobank.csv"
    path.write_bytes(HEADER.encode() + b"\n" + GOOD.encode() + b"\nx,train,3,3,3,Caf\xe9.\n")
    with pytest.raises(DataError) as info:
        _load(data_copy)
    assert "invalid UTF-8" in located(info.value, "emobank.csv", 3)


def test_rows_of_other_splits_are_not_validated_against_this_split(data_copy):
    _write(data_copy, GOOD, "x,dev,9,3,3,Bad V in another split.")
    assert [r.id for r in _load(data_copy).records] == ["emobank:ok1"]


def test_line_numbers_stay_right_after_a_quoted_multi_line_text(data_copy, located):
    _write(data_copy, 'm1,train,3,3,3,"two\nlines"', "x,train,3,3,oops,Text.")
    with pytest.raises(DataError) as info:
        _load(data_copy)
    located(info.value, "emobank.csv", 4, "D")


def test_error_in_a_multi_line_row_names_its_first_line(data_copy, located):
    _write(data_copy, GOOD, 'x,train,3,3,oops,"starts here\nends here"')
    with pytest.raises(DataError) as info:
        _load(data_copy)
    located(info.value, "emobank.csv", 3, "D")


def test_unterminated_quote_does_not_swallow_the_following_rows(data_copy):
    # a lenient csv reader would turn every following line into one text field
    _write(data_copy, 'q1,train,3,3,3,"an unclosed quote, oops', "q2,train,3,3,3,Second.")
    with pytest.raises(DataError, match=r"emobank\.csv:2: "):
        _load(data_copy)


def test_skip_invalid_drops_exactly_the_bad_rows(data_copy):
    _write(
        data_copy,
        GOOD,  # 2
        "b3,train,high,3,3,Not a number.",  # 3
        "b4,train,3,3,3,Too,many",  # 4
        "ok5,dev,2,2,2,Another split.",  # 5: not in train, not an error
        "b6,train,3,NaN,3,Not a number either.",  # 6
        'ok7,train,1,5,2.5,"Quoted, with a comma."',  # 7
        "b8,train,0,3,3,Below the scale.",  # 8
        "ok1,train,3,3,3,Duplicate id.",  # 9
        "ok10,train,4.2,3.6,3.4,Last one.",  # 10
    )
    loaded = _load(data_copy, skip_invalid=True)
    assert [r.id for r in loaded.records] == ["emobank:ok1", "emobank:ok7", "emobank:ok10"]
    assert loaded.records[1].vad.as_tuple() == (0.0, 1.0, 0.375)
    assert [(e.line, e.field) for e in loaded.report.skipped] == [
        (3, "V"),
        (4, None),
        (6, "A"),
        (8, "V"),
        (9, "id"),
    ]
