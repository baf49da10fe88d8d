"""GoEmotions reader: original TSVs (text, label ids, comment id) → one record per comment."""

from __future__ import annotations

import pytest

from emoloom.data import ReadOptions, load_split
from emoloom.errors import DataError
from emoloom.labels import GOEMOTIONS

TRAIN_IDS = [f"goemotions:fx01{c}" for c in "abcde"]


def test_each_split_reads_its_own_tsv_with_comment_ids(corpora_dir):
    ids = {
        split: [r.id for r in load_split("goemotions", split, data_dir=corpora_dir).records]
        for split in ("train", "dev", "test")
    }
    assert ids == {
        "train": TRAIN_IDS,
        "dev": ["goemotions:fx02a", "goemotions:fx02b", "goemotions:fx02c"],
        "test": ["goemotions:fx03a", "goemotions:fx03b", "goemotions:fx03c"],
    }


def test_label_ids_become_names_in_label_set_order(corpora_dir):
    records = {r.id: r for r in load_split("goemotions", "train", data_dir=corpora_dir).records}
    # the file lists "18,15" and "26,6": names come out in GOEMOTIONS order, not file order
    assert records["goemotions:fx01a"].labels == ("gratitude", "love")
    assert records["goemotions:fx01c"].labels == ("confusion", "surprise")
    assert records["goemotions:fx01b"].labels == ("disapproval",)
    assert records["goemotions:fx01d"].labels == ("neutral",)
    assert records["goemotions:fx01e"].labels == ("admiration", "joy")
    for r in records.values():
        assert r.labels == GOEMOTIONS.canonical(r.labels)


def test_text_source_and_split_are_kept(corpora_dir):
    first = load_split("goemotions", "train", data_dir=corpora_dir).records[0]
    assert first.text == "I love this so much, thank you!"
    assert first.source == "goemotions"
    assert first.context == ()
    assert first.meta["split"] == "train"


def test_validation_is_an_alias_of_dev(corpora_dir):
    dev = load_split("goemotions", "dev", data_dir=corpora_dir)
    alias = load_split("goemotions", "validation", data_dir=corpora_dir)
    assert alias.split == "dev"
    assert [r.id for r in alias.records] == [r.id for r in dev.records]
    assert {r.meta["split"] for r in alias.records} == {"dev"}


def test_loaded_split_names_its_files_and_label_set(corpora_dir):
    loaded = load_split("goemotions", "test", data_dir=corpora_dir)
    assert [p.name for p in loaded.files] == ["test.tsv", "emotions.txt", "ekman_mapping.json"]
    assert loaded.label_set is GOEMOTIONS
    assert loaded.report.skipped == []


# ------------------------------------------------------------------------------- bad input

# (line to corrupt in train.tsv, its new content, expected field, message fragment)
BAD_ROWS = {
    "wrong column count": (2, "no labels here\tfx01b", None, "expected 3 tab-separated columns"),
    "too many columns": (2, "a\t10\tfx01b\textra", None, "got 4"),
    "unknown label id": (3, "Wait, what?\t26,28\tfx01c", "labels", "unknown label id 28"),
    "non-integer label id": (4, "Ok.\tneutral\tfx01d", "labels", "'neutral' is not an integer"),
    "empty label list": (4, "Ok.\t\tfx01d", "labels", "is not an integer"),
    "empty text": (4, "   \t27\tfx01d", "text", "empty"),
    "empty comment id": (4, "Ok.\t27\t ", "id", "empty comment id"),
    "duplicate comment id": (5, "Same id again.\t27\tfx01a", "id", "first at line 1"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS), ids=list(BAD_ROWS))
def test_malformed_row_raises_data_error_with_file_line_and_field(
    case, data_copy, rewrite_line, located
):
    line, content, field, fragment = BAD_ROWS[case]
    rewrite_line(data_copy / "goemotions" / "train.tsv", line, content)
    with pytest.raises(DataError) as info:
        load_split("goemotions", "train", data_dir=data_copy)
    assert fragment in located(info.value, "train.tsv", line, field)


def test_invalid_utf8_in_a_line_raises_with_its_line(data_copy, rewrite_line, located):
    rewrite_line(data_copy / "goemotions" / "train.tsv", 2, b"caf\xe9 au lait\t10\tfx01b")
    with pytest.raises(DataError) as info:
        load_split("goemotions", "train", data_dir=data_copy)
    assert "invalid UTF-8" in located(info.value, "train.tsv", 2)


