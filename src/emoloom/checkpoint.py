"""Self-describing checkpoints with an atomic commit point.

    runs/<run>/checkpoints/step-000100/model.safetensors   trainable weights (all, or the adapter)
                                      optimizer.pt         optimizer state
                                      state.json           step, scheduler, sampler, RNG, loop state
    runs/<run>/checkpoints/latest                          "step-000100", written last

A checkpoint is written into a hidden temporary directory, fsynced, renamed into place, and
only then named by `latest` (itself replaced atomically). A process killed at any moment
leaves `latest` pointing at a complete checkpoint; leftovers are removed by the next save.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from emoloom.atomic import atomic_write
from emoloom.errors import EmoloomError
from emoloom.faults import fault_point

LATEST = "latest"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_step(
    tmp: Path,
    final: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    state: dict[str, Any],
) -> None:
    tmp.mkdir()
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / "model.safetensors"
    )
    fault_point("checkpoint.after_weights")
    torch.save(optimizer_state, tmp / "optimizer.pt")
    with (tmp / "state.json").open("w", encoding="utf-8") as f:
        json.dump({"step": step, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    for file in ("model.safetensors", "optimizer.pt"):
        with (tmp / file).open("rb") as f:
            os.fsync(f.fileno())
    if final.exists():  # re-saving the same step after a resume
        shutil.rmtree(final)
    os.replace(tmp, final)


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    weights: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    state: dict[str, Any],
    keep: int,
) -> Path:
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".step-*.tmp"):  # a save that was killed half-way
        shutil.rmtree(stale, ignore_errors=True)
    name = f"step-{step:06d}"
    tmp = root / f".{name}.tmp"
    final = root / name
    try:
        _write_step(tmp, final, step, weights, optimizer_state, state)
    except (OSError, RuntimeError, SafetensorError) as err:
        # A full disk surfaces as OSError without a file name, or (torch.save, safetensors) not
        # as an OSError at all: name the checkpoint, drop the half-written dir, and leave
        # `latest` on the previous complete checkpoint.
        shutil.rmtree(tmp, ignore_errors=True)
        code = getattr(err, "errno", None) or errno.EIO
        detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise OSError(code, f"cannot write checkpoint {final}: {detail}") from err
    _fsync_dir(root)
    fault_point("checkpoint.before_latest")
    with atomic_write(root / LATEST) as f:  # the commit point
        f.write(name + "\n")
    _prune(root, keep, current=name)
    return final


def _prune(root: Path, keep: int, current: str) -> None:
    """Keep the `keep` newest committed checkpoints up to `current` (the new `latest`).

    A step dir after `current` was never committed (a run killed between its rename and the
    `latest` write, then resumed and stopped by a budget at an earlier step): it is removed
    rather than counted, so it can neither shadow nor crowd out a committed checkpoint."""
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for stale in (p for p in steps if p.name > current):
        shutil.rmtree(stale, ignore_errors=True)
    done = [p for p in steps if p.name <= current]
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in root.glob(f".{LATEST}.*.tmp"):  # an atomic write of `latest` killed half-way
        tmp.unlink(missing_ok=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = checkpoint_dir(run_dir) / LATEST
    if not pointer.exists():
        return None
    path = checkpoint_dir(run_dir) / pointer.read_text(encoding="utf-8").strip()
    if not (path / "state.json").is_file():
        raise EmoloomError(f"{pointer} names {path.name}, which is incomplete or missing")
    return path


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    weights = load_file(path / "model.safetensors")
    optimizer_state = torch.load(path / "optimizer.pt", weights_only=False)
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    return weights, optimizer_state, state
