"""Property tests (hypothesis) for everything that reads user input (issue 7).

1. The contract parsers never raise: `parse` returns a `Prediction` or a typed `ParseFailure`
   for any text, and `parse_record_line` a `Record` or a `RecordError`, on contract-shaped
   JSON objects and on valid lines mutated by truncation, insertion and deletion. (Arbitrary
   text through `parse` is fuzzed in test_contract.py.)
2. Round trips: render → parse for any valid prediction of every label set, and
   `Record.to_line` → `parse_record_line` for any valid record.
3. Every corpus reader, the lexicon readers and the config loader, given arbitrary bytes or
   mutated fixture files, return records or raise `EmoloomError` (a `DataError` naming
   file:line) — never IndexError, UnicodeDecodeError, ValueError, KeyError, csv.Error, ...

Files are written under a `tempfile.TemporaryDirectory()` per example (pytest's tmp_path is
per test, not per example). The whole module runs in about 30 s on 2 cores.
"""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from emoloom.config import TrainConfig, load_config
from emoloom.contract import (
    MAX_RATIONALE_WORDS,
    FailureReason,
    ParseFailure,
    Prediction,
    Record,
    RecordError,
    parse,
    parse_record_line,
    render,
)
from emoloom.data import ReadOptions, load_jsonl, load_split
from emoloom.errors import DataError, EmoloomError
from emoloom.labels import LABEL_SETS, LabelSet
from emoloom.lexicon import WeakVADConfig, load_nrc_vad, load_warriner

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpora"
NO_LEXICON = WeakVADConfig(lexicon="none")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def _offline() -> Any:
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: hypothesis reruns the body only
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("EMOLOOM_DATA", raising=False)
        yield


# ----------------------------------------------------------------------------- strategies

label_sets = st.sampled_from(list(LABEL_SETS.values()))
# Words without whitespace and without lone surrogates (which no UTF-8 text can hold).
words = st.text(
    st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=8
)
rationales = st.lists(words, max_size=MAX_RATIONALE_WORDS).map(" ".join)
units = st.integers(0, 100).map(lambda k: k / 100)  # VAD with two decimals


@st.composite
def predictions(draw: st.DrawFn, label_set: LabelSet) -> Prediction:
    most = 4 if label_set.multi_label else 1
    labels = draw(st.lists(st.sampled_from(label_set.labels), min_size=1, max_size=most))
    vad = (draw(units), draw(units), draw(units))
    return Prediction(tuple(labels), vad, draw(st.none() | rationales))


unicode = st.characters(blacklist_categories=("Cs",))  # what UTF-8 text can hold


def json_values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(10**20), 10**20)
        | st.floats(allow_nan=False, allow_infinity=False)
        | text
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    )


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
any_json = json_values(st.text(max_size=8))  # lone surrogates included, for the parsers
clean_json = json_values(st.text(unicode, max_size=8))
texts = st.text(unicode, min_size=1, max_size=40).filter(str.strip)


@st.composite
def records(draw: st.DrawFn) -> Record:
    label_set = draw(label_sets)
    vad = draw(st.none() | st.builds(dict, v=units, a=units, d=units))
    return Record(
        id=draw(texts),
        text=draw(texts),
        context=tuple(draw(st.lists(st.text(unicode, max_size=20), max_size=3))),
        source=draw(st.none() | st.sampled_from(["goemotions", "mine"])),
        labels=tuple(draw(st.lists(st.sampled_from(label_set.labels), max_size=3, unique=True))),
        vad=vad,
        meta=draw(st.dictionaries(st.text(unicode, max_size=6), clean_json, max_size=3)),
    )


