"""Training speed: emoloom's trainer vs TRL `SFTTrainer` vs plain HF `Trainer`, side by side.

    pip install -c constraints.txt -e ".[bench]"       # trl, pinned
    python bench/train_speed.py                       # the measured configuration
    python bench/train_speed.py --steps 2 --warmup-steps 1 --train-rows 200 --eval-rows 32  # smoke
    python bench/train_speed.py --backbones minilm-long --trainers emoloom,trl  # the issue's prompt

Same backbone weights, same token sequences (emoloom's `PromptEncoder` output: prompt +
contract line + eos, loss on the completion only), same optimizer steps over the same examples
in the same order (emoloom's uniform sampler draws, replayed to the baselines with
``train_sampling_strategy="sequential"``), global batch 32, AdamW (lr, weight decay, cosine
schedule with warm-up, grad-norm clip 1.0), fp32 weights, seed 0; the forward in fp32, or with
``--precision bf16`` under bf16 autocast for every trainer (emoloom's
`optim.mixed_precision: bf16`, TRL's and HF's ``bf16=True``). Each trainer runs in its own
subprocess, one after the other, so peak memory does not mix.

- ``emoloom``: `emoloom.trainer.Trainer` with the components the baselines lack switched off
  (Valence Flip, A/B mixture, VAD loss, appraisal guidance): the LM loss alone, computed at the
  answer positions only, over 4 length-sorted micro-batches of 8 (the default recipe's split).
- ``emoloom_full``: the full default recipe (all components on; the mixture draws other rows,
  so its loss is not comparable). Reported as a second emoloom row.
- ``trl``: `trl.SFTTrainer`, `completion_only_loss=True` on a pre-tokenised dataset
  (input_ids + completion_mask), one batch of 32, TRL's defaults otherwise except the precision
  (TRL defaults to bf16; here ``--precision``), gradient checkpointing off (TRL defaults it on;
  off is faster) and `padding_free=False` (its default; padding-free needs flash attention).
- ``hf_trainer``: `transformers.Trainer` with labels = input_ids masked to -100 on the prompt,
  `DataCollatorForSeq2Seq` padding, one batch of 32.

Speed is examples per second over `--steps` optimizer steps timed after `--warmup-steps`
untimed ones (wall clock between the ends of steps, so data loading and logging count).
Loss: each trainer's own last training loss is printed, but the trainers average differently
(emoloom: mean of per-micro-batch token means; TRL and HF: token mean over the batch), so the
comparable figure is the same function evaluated after training on every trainer's model: the
token-mean cross-entropy of the completion tokens of `--eval-rows` GoEmotions dev rows, in eval
mode. Writes bench/results/train_speed.json.

Backbones: ``minilm`` (all-MiniLM-L6-v2 run as a causal decoder, 22.7M parameters),
``minilm-long`` (the same with `prompt.list_labels: true`, the 28-label prompt the issue's TRL
baseline used), ``qwen2-20m`` (a random Qwen2 built here, hidden 384, 6 layers, GQA 6/2 heads,
the MiniLM tokenizer, ~20M parameters).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emoloom.memory import PeakMemory

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "runs" / "bench"
RESULTS = Path(__file__).parent / "results"
TRAINERS = ("emoloom", "trl", "hf_trainer", "emoloom_full")
BACKBONES = ("minilm", "minilm-long", "qwen2-20m")
BATCH = 32
LR, WEIGHT_DECAY, WARMUP, MAX_GRAD_NORM, SEED = 2e-4, 0.01, 3, 1.0, 0


# ------------------------------------------------------------------------------ backbones


def qwen2_tokenizer() -> Any:
    """A Qwen2-style byte-level BPE (Qwen2's pre-tokenizer regex: digits one by one; ChatML),
    32k tokens trained on GoEmotions train texts and prompt-like text. AutoTokenizer loads any
    tokenizer saved beside a qwen2 config as `Qwen2Tokenizer`, which rebuilds exactly this
    pipeline from the vocabulary and merges (a WordPiece vocabulary would come back garbled)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    from emoloom.data import load_split
    from emoloom.tiny import CHATML, _corpus

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=32000,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [r.text for r in load_split("goemotions", "train").records] + _corpus() * 50
    tok.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def qwen2_dir() -> Path:
    """A random ~20M-parameter Qwen2 (seed 0) with `qwen2_tokenizer()`, saved once."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    path = WORK / "qwen2-20m"
    if (path / "config.json").exists():
        return path
    tokenizer = qwen2_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=384,
        intermediate_size=896,
        num_hidden_layers=6,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(SEED)
    model = Qwen2ForCausalLM(config)
    tmp = path.with_name(path.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    reloaded = AutoTokenizer.from_pretrained(str(tmp))
    probe = "Task: goemotions emotion. Text: I can't believe it's 2.42 times better!!"
    assert reloaded(probe)["input_ids"] == tokenizer(probe)["input_ids"], "tokenizer drift"
    assert reloaded.eos_token_id == tokenizer.eos_token_id and reloaded.chat_template
    tmp.rename(path)
    return path


def model_name(backbone: str) -> str:
    return str(qwen2_dir()) if backbone == "qwen2-20m" else "minilm"


def emoloom_config(backbone: str, args: argparse.Namespace, *, full: bool, run_name: str):
    """The run config: the default recipe, on `--train-rows` GoEmotions train rows; `full`
    keeps every component, otherwise only the LM loss on uniformly drawn rows."""
    from emoloom.config import load_config

    overrides = [
        f"model.name={model_name(backbone)}",
        f"data.train=[{{corpus: goemotions, split: train, max_examples: {args.train_rows}}}]",
        "data.dev=[]",
        f"prompt.list_labels={'true' if backbone == 'minilm-long' else 'false'}",
        f"optim.lr={LR}",
        f"optim.weight_decay={WEIGHT_DECAY}",
        f"optim.warmup_steps={WARMUP}",
        f"optim.batch_size={BATCH}",
        f"optim.grad_accum={args.grad_accum}",
        f"optim.max_grad_norm={MAX_GRAD_NORM}",
        f"budget.max_steps={args.warmup_steps + args.steps}",
        "budget.max_wall_seconds=null",
        f"seed={SEED}",
        f"output_dir={WORK / 'train'}",
        f"run_name={run_name}",
        "log_every=1",
        "checkpoint_every=100000",
        "dev_max_examples=0",
        f"optim.mixed_precision={'bf16' if args.precision == 'bf16' else 'no'}",
    ]
    if not full:
        overrides += [
            "components.valence_flip=false",
            "components.mixture.enabled=false",
            "components.vad_loss=false",
            "components.appraisal=false",
        ]
    return load_config(ROOT / "configs" / "default.yaml", overrides)


def load_model(backbone: str):
    """(HF model, tokenizer) exactly as emoloom loads them (MiniLM: identity-initialised head)."""
    from emoloom.config import ModelConfig
    from emoloom.modeling import load_backbone
    from emoloom.seed import derive_seeds

    b = load_backbone(ModelConfig(name=model_name(backbone)), seed=derive_seeds(SEED)["model"])
    return b.model, b.tokenizer


# ---------------------------------------------------------------------------------- data


def prepare(backbone: str, args: argparse.Namespace) -> Path:
    """Encode the training rows and eval rows once; replay emoloom's sampler draws."""
    from transformers import AutoTokenizer

    from emoloom.config import DatasetSpec
    from emoloom.dataset import build_training_data
    from emoloom.modeling import minilm_dir
    from emoloom.sampler import ABMixtureSampler
    from emoloom.seed import derive_seeds

    cfg = emoloom_config(backbone, args, full=False, run_name="prepare")
    path = qwen2_dir() if backbone == "qwen2-20m" else minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    seeds = derive_seeds(cfg.seed)
    data = build_training_data(cfg, tokenizer, seeds)
    sampler = ABMixtureSampler(
        [e.classes for e in data.pool_a],
        len(data.pool_b),
        len(data.class_names),
        cfg.components.mixture,
        seed=seeds["sampler"],
    )
    order = []
    for _ in range(cfg.budget.max_steps):
        draws = sampler.sample(BATCH)
        assert all(kind == "A" for kind, _ in draws)
        order += [i for _, i in draws]
    # eval rows: the same encoding of GoEmotions dev rows (a seeded subset)
    dev = DatasetSpec("goemotions", "dev", max_examples=args.eval_rows)
    eval_cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, train=(dev,)))
    eval_data = build_training_data(eval_cfg, tokenizer, seeds)
    blob = {
        "train": [(e.encoded.input_ids, e.encoded.prompt_len) for e in data.pool_a],
        "order": order,
        "eval": [(e.encoded.input_ids, e.encoded.prompt_len) for e in eval_data.pool_a],
    }
    out = WORK / f"data-{backbone}.pkl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(blob))
    return out


