"""Contract JSONL files (`load_jsonl`): your own data in the record format."""

from __future__ import annotations

import pytest

from emoloom.data import ReadOptions, load_jsonl
from emoloom.errors import DataError
from emoloom.labels import DAILYDIALOG, GOEMOTIONS
from emoloom.lexicon import WeakVADConfig

GOOD = [
    '{"id":"a","text":"I love this, it is great and wonderful.","labels":["joy"]}',
    '{"id":"b","text":"Kept as gold.","vad":{"v":0.1,"a":0.2,"d":0.3}}',
    '{"id":"c","text":"Some context here.","context":["Earlier turn."],"labels":["neutral"]}',
]
NO_LEXICON = WeakVADConfig(lexicon="none")


def _write(tmp_path, lines: list[str], name: str = "in.jsonl", end: str = "\n"):
    path = tmp_path / name
    path.write_text("".join(line + end for line in lines), encoding="utf-8")
    return path


def test_good_file_loads_with_ids_and_fields(tmp_path, corpora_dir):
    loaded = load_jsonl(_write(tmp_path, GOOD), data_dir=corpora_dir)
    assert [r.id for r in loaded.records] == ["a", "b", "c"]
    assert loaded.records[2].context == ("Earlier turn.",)
    assert loaded.split == "in"
    assert loaded.corpus == "jsonl"
    assert loaded.report.skipped == []


def test_given_vad_stays_gold_and_missing_vad_gets_a_weak_target(tmp_path, corpora_dir):
    a, b, c = load_jsonl(_write(tmp_path, GOOD), data_dir=corpora_dir).records
    assert b.vad.as_tuple() == (0.1, 0.2, 0.3)
    assert b.meta["vad_source"] == "gold"
    assert a.meta["vad_source"] == "lexicon"  # love, great, wonderful are in the fixture lexicon
    assert a.meta["vad_lexicon"] == "nrc_vad_v1"
    assert c.meta["vad_source"] == "prior"


