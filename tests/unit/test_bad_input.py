"""Bad input through the `emoloom` command (issue 7): every malformed corpus file, contract
JSONL, config and flag stops with exit code != 0 and ONE stderr line, ``emoloom: error:``,
naming the file, the line (for line-based input) and the field; a UTF-8 BOM, CRLF line endings
and a 1 MB text are accepted; batch prediction turns each bad row into an error record.

Every case runs `emoloom.cli.main` in-process on a private copy of tests/fixtures/corpora
(invented rows) with the hub disabled. The disk-full checkpoint case trains, so it lives in
tests/integration/test_bad_input_disk.py.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from emoloom.cli import main
from emoloom.config import load_config
from emoloom.contract import parse_record_line

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "corpora"
DEBUG = ROOT / "configs" / "debug.yaml"

GOOD = [
    '{"id":"a","text":"I love this, it is great.","labels":["joy"]}',
    '{"id":"b","text":"Kept as gold.","labels":["neutral"],"vad":{"v":0.1,"a":0.2,"d":0.3}}',
    '{"id":"c","text":"Some context here.","context":["Earlier turn."],"labels":["neutral"]}',
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("EMOLOOM_DATA", raising=False)


# ------------------------------------------------------------------------------ the table

# Edits applied to a private copy of the fixture corpora ("data/" under tmp_path) or to files
# of their own ("in.jsonl", "bad.yaml"), before the command runs.


@dataclass(frozen=True)
class Line:
    """Replace 1-based line `n` of `path` (its line ending is kept)."""

    path: str
    n: int
    new: str | bytes


@dataclass(frozen=True)
class File:
    """Write `path` with exactly these bytes (or text, UTF-8)."""

    path: str
    content: str | bytes


@dataclass(frozen=True)
class Dir:
    """A directory where a file is expected."""

    path: str


@dataclass(frozen=True)
class Gone:
    """A file or folder removed."""

    path: str


Edit = Line | File | Dir | Gone


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]  # "{tmp}" is replaced by the test's tmp_path
    edits: tuple[Edit, ...] = ()


def apply(edit: Edit, tmp: Path) -> None:
    path = tmp / edit.path
    if isinstance(edit, Line):
        lines = path.read_bytes().split(b"\n")
        new = edit.new if isinstance(edit.new, bytes) else edit.new.encode("utf-8")
        lines[edit.n - 1] = new
        path.write_bytes(b"\n".join(lines))
    elif isinstance(edit, File):
        path.parent.mkdir(parents=True, exist_ok=True)
        content = edit.content
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    elif isinstance(edit, Dir):
        path.unlink(missing_ok=True)
        path.mkdir(parents=True)
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def jsonl(content: str | bytes, label_set: str = "goemotions") -> Case:
    """`data prepare --corpus jsonl` on in.jsonl holding `content`."""
    argv = ("data", "prepare", "--corpus", "jsonl", "--input", "{tmp}/in.jsonl",
            "--label-set", label_set, "--out", "{tmp}/out.jsonl", "--lexicon", "none")  # fmt: skip
    return Case(argv, (File("in.jsonl", content),))


def lines(*rows: str) -> str:
    return "".join(row + "\n" for row in rows)


def corpus(name: str, split: str, edits: Sequence[Edit]) -> Case:
    """`data prepare --corpus NAME --split SPLIT` on the fixture copy with `edits`."""
    argv = ("data", "prepare", "--corpus", name, "--split", split, "--data-dir", "{tmp}/data",
            "--out", "{tmp}/out.jsonl")  # fmt: skip
    return Case(argv, tuple(edits))


def config(yaml_text: str | bytes | None, overrides: Sequence[str]) -> Case:
    """`train CONFIG overrides`: bad.yaml holding `yaml_text`, or configs/debug.yaml."""
    path = "{tmp}/bad.yaml" if yaml_text is not None else str(DEBUG)
    edits = (File("bad.yaml", yaml_text),) if yaml_text is not None else ()
    return Case(("train", path, *overrides, "output_dir={tmp}/runs"), edits)


def cli(argv: Sequence[str], edits: Sequence[Edit] = ()) -> Case:
    return Case(tuple(argv), tuple(edits))


def bad(case: Case, *expect: str, id: str):
    """One row of the table: the malformed input and fragments of its error line."""
    return pytest.param(case, expect, id=id)


GE, ED, EB = "data/goemotions", "data/empatheticdialogues", "data/emobank/emobank.csv"
DD_TEXT = "data/dailydialog/train/dialogues_train.txt"
DD_EMO = "data/dailydialog/train/dialogues_emotion_train.txt"
ED_ROW = "hit:901_conv:1801,2,proud,My daughter finished her first marathon.,8,{utt},5|5|5,"
WARRINER = "data/warriner_vad/Ratings_Warriner_et_al.csv"
VAD_ROW = '{{"id":"x","text":"t","vad":{{"v":{v},"a":0.2,"d":0.3}}}}'

CASES = [
    # --- contract JSONL (`data prepare --corpus jsonl --label-set goemotions`)
    bad(jsonl(lines(GOOD[0], '{"id":"x","text":"oops" "labels"}')),
        "in.jsonl:2: ", "invalid JSON", id="jsonl-invalid-json"),
    bad(jsonl(lines(GOOD[0], '["x", "oops"]')),
        "in.jsonl:2: ", "expected a JSON object, got list", id="jsonl-not-an-object"),
    bad(jsonl(lines(GOOD[0], '{"text":"no id"}')),
        "in.jsonl:2: id: ", "Field required", id="jsonl-missing-id"),
    bad(jsonl(lines(GOOD[0], GOOD[1], '{"id":"a","text":"again"}')),
        "in.jsonl:3: id: duplicate id 'a' (first at line 1)", id="jsonl-duplicate-id"),
    bad(jsonl(lines(GOOD[0], '{"id":"x","text":"  "}')),
        "in.jsonl:2: text: ", "empty", id="jsonl-empty-text"),
    bad(jsonl(lines(GOOD[0], '{"id":"x","text":"caf\\ud800"}')),
        "in.jsonl:2: text: lone surrogate escape", id="jsonl-lone-surrogate-escape"),
    bad(jsonl(lines(GOOD[0], '{"id":"x","text":5}')),
        "in.jsonl:2: text: ", "string", id="jsonl-non-string-text"),
    bad(jsonl(GOOD[0].encode() + b'\n{"id":"x","text":"caf\xe9"}\n'),
        "in.jsonl:2: ", "invalid UTF-8 at byte 21", id="jsonl-invalid-utf8"),
    bad(jsonl(lines(GOOD[0], '{"id":"x","text":"t","labels":["joy","elated"]}')),
        "in.jsonl:2: labels: ['elated'] not in label set 'goemotions'",
        id="jsonl-unknown-label"),
    bad(jsonl(lines('{"id":"x","text":"t","labels":["anger","fear"]}'),
            label_set="dailydialog"),
        "in.jsonl:1: labels: ", "single-label", id="jsonl-two-labels-single-label-set"),
    bad(jsonl(lines(GOOD[0], VAD_ROW.format(v=1.5))),
        "in.jsonl:2: vad.v: ", "less than or equal to 1", id="jsonl-vad-out-of-range"),
    bad(jsonl(lines(GOOD[0], VAD_ROW.format(v='"0.5"'))),
        "in.jsonl:2: vad.v: ", id="jsonl-vad-as-string"),
    bad(jsonl(lines(GOOD[0], VAD_ROW.format(v="NaN"))),
        "in.jsonl:2: vad.v: NaN is not valid JSON", id="jsonl-vad-nan"),
    bad(jsonl(lines(GOOD[0], VAD_ROW.format(v="-Infinity"))),
        "in.jsonl:2: vad.v: -Infinity is not valid JSON", id="jsonl-vad-infinity"),
    bad(jsonl(lines(GOOD[0], '{"id":"x","text":"t","mood":"happy"}')),
        "in.jsonl:2: mood: ", "Extra inputs", id="jsonl-unknown-field"),
    bad(jsonl(lines(GOOD[0], "", GOOD[1])),
        "in.jsonl:2: empty line", id="jsonl-empty-line"),
    bad(jsonl(lines(GOOD[0], GOOD[1]) + '{"id":"d","text":"cut off he'),
        "in.jsonl:3: ", "invalid JSON", id="jsonl-truncated-last-line"),
    bad(jsonl(b""), "in.jsonl: no records (0 skipped)", id="jsonl-empty-file"),
    bad(cli(["data", "prepare", "--corpus", "jsonl", "--input", "{tmp}/in.jsonl",
            "--out", "{tmp}/out.jsonl"], edits=[Dir("in.jsonl")]),
        "in.jsonl: is a directory, expected a file", id="jsonl-directory"),
    bad(cli(["data", "prepare", "--corpus", "jsonl", "--input", "{tmp}/nope.jsonl",
            "--out", "{tmp}/out.jsonl"]),
        "nope.jsonl: file not found", id="jsonl-missing-file"),
    # --- GoEmotions tsv
    bad(corpus("goemotions", "train", [Line(f"{GE}/train.tsv", 2, "no labels\tfx01b")]),
        "train.tsv:2: ", "expected 3 tab-separated columns, got 2",
        id="goemotions-wrong-column-count"),
    bad(corpus("goemotions", "train", [Line(f"{GE}/train.tsv", 3, "What?\t26,28\tfx01c")]),
        "train.tsv:3: labels: unknown label id 28 (0..27)", id="goemotions-unknown-label"),
    bad(corpus("goemotions", "train", [Line(f"{GE}/train.tsv", 3, "What?\t2_6\tfx01c")]),
        "train.tsv:3: labels: label id '2_6' is not an integer", id="goemotions-label-id-not-a-number"),
    bad(corpus("goemotions", "train", [Line(f"{GE}/train.tsv", 4, " \t27\tfx01d")]),
        "train.tsv:4: text: empty", id="goemotions-empty-text"),
    bad(corpus("goemotions", "train", [Line(f"{GE}/train.tsv", 5, "Same.\t27\tfx01a")]),
        "train.tsv:5: id: duplicate id 'goemotions:fx01a' (first at line 1)",
        id="goemotions-duplicate-id"),
    bad(corpus("goemotions", "train", [Line(f"{GE}/train.tsv", 2, b"caf\xc3\t10\tfx01b")]),
        "train.tsv:2: ", "invalid UTF-8 at byte 3", id="goemotions-invalid-utf8"),
    bad(corpus("goemotions", "dev", [File(f"{GE}/dev.tsv", b"")]),
        "dev.tsv: ", "no dev records (0 skipped)", id="goemotions-empty-file"),
    bad(corpus("goemotions", "dev", [Dir(f"{GE}/dev.tsv")]),
        "dev.tsv: is a directory, expected a file", id="goemotions-directory"),
    bad(corpus("goemotions", "test", [Line(f"{GE}/emotions.txt", 2, "admiring")]),
        "emotions.txt:2: expected label 'amusement' here, got 'admiring'",
        id="goemotions-reordered-label-file"),
    # --- EmpatheticDialogues csv
    bad(corpus("empathetic", "train", [Line(f"{ED}/train.csv", 3, ED_ROW.format(utt="Wow, great"))]),
        "train.csv:3: ", "expected 8 comma-separated fields, got 9",
        id="empathetic-wrong-column-count"),
    bad(corpus("empathetic", "train", [Line(f"{ED}/train.csv", 2, ED_ROW.replace(",2,proud,", ",1,elated,").format(utt="Hi"))]),
        "train.csv:2: context: unknown emotion label 'elated'", id="empathetic-unknown-label"),
    bad(corpus("empathetic", "train", [Line(f"{ED}/train.csv", 3, ED_ROW.format(utt=" "))]),
        "train.csv:3: utterance: empty", id="empathetic-empty-utterance"),
    bad(corpus("empathetic", "train", [Line(f"{ED}/train.csv", 1, "conv_id,utterance_idx,context,speaker_idx,utterance")]),
        "train.csv:1: prompt: column missing from the header", id="empathetic-header-lacks-column"),
    bad(corpus("empathetic", "dev", [File(f"{ED}/valid.csv", "")]),
        "valid.csv: file is empty (no header)", id="empathetic-empty-file"),
    # --- DailyDialog txt pairs
    bad(corpus("dailydialog", "train", [Line(DD_EMO, 2, "1 9 ")]),
        "dialogues_emotion_train.txt:2: emotion[1]: unknown emotion id '9'",
        id="dailydialog-unknown-label"),
    bad(corpus("dailydialog", "train", [Line(DD_TEXT, 2, "You broke it ! __eou__  __eou__ ")]),
        "dialogues_train.txt:2: utterance[1]: empty", id="dailydialog-empty-utterance"),
    bad(corpus("dailydialog", "train", [File(DD_EMO, "0 0 4 \n1 5 \n")]),
        "dialogues_train.txt:3: dialogues_train.txt and dialogues_emotion_train.txt have different numbers of lines",
        id="dailydialog-line-counts-differ"),
    bad(corpus("dailydialog", "train", [Gone(DD_EMO)]),
        "dialogues_emotion_train.txt: file not found", id="dailydialog-missing-label-file"),
    bad(corpus("dailydialog", "train", [Line(DD_TEXT, 4, b"Please pass the \xff . __eou__ Here . __eou__ ")]),
        "dialogues_train.txt:4: ", "invalid UTF-8 at byte 16", id="dailydialog-invalid-utf8"),
    # --- EmoBank csv
    bad(corpus("emobank", "dev", [File(EB, "\n")]),
        "emobank.csv: file is empty (no header)", id="emobank-blank-file"),
    bad(corpus("emobank", "train", [Line(EB, 1, '"id,split,V,A,D,text')]),
        "emobank.csv:1: malformed CSV", id="emobank-malformed-header"),
    bad(corpus("emobank", "train", [Line(EB, 2, "fx_b01,train,6.0,3.0,3.0,Noon.")]),
        "emobank.csv:2: V: 6.0 outside the 1-5 scale", id="emobank-vad-out-of-range"),
    bad(corpus("emobank", "train", [Line(EB, 2, "fx_b01,train,3.0,nan,3.0,Noon.")]),
        "emobank.csv:2: A: nan outside the 1-5 scale", id="emobank-vad-nan"),
    bad(corpus("emobank", "train", [Line(EB, 2, "fx_b01,train,3.0,3.0,Infinity,Noon.")]),
        "emobank.csv:2: D: inf outside the 1-5 scale", id="emobank-vad-infinity"),
    bad(corpus("emobank", "train", [Line(EB, 2, "fx_b01,train,3.0,3.0,Noon.")]),
        "emobank.csv:2: expected 6 columns, got 5", id="emobank-wrong-column-count"),
    bad(corpus("emobank", "train", [Line(EB, 3, "fx_b01,train,3.0,3.0,3.0,Again.")]),
        "emobank.csv:3: id: duplicate id 'emobank:fx_b01' (first at line 2)",
        id="emobank-duplicate-id"),
    bad(corpus("emobank", "train", [Line(EB, 4, 'fx_b03,train,1.8,3.9,2.6,"He said')]),
        "emobank.csv:4: malformed CSV", id="emobank-unclosed-quote"),
    # --- lexicon
    bad(corpus("goemotions", "dev", [Gone("data/nrc_vad")]),
        "NRC-VAD-Lexicon.txt: lexicon file is missing", id="lexicon-missing"),
    bad(corpus("goemotions", "dev", [Line("data/nrc_vad/NRC-VAD-Lexicon.txt", 3, b"amaz\xefng\t0.9\t0.8\t0.7")]),
        "NRC-VAD-Lexicon.txt:3: ", "invalid UTF-8", id="lexicon-invalid-utf8"),
    bad(corpus("goemotions", "dev", [Line("data/nrc_vad/NRC-VAD-Lexicon.txt", 3, "amazing\t0.9\t1.8\t0.7")]),
        "NRC-VAD-Lexicon.txt:3: arousal: 1.8 outside [0.0, 1.0]", id="lexicon-out-of-range"),
    bad(Case(("data", "prepare", "--corpus", "goemotions", "--split", "dev", "--data-dir", "{tmp}/data",
              "--out", "{tmp}/out.jsonl", "--lexicon", "warriner"),
             (Line(WARRINER, 3, '2,"calm,7.0,1.5,20,1.9,2.1,21,6.7,1.9,19\n' + "x" * 140_000),)),
        "Ratings_Warriner_et_al.csv:3: malformed CSV (field larger than field limit",
        id="lexicon-unclosed-quote"),
    # --- configs (YAML files and key=value overrides)
    bad(config("optim:\n  warmup: 3\n", []),
        "bad.yaml: unknown config key 'optim.warmup'; did you mean 'optim.warmup_steps'?",
        id="config-unknown-key"),
    bad(config(None, ["optim.lrr=1e-3"]),
        "unknown config key 'optim.lrr'; did you mean 'optim.lr'?",
        id="config-unknown-override-key"),
    bad(config(None, ["optim.batch_size=10", "optim.grad_accum=3"]),
        "optim.batch_size=10 is not divisible by optim.grad_accum=3",
        id="config-batch-size-not-divisible"),
    bad(config(None, ["components.vad_loss_weight=0"]),
        "components.vad_loss is on with vad_loss_weight=0", id="config-contradiction"),
    bad(config(None, ["optim.lr=fast"]), "optim.lr: ", "number", id="config-wrong-type"),
    bad(config("run_name: x\noptim: {lr: 1\nseed: 3\n", []),
        "bad.yaml:3: invalid YAML", id="config-invalid-yaml"),
    bad(config(None, ["optim.lr=[1,"]),
        "override 'optim.lr=[1,': value is not valid YAML", id="config-invalid-override-yaml"),
    bad(config(b"run_name: caf\xe9\n", []),
        "bad.yaml:1: invalid UTF-8 at byte 13", id="config-invalid-utf8"),
    bad(config("- just\n- a list\n", []),
        "bad.yaml: expected a mapping at the top level", id="config-not-a-mapping"),
    bad(config(None, ["optim"]), "override 'optim' is not key=value", id="config-override-without-value"),
    bad(cli(["train", "{tmp}/missing.yaml"]),
        "missing.yaml: config file not found", id="config-missing-file"),
    bad(cli(["train", "{tmp}/conf.yaml"], edits=[Dir("conf.yaml")]),
        "conf.yaml: is a directory, expected a file", id="config-directory"),
    # --- models that do not exist: fail fast, one line
    bad(cli(["eval", "--model", "/nonexistent/path", "--out", "{tmp}/eval"]),
        "model.name='/nonexistent/path': cannot load", id="eval-model-path-missing"),
    bad(cli(["eval", "--model", "{tmp}/model", "--out", "{tmp}/eval"], edits=[Dir("model")]),
        "/model': cannot load as a local path", id="eval-model-dir-holds-no-model"),
    bad(config(None, ["model.name=/nonexistent"]),
        "model.name='/nonexistent': cannot load", id="train-model-path-missing"),
    # --- CLI arguments
    bad(cli(["eval", "--model", "tiny-qwen2", "--corpus", "imdb", "--out", "{tmp}/e"]),
        "Unknown corpus 'imdb'. Available: goemotions", id="eval-unknown-corpus"),
    bad(cli(["data", "stats", "--corpus", "goemotions", "--split", "bogus",
            "--data-dir", "{tmp}/data"]),
        "Unknown split 'bogus'. Available: train, dev, test", id="stats-split-bogus"),
    bad(cli(["eval", "--model", "tiny-qwen2", "--split", "bogus", "--out", "{tmp}/e"]),
        "Unknown split 'bogus'", id="eval-split-bogus"),
    bad(cli(["predict", "--model", "tiny-qwen2", "--input", "{tmp}/missing.jsonl",
            "--output", "{tmp}/out.jsonl"]),
        "missing.jsonl", id="predict-input-missing"),
    bad(cli(["predict", "--model", "tiny-qwen2", "--input", "{tmp}/rows", "--output",
            "{tmp}/out.jsonl"], edits=[Dir("rows")]),
        "rows", id="predict-input-is-a-directory"),
    bad(cli(["eval", "--run", "{tmp}/norun", "--corpus", "goemotions"]),
        "norun/config.yaml: config file not found", id="eval-run-dir-missing"),
    bad(cli(["schema", "--label-set", "bogus"]),
        "--label-set", "'bogus'", id="schema-unknown-label-set"),
]  # fmt: skip


def run_cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case, expect", CASES)
def test_bad_input_stops_with_one_line_naming_file_line_and_field(case, expect, tmp_path, capsys):
    shutil.copytree(FIXTURES, tmp_path / "data")
    for edit in case.edits:
        apply(edit, tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    code, err = run_cli(argv, capsys)
    assert code != 0, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("emoloom: error: "), err
    assert "Traceback" not in err
    for fragment in expect:
        assert fragment in err, err
    assert not (tmp_path / "out.jsonl").exists(), "nothing is written when the input is bad"
    assert not (tmp_path / "out.jsonl.partial").exists(), "a failed start leaves no state behind"


def test_the_table_holds_at_least_30_distinct_malformed_inputs():
    assert len({p.id for p in CASES}) == len(CASES) >= 30


# ------------------------------------------------------------------ accepted, and read right


def windows(path: Path) -> None:
    """Rewrite `path` with a UTF-8 BOM and CRLF line endings."""
    data = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + data)


def prepare(argv: Sequence[str], out: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code, err = run_cli([*argv, "--out", str(out)], capsys)
    assert code == 0, err
    return out.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(
    "argv, first_id",
    [
        (["--corpus", "goemotions", "--split", "train"], "goemotions:fx01a"),
        (["--corpus", "empathetic", "--split", "train"], "empathetic:hit:901_conv:1801"),
        (["--corpus", "dailydialog", "--split", "train"], "dailydialog:train:0:0"),
        (["--corpus", "emobank", "--split", "train"], "emobank:fx_b01"),
        (["--corpus", "jsonl", "--input", "{data}/in.jsonl", "--label-set", "goemotions"], "a"),
    ],
    ids=["goemotions", "empathetic", "dailydialog", "emobank", "jsonl"],
)
def test_bom_and_crlf_files_are_read_exactly_like_plain_ones(argv, first_id, tmp_path, capsys):
    plain, win = tmp_path / "plain", tmp_path / "win"
    for root in (plain, win):
        shutil.copytree(FIXTURES, root)
        (root / "in.jsonl").write_text(lines(*GOOD), encoding="utf-8")
    for path in win.rglob("*"):
        if path.is_file() and path.name != "README.md":
            windows(path)  # every file: corpus, lexicon and label files alike
    expected = prepare(["data", "prepare", *[a.replace("{data}", str(plain)) for a in argv],
                        "--data-dir", str(plain)], tmp_path / "plain.jsonl", capsys)  # fmt: skip
    got = prepare(["data", "prepare", *[a.replace("{data}", str(win)) for a in argv],
                   "--data-dir", str(win)], tmp_path / "win.jsonl", capsys)  # fmt: skip
    assert got == expected
    records = [parse_record_line(line) for line in got]
    assert records[0].id == first_id  # no BOM glued to the first field
    for r in records:
        assert "\r" not in r.text and "\ufeff" not in r.text
        assert all("\r" not in turn for turn in r.context)
        assert r.vad is not None  # the lexicon (BOM + CRLF too) was read


def test_bom_and_crlf_configs_load_like_plain_ones(tmp_path):
    for name in ("debug.yaml", "default.yaml"):  # debug inherits default
        shutil.copy(ROOT / "configs" / name, tmp_path / name)
        windows(tmp_path / name)
    assert load_config(tmp_path / "debug.yaml") == load_config(DEBUG)


def test_a_1mb_text_is_accepted_and_kept_whole(tmp_path, capsys):
    # The contract sets no length limit on `text` (prompts are truncated at encoding time,
    # prompt.max_length), so a 1 MB text is valid input and is prepared unchanged.
    text = ("I am so happy today, what a wonderful day. " * 25_000)[:1_000_000]
    (tmp_path / "in.jsonl").write_text(
        lines(GOOD[0], json.dumps({"id": "big", "text": text, "labels": ["joy"]})), "utf-8"
    )
    got = prepare(["data", "prepare", "--corpus", "jsonl", "--input", str(tmp_path / "in.jsonl"),
                   "--label-set", "goemotions", "--data-dir", str(FIXTURES)],
                  tmp_path / "out.jsonl", capsys)  # fmt: skip
    big = parse_record_line(got[1])
    assert big.id == "big" and big.text == text and len(big.text) == 1_000_000
    assert big.meta["vad_source"] == "lexicon"


# ------------------------------------------------------------------------ batch prediction

BIG = ("What a lovely surprise, thank you so much! " * 24_000)[:1_000_000]
# (input line, expected output: the good row's id, or the error record's id and message start)
PREDICT_ROWS: list[tuple[bytes, dict]] = [
    (b'{"id":"g1","text":"I love this so much, thank you!"}', {"id": "g1"}),
    (b'{"id":"x2","text":"oops"', {"id": None, "error": "invalid JSON"}),
    (b'{"text":"no id here"}', {"id": None, "error": "id: Field required"}),
    (b'{"id":"g1","text":"the same id again"}',
     {"id": "g1", "error": "id: duplicate id 'g1' (first at line 1)"}),
    (b'{"id":"e5","text":"   "}', {"id": "e5", "error": "text: "}),
    (b'{"id":"n6","text":["not","a","string"]}', {"id": "n6", "error": "text: Input should be a valid string"}),
    (b'{"id":"u7","text":"caf\xe9 au lait"}', {"id": "u7", "error": "invalid UTF-8"}),
    (b'{"id":"g8","text":"That is the worst idea I have ever heard.","labels":["anger"]}', {"id": "g8"}),
    (b'{"id":"nan9","text":"t","vad":{"v":NaN,"a":0.2,"d":0.3}}',
     {"id": "nan9", "error": "vad.v: NaN is not valid JSON"}),
    (b'{"id":"r10","text":"t","vad":{"v":0.5,"a":1.2,"d":0.3}}', {"id": "r10", "error": "vad.a: "}),
    (b"", {"id": None, "error": "empty line"}),
    (b'{"id":"f12","text":"t","mood":"happy"}', {"id": "f12", "error": "mood: Extra inputs"}),
    (json.dumps({"id": "big13", "text": BIG}).encode(), {"id": "big13"}),
    (b'["a list", "not a record"]', {"id": None, "error": "expected a JSON object, got list"}),
    (b'{"id":"g15","text":"Sure, see you then.","context":["Lunch at noon?"]}', {"id": "g15"}),
    (b'{"id":"s16","text":"caf\\ud800"}', {"id": "s16", "error": "text: lone surrogate escape"}),
    (b'{"id":"t17","text":"cut off in the mid', {"id": None, "error": "invalid JSON"}),  # last, no newline
]  # fmt: skip


def test_batch_prediction_keeps_every_good_row_and_turns_each_bad_row_into_an_error_record(
    tmp_path, capsys
):
    source, output = tmp_path / "rows.jsonl", tmp_path / "preds.jsonl"
    # A BOM and CRLF line endings too; the last line has no line ending and is cut off.
    source.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(raw for raw, _ in PREDICT_ROWS))
    code, err = run_cli(
        ["predict", "--model", "tiny-qwen2", "--label-set", "goemotions", "--input", str(source),
         "--output", str(output), "--batch-size", "4"], capsys
    )  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(PREDICT_ROWS), "one output row per input row"
    for n, (row, (_, want)) in enumerate(zip(rows, PREDICT_ROWS, strict=True), start=1):
        assert row["id"] == want["id"], (n, row)
        if "error" in want:
            assert set(row) == {"id", "input_line", "error", "parse_ok"}, row
            assert row["input_line"] == n and row["parse_ok"] is False, row
            assert row["error"].startswith(want["error"]), (n, row["error"])
        else:
            assert "error" not in row and row["parse_ok"] is True, row  # constrained: ParseOK
            assert row["prediction"]["labels"], row
    summary = json.loads(err.strip().splitlines()[-1])
    good = sum("error" not in want for _, want in PREDICT_ROWS)
    total = len(PREDICT_ROWS)
    assert (summary["rows"], summary["predicted"], summary["errors"]) == (total, good, total - good)