def eval_loss(model: Any, examples: list[tuple[list[int], int]], pad_id: int) -> float:
    """Token-mean cross-entropy of the completion tokens, full HF forward, eval mode: the same
    function for every trainer's final model."""
    import torch
    import torch.nn.functional as F

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), 32):
            chunk = examples[start : start + 32]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            labels = torch.full_like(ids, -100)
            for b, (seq, prompt_len) in enumerate(chunk):
                ids[b, : len(seq)] = torch.tensor(seq)
                mask[b, : len(seq)] = 1
                labels[b, prompt_len : len(seq)] = torch.tensor(seq[prompt_len:])
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            total += float(loss)
            count += int((labels[:, 1:] != -100).sum())
    return total / count


# ------------------------------------------------------------------------------- workers


def run_emoloom(backbone: str, args: argparse.Namespace, blob: dict, full: bool) -> dict:
    from emoloom.trainer import Trainer

    name = f"{backbone}-{'full' if full else 'lm'}-{os.getpid()}"
    cfg = emoloom_config(backbone, args, full=full, run_name=name)
    trainer = Trainer(cfg)
    trainer.setup()
    if not full:  # the baselines get exactly these token sequences and these draws
        assert [e.encoded.input_ids for e in trainer.data.pool_a] == [t[0] for t in blob["train"]]
    draws: list[int] = []
    sample = trainer.sampler.sample

    def recorded(n: int) -> list[tuple[str, int]]:
        out = sample(n)
        draws.extend(i for _, i in out)
        return out

    trainer.sampler.sample = recorded
    stamps: list[tuple[float, float]] = []
    losses: list[float] = []
    step = trainer._train_step

    def timed() -> dict:
        out = step()
        stamps.append((time.perf_counter(), time.process_time()))
        losses.append(out["loss_lm"])
        return out

    trainer._train_step = timed
    start = time.perf_counter()
    try:
        with PeakMemory() as mem:  # the training phase alone
            trainer.train()
    finally:
        trainer.cleanup()
    peak = mem.rss_mb
    if not full:
        assert draws == blob["order"], "emoloom drew other rows than the replayed order"
    model = trainer.backbone.model
    return _summary(stamps, start, losses, peak, model, trainer.tokenizer, blob, args)


