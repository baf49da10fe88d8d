"""Pure metric functions: emotion classification, VAD regression, ParseOK, bootstrap CIs.

No model code lives here; `evaluate.py` turns a model × split into prediction rows and calls
`evaluate_rows`. The maths comes from scikit-learn, scipy and numpy, except Lin's CCC (no
library in our stack ships it) and the percentile bootstrap (a few lines over index draws).

Conventions (see docs/anchors.md):

- Classification is scored as multi-label: each row's gold and predicted label *sets* are
  binarized over a fixed, ordered `labels` list. Macro averages run over every listed label
  column, including labels absent from the split (they score 0 with ``zero_division=0``), so
  numbers stay comparable across subsets and bootstrap resamples. GoEmotions: 28 labels
  including neutral. Single-label corpora use the same code; there accuracy = exact match.
- ``exclude`` (DailyDialog: ``["no emotion"]``) removes label *columns* from the macro and
  micro averages; rows are unchanged, so an excluded-class row still contributes false
  positives to the other columns. This matches the DailyDialog literature's "micro/macro-F1
  without neutral". Exact match and per-label scores always use every column.
- VAD score = 1 − RMSE pooled over all n×3 values in [0, 1] (not the mean of the three
  per-dimension RMSEs); Pearson r and Lin's CCC are reported per dimension.
- Two views of a run (`evaluate_rows`): **strict** scores every row, a failed parse predicting
  no labels and VAD (0.5, 0.5, 0.5); **paper** scores only ParseOK rows, as the paper's
  numbers sit next to a separate ParseOK rate.
- Confidence intervals are percentile bootstrap over examples (rows), seeded, and computed
  from the same index draws for every headline metric of a view.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    root_mean_squared_error,
)
from sklearn.preprocessing import MultiLabelBinarizer

from emoloom.errors import EmoloomError
from emoloom.labels import LabelSet


@dataclass(frozen=True)
class MetricInfo:
    name: str
    description: str
    higher_is_better: bool


METRICS: Mapping[str, MetricInfo] = MappingProxyType(
    {
        m.name: m
        for m in (
            MetricInfo("macro_f1", "unweighted mean of per-label F1", True),
            MetricInfo("macro_recall", "unweighted mean of per-label recall", True),
            MetricInfo("macro_precision", "unweighted mean of per-label precision", True),
            MetricInfo("micro_f1", "F1 of TP/FP/FN pooled over label columns", True),
            MetricInfo("exact_match", "share of rows whose predicted set equals gold", True),
            MetricInfo("accuracy", "= exact_match (single-label: top-1 accuracy)", True),
            MetricInfo("vad_score", "1 - RMSE pooled over v, a, d in [0, 1]", True),
            MetricInfo("vad_rmse", "RMSE pooled over v, a, d in [0, 1]", False),
            MetricInfo("parse_ok", "share of generations the contract parser accepted", True),
        )
    }
)
# Headline metrics get bootstrap CIs in `evaluate_rows`.
CI_METRICS: tuple[str, ...] = ("macro_f1", "macro_recall", "vad_score")
VAD_DIMS: tuple[str, ...] = ("v", "a", "d")
NONE_LABEL = "<none>"  # the confusion-matrix column of rows that predicted no label
FAILED_VAD: tuple[float, float, float] = (0.5, 0.5, 0.5)  # strict view: the scale midpoint


def get_metric(name: str) -> MetricInfo:
    try:
        return METRICS[name]
    except KeyError:
        raise EmoloomError(f"Unknown metric {name!r}. Available: {', '.join(METRICS)}") from None


# --- classification ------------------------------------------------------------------------


def _label_names(labels: Sequence[str] | LabelSet) -> list[str]:
    names = list(labels.labels if isinstance(labels, LabelSet) else labels)
    if not names or len(set(names)) != len(names):
        raise ValueError("labels must be a non-empty list without repeats")
    return names


def _binarize(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold rows but {len(pred)} predicted rows")
    if not gold:
        raise ValueError("no rows to score")
    known = set(labels)
    for side, rows in (("gold", gold), ("pred", pred)):
        # a bare string would be binarized character by character
        if any(isinstance(row, str) for row in rows):
            raise TypeError(f"{side} rows must be sequences of labels, not strings")
        # the contract parser rejects off-set labels, so one here is a caller bug (e.g. a
        # cross-corpus prediction that was not mapped); MultiLabelBinarizer would drop it.
        unknown = sorted({lab for row in rows for lab in row} - known)
        if unknown:
            raise ValueError(f"{side} labels {unknown[:5]} are not in the label list")
    mlb = MultiLabelBinarizer(classes=labels)
    return mlb.fit_transform(gold), mlb.fit_transform(pred)


def _kept_columns(labels: list[str], exclude: Sequence[str]) -> list[int]:
    unknown = [lab for lab in exclude if lab not in labels]
    if unknown:
        raise ValueError(f"excluded labels {unknown} are not in the label list")
    excluded = set(exclude)
    kept = [i for i, lab in enumerate(labels) if lab not in excluded]
    if not kept:
        raise ValueError("exclude removes every label")
    return kept


def _averages(
    y_gold: np.ndarray, y_pred: np.ndarray, columns: list[int], *, micro: bool = True
) -> dict[str, float]:
    # For indicator matrices sklearn's `labels` are column indices: averaging over a subset of
    # columns is exactly "drop those labels, keep the rows".
    p, r, f, _ = precision_recall_fscore_support(
        y_gold, y_pred, labels=columns, average="macro", zero_division=0
    )
    scores = {"macro_f1": float(f), "macro_recall": float(r), "macro_precision": float(p)}
    if micro:  # skipped inside the bootstrap loop, which only needs the macro scores
        _, _, micro_f, _ = precision_recall_fscore_support(
            y_gold, y_pred, labels=columns, average="micro", zero_division=0
        )
        scores["micro_f1"] = float(micro_f)
    return scores


def classification_metrics(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    labels: Sequence[str] | LabelSet,
    *,
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """Macro/micro scores, exact match and per-label scores of predicted label sets.

    An empty prediction (a failed parse) predicts no label. With `exclude`, the macro and micro
    averages run over the remaining label columns (rows unchanged) and ``all_labels`` repeats
    them over every column (DailyDialog reports both: 6 emotions and all 7 classes).
    """
    names = _label_names(labels)
    kept = _kept_columns(names, exclude)
    y_gold, y_pred = _binarize(gold, pred, names)
    p, r, f, support = precision_recall_fscore_support(
        y_gold, y_pred, average=None, zero_division=0
    )
    exact = float(accuracy_score(y_gold, y_pred))  # subset accuracy on indicator matrices
    result: dict[str, Any] = {
        "n": len(gold),
        **_averages(y_gold, y_pred, kept),
        "exact_match": exact,
        "accuracy": exact,
        "excluded": list(exclude),
    }
    if exclude:
        result["all_labels"] = _averages(y_gold, y_pred, list(range(len(names))))
    result["per_label"] = {
        lab: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(support[i]),
        }
        for i, lab in enumerate(names)
    }
    return result


def confusion(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str] | LabelSet
) -> dict[str, Any]:
    """Confusion counts of a single-label task: rows = gold label, columns = predicted label.

    Each gold row must hold exactly one label. A prediction counts as its first label (the
    parser and `map_labels` return labels in label-set order) or as ``<none>`` when empty; the
    ``<none>`` column appears only when some prediction is empty.
    """
    names = _label_names(labels)
    _binarize(gold, pred, names)  # same validation as classification_metrics
    if any(len(row) != 1 for row in gold):
        raise ValueError("confusion() needs exactly one gold label per row")
    y_true = [row[0] for row in gold]
    y_pred = [row[0] if row else NONE_LABEL for row in pred]
    columns = names + ([NONE_LABEL] if NONE_LABEL in y_pred else [])
    # sklearn wants one label list for both axes; the <none> row is always zero and dropped.
    matrix = confusion_matrix(y_true, y_pred, labels=columns)[: len(names)]
    return {"rows": names, "columns": columns, "matrix": matrix.tolist()}


# --- VAD -----------------------------------------------------------------------------------


def _vad_array(values: Any, side: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{side} VAD must have shape (n, 3) with n >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"{side} VAD values must be finite and in [0, 1]")
    return arr


def pearson(gold: np.ndarray, pred: np.ndarray) -> float | None:
    """Pearson r, or None when undefined (fewer than 2 values or a constant vector)."""
    if len(gold) < 2 or np.ptp(gold) == 0 or np.ptp(pred) == 0:
        return None  # scipy would warn and return NaN; None survives JSON and means "undefined"
    r = float(pearsonr(gold, pred).statistic)
    return r if np.isfinite(r) else None


def ccc(gold: np.ndarray, pred: np.ndarray) -> float | None:
    """Lin's (1989) concordance correlation coefficient with population moments.

    Written here because neither scipy nor scikit-learn ships it. Unlike Pearson it penalises
    shifts and scale changes: a constant prediction of a varying target scores 0. Undefined
    (None) only when both vectors are the same constant.
    """
    g, p = np.asarray(gold, dtype=float), np.asarray(pred, dtype=float)
    cov = np.mean((g - g.mean()) * (p - p.mean()))
    denom = g.var() + p.var() + (g.mean() - p.mean()) ** 2
    return float(2.0 * cov / denom) if denom > 0 else None


def vad_metrics(gold: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """VAD score (1 − pooled RMSE), pooled RMSE, and per-dimension RMSE, Pearson r and CCC."""
    g, p = _vad_array(gold, "gold"), _vad_array(pred, "pred")
    if g.shape != p.shape:
        raise ValueError(f"gold VAD {g.shape} and pred VAD {p.shape} differ in shape")
    rmse = float(root_mean_squared_error(g.ravel(), p.ravel()))
    per_dim = root_mean_squared_error(g, p, multioutput="raw_values")
    return {
        "n": len(g),
        "vad_score": 1.0 - rmse,
        "vad_rmse": rmse,
        "per_dim": {
            dim: {
                "rmse": float(per_dim[j]),
                "pearson": pearson(g[:, j], p[:, j]),
                "ccc": ccc(g[:, j], p[:, j]),
            }
            for j, dim in enumerate(VAD_DIMS)
        },
    }


# --- bootstrap -----------------------------------------------------------------------------


def bootstrap_cis(
    values_fn: Callable[[np.ndarray], Mapping[str, float]],
    n: int,
    *,
    resamples: int = 1000,
    seed: int,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CIs over examples for several metrics from the same index draws.

    Each resample draws `n` row indices with replacement from ``default_rng(seed)`` and calls
    ``values_fn(indices)``; the CI is the (alpha/2, 1 − alpha/2) percentile of the results.
    We resample indices ourselves rather than use scipy.stats.bootstrap because our statistics
    are functions of whole rows (label sets and VAD triples together), not of 1-D samples.
    """
    if n < 1 or resamples < 1 or not 0.0 < alpha < 1.0:
        raise ValueError("bootstrap needs n >= 1, resamples >= 1 and 0 < alpha < 1")
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(resamples):
        for name, value in values_fn(rng.integers(0, n, size=n)).items():
            draws.setdefault(name, []).append(float(value))
    q = [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)]
    cis: dict[str, tuple[float, float]] = {}
    for name, values in draws.items():
        lo, hi = np.percentile(values, q)
        cis[name] = (float(lo), float(hi))
    return cis


