"""The `emoloom` command: subcommands, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from emoloom.cli import main
from emoloom.contract import CONTRACT_VERSION, parse_record_line

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "corpora"


def write_jsonl(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "data" in out and "schema" in out


def test_console_script_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "emoloom.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("emoloom ")


def test_schema_prints_input_and_output_schemas(capsys):
    assert main(["schema", "--label-set", "dailydialog"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["contract_version"] == CONTRACT_VERSION
    jsonschema.validate(
        {"labels": ["no emotion"], "vad": {"v": 0.5, "a": 0.2, "d": 0.4}}, printed["output"]
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"labels": ["joy"], "vad": {"v": 0.5, "a": 0.2, "d": 0.4}}, printed["output"])  # fmt: skip


def test_prepare_jsonl_adds_weak_vad_to_records_without_it(tmp_path, capsys):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [
            '{"id":"a","text":"I am so happy today","labels":["joy"]}',
            '{"id":"b","text":"kept as gold","vad":{"v":0.1,"a":0.2,"d":0.3}}',
        ],
    )
    out = tmp_path / "out.jsonl"
    code = main(
        ["data", "prepare", "--corpus", "jsonl", "--input", str(src), "--out", str(out),
         "--label-set", "goemotions", "--data-dir", str(FIXTURES)]
    )  # fmt: skip
    assert code == 0
    a, b = (parse_record_line(line) for line in out.read_text().splitlines())
    assert a.vad is not None and a.meta["vad_source"] in ("lexicon", "prior")
    assert b.vad.as_tuple() == (0.1, 0.2, 0.3) and b.meta["vad_source"] == "gold"
    assert "2 records" in capsys.readouterr().out


def test_bad_jsonl_row_is_one_line_error_with_file_line_and_field(tmp_path, capsys):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        ['{"id":"a","text":"fine"}', '{"id":"b","text":"x","vad":{"v":2,"a":0,"d":0}}'],
    )
    code = main(
        ["data", "prepare", "--corpus", "jsonl", "--input", str(src), "--out",
         str(tmp_path / "o.jsonl"), "--lexicon", "none"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "in.jsonl:2: vad.v:" in err and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists(), "nothing is written when the input is bad"


def test_skip_invalid_keeps_good_rows_and_reports_the_bad_ones(tmp_path, capsys):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        ['{"id":"a","text":"fine"}', "{not json", '{"id":"c","text":"also fine"}'],
    )
    out = tmp_path / "o.jsonl"
    code = main(
        ["data", "prepare", "--corpus", "jsonl", "--input", str(src), "--out", str(out),
         "--lexicon", "none", "--skip-invalid"]
    )  # fmt: skip
    assert code == 0
    assert [parse_record_line(x).id for x in out.read_text().splitlines()] == ["a", "c"]
    assert "skipped 1 row" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", ["{"])
    from emoloom.errors import DataError

    with pytest.raises(DataError):
        main(["data", "prepare", "--corpus", "jsonl", "--input", str(src), "--out",
              str(tmp_path / "o.jsonl"), "--debug"])  # fmt: skip


@pytest.mark.parametrize(
    "argv, message",
    [
        (["data", "prepare", "--corpus", "imdb", "--split", "dev", "--out", "x"], "Unknown corpus 'imdb'. Available"),
        (["data", "prepare", "--corpus", "goemotions", "--split", "val2", "--out", "x"], "Unknown split"),
        (["data", "prepare", "--corpus", "goemotions", "--split", "dev"], "--out FILE"),
        (["data", "prepare", "--corpus", "all", "--out", "x"], "--out writes one file"),
        (["data", "prepare", "--corpus", "jsonl", "--out", "x"], "--input FILE"),
        (["data", "stats", "--data-dir", "/nonexistent/dir"], "not a directory"),
        (["data", "stats", "--from-dir", "/nonexistent/dir"], "prepare.json: not found"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_missing_corpus_folder_with_the_hub_disabled_is_a_clear_error(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["data", "stats", "--corpus", "emobank", "--data-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "emobank" in err and "does not exist" in err and "hub is disabled" in err


def test_prepare_all_then_stats_from_dir_round_trips(tmp_path, capsys):
    out = tmp_path / "prepared"
    assert main(["data", "prepare", "--corpus", "all", "--out-dir", str(out), "--data-dir", str(FIXTURES)]) == 0  # fmt: skip
    manifest = json.loads((out / "prepare.json").read_text())
    assert manifest["contract_version"] == CONTRACT_VERSION
    written = {(f["corpus"], f["split"]): f["records"] for f in manifest["files"]}
    assert {c for c, _ in written} == {"goemotions", "empathetic", "dailydialog", "emobank"}
    capsys.readouterr()
    assert main(["data", "stats", "--from-dir", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert {(s["corpus"], s["split"]): s["records"] for s in stats} == written
    direct = main(["data", "stats", "--data-dir", str(FIXTURES), "--json"])
    assert direct == 0
    from_source = json.loads(capsys.readouterr().out)
    assert [s["label_counts"] for s in from_source] == [s["label_counts"] for s in stats]


def test_stats_tables_render_without_a_terminal(tmp_path):
    env = {**os.environ, "EMOLOOM_DATA": str(FIXTURES)}
    result = subprocess.run(
        [sys.executable, "-m", "emoloom.cli", "data", "stats", "--corpus", "goemotions"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "goemotions: label distribution" in result.stdout and "multi-label" in result.stdout