def _baseline_dataset(blob: dict, with_labels: bool):
    from datasets import Dataset

    rows = [blob["train"][i] for i in blob["order"]]
    if with_labels:
        return Dataset.from_dict(
            {
                "input_ids": [ids for ids, _ in rows],
                "labels": [[-100] * p + ids[p:] for ids, p in rows],
            }
        )
    return Dataset.from_dict(
        {
            "input_ids": [ids for ids, _ in rows],
            "completion_mask": [[0] * p + [1] * (len(ids) - p) for ids, p in rows],
        }
    )


def _common_args(args: argparse.Namespace, out: Path) -> dict:
    return dict(
        output_dir=str(out),
        per_device_train_batch_size=BATCH,
        gradient_accumulation_steps=1,
        max_steps=args.warmup_steps + args.steps,
        learning_rate=LR,
        weight_decay=WEIGHT_DECAY,
        warmup_steps=WARMUP,
        lr_scheduler_type="cosine",
        max_grad_norm=MAX_GRAD_NORM,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=SEED,
        use_cpu=True,
        bf16=args.precision == "bf16",
        train_sampling_strategy="sequential",
        disable_tqdm=True,
    )


def _callback(stamps: list[tuple[float, float]], losses: list[float]):
    from transformers import TrainerCallback

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append((time.perf_counter(), time.process_time()))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    return Stamp()


def _trl_ready(model: Any) -> Any:
    """TRL's fused LM head (trl.trainer.utils.add_fused_lm_head) projects `base_model`'s last
    hidden state through `get_output_embeddings()` alone. BERT's MLM head has a transform
    (dense + GELU + LayerNorm) before that projection, so on the MiniLM decoder TRL would score
    a different function than the model's own forward (checked: loss 10.14 vs 11.83 on the same
    batch). Give TRL a `base_model` that ends with the transform; the parameters are the same."""
    from torch import nn
    from transformers import BertLMHeadModel

    if not isinstance(model, BertLMHeadModel):
        return model

    class _Body(nn.Module):
        def __init__(self, lm: BertLMHeadModel) -> None:
            super().__init__()
            object.__setattr__(self, "lm", lm)  # not a submodule: no parameter is registered twice

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.pop("use_cache", None)
            out = self.lm.bert(*args, **kwargs)
            out.last_hidden_state = self.lm.cls.predictions.transform(out.last_hidden_state)
            return out

    class BertLMHeadModelForTRL(BertLMHeadModel):
        @property
        def base_model(self) -> nn.Module:
            return _Body(self)

    model.__class__ = BertLMHeadModelForTRL
    return model