def test_all_gold_file_needs_no_lexicon(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ../shared/data next to the working directory either
    path = _write(tmp_path, [GOOD[1], '{"id":"d","text":"x","vad":{"v":1,"a":0,"d":0.5}}'])
    loaded = load_jsonl(path, data_dir=tmp_path)
    assert [r.meta["vad_source"] for r in loaded.records] == ["gold", "gold"]


def test_label_set_is_recorded_and_accepts_its_labels(tmp_path):
    loaded = load_jsonl(_write(tmp_path, GOOD), label_set=GOEMOTIONS, weak_vad=NO_LEXICON)
    assert loaded.corpus == "goemotions"
    assert loaded.label_set is GOEMOTIONS


def test_bom_and_crlf_file_loads_fine(tmp_path):
    path = tmp_path / "win.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(line + "\r\n" for line in GOOD).encode("utf-8"))
    loaded = load_jsonl(path, weak_vad=NO_LEXICON)
    assert [r.id for r in loaded.records] == ["a", "b", "c"]
    assert loaded.records[2].text == "Some context here."


def test_last_line_without_newline_loads_fine(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(GOOD), encoding="utf-8")
    assert len(load_jsonl(path, weak_vad=NO_LEXICON).records) == 3


# ------------------------------------------------------------------------------- bad input

# (bad line written as line 2, field, message fragment)
BAD_LINES = {
    "invalid JSON": ('{"id":"x","text":"oops"', None, "invalid JSON"),
    "not an object": ('["x", "oops"]', None, "expected a JSON object"),
    "missing id": ('{"text":"no id"}', "id", ""),
    "duplicate id": ('{"id":"a","text":"again"}', "id", "duplicate id 'a' (first at line 1)"),
    "empty text": ('{"id":"x","text":"   "}', "text", "empty"),
    "VAD above 1": ('{"id":"x","text":"t","vad":{"v":1.5,"a":0.2,"d":0.3}}', "vad.v", ""),
    "VAD below 0": ('{"id":"x","text":"t","vad":{"v":0.5,"a":-0.1,"d":0.3}}', "vad.a", ""),
    "VAD as a string": ('{"id":"x","text":"t","vad":{"v":0.5,"a":0.2,"d":"0.3"}}', "vad.d", ""),
    "NaN literal": ('{"id":"x","text":"t","vad":{"v":NaN,"a":0.2,"d":0.3}}', "vad.v", "NaN"),
    "unknown field": ('{"id":"x","text":"t","mood":"happy"}', "mood", ""),
    "repeated label": ('{"id":"x","text":"t","labels":["joy","joy"]}', "labels", "repeat"),
    "empty line": ("", None, "empty line"),
    "blank line": ("   ", None, "empty line"),
}


@pytest.mark.parametrize("case", list(BAD_LINES), ids=list(BAD_LINES))
def test_bad_line_raises_data_error_with_file_line_and_field(case, tmp_path, located):
    line, field, fragment = BAD_LINES[case]
    path = _write(tmp_path, [GOOD[0], line, GOOD[2]])
    with pytest.raises(DataError) as info:
        load_jsonl(path, weak_vad=NO_LEXICON)
    assert fragment in located(info.value, "in.jsonl", 2, field)


def test_unknown_label_is_rejected_with_a_label_set(tmp_path, located):
    path = _write(tmp_path, [GOOD[0], '{"id":"x","text":"t","labels":["joy","elated"]}'])
    with pytest.raises(DataError) as info:
        load_jsonl(path, label_set=GOEMOTIONS, weak_vad=NO_LEXICON)
    assert "['elated'] not in label set 'goemotions'" in located(
        info.value, "in.jsonl", 2, "labels"
    )


def test_unknown_label_is_accepted_without_a_label_set(tmp_path):
    path = _write(tmp_path, ['{"id":"x","text":"t","labels":["elated"]}'])
    assert load_jsonl(path, weak_vad=NO_LEXICON).records[0].labels == ("elated",)


def test_two_labels_are_rejected_for_a_single_label_set(tmp_path, located):
    path = _write(tmp_path, ['{"id":"x","text":"t","labels":["anger","fear"]}'])
    with pytest.raises(DataError) as info:
        load_jsonl(path, label_set=DAILYDIALOG, weak_vad=NO_LEXICON)
    assert "single-label" in located(info.value, "in.jsonl", 1, "labels")


def test_truncated_last_line_is_named(tmp_path, located):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(GOOD) + '\n{"id":"d","text":"cut off he', encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_jsonl(path, weak_vad=NO_LEXICON)
    assert "invalid JSON" in located(info.value, "in.jsonl", 4)


def test_invalid_utf8_is_named(tmp_path, located):
    path = tmp_path / "in.jsonl"
    path.write_bytes(GOOD[0].encode() + b'\n{"id":"x","text":"caf\xe9"}\n')
    with pytest.raises(DataError) as info:
        load_jsonl(path, weak_vad=NO_LEXICON)
    assert "invalid UTF-8" in located(info.value, "in.jsonl", 2)


def test_directory_instead_of_a_file_is_named(tmp_path, located):
    folder = tmp_path / "records.jsonl"
    folder.mkdir()
    with pytest.raises(DataError) as info:
        load_jsonl(folder, weak_vad=NO_LEXICON)
    assert "is a directory" in located(info.value, "records.jsonl", None)


def test_missing_file_is_named(tmp_path, located):
    with pytest.raises(DataError) as info:
        load_jsonl(tmp_path / "nope.jsonl", weak_vad=NO_LEXICON)
    assert "not found" in located(info.value, "nope.jsonl", None)


def test_empty_file_is_an_error(tmp_path, located):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"")
    with pytest.raises(DataError) as info:
        load_jsonl(path, weak_vad=NO_LEXICON)
    assert "no records" in located(info.value, "in.jsonl", None)


def test_skip_invalid_keeps_every_good_line_and_reports_the_bad_ones(tmp_path):
    lines = [
        GOOD[0],  # 1
        "{not json",  # 2
        '{"text":"no id"}',  # 3
        GOOD[1],  # 4
        "",  # 5
        '{"id":"a","text":"duplicate"}',  # 6
        '{"id":"x","text":"t","labels":["elated"]}',  # 7
        '{"id":"y","text":"t","vad":{"v":NaN,"a":0,"d":0}}',  # 8
        '{"id":"z","text":"t","vad":{"v":2,"a":0,"d":0}}',  # 9
        GOOD[2],  # 10
    ]
    path = _write(tmp_path, lines)
    loaded = load_jsonl(
        path,
        label_set=GOEMOTIONS,
        options=ReadOptions(skip_invalid=True),
        weak_vad=NO_LEXICON,
    )
    assert [r.id for r in loaded.records] == ["a", "b", "c"]
    assert [(e.line, e.field) for e in loaded.report.skipped] == [
        (2, None),
        (3, "id"),
        (5, None),
        (6, "id"),
        (7, "labels"),
        (8, "vad.v"),
        (9, "vad.v"),
    ]
    assert all("in.jsonl:" in str(e) for e in loaded.report.skipped)


def test_file_where_every_line_is_bad_is_an_error_even_when_skipping(tmp_path):
    path = _write(tmp_path, ["{", "{"])
    with pytest.raises(DataError, match=r"no records \(2 skipped\)"):
        load_jsonl(path, options=ReadOptions(skip_invalid=True), weak_vad=NO_LEXICON)
