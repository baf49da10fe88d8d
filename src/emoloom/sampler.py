"""A/B mixture sampling with entropy-aware temperature cooling (mission.md, "A/B mixture ...").

Pool A holds the original training rows, pool B the Valence-Flip rows. Each draw comes from B with
probability r (the B fraction) and from A otherwise. Within A a class c is drawn with

    p(c) = n_c^(1/T) / Σ_k n_k^(1/T)        (n_c = number of A rows carrying label c)

and then a row uniformly among the A rows carrying c. T > 1 flattens the class distribution so
rare emotions are seen early (coverage); T = 1 gives back the natural distribution (convergence):
for single-label rows each row is then drawn with probability 1/|A|.

Every `probe_every` steps the trainer measures H, the mean normalised entropy of the model's label
distribution on a fixed probe set of `probe_size` rows, and calls `update(H, step)`:

    T = 1 + (t0 − 1)·min(1, H/h0)        r = r0·min(1, H/h0)

where h0 is the configured reference entropy or, when None, the first H measured. As the model
grows confident (H falls) the sampler cools toward the natural distribution and stops mixing in
flipped rows.

Usage::

    sampler = ABMixtureSampler(labels_a, len(pool_b), num_classes, MixtureConfig(), seed=data_seed)
    for step in range(num_steps):
        batch = [pool_a[i] if src == "A" else pool_b[i] for src, i in sampler.sample(batch_size)]
        if step % sampler.config.probe_every == 0 and sampler.update(probe_entropy(), step):
            log(sampler.history[-1])
    checkpoint["sampler"] = sampler.state_dict()  # JSON; load_state_dict resumes the exact draws

All randomness comes from one `numpy.random.Generator(PCG64(seed))` owned by the sampler.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emoloom.errors import EmoloomError

STATE_VERSION = 1

# Normalised entropy is computed in floating point by the trainer; values a hair outside [0, 1]
# are rounding, anything further out is a bug upstream.
_ENTROPY_SLACK = 1e-6


@dataclass(frozen=True)
class MixtureConfig:
    """How the A/B mixture samples and cools. `enabled=False` is the uniform-over-A ablation."""

    enabled: bool = True
    t0: float = 2.0
    r0: float = 0.25
    h0: float | None = None
    cooling: bool = True
    probe_every: int = 50
    probe_size: int = 64

    def __post_init__(self) -> None:
        if not (math.isfinite(self.t0) and self.t0 >= 1.0):
            raise EmoloomError(f"mixture.t0={self.t0} must be a finite number >= 1")
        if not 0.0 <= self.r0 <= 1.0:
            raise EmoloomError(f"mixture.r0={self.r0} must be in [0, 1]")
        if self.h0 is not None and not 0.0 <= self.h0 <= 1.0:
            raise EmoloomError(
                f"mixture.h0={self.h0} must be null (use the first probe) or in [0, 1]"
            )
        if self.probe_every < 1:
            raise EmoloomError(f"mixture.probe_every={self.probe_every} must be >= 1")
        if self.probe_size < 1:
            raise EmoloomError(f"mixture.probe_size={self.probe_size} must be >= 1")


class ABMixtureSampler:
    """Draws ("A", row) / ("B", row) pairs; cools T and r as the probe entropy falls.

    Rows of pool A with no label belong to no class, so the class-temperature path never reaches
    them; they are drawn only by the uniform path, i.e. when `config.enabled` is False or when no
    row of A has a label at all (then class sampling is undefined and A is sampled uniformly).
    They stay in the pool rather than being dropped so that the ablation sees exactly pool A.
    """

    def __init__(
        self,
        pool_a_labels: Sequence[Sequence[int]],
        pool_b_size: int,
        num_classes: int,
        config: MixtureConfig,
        seed: int,
    ) -> None:
        if len(pool_a_labels) == 0:
            raise EmoloomError("sampler: pool A is empty; there is nothing to train on")
        if pool_b_size < 0:
            raise EmoloomError(f"sampler: pool_b_size={pool_b_size} must be >= 0")
        if num_classes < 1:
            raise EmoloomError(f"sampler: num_classes={num_classes} must be >= 1")
        self.config = config
        self.num_rows_a = len(pool_a_labels)
        self.pool_b_size = pool_b_size
        self.num_classes = num_classes
        self._rng = np.random.Generator(np.random.PCG64(seed))

        # Class -> member rows as one CSR array: members[offsets[c] : offsets[c] + counts[c]].
        # A row listing a class twice counts once, so n_c is "rows containing c".
        row_labels = [sorted(set(labels)) for labels in pool_a_labels]
        lengths = np.fromiter((len(labels) for labels in row_labels), dtype=np.int64)
        flat = np.fromiter(
            (c for labels in row_labels for c in labels), dtype=np.int64, count=int(lengths.sum())
        )
        if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
            bad = int(flat[(flat < 0) | (flat >= num_classes)][0])
            raise EmoloomError(f"sampler: class index {bad} outside [0, {num_classes})")
        rows = np.repeat(np.arange(self.num_rows_a, dtype=np.int64), lengths)
        order = np.argsort(flat, kind="stable")
        self._members = rows[order]
        self._counts = np.bincount(flat, minlength=num_classes)
        self._offsets = np.concatenate(([0], np.cumsum(self._counts)[:-1]))
        self._present = np.flatnonzero(self._counts > 0)

        if config.enabled:
            self._t, self._r = float(config.t0), float(config.r0)
        else:
            # The ablation: natural distribution, no flipped rows, whatever the probe says.
            self._t, self._r = 1.0, 0.0
        self._h0: float | None = config.h0
        self.history: list[dict[str, Any]] = []
        self._refresh_cdf()

    @property
    def temperature(self) -> float:
        return self._t

    @property
    def b_fraction(self) -> float:
        """The probability that a draw comes from pool B (0 when pool B is empty)."""
        return self._r if self.pool_b_size > 0 else 0.0

    @property
    def h0(self) -> float | None:
        return self._h0

    def class_probs(self) -> np.ndarray:
        """p(c) ∝ n_c^(1/T) over A's classes; all zeros when no row of A carries a label."""
        probs = np.zeros(self.num_classes, dtype=np.float64)
        if self._present.size:
            weights = self._counts[self._present].astype(np.float64) ** (1.0 / self._t)
            probs[self._present] = weights / weights.sum()
        return probs

    def _refresh_cdf(self) -> None:
        # Only classes with n_c > 0 enter the CDF, so an empty class can never be drawn, even
        # through floating-point ties at the CDF's edges.
        if self._present.size:
            cdf = np.cumsum(self.class_probs()[self._present])
            cdf[-1] = 1.0
            self._cdf = cdf
        else:
            self._cdf = np.empty(0, dtype=np.float64)

    def sample(self, n: int) -> list[tuple[str, int]]:
        """n draws of ("A", row) or ("B", row), in draw order."""
        if n < 0:
            raise ValueError(f"sample(n={n}): n must be >= 0")
        from_b = self._rng.random(n) < self.b_fraction
        index = np.empty(n, dtype=np.int64)
        n_b = int(from_b.sum())
        if n_b:
            index[from_b] = self._rng.integers(0, self.pool_b_size, size=n_b)
        n_a = n - n_b
        if n_a:
            index[~from_b] = self._sample_a(n_a)
        return [
            ("B" if b else "A", i) for b, i in zip(from_b.tolist(), index.tolist(), strict=True)
        ]

    def _sample_a(self, n: int) -> np.ndarray:
        if not self.config.enabled or self._present.size == 0:
            return self._rng.integers(0, self.num_rows_a, size=n)
        # side="right" maps u in [cdf[k-1], cdf[k]) to class k; u < 1 = cdf[-1] stays in range.
        k = np.searchsorted(self._cdf, self._rng.random(n), side="right")
        classes = self._present[k]
        within = self._rng.integers(0, self._counts[classes])  # one bound per draw, vectorised
        return self._members[self._offsets[classes] + within]

    def update(self, entropy: float, step: int) -> bool:
        """Record a probe entropy H in [0, 1]; cool T and r. True when either changed."""
        if not (math.isfinite(entropy) and -_ENTROPY_SLACK <= entropy <= 1.0 + _ENTROPY_SLACK):
            raise ValueError(f"update(entropy={entropy}): normalised entropy must be in [0, 1]")
        entropy = min(1.0, max(0.0, float(entropy)))
        if self._h0 is None:
            self._h0 = entropy
        changed = False
        if self.config.enabled and self.config.cooling:
            ratio = self._cooling_ratio(entropy, self._h0)
            new_t = 1.0 + (self.config.t0 - 1.0) * ratio
            new_r = self.config.r0 * ratio
            changed = new_t != self._t or new_r != self._r
            self._t, self._r = new_t, new_r
            if changed:
                self._refresh_cdf()
        self.history.append(
            {
                "step": int(step),
                "entropy": entropy,
                "temperature": self._t,
                "b_fraction": self.b_fraction,
            }
        )
        return changed

    @staticmethod
    def _cooling_ratio(entropy: float, h0: float) -> float:
        if h0 > 0.0:
            return min(1.0, entropy / h0)
        # A reference of 0 means the model was already certain when measured: stay fully cooled
        # while it remains certain, and treat any entropy above it as "at or above reference"
        # (the limit of min(1, H/h0) as h0 -> 0).
        return 1.0 if entropy > 0.0 else 0.0

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the exact draw sequence, as plain JSON values."""
        return {
            "version": STATE_VERSION,
            "num_rows_a": self.num_rows_a,
            "pool_b_size": self.pool_b_size,
            "num_classes": self.num_classes,
            "rng": copy.deepcopy(self._rng.bit_generator.state),
            "temperature": self._t,
            "b_fraction": self._r,
            "h0": self._h0,
            "history": copy.deepcopy(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise EmoloomError(
                f"sampler state version {state.get('version')!r} != {STATE_VERSION}; "
                "this checkpoint was written by an incompatible emoloom"
            )
        # Row indices are only meaningful for the same pools: refuse to resume on other data.
        for key in ("num_rows_a", "pool_b_size", "num_classes"):
            if state[key] != getattr(self, key):
                raise EmoloomError(
                    f"sampler state has {key}={state[key]} but this run has "
                    f"{getattr(self, key)}; the data changed since the checkpoint"
                )
        self._rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._t = float(state["temperature"])
        self._r = float(state["b_fraction"])
        self._h0 = None if state["h0"] is None else float(state["h0"])
        self.history = copy.deepcopy(state["history"])
        self._refresh_cdf()
