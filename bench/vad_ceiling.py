"""What limits the VAD score: the model's VAD with its own labels, with the gold labels, and
averaged over its most likely labels.

    python bench/vad_ceiling.py                          # the trained quality run, 1,000 dev rows
    python bench/vad_ceiling.py --run runs/default --rows 64   # any run; a quick look

The lexicon-weak VAD target of a row is half the lexicon VAD of its text and half the prior of
its *gold* labels (mission.md, "Weak VAD targets"), and the model writes its VAD after its
labels, conditioned on them. So the VAD score mixes two errors: wrong labels move the label
half, and the text half must be read from the words. This bench separates them on the same
rows of a dev split, decoding with constrained KV-off decoding and `decode.vad: mean`:

- ``own_labels``: the evaluation's decoding (greedy labels, then VAD).
- ``gold_labels``: the gold label set is written as the labels (`Decoder.decode(labels=...)`),
  then VAD is decoded as usual. Its VAD score is what this model would reach with perfect labels.
- ``top_k_expected``: greedy labels, and the VAD averaged over the K most likely first labels,
  weighted by their probability (`decode.vad_hypotheses: K`, `--hypotheses`).
- ``label_set_mean``: no model; each row gets the mean target of the rows of the same split
  with the same gold label set (in-sample, so slightly optimistic): what knowing only the labels
  is worth.

Writes bench/results/vad_ceiling.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from emoloom.decoding import DecodeConfig
from emoloom.evaluate import read_split
from emoloom.inference import load_model, make_decoder
from emoloom.metrics import vad_metrics

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"


def _scores(gold_vad: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    m = vad_metrics(gold_vad, pred)
    return {
        "vad_score": round(m["vad_score"], 4),
        "rmse_v_a_d": [round(m["per_dim"][d]["rmse"], 4) for d in ("v", "a", "d")],
        "pearson_v_a_d": [
            None if (r := m["per_dim"][d]["pearson"]) is None else round(r, 3)
            for d in ("v", "a", "d")
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/screens/quality/runs/minilm-default")
    parser.add_argument("--corpus", default="goemotions")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hypotheses", type=int, default=4, help="K of top_k_expected")
    parser.add_argument("--out", default=str(RESULTS / "vad_ceiling.json"))
    args = parser.parse_args()

    cfg, backbone = load_model(run=args.run)
    records = read_split(cfg, args.corpus, args.split).records
    by_set: dict[tuple[str, ...], list[tuple[float, ...]]] = defaultdict(list)
    for r in records:
        by_set[tuple(sorted(r.labels))].append(r.vad.as_tuple())
    set_mean = {k: np.mean(v, axis=0) for k, v in by_set.items()}

    pick = np.random.default_rng(args.seed).permutation(len(records))[: args.rows]
    sample = [records[i] for i in sorted(pick)]
    gold_vad = np.array([r.vad.as_tuple() for r in sample])
    rows = [(r, args.corpus) for r in sample]

    out: dict[str, Any] = {
        **provenance(),
        "run": args.run,
        "corpus": args.corpus,
        "split": args.split,
        "rows": len(sample),
        "hypotheses": args.hypotheses,
    }
    runs = {
        "own_labels": (DecodeConfig(batch_size=args.batch_size, vad="mean"), None),
        "gold_labels": (
            DecodeConfig(batch_size=args.batch_size, vad="mean"),
            [r.labels for r in sample],
        ),
        "top_k_expected": (
            DecodeConfig(batch_size=args.batch_size, vad="mean", vad_hypotheses=args.hypotheses),
            None,
        ),
    }
    for name, (config, given) in runs.items():
        decoder = make_decoder(cfg, backbone, [args.corpus], config)
        started = time.perf_counter()
        results = decoder.decode(rows, labels=given)
        pred = np.array([res.prediction.vad for res in results])
        labels_right = np.mean(
            [
                set(res.prediction.labels) == set(r.labels)
                for res, r in zip(results, sample, strict=True)
            ]
        )
        out[name] = {
            **_scores(gold_vad, pred),
            "exact_label_set": round(float(labels_right), 4),
            "model_calls_per_example": round(sum(r.model_calls for r in results) / len(rows), 2),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(name, out[name], flush=True)
    baseline = np.array([set_mean[tuple(sorted(r.labels))] for r in sample])
    out["label_set_mean"] = _scores(gold_vad, baseline)
    out["constant_mean"] = _scores(gold_vad, np.broadcast_to(gold_vad.mean(axis=0), gold_vad.shape))
    print("label_set_mean", out["label_set_mean"], "constant_mean", out["constant_mean"])
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
