"""Cross-corpus DailyDialog: how many prior turns the GoEmotions prompt should show, and what
limits the 7-class Macro-F1.

    python bench/dailydialog_context.py                  # the trained quality run
    python bench/dailydialog_context.py --dev-rows 500 --test-rows 500 --turns 3,0   # quick

DailyDialog is scored through the GoEmotions prompt and the GoEmotions→Ekman→DailyDialog
mapping (mission.md). Its utterances come with earlier turns, GoEmotions comments with none.
For each `--turns` setting this bench reads p(c), the model's distribution over the GoEmotions
labels at the first label decision (`scoring.label_probs`, the distribution calibrated decoding
decides from), on the first `--dev-rows` rows of the dev split's label-stratified order (as the
time-bounded evaluation orders test), and reports, on dev:

- ``top1``: Macro-F1 (7 classes) of the most likely label, mapped;
- ``calibrated``: after fitting per-label thresholds on those dev rows (`calibration.fit`; the
  evaluation's rule), in-sample.

The setting is chosen on dev. For the settings in `--test-turns` it also scores the first
`--test-rows` test rows in the same order with the dev-fitted thresholds (at several prefix
lengths, since a time-bounded figure depends on how many rows the budget reaches), and a
richer read-out than thresholds: a class-balanced 28→7 logistic regression on log p(c), fitted
on the dev rows — if that does no better, the limit is in p(c), not in the decision rule.
Writes bench/results/dailydialog_context.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from emoloom.calibration import decide, fit, macro_f1, target_matrix
from emoloom.decoding import DecodeConfig
from emoloom.evaluate import read_split, stratified_order, with_turns
from emoloom.inference import load_model, make_decoder
from emoloom.labels import LABEL_SETS, neutral_class
from emoloom.scoring import label_probs

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import provenance  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/screens/quality/runs/minilm-default")
    parser.add_argument("--turns", type=_ints, default=[3, 1, 0], help="settings scored on dev")
    parser.add_argument("--test-turns", type=_ints, default=[3, 0], help="... and on test")
    parser.add_argument("--dev-rows", type=int, default=6000)
    parser.add_argument("--test-rows", type=int, default=4600)
    parser.add_argument("--prefixes", type=_ints, default=[1000, 2000, 3000, 4000, 4600])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "dailydialog_context.json"))
    args = parser.parse_args()

    cfg, backbone = load_model(run=args.run)
    targets = LABEL_SETS["dailydialog"].labels
    to_target = target_matrix("goemotions", "dailydialog")
    neutral = targets.index(neutral_class("dailydialog"))

    def read(split: str, n: int, turns: int) -> tuple[np.ndarray, np.ndarray]:
        records = read_split(cfg, "dailydialog", split).records
        sample = [records[i] for i in stratified_order(records, args.seed)[:n]]
        decoder = make_decoder(with_turns(cfg, turns), backbone, ["goemotions"], DecodeConfig())
        probs = label_probs(
            backbone.lm,
            [(r, "goemotions") for r in sample],
            decoder.encoders,
            backbone.tokenizer.pad_token_id,
        )
        gold = np.array([[lab in r.labels for lab in targets] for r in sample], dtype=bool)
        return np.stack(probs).astype(np.float64), gold

    out: dict[str, Any] = {
        **provenance(),
        "run": args.run,
        "dev_rows": args.dev_rows,
        "test_rows": args.test_rows,
        "settings": {},
    }
    for turns in args.turns:
        started = time.perf_counter()
        probs, gold = read("dev", args.dev_rows, turns)
        thresholds, top1, calibrated = fit(probs, gold, to_target, True, neutral)
        entry: dict[str, Any] = {
            "dev_top1_macro_f1": round(top1, 4),
            "dev_calibrated_macro_f1_in_sample": round(calibrated, 4),
        }
        if turns in args.test_turns:
            test_probs, test_gold = read("test", args.test_rows, turns)
            ones = np.ones(probs.shape[1])
            readout = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000)
            readout.fit(np.log(probs + 1e-9), gold.argmax(axis=1))
            lr_pred = np.eye(len(targets), dtype=bool)[readout.predict(np.log(test_probs + 1e-9))]
            entry["test"] = {}
            for n in [p for p in args.prefixes if p <= len(test_probs)]:
                g = test_gold[:n]
                entry["test"][str(n)] = {
                    "top1": round(
                        macro_f1(decide(test_probs[:n], ones, True), g, to_target, neutral), 4
                    ),  # fmt: skip
                    "calibrated": round(
                        macro_f1(decide(test_probs[:n], thresholds, True), g, to_target, neutral), 4
                    ),  # fmt: skip
                    "logistic_readout": round(
                        float(f1_score(g, lr_pred[:n], average="macro", zero_division=0)), 4
                    ),  # fmt: skip
                }
        entry["seconds"] = round(time.perf_counter() - started, 1)
        out["settings"][str(turns)] = entry
        print(turns, json.dumps(entry), flush=True)
    RESULTS.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
