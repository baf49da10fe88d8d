"""Checkpoints commit atomically through `latest`; seeds are named and RNG state round-trips."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from emoloom.checkpoint import checkpoint_dir, latest_checkpoint, load_checkpoint, save_checkpoint
from emoloom.errors import EmoloomError
from emoloom.seed import derive_seed, derive_seeds, rng_state, set_rng_state


def _save(run_dir, step, keep=2):
    return save_checkpoint(
        run_dir,
        step,
        weights={"w": torch.full((2, 2), float(step))},
        optimizer_state={"state": {}, "param_groups": [{"lr": 0.1 * step}]},
        state={"loop": {"step_seen": step}},
        keep=keep,
    )


def test_saved_checkpoint_loads_back_and_becomes_latest(tmp_path):
    path = _save(tmp_path, 10)
    assert latest_checkpoint(tmp_path) == path
    weights, optimizer, state = load_checkpoint(path)
    assert torch.equal(weights["w"], torch.full((2, 2), 10.0))
    assert optimizer["param_groups"][0]["lr"] == pytest.approx(1.0)
    assert state == {"step": 10, "loop": {"step_seen": 10}}


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    for step in (1, 2, 3, 4):
        _save(tmp_path, step, keep=2)
    kept = sorted(p.name for p in checkpoint_dir(tmp_path).glob("step-*"))
    assert kept == ["step-000003", "step-000004"]
    assert latest_checkpoint(tmp_path).name == "step-000004"


def test_an_uncommitted_later_step_is_removed_not_counted_as_kept(tmp_path):
    """Killed between renaming step 6 into place and writing `latest`, resumed from step 4,
    then stopped by a budget at step 5: step 6 was never committed and must not crowd out
    step 4 from the two kept checkpoints."""
    for step in (2, 4, 6):
        _save(tmp_path, step, keep=2)
    (checkpoint_dir(tmp_path) / "latest").write_text("step-000004\n")  # 6 never committed
    (checkpoint_dir(tmp_path) / ".latest.abc.tmp").write_text("step-0000")  # a torn write
    _save(tmp_path, 5, keep=2)
    names = sorted(p.name for p in checkpoint_dir(tmp_path).iterdir())
    assert names == ["latest", "step-000004", "step-000005"]


def test_a_checkpoint_killed_mid_write_never_becomes_latest(tmp_path, monkeypatch):
    _save(tmp_path, 5)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing the optimizer state")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 6)
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path).name == "step-000005"
    assert list(checkpoint_dir(tmp_path).glob(".step-000006.tmp"))  # left for the next save
    _save(tmp_path, 7)
    assert not list(checkpoint_dir(tmp_path).glob(".step-*.tmp"))
    assert latest_checkpoint(tmp_path).name == "step-000007"


def test_a_latest_pointer_to_a_missing_checkpoint_is_an_error(tmp_path):
    _save(tmp_path, 1)
    (checkpoint_dir(tmp_path) / "latest").write_text("step-000099\n")
    with pytest.raises(EmoloomError, match="incomplete or missing"):
        latest_checkpoint(tmp_path)


def test_no_checkpoint_means_no_latest(tmp_path):
    assert latest_checkpoint(tmp_path) is None


def test_named_seeds_are_stable_distinct_and_31_bit():
    seeds = derive_seeds(0)
    assert seeds == derive_seeds(0) and seeds != derive_seeds(1)
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= s < 2**31 for s in seeds.values())
    assert derive_seed(0, "sampler") == seeds["sampler"]


def test_rng_state_round_trips_through_json():
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    saved = json.loads(json.dumps(rng_state()))
    first = (torch.rand(3), random.random(), np.random.rand())
    set_rng_state(saved)
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(first[0], again[0]) and first[1:] == again[1:]
