"""Evaluate a model on a corpus split: decode, log every example, compute the metric set.

    emoloom eval --run runs/default --corpus goemotions --split test
    emoloom eval --run runs/default --corpus dailydialog --split test --time-budget 300

Writes ``<out>/predictions/<corpus>-<split>.jsonl`` (one row per example: gold, prediction,
ParseOK, failure, decode stats) and ``<out>/eval/<corpus>-<split>.json`` (metrics with
bootstrap CIs, strict and paper views, per-label scores, confusion matrix).

Which label set the prompt names, and how predictions are scored:

- goemotions, empathetic: their own label set; GoEmotions also at the Ekman level (official
  mapping) and EmpatheticDialogues as accuracy.
- dailydialog (cross-corpus): the GoEmotions prompt, showing the utterance alone as GoEmotions
  rows are (`Protocol.context_turns`; `context_turns=` shows earlier turns); predictions map to
  DailyDialog's 7 classes through GoEmotions→Ekman→DailyDialog (neutral → no emotion).
  Macro-F1 over 7 classes and over the 6 emotions ("no emotion" excluded, the DailyDialog
  convention).
- emobank: the GoEmotions prompt; only VAD is scored, against EmoBank's gold VAD.

``--time-budget S`` evaluates examples in a seeded, label-stratified order (round-robin over
gold labels, shuffled within each) until S seconds have passed, then reports how many were
evaluated next to metrics with confidence intervals.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emoloom.atomic import atomic_write
from emoloom.augment import valence_flip
from emoloom.calibration import load_or_fit
from emoloom.config import TrainConfig
from emoloom.contract import Record
from emoloom.data import load_split
from emoloom.decoding import WINDOW_BATCHES, DecodeConfig, DecodeResult
from emoloom.errors import EmoloomError
from emoloom.faults import fault_point
from emoloom.inference import make_decoder
from emoloom.labels import LABEL_SETS, MIRROR_PAIRS, map_labels
from emoloom.metrics import classification_metrics, evaluate_rows, vad_metrics
from emoloom.modeling import Backbone


@dataclass(frozen=True)
class Protocol:
    prompt: str  # label set the prompt names
    target: str | None  # label set scored against (None: VAD only)
    exclude: tuple[str, ...] = ()
    # prior turns the prompt shows; None: the run's prompt.max_context_turns
    context_turns: int | None = None


PROTOCOLS = {
    "goemotions": Protocol("goemotions", "goemotions"),
    "empathetic": Protocol("empathetic", "empathetic"),
    # The GoEmotions prompt as GoEmotions rows have it: the utterance alone. The model learnt
    # that label set on single Reddit comments; with DailyDialog's 3 prior turns it reads
    # chit-chat as curiosity (-> surprise) and rarely answers neutral. Chosen on the dev split
    # (bench/dailydialog_context.py; docs/benchmarks.md, "DailyDialog: the utterance alone").
    "dailydialog": Protocol("goemotions", "dailydialog", ("no emotion",), context_turns=0),
    "emobank": Protocol("goemotions", None),
}


def protocol_turns(cfg: TrainConfig, corpus: str, context_turns: int | None = None) -> int:
    """The prior turns the prompt of `corpus` shows: `context_turns` if given, else the
    protocol's, else the run's `prompt.max_context_turns`."""
    if context_turns is not None:
        if context_turns < 0:
            raise EmoloomError(f"context_turns={context_turns} must be >= 0")
        return context_turns
    protocol = PROTOCOLS.get(corpus)
    if protocol is not None and protocol.context_turns is not None:
        return protocol.context_turns
    return cfg.prompt.max_context_turns


def with_turns(cfg: TrainConfig, turns: int) -> TrainConfig:
    """`cfg` whose prompts show `turns` prior turns (the decoder's encoders read this)."""
    if turns == cfg.prompt.max_context_turns:
        return cfg
    return dataclasses.replace(cfg, prompt=dataclasses.replace(cfg.prompt, max_context_turns=turns))


def read_split(cfg: TrainConfig, corpus: str, split: str):
    """A split read with the run's own reading and weak-VAD settings."""
    data = cfg.data
    return load_split(
        corpus, split, data_dir=data.data_dir, options=data.read, weak_vad=data.weak_vad
    )


def stratified_order(records: Sequence[Record], seed: int) -> list[int]:
    """Indices in a seeded, label-stratified order: a prefix of any length covers the labels
    about evenly, so a time-bounded run still sees rare classes."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.labels[0] if r.labels else "", []).append(i)
    queues = [list(rng.permutation(groups[k])) for k in sorted(groups)]
    order: list[int] = []
    while any(queues):
        for q in queues:
            if q:
                order.append(int(q.pop(0)))
    return order


def _row(record: Record, result: DecodeResult, protocol: Protocol) -> dict[str, Any]:
    pred = result.prediction
    labels = list(pred.labels) if pred is not None else None
    if labels is not None and protocol.target and protocol.target != protocol.prompt:
        labels = list(map_labels(labels, protocol.prompt, protocol.target))
    return {
        "id": record.id,
        "gold_labels": list(record.labels),
        "gold_vad": list(record.vad.as_tuple()) if record.vad is not None else None,
        "pred_labels": labels,
        "pred_prompt_labels": list(pred.labels) if pred is not None else None,
        "pred_vad": list(pred.vad) if pred is not None else None,
        "parse_ok": result.parse_ok,
        "failure": result.failure,
        "line": result.line,
        "raw": result.raw if not result.parse_ok else None,
        "model_calls": result.model_calls,
        "generated_tokens": result.generated_tokens,
    }


def evaluate(
    cfg: TrainConfig,
    backbone: Backbone,
    corpus: str,
    split: str,
    decode: DecodeConfig,
    *,
    out_dir: Path,
    time_budget: float | None = None,
    limit: int | None = None,
    seed: int = 0,
    resamples: int = 1000,
    resume: bool = False,
    context_turns: int | None = None,
) -> dict[str, Any]:
    """Decode `split` of `corpus` and write its per-example log and metrics under `out_dir`.

    The prompt shows `context_turns` prior turns (default: the protocol's choice, else the
    run's `prompt.max_context_turns`; `protocol_turns`).

    Rows are appended batch by batch to ``predictions/<name>.jsonl.partial`` (flushed and
    fsynced), with the row count, seconds and model calls so far in ``<name>.partial.json``;
    `resume` continues from there (a time budget counts the seconds already spent), and the
    final files replace the partial ones atomically.
    """
    protocol = PROTOCOLS[corpus] if corpus in PROTOCOLS else Protocol(corpus, corpus)
    turns = protocol_turns(cfg, corpus, context_turns)
    loaded = read_split(cfg, corpus, split)
    records = loaded.records
    order = stratified_order(records, seed) if time_budget else list(range(len(records)))
    order = order[:limit] if limit else order
    calibration = None
    if decode.labels == "calibrated" and protocol.target is not None:
        calibration = load_or_fit(
            cfg, backbone, corpus, cache_dir=out_dir / "calibration",
            rows=decode.calibration_rows, seed=seed, stratified=time_budget is not None,
            context_turns=turns,
        )  # fmt: skip
    log = _PartialLog(out_dir, f"{corpus}-{split}", [records[i].id for i in order], decode, turns)
    rows, seconds, calls = log.restore() if resume else log.start()
    thresholds = {protocol.prompt: calibration.thresholds} if calibration else None
    labels = "calibrated" if calibration else "greedy"
    decoder = make_decoder(
        with_turns(cfg, turns),
        backbone,
        [protocol.prompt],
        dataclasses.replace(decode, labels=labels),
        thresholds,
    )
    # windows of several batches: the decoder sorts each by prompt length (less padding)
    window = decode.batch_size * (1 if time_budget is not None else WINDOW_BATCHES)
    for start in range(len(rows), len(order), window):
        if time_budget is not None and seconds >= time_budget:
            break
        began = time.perf_counter()
        chunk = [records[i] for i in order[start : start + window]]
        results = decoder.decode([(r, protocol.prompt) for r in chunk])
        batch = [
            _row(record, result, protocol) for record, result in zip(chunk, results, strict=True)
        ]
        calls += sum(result.model_calls for result in results)
        seconds += time.perf_counter() - began
        rows += batch
        log.append(batch, seconds, calls)
        fault_point("eval.after_batch")

    report: dict[str, Any] = {
        "corpus": corpus,
        "split": split,
        "prompt_label_set": protocol.prompt,
        "target_label_set": protocol.target,
        "context_turns": turns,
        "decode": {
            "mode": decode.mode,
            "use_cache": decode.use_cache,
            "vad": decode.vad,
            "labels": labels,
        },
        # thresholds fitted on the corpus's dev split (decode.labels calibrated), with their
        # cost in seconds (not part of `seconds`, which times the decoding of this split)
        "calibration": calibration.summary() if calibration else None,
        "examples_total": len(records),
        "examples_evaluated": len(rows),
        "time_budget_s": time_budget,
        "seconds": round(seconds, 2),
        "examples_per_s": round(len(rows) / seconds, 3) if seconds else None,
        "model_calls_per_example": round(calls / len(rows), 2) if rows else None,
        "seed": seed,
        "resamples": resamples,
    }
    if protocol.target is not None:
        labels = LABEL_SETS[protocol.target].labels
        report["metrics"] = evaluate_rows(
            rows, labels, exclude=protocol.exclude, seed=seed, resamples=resamples
        )
        if corpus == "goemotions":
            report["ekman"] = _ekman_view(rows)
        if protocol.exclude:  # DailyDialog: both conventions, strict view
            cls = report["metrics"]["strict"]["classification"]
            report["macro_f1_all_classes"] = cls["all_labels"]["macro_f1"]
            report["macro_f1_without_excluded"] = cls["macro_f1"]
    else:
        ok = [r for r in rows if r["parse_ok"]]
        gold = np.array([r["gold_vad"] for r in rows])
        pred = np.array([r["pred_vad"] if r["parse_ok"] else [0.5, 0.5, 0.5] for r in rows])
        report["metrics"] = {
            "n": len(rows),
            "parse_ok": len(ok) / len(rows) if rows else None,
            "strict": {"vad": vad_metrics(gold, pred)},
        }
    _write(out_dir, corpus, split, rows, report)
    log.remove()
    return report


class _PartialLog:
    """The resumable per-example log of one evaluation in progress."""

    def __init__(
        self, out_dir: Path, name: str, ids: list[str], decode: DecodeConfig, turns: int
    ) -> None:
        self.rows_path = out_dir / "predictions" / f"{name}.jsonl.partial"
        self.state_path = out_dir / "predictions" / f"{name}.partial.json"
        # What the rows already written must agree with: the same examples in the same order,
        # prompted and decoded the same way.
        blob = json.dumps(
            {"ids": ids, "decode": dataclasses.asdict(decode), "context_turns": turns},
            sort_keys=True,
        )
        self.key = hashlib.sha256(blob.encode()).hexdigest()

    def start(self) -> tuple[list[dict[str, Any]], float, int]:
        self.rows_path.parent.mkdir(parents=True, exist_ok=True)
        self.rows_path.write_bytes(b"")
        self.count = 0
        self._save_state(0.0, 0)
        return [], 0.0, 0

    def restore(self) -> tuple[list[dict[str, Any]], float, int]:
        if not self.state_path.is_file() or not self.rows_path.is_file():
            return self.start()
        state = json.loads(self.state_path.read_text(encoding="utf-8"))
        if state.get("key") != self.key:
            raise EmoloomError(
                f"{self.state_path}: the partial evaluation was made with other examples or "
                "decoding settings; delete it to start over"
            )
        # Rows appended after the last state write (a kill in between) are decoded again, so
        # the seconds and model calls stay those of the rows kept.
        lines = self.rows_path.read_bytes().split(b"\n")[: state["rows"]]
        with atomic_write(self.rows_path, "wb") as f:
            f.write(b"".join(line + b"\n" for line in lines))
        self.count = len(lines)
        return [json.loads(line) for line in lines], state["seconds"], state["calls"]

    def append(self, batch: list[dict[str, Any]], seconds: float, calls: int) -> None:
        with self.rows_path.open("a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in batch))
            f.flush()
            os.fsync(f.fileno())
        self.count += len(batch)
        self._save_state(seconds, calls)

    def _save_state(self, seconds: float, calls: int) -> None:
        state = {"key": self.key, "rows": self.count, "seconds": seconds, "calls": calls}
        with atomic_write(self.state_path) as f:
            json.dump(state, f)

    def remove(self) -> None:
        self.rows_path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)


def _ekman_view(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """GoEmotions scored at the Ekman level (official mapping), strict view."""
    gold = [map_labels(r["gold_labels"], "goemotions", "ekman") for r in rows]
    pred = [
        map_labels(r["pred_labels"], "goemotions", "ekman") if r["parse_ok"] else () for r in rows
    ]
    m = classification_metrics(gold, pred, LABEL_SETS["ekman"].labels)
    return {k: m[k] for k in ("macro_f1", "macro_recall", "micro_f1", "exact_match")}


def _write(out_dir: Path, corpus: str, split: str, rows: list[dict], report: dict) -> None:
    name = f"{corpus}-{split}"
    with atomic_write(out_dir / "predictions" / f"{name}.jsonl") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    with atomic_write(out_dir / "eval" / f"{name}.json") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


def polarity(
    cfg: TrainConfig,
    backbone: Backbone,
    decode: DecodeConfig,
    *,
    corpus: str = "goemotions",
    split: str = "dev",
    limit: int | None = None,
    calibration_dir: Path | None = None,
) -> dict[str, Any]:
    """Polarity sensitivity on Valence-Flipped pairs: does the prediction flip with the text?

    With decode.labels calibrated, the thresholds are those of `corpus` fitted on its dev split
    (cached in `calibration_dir`, as `evaluate` caches them).

    valence_flip_rate: predicted valence of the original and the flipped text fall on opposite
    sides of 0.5, in the direction of their gold valences; label_flip_rate: the flipped text's
    predicted labels are the mirrors of the original's; polarity_flip_rate: both at once.
    """
    protocol = PROTOCOLS[corpus]
    label_set = LABEL_SETS[protocol.prompt]
    turns = protocol_turns(cfg, corpus)
    loaded = read_split(cfg, corpus, split)
    flipped = valence_flip(loaded.records, label_set)[:limit]
    parents = {r.id: r for r in loaded.records}
    originals = [parents[f.meta["parent"]] for f in flipped]
    thresholds = None
    if decode.labels == "calibrated":
        if calibration_dir is None:
            raise EmoloomError("polarity with decode.labels=calibrated needs a calibration_dir")
        cal = load_or_fit(
            cfg, backbone, corpus, cache_dir=calibration_dir, rows=decode.calibration_rows,
            context_turns=turns,
        )  # fmt: skip
        thresholds = {protocol.prompt: cal.thresholds}
    decoder = make_decoder(with_turns(cfg, turns), backbone, [protocol.prompt], decode, thresholds)
    started = time.perf_counter()
    a = decoder.decode([(r, protocol.prompt) for r in originals])
    b = decoder.decode([(r, protocol.prompt) for r in flipped])
    seconds = time.perf_counter() - started
    mirror = MIRROR_PAIRS[label_set.name]
    valence = labels = both = 0
    for orig, flip, ra, rb in zip(originals, flipped, a, b, strict=True):
        if ra.prediction is None or rb.prediction is None:
            continue
        direction = np.sign(orig.vad.v - flip.vad.v)  # type: ignore[union-attr]
        va, vb = ra.prediction.vad[0], rb.prediction.vad[0]
        v_ok = (va - 0.5) * (vb - 0.5) < 0 and np.sign(va - vb) == direction
        expected = {mirror.get(lab) for lab in ra.prediction.labels}
        l_ok = None not in expected and set(rb.prediction.labels) == expected
        valence += v_ok
        labels += l_ok
        both += v_ok and l_ok
    n = len(flipped)
    return {
        "corpus": corpus,
        "split": split,
        "pairs": n,
        "valence_flip_rate": valence / n if n else None,
        "label_flip_rate": labels / n if n else None,
        "polarity_flip_rate": both / n if n else None,
        "seconds": round(seconds, 2),
    }


def compare_cache(
    cfg: TrainConfig,
    backbone: Backbone,
    corpus: str,
    split: str,
    decode: DecodeConfig,
    *,
    limit: int = 200,
) -> dict[str, Any]:
    """KV-off vs KV-on on the same rows: label agreement, VAD max |Δ|, byte-identical share."""
    protocol = PROTOCOLS[corpus]
    loaded = read_split(cfg, corpus, split)
    rows = [(r, protocol.prompt) for r in loaded.records[:limit]]
    results = {}
    timings = {}
    for use_cache in (False, True):
        config = dataclasses.replace(decode, use_cache=use_cache)
        decoder = make_decoder(
            with_turns(cfg, protocol_turns(cfg, corpus)), backbone, [protocol.prompt], config
        )
        started = time.perf_counter()
        results[use_cache] = decoder.decode(rows)
        timings[use_cache] = time.perf_counter() - started
    off, on = results[False], results[True]
    same_labels = sum(
        (x.prediction and y.prediction and x.prediction.labels == y.prediction.labels) or False
        for x, y in zip(off, on, strict=True)
    )
    vad_diff = max(
        (
            max(abs(p - q) for p, q in zip(x.prediction.vad, y.prediction.vad, strict=True))
            for x, y in zip(off, on, strict=True)
            if x.prediction and y.prediction
        ),
        default=None,
    )
    identical = sum(x.raw == y.raw for x, y in zip(off, on, strict=True))
    n = len(rows)
    return {
        "corpus": corpus,
        "split": split,
        "examples": n,
        "mode": decode.mode,
        "label_agreement": same_labels / n if n else None,
        "vad_max_abs_diff": vad_diff,
        "byte_identical_share": identical / n if n else None,
        "seconds_kv_off": round(timings[False], 2),
        "seconds_kv_on": round(timings[True], 2),
    }