def contract_like(label_set: LabelSet) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects shaped like an output line, each part possibly wrong."""
    labels = st.lists(
        st.sampled_from(label_set.labels) | st.text(max_size=8) | json_scalars, max_size=4
    )
    number = units | json_scalars | st.sampled_from([-0.01, 1.01, 1e308, -1e308, 10**400])
    vad = st.dictionaries(st.sampled_from(["v", "a", "d", "x"]), number, max_size=4) | any_json
    return st.fixed_dictionaries(
        {},
        optional={"labels": labels | any_json, "vad": vad, "rationale": st.none() | rationales | st.text() | any_json,
                  "extra": any_json},
    )  # fmt: skip


def mutate(line: str) -> st.SearchStrategy[str]:
    """`line` truncated, with characters inserted, deleted or replaced (JSON-significant
    characters mostly)."""
    alphabet = st.sampled_from(list('{}[]":,.-+0123456789eE \\ntruefalsnNaIiy')) | st.characters()
    edit = st.tuples(st.integers(0, len(line)), st.integers(0, 3), st.text(alphabet, max_size=3))

    def apply(edits: list[tuple[int, int, str]], cut: int | None) -> str:
        out = line
        for pos, delete, insert in edits:
            pos = min(pos, len(out))
            out = out[:pos] + insert + out[pos + delete :]
        return out if cut is None else out[:cut]

    return st.builds(apply, st.lists(edit, max_size=4), st.none() | st.integers(0, len(line)))


def check_parse(text: str, label_set: LabelSet) -> None:
    result = parse(text, label_set)
    if isinstance(result, ParseFailure):
        assert isinstance(result.reason, FailureReason) and result.detail
        return
    assert isinstance(result, Prediction) and result.ok
    # A prediction is always a valid contract line again, and writable as UTF-8.
    assert parse(render(result, label_set), label_set) == result
    render(result, label_set).encode("utf-8")


def check_record_line(line: str) -> None:
    try:
        record = parse_record_line(line)
    except RecordError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert parse_record_line(record.to_line()) == record
    record.to_line().encode("utf-8")


# ---------------------------------------------------------------- 1. parsers never raise

VALID_LINES = [  # (label set, one of its valid output lines)
    (ls, render(Prediction((ls.labels[-1],), (0.42, 0.21, 0.49), "tone of displeasure"), ls))
    for ls in LABEL_SETS.values()
]
RECORD_LINE = (
    '{"id":"goemotions:x1","text":"I love it","context":["hi"],"source":"goemotions",'
    '"labels":["love"],"vad":{"v":0.62,"a":0.5,"d":0.59},"meta":{"vad_source":"lexicon"}}'
)


@settings(max_examples=400, deadline=None)
@given(label_sets.flatmap(lambda ls: st.tuples(st.just(ls), contract_like(ls))))
def test_parse_never_raises_on_contract_shaped_json(case):
    label_set, obj = case
    check_parse(json.dumps(obj, ensure_ascii=False), label_set)
    check_parse(json.dumps(obj, ensure_ascii=True), label_set)  # escapes, lone surrogates too


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(VALID_LINES).flatmap(lambda v: st.tuples(st.just(v[0]), mutate(v[1]))))
def test_parse_never_raises_on_mutated_valid_lines(case):
    label_set, text = case
    check_parse(text, label_set)


@settings(max_examples=300, deadline=None)
@given(st.text() | mutate(RECORD_LINE))
def test_parse_record_line_returns_a_record_or_a_record_error(line):
    check_record_line(line)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["id", "text", "context", "source", "labels", "vad", "meta", "x"]),
    texts | any_json | st.builds(dict, v=json_scalars, a=units, d=units), max_size=7))  # fmt: skip
def test_parse_record_line_on_record_shaped_json(obj):
    check_record_line(json.dumps(obj, ensure_ascii=False))
    check_record_line(json.dumps(obj, ensure_ascii=True))


DEEP = '{"id":"a","text":"b","meta":' + '{"k":' * 100 + "1" + "}" * 100 + "}"


@pytest.mark.parametrize(
    "line, field, message",
    [
        ('{"id":"a","text":"b","vad":{"v":NaN,"a":0,"d":0}}', "vad.v", "NaN is not valid JSON"),
        ('{"id":"a","text":"b","meta":{"k":[1,-Infinity]}}', "meta.k.1", "-Infinity is not valid JSON"),
        ("[NaN]", None, "invalid JSON"),
        ('{"id":"a","text":"caf\\ud800"}', "text", "lone surrogate escape"),
        ('{"id":"a","text":"b","meta":{"\\udfff":1}}', "meta.\udfff", "lone surrogate escape"),
        (DEEP, "meta", "nested deeper than 64 levels"),  # pydantic could not write it back
        ('{"id":"a","text":"b","vad":' + "[" * 5000 + "]" * 5000 + "}", None, "invalid JSON"),
    ],
    ids=["nan", "infinity", "nan-outside-an-object", "surrogate", "surrogate-key", "deep", "deeper"],
)  # fmt: skip
def test_record_lines_that_cannot_be_records_are_named_record_errors(line, field, message):
    with pytest.raises(RecordError) as info:
        parse_record_line(line)
    assert info.value.field == field and message in info.value.message


def test_a_rationale_holding_a_lone_surrogate_is_a_typed_failure():
    line = '{"labels":["joy"],"vad":{"v":0.5,"a":0.5,"d":0.5},"rationale":"ok \\ud83d"}'
    assert parse(line, LABEL_SETS["goemotions"]).reason == FailureReason.INVALID_JSON


# ------------------------------------------------------------------------- 2. round trips


@settings(max_examples=300, deadline=None)
@given(label_sets.flatmap(lambda ls: st.tuples(st.just(ls), predictions(ls))))
def test_render_then_parse_round_trips_for_every_label_set(case):
    label_set, pred = case
    line = render(pred, label_set)
    parsed = parse(line, label_set)
    assert parsed.ok, parsed
    assert parsed.labels == label_set.canonical(pred.labels) and parsed.vad == pred.vad
    assert parsed.rationale == (
        None if pred.rationale is None else " ".join(pred.rationale.split())
    )
    assert render(parsed, label_set) == line  # canonical: a fixed point


@settings(max_examples=300, deadline=None)
@given(records())
def test_record_to_line_then_parse_round_trips(record):
    line = record.to_line()
    assert "\n" not in line  # one record, one line
    assert parse_record_line(line) == record


# ------------------------------------------------------- 3. readers: records or a DataError


def _load(corpus: str, root: Path, skip: bool) -> Callable[[], Any]:
    options = ReadOptions(skip_invalid=skip)
    if corpus == "jsonl":
        return lambda: load_jsonl(root / "in.jsonl", options=options, weak_vad=NO_LEXICON)
    return lambda: load_split(corpus, "train", data_dir=root, options=options, weak_vad=NO_LEXICON)


def check_reader(load: Callable[[], Any]) -> Any:
    """What `load` returns, or None for a one-line user error naming where."""
    try:
        loaded = load()
    except EmoloomError as err:
        text = str(err)
        assert text and "\n" not in text
        if isinstance(err, DataError):
            assert err.line is None or err.line >= 1, text
            assert err.path and text.startswith(err.path), text
        return None
    return loaded


def check_records(load: Callable[[], Any]) -> Any:
    loaded = check_reader(load)
    if loaded is not None:
        assert loaded.records
        for record in loaded.records:  # every record can be written out and read back
            assert parse_record_line(record.to_line()) == record
    return loaded


JSONL = "".join(
    line + "\n"
    for line in (
        '{"id":"a","text":"I love this.","labels":["joy"]}',
        '{"id":"b","text":"Kept.","vad":{"v":0.1,"a":0.2,"d":0.3}}',
        '{"id":"c","text":"More.","context":["Earlier."],"labels":["neutral"]}',
    )
).encode()
# corpus: (its folder under the fixtures, or None for in.jsonl; the files that get corrupted)
READERS = {
    "goemotions": ("goemotions", ["train.tsv", "emotions.txt", "ekman_mapping.json"]),
    "empathetic": ("empatheticdialogues", ["train.csv"]),
    "dailydialog": ("dailydialog", ["train/dialogues_train.txt", "train/dialogues_emotion_train.txt"]),
    "emobank": ("emobank", ["emobank.csv"]),
    "jsonl": (None, ["in.jsonl"]),
}  # fmt: skip
INTERESTING = [b"\t", b",", b'"', b"\n", b"\r\n", b"\r", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\x00",
               b"__eou__", b" ", b"_comma_", b"{", b"}", b"[", b"]", b":", b"NaN", b"-1", b"99",
               b"1e999", b"\\", b"\\ud800", b"\xe2\x80\xa8", b"\x0b", b"\x1c", b"1_0"]  # fmt: skip


def original(corpus: str, name: str) -> bytes:
    folder = READERS[corpus][0]
    return JSONL if folder is None else (FIXTURES / folder / name).read_bytes()


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with byte edits (insert/delete/replace), line edits (drop, repeat, swap) and
    maybe a truncation."""
    if draw(st.booleans()):
        rows = data.split(b"\n")
        for _ in range(draw(st.integers(1, 3))):
            i, j = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(rows) - 1))
            op = draw(st.sampled_from(["drop", "repeat", "swap"]))
            if op == "drop" and len(rows) > 1:
                rows.pop(i)
            elif op == "repeat":
                rows.insert(j, rows[i])
            elif op == "swap":
                rows[i], rows[j] = rows[j], rows[i]
        data = b"\n".join(rows)
    piece = st.sampled_from(INTERESTING) | st.binary(max_size=3)
    for _ in range(draw(st.integers(0, 4))):
        pos, delete = draw(st.integers(0, len(data))), draw(st.integers(0, 4))
        data = data[:pos] + b"".join(draw(st.lists(piece, max_size=3))) + data[pos + delete :]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def corrupted_corpus(draw: st.DrawFn, arbitrary: bool) -> tuple[str, dict[str, bytes], bool]:
    """(corpus, {file: new bytes}, skip_invalid)."""
    corpus = draw(st.sampled_from(list(READERS)))
    names = draw(st.lists(st.sampled_from(READERS[corpus][1]), min_size=1, unique=True))
    files = {
        name: draw(st.binary(max_size=300) if arbitrary else mutated_bytes(original(corpus, name)))
        for name in names
    }
    return corpus, files, draw(st.booleans())


