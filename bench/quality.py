"""Quality: the full default protocol on the default backbone, then the test sets (issue 6).

    python bench/quality.py                  # train 45 min + evaluate ~35 min on 2 cores
    python bench/quality.py --dry-run        # print the figures of a finished screen only

It runs the screen `configs/quality.yaml` (one candidate: `configs/default.yaml` unchanged;
GoEmotions test and EmpatheticDialogues test in full, DailyDialog test time-bounded to 600 s as
in the paper's quick cross-corpus evaluation, polarity on 200 Valence-Flipped GoEmotions dev
pairs; a decode-only variant of the same trained model with `decode.labels: calibrated`, whose
per-label thresholds are fitted on each corpus's dev split), so a re-run resumes: finished
training and finished eval sets are kept. The candidate's figures are the top-level ones; the
variant's are under "variants". The figures are
read back from the screen's files and written to bench/results/quality.json together with the
published numbers of ../shared/docs/anchors.md and the issue's bars (met or missed, by how much).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
sys.path.insert(0, str(Path(__file__).parent))
from train_speed import machine  # noqa: E402

# (figure, bar, direction); the bars and the paper's numbers next to them.
BARS = [
    ("goemotions_test_macro_f1", 0.46, "BERT-base, Demszky et al. 2020 (test)"),
    ("goemotions_test_vad_score", 0.95, "paper 0.94 (dev, lexicon-weak targets)"),
    ("goemotions_test_parse_ok", 1.0, "paper: not given"),
    ("dailydialog_test_macro_f1_7", 0.40, "paper 0.31 (time-bounded quick eval)"),
]
ANCHORS = {
    "goemotions_test_macro_f1": {
        "EmoLoom-2B, Qwen-1.8B-Chat (paper, dev, with ED)": 0.35,
        "zero-shot ChatGPT, 1,000-item subset": 0.26,
        "frozen all-MiniLM-L6-v2 + one-vs-rest LR, dev-tuned threshold": 0.38,
        "BERT-base (Demszky et al. 2020)": 0.46,
        "BERT-base + class weighting / focal loss": 0.53,
        "RoBERTa-base, per-label thresholds": 0.54,
        "ModernBERT-base, per-label thresholds": 0.55,
    },
    "goemotions_test_vad_score": {"EmoLoom-2B (paper, dev)": 0.94},
    "dailydialog_test_macro_f1_7": {"EmoLoom-2B cross-corpus, time-bounded (paper)": 0.31},
    "empathetic_test_accuracy": {
        "CEM / CASE emotion accuracy, official split (not comparable: our ED is a re-split "
        "~22% part of the official train split)": 0.40
    },
}


def _eval(cand_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((cand_dir / "eval" / f"{name}.json").read_text(encoding="utf-8"))


def figures(screen_dir: Path, candidate: str) -> dict[str, Any]:
    """The issue's figures, read from a finished screen directory."""
    cand = screen_dir / "candidates" / candidate
    result = json.loads((cand / "result.json").read_text(encoding="utf-8"))
    ge, ed, dd = (
        _eval(cand, n) for n in ("goemotions-test", "empathetic-test", "dailydialog-test")
    )
    calibration_s = sum((e.get("calibration") or {}).get("seconds", 0.0) for e in (ge, ed, dd))
    ge_strict = ge["metrics"]["strict"]
    ci = ge_strict["ci"]["macro_f1"]
    polarity = result["polarity"]
    return {
        "goemotions_test_macro_f1": ge_strict["headline"]["macro_f1"],
        "goemotions_test_macro_f1_ci95": [ci["ci_low"], ci["ci_high"]],
        "goemotions_test_macro_recall": ge_strict["headline"]["macro_recall"],
        "goemotions_test_micro_f1": ge_strict["headline"]["micro_f1"],
        "goemotions_test_vad_score": ge_strict["headline"]["vad_score"],
        "goemotions_test_vad_score_ci95": [
            ge_strict["ci"]["vad_score"]["ci_low"],
            ge_strict["ci"]["vad_score"]["ci_high"],
        ],
        "goemotions_test_parse_ok": ge["metrics"]["parse_ok"],
        "goemotions_test_rows": ge["examples_evaluated"],
        "empathetic_test_macro_f1": ed["metrics"]["strict"]["headline"]["macro_f1"],
        "empathetic_test_accuracy": ed["metrics"]["strict"]["headline"]["accuracy"],
        "empathetic_test_rows": ed["examples_evaluated"],
        "dailydialog_test_macro_f1_7": dd["macro_f1_all_classes"],
        "dailydialog_test_macro_f1_6": dd["macro_f1_without_excluded"],
        "dailydialog_test_rows": f"{dd['examples_evaluated']} of {dd['examples_total']}",
        "polarity_flip_rate": polarity["polarity_flip_rate"],
        "polarity_valence_flip_rate": polarity["valence_flip_rate"],
        "polarity_label_flip_rate": polarity["label_flip_rate"],
        "polarity_pairs": polarity["pairs"],
        "train_wall_s": result["train"]["wall_s"],
        "train_steps": result["train"]["step"],
        "train_stopped_by": result["train"]["stopped_by"],
        "train_examples_per_s": result["train"]["examples_per_s"],
        # decoding the test sets + polarity + fitting calibrated thresholds on dev (if any)
        "eval_wall_s": round(
            result["decode"]["wall_s"] + (polarity.get("seconds") or 0.0) + calibration_s, 1
        ),
        "calibration_wall_s": round(calibration_s, 1),
        "decode_examples_per_s": result["decode"]["examples_per_s"],
        "model_calls_per_example": result["decode"]["model_calls_per_example"],
    }


