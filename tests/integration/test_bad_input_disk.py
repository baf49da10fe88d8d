"""No disk space for a checkpoint (simulated; issue 7): `emoloom train` stops with one error
line naming the path, and the previous checkpoint stays the run's `latest`, untouched and
loadable. Trains a tiny random Qwen2 for a few steps (the rest of the bad-input table is in
tests/unit/test_bad_input.py)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from safetensors import SafetensorError

import emoloom.checkpoint
from emoloom.checkpoint import latest_checkpoint, load_checkpoint
from emoloom.cli import main
from emoloom.modeling import load_trained

DEBUG = Path(__file__).resolve().parents[2] / "configs" / "debug.yaml"
ROWS = [
    ("I am so happy and glad today", ["joy"], {"v": 0.9, "a": 0.7, "d": 0.7}),
    ("I feel sad and lonely", ["sadness"], {"v": 0.15, "a": 0.3, "d": 0.2}),
    ("I hate this, it makes me angry", ["anger"], {"v": 0.1, "a": 0.85, "d": 0.6}),
    ("The meeting is at noon", ["neutral"], {"v": 0.5, "a": 0.2, "d": 0.4}),
]


def _jsonl(path: Path, copies: int) -> Path:
    rows = [
        {"id": f"r{k}-{i}", "text": f"{text} ({k})", "labels": labels, "vad": vad}
        for k in range(copies)
        for i, (text, labels, vad) in enumerate(ROWS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# What a full disk looks like while save_checkpoint writes model.safetensors: an OSError as
# write(2) reports it (errno, no file name), and what safetensors itself raises on a full
# filesystem (checked on a 64 kB tmpfs: not an OSError at all).
DISK_FULL = {
    "oserror": lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
    "safetensors": lambda: SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)"
    ),
}


@pytest.mark.parametrize("raised", list(DISK_FULL))
def test_no_space_for_a_checkpoint_is_one_line_and_keeps_the_previous_one(
    raised, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    train, dev = _jsonl(tmp_path / "train.jsonl", 2), _jsonl(tmp_path / "dev.jsonl", 1)
    argv = [
        "train", str(DEBUG), f"output_dir={tmp_path / 'runs'}", "run_name=tiny",
        "model.name=tiny-qwen2",
        f"data.train=[{{corpus: jsonl, path: {train}, label_set: goemotions}}]",
        f"data.dev=[{{corpus: jsonl, path: {dev}, label_set: goemotions}}]",
        "components.appraisal=false", "components.mixture.probe_every=2",
        "components.mixture.probe_size=4", "optim.batch_size=4", "optim.warmup_steps=1",
        "budget.max_steps=2", "budget.max_wall_seconds=null", "log_every=1",
        "checkpoint_every=1", "dev_max_examples=4", "prompt.max_length=320",
    ]  # fmt: skip
    checkpoints = tmp_path / "runs" / "tiny" / "checkpoints"
    real_save_file = emoloom.checkpoint.save_file
    seen: dict[str, bytes] = {}

    def disk_full_on_the_second_save(tensors, filename, *args, **kwargs):
        if (checkpoints / "latest").exists():  # step 1 is committed; step 2 finds the disk full
            seen["latest"] = (checkpoints / "latest").read_bytes()
            seen["weights"] = (checkpoints / "step-000001" / "model.safetensors").read_bytes()
            raise DISK_FULL[raised]()
        return real_save_file(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(emoloom.checkpoint, "save_file", disk_full_on_the_second_save)
    escaped = None
    try:
        code = main(argv)
    except Exception as exc:  # escaped the CLI: the user would see a traceback
        escaped, code = exc, None
    err = capsys.readouterr().err
    assert seen, "the second checkpoint was never attempted"

    # (b) the previous checkpoint is still `latest`, byte for byte, and loads
    assert (checkpoints / "latest").read_bytes() == seen["latest"] == b"step-000001\n"
    run_dir = checkpoints.parent
    latest = latest_checkpoint(run_dir)
    assert latest == checkpoints / "step-000001"
    assert (latest / "model.safetensors").read_bytes() == seen["weights"]
    weights, optimizer_state, state = load_checkpoint(latest)
    assert state["step"] == 1 and weights and optimizer_state["state"]
    cfg, _ = load_trained(run_dir)  # what `emoloom predict --run` / `eval --run` load
    assert cfg.model.name == "tiny-qwen2"

    # (a) a non-zero exit and one error line naming the path that could not be written
    assert escaped is None, f"{type(escaped).__name__} escaped emoloom.cli.main: {escaped}"
    assert code != 0 and "Traceback" not in err
    assert "No space left on device" in err, err
    assert str(checkpoints) in err, f"the error does not name the path: {err!r}"
    # The progress bar shares stderr ("\r" redraws); the error must be a line of its own.
    visible = [line.rsplit("\r", 1)[-1] for line in err.split("\n") if line.strip()]
    errors = [line for line in visible if "emoloom: error:" in line]
    assert len(errors) == 1 and errors[0].startswith("emoloom: error: "), visible
    assert all(line in errors or line.startswith("tiny: ") for line in visible), visible