def run_reader(corpus: str, files: dict[str, bytes], skip: bool) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = READERS[corpus][0]
        base = root if folder is None else Path(shutil.copytree(FIXTURES / folder, root / folder))
        if folder is None:
            (root / "in.jsonl").write_bytes(JSONL)
        for name, data in files.items():
            (base / name).write_bytes(data)
        return check_records(_load(corpus, root, skip))


@FUZZ
@given(corrupted_corpus(arbitrary=True))
def test_readers_given_arbitrary_bytes_return_records_or_a_data_error(case):
    event("loaded" if run_reader(*case) else "refused")


@settings(FUZZ, max_examples=400)
@given(corrupted_corpus(arbitrary=False))
def test_readers_given_mutated_fixture_files_return_records_or_a_data_error(case):
    event("loaded" if run_reader(*case) else "refused")


@pytest.mark.parametrize("corpus", list(READERS))
def test_each_reader_reads_its_unmutated_fixture(corpus):
    # The baseline of the fuzzing above: the untouched files load.
    assert run_reader(corpus, {}, skip=False).records


LEXICONS = {
    "nrc": (load_nrc_vad, "nrc_vad/NRC-VAD-Lexicon.txt"),
    "warriner": (load_warriner, "warriner_vad/Ratings_Warriner_et_al.csv"),
}


