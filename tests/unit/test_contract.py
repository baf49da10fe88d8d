"""The JSON contract: canonical rendering, strict tail-scanning parsing, records and schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoloom.contract import (
    CONTRACT_VERSION,
    MAX_RATIONALE_WORDS,
    FailureReason,
    ParseFailure,
    Prediction,
    RecordError,
    parse,
    parse_record_line,
    render,
    schema,
)
from emoloom.labels import EMPATHETIC, GOEMOTIONS

PAPER_LINE = (
    '{"labels":["disgust"],"vad":{"v":0.42,"a":0.21,"d":0.49},"rationale":"tone of displeasure"}'
)


def test_render_reproduces_the_papers_example_line():
    pred = Prediction(("disgust",), (0.42, 0.21, 0.49), "tone of displeasure")
    assert render(pred, GOEMOTIONS) == PAPER_LINE


def test_render_orders_labels_canonically_and_prints_two_decimals():
    pred = Prediction(("neutral", "admiration", "joy"), (0.4, 1, 0.0), None)
    line = render(pred, GOEMOTIONS)
    assert line == '{"labels":["admiration","joy","neutral"],"vad":{"v":0.40,"a":1.00,"d":0.00}}'


def test_render_can_leave_the_rationale_out():
    pred = Prediction(("joy",), (0.9, 0.5, 0.6), "sounds happy")
    assert "rationale" not in render(pred, GOEMOTIONS, rationale=False)


def test_render_collapses_whitespace_in_the_rationale():
    pred = Prediction(("joy",), (0.9, 0.5, 0.6), "  sounds \n very   happy ")
    assert render(pred, GOEMOTIONS).endswith('"rationale":"sounds very happy"}')


@pytest.mark.parametrize(
    "pred, message",
    [
        (Prediction(("happy",), (0.5, 0.5, 0.5)), "not in label set"),
        (Prediction((), (0.5, 0.5, 0.5)), "at least one label"),
        (Prediction(("joy",), (1.5, 0.5, 0.5)), "vad.v"),
        (Prediction(("joy",), (0.5, float("nan"), 0.5)), "vad.a"),
        (Prediction(("joy",), (0.5, 0.5, 0.5), "one two three four five six seven eight nine"), "9 words"),
    ],
)  # fmt: skip
def test_render_refuses_content_that_breaks_the_contract(pred, message):
    with pytest.raises(ValueError, match=message):
        render(pred, GOEMOTIONS)


def test_parse_reads_the_papers_line():
    result = parse(PAPER_LINE, GOEMOTIONS)
    assert result == Prediction(("disgust",), (0.42, 0.21, 0.49), "tone of displeasure")
    assert result.ok


def test_parse_scans_the_tail_past_prompt_echo_and_trailing_text():
    text = (
        'Answer with {"labels":[...]} please. Example: {"labels":["joy"],"vad":{"v":0.9,"a":0.8,'
        '"d":0.7}}\nOutput: ' + PAPER_LINE + " </s> trailing words"
    )
    result = parse(text, GOEMOTIONS)
    assert result.ok and result.labels == ("disgust",)


def test_parse_takes_the_outer_object_not_the_nested_vad():
    result = parse('x {"vad":{"v":0.1,"a":0.2,"d":0.3},"labels":["fear"]}', GOEMOTIONS)
    assert result.ok and result.labels == ("fear",) and result.vad == (0.1, 0.2, 0.3)


def test_parse_returns_labels_in_canonical_order_and_rounds_vad():
    result = parse('{"labels":["neutral","joy"],"vad":{"v":0.426,"a":1,"d":0}}', GOEMOTIONS)
    assert result.labels == ("joy", "neutral")
    assert result.vad == (0.43, 1.0, 0.0)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", FailureReason.NO_JSON),
        ("the text is joyful", FailureReason.NO_JSON),
        ('{"labels":["joy"],"vad":{"v":0.5,"a":0.5', FailureReason.INVALID_JSON),
        ('{"labels":["joy"],"vad":{"v":NaN,"a":0.5,"d":0.5}}', FailureReason.INVALID_JSON),
        ('{"labels":["joy"]}', FailureReason.MISSING_FIELD),
        ('{"vad":{"v":0.5,"a":0.5,"d":0.5}}', FailureReason.MISSING_FIELD),
        ('{"labels":["joy"],"vad":{"v":0.5,"a":0.5}}', FailureReason.MISSING_FIELD),
        ('{"labels":["joy"],"vad":{"v":0.5,"a":0.5,"d":0.5},"score":1}', FailureReason.UNEXPECTED_FIELD),
        ('{"labels":["joy"],"vad":{"v":0.5,"a":0.5,"d":0.5,"x":1}}', FailureReason.UNEXPECTED_FIELD),
        ('{"labels":"joy","vad":{"v":0.5,"a":0.5,"d":0.5}}', FailureReason.WRONG_TYPE),
        ('{"labels":[1],"vad":{"v":0.5,"a":0.5,"d":0.5}}', FailureReason.WRONG_TYPE),
        ('{"labels":["joy"],"vad":[0.5,0.5,0.5]}', FailureReason.WRONG_TYPE),
        ('{"labels":["joy"],"vad":{"v":"0.5","a":0.5,"d":0.5}}', FailureReason.WRONG_TYPE),
        ('{"labels":["joy"],"vad":{"v":true,"a":0.5,"d":0.5}}', FailureReason.WRONG_TYPE),
        ('{"labels":["joy"],"vad":{"v":0.5,"a":0.5,"d":0.5},"rationale":3}', FailureReason.WRONG_TYPE),
        ('{"labels":[],"vad":{"v":0.5,"a":0.5,"d":0.5}}', FailureReason.EMPTY_LABELS),
        ('{"labels":["happy"],"vad":{"v":0.5,"a":0.5,"d":0.5}}', FailureReason.UNKNOWN_LABEL),
        ('{"labels":["joy","joy"],"vad":{"v":0.5,"a":0.5,"d":0.5}}', FailureReason.DUPLICATE_LABEL),
        ('{"labels":["joy"],"vad":{"v":1.01,"a":0.5,"d":0.5}}', FailureReason.VAD_OUT_OF_RANGE),
        ('{"labels":["joy"],"vad":{"v":0.5,"a":-0.1,"d":0.5}}', FailureReason.VAD_OUT_OF_RANGE),
        ('{"labels":["joy"],"vad":{"v":0.5,"a":0.5,"d":1e999}}', FailureReason.VAD_OUT_OF_RANGE),
        ('{"labels":["joy"],"vad":{"v":0.5,"a":0.5,"d":0.5},"rationale":"a b c d e f g h i"}', FailureReason.RATIONALE_TOO_LONG),
    ],
)  # fmt: skip
def test_parse_names_the_reason_a_line_fails(text, reason):
    result = parse(text, GOEMOTIONS)
    assert isinstance(result, ParseFailure)
    assert result.reason == reason, result.detail


def test_parse_rejects_two_labels_for_a_single_label_set():
    result = parse('{"labels":["sad","lonely"],"vad":{"v":0.2,"a":0.3,"d":0.2}}', EMPATHETIC)
    assert result.reason == FailureReason.TOO_MANY_LABELS


def test_parse_only_reads_the_tail_window():
    line = '{"labels":["joy"],"vad":{"v":0.5,"a":0.5,"d":0.5}}'
    assert parse(line + " " * 100, GOEMOTIONS).ok
    assert parse(line + " x" * 10_000, GOEMOTIONS).reason == FailureReason.NO_JSON


def test_parse_survives_deeply_nested_brackets():
    result = parse('{"a":' + "[" * 8000, GOEMOTIONS)  # deeper than the recursion limit
    assert result.reason == FailureReason.INVALID_JSON


rationales = st.lists(
    st.text(alphabet="abcdefghij\u00e9\u4e2d'\"\\", min_size=1, max_size=6),
    max_size=MAX_RATIONALE_WORDS,
).map(" ".join)


@st.composite
def predictions(draw, label_set=GOEMOTIONS):
    size = st.integers(1, 4 if label_set.multi_label else 1)
    labels = draw(st.lists(st.sampled_from(label_set.labels), min_size=1, max_size=draw(size)))
    vad = tuple(draw(st.integers(0, 100)) / 100 for _ in range(3))
    rationale = draw(st.none() | rationales)
    return Prediction(tuple(labels), vad, rationale)


@settings(max_examples=300, deadline=None)
@given(predictions())
def test_render_then_parse_round_trips(pred):
    line = render(pred, GOEMOTIONS)
    parsed = parse(line, GOEMOTIONS)
    assert parsed.ok, parsed
    assert parsed.labels == GOEMOTIONS.canonical(pred.labels)
    assert parsed.vad == pred.vad
    assert parsed.rationale == (
        None if pred.rationale is None else " ".join(pred.rationale.split())
    )
    assert render(parsed, GOEMOTIONS) == line  # canonical: a fixed point


@settings(max_examples=300, deadline=None)
@given(st.text(), predictions(), st.text())
def test_render_then_parse_round_trips_inside_arbitrary_text(prefix, pred, suffix):
    # Whatever the model says around the line, the contract object is found. (Text holding
    # objects of its own is covered by test_parse_scans_the_tail_past_prompt_echo_...)
    text = prefix.replace("{", "(") + render(pred, GOEMOTIONS) + suffix.replace("{", "(")
    parsed = parse(text, GOEMOTIONS)
    assert parsed.ok and parsed.labels == GOEMOTIONS.canonical(pred.labels)


@settings(max_examples=500, deadline=None)
@given(st.text() | st.text(alphabet='{}[]":,.-0123456789eEtruefalsnNaIiy labelsvadjo '))
def test_parse_never_raises_on_arbitrary_text(text):
    result = parse(text, GOEMOTIONS)
    assert result.ok in (True, False)
    if not result.ok:
        assert isinstance(result.reason, FailureReason) and result.detail


def test_parse_record_line_reads_a_full_record():
    line = json.dumps(
        {
            "id": "x1",
            "text": "I love it",
            "context": ["hi", "hello"],
            "source": "mine",
            "labels": ["love"],
            "vad": {"v": 0.9, "a": 0.5, "d": 1},
            "meta": {"k": [1, 2]},
        }
    )
    record = parse_record_line(line)
    assert (
        record.context == ("hi", "hello") and record.vad.d == 1.0 and record.meta == {"k": [1, 2]}
    )
    assert parse_record_line(record.to_line()) == record


def test_record_line_omits_default_fields():
    assert parse_record_line('{"id":"a","text":"b"}').to_line() == '{"id":"a","text":"b"}'


@pytest.mark.parametrize(
    "line, field",
    [
        ('{"text":"b"}', "id"),
        ('{"id":"","text":"b"}', "id"),
        ('{"id":"a","text":"   "}', "text"),
        ('{"id":"a","text":5}', "text"),
        ('{"id":7,"text":"b"}', "id"),
        ('{"id":"a","text":"b","labels":["x","x"]}', "labels"),
        ('{"id":"a","text":"b","vad":{"v":1.2,"a":0,"d":0}}', "vad.v"),
        ('{"id":"a","text":"b","vad":{"v":0.2,"a":"0.1","d":0}}', "vad.a"),
        ('{"id":"a","text":"b","vad":{"v":0.2,"a":0.1}}', "vad.d"),
        ('{"id":"a","text":"b","colour":"red"}', "colour"),
        ('{"id":"a","text":"b","context":"hi"}', "context"),
    ],
)
def test_parse_record_line_names_the_bad_field(line, field):
    with pytest.raises(RecordError) as info:
        parse_record_line(line)
    assert info.value.field == field


@pytest.mark.parametrize("line", ["", "[1]", '{"id":"a",', '{"id":"a","text":"b","vad":NaN}'])
def test_parse_record_line_rejects_what_is_not_a_json_object(line):
    with pytest.raises(RecordError):
        parse_record_line(line)


def test_schema_validates_rendered_lines_and_records():
    s = schema(GOEMOTIONS)
    assert s["contract_version"] == CONTRACT_VERSION
    jsonschema.validate(json.loads(PAPER_LINE), s["output"])
    jsonschema.validate(
        json.loads(parse_record_line('{"id":"a","text":"b"}').to_line()), s["input"]
    )
    for bad in (
        {"labels": ["happy"], "vad": {"v": 0.1, "a": 0.1, "d": 0.1}},
        {"labels": ["joy"], "vad": {"v": 1.1, "a": 0.1, "d": 0.1}},
        {"labels": [], "vad": {"v": 0.1, "a": 0.1, "d": 0.1}},
        {
            "labels": ["joy"],
            "vad": {"v": 0.1, "a": 0.1, "d": 0.1},
            "rationale": "a b c d e f g h i",
        },
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, s["output"])


def test_schema_of_a_single_label_set_allows_one_label():
    two = {"labels": ["sad", "lonely"], "vad": {"v": 0.1, "a": 0.1, "d": 0.1}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(two, schema(EMPATHETIC)["output"])
