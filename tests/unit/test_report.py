"""Screen report: ranking, leaderboard files, the self-contained HTML page, no model imports.

`make_screen` fabricates a screen directory in the exact on-disk formats (eval JSONs come from
`emoloom.metrics.evaluate_rows`, like `evaluate.py` writes them); the browser test reuses it.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emoloom.errors import EmoloomError
from emoloom.labels import LABEL_SETS
from emoloom.metrics import NONE_LABEL, evaluate_rows
from emoloom.report import (
    ReportPaths,
    confusion_from_predictions,
    eval_values,
    higher_is_better,
    leaderboard,
    manifest_facts,
    write_report,
)

PRIMARY = "goemotions-test:macro_f1"
DECODE = {"mode": "constrained", "use_cache": False, "batch_size": 32, "max_new_tokens": 96}
# name -> (ablation, train_run, prediction quality, train wall s, polarity flip rate)
DONE = {
    "minilm": (None, "runs/minilm", 0.9, 150.2, 0.28),
    "minilm-kv-on": ("kv_off", "runs/minilm", 0.7, 150.2, 0.25),  # decode-only: shares the run
    "minilm-no-vad-loss": ("vad_loss", "runs/minilm-no-vad-loss", 0.4, 120.0, 0.10),
}
INCOMPLETE = "qwen-tiny"  # planned, started, no result.json yet
GOEMOTIONS = LABEL_SETS["goemotions"].labels
DAILYDIALOG = LABEL_SETS["dailydialog"].labels
FIGURES = ("per-label-f1", "confusion", "vad-scatter", "training-curves")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def fake_rows(labels: tuple[str, ...], quality: float, seed: int, *, multi: bool) -> list[dict]:
    """Prediction rows as evaluate.py logs them: 3 per gold label, every 10th parse failed."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(3 * len(labels)):
        gold = [labels[i % len(labels)]]
        if multi and i % 4 == 0:  # GoEmotions rows can carry two labels
            gold.append(labels[(i + 3) % len(labels)])
        ok = i % 10 != 9
        pred = gold[:1] if rng.random() < quality else [labels[int(rng.integers(len(labels)))]]
        gold_vad = rng.uniform(0.1, 0.9, 3)
        pred_vad = np.clip(gold_vad + rng.normal(0.0, 0.3 * (1 - quality) + 0.02, 3), 0, 1)
        rows.append(
            {
                "id": f"r{i}",
                "gold_labels": gold,
                "gold_vad": gold_vad.round(3).tolist(),
                "pred_labels": pred if ok else None,
                "pred_prompt_labels": pred if ok else None,
                "pred_vad": pred_vad.round(3).tolist() if ok else None,
                "parse_ok": ok,
                "failure": None if ok else "no_json",
                "line": None,
                "raw": None if ok else "garbage",
                "model_calls": 10,
                "generated_tokens": 50,
            }
        )
    return rows


def write_eval(cdir: Path, corpus: str, rows: list[dict], exclude: tuple[str, ...] = ()) -> None:
    name = f"{corpus}-test"
    labels = LABEL_SETS[corpus].labels
    report = {
        "corpus": corpus,
        "split": "test",
        "prompt_label_set": "goemotions",
        "target_label_set": corpus,
        "decode": {"mode": "constrained", "use_cache": False},
        "examples_total": 1000,
        "examples_evaluated": len(rows),
        "time_budget_s": None,
        "seconds": 10.0,
        "examples_per_s": len(rows) / 10.0,
        "model_calls_per_example": 10.0,
        "seed": 0,
        "resamples": 50,
        "metrics": evaluate_rows(rows, labels, exclude=exclude, seed=0, resamples=50),
    }
    if exclude:
        cls = report["metrics"]["strict"]["classification"]
        report["macro_f1_all_classes"] = cls["all_labels"]["macro_f1"]
        report["macro_f1_without_excluded"] = cls["macro_f1"]
    write_json(cdir / "eval" / f"{name}.json", report)
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (cdir / "predictions" / f"{name}.jsonl").parent.mkdir(parents=True, exist_ok=True)
    (cdir / "predictions" / f"{name}.jsonl").write_text(lines, encoding="utf-8")


