"""The training loop end to end on tiny random models: parameters move, runs are auditable,
budgets stop cleanly, resumes are exact (also after SIGKILL) and refused when they should be,
and two processes follow the single-process loss trajectory."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emoloom.checkpoint import latest_checkpoint
from emoloom.config import load_config
from emoloom.errors import EmoloomError
from emoloom.modeling import EmoLoomLM, load_backbone
from emoloom.seed import derive_seeds
from emoloom.trainer import train

EMOLOOM = [sys.executable, "-m", "emoloom.cli"]
ROOT = Path(__file__).resolve().parents[2]
DEBUG = ROOT / "configs" / "debug.yaml"  # every run here: the debug config + overrides
ROWS = [
    ("I am so happy and glad today", ["joy"], (0.9, 0.7, 0.7)),
    ("This is the best day, I love it", ["joy", "love"], (0.95, 0.7, 0.7)),
    ("I feel sad and lonely", ["sadness"], (0.15, 0.3, 0.2)),
    ("What a terrible loss, so sad", ["sadness"], (0.1, 0.4, 0.2)),
    ("I hate this, it makes me angry", ["anger"], (0.1, 0.85, 0.6)),
    ("You did great work, well done", ["admiration"], (0.9, 0.55, 0.7)),
    ("The meeting is at noon", ["neutral"], (0.5, 0.2, 0.4)),
    ("I love my dog so much", ["love"], (0.95, 0.5, 0.6)),
]


def _write_jsonl(path: Path, copies: int) -> Path:
    lines = []
    for k in range(copies):
        for i, (text, labels, vad) in enumerate(ROWS):
            v, a, d = vad
            lines.append(json.dumps({"id": f"r{k}-{i}", "text": f"{text} ({k})", "labels": labels, "vad": {"v": v, "a": a, "d": d}}))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return _write_jsonl(root / "train.jsonl", 6), _write_jsonl(root / "dev.jsonl", 1)


def overrides(data, out: Path, *extra: str) -> list[str]:
    train_file, dev_file = data
    return [
        f"output_dir={out}",
        "run_name=tiny",
        "model.name=tiny-qwen2",
        f"data.train=[{{corpus: jsonl, path: {train_file}, label_set: goemotions}}]",
        f"data.dev=[{{corpus: jsonl, path: {dev_file}, label_set: goemotions}}]",
        "components.appraisal=false",
        "components.mixture.probe_every=2",
        "components.mixture.probe_size=8",
        "optim.batch_size=8",
        "optim.grad_accum=1",
        "optim.lr=2e-3",
        "optim.warmup_steps=1",
        "optim.schedule_steps=6",
        "budget.max_steps=6",
        "budget.max_wall_seconds=null",
        "log_every=1",
        "checkpoint_every=3",
        "dev_max_examples=8",
        "prompt.max_length=320",
        *extra,
    ]


def cfg_for(data, out, *extra):
    return load_config(DEBUG, overrides(data, out, *extra))


def weights_hash(run_dir: Path) -> str:
    weights = load_file(latest_checkpoint(run_dir) / "model.safetensors")
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(weights[name].numpy().tobytes())
    return digest.hexdigest()


def losses(run_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = (
        "step",
        "loss",
        "loss_lm",
        "loss_vad",
        "temperature",
        "b_fraction",
        "probe_entropy",
        "lr",
    )
    return [tuple(row.get(k) for k in keys) for row in rows]


def test_every_trainable_parameter_changes_after_a_few_steps(data, tmp_path):
    cfg = cfg_for(data, tmp_path, "budget.max_steps=3")
    result = train(cfg)
    before = load_backbone(cfg.model, seed=derive_seeds(cfg.seed)["model"]).model
    after = load_file(latest_checkpoint(result.run_dir) / "model.safetensors")
    names = [n for n, p in before.named_parameters() if p.requires_grad]
    assert set(names) == set(after)
    unchanged = [n for n, p in before.named_parameters() if torch.equal(p.detach(), after[n])]
    assert not unchanged


def test_run_directory_is_auditable(data, tmp_path):
    cfg = cfg_for(data, tmp_path)
    result = train(cfg)
    run = result.run_dir
    assert result.status == "completed" and result.step == 6
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "config.yaml",
        "manifest.json",
        "metrics.jsonl",
    ]
    assert load_config(run / "config.yaml") == cfg  # re-runnable as is
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["stopped_by"] == "max_steps"
    assert manifest["config_hash"] == cfg.hash() and manifest["contract_version"] == "1"
    (source,) = [d for d in manifest["data"] if d.get("role") != "dev"]
    assert source["records"] == 48 and list(source["files"].values()) == [
        hashlib.sha256(data[0].read_bytes()).hexdigest()
    ]
    assert manifest["packages"]["torch"].startswith("2.13.0") and "git_commit" in manifest
    assert manifest["seeds"] == derive_seeds(cfg.seed) and manifest["device"] == "cpu"
    assert manifest["started"] and manifest["ended"]
    assert manifest["budget_used"]["steps"] == 6 and manifest["budget_used"]["train_tokens"] > 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for key in (
        "loss",
        "loss_lm",
        "loss_vad",
        "lr",
        "temperature",
        "b_fraction",
        "probe_entropy",
        "examples_per_s",
        "grad_norm",
    ):
        assert all(key in r for r in rows), key
    assert rows[-1]["loss_lm"] < rows[0]["loss_lm"]
    assert "dev_goemotions_top1_macro_f1" in rows[-1]


def test_mixed_precision_autocasts_the_training_forward_only(data, tmp_path, monkeypatch):
    """bf16: every training-mode forward runs under bf16 autocast; the probe and dev scoring
    (eval mode) and the weights stay fp32; the run is still deterministic and learns."""
    seen: dict[str, list[tuple[bool, bool]]] = {}
    forward = EmoLoomLM.forward

    def recording(self, *args, **kwargs):
        calls = seen.setdefault(current, [])
        calls.append((self.training, torch.is_autocast_enabled("cpu")))
        if calls[-1][1]:
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(EmoLoomLM, "forward", recording)
    runs = {}
    for current in ("no", "bf16", "bf16-again"):
        mp = current.removesuffix("-again")
        runs[current] = train(cfg_for(data, tmp_path / current, f"optim.mixed_precision={mp}"))
    assert {train_mode for train_mode, _ in seen["bf16"]} == {True, False}
    for train_mode, autocast in seen["bf16"]:
        assert autocast == train_mode
    assert not any(autocast for _, autocast in seen["no"])
    manifest = json.loads((runs["bf16"].run_dir / "manifest.json").read_text())
    assert manifest["model"]["mixed_precision"] == "bf16"
    weights = load_file(latest_checkpoint(runs["bf16"].run_dir) / "model.safetensors")
    assert all(w.dtype == torch.float32 for w in weights.values())
    assert weights_hash(runs["bf16"].run_dir) == weights_hash(runs["bf16-again"].run_dir)
    assert weights_hash(runs["bf16"].run_dir) != weights_hash(runs["no"].run_dir)
    fp32, bf16 = losses(runs["no"].run_dir), losses(runs["bf16"].run_dir)
    assert bf16[-1][2] < bf16[0][2]  # the LM loss falls
    assert bf16[0][2] == pytest.approx(fp32[0][2], rel=0.02)  # same step-1 loss up to bf16


def test_interrupted_then_resumed_run_is_bit_identical(data, tmp_path):
    straight = train(cfg_for(data, tmp_path / "a"))
    first = train(cfg_for(data, tmp_path / "b", "budget.max_steps=3"))
    assert first.step == 3
    resumed = train(cfg_for(data, tmp_path / "b"), resume=True)
    assert resumed.step == 6
    assert weights_hash(straight.run_dir) == weights_hash(resumed.run_dir)
    assert losses(straight.run_dir) == losses(resumed.run_dir)


def test_a_resume_with_different_run_defining_fields_is_refused(data, tmp_path):
    train(cfg_for(data, tmp_path, "budget.max_steps=3"))
    with pytest.raises(EmoloomError, match=r"refusing to resume .*optim.lr"):
        train(cfg_for(data, tmp_path, "optim.lr=1e-2"), resume=True)
    with pytest.raises(EmoloomError, match="--resume"):
        train(cfg_for(data, tmp_path))


def test_a_token_budget_finishes_the_step_checkpoints_and_says_so(data, tmp_path):
    result = train(cfg_for(data, tmp_path, "budget.max_train_tokens=1"))
    assert (result.status, result.step, result.stopped_by) == (
        "budget_exhausted",
        1,
        "max_train_tokens",
    )
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "budget_exhausted" and manifest["budget_used"]["steps"] == 1
    assert latest_checkpoint(result.run_dir).name == "step-000001"


def test_components_switch_their_loss_terms(data, tmp_path):
    on = train(cfg_for(data, tmp_path / "on", "budget.max_steps=2", "components.appraisal=true"))
    off = train(cfg_for(data, tmp_path / "off", "budget.max_steps=2", "components.vad_loss=false", "components.valence_flip=false", "components.mixture.enabled=false"))  # fmt: skip
    row_on = json.loads((on.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    row_off = json.loads((off.run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss_vad", "loss_appraisal"} <= set(row_on)
    assert "loss_vad" not in row_off and "loss_appraisal" not in row_off
    assert row_off["b_share"] == 0.0 and row_off["temperature"] == 1.0
    pools = json.loads((off.run_dir / "manifest.json").read_text())["pool_sizes"]
    assert pools["b"] == 0


def test_lora_checkpoints_hold_only_the_adapter(data, tmp_path):
    result = train(
        cfg_for(
            data,
            tmp_path,
            "model.name=tiny-llama",
            "model.finetune=lora",
            "model.lora.r=4",
            "budget.max_steps=2",
        )
    )
    weights = load_file(latest_checkpoint(result.run_dir) / "model.safetensors")
    assert weights and all("lora_" in name for name in weights)


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_identical_weights(data, tmp_path):
    straight = train(cfg_for(data, tmp_path / "straight"))
    out = tmp_path / "killed"
    argv = [*EMOLOOM, "train", str(DEBUG), *overrides(data, out)]
    cwd = ROOT
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = out / "tiny" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill mid-run: after step 4 is logged, before the end
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 4:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest_checkpoint(out / "tiny") is not None
    done = subprocess.run([*argv, "--resume"], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert weights_hash(straight.run_dir) == weights_hash(out / "tiny")
    assert losses(straight.run_dir) == losses(out / "tiny")


@pytest.mark.slow
def test_two_processes_follow_the_single_process_loss_trajectory(data, tmp_path):
    single = train(cfg_for(data, tmp_path / "one", "budget.max_steps=4"))
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    # accelerate 1.15 starts a single process for `--cpu --num_processes 2` (multi-CPU needs
    # mpirun there); `--multi_gpu` goes through torchrun, and on a CPU machine emoloom's
    # Accelerator(cpu=True) then runs DistributedType.MULTI_CPU over gloo.
    argv = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "emoloom.cli", "train", str(DEBUG), *overrides(data, tmp_path / "two", "budget.max_steps=4")]  # fmt: skip
    cwd = ROOT
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "two" / "tiny" / "manifest.json").read_text())
    assert manifest["num_processes"] == 2
    one = [row[1] for row in losses(single.run_dir)]
    two = [row[1] for row in losses(tmp_path / "two" / "tiny")]
    assert len(one) == len(two) == 4
    assert two == pytest.approx(one, rel=0.05)
