"""Per-label decision thresholds for the label choice, fitted on a dev split.

    cal = load_or_fit(cfg, backbone, "goemotions", cache_dir=out / "calibration", rows=6000)
    # -> out/calibration/goemotions-dev-random.json
    decoder = make_decoder(cfg, backbone, ["goemotions"], DecodeConfig(labels="calibrated"),
                           thresholds={"goemotions": cal.thresholds})

Greedy decoding takes the most likely first label token, and a small model rarely makes a rare
label the most likely one: on the default run, grief, relief and nervousness were never
predicted (test F1 0). Macro-F1 weighs those labels like the frequent ones, so published
GoEmotions baselines tune one decision threshold per label on dev (mission.md, anchors.md).
`decode.labels: calibrated` does the same inside constrained decoding: at the first label
decision the decoder reads p(c), the model's distribution over the label set's first tokens
(`scoring.label_probs`: the same position and logits), picks the label set with `decide`, and
then writes those labels; VAD and rationale are decoded as usual, conditioned on them.

Rule (`decide`): a multi-label set takes every label with p(c) ≥ t(c), or, when none passes,
the label with the largest p(c) / t(c); a single-label set takes the largest p(c) / t(c). With
every t(c) = 1 both are the top-1 label, which is where the fit starts.

Fit (`fit`): coordinate ascent on the Macro-F1 the evaluation reports for that corpus (after
the protocol's label mapping: DailyDialog is scored in its 7 classes through the GoEmotions
prompt), one label at a time over a geometric grid of thresholds, two passes. scikit-learn
has per-label threshold search for independent binary problems (`TunedThresholdClassifierCV`)
but not for one Macro-F1 over a many-to-one label mapping, hence this small loop. The test split
is never read. The dev rows are drawn the way the evaluation draws its rows, because the
thresholds depend on the label frequencies they see: a seeded random sample (natural
frequencies) for a full evaluation, the label-stratified order (`evaluate.stratified_order`,
rare classes over-represented) for a time-bounded one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from emoloom.atomic import atomic_write
from emoloom.config import TrainConfig
from emoloom.errors import EmoloomError
from emoloom.labels import LABEL_SETS, map_labels, neutral_class
from emoloom.modeling import Backbone
from emoloom.scoring import label_probs

FORMAT_VERSION = 2  # part of the cache key: a changed fit makes old files stale
GRID = tuple(float(x) for x in np.geomspace(0.01, 1.0, 31))
PASSES = 2


@dataclass(frozen=True)
class Calibration:
    label_set: str  # the prompt's label set: thresholds are in its order
    thresholds: tuple[float, ...]
    corpus: str  # fitted on this corpus's split, scored in its target label set
    split: str
    target: str
    rows: int
    sample: str  # "random" (natural label frequencies) or "stratified" (as time-bounded evals)
    dev_macro_f1_top1: float  # the rule with every threshold at 1 (top-1 label)
    dev_macro_f1: float  # after the fit
    seconds: float
    key: str
    context_turns: int | None = None  # prior turns the dev prompts showed (None: older files)

    def summary(self) -> dict[str, Any]:
        labels = LABEL_SETS[self.label_set].labels
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("thresholds", "key")},
            "thresholds": dict(zip(labels, self.thresholds, strict=True)),
        }


def decide(probs: np.ndarray, thresholds: Sequence[float], multi_label: bool) -> np.ndarray:
    """(n, C) label probabilities -> (n, C) booleans: the labels each row takes."""
    probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    t = np.asarray(thresholds, dtype=np.float64)
    top = np.zeros(probs.shape, dtype=bool)
    top[np.arange(len(probs)), np.argmax(probs / t, axis=1)] = True
    if not multi_label:
        return top
    over = probs >= t
    return np.where(over.any(axis=1, keepdims=True), over, top)


def target_matrix(prompt: str, target: str) -> np.ndarray:
    """(C_prompt, C_target) booleans: prompt label i maps to target label j (`map_labels`)."""
    source, dest = LABEL_SETS[prompt].labels, LABEL_SETS[target].labels
    out = np.zeros((len(source), len(dest)), dtype=bool)
    if prompt == target:
        np.fill_diagonal(out, True)
        return out
    for i, lab in enumerate(source):
        for mapped in map_labels([lab], prompt, target):
            out[i, dest.index(mapped)] = True
    return out


def _neutral(target: str) -> int | None:
    name = neutral_class(target)
    return LABEL_SETS[target].labels.index(name) if name else None


def macro_f1(
    chosen: np.ndarray, gold: np.ndarray, to_target: np.ndarray, neutral: int | None
) -> float:
    """Macro-F1 over the target labels of prompt-space choices, mapped as the evaluation maps
    them (a row whose labels all drop out gets the target's neutral class)."""
    pred = (chosen.astype(np.int32) @ to_target.astype(np.int32)) > 0
    if neutral is not None:
        pred[~pred.any(axis=1), neutral] = True
    return float(f1_score(gold, pred, average="macro", zero_division=0))


def fit(
    probs: np.ndarray,
    gold: np.ndarray,
    to_target: np.ndarray,
    multi_label: bool,
    neutral: int | None = None,
) -> tuple[np.ndarray, float, float]:
    """Thresholds maximising dev Macro-F1 by coordinate ascent; (thresholds, before, after).

    Multi-label sets start from each label's own best threshold as a binary decision (gold:
    the row's gold holds a label it maps to); from all-ones, the ascent stalls where the
    top-1 fallback decides every row."""
    ones = np.ones(probs.shape[1])
    before = macro_f1(decide(probs, ones, multi_label), gold, to_target, neutral)
    t = _independent(probs, gold, to_target) if multi_label else ones
    best = macro_f1(decide(probs, t, multi_label), gold, to_target, neutral)
    if best < before:
        t, best = ones, before
    for _ in range(PASSES):
        improved = False
        for c in range(len(t)):
            keep = t[c]
            for x in GRID:
                t[c] = x
                score = macro_f1(decide(probs, t, multi_label), gold, to_target, neutral)
                if score > best + 1e-12:
                    best, keep, improved = score, x, True
            t[c] = keep
        if not improved:
            break
    return t, before, best


def _independent(probs: np.ndarray, gold: np.ndarray, to_target: np.ndarray) -> np.ndarray:
    """Per label, the grid threshold with the best binary F1 of p(c) >= t."""
    hit = (gold.astype(np.int32) @ to_target.T.astype(np.int32)) > 0  # (n, C_prompt)
    out = np.ones(probs.shape[1])
    for c in range(probs.shape[1]):
        scores = [f1_score(hit[:, c], probs[:, c] >= x, zero_division=0) for x in GRID]
        out[c] = GRID[int(np.argmax(scores))]
    return out


def _cache_key(*parts: Any) -> str:
    blob = json.dumps([FORMAT_VERSION, *parts, GRID])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_or_fit(
    cfg: TrainConfig,
    backbone: Backbone,
    corpus: str,
    *,
    cache_dir: Path,
    rows: int,
    split: str = "dev",
    seed: int = 0,
    stratified: bool = False,
    context_turns: int | None = None,
) -> Calibration:
    """The calibration of this model for `corpus`, fitted on up to `rows` rows of `split` (a
    seeded random sample, or the first rows of the label-stratified order) and cached in
    `cache_dir` (one directory per model: the key does not hash the weights). The dev prompts
    show the prior turns the evaluation's prompts show (`evaluate.protocol_turns`)."""
    # imported here: decoding (via inference) and evaluate import this module
    from emoloom.decoding import DecodeConfig
    from emoloom.evaluate import PROTOCOLS, protocol_turns, read_split, stratified_order, with_turns
    from emoloom.inference import make_decoder

    protocol = PROTOCOLS[corpus]
    if protocol.target is None:
        raise EmoloomError(f"{corpus} has no gold labels: nothing to calibrate labels on")
    sampling = "stratified" if stratified else "random"
    turns = protocol_turns(cfg, corpus, context_turns)
    key = _cache_key(corpus, split, protocol.prompt, protocol.target, rows, seed, sampling, turns)
    path = cache_dir / f"{corpus}-{split}-{sampling}.json"
    if path.is_file():
        try:
            cached = load(path)
        except EmoloomError:  # a torn or stale file is refitted, not trusted
            cached = None
        if cached is not None and cached.key == key:
            return cached
    started = time.perf_counter()
    records = read_split(cfg, corpus, split).records
    if not records:
        raise EmoloomError(f"{corpus} {split}: no rows to calibrate on")
    if stratified:
        order = stratified_order(records, seed)[:rows]
    else:
        order = sorted(np.random.default_rng(seed).permutation(len(records))[:rows])
    sample = [records[i] for i in order]
    decoder = make_decoder(with_turns(cfg, turns), backbone, [protocol.prompt], DecodeConfig())
    probs = np.stack(
        label_probs(
            backbone.lm,
            [(r, protocol.prompt) for r in sample],
            decoder.encoders,
            backbone.tokenizer.pad_token_id,
        )
    ).astype(np.float64)
    targets = LABEL_SETS[protocol.target].labels
    gold = np.array([[lab in r.labels for lab in targets] for r in sample], dtype=bool)
    prompt_set = LABEL_SETS[protocol.prompt]
    thresholds, before, after = fit(
        probs,
        gold,
        target_matrix(protocol.prompt, protocol.target),
        prompt_set.multi_label,
        _neutral(protocol.target),
    )
    cal = Calibration(
        label_set=protocol.prompt,
        thresholds=tuple(round(float(x), 6) for x in thresholds),
        corpus=corpus,
        split=split,
        target=protocol.target,
        rows=len(sample),
        sample=sampling,
        dev_macro_f1_top1=round(before, 6),
        dev_macro_f1=round(after, 6),
        seconds=round(time.perf_counter() - started, 2),
        key=key,
        context_turns=turns,
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        json.dump(asdict(cal), f, indent=2)
        f.write("\n")
    return cal


def load(path: str | Path) -> Calibration:
    """A calibration file written by `load_or_fit` (for `emoloom predict --calibration`)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["thresholds"] = tuple(float(x) for x in data["thresholds"])
        cal = Calibration(**data)
        expected = len(LABEL_SETS[cal.label_set].labels)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise EmoloomError(f"{path}: not a calibration file ({err!r})") from None
    if len(cal.thresholds) != expected or not all(0 < x <= 1 for x in cal.thresholds):
        raise EmoloomError(
            f"{path}: thresholds: need {expected} values in (0, 1] for {cal.label_set}"
        )
    return cal
