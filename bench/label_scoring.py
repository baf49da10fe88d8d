"""Label-scoring evaluation of a trained run (until generation-based evaluation lands).

    python bench/label_scoring.py runs/default --corpus goemotions --split dev

Reads the run's latest checkpoint, feeds every example's prompt plus the fixed answer opening
``{"labels":["`` and takes the model's distribution over the label set's first tokens.
Two fixed decision rules, neither tuned on the evaluated split:
  top1      the single most likely label;
  top1+0.3  the top label plus every label with probability >= 0.3.
Macro-F1 and Macro-Recall are over all labels of the set (the GoEmotions convention), with
scikit-learn. Writes bench/results/label_scoring_<run>_<corpus>_<split>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score, recall_score
from sklearn.preprocessing import MultiLabelBinarizer

from emoloom.data import load_split
from emoloom.modeling import load_trained
from emoloom.prompting import PromptEncoder
from emoloom.scoring import label_probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--corpus", default="goemotions")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()

    cfg, backbone = load_trained(args.run_dir)
    loaded = load_split(args.corpus, args.split, data_dir=cfg.data.data_dir, options=cfg.data.read, weak_vad=cfg.data.weak_vad)  # fmt: skip
    records = loaded.records[: args.limit]
    label_set = loaded.label_set
    encoder = PromptEncoder(
        backbone.tokenizer, label_set, max_length=cfg.prompt.max_length,
        rationale=cfg.prompt.rationale, max_context_turns=cfg.prompt.max_context_turns,
        list_labels=cfg.prompt.list_labels,
    )  # fmt: skip
    started = time.perf_counter()
    rows = [(r, label_set.name) for r in records]
    probs = np.stack(label_probs(backbone.lm, rows, {label_set.name: encoder}, backbone.tokenizer.pad_token_id))  # fmt: skip
    seconds = time.perf_counter() - started

    mlb = MultiLabelBinarizer(classes=list(label_set.labels))
    gold = mlb.fit_transform([r.labels for r in records])
    top = np.zeros_like(gold)
    top[np.arange(len(records)), probs.argmax(1)] = 1
    rules = {"top1": top, "top1+0.3": np.maximum(top, (probs >= 0.3).astype(int))}
    result = {
        "command": f"python bench/label_scoring.py {args.run_dir} --corpus {args.corpus} --split {args.split}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, 2 cores",
        "run": str(args.run_dir),
        "examples": len(records),
        "seconds": round(seconds, 1),
        "examples_per_s": round(len(records) / seconds, 1),
    }
    for name, pred in rules.items():
        result[f"{name}_macro_f1"] = round(
            float(f1_score(gold, pred, average="macro", zero_division=0)), 4
        )
        result[f"{name}_macro_recall"] = round(
            float(recall_score(gold, pred, average="macro", zero_division=0)), 4
        )
        result[f"{name}_micro_f1"] = round(
            float(f1_score(gold, pred, average="micro", zero_division=0)), 4
        )
    per_label = f1_score(gold, rules["top1"], average=None, zero_division=0)
    result["top1_per_label_f1"] = {
        lab: round(float(f), 4) for lab, f in zip(label_set.labels, per_label, strict=True)
    }
    out = (
        Path(__file__).parent
        / "results"
        / f"label_scoring_{Path(args.run_dir).name}_{args.corpus}_{args.split}.json"
    )
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "top1_per_label_f1"}, indent=2))


if __name__ == "__main__":
    main()
