"""The EmoLoom training recipe: one explicit loop, setup → train → save_checkpoint → cleanup.

    emoloom train configs/default.yaml budget.max_steps=200 [--resume]

Each optimizer step draws a global batch from the A/B mixture sampler, splits it across
processes (Accelerate) and into length-sorted micro-batches (gradient accumulation), and
minimises LM cross-entropy on the answer tokens + λ_vad·VAD-preserving loss + λ_app·appraisal
guidance. Every `probe_every` steps the label-distribution entropy on a fixed probe set cools
the sampler. Every `log_every` steps a line goes to ``metrics.jsonl``; every
`checkpoint_every` steps (and when a budget runs out) a checkpoint is committed.

Resume policy: the run-defining fields (config without budgets and logging cadence, the
resolved schedule length, the data fingerprint, contract and prompt versions) must match the
checkpoint's, or the resume is refused. A resumed run replays the same batches, dropout masks
and sampler decisions, so its final weights are bit-identical to an uninterrupted run's.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from emoloom.appraisal import profile_matrix
from emoloom.atomic import atomic_write
from emoloom.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from emoloom.config import TrainConfig, save_config
from emoloom.contract import CONTRACT_VERSION
from emoloom.dataset import Example, TrainingData, build_training_data
from emoloom.errors import EmoloomError
from emoloom.faults import fault_point
from emoloom.losses import Batch, appraisal_loss, collate, lm_loss, vad_loss
from emoloom.manifest import git_commit, now, package_versions, read_manifest, write_manifest
from emoloom.modeling import Backbone, load_backbone, resolve_mixed_precision
from emoloom.prompting import PROMPT_VERSION, DigitVocab
from emoloom.sampler import ABMixtureSampler
from emoloom.scoring import label_probs, mean_entropy, top1_macro_f1
from emoloom.seed import derive_seeds, rng_state, seed_everything, set_rng_state

log = logging.getLogger(__name__)

# Fields that may change on resume without changing what the run computes.
_NOT_RUN_DEFINING = ("budget", "log_every", "checkpoint_every", "keep_checkpoints", "output_dir")


@dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | budget_exhausted
    step: int
    stopped_by: str
    metrics: dict[str, Any]


class Trainer:
    def __init__(self, cfg: TrainConfig, *, resume: bool = False) -> None:
        self.cfg = cfg
        self.resume = resume
        self.run_dir = cfg.run_dir()

    # ------------------------------------------------------------------------------ setup

    def setup(self) -> None:
        cfg = self.cfg
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        if cfg.optim.batch_size % (self.world * cfg.optim.grad_accum):
            raise EmoloomError(
                f"optim.batch_size={cfg.optim.batch_size} must divide evenly over "
                f"{self.world} process(es) x grad_accum={cfg.optim.grad_accum}"
            )
        self.seeds = derive_seeds(cfg.seed)
        checkpoint = self._check_run_dir()
        seed_everything(self.seeds["torch"])
        self.backbone: Backbone = load_backbone(cfg.model, seed=self.seeds["model"])
        self.mixed_precision = resolve_mixed_precision(
            cfg.optim.mixed_precision, self.accelerator.device
        )
        self.tokenizer = self.backbone.tokenizer
        self.data: TrainingData = build_training_data(cfg, self.tokenizer, self.seeds)
        self.digits = DigitVocab(self.tokenizer)
        self.label_tokens = {n: e.label_token_ids for n, e in self.data.encoders.items()}
        self.profiles = {
            n: torch.from_numpy(profile_matrix(e.label_set.labels)).float()
            for n, e in self.data.encoders.items()
        }
        self.sampler = ABMixtureSampler(
            [e.classes for e in self.data.pool_a],
            len(self.data.pool_b),
            len(self.data.class_names),
            cfg.components.mixture,
            seed=self.seeds["sampler"],
        )
        probe_pool = self.data.dev or [(e.record, e.label_set) for e in self.data.pool_a]
        rng = np.random.default_rng(self.seeds["sampler"] + 1)
        size = min(cfg.components.mixture.probe_size, len(probe_pool))
        self.probe = [
            probe_pool[i] for i in sorted(rng.choice(len(probe_pool), size, replace=False))
        ]
        self.dev = self.data.dev[: cfg.dev_max_examples] if cfg.dev_max_examples else []

        lm = self.backbone.lm
        lm.train()
        params = [p for p in lm.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]  # biases and norms
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": cfg.optim.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=cfg.optim.lr,
        )
        self.schedule_steps = cfg.optim.schedule_steps or cfg.budget.max_steps
        self.scheduler = get_cosine_schedule_with_warmup(
            optimizer, cfg.optim.warmup_steps, self.schedule_steps
        )
        self.lm, self.optimizer = self.accelerator.prepare(lm, optimizer)
        self.run_key = self._run_key()

        self.step, self.tokens_seen, self.examples_seen, self.wall_used = 0, 0, 0, 0.0
        self.last_entropy: float | None = None
        if checkpoint is not None:
            self._restore(checkpoint)
        if self.accelerator.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")
            self._trim_metrics()
            self.manifest = self._new_manifest(resumed_from=checkpoint)
            write_manifest(self.run_dir, self.manifest)
        self.accelerator.wait_for_everyone()

    def _check_run_dir(self) -> Path | None:
        checkpoint = latest_checkpoint(self.run_dir) if self.run_dir.exists() else None
        if checkpoint is not None and not self.resume:
            raise EmoloomError(
                f"{self.run_dir} already holds a run: pass --resume to continue it, or set "
                "run_name to start another"
            )
        return checkpoint

    def _run_key(self) -> dict[str, Any]:
        config = {k: v for k, v in self.cfg.to_dict().items() if k not in _NOT_RUN_DEFINING}
        return {
            "config": config,
            "schedule_steps": self.schedule_steps,
            "data_fingerprint": self.data.fingerprint(),
            "contract_version": CONTRACT_VERSION,
            "prompt_version": PROMPT_VERSION,
            "world_size": self.world,
        }

    def _restore(self, path: Path) -> None:
        weights, optimizer_state, state = load_checkpoint(path)
        saved = state["run_key"]
        if saved != self.run_key:
            diffs = _differences(saved, self.run_key)
            raise EmoloomError(
                f"refusing to resume {self.run_dir} from {path.name}: run-defining fields "
                f"differ ({'; '.join(diffs[:5])})"
            )
        model = self.accelerator.unwrap_model(self.lm).model  # HF (or PEFT) model names
        missing = set(_trainable(model)) - set(weights)
        if missing:
            raise EmoloomError(f"{path}: checkpoint lacks weights {sorted(missing)[:3]}")
        model.load_state_dict(weights, strict=False)
        self.optimizer.load_state_dict(optimizer_state)
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        set_rng_state(state["rng"][self.rank] if isinstance(state["rng"], list) else state["rng"])
        loop = state["loop"]
        self.step = state["step"]
        self.tokens_seen = loop["tokens_seen"]
        self.examples_seen = loop["examples_seen"]
        self.wall_used = loop["wall_used"]
        self.last_entropy = loop["last_entropy"]

    def _new_manifest(self, resumed_from: Path | None) -> dict[str, Any]:
        cfg = self.cfg
        previous = read_manifest(self.run_dir) if resumed_from is not None else {}
        device = str(self.accelerator.device)
        return {
            "run_name": cfg.run_name,
            "status": "running",
            "config_hash": cfg.hash(),
            "run_key_hash": _hash(self.run_key),
            "contract_version": CONTRACT_VERSION,
            "prompt_version": PROMPT_VERSION,
            "model": {
                "name": cfg.model.name,
                "finetune": cfg.model.finetune,
                "dtype": str(self.backbone.dtype).removeprefix("torch."),
                "mixed_precision": self.mixed_precision,
                "trainable_params": self.backbone.trainable_params,
                "total_params": self.backbone.total_params,
            },
            "data": self.data.sources,
            "data_fingerprint": self.data.fingerprint(),
            "pool_sizes": {"a": len(self.data.pool_a), "b": len(self.data.pool_b)},
            "truncated_prompts": self.data.truncated,
            "packages": package_versions(),
            "git_commit": git_commit(),
            "seed": cfg.seed,
            "seeds": self.seeds,
            "device": device,
            "num_processes": self.world,
            "started": previous.get("started", now()),
            "resumed": previous.get("resumed", []) + ([now()] if resumed_from else []),
            "ended": None,
            "stopped_by": None,
            "budget": {
                "max_steps": cfg.budget.max_steps,
                "max_train_tokens": cfg.budget.max_train_tokens,
                "max_wall_seconds": cfg.budget.max_wall_seconds,
            },
            "budget_used": self._budget_used(),
        }

    def _budget_used(self) -> dict[str, Any]:
        return {
            "steps": self.step,
            "train_tokens": self.tokens_seen,
            "examples": self.examples_seen,
            "wall_seconds": round(self.wall_used, 1),
        }

    # ------------------------------------------------------------------------------ train

    def _micro_batches(self, examples: list[Example]) -> list[list[Example]]:
        """This process's share of the global batch, in length-sorted micro-batches: sorting
        keeps padding low; every process and resume sees the same split."""
        share = examples[self.rank :: self.world]
        share = sorted(share, key=lambda e: len(e.encoded.input_ids))
        n = self.cfg.optim.grad_accum
        size = len(share) // n
        return [share[i * size : (i + 1) * size] for i in range(n)]

    def _loss(self, micro: list[Example]) -> tuple[torch.Tensor, dict[str, float], int]:
        comps = self.cfg.components
        batch: Batch = collate([e.encoded for e in micro], self.tokenizer.pad_token_id)
        with self._autocast():
            logits = self.lm(
                batch.input_ids, batch.attention_mask, batch.rows, batch.cols, batch.prompt_len
            )
        terms = {"lm": lm_loss(logits, batch)}
        loss = terms["lm"]
        if comps.vad_loss:
            terms["vad"] = vad_loss(logits, batch, self.digits)
            loss = loss + comps.vad_loss_weight * terms["vad"]
        if comps.appraisal:
            groups: dict[str, list[int]] = {}
            for b, e in enumerate(micro):
                groups.setdefault(e.label_set, []).append(b)
            atoms = torch.from_numpy(np.stack([e.atoms for e in micro])).float()
            terms["appraisal"] = appraisal_loss(
                logits,
                batch,
                {n: torch.tensor(i) for n, i in groups.items()},
                self.label_tokens,
                self.profiles,
                atoms,
            )
            loss = loss + comps.appraisal_weight * terms["appraisal"]
        return loss, {k: float(v.detach()) for k, v in terms.items()}, batch.tokens

    def _autocast(self) -> torch.autocast:
        """The training forward's precision (`optim.mixed_precision`). torch.autocast itself, not
        Accelerate's `mixed_precision`: that one lives in the process-wide AcceleratorState,
        which refuses a second value, and a screen trains several candidates in one process."""
        return torch.autocast(
            self.accelerator.device.type,
            dtype=torch.bfloat16,
            enabled=self.mixed_precision == "bf16",
        )

    def _train_step(self) -> dict[str, Any]:
        draws = self.sampler.sample(self.cfg.optim.batch_size)
        pools = {"A": self.data.pool_a, "B": self.data.pool_b}
        examples = [pools[kind][i] for kind, i in draws]
        micro_batches = self._micro_batches(examples)
        sums: dict[str, float] = {}
        tokens = 0
        for j, micro in enumerate(micro_batches):
            last = j == len(micro_batches) - 1
            sync = nullcontext() if last else self.accelerator.no_sync(self.lm)
            with sync:
                loss, terms, n_tokens = self._loss(micro)
                self.accelerator.backward(loss / len(micro_batches))
            tokens += n_tokens
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v / len(micro_batches)
        fault_point("train.step.after_backward")
        grad_norm = self.accelerator.clip_grad_norm_(
            [p for p in self.lm.parameters() if p.requires_grad], self.cfg.optim.max_grad_norm
        )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        stats = torch.tensor([tokens, *sums.values()], dtype=torch.float64)
        if self.world > 1:
            stats = self.accelerator.reduce(stats, reduction="sum")
            stats[1:] /= self.world
        self.step += 1
        self.tokens_seen += int(stats[0])
        self.examples_seen += len(examples)
        terms = dict(zip(sums, (float(x) for x in stats[1:]), strict=True))
        comps = self.cfg.components
        total = terms["lm"] + comps.vad_loss_weight * terms.get("vad", 0.0)
        total += comps.appraisal_weight * terms.get("appraisal", 0.0)
        b_share = sum(kind == "B" for kind, _ in draws) / len(draws)
        return {
            "loss": total,
            **{f"loss_{k}": v for k, v in terms.items()},
            "grad_norm": float(grad_norm),
            "b_share": b_share,
        }

    def _probe(self) -> float:
        model = self.accelerator.unwrap_model(self.lm)
        probs = label_probs(model, self.probe, self.data.encoders, self.tokenizer.pad_token_id)
        return mean_entropy(probs)

    def _dev_scores(self) -> dict[str, float]:
        if not self.dev:
            return {}
        model = self.accelerator.unwrap_model(self.lm)
        probs = label_probs(model, self.dev, self.data.encoders, self.tokenizer.pad_token_id)
        scores = top1_macro_f1(self.dev, probs, self.data.encoders)
        return {f"dev_{name}_top1_macro_f1": v for name, v in scores.items()}

    def _budget_exhausted(self) -> str | None:
        budget = self.cfg.budget
        if budget.max_train_tokens is not None and self.tokens_seen >= budget.max_train_tokens:
            return "max_train_tokens"
        if budget.max_wall_seconds is not None and self.wall_used >= budget.max_wall_seconds:
            return "max_wall_seconds"
        return None

    def train(self) -> RunResult:
        cfg = self.cfg
        mixture = cfg.components.mixture
        main = self.accelerator.is_main_process
        # closed in cleanup() too, so an error is not printed on the progress bar's line
        self.bar = bar = tqdm(
            total=cfg.budget.max_steps, initial=self.step, disable=not main, desc=cfg.run_name,
            dynamic_ncols=True,
        )  # fmt: skip
        window: dict[str, float] = {}
        window_steps, window_examples, window_time = 0, 0, 0.0
        stopped_by = "max_steps" if self.step >= cfg.budget.max_steps else ""
        last: dict[str, Any] = {}
        while not stopped_by:
            started = time.perf_counter()
            step_stats = self._train_step()
            elapsed = time.perf_counter() - started
            self.wall_used += elapsed
            window_time += elapsed
            window_steps += 1
            window_examples += cfg.optim.batch_size
            for k, v in step_stats.items():
                window[k] = window.get(k, 0.0) + v
            bar.update(1)
            bar.set_postfix(loss=f"{step_stats['loss']:.3f}")

            event: dict[str, Any] = {}
            if mixture.enabled and mixture.cooling and self.step % mixture.probe_every == 0:
                t0 = time.perf_counter()
                self.last_entropy = self._probe()
                self.sampler.update(self.last_entropy, self.step)
                self.wall_used += time.perf_counter() - t0
                event["probe_entropy"] = self.last_entropy
            stopped_by = self._budget_exhausted() or (
                "max_steps" if self.step >= cfg.budget.max_steps else ""
            )
            checkpoint_now = bool(stopped_by) or self.step % cfg.checkpoint_every == 0
            if checkpoint_now:
                t0 = time.perf_counter()
                event.update(self._dev_scores())
                self.wall_used += time.perf_counter() - t0
            if event or self.step % cfg.log_every == 0 or stopped_by:
                last = {
                    "step": self.step,
                    **{k: v / window_steps for k, v in window.items()},
                    "lr": self.scheduler.get_last_lr()[0],
                    "temperature": self.sampler.temperature,
                    "b_fraction": self.sampler.b_fraction,
                    "probe_entropy": self.last_entropy,
                    "examples_per_s": window_examples / window_time if window_time else None,
                    "train_tokens": self.tokens_seen,
                    "wall_seconds": round(self.wall_used, 2),
                    **event,
                }
                if main:
                    self._log(last)
                window, window_steps, window_examples, window_time = {}, 0, 0, 0.0
            if checkpoint_now:
                self.save_checkpoint()
            fault_point("train.between_steps")
        bar.close()
        status = "completed" if stopped_by == "max_steps" else "budget_exhausted"
        if main:
            self.manifest.update(
                status=status, ended=now(), stopped_by=stopped_by, budget_used=self._budget_used()
            )
            write_manifest(self.run_dir, self.manifest)
        return RunResult(self.run_dir, status, self.step, stopped_by, last)

    # ------------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> None:
        model = self.accelerator.unwrap_model(self.lm).model  # HF (or PEFT) model names
        rngs = gather_object([rng_state()]) if self.world > 1 else [rng_state()]
        state = {
            "run_key": self.run_key,
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rngs,
            "loop": {
                "tokens_seen": self.tokens_seen,
                "examples_seen": self.examples_seen,
                "wall_used": self.wall_used,
                "last_entropy": self.last_entropy,
            },
        }
        if self.accelerator.is_main_process:
            save_checkpoint(
                self.run_dir,
                self.step,
                weights=_trainable(model),
                optimizer_state=self.optimizer.state_dict(),
                state=state,
                keep=self.cfg.keep_checkpoints,
            )
            self.manifest["budget_used"] = self._budget_used()
            write_manifest(self.run_dir, self.manifest)
        self.accelerator.wait_for_everyone()

    def _log(self, row: dict[str, Any]) -> None:
        with (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def _trim_metrics(self) -> None:
        """On resume, drop log lines written after the checkpoint (they will be replayed)
        and a torn last line, so the log equals an uninterrupted run's."""
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("step", 0) <= self.step:
                kept.append(line)
        with atomic_write(path) as f:
            f.write("".join(line + "\n" for line in kept))

    def cleanup(self) -> None:
        bar = getattr(self, "bar", None)
        if bar is not None:
            bar.close()
        # The model goes before the process group. DDP's Reducer holds a reference to the gloo
        # group; destroyed first, the group would lose its last reference inside the Reducer's
        # dealloc, whose blocking destructor then runs with the GIL held while a gloo worker
        # thread waits for the GIL to free the last barrier's tensor: a deadlock at exit, seen
        # as a two-process run that never returned (py-spy: ~ProcessGroupGloo under
        # ~Reducer; pytorch/pytorch#56297).
        self.lm = self.optimizer = self.scheduler = None
        self.accelerator.free_memory()
        gc.collect()
        self.accelerator.end_training()


def _trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} -> {b!r}"]


def train(cfg: TrainConfig, *, resume: bool = False) -> RunResult:
    """Run (or resume) one training run to its budget."""
    trainer = Trainer(cfg, resume=resume)
    trainer.setup()
    try:
        return trainer.train()
    finally:
        trainer.cleanup()
