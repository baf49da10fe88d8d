"""Named sub-seeds derived from one master seed, and RNG state capture for exact resume.

Components receive their own seed (`derive_seeds(cfg.seed)["sampler"]`, ...) and own their
generator; only torch's global RNG (dropout, new weights) is shared, so its state is saved in
every checkpoint and restored on resume.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch

SEED_NAMES = ("data", "sampler", "model", "appraisal", "torch")


def derive_seed(master: int, name: str) -> int:
    """A 31-bit seed for component `name`, stable across Python versions and platforms."""
    digest = hashlib.sha256(f"{master}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def derive_seeds(master: int) -> dict[str, int]:
    return {name: derive_seed(master, name) for name in SEED_NAMES}


def rng_state() -> dict[str, Any]:
    """Global RNG states as JSON-friendly values (torch state as a list of bytes)."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state().tolist(),
        "python": _python_state(random.getstate()),
        "numpy": _numpy_state(np.random.get_state()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _python_state(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _numpy_state(state: tuple) -> list:
    name, keys, pos, has_gauss, cached = state
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def seed_everything(seed: int) -> None:
    """Seed the global RNGs (torch dropout and initialisation; libraries that use the others)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
