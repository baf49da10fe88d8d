"""Screening: train every candidate under one protocol, evaluate them identically, rank them.

    emoloom screen configs/quick.yaml [key.sub=value ...]
    emoloom report runs/screens/quick

A screen config names one protocol (a base training config plus overrides that hold for every
candidate, the decoding settings, the evaluation sets and the primary metric) and the candidates:
base models, config variants, and ``ablate:`` shorthands that switch one EmoLoom component off at
a time. Each candidate trains (training runs that would be identical are shared: decode-only
ablations reuse their parent's), is evaluated on every set, and ends with ``result.json``.

Re-running the same command resumes: a candidate with ``result.json`` is skipped, a finished
training run is reused, an interrupted one resumes from its checkpoint, a finished evaluation is
kept and an interrupted one continues from its partial log. A screen directory made with a
different plan is refused.

Layout of ``<output_dir>/<screen>/``:
    plan.json                      the resolved plan (what the report reads)
    runs/<train_run>/              training runs (config.yaml, manifest.json, metrics.jsonl, ...)
    candidates/<name>/eval/        eval/<corpus>-<split>.json, one per evaluation set
    candidates/<name>/predictions/ per-example logs
    candidates/<name>/polarity.json, result.json
    leaderboard.csv, leaderboard.md, report.html
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import PartialState
from pydantic import ConfigDict, TypeAdapter, ValidationError

from emoloom.atomic import atomic_write
from emoloom.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    from_dict,
    read_yaml,
)
from emoloom.decoding import DecodeConfig
from emoloom.errors import EmoloomError
from emoloom.evaluate import PROTOCOLS, evaluate, polarity
from emoloom.faults import fault_point
from emoloom.manifest import now, read_manifest
from emoloom.memory import PeakMemory

log = logging.getLogger(__name__)

_FORBID = ConfigDict(extra="forbid")
DecodeConfig.__pydantic_config__ = _FORBID  # type: ignore[attr-defined]
PLAN_VERSION = 1


@dataclass(frozen=True)
class Ablation:
    """One component switched off: training overrides and/or decoding changes."""

    train: tuple[str, ...] = ()
    decode: dict[str, Any] = field(default_factory=dict)


# The EmoLoom components an ablation can switch off, one at a time.
ABLATIONS: dict[str, Ablation] = {
    "vad_loss": Ablation(train=("components.vad_loss=false",)),
    "appraisal": Ablation(train=("components.appraisal=false",)),
    "valence_flip": Ablation(train=("components.valence_flip=false",)),
    "cooling": Ablation(train=("components.mixture.cooling=false",)),
    "constrained": Ablation(decode={"mode": "free"}),
    "kv_off": Ablation(decode={"use_cache": True}),
}


@dataclass(frozen=True)
class CandidateSpec:
    __pydantic_config__ = _FORBID

    name: str
    model: str | None = None  # shorthand for model.name
    config: str | None = None  # a training config (relative to the screen file) instead of base
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> value
    decode: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VariantSpec:
    """A config variant of one candidate (`of`, default: the first candidate)."""

    __pydantic_config__ = _FORBID

    name: str
    of: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    decode: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalSet:
    __pydantic_config__ = _FORBID

    corpus: str
    split: str = "test"
    limit: int | None = None  # the first N examples in file order
    time_budget: float | None = None  # seconds, in label-stratified order
    context_turns: int | None = None  # prior turns in the prompt; None: the protocol's choice

    def __post_init__(self) -> None:
        if self.context_turns is not None and self.context_turns < 0:
            raise ValueError(f"evaluation context_turns={self.context_turns} must be >= 0")
        if self.corpus not in PROTOCOLS:
            raise ValueError(f"evaluation corpus {self.corpus!r}; use one of {sorted(PROTOCOLS)}")

    @property
    def name(self) -> str:
        return f"{self.corpus}-{self.split}"


@dataclass(frozen=True)
class PolaritySpec:
    __pydantic_config__ = _FORBID

    corpus: str = "goemotions"
    split: str = "dev"
    limit: int | None = 100  # Valence-Flip pairs


@dataclass(frozen=True)
class ScreenConfig:
    __pydantic_config__ = _FORBID

    screen: str
    candidates: tuple[CandidateSpec, ...]
    output_dir: str = "runs/screens"
    base: str = "default.yaml"  # the protocol's training config, relative to the screen file
    overrides: dict[str, Any] = field(default_factory=dict)  # protocol: for every candidate
    variants: tuple[VariantSpec, ...] = ()
    ablate: tuple[str, ...] = ()  # components switched off one at a time ("all": every one)
    ablate_of: tuple[str, ...] | None = None  # candidates ablated (default: the first)
    decode: DecodeConfig = field(default_factory=lambda: DecodeConfig(batch_size=32))
    evaluation: tuple[EvalSet, ...] = (EvalSet("goemotions", "test"),)
    polarity: PolaritySpec | None = field(default_factory=PolaritySpec)
    primary_metric: str = "goemotions-test:macro_f1"
    seed: int = 0  # evaluation order and bootstrap seed
    resamples: int = 1000

    def __post_init__(self) -> None:
        if not self.candidates:
            raise ValueError("a screen needs at least one candidate")
        unknown = [a for a in self.ablate if a != "all" and a not in ABLATIONS]
        if unknown:
            raise ValueError(f"unknown ablation {unknown[0]!r}; available: {sorted(ABLATIONS)}")
        names = [c.name for c in self.candidates] + [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("candidate and variant names must be unique")
        bad = [n for n in names if not n or "/" in n or n.startswith(".")]
        if bad:
            raise ValueError(f"{bad[0]!r} cannot name a candidate directory")

    def ablations(self) -> list[str]:
        return list(ABLATIONS) if "all" in self.ablate else list(self.ablate)


@dataclass
class Candidate:
    """One row of the leaderboard: a training config and a decoding setting."""

    name: str
    model: str
    ablation: str | None
    train: TrainConfig
    decode: DecodeConfig
    train_run: str = ""  # set by the plan: the run dir (shared by identical training configs)

    def as_plan(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "ablation": self.ablation,
            "train_run": f"runs/{self.train_run}",
            "train_config_hash": self.train.hash(),
            "decode": dataclasses.asdict(self.decode),
        }


_ADAPTER = TypeAdapter(ScreenConfig)


def load_screen(path: str | Path, overrides: list[str] | None = None) -> ScreenConfig:
    """Load a screen config; ``key=value`` overrides apply to the screen's own keys."""
    path = Path(path)
    data = apply_overrides(read_yaml(path), overrides or [])
    if isinstance(data.get("ablate"), str):  # "ablate: all" or a single component
        data["ablate"] = [data["ablate"]]
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            msg = "unknown key"
        raise ConfigError(f"{path}: {loc}: {msg}" if loc else f"{path}: {msg}") from None
    except EmoloomError as err:
        raise ConfigError(f"{path}: {err}") from None