def bootstrap_ci(
    values_fn: Callable[[np.ndarray], float],
    n: int,
    *,
    resamples: int = 1000,
    seed: int,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap CI over examples of one metric (see `bootstrap_cis`)."""
    cis = bootstrap_cis(
        lambda idx: {"value": values_fn(idx)}, n, resamples=resamples, seed=seed, alpha=alpha
    )
    return cis["value"]


def headline_with_ci(
    gold_labels: Sequence[Sequence[str]],
    pred_labels: Sequence[Sequence[str]],
    gold_vad: np.ndarray | None,
    pred_vad: np.ndarray | None,
    labels: Sequence[str] | LabelSet,
    *,
    exclude: Sequence[str] = (),
    seed: int,
    resamples: int = 1000,
    alpha: float = 0.05,
) -> dict[str, dict[str, float]]:
    """macro_f1, macro_recall (and vad_score when VAD is given) as {"value", "ci_low", "ci_high"}.

    Rows are resampled jointly for all three, so the CIs describe the same resampled splits.
    """
    names = _label_names(labels)
    kept = _kept_columns(names, exclude)
    y_gold, y_pred = _binarize(gold_labels, pred_labels, names)
    g = None if gold_vad is None else _vad_array(gold_vad, "gold")
    p = None if pred_vad is None else _vad_array(pred_vad, "pred")
    if (g is None) != (p is None) or (g is not None and g.shape != (len(y_gold), 3)):
        raise ValueError("gold and pred VAD must both be given, one (v, a, d) per row")

    def values(idx: np.ndarray) -> dict[str, float]:
        scores = _averages(y_gold[idx], y_pred[idx], kept, micro=False)
        out = {"macro_f1": scores["macro_f1"], "macro_recall": scores["macro_recall"]}
        if g is not None and p is not None:
            out["vad_score"] = 1.0 - float(root_mean_squared_error(g[idx].ravel(), p[idx].ravel()))
        return out

    point = values(np.arange(len(y_gold)))
    cis = bootstrap_cis(values, len(y_gold), resamples=resamples, seed=seed, alpha=alpha)
    return {k: {"value": v, "ci_low": cis[k][0], "ci_high": cis[k][1]} for k, v in point.items()}


# --- parse health --------------------------------------------------------------------------


def parse_ok_rate(ok_flags: Sequence[bool]) -> float:
    if not ok_flags:
        raise ValueError("ParseOK rate of zero generations is undefined")
    return sum(bool(ok) for ok in ok_flags) / len(ok_flags)


def failure_counts(reasons: Sequence[str | None]) -> dict[str, int]:
    """Count parse-failure reasons (None = parsed fine), keys sorted for stable output."""
    counts = Counter(str(r) for r in reasons if r is not None)
    return dict(sorted(counts.items()))


# --- strict and paper views ----------------------------------------------------------------


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


def _view(
    gold_labels: list[list[str]],
    pred_labels: list[list[str]],
    gold_vad: list[Any] | None,
    pred_vad: list[Any],
    labels: list[str],
    exclude: Sequence[str],
    seed: int,
    resamples: int,
    alpha: float,
) -> dict[str, Any]:
    n = len(gold_labels)
    headline_names = [m for m in METRICS if m != "parse_ok"]
    if n == 0:  # e.g. the paper view when every generation failed to parse
        return {
            "n": 0,
            "headline": dict.fromkeys(headline_names),
            "ci": None,
            "classification": None,
            "vad": None,
            "confusion": None,
        }
    cls = classification_metrics(gold_labels, pred_labels, labels, exclude=exclude)
    vad = None if gold_vad is None else vad_metrics(np.array(gold_vad), np.array(pred_vad))
    headline = {m: cls[m] if m in cls else (vad[m] if vad else None) for m in headline_names}
    ci = headline_with_ci(
        gold_labels,
        pred_labels,
        None if gold_vad is None else np.array(gold_vad),
        None if gold_vad is None else np.array(pred_vad),
        labels,
        exclude=exclude,
        seed=seed,
        resamples=resamples,
        alpha=alpha,
    )
    single = all(len(row) == 1 for row in gold_labels)
    return {
        "n": n,
        "headline": headline,
        "ci": ci,
        "classification": cls,
        "vad": vad,
        "confusion": confusion(gold_labels, pred_labels, labels) if single else None,
    }


def evaluate_rows(
    rows: Sequence[Any],
    labels: Sequence[str] | LabelSet,
    *,
    exclude: Sequence[str] = (),
    seed: int,
    resamples: int = 1000,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Score prediction rows in the strict and the paper view (see the module docstring).

    Each row is a mapping or an object with ``gold_labels``, ``gold_vad`` (3 floats, or None on
    every row for a corpus without VAD), ``pred_labels`` and ``pred_vad`` (None when the parse
    failed), ``parse_ok`` and ``failure`` (a reason or None). A row with ``parse_ok`` false is
    scored as a failure even if predictions are present. Returns ``{"n", "parse_ok",
    "failures", "strict", "paper"}``; each view holds ``n``, ``headline`` (every metric of
    `METRICS` but parse_ok; None when undefined), ``ci`` (`CI_METRICS` with percentile
    bootstrap CIs), the full ``classification`` and ``vad`` dicts, and ``confusion`` when every
    row has exactly one gold label. Deterministic: same rows and seed give an equal dict.
    """
    if not rows:
        raise ValueError("no rows to evaluate")
    names = _label_names(labels)
    ok = [bool(_get(r, "parse_ok")) for r in rows]
    gold_labels = [list(_get(r, "gold_labels")) for r in rows]
    gold_vad = [_get(r, "gold_vad") for r in rows]
    has_vad = [v is not None for v in gold_vad]
    if any(has_vad) and not all(has_vad):
        raise ValueError("gold_vad must be given on every row or on none")
    pred_labels: list[list[str]] = []
    pred_vad: list[Any] = []
    for i, (row, parsed) in enumerate(zip(rows, ok, strict=True)):
        if not parsed:  # strict view: a failed parse predicts nothing and the VAD midpoint
            pred_labels.append([])
            pred_vad.append(FAILED_VAD)
            continue
        labs, vad = _get(row, "pred_labels"), _get(row, "pred_vad")
        if labs is None or (vad is None and all(has_vad)):
            raise ValueError(f"row {i} has parse_ok but no prediction")
        pred_labels.append(list(labs))
        pred_vad.append(vad)

    def view(keep: list[int]) -> dict[str, Any]:
        return _view(
            [gold_labels[i] for i in keep],
            [pred_labels[i] for i in keep],
            [gold_vad[i] for i in keep] if all(has_vad) else None,
            [pred_vad[i] for i in keep],
            names,
            exclude,
            seed,
            resamples,
            alpha,
        )

    return {
        "n": len(rows),
        "parse_ok": parse_ok_rate(ok),
        # a failed row without a reason still counts, so the counts sum to the failures
        "failures": failure_counts(
            [_get(r, "failure") or "unspecified" for r, o in zip(rows, ok, strict=True) if not o]
        ),
        "strict": view(list(range(len(rows)))),
        "paper": view([i for i, o in enumerate(ok) if o]),
    }