def write_run(run: Path, name: str, seed: int) -> None:
    write_json(
        run / "manifest.json",
        {
            "run_name": name,
            "status": "completed",
            "config_hash": "c" * 64,
            "run_key_hash": "k" * 64,
            "contract_version": "1",
            "prompt_version": "2",
            "model": {
                "name": "minilm",
                "finetune": "full",
                "dtype": "float32",
                "trainable_params": 22744506,
                "total_params": 22744506,
            },
            "data": [
                {
                    "corpus": "goemotions",
                    "split": "train",
                    "records": 43410,
                    "files": {"/data/goemotions/train.tsv": "1c254a142be5c00e80d819b9ae1bbd36"},
                },
            ],
            "data_fingerprint": "f" * 64,
            "packages": {"emoloom": "0.1.0", "torch": "2.13.0+cpu", "python": "3.11.7"},
            "git_commit": "5fa7ab3430a6f97c5ef19dc0a573a17812cfcb02",
            "seed": seed,
            "device": "cpu",
            "started": "2026-11-26T08:56:33+00:00",
            "ended": "2026-11-26T09:41:45+00:00",
            "stopped_by": "max_steps",
            "budget_used": {"steps": 40, "wall_seconds": 150.2},
        },
    )
    log = []
    for step in (10, 20, 30, 40):
        log.append(
            {
                "step": step,
                "loss": 9.0 / step,
                "loss_lm": 8.5 / step,
                "loss_vad": 0.05,
                "loss_appraisal": 0.02,
                "temperature": 2.0 - step / 100,
                "b_fraction": 0.25,
                "probe_entropy": None if step < 30 else 0.8,
            }
        )
    log[-1]["dev_goemotions_top1_macro_f1"] = 0.41
    text = "".join(json.dumps(r) + "\n" for r in log) + '{"step": 50, "loss": 0.'  # torn by a kill
    (run / "metrics.jsonl").write_text(text, encoding="utf-8")
    (run / "config.yaml").write_text(f"run_name: {name}\nseed: {seed}\n", encoding="utf-8")


def write_candidate(cdir: Path, name: str, seed: int) -> None:
    ablation, run, quality, wall, flip = DONE[name]
    write_eval(cdir, "goemotions", fake_rows(GOEMOTIONS, quality, seed, multi=True))
    dd_rows = fake_rows(DAILYDIALOG, quality, seed, multi=False)
    write_eval(cdir, "dailydialog", dd_rows, exclude=("no emotion",))
    polarity = {"pairs": 50, "valence_flip_rate": 0.6, "label_flip_rate": 0.3}
    polarity["polarity_flip_rate"] = flip
    write_json(cdir / "polarity.json", {"corpus": "goemotions", "split": "dev", **polarity})
    train = {
        "status": "completed",
        "step": 40,
        "stopped_by": "max_steps",
        "wall_s": wall,
        "examples_per_s": 9.1,
        "peak_rss_mb": 1234.5 + seed,
        "trainable_params": 22744506,
        "total_params": 22744506,
        "reused": name != Path(run).name,
    }
    decode = {**DECODE, "examples_per_s": 5.0 + seed, "model_calls_per_example": 10.2,
              "wall_s": 100.0, "peak_rss_mb": 1300.0}  # fmt: skip
    result = {
        "name": name,
        "model": "minilm",
        "ablation": ablation,
        "status": "done",
        "train_run": run,
        "train": train,
        "decode": decode,
        "evals": {s: f"eval/{s}.json" for s in ("goemotions-test", "dailydialog-test")},
        "polarity": {**polarity, "polarity_flip_rate": 0.99},  # polarity.json takes precedence
        "started": "2026-11-26T10:00:00+00:00",
        "finished": "2026-11-26T10:05:00+00:00",
    }
    write_json(cdir / "result.json", result)