def _train_config(
    screen: ScreenConfig,
    screen_path: Path,
    spec: CandidateSpec,
    extra: dict[str, Any] | tuple[str, ...],
    screen_dir: Path,
) -> TrainConfig:
    """base (or the candidate's config) <- protocol overrides <- candidate <- variant."""
    data = read_yaml(screen_path.parent / (spec.config or screen.base))
    apply_overrides(data, _dotted(screen.overrides))
    if spec.model is not None:
        apply_overrides(data, [f"model.name={json.dumps(spec.model)}"])
    apply_overrides(data, _dotted(spec.overrides))
    apply_overrides(data, _dotted(extra) if isinstance(extra, dict) else list(extra))
    data["output_dir"] = str(screen_dir / "runs")
    data["run_name"] = spec.name  # replaced by the shared run name in plan()
    try:
        return from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{screen_path}: candidate {spec.name!r}: {err}") from None


def _dotted(overrides: dict[str, Any], prefix: str = "") -> list[str]:
    """``{"budget": {"max_steps": 5}, "optim.lr": 1e-3}`` -> ``["budget.max_steps=5",
    "optim.lr=0.001"]``: nested and dotted keys both set single fields (lists are values)."""
    out = []
    for key, value in overrides.items():
        if isinstance(value, dict) and value:
            out += _dotted(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def _decode(screen: ScreenConfig, *layers: dict[str, Any]) -> DecodeConfig:
    merged = dataclasses.asdict(screen.decode)
    for layer in layers:
        unknown = set(layer) - set(merged)
        if unknown:
            raise ConfigError(f"unknown decode key {sorted(unknown)[0]!r}")
        merged.update(layer)
    return DecodeConfig(**merged)


def plan(screen: ScreenConfig, screen_path: str | Path, screen_dir: Path) -> list[Candidate]:
    """Expand candidates, variants and ablations; share training runs that would be identical."""
    screen_path = Path(screen_path)
    specs = {c.name: c for c in screen.candidates}
    out: list[Candidate] = []
    for spec in screen.candidates:
        cfg = _train_config(screen, screen_path, spec, {}, screen_dir)
        out.append(Candidate(spec.name, cfg.model.name, None, cfg, _decode(screen, spec.decode)))
    for variant in screen.variants:
        parent = specs.get(variant.of or screen.candidates[0].name)
        if parent is None:
            raise ConfigError(
                f"{screen_path}: variant {variant.name!r}: no candidate {variant.of!r}"
            )
        cfg = _train_config(screen, screen_path, parent, variant.overrides, screen_dir)
        decode = _decode(screen, parent.decode, variant.decode)
        out.append(Candidate(variant.name, cfg.model.name, None, cfg, decode))
    for parent_name in screen.ablate_of or (screen.candidates[0].name,):
        if parent_name not in specs:
            raise ConfigError(f"{screen_path}: ablate_of: no candidate {parent_name!r}")
        parent = specs[parent_name]
        for name in screen.ablations():
            ablation = ABLATIONS[name]
            cfg = _train_config(screen, screen_path, parent, ablation.train, screen_dir)
            decode = _decode(screen, parent.decode, ablation.decode)
            label = f"{parent.name}-no-{name.replace('_', '-')}"
            out.append(Candidate(label, cfg.model.name, name, cfg, decode))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{screen_path}: two candidates expand to the same name")
    runs: dict[str, str] = {}  # training config hash (without run_name) -> run name
    for cand in out:
        key = dataclasses.replace(cand.train, run_name="").hash()
        cand.train_run = runs.setdefault(key, cand.name)
        cand.train = dataclasses.replace(cand.train, run_name=cand.train_run)
    return out


def _write_json(path: Path, obj: Any) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


@dataclass
class ScreenResult:
    screen_dir: Path
    done: list[str]
    skipped: list[str]
    report: Path | None


class Screen:
    """Runs a plan candidate by candidate; every level resumes (see the module docstring)."""

    def __init__(self, screen: ScreenConfig, screen_path: str | Path) -> None:
        self.screen = screen
        self.screen_path = Path(screen_path)
        self.dir = Path(screen.output_dir) / screen.screen
        self.candidates = plan(screen, self.screen_path, self.dir)

    def plan_dict(self) -> dict[str, Any]:
        s = self.screen
        body = {
            "screen": s.screen,
            "plan_version": PLAN_VERSION,
            "primary_metric": s.primary_metric,
            "evaluation": {
                "sets": [dataclasses.asdict(e) for e in s.evaluation],
                "polarity": dataclasses.asdict(s.polarity) if s.polarity else None,
                "decode": dataclasses.asdict(s.decode),
                "seed": s.seed,
                "resamples": s.resamples,
            },
            "candidates": [c.as_plan() for c in self.candidates],
        }
        blob = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return {
            **body,
            "plan_hash": hashlib.sha256(blob.encode()).hexdigest(),
            "config_path": str(self.screen_path),
            "config": yaml.safe_load(self.screen_path.read_text(encoding="utf-8")),
        }

    def _check_plan(self) -> dict[str, Any]:
        new = self.plan_dict()
        path = self.dir / "plan.json"
        if path.is_file():
            old = json.loads(path.read_text(encoding="utf-8"))
            if old.get("plan_hash") != new["plan_hash"]:
                raise EmoloomError(
                    f"{self.dir} holds a screen with another plan (different candidates, "
                    "protocol or evaluation); give it another name (screen=...) or remove it"
                )
            return old
        _write_json(path, new)
        return new

    def run(self, *, report: bool = True) -> ScreenResult:
        # Under `accelerate launch` / torchrun every process trains; the main process alone
        # evaluates and writes, and the others wait for its result.json (a file, not a
        # collective barrier, so a long evaluation cannot hit a NCCL timeout).
        state = PartialState(cpu=not torch.cuda.is_available())
        main = state.is_main_process
        if main:
            self._check_plan()
        state.wait_for_everyone()
        done, skipped = [], []
        for i, cand in enumerate(self.candidates, 1):
            result_path = self.dir / "candidates" / cand.name / "result.json"
            if result_path.is_file():
                log.info("[%d/%d] %s: done already, skipped", i, len(self.candidates), cand.name)
                skipped.append(cand.name)
                continue
            if main:
                print(f"[{i}/{len(self.candidates)}] {cand.name}", file=sys.stderr, flush=True)
            started = now()
            train_facts = self._train(cand, main)
            if not main:
                _wait_for(result_path)
                done.append(cand.name)
                continue
            decode_facts, evals, pol = self._evaluate(cand)
            fault_point("screen.before_result")
            _write_json(
                result_path,
                {
                    "name": cand.name,
                    "model": cand.model,
                    "ablation": cand.ablation,
                    "status": "done",
                    "train_run": f"runs/{cand.train_run}",
                    "train": train_facts,
                    "decode": decode_facts,
                    "evals": evals,
                    "polarity": pol,
                    "started": started,
                    "finished": now(),
                },
            )
            done.append(cand.name)
        path = None
        if report and main:
            from emoloom.report import write_report

            path = write_report(self.dir).html
        return ScreenResult(self.dir, done, skipped, path)

    # ------------------------------------------------------------------------------ phases

    def _train(self, cand: Candidate, main: bool = True) -> dict[str, Any]:
        from emoloom.trainer import train

        run_dir = cand.train.run_dir()
        reused = _finished(run_dir)
        peak = None
        if not reused:
            with PeakMemory() as mem:
                train(cand.train, resume=True)  # resumes from a checkpoint when there is one
            peak = mem
            gc.collect()
        if not main:
            return {}
        manifest = read_manifest(run_dir)
        used = manifest["budget_used"]
        facts_path = run_dir / "screen_train.json"
        if peak is not None:  # the peak of the process that trained, kept for reusers
            _write_json(facts_path, {"peak_rss_mb": peak.rss_mb, "peak_cuda_mb": peak.cuda_mb})
        stored = json.loads(facts_path.read_text()) if facts_path.is_file() else {}
        wall = used["wall_seconds"]
        return {
            "status": manifest["status"],
            "step": used["steps"],
            "stopped_by": manifest.get("stopped_by"),
            "wall_s": wall,
            "examples": used["examples"],
            "examples_per_s": round(used["examples"] / wall, 3) if wall else None,
            "train_tokens": used["train_tokens"],
            "peak_rss_mb": _round(stored.get("peak_rss_mb")),
            "peak_cuda_mb": _round(stored.get("peak_cuda_mb")),
            "trainable_params": manifest["model"]["trainable_params"],
            "total_params": manifest["model"]["total_params"],
            "reused": reused,
        }

    def _evaluate(self, cand: Candidate) -> tuple[dict[str, Any], dict[str, str], Any]:
        from emoloom.modeling import load_trained

        s = self.screen
        out = self.dir / "candidates" / cand.name
        evals: dict[str, str] = {}
        seconds, rows, calls, calibration_s = 0.0, 0, 0.0, 0.0
        with PeakMemory() as mem:
            cfg, backbone = load_trained(cand.train.run_dir())
            for spec in s.evaluation:
                path = out / "eval" / f"{spec.name}.json"
                if path.is_file():
                    report = json.loads(path.read_text(encoding="utf-8"))
                else:
                    print(f"  eval {spec.name}", file=sys.stderr, flush=True)
                    report = evaluate(
                        cfg, backbone, spec.corpus, spec.split, cand.decode, out_dir=out,
                        time_budget=spec.time_budget, limit=spec.limit, seed=s.seed,
                        resamples=s.resamples, resume=True, context_turns=spec.context_turns,
                    )  # fmt: skip
                evals[spec.name] = f"eval/{spec.name}.json"
                seconds += report["seconds"]
                calibration_s += (report.get("calibration") or {}).get("seconds", 0.0)
                rows += report["examples_evaluated"]
                calls += (report["model_calls_per_example"] or 0) * report["examples_evaluated"]
            pol = None
            if s.polarity is not None:
                pol_path = out / "polarity.json"
                if pol_path.is_file():
                    pol = json.loads(pol_path.read_text(encoding="utf-8"))
                else:
                    p = s.polarity
                    pol = polarity(
                        cfg, backbone, cand.decode, corpus=p.corpus, split=p.split,
                        limit=p.limit, calibration_dir=out / "calibration",
                    )  # fmt: skip
                    _write_json(pol_path, pol)
            del backbone
            gc.collect()
        facts = {
            **dataclasses.asdict(cand.decode),
            "examples": rows,
            "wall_s": round(seconds, 2),
            # fitting decode.labels calibrated thresholds on dev (not in wall_s)
            "calibration_wall_s": round(calibration_s, 2),
            "examples_per_s": round(rows / seconds, 3) if seconds else None,
            "model_calls_per_example": round(calls / rows, 2) if rows else None,
            "peak_rss_mb": _round(mem.rss_mb),
            "peak_cuda_mb": _round(mem.cuda_mb),
        }
        return facts, evals, pol


def _wait_for(path: Path, poll_s: float = 2.0) -> None:
    while not path.is_file():
        time.sleep(poll_s)


def _finished(run_dir: Path) -> bool:
    try:
        return read_manifest(run_dir)["status"] in ("completed", "budget_exhausted")
    except (OSError, ValueError, KeyError):
        return False


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def run_screen(
    path: str | Path, overrides: list[str] | None = None, *, report: bool = True
) -> ScreenResult:
    """Load a screen config and run (or resume) it."""
    return Screen(load_screen(path, overrides), path).run(report=report)
