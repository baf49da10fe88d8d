"""Metrics: hand-computed classification and VAD scores, CIs, and the strict/paper views."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from emoloom.errors import EmoloomError
from emoloom.labels import DAILYDIALOG
from emoloom.metrics import (
    CI_METRICS,
    METRICS,
    bootstrap_ci,
    ccc,
    classification_metrics,
    confusion,
    evaluate_rows,
    failure_counts,
    get_metric,
    parse_ok_rate,
    pearson,
    vad_metrics,
)

LABELS = ["joy", "anger", "sadness", "neutral"]
GOLD = [["joy"], ["joy", "sadness"], ["anger"], ["neutral"], ["sadness"]]
PRED = [["joy"], ["joy"], ["sadness"], ["neutral", "joy"], []]  # last row: a failed parse
# Per label (tp, fp, fn) → precision, recall, F1:
#   joy     (2, 1, 0) → 2/3, 1, 0.8      support 2
#   anger   (0, 0, 1) → 0,   0, 0        support 1
#   sadness (0, 1, 2) → 0,   0, 0        support 2
#   neutral (1, 0, 0) → 1,   1, 1        support 1
# macro F1 = (0.8 + 0 + 0 + 1) / 4 = 0.45; macro recall = (1 + 0 + 0 + 1) / 4 = 0.5
# macro precision = (2/3 + 1) / 4 = 5/12
# micro: tp 3, fp 2, fn 3 → F1 = 2·3 / (2·3 + 2 + 3) = 6/11
# exact match: only row 1 → 1/5
# without neutral: macro F1 = 0.8/3, macro recall = 1/3; micro tp 2, fp 2, fn 3 → 4/9


def test_metric_registry_declares_a_direction_for_every_headline_metric():
    assert set(CI_METRICS) <= set(METRICS)
    assert METRICS["macro_f1"].higher_is_better and METRICS["parse_ok"].higher_is_better
    assert not METRICS["vad_rmse"].higher_is_better
    with pytest.raises(EmoloomError, match="Available: macro_f1"):
        get_metric("f1")


def test_classification_metrics_match_the_hand_computed_fixture():
    m = classification_metrics(GOLD, PRED, LABELS)
    assert m["n"] == 5
    assert m["macro_f1"] == pytest.approx(0.45)
    assert m["macro_recall"] == pytest.approx(0.5)
    assert m["macro_precision"] == pytest.approx(5 / 12)
    assert m["micro_f1"] == pytest.approx(6 / 11)
    assert m["exact_match"] == m["accuracy"] == pytest.approx(0.2)
    assert "all_labels" not in m


def test_per_label_scores_and_support_count_gold_rows_per_label():
    per = classification_metrics(GOLD, PRED, LABELS)["per_label"]
    assert list(per) == LABELS
    assert {lab: per[lab]["support"] for lab in LABELS} == {
        "joy": 2,
        "anger": 1,
        "sadness": 2,
        "neutral": 1,
    }
    assert per["joy"]["precision"] == pytest.approx(2 / 3) and per["joy"]["f1"] == pytest.approx(
        0.8
    )
    assert per["anger"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_exclude_drops_label_columns_from_averages_but_keeps_rows():
    m = classification_metrics(GOLD, PRED, LABELS, exclude=["neutral"])
    assert m["macro_f1"] == pytest.approx(0.8 / 3)
    assert m["macro_recall"] == pytest.approx(1 / 3)
    assert m["micro_f1"] == pytest.approx(4 / 9)
    # row-level and per-label scores still see every column; all_labels repeats the full average
    assert m["exact_match"] == pytest.approx(0.2)
    assert m["per_label"]["neutral"]["f1"] == 1.0
    assert m["all_labels"]["macro_f1"] == pytest.approx(0.45)
    assert m["excluded"] == ["neutral"]


def test_labels_absent_from_the_split_count_as_zero_in_the_macro_average():
    m = classification_metrics([["joy"]], [["joy"]], ["joy", "anger"])
    assert m["macro_f1"] == pytest.approx(0.5) and m["micro_f1"] == 1.0


@pytest.mark.parametrize(
    "gold, pred, exclude, error",
    [
        ([["joy"]], [["love"]], (), "pred labels \\['love'\\]"),
        ([["love"]], [["joy"]], (), "gold labels"),
        ([["joy"]], [["joy"]], ("love",), "excluded labels"),
        ([["joy"]], [["joy"]], LABELS, "every label"),
        ([["joy"]], [], (), "1 gold rows but 0"),
        ([], [], (), "no rows"),
    ],
)
def test_classification_metrics_reject_inputs_that_cannot_be_scored(gold, pred, exclude, error):
    with pytest.raises(ValueError, match=error):
        classification_metrics(gold, pred, LABELS, exclude=exclude)


def test_a_bare_string_row_is_rejected_instead_of_split_into_characters():
    with pytest.raises(TypeError):
        classification_metrics(["joy"], [["joy"]], LABELS)


def test_confusion_counts_first_predicted_label_and_a_none_column_for_empty_predictions():
    labels = ["no emotion", "anger", "happiness"]
    gold = [["no emotion"], ["no emotion"], ["anger"], ["happiness"], ["happiness"], ["anger"]]
    pred = [["no emotion"], ["happiness"], ["anger"], ["happiness"], [], ["no emotion", "anger"]]
    c = confusion(gold, pred, labels)
    assert c["rows"] == labels
    assert c["columns"] == [*labels, "<none>"]
    assert c["matrix"] == [
        [1, 0, 1, 0],  # no emotion: right once, happiness once
        [1, 1, 0, 0],  # anger: right once, and once "no emotion" (first of two labels)
        [0, 0, 1, 1],  # happiness: right once, once no prediction
    ]


def test_confusion_has_no_none_column_when_every_row_predicted_a_label():
    c = confusion([["anger"], ["fear"]], [["anger"], ["anger"]], DAILYDIALOG)
    assert c["columns"] == list(DAILYDIALOG.labels)
    assert c["matrix"][DAILYDIALOG.index("fear")][DAILYDIALOG.index("anger")] == 1
    with pytest.raises(ValueError, match="exactly one gold label"):
        confusion([["anger", "fear"]], [["anger"]], DAILYDIALOG)


def test_vad_score_is_one_minus_rmse_pooled_over_all_values():
    gold = np.full((2, 3), 0.5)
    pred = np.array([[0.6, 0.6, 1.0], [0.4, 0.6, 0.0]])
    # errors v (±0.1), a (0.1, 0.1), d (±0.5): per-dim RMSE 0.1, 0.1, 0.5;
    # pooled MSE = (0.01 + 0.01 + 0.25) / 3 = 0.09 → RMSE 0.3 (the per-dim mean would be 0.233)
    m = vad_metrics(gold, pred)
    assert m["vad_rmse"] == pytest.approx(0.3)
    assert m["vad_score"] == pytest.approx(0.7)
    assert [m["per_dim"][d]["rmse"] for d in "vad"] == pytest.approx([0.1, 0.1, 0.5])


def test_vad_metrics_reject_wrong_shapes_and_out_of_range_values():
    with pytest.raises(ValueError, match="shape"):
        vad_metrics(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vad_metrics(np.zeros((1, 3)), np.full((1, 3), 1.5))


def test_pearson_and_ccc_agree_when_means_and_variances_match():
    gold = np.array([0.2, 0.4, 0.6, 0.8])
    pred = np.array([0.2, 0.6, 0.4, 0.8])
    # deviations (-.3, -.1, .1, .3) and (-.3, .1, -.1, .3): Σxy = .16, Σx² = Σy² = .2 → r = 0.8;
    # same means and variances, so CCC = 2·cov / (2·var) = r
    assert pearson(gold, pred) == pytest.approx(0.8)
    assert ccc(gold, pred) == pytest.approx(0.8)


def test_ccc_is_one_for_identical_vectors_and_below_pearson_for_a_shifted_copy():
    gold = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert ccc(gold, gold) == pytest.approx(1.0)
    shifted = gold + 0.1
    # var = cov = 0.02, mean gap 0.1 → CCC = 0.04 / (0.02 + 0.02 + 0.01) = 0.8, Pearson stays 1
    assert pearson(gold, shifted) == pytest.approx(1.0)
    assert ccc(gold, shifted) == pytest.approx(0.8)


def test_constant_input_gives_no_pearson_and_zero_or_no_ccc_without_warnings():
    varying, constant = np.array([0.1, 0.5, 0.9]), np.full(3, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pearson(varying, constant) is None
        assert ccc(varying, constant) == 0.0  # a collapsed predictor has no concordance
        assert ccc(constant, constant) is None  # 0/0: undefined
        m = vad_metrics(np.column_stack([varying] * 3), np.full((3, 3), 0.5))
    assert m["per_dim"]["v"] == {
        "rmse": pytest.approx(np.sqrt(0.32 / 3)),
        "pearson": None,
        "ccc": 0.0,
    }
    json.dumps(m)  # None, not NaN: the dict stays valid JSON


def _mean_fn(values: np.ndarray):
    return lambda idx: float(values[idx].mean())


def test_bootstrap_ci_contains_the_point_estimate_and_is_deterministic_for_a_seed():
    errors = np.random.default_rng(0).random(60)  # continuous, so percentiles move with the seed
    fn = _mean_fn(errors)
    lo, hi = bootstrap_ci(fn, len(errors), resamples=300, seed=7)
    assert lo < errors.mean() < hi
    assert bootstrap_ci(fn, len(errors), resamples=300, seed=7) == (lo, hi)
    assert bootstrap_ci(fn, len(errors), resamples=300, seed=8) != (lo, hi)


def test_bootstrap_ci_narrows_with_more_examples():
    rng = np.random.default_rng(1)
    small, large = rng.random(25) < 0.6, rng.random(2500) < 0.6
    lo_s, hi_s = bootstrap_ci(_mean_fn(small), len(small), resamples=300, seed=0)
    lo_l, hi_l = bootstrap_ci(_mean_fn(large), len(large), resamples=300, seed=0)
    # the width scales as 1/sqrt(n): 10x narrower here, so 3x is a safe margin
    assert (hi_l - lo_l) * 3 < hi_s - lo_s


def test_bootstrap_ci_uses_no_global_rng():
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    bootstrap_ci(lambda idx: float(idx.mean()), 10, resamples=20, seed=3)
    assert np.random.random() == before


def test_parse_ok_rate_and_failure_counts():
    assert parse_ok_rate([True, False, True, True]) == 0.75
    assert failure_counts([None, "no_json", "unknown_label", "no_json"]) == {
        "no_json": 2,
        "unknown_label": 1,
    }
    with pytest.raises(ValueError):
        parse_ok_rate([])


VADS = [(0.8, 0.6, 0.7), (0.3, 0.7, 0.4), (0.2, 0.8, 0.6), (0.5, 0.2, 0.4), (0.1, 0.3, 0.2)]
PRED_VADS = [(0.7, 0.6, 0.6), (0.4, 0.6, 0.4), (0.3, 0.7, 0.5), (0.5, 0.3, 0.3), (0.2, 0.3, 0.3)]


def _rows(fail: set[int]) -> list[dict]:
    return [
        {
            "gold_labels": GOLD[i],
            "gold_vad": VADS[i],
            "pred_labels": None if i in fail else PRED[i],
            "pred_vad": None if i in fail else PRED_VADS[i],
            "parse_ok": i not in fail,
            "failure": "no_json" if i in fail else None,
        }
        for i in range(len(GOLD))
    ]


def test_evaluate_rows_strict_view_fills_failures_and_paper_view_drops_them():
    result = evaluate_rows(_rows({1, 4}), LABELS, seed=0, resamples=50)
    assert (result["n"], result["parse_ok"], result["failures"]) == (5, 0.6, {"no_json": 2})
    strict, paper = result["strict"], result["paper"]
    # strict: every row, failed rows predict no labels and VAD (0.5, 0.5, 0.5)
    strict_pred = [PRED[0], [], PRED[2], PRED[3], []]
    strict_vad = [PRED_VADS[0], (0.5,) * 3, PRED_VADS[2], PRED_VADS[3], (0.5,) * 3]
    assert strict["n"] == 5
    assert strict["classification"] == classification_metrics(GOLD, strict_pred, LABELS)
    assert strict["vad"] == vad_metrics(np.array(VADS), np.array(strict_vad))
    # paper: only the ParseOK rows 0, 2, 3
    keep = [0, 2, 3]
    assert paper["n"] == 3
    assert paper["classification"] == classification_metrics(
        [GOLD[i] for i in keep], [PRED[i] for i in keep], LABELS
    )
    assert paper["vad"] == vad_metrics(
        np.array([VADS[i] for i in keep]), np.array([PRED_VADS[i] for i in keep])
    )
    assert paper["headline"]["macro_f1"] != strict["headline"]["macro_f1"]
    for view in (strict, paper):
        assert set(view["ci"]) == set(CI_METRICS)
        for name, ci in view["ci"].items():
            assert ci["value"] == view["headline"][name]
            assert ci["ci_low"] <= ci["value"] <= ci["ci_high"]


def test_evaluate_rows_is_deterministic_for_a_seed_and_json_serialisable():
    a = evaluate_rows(_rows({4}), LABELS, exclude=["neutral"], seed=3, resamples=50)
    b = evaluate_rows(_rows({4}), LABELS, exclude=["neutral"], seed=3, resamples=50)
    assert json.dumps(a) == json.dumps(b)
    assert a["strict"]["headline"]["macro_f1"] == pytest.approx(0.8 / 3)


def test_evaluate_rows_survives_every_row_failing_to_parse():
    result = evaluate_rows(_rows(set(range(5))), LABELS, seed=0, resamples=20)
    assert result["parse_ok"] == 0.0 and result["failures"] == {"no_json": 5}
    assert result["strict"]["headline"]["macro_f1"] == 0.0
    assert result["strict"]["vad"]["n"] == 5
    paper = result["paper"]
    assert paper["n"] == 0 and paper["ci"] is None and paper["classification"] is None
    assert set(paper["headline"].values()) == {None}


def test_evaluate_rows_adds_a_confusion_matrix_only_for_single_label_gold():
    rows = [
        dict(
            gold_labels=[g],
            gold_vad=None,
            pred_labels=[p],
            pred_vad=None,
            parse_ok=True,
            failure=None,
        )
        for g, p in [("anger", "anger"), ("happiness", "no emotion")]
    ]
    result = evaluate_rows(rows, DAILYDIALOG, exclude=["no emotion"], seed=0, resamples=20)
    assert result["strict"]["confusion"]["matrix"][DAILYDIALOG.index("happiness")][0] == 1
    assert result["strict"]["vad"] is None and result["strict"]["headline"]["vad_score"] is None
    assert evaluate_rows(_rows(set()), LABELS, seed=0, resamples=20)["strict"]["confusion"] is None


def test_evaluate_rows_rejects_a_parsed_row_without_a_prediction():
    rows = _rows(set())
    rows[2]["pred_labels"] = None
    with pytest.raises(ValueError, match="row 2"):
        evaluate_rows(rows, LABELS, seed=0, resamples=20)