def make_screen(root: Path) -> Path:
    """A finished-but-one screen: three done candidates (two share a training run), one not."""
    screen = root / "screen"
    sets = [{"corpus": c, "split": "test", "limit": 84, "time_budget": None}
            for c in ("goemotions", "dailydialog")]  # fmt: skip
    entries = [
        {"name": name, "model": "minilm", "ablation": abl, "train_run": run, "decode": DECODE}
        for name, (abl, run, *_) in DONE.items()
    ]
    entries.append(
        {"name": INCOMPLETE, "model": "tiny-qwen2", "ablation": None,
         "train_run": "runs/qwen-tiny", "decode": DECODE}
    )  # fmt: skip
    plan = {
        "screen": "quick",
        "plan_version": 1,
        "config_path": "configs/quick.yaml",
        "config_hash": "a" * 64,
        "primary_metric": PRIMARY,
        "evaluation": {
            "sets": sets,
            "polarity": {"corpus": "goemotions", "split": "dev", "limit": 50},
            "decode": DECODE,
        },
        "candidates": entries,
    }
    write_json(screen / "plan.json", plan)
    for seed, name in enumerate(DONE):
        write_candidate(screen / "candidates" / name, name, seed)
        run = screen / DONE[name][1]
        if not run.exists():
            write_run(run, run.name, seed)
    # the unfinished candidate already wrote one eval; without result.json it must not be read
    perfect = fake_rows(GOEMOTIONS, 1.0, 9, multi=True)
    write_eval(screen / "candidates" / INCOMPLETE, "goemotions", perfect)
    return screen


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, ReportPaths]:
    """One screen and its report, shared by the tests that only read them."""
    screen = make_screen(tmp_path_factory.mktemp("report"))
    return screen, write_report(screen)


@pytest.fixture
def screen(built, tmp_path: Path) -> Path:
    """A private copy of the screen, for tests that change it."""
    return Path(shutil.copytree(built[0], tmp_path / "screen"))