def run_trl(backbone: str, args: argparse.Namespace, blob: dict) -> dict:
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_model(backbone)
    model = _trl_ready(model)
    out = WORK / "train" / f"trl-{backbone}-{os.getpid()}"
    config = SFTConfig(
        **_common_args(args, out),
        completion_only_loss=True,
        max_length=256,
        padding_free=False,
        gradient_checkpointing=False,
    )
    stamps: list[tuple[float, float]] = []
    losses: list[float] = []
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=_baseline_dataset(blob, with_labels=False),
        processing_class=tokenizer,
        callbacks=[_callback(stamps, losses)],
    )
    start = time.perf_counter()
    with PeakMemory() as mem:  # the training phase alone
        trainer.train()
    peak = mem.rss_mb
    return _summary(stamps, start, losses, peak, model, tokenizer, blob, args)


def run_hf_trainer(backbone: str, args: argparse.Namespace, blob: dict) -> dict:
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    model, tokenizer = load_model(backbone)
    tokenizer.padding_side = "right"
    out = WORK / "train" / f"hf-{backbone}-{os.getpid()}"
    stamps: list[tuple[float, float]] = []
    losses: list[float] = []
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**_common_args(args, out)),
        train_dataset=_baseline_dataset(blob, with_labels=True),
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        processing_class=tokenizer,
        callbacks=[_callback(stamps, losses)],
    )
    start = time.perf_counter()
    with PeakMemory() as mem:  # the training phase alone
        trainer.train()
    peak = mem.rss_mb
    return _summary(stamps, start, losses, peak, model, tokenizer, blob, args)