def test_skip_invalid_drops_exactly_the_bad_rows_and_reports_them(data_copy):
    path = data_copy / "goemotions" / "train.tsv"
    path.write_bytes(
        b"Good one.\t17\tok1\n"  # 1
        b"two columns\tbad2\n"  # 2
        b"Unknown id.\t28\tbad3\n"  # 3
        b"Word id.\tjoy\tbad4\n"  # 4
        b"Also good.\t0,4\tok5\n"  # 5
        b" \t27\tbad6\n"  # 6
        b"caf\xe9\t27\tbad7\n"  # 7
        b"Duplicate.\t27\tok1\n"  # 8
        b"Last good.\t27\tok9\n"  # 9
    )
    loaded = load_split(
        "goemotions", "train", data_dir=data_copy, options=ReadOptions(skip_invalid=True)
    )
    assert [r.id for r in loaded.records] == ["goemotions:ok1", "goemotions:ok5", "goemotions:ok9"]
    assert loaded.records[1].labels == ("admiration", "approval")
    assert [e.line for e in loaded.report.skipped] == [2, 3, 4, 6, 7, 8]
    reasons = [str(e) for e in loaded.report.skipped]
    assert all("train.tsv:" in r for r in reasons)
    assert "unknown label id 28" in reasons[1]
    assert "invalid UTF-8" in reasons[4]
    assert "duplicate id" in reasons[5]


def test_no_records_at_all_is_an_error(data_copy):
    (data_copy / "goemotions" / "dev.tsv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no dev records"):
        load_split("goemotions", "dev", data_dir=data_copy)


# ----------------------------------------------------------------------------- label files


def test_reordered_emotions_file_is_rejected(data_copy):
    path = data_copy / "goemotions" / "emotions.txt"
    names = path.read_text(encoding="utf-8").split("\n")
    names[0], names[1] = names[1], names[0]
    path.write_text("\n".join(names), encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_split("goemotions", "train", data_dir=data_copy)
    assert "emotions.txt" in str(info.value)
    assert "order" in str(info.value)


def test_reordered_emotions_file_error_names_the_first_differing_line(data_copy, located):
    path = data_copy / "goemotions" / "emotions.txt"
    names = path.read_text(encoding="utf-8").split("\n")
    names[2], names[3] = names[3], names[2]  # anger <-> annoyance: lines 3 and 4
    path.write_text("\n".join(names), encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_split("goemotions", "train", data_dir=data_copy)
    located(info.value, "emotions.txt", 3)


def test_emotions_file_with_a_missing_label_is_rejected(data_copy):
    path = data_copy / "goemotions" / "emotions.txt"
    path.write_text("\n".join(GOEMOTIONS.labels[:-1]), encoding="utf-8")
    with pytest.raises(DataError, match="emotions.txt"):
        load_split("goemotions", "train", data_dir=data_copy)


def test_emotions_file_with_a_trailing_newline_is_accepted(data_copy):
    path = data_copy / "goemotions" / "emotions.txt"
    path.write_text("\n".join(GOEMOTIONS.labels) + "\n", encoding="utf-8")
    assert len(load_split("goemotions", "train", data_dir=data_copy).records) == 5


def test_emotions_file_with_invalid_utf8_raises_data_error(data_copy):
    path = data_copy / "goemotions" / "emotions.txt"
    path.write_bytes(path.read_bytes().replace(b"anger", b"ang\xe9r", 1))
    with pytest.raises(DataError, match="emotions.txt"):
        load_split("goemotions", "train", data_dir=data_copy)


def test_missing_emotions_file_is_named(data_copy):
    (data_copy / "goemotions" / "emotions.txt").unlink()
    with pytest.raises(DataError, match=r"emotions\.txt: file not found"):
        load_split("goemotions", "train", data_dir=data_copy)


def test_ekman_mapping_that_differs_from_the_official_grouping_is_rejected(data_copy):
    path = data_copy / "goemotions" / "ekman_mapping.json"
    path.write_text('{"anger": ["anger"], "joy": ["joy"]}\n', encoding="utf-8")
    with pytest.raises(DataError, match="ekman_mapping.json.*differs"):
        load_split("goemotions", "train", data_dir=data_copy)


def test_ekman_mapping_that_is_not_json_is_rejected(data_copy):
    (data_copy / "goemotions" / "ekman_mapping.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(DataError, match="ekman_mapping.json.*invalid JSON"):
        load_split("goemotions", "train", data_dir=data_copy)