def verdicts(figs: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, bar, paper in BARS:
        value = figs[name]
        out.append(
            {
                "figure": name,
                "value": round(value, 4),
                "bar": bar,
                "met": value >= bar,
                "gap": round(bar - value, 4) if value < bar else 0.0,
                "paper": paper,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "quality.yaml"))
    parser.add_argument("--dry-run", action="store_true", help="read a finished screen only")
    parser.add_argument("--out", default=str(RESULTS / "quality.json"))
    parser.add_argument("overrides", nargs="*", help="screen key=value overrides")
    args = parser.parse_args()

    from emoloom.screen import load_screen, run_screen

    screen = load_screen(args.config, args.overrides)
    screen_dir = Path(screen.output_dir) / screen.screen
    started = time.perf_counter()
    if not args.dry_run:
        run_screen(args.config, args.overrides)
    figs = figures(screen_dir, screen.candidates[0].name)
    variants = {}
    for variant in screen.variants:  # decode-only variants of the same trained model
        vfigs = figures(screen_dir, variant.name)
        cal = _eval(screen_dir / "candidates" / variant.name, "goemotions-test")["calibration"]
        variants[variant.name] = {
            "decode": variant.decode,
            **vfigs,
            "calibration_goemotions": cal
            and {
                k: cal.get(k, "random")
                for k in ("split", "sample", "rows", "dev_macro_f1_top1", "dev_macro_f1", "seconds")
            },
            "calibration_dailydialog": _eval(
                screen_dir / "candidates" / variant.name, "dailydialog-test"
            )["calibration"],
            "bars": verdicts(vfigs),
        }
    blob = {
        "command": "python bench/"
        + " ".join(shlex.quote(a) for a in [Path(__file__).name, *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "screen_dir": str(screen_dir),
        "wall_s_this_invocation": round(time.perf_counter() - started, 1),
        **figs,
        "bars": verdicts(figs),
        "variants": variants,
        "anchors": ANCHORS,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(blob, indent=2) + "\n", encoding="utf-8")
    for name, bars in [(screen.candidates[0].name, blob["bars"])] + [
        (n, v["bars"]) for n, v in variants.items()
    ]:
        for v in bars:
            state = "met" if v["met"] else f"MISSED by {v['gap']}"
            print(f"{name} {v['figure']}: {v['value']} (bar {v['bar']}: {state}; {v['paper']})")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