def _summary(stamps, start, losses, peak, model, tokenizer, blob, args) -> dict:
    """Speed over the steps after the warm-up: wall clock between step ends, and the process's
    CPU time over the same window (less sensitive to other jobs on the cores)."""
    n, w = args.warmup_steps + args.steps, args.warmup_steps
    assert len(stamps) == n, f"expected {n} steps, timed {len(stamps)}"
    (wall0, cpu0), (wall1, cpu1) = (stamps[w - 1] if w else (start, 0.0)), stamps[-1]
    walls = [b[0] - a[0] for a, b in zip(stamps[w - 1 : -1], stamps[w:], strict=True)] if w else []
    return {
        "examples_per_s": round(args.steps * BATCH / (wall1 - wall0), 3),
        "timed_seconds": round(wall1 - wall0, 2),
        "median_step_seconds": round(sorted(walls)[len(walls) // 2], 3) if walls else None,
        "cpu_seconds_per_example": round((cpu1 - cpu0) / (args.steps * BATCH), 4),
        "peak_rss_mb": round(peak),
        "train_loss_first_step": round(losses[0], 4) if losses else None,
        "train_loss_last_step": round(losses[-1], 4) if losses else None,
        "loss_after_n_steps": round(eval_loss(model, blob["eval"], tokenizer.pad_token_id), 4),
    }


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(SEED)
    blob = pickle.loads(Path(args.data).read_bytes())
    if args.worker in ("emoloom", "emoloom_full"):
        result = run_emoloom(args.backbone, args, blob, full=args.worker == "emoloom_full")
    elif args.worker == "trl":
        result = run_trl(args.backbone, args, blob)
    else:
        result = run_hf_trainer(args.backbone, args, blob)
    Path(args.result).write_text(json.dumps(result))


# -------------------------------------------------------------------------------- parent


def provenance() -> dict:
    """The fields every bench/results/<name>.json opens with: command, date, machine."""
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    date = datetime.now(UTC).isoformat(timespec="seconds")
    return {"command": command, "date": date, "machine": machine()}


def machine() -> dict:
    import importlib.metadata

    import torch
    import transformers

    try:
        trl_version = importlib.metadata.version("trl")
    except importlib.metadata.PackageNotFoundError:  # the bench extra is not installed
        trl_version = None
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "cpu",
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl_version,
    }


def param_count(backbone: str) -> int:
    model, _ = load_model(backbone)
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="minilm,qwen2-20m")
    parser.add_argument("--trainers", default=",".join(TRAINERS))
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps before")
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--eval-rows", type=int, default=128)
    parser.add_argument("--grad-accum", type=int, default=4, help="emoloom's micro-batches")
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="training forward precision for every trainer: fp32, or bf16 autocast (weights fp32)",
    )
    parser.add_argument("--out", help="default: bench/results/train_speed[_bf16].json")
    parser.add_argument("--worker", choices=TRAINERS, help=argparse.SUPPRESS)
    parser.add_argument("--backbone", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.out is None:
        suffix = "" if args.precision == "fp32" else f"_{args.precision}"
        args.out = str(RESULTS / f"train_speed{suffix}.json")
    if args.worker:
        worker(args)
        return
    unknown = set(args.backbones.split(",")) - set(BACKBONES)
    unknown |= set(args.trainers.split(",")) - set(TRAINERS)
    if unknown:
        parser.error(
            f"unknown backbone or trainer {sorted(unknown)}; use {BACKBONES} and {TRAINERS}"
        )

    started = time.perf_counter()
    result: dict[str, Any] = {
        **provenance(),
        "setup": {
            "batch": BATCH,
            "emoloom_micro_batches": args.grad_accum,
            "baseline_micro_batches": 1,
            "steps_timed": args.steps,
            "warmup_steps_untimed": args.warmup_steps,
            "optimizer": f"AdamW lr {LR}, weight decay {WEIGHT_DECAY}, cosine with {WARMUP} warm-up steps over {args.warmup_steps + args.steps}, grad-norm clip {MAX_GRAD_NORM}",
            "dtype": "float32 weights; forward "
            + ("bf16 autocast" if args.precision == "bf16" else "float32"),
            "seed": SEED,
            "train_rows": args.train_rows,
            "eval_rows": args.eval_rows,
            "loss_after_n_steps": "token-mean CE of the completion tokens of the eval rows (GoEmotions dev), eval mode, same function for every trainer",
        },
        "backbones": {},
    }
    for backbone in args.backbones.split(","):
        data = prepare(backbone, args)
        blob = pickle.loads(data.read_bytes())
        train_tokens = [len(blob["train"][i][0]) for i in blob["order"]]
        completion = [len(ids) - p for ids, p in (blob["train"][i] for i in blob["order"])]
        entry: dict[str, Any] = {
            "parameters": param_count(backbone),
            "mean_tokens_per_example": round(sum(train_tokens) / len(train_tokens), 1),
            "mean_completion_tokens_per_example": round(sum(completion) / len(completion), 1),
        }
        print(f"{backbone}: {entry}", flush=True)
        for trainer in args.trainers.split(","):
            out = WORK / f"result-{backbone}-{trainer}.json"
            out.unlink(missing_ok=True)
            cmd = [
                sys.executable, __file__, "--worker", trainer, "--backbone", backbone,
                "--data", str(data), "--result", str(out), "--steps", str(args.steps),
                "--warmup-steps", str(args.warmup_steps), "--train-rows", str(args.train_rows),
                "--eval-rows", str(args.eval_rows), "--grad-accum", str(args.grad_accum),
                "--precision", args.precision,
            ]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            entry[trainer] = json.loads(out.read_text())
            print(f"  {trainer} ({time.perf_counter() - t0:.0f} s): {entry[trainer]}", flush=True)
        _ratios(entry)
        result["backbones"][backbone] = entry
    result["wall_seconds"] = round(time.perf_counter() - started)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _ratios(entry: dict) -> None:
    emo = entry.get("emoloom")
    if not emo:
        return
    for base in ("trl", "hf_trainer"):
        if base in entry:
            entry[f"ratio_vs_{base}"] = round(emo["examples_per_s"] / entry[base]["examples_per_s"], 2)  # fmt: skip
            gap = abs(emo["loss_after_n_steps"] / entry[base]["loss_after_n_steps"] - 1)
            entry[f"loss_rel_diff_vs_{base}"] = round(gap, 4)
            entry[f"loss_within_2pct_vs_{base}"] = gap <= 0.02
    if "emoloom_full" in entry and "trl" in entry:
        entry["ratio_full_recipe_vs_trl"] = round(
            entry["emoloom_full"]["examples_per_s"] / entry["trl"]["examples_per_s"], 2
        )


if __name__ == "__main__":
    main()