@FUZZ
@given(st.sampled_from(list(LEXICONS)).flatmap(lambda name: st.tuples(
    st.just(name), st.binary(max_size=200) | mutated_bytes((FIXTURES / LEXICONS[name][1]).read_bytes()))))  # fmt: skip
def test_lexicon_readers_return_a_lexicon_or_a_data_error(case):
    name, data = case
    loader, relative = LEXICONS[name]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(relative).name
        path.write_bytes(data)
        lexicon = check_reader(lambda: loader(path))
        event("loaded" if lexicon else "refused")
        if lexicon is not None:
            assert len(lexicon) and all(
                len(vad) == 3 and all(0.0 <= x <= 1.0 for x in vad)
                for vad in lexicon.entries.values()
            )


CONFIG_TEXT = (
    "run_name: fuzz\nseed: 3\nmodel: {name: tiny-qwen2, finetune: lora, lora: {r: 4}}\n"
    "data:\n  train:\n    - {corpus: goemotions, split: train, max_examples: 8}\n"
    "optim: {lr: 1.0e-3, batch_size: 8, grad_accum: 2}\nbudget: {max_steps: 5}\n"
)


@FUZZ
@given(st.binary(max_size=200) | mutated_bytes(CONFIG_TEXT.encode()),
       st.lists(st.text(string.printable, max_size=20) | mutate("optim.lr=1e-3"), max_size=2))  # fmt: skip
def test_config_loader_returns_a_config_or_a_config_error(data, overrides):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(data)
        try:
            cfg = load_config(path, overrides)
        except EmoloomError as err:
            assert str(err) and "\n" not in str(err)
            event("refused")
            return
        event("loaded")
        assert isinstance(cfg, TrainConfig)
