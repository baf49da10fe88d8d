"""Cost scaling: training and decoding examples/s vs text length and label count; peak memory vs batch.

    python bench/scaling.py                                  # the measured configuration
    python bench/scaling.py --steps 1 --warmup-steps 0 --lengths 32,64 --label-sets dailydialog \\
        --batch-sizes 8 --memory-grad-accum 1 --rows 32 --decode-rows 4 --out /tmp/s.json \\
        --plot /tmp/s.png                                    # smoke
    python bench/scaling.py --plot-only                      # redraw docs/scaling.png from the JSON
    python bench/scaling.py --run runs/default               # decode with a trained run

Issue 6, item 4. Every figure uses the default backbone (``minilm``: all-MiniLM-L6-v2 run as a
causal decoder) and the default recipe of configs/default.yaml (all components on: Valence Flip,
A/B mixture, VAD loss, appraisal guidance; its optimizer and its `grad_accum` of 4), with
`prompt.max_length` raised to 512 so that no prompt is truncated (the default 256 would cut the
256-token texts). Inputs are texts of *exactly* N WordPiece tokens (checked with the
tokenizer): words of GoEmotions train texts, in order, from a different place of the stream for
each row, skipping any word that would overshoot N (synthetic sentences when the data
directory is absent). Each row gets one label drawn uniformly (seed 0) from the label set and a
seeded VAD, so the answer's length does not depend on the text; the JSON records the resulting
prompt, answer and total sequence lengths.

1. Training examples/s and tokens/s (non-padding tokens) vs text length (`--lengths`):
   `emoloom.trainer.Trainer`, GoEmotions label set, global batch 32 in 4 micro-batches,
   `--warmup-steps` untimed steps then `--steps` timed ones (wall clock between step ends, as
   bench/train_speed.py). Checkpoints are not written (the save is stubbed out).
2. Decode examples/s vs text length: `emoloom.inference.make_decoder`, constrained, KV-off,
   batch 32, `--decode-rows` rows after an untimed 4-row warm-up; model calls per example. The
   untrained minilm backbone unless `--run RUN_DIR`.
3. Training and decode examples/s vs the number of labels: the three single-corpus label sets
   (dailydialog 7, goemotions 28, empathetic 32) x `prompt.list_labels` off/on, at text length
   `--fixed-length` (64). With the short prompt the label set only changes the prompt's first
   line, the answers trained on and the decoder's label decisions (their number depends on
   the model's choices: the untrained model picks several GoEmotions labels); `list_labels`
   spells every label name out in the prompt, so there the prompt grows with the label count.
4. Peak RSS during training (`emoloom.memory.PeakMemory` around `Trainer.train()`, reset at its
   start; the process also holds the model, data and libraries, so `rss_before_mb` is given
   too) vs batch size (`--batch-sizes`), with micro-batch = batch (`grad_accum` 1) and with the
   default recipe's split into 4 micro-batches, at text length `--fixed-length`; points only
   this figure uses run `--memory-steps` timed steps after the warm-up.

Every training point runs in its own subprocess (so peaks do not mix); identical points are
measured once and shared between the figures. Decoding runs in one subprocess. Writes
bench/results/scaling.json and docs/scaling.png (three panels; redrawn from the JSON alone with
`--plot-only`); `--markdown PATH` also writes the tables as a Markdown draft.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "bench" / "scaling"
RESULTS = Path(__file__).parent / "results"
CONFIG = ROOT / "configs" / "default.yaml"
BATCH = 32
MAX_LENGTH = 512  # MiniLM's position limit; no prompt of this benchmark gets truncated
DEFAULT_MICRO = 4  # configs/default.yaml optim.grad_accum
SEED = 0

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import provenance  # noqa: E402

# ----------------------------------------------------------------------------------- texts


def _synthetic(n: int) -> list[str]:
    rng = random.Random(SEED)
    who = ("I", "my sister", "the new manager", "our whole team", "everyone here", "that guy")
    did = ("really loved", "could not stand", "was surprised by", "kept laughing about")
    what = ("the ending of the show", "this whole situation", "the long wait", "your last post")
    return [f"{rng.choice(who)} {rng.choice(did)} {rng.choice(what)}." for _ in range(n)]


def source_words(limit: int = 6000) -> tuple[list[str], str]:
    """Words of the first `limit` GoEmotions train texts, else of synthetic sentences."""
    from emoloom.data import load_split
    from emoloom.data.registry import resolve_data_dir
    from emoloom.lexicon import WeakVADConfig

    data_dir = resolve_data_dir()
    if data_dir is not None and (data_dir / "goemotions").is_dir():
        loaded = load_split(
            "goemotions", "train", data_dir=data_dir, weak_vad=WeakVADConfig(lexicon="none")
        )
        texts, source = [r.text for r in loaded.records[:limit]], f"GoEmotions train ({data_dir})"
    else:
        texts, source = _synthetic(limit), "synthetic sentences (no data directory)"
    return " ".join(texts).split(), source


def exact_texts(tokenizer: Any, words: list[str], n_tokens: int, rows: int) -> list[str]:
    """`rows` texts of exactly `n_tokens` WordPiece tokens. BERT tokenises each
    whitespace-separated word on its own, so a text's count is the sum of its words' counts:
    take words in order from a different place for each row, skipping any that would overshoot."""
    unique = sorted(set(words))
    counts = dict(
        zip(unique, map(len, tokenizer(unique, add_special_tokens=False)["input_ids"]), strict=True)
    )
    stride = max(1, len(words) // rows)
    texts = []
    for i in range(rows):
        pos, picked, total = i * stride, [], 0
        while total < n_tokens:
            word = words[pos % len(words)]
            pos += 1
            if 0 < counts[word] <= n_tokens - total:
                picked.append(word)
                total += counts[word]
        text = " ".join(picked)
        assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == n_tokens, text
        texts.append(text)
    return texts


def write_rows(texts: list[str], label_set: str, path: Path) -> None:
    """Contract JSONL: one uniformly drawn label and a seeded VAD per row (no lexicon needed)."""
    from emoloom.labels import get_label_set

    labels = get_label_set(label_set).labels
    rng = random.Random(SEED)
    with path.open("w", encoding="utf-8") as f:
        for i, text in enumerate(texts):
            vad = {k: round(rng.uniform(0.05, 0.95), 2) for k in "vad"}
            row = {"id": f"scaling-{i}", "text": text, "labels": [rng.choice(labels)], "vad": vad}
            f.write(json.dumps(row) + "\n")


# ------------------------------------------------------------------------------- training


def point_key(label_set: str, list_labels: bool, length: int, batch: int, micro: int) -> str:
    return f"{label_set}-{'list' if list_labels else 'short'}-t{length}-b{batch}-m{micro}"


def train_config(spec: dict) -> Any:
    from emoloom.config import load_config

    data = f"[{{corpus: jsonl, path: '{spec['data']}', label_set: {spec['label_set']}}}]"
    overrides = [
        f"data.train={data}",
        "data.dev=[]",
        f"prompt.max_length={MAX_LENGTH}",
        f"prompt.list_labels={str(spec['list_labels']).lower()}",
        f"optim.batch_size={spec['batch']}",
        f"optim.grad_accum={spec['micro']}",
        f"budget.max_steps={spec['warmup_steps'] + spec['steps']}",
        "budget.max_wall_seconds=null",
        f"output_dir={WORK / 'train'}",
        f"run_name={spec['key']}-{os.getpid()}",
    ]
    return load_config(CONFIG, overrides)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_train(spec: dict) -> dict:
    """One training point: time the steps after the warm-up, peak RSS of `train()`."""
    from emoloom.memory import PeakMemory
    from emoloom.trainer import Trainer

    trainer = Trainer(train_config(spec))
    trainer.setup()
    pool = [e.encoded for e in trainer.data.pool_a]
    assert trainer.data.truncated == 0, "a prompt was truncated: raise MAX_LENGTH"
    stamps: list[tuple[float, float, int]] = []
    step = trainer._train_step

    def timed() -> dict:
        out = step()
        stamps.append((time.perf_counter(), time.process_time(), trainer.tokens_seen))
        return out

    trainer._train_step = timed
    trainer.save_checkpoint = lambda: None  # not part of a step; keeps runs/ small
    rss_before = _rss_mb()
    start = (time.perf_counter(), time.process_time(), 0)
    try:
        with PeakMemory() as mem:
            trainer.train()
    finally:
        trainer.cleanup()
    w = spec["warmup_steps"]
    assert len(stamps) == w + spec["steps"], f"timed {len(stamps)} steps"
    (wall0, cpu0, tok0), (wall1, cpu1, tok1) = (stamps[w - 1] if w else start), stamps[-1]
    window = [start, *stamps][w:]
    walls = sorted(b[0] - a[0] for a, b in zip(window, window[1:], strict=False))
    examples = spec["steps"] * spec["batch"]
    return {
        "examples_per_s": round(examples / (wall1 - wall0), 3),
        "tokens_per_s": round((tok1 - tok0) / (wall1 - wall0), 1),
        "median_step_seconds": round(walls[len(walls) // 2], 3),
        "cpu_seconds_per_example": round((cpu1 - cpu0) / examples, 4),
        "tokens_per_example_timed": round((tok1 - tok0) / examples, 1),
        "peak_rss_mb": round(mem.rss_mb),
        "rss_before_mb": round(rss_before),
        "memory_scope": mem.scope,
        "pool_a_rows": len(pool),
        "pool_b_rows": len(trainer.data.pool_b),
        "mean_prompt_tokens": round(sum(e.prompt_len for e in pool) / len(pool), 1),
        "mean_answer_tokens": round(sum(e.supervised for e in pool) / len(pool), 1),
        "mean_sequence_tokens": round(sum(len(e.input_ids) for e in pool) / len(pool), 1),
        "max_sequence_tokens": max(len(e.input_ids) for e in pool),
    }


# ------------------------------------------------------------------------------- decoding


def load_decode_model(run: str | None) -> tuple[Any, Any, str]:
    from emoloom.inference import load_model

    if run:
        cfg, backbone = load_model(run=run)
        return cfg, backbone, f"trained run {run} (latest checkpoint)"
    cfg, backbone = load_model(model="minilm")
    return cfg, backbone, "untrained minilm backbone"


def run_decode(spec: dict) -> dict:
    """Every decode point in one process: one decoder per (label set, list_labels), reused
    across text lengths, warmed up on 4 rows before its first timed batch."""
    import torch

    from emoloom.contract import Record
    from emoloom.decoding import DecodeConfig
    from emoloom.inference import make_decoder

    torch.manual_seed(SEED)
    cfg, backbone, source = load_decode_model(spec["run"])
    config = DecodeConfig("constrained", use_cache=False, batch_size=spec["batch_size"])
    decoders: dict[tuple[str, bool], Any] = {}
    out: dict[str, Any] = {"model": source, "decode_config": dataclasses.asdict(config)}
    for point in spec["points"]:
        label_set, list_labels = point["label_set"], point["list_labels"]
        texts = Path(point["texts"]).read_text(encoding="utf-8").splitlines()[: spec["rows"]]
        rows = [(Record(id=f"scaling-{i}", text=t), label_set) for i, t in enumerate(texts)]
        decoder = decoders.get((label_set, list_labels))
        if decoder is None:
            prompt = dataclasses.replace(cfg.prompt, max_length=MAX_LENGTH, list_labels=list_labels)
            decoder = make_decoder(
                dataclasses.replace(cfg, prompt=prompt),
                backbone,
                [label_set],
                config,
            )
            decoders[(label_set, list_labels)] = decoder
            decoder.decode(rows[:4])  # untimed warm-up
        prompts = [len(decoder.encoders[label_set].encode(r).input_ids) for r, _ in rows]
        t0 = time.perf_counter()
        results = decoder.decode(rows)
        seconds = time.perf_counter() - t0
        n = len(rows)
        out[point["key"]] = {
            "rows": n,
            "examples_per_s": round(n / seconds, 3),
            "seconds": round(seconds, 2),
            "model_calls_per_example": round(sum(r.model_calls for r in results) / n, 2),
            "row_calls_per_s": round(sum(r.model_calls for r in results) / seconds, 2),
            "labels_per_example": round(sum(len(r.prediction.labels) for r in results) / n, 2),
            "mean_prompt_tokens": round(sum(prompts) / n, 1),
            "mean_answer_tokens": round(sum(r.generated_tokens for r in results) / n, 1),
        }
        print(f"  decode {point['key']}: {out[point['key']]}", flush=True)
    return out


# --------------------------------------------------------------------------------- parent


def worker_call(kind: str, spec: dict) -> dict:
    """Run one worker in a fresh process; return its JSON result."""
    WORK.mkdir(parents=True, exist_ok=True)
    spec_path = WORK / f"spec-{spec.get('key', kind)}.json"
    result_path = spec_path.with_name(spec_path.name.replace("spec-", "result-"))
    spec_path.write_text(json.dumps(spec))
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--worker", kind, "--spec", str(spec_path)]
    cmd += ["--result", str(result_path)]
    subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(result_path.read_text())


def plan(args: argparse.Namespace) -> tuple[dict[str, dict], dict[str, list]]:
    """The unique training points, and which of them each figure uses."""
    points: dict[str, dict] = {}
    views: dict[str, list] = {"length": [], "labels": [], "memory": []}

    def add(view: str, label_set: str, list_labels: bool, length: int, batch: int, micro: int):
        key = point_key(label_set, list_labels, length, batch, micro)
        data = WORK / "data" / f"{label_set}-t{length}.jsonl"
        steps = args.memory_steps if view == "memory" else args.steps
        points.setdefault(  # a point both figures use keeps the speed figures' step count
            key,
            dict(key=key, label_set=label_set, list_labels=list_labels, length=length,
                 batch=batch, micro=micro, data=str(data), steps=steps,
                 warmup_steps=args.warmup_steps),
        )  # fmt: skip
        views[view].append(key)

    for n in args.lengths:
        add("length", "goemotions", False, n, BATCH, DEFAULT_MICRO)
    for label_set in args.label_sets:
        for list_labels in (False, True):
            add("labels", label_set, list_labels, args.fixed_length, BATCH, DEFAULT_MICRO)
    for micro in args.memory_grad_accum:
        for batch in args.batch_sizes:
            if batch % micro == 0:
                add("memory", "goemotions", False, args.fixed_length, batch, micro)
    return points, views


def prepare_data(args: argparse.Namespace, points: dict[str, dict]) -> str:
    """Write the JSONL rows every point needs; returns where the words came from."""
    from transformers import AutoTokenizer

    from emoloom.modeling import minilm_dir

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    words, source = source_words()
    (WORK / "data").mkdir(parents=True, exist_ok=True)
    lengths = sorted({p["length"] for p in points.values()} | set(args.lengths))
    texts = {n: exact_texts(tokenizer, words, n, args.rows) for n in lengths}
    for n, rows in texts.items():
        (WORK / "data" / f"t{n}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for p in points.values():
        write_rows(texts[p["length"]], p["label_set"], Path(p["data"]))
    return source


def decode_points(args: argparse.Namespace) -> list[dict]:
    def point(label_set: str, list_labels: bool, n: int) -> dict:
        key = f"{label_set}-{'list' if list_labels else 'short'}-t{n}"
        texts = str(WORK / "data" / f"t{n}.txt")
        return dict(key=key, label_set=label_set, list_labels=list_labels, length=n, texts=texts)

    out = [point("goemotions", False, n) for n in args.lengths]
    for label_set in args.label_sets:
        for list_labels in (False, True):
            p = point(label_set, list_labels, args.fixed_length)
            if p["key"] not in {q["key"] for q in out}:
                out.append(p)
    return out


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from emoloom.labels import get_label_set

    started = time.perf_counter()
    points, views = plan(args)
    source = prepare_data(args, points)
    result: dict[str, Any] = {
        **provenance(),
        "setup": {
            "backbone": "minilm (all-MiniLM-L6-v2 as a causal decoder, fully fine-tuned)",
            "recipe": f"{CONFIG.relative_to(ROOT)}: every component on, its optimizer; prompt.max_length {MAX_LENGTH} (no truncation); data.dev empty; checkpoints not written",
            "texts": f"exactly N WordPiece tokens of text per row, words of {source}; one uniformly drawn label and a seeded VAD per row",
            "train_rows": args.rows,
            "steps_timed": args.steps,
            "warmup_steps_untimed": args.warmup_steps,
            "train_batch": BATCH,
            "train_micro_batches": DEFAULT_MICRO,
            "decode": f"constrained, KV-off, batch {args.decode_batch}, {args.decode_rows} rows per point after a 4-row warm-up",
            "decode_model": "untrained minilm" if not args.run else args.run,
            "labels_design": f"label sets x prompt.list_labels off/on at {args.fixed_length} text tokens: with the short prompt the label count only changes the answer and the decoder's decisions; list_labels adds every label name to the prompt",
            "memory": f"peak RSS of Trainer.train() (emoloom.memory.PeakMemory, high-water mark reset when train() starts) per batch size, {args.fixed_length} text tokens, each point in its own process, {args.warmup_steps} + {args.memory_steps} steps for points only this figure uses (their examples/s come from {args.memory_steps} timed step(s)); micro_batches 1 = the whole batch in one forward/backward",
            "dtype": "float32",
            "seed": SEED,
        },
    }
    print(f"{len(points)} training points; decoding first", flush=True)
    spec = dict(key="decode", run=args.run, rows=args.decode_rows, batch_size=args.decode_batch,
                points=decode_points(args))  # fmt: skip
    t0 = time.perf_counter()
    decoded = worker_call("decode", spec)
    result["decode_seconds"] = round(time.perf_counter() - t0)
    result["decode_model"] = decoded.pop("model")
    result["decode_config"] = decoded.pop("decode_config")
    trained: dict[str, dict] = {}
    for key, spec in points.items():
        t0 = time.perf_counter()
        trained[key] = worker_call("train", spec)
        print(f"  train {key} ({time.perf_counter() - t0:.0f} s): {trained[key]}", flush=True)

    result["text_length"] = [
        {"text_tokens": n, "train": trained[key], "decode": decoded[f"goemotions-short-t{n}"]}
        for n, key in zip(args.lengths, views["length"], strict=True)
    ]
    result["labels"] = []
    for key in views["labels"]:
        p = points[key]
        dkey = f"{p['label_set']}-{'list' if p['list_labels'] else 'short'}-t{p['length']}"
        result["labels"].append(
            {
                "label_set": p["label_set"],
                "labels": len(get_label_set(p["label_set"]).labels),
                "list_labels": p["list_labels"],
                "text_tokens": p["length"],
                "train": trained[key],
                "decode": decoded[dkey],
            }
        )
    result["memory"] = [
        {
            "batch": points[key]["batch"],
            "micro_batches": points[key]["micro"],
            "micro_batch_size": points[key]["batch"] // points[key]["micro"],
            "text_tokens": points[key]["length"],
            "steps_timed": points[key]["steps"],
            **{k: trained[key][k] for k in ("peak_rss_mb", "rss_before_mb", "examples_per_s")},
        }
        for key in views["memory"]
    ]
    result["wall_seconds"] = round(time.perf_counter() - started)
    return result


# ----------------------------------------------------------------------------- plot, table


def plot(result: dict, path: Path) -> None:
    """Three panels, drawn from the JSON alone (so `--plot-only` redraws the same figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"train": "tab:blue", "decode": "tab:orange"}
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 3.8))
    lengths = [r["text_tokens"] for r in result["text_length"]]
    for part in colors:
        a.plot(lengths, [r[part]["examples_per_s"] for r in result["text_length"]],
               marker="o", color=colors[part], label=f"{part} (batch 32)")  # fmt: skip
    a.set_xscale("log", base=2)
    a.set_xticks(lengths, [str(n) for n in lengths])
    a.set(xlabel="text tokens", ylabel="examples/s", title="Speed vs text length")
    for part in colors:
        for listed, style in ((False, "-"), (True, "--")):
            rows = sorted(
                (r for r in result["labels"] if r["list_labels"] == listed),
                key=lambda r: r["labels"],
            )
            b.plot([r["labels"] for r in rows], [r[part]["examples_per_s"] for r in rows],
                   style, marker="o" if listed else "s", color=colors[part],
                   label=f"{part}, {'labels listed' if listed else 'short prompt'}")  # fmt: skip
    if result["labels"]:
        text = result["labels"][0]["text_tokens"]
        ticks = sorted({(r["labels"], r["label_set"]) for r in result["labels"]})
        b.set_xticks([n for n, _ in ticks], [str(n) for n, _ in ticks])
        b.set(xlabel="labels: " + ", ".join(f"{name} {n}" for n, name in ticks),
              ylabel="examples/s", title=f"Speed vs labels ({text} text tokens)")  # fmt: skip
    for micro in sorted({r["micro_batches"] for r in result["memory"]}):
        rows = sorted((r for r in result["memory"] if r["micro_batches"] == micro),
                      key=lambda r: r["batch"])  # fmt: skip
        c.plot([r["batch"] for r in rows], [r["peak_rss_mb"] for r in rows], marker="o",
               label=f"{micro} micro-batch{'es' if micro > 1 else ''}")  # fmt: skip
    batches = sorted({r["batch"] for r in result["memory"]})
    c.set_xscale("log", base=2)
    c.set_xticks(batches, [str(x) for x in batches])
    c.set(xlabel="batch size", ylabel="peak RSS (MB)", title="Training peak memory vs batch")
    for ax in (a, b, c):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def markdown(result: dict) -> str:
    """The tables of the result, for docs/benchmarks.md."""
    m = result["machine"]
    lines = [
        f"Command: `{result['command']}` ({result['date']}, {m['cpu']}, {m['cores']} cores, "
        f"torch {m['torch']}, {result['wall_seconds']} s in all). Decoding: {result['decode_model']}, "
        f"decode config {result.get('decode_config', {})}.",
        "",
        "| text tokens | sequence tokens (prompt + answer) | train ex/s | train tokens/s | train peak RSS MB | decode ex/s | decode model calls/ex |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["text_length"]:
        t, d = r["train"], r["decode"]
        lines.append(
            f"| {r['text_tokens']} | {t['mean_sequence_tokens']} ({t['mean_prompt_tokens']} + {t['mean_answer_tokens']}) "
            f"| {t['examples_per_s']} | {t['tokens_per_s']:.0f} | {t['peak_rss_mb']} | {d['examples_per_s']} | {d['model_calls_per_example']} |"
        )
    lines += [
        "",
        "| label set | labels | labels listed | prompt tokens | train ex/s | decode ex/s | decode model calls/ex |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in result["labels"]:
        t, d = r["train"], r["decode"]
        lines.append(
            f"| {r['label_set']} | {r['labels']} | {'yes' if r['list_labels'] else 'no'} | {t['mean_prompt_tokens']} "
            f"| {t['examples_per_s']} | {d['examples_per_s']} | {d['model_calls_per_example']} |"
        )
    lines += [
        "",
        "| batch | micro-batches | micro-batch size | peak RSS MB | RSS before training MB | train ex/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(result["memory"], key=lambda r: (r["micro_batches"], r["batch"])):
        lines.append(
            f"| {r['batch']} | {r['micro_batches']} | {r['micro_batch_size']} | {r['peak_rss_mb']} "
            f"| {r['rss_before_mb']} | {r['examples_per_s']} |"
        )
    return "\n".join(lines) + "\n\n![scaling](scaling.png)\n"


# ----------------------------------------------------------------------------------- main


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=_ints, default=[32, 64, 128, 256], help="text tokens")
    parser.add_argument("--fixed-length", type=int, default=64, help="text tokens, label/memory sweeps")  # fmt: skip
    parser.add_argument("--label-sets", type=lambda s: s.split(","), default=["dailydialog", "goemotions", "empathetic"])  # fmt: skip
    parser.add_argument("--batch-sizes", type=_ints, default=[8, 16, 32, 64])
    parser.add_argument("--memory-grad-accum", type=_ints, default=[1, DEFAULT_MICRO], help="micro-batch splits for the memory sweep")  # fmt: skip
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per point")
    parser.add_argument("--warmup-steps", type=int, default=1, help="untimed steps before")
    parser.add_argument("--memory-steps", type=int, default=1, help="timed steps, memory-only points")  # fmt: skip
    parser.add_argument("--rows", type=int, default=128, help="training rows (pool A) per point")
    parser.add_argument("--decode-rows", type=int, default=32)
    parser.add_argument("--decode-batch", type=int, default=32)
    parser.add_argument("--run", help="decode with this trained run instead of untrained minilm")
    parser.add_argument("--out", default=str(RESULTS / "scaling.json"))
    parser.add_argument("--plot", default=str(ROOT / "docs" / "scaling.png"))
    parser.add_argument("--markdown", help="also write the tables as Markdown here")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from --out")
    parser.add_argument("--worker", choices=("train", "decode"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        out = run_train(spec) if args.worker == "train" else run_decode(spec)
        Path(args.result).write_text(json.dumps(out))
        return
    if args.plot_only:
        result = json.loads(Path(args.out).read_text())
    else:
        result = measure(args)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    plot(result, Path(args.plot))
    if args.markdown:
        Path(args.markdown).write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
