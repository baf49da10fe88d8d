"""Per-label thresholds for the label choice: the rule, the fit, the label mapping, the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emoloom.calibration import Calibration, decide, fit, load, macro_f1, target_matrix
from emoloom.errors import EmoloomError
from emoloom.labels import DAILYDIALOG, GOEMOTIONS


def test_decide_takes_every_label_over_its_threshold_else_the_best_ratio():
    probs = np.array([[0.6, 0.3, 0.1], [0.5, 0.45, 0.05], [0.2, 0.3, 0.5]])
    t = [0.5, 0.4, 0.9]
    chosen = decide(probs, t, multi_label=True)
    assert chosen.tolist() == [
        [True, False, False],
        [True, True, False],  # two labels pass
        [False, True, False],  # none passes: the largest p/t is 0.3/0.4
    ]
    single = decide(probs, t, multi_label=False)
    assert single.sum(axis=1).tolist() == [1, 1, 1] and single[1].tolist() == [False, True, False]
    # all thresholds at 1: both rules are the top-1 label
    for multi in (True, False):
        assert decide(probs, np.ones(3), multi).argmax(axis=1).tolist() == [0, 0, 2]


def _rare_label_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three labels; label 2 is rare and never the most likely, but its probability rises
    (to about 0.3) exactly on its gold rows."""
    rng = np.random.default_rng(seed)
    gold = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    probs = np.zeros((n, 3))
    probs[:, 2] = np.where(gold == 2, rng.uniform(0.25, 0.35, n), rng.uniform(0.0, 0.1, n))
    main = np.where(gold == 1, 1, 0)
    probs[np.arange(n), main] = 1.0 - probs[:, 2] - 0.1
    probs[np.arange(n), 1 - main] = 0.1
    return probs, np.eye(3, dtype=bool)[gold]


def test_fit_finds_the_rare_label_top1_never_predicts():
    probs, gold = _rare_label_data(600, seed=0)
    identity = target_matrix("goemotions", "goemotions")[:3, :3]
    t, before, after = fit(probs, gold, identity, multi_label=True)
    assert not decide(probs, np.ones(3), True)[:, 2].any()  # greedy misses label 2 entirely
    assert after > before + 0.2 and 0.09 < t[2] <= 0.25
    # the thresholds carry over to fresh rows from the same distribution (nothing memorised)
    probs2, gold2 = _rare_label_data(600, seed=1)
    assert macro_f1(decide(probs2, t, True), gold2, identity, None) > after - 0.05


def test_fit_never_returns_worse_than_top1():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4), size=200)  # no signal at all
    gold = np.eye(4, dtype=bool)[rng.integers(0, 4, 200)]
    t, before, after = fit(probs, gold, np.eye(4, dtype=bool), multi_label=False)
    assert after >= before and t.shape == (4,)


def test_mapped_targets_score_as_the_evaluation_maps_them():
    m = target_matrix("goemotions", "dailydialog")
    ge, dd = GOEMOTIONS.labels, DAILYDIALOG.labels
    assert m[ge.index("joy"), dd.index("happiness")] and m.sum(axis=1).max() == 1
    assert m[ge.index("neutral"), dd.index("no emotion")]
    # a prompt label that maps to nothing falls back to the neutral class, like map_labels
    unmapped = [i for i in range(len(ge)) if not m[i].any()]
    chosen = np.zeros((1, len(ge)), dtype=bool)
    if unmapped:
        chosen[0, unmapped[0]] = True
        gold = np.zeros((1, len(dd)), dtype=bool)
        gold[0, dd.index("no emotion")] = True
        assert macro_f1(chosen, gold, m, dd.index("no emotion")) > 0


def _write(path, **changes):
    cal = Calibration(
        label_set="goemotions",
        thresholds=tuple([0.2] * 28),
        corpus="goemotions",
        split="dev",
        target="goemotions",
        rows=10,
        sample="random",
        dev_macro_f1_top1=0.1,
        dev_macro_f1=0.2,
        seconds=1.0,
        key="k",
    )
    data = {**cal.__dict__, "thresholds": list(cal.thresholds), **changes}
    path.write_text(json.dumps(data))
    return path


def test_a_calibration_file_round_trips_and_bad_ones_name_the_file(tmp_path):
    cal = load(_write(tmp_path / "ok.json"))
    assert cal.thresholds == tuple([0.2] * 28) and cal.summary()["thresholds"]["grief"] == 0.2
    for name, changes in [
        ("short.json", {"thresholds": [0.2] * 5}),
        ("zero.json", {"thresholds": [0.0] * 28}),
        ("set.json", {"label_set": "nope"}),
    ]:
        with pytest.raises(EmoloomError, match=name):
            load(_write(tmp_path / name, **changes))
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(EmoloomError, match="junk.json"):
        load(tmp_path / "junk.json")