def eval_json(screen: Path, name: str, set_name: str) -> dict:
    path = screen / "candidates" / name / "eval" / f"{set_name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def primary_value(screen: Path, name: str) -> float:
    return eval_json(screen, name, "goemotions-test")["metrics"]["strict"]["headline"]["macro_f1"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --- ranking -------------------------------------------------------------------------------


def test_candidates_are_ranked_by_the_plans_primary_metric_highest_first(built):
    screen = built[0]
    rows = leaderboard(screen)
    done = [r for r in rows if r["status"] == "done"]
    expected = sorted(DONE, key=lambda n: -primary_value(screen, n))
    assert [r["name"] for r in done] == expected
    assert [r["rank"] for r in done] == [1, 2, 3]
    assert [r[PRIMARY] for r in done] == sorted((r[PRIMARY] for r in done), reverse=True)


def test_a_lower_is_better_primary_ranks_lowest_first_and_breaks_ties_by_name(built):
    assert not higher_is_better("train_wall_s")
    rows = leaderboard(built[0], primary="train_wall_s")
    # no-vad-loss trained in 120 s; the two others share one 150.2 s run, so the name decides
    assert [r["name"] for r in rows[:3]] == ["minilm-no-vad-loss", "minilm", "minilm-kv-on"]
    assert [r["train_wall_s"] for r in rows[:3]] == [120.0, 150.2, 150.2]


def test_an_incomplete_candidate_is_listed_last_without_a_rank_or_values(built):
    last = leaderboard(built[0])[-1]
    assert (last["name"], last["status"], last["rank"]) == (INCOMPLETE, "incomplete", None)
    # its partial eval file exists but is not read before result.json commits the candidate
    assert last[PRIMARY] is None and last["model"] == "tiny-qwen2"


def test_an_unknown_primary_metric_is_an_error_listing_the_available_ones(built):
    with pytest.raises(EmoloomError, match="Unknown metric 'goemotions-test:f1'") as info:
        leaderboard(built[0], primary="goemotions-test:f1")
    message = str(info.value)
    assert PRIMARY in message and "dailydialog-test:macro_f1_7" in message
    assert "polarity:polarity_flip_rate" in message and "peak_rss_mb" in message


def test_a_directory_without_plan_json_is_an_error(tmp_path):
    with pytest.raises(EmoloomError, match="no plan.json"):
        write_report(tmp_path)


# --- values --------------------------------------------------------------------------------


def test_eval_values_read_the_strict_headline_ci_parse_ok_and_dailydialog_conventions(built):
    dd = eval_json(built[0], "minilm", "dailydialog-test")
    values, cis = eval_values("dailydialog-test", dd)
    strict = dd["metrics"]["strict"]
    assert values["dailydialog-test:macro_f1"] == strict["headline"]["macro_f1"]
    assert values["dailydialog-test:accuracy"] == strict["headline"]["accuracy"]
    assert values["dailydialog-test:parse_ok"] == pytest.approx(0.9, abs=0.01)
    assert values["dailydialog-test:macro_f1_7"] == dd["macro_f1_all_classes"]
    assert values["dailydialog-test:macro_f1_6"] == dd["macro_f1_without_excluded"]
    ci = strict["ci"]["vad_score"]
    assert cis["dailydialog-test:vad_score"] == (ci["ci_low"], ci["ci_high"])
    assert (
        "dailydialog-test:accuracy" not in cis
    )  # evaluate_rows gives CIs to headline metrics only


def test_an_emobank_vad_only_eval_yields_a_vad_score_without_classification():
    emobank = {"metrics": {"n": 4, "parse_ok": 0.75, "strict": {"vad": {"vad_score": 0.81}}}}
    values, cis = eval_values("emobank-test", emobank)
    assert values == {"emobank-test:vad_score": 0.81, "emobank-test:parse_ok": 0.75}
    assert cis == {}


def test_csv_has_one_row_per_candidate_with_value_ci_and_efficiency_columns(built):
    screen, paths = built
    rows = read_csv(paths.csv)
    assert [r["name"] for r in rows] == [r["name"] for r in leaderboard(screen)]
    header = list(rows[0])
    assert header[:5] == ["rank", "name", "model", "ablation", "status"]
    # every value column is followed by its CI columns when a CI exists; efficiency comes last
    i = header.index(PRIMARY)
    assert header[i + 1 : i + 3] == [f"{PRIMARY}_ci_low", f"{PRIMARY}_ci_high"]
    assert header.index("goemotions-test:parse_ok") < header.index("dailydialog-test:macro_f1")
    assert header[-6:] == ["train_wall_s", "train_examples_per_s", "decode_examples_per_s",
                           "peak_rss_mb", "trainable_params", "total_params"]  # fmt: skip
    assert "goemotions-test:macro_f1_7" not in header  # no candidate has it
    top = rows[0]
    ci = eval_json(screen, top["name"], "goemotions-test")["metrics"]["strict"]["ci"]["macro_f1"]
    assert float(top[PRIMARY]) == primary_value(screen, top["name"])
    assert float(top[f"{PRIMARY}_ci_low"]) == ci["ci_low"]
    assert float(top["polarity:polarity_flip_rate"]) == 0.28  # polarity.json over result.json
    assert float(top["peak_rss_mb"]) == 1300.0  # the max of training and decoding
    assert top["ablation"] == "" and rows[-1]["rank"] == "" and rows[-1][PRIMARY] == ""


def test_a_missing_eval_file_gives_empty_cells_not_an_error(screen):
    (screen / "candidates" / "minilm-kv-on" / "eval" / "dailydialog-test.json").unlink()
    rows = {r["name"]: r for r in read_csv(write_report(screen).csv)}
    assert rows["minilm-kv-on"]["dailydialog-test:macro_f1_7"] == ""
    assert rows["minilm"]["dailydialog-test:macro_f1_7"] != ""
    assert rows["minilm-kv-on"]["rank"] != ""  # still ranked on the goemotions primary


# --- Markdown and HTML ---------------------------------------------------------------------


def test_markdown_names_the_primary_metric_and_shows_it_with_its_ci(built):
    screen, paths = built
    text = paths.markdown.read_text(encoding="utf-8")
    assert f"Ranked by {PRIMARY} (higher is better)" in text and "95%" in text
    top = leaderboard(screen)[0]
    cell = f"{top[PRIMARY]:.3f} [{top[f'{PRIMARY}_ci_low']:.2f}, {top[f'{PRIMARY}_ci_high']:.2f}]"
    assert f"| 1 | {top['name']} |  | done | {cell} |" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(DONE) + 1  # header, rule, one line per candidate
    assert table[-1].startswith(f"|  | {INCOMPLETE} |  | incomplete |")
    assert "DD test 7-class F1" in table[0] and "ED test Macro-F1" not in table[0]  # no ED data
    assert "22.7M/22.7M" in text


def test_html_is_self_contained_with_one_png_per_figure_per_candidate(built):
    page = built[1].html.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert "<link" not in page and "<script" not in page and "@import" not in page
    assert page.count('<table id="leaderboard">') == 1
    images = re.findall(r'<img class="figure"[^>]*>', page)
    assert len(images) == len(FIGURES) * len(DONE)
    for name in DONE:
        kinds = [k for k in FIGURES if f'data-kind="{k}" data-candidate="{name}"' in page]
        assert kinds == list(FIGURES)
    for tag in images:
        data = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', tag).group(1)
        assert base64.b64decode(data).startswith(PNG_SIGNATURE)
    assert 'class="manifest" data-candidate="minilm"' in page and "1c254a142be5" in page
    assert "Incomplete: no result.json yet." in page


def test_html_escapes_text_from_the_screen_directory(screen):
    plan = json.loads((screen / "plan.json").read_text(encoding="utf-8"))
    plan["screen"] = "<script>alert(1)</script>"
    write_json(screen / "plan.json", plan)
    page = write_report(screen).html.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_report_is_byte_identical_when_written_again_in_a_fresh_process(built, screen):
    first = {p.name: p.read_bytes() for p in vars(built[1]).values()}
    for name in first:
        (screen / name).unlink()
    code = "import sys, emoloom.report as r; r.write_report(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(screen)], check=True, timeout=120)
    assert {name: (screen / name).read_bytes() for name in first} == first


def test_report_imports_no_model_code(screen):
    code = (
        "import sys, emoloom.report as r; r.write_report(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m in {'torch', 'transformers', 'peft', "
        "'emoloom.trainer', 'emoloom.modeling', 'emoloom.screen', 'emoloom.evaluate'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(screen)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_report_tolerates_a_candidate_whose_training_run_is_gone(screen):
    shutil.rmtree(screen / "runs" / "minilm-no-vad-loss")
    page = write_report(screen).html.read_text(encoding="utf-8")
    assert 'data-kind="training-curves" data-candidate="minilm-no-vad-loss"' not in page
    assert 'data-kind="training-curves" data-candidate="minilm-kv-on"' in page


# --- helpers -------------------------------------------------------------------------------


def test_confusion_from_predictions_counts_gold_against_the_first_predicted_label():
    rows = [
        {"gold_labels": ["joy"], "pred_labels": ["joy", "anger"], "parse_ok": True},
        {"gold_labels": ["anger"], "pred_labels": ["joy"], "parse_ok": True},
        {"gold_labels": ["anger"], "pred_labels": ["anger"], "parse_ok": False},  # failed parse
        {"gold_labels": ["joy", "anger"], "pred_labels": ["joy"], "parse_ok": True},  # 2 golds
    ]
    conf = confusion_from_predictions(rows, ["joy", "anger"])
    assert conf == {
        "rows": ["joy", "anger"],
        "columns": ["joy", "anger", NONE_LABEL],
        "matrix": [[1, 0, 0], [1, 0, 1]],
    }
    assert confusion_from_predictions(rows[3:], ["joy", "anger"]) is None


def test_manifest_facts_cover_hashes_model_data_files_and_versions(built):
    manifest = json.loads((built[0] / "runs" / "minilm" / "manifest.json").read_text())
    facts = dict(manifest_facts(manifest))
    assert facts["config_hash"] == "c" * 64 and facts["run_key_hash"] == "k" * 64
    assert facts["model"] == "minilm full float32; 22,744,506 trainable of 22,744,506 params"
    assert facts["data goemotions/train"] == "43410 records; goemotions/train.tsv 1c254a142be5"
    assert "torch 2.13.0+cpu" in facts["packages"] and facts["device"] == "cpu"
    assert facts["budget_used"] == "steps=40, wall_seconds=150.2"
