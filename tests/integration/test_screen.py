"""`emoloom screen` end to end on tiny random models (two candidates, one ablation) over the
fixture corpora: the exact run-directory artifacts, the leaderboard rows, and a resume after an
interruption that redoes nothing finished and ends with the same leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import emoloom.screen as screen_module
from emoloom.cli import main
from emoloom.report import leaderboard
from emoloom.screen import run_screen

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "corpora"
EVAL_SETS = ("goemotions-test", "goemotions-dev", "empathetic-test", "dailydialog-test")
# Efficiency columns measure this machine at this moment; everything else must reproduce.
TIMING = ("wall_s", "examples_per_s", "peak_rss_mb", "peak_cuda_mb")


def screen_yaml(tmp_path: Path, name: str = "tiny") -> Path:
    body = {
        "screen": name,
        "output_dir": str(tmp_path / "screens"),
        "base": str(ROOT / "configs" / "debug.yaml"),
        "overrides": {
            "data.data_dir": str(FIXTURES),
            "data.train": [
                {"corpus": "goemotions", "split": "train"},
                {"corpus": "empathetic", "split": "train"},
            ],
            "data.dev": [{"corpus": "goemotions", "split": "dev"}],
            "components.appraisal": False,  # the verifier needs MiniLM embeddings: slow here
            "components.mixture.probe_every": 2,
            "components.mixture.probe_size": 4,
            "optim.batch_size": 4,
            "budget.max_steps": 4,
            "checkpoint_every": 2,
            "log_every": 1,
        },
        "candidates": [
            {"name": "qwen", "model": "tiny-qwen2"},
            {"name": "llama", "model": "tiny-llama"},
        ],
        "ablate": ["vad_loss"],
        "decode": {"batch_size": 4},
        "evaluation": [
            {"corpus": "goemotions", "split": "test"},
            {"corpus": "goemotions", "split": "dev"},
            {"corpus": "empathetic", "split": "test"},
            {"corpus": "dailydialog", "split": "test"},
        ],
        "polarity": {"corpus": "goemotions", "split": "dev", "limit": 4},
        "resamples": 50,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def reproducible(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("screen")
    path = screen_yaml(tmp)
    assert main(["screen", str(path)]) == 0
    return tmp / "screens" / "tiny", path


def test_a_screen_writes_exactly_the_documented_artifacts(finished):
    screen_dir, _ = finished
    got = files(screen_dir)
    expected = {"plan.json", "leaderboard.csv", "leaderboard.md", "report.html"}
    for name in ("qwen", "llama", "qwen-no-vad-loss"):
        cand = f"candidates/{name}"
        expected |= {f"{cand}/result.json", f"{cand}/polarity.json"}
        expected |= {f"{cand}/eval/{s}.json" for s in EVAL_SETS}
        expected |= {f"{cand}/predictions/{s}.jsonl" for s in EVAL_SETS}
        run = f"runs/{name}"
        expected |= {f"{run}/{f}" for f in ("config.yaml", "manifest.json", "metrics.jsonl")}
        expected |= {f"{run}/screen_train.json", f"{run}/checkpoints/latest"}
        for step in ("step-000002", "step-000004"):
            ck = f"{run}/checkpoints/{step}"
            expected |= {f"{ck}/model.safetensors", f"{ck}/optimizer.pt", f"{ck}/state.json"}
    assert got == expected  # nothing partial, temporary or missing is left behind


def test_every_candidate_records_its_training_and_decoding_facts(finished):
    screen_dir, _ = finished
    plan = json.loads((screen_dir / "plan.json").read_text())
    assert [c["name"] for c in plan["candidates"]] == ["qwen", "llama", "qwen-no-vad-loss"]
    for cand in plan["candidates"]:
        result = json.loads((screen_dir / "candidates" / cand["name"] / "result.json").read_text())
        train, decode = result["train"], result["decode"]
        assert result["status"] == "done" and train["status"] == "completed"
        assert train["step"] == 4 and train["examples"] == 16
        assert train["wall_s"] > 0 and train["examples_per_s"] > 0 and train["peak_rss_mb"] > 0
        assert 0 < train["trainable_params"] <= train["total_params"]
        assert decode["examples_per_s"] > 0 and decode["peak_rss_mb"] > 0
        assert decode["model_calls_per_example"] >= 1
        assert decode["use_cache"] is False and decode["mode"] == "constrained"
        assert sorted(result["evals"]) == sorted(EVAL_SETS)
        assert result["polarity"]["pairs"] >= 1
        manifest = json.loads((screen_dir / cand["train_run"] / "manifest.json").read_text())
        assert manifest["model"]["trainable_params"] == train["trainable_params"]
    cfg = yaml.safe_load((screen_dir / "runs/qwen-no-vad-loss/config.yaml").read_text())
    assert cfg["components"]["vad_loss"] is False and cfg["model"]["name"] == "tiny-qwen2"


def test_the_leaderboard_ranks_every_candidate_by_the_primary_metric(finished):
    screen_dir, _ = finished
    rows = leaderboard(screen_dir)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert {r["name"] for r in rows} == {"qwen", "llama", "qwen-no-vad-loss"}
    primary = [r["goemotions-test:macro_f1"] for r in rows]
    assert primary == sorted(primary, reverse=True)
    for row in rows:
        result = json.loads((screen_dir / "candidates" / row["name"] / "result.json").read_text())
        ev = json.loads((screen_dir / "candidates" / row["name"] / "eval/goemotions-test.json").read_text())  # fmt: skip
        assert row["goemotions-test:macro_f1"] == pytest.approx(
            ev["metrics"]["strict"]["headline"]["macro_f1"]
        )
        assert row["goemotions-test:parse_ok"] == 1.0
        assert row["train_wall_s"] == result["train"]["wall_s"]
    csv_lines = (screen_dir / "leaderboard.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 3
    markdown = (screen_dir / "leaderboard.md").read_text()
    assert all(f"| {r['rank']} | {r['name']} |" in markdown for r in rows)


def test_a_second_run_of_a_finished_screen_redoes_nothing(finished, capsys):
    screen_dir, path = finished
    before = {p: (screen_dir / p).stat().st_mtime_ns for p in files(screen_dir)}
    result = run_screen(path, report=False)
    assert result.done == [] and result.skipped == ["qwen", "llama", "qwen-no-vad-loss"]
    after = {p: (screen_dir / p).stat().st_mtime_ns for p in files(screen_dir)}
    assert before == after  # not even the report: report=False


def test_an_interrupted_screen_resumes_without_redoing_finished_work(
    finished, tmp_path, monkeypatch
):
    reference_dir, _ = finished
    path = screen_yaml(tmp_path)
    screen_dir = tmp_path / "screens" / "tiny"
    real_evaluate = screen_module.evaluate
    calls = []

    def interrupted(cfg, backbone, corpus, split, *args, **kwargs):
        calls.append(f"{cfg.run_name}:{corpus}-{split}")
        if cfg.run_name == "llama" and corpus == "empathetic":  # mid-candidate, after training
            raise KeyboardInterrupt
        return real_evaluate(cfg, backbone, corpus, split, *args, **kwargs)

    monkeypatch.setattr(screen_module, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_screen(path)
    assert (screen_dir / "candidates/qwen/result.json").is_file()
    assert not (screen_dir / "candidates/llama/result.json").exists()
    first = (screen_dir / "candidates/qwen/result.json").read_bytes()
    llama_run = (screen_dir / "runs/llama/metrics.jsonl").read_bytes()

    calls.clear()
    monkeypatch.setattr(screen_module, "evaluate", real_evaluate)
    result = run_screen(path)
    assert result.skipped == ["qwen"] and result.done == ["llama", "qwen-no-vad-loss"]
    assert (screen_dir / "candidates/qwen/result.json").read_bytes() == first
    assert (screen_dir / "runs/llama/metrics.jsonl").read_bytes() == llama_run  # not retrained
    llama = json.loads((screen_dir / "candidates/llama/result.json").read_text())
    assert llama["train"]["reused"] is True
    assert reproducible(leaderboard(screen_dir)) == reproducible(leaderboard(reference_dir))
    for name in ("qwen", "llama", "qwen-no-vad-loss"):
        for s in EVAL_SETS:
            rel = f"candidates/{name}/predictions/{s}.jsonl"
            assert (screen_dir / rel).read_bytes() == (reference_dir / rel).read_bytes()


def test_an_interrupted_evaluation_continues_from_its_partial_log(tmp_path, monkeypatch):
    """Kill inside an evaluation set (after its first batch): the rows already decoded are kept
    and the final per-example log equals an uninterrupted one."""
    import emoloom.evaluate as evaluate_module

    path = screen_yaml(tmp_path, "partial")
    body = yaml.safe_load(path.read_text())
    body["candidates"] = body["candidates"][:1]
    body["ablate"] = []
    # 5 rows, batches of 1: a full evaluation appends windows of WINDOW_BATCHES (4) batches
    body["evaluation"] = [{"corpus": "goemotions", "split": "train"}]
    body["decode"] = {"batch_size": 1}
    body["polarity"] = None
    path.write_text(yaml.safe_dump(body))
    screen_dir = tmp_path / "screens" / "partial"
    real_append = evaluate_module._PartialLog.append
    appended = []

    def dying_append(self, batch, seconds, calls):
        real_append(self, batch, seconds, calls)
        appended.append(len(batch))
        if len(appended) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_module._PartialLog, "append", dying_append)
    with pytest.raises(KeyboardInterrupt):
        run_screen(path, report=False)
    partial = screen_dir / "candidates/qwen/predictions/goemotions-train.jsonl.partial"
    assert len(partial.read_text().splitlines()) == appended[0] == 4
    monkeypatch.setattr(evaluate_module._PartialLog, "append", real_append)
    decoded = []
    real_decode = evaluate_module.make_decoder

    def counting_decoder(*args, **kwargs):
        decoder = real_decode(*args, **kwargs)
        inner = decoder.decode
        decoder.decode = lambda rows: decoded.append(len(rows)) or inner(rows)
        return decoder

    monkeypatch.setattr(evaluate_module, "make_decoder", counting_decoder)
    run_screen(path, report=False)
    rows = (screen_dir / "candidates/qwen/predictions/goemotions-train.jsonl").read_text()
    ids = [json.loads(line)["id"] for line in rows.splitlines()]
    assert len(ids) == len(set(ids)) == 5 and decoded == [1]  # window 1 was not redone
    assert not partial.exists()
