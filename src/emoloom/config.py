"""Typed run configuration: frozen dataclasses loaded from YAML with ``key.sub=value`` overrides.

    cfg = load_config("configs/default.yaml", ["optim.lr=1e-4", "budget.max_steps=200"])
    save_config(cfg, run_dir / "config.yaml")   # re-runnable as is

Unknown keys are errors with a "did you mean"; contradictions are rejected in
``__post_init__``; derived values are methods. pydantic's `TypeAdapter` does the type coercion of
YAML/CLI values into these dataclasses, so no hand-written parsing lives here.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ConfigDict, TypeAdapter, ValidationError

from emoloom.data.base import ReadOptions
from emoloom.errors import EmoloomError
from emoloom.lexicon import WeakVADConfig
from emoloom.sampler import MixtureConfig

_FORBID = ConfigDict(extra="forbid")


def _no_is_a_word(value: Any) -> Any:
    """YAML 1.1 reads a bare `no` as false: `mixed_precision: no` means the string."""
    return "no" if value is False else value


# Reading knobs and weak-VAD knobs are defined next to the code that uses them; here they get
# the same "unknown key is an error" rule as every other config section.
ReadOptions.__pydantic_config__ = _FORBID  # type: ignore[attr-defined]
WeakVADConfig.__pydantic_config__ = _FORBID  # type: ignore[attr-defined]
MixtureConfig.__pydantic_config__ = _FORBID  # type: ignore[attr-defined]


class ConfigError(EmoloomError):
    """A config that cannot be loaded: names the key, with a suggestion when one is close."""


@dataclass(frozen=True)
class LoRAConfig:
    __pydantic_config__ = _FORBID

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # None: PEFT's per-architecture default (q/v projections for Qwen2/Llama/Gemma,
    # query/value for BERT, c_attn for Qwen-1 remote code).
    target_modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("lora: r and alpha must be >= 1, dropout in [0, 1)")


@dataclass(frozen=True)
class ModelConfig:
    __pydantic_config__ = _FORBID

    # "minilm" (the offline default backbone), "tiny-qwen2"/"tiny-llama" (random test models
    # built in-process), or any Hugging Face causal LM id or local path.
    name: str = "minilm"
    revision: str | None = None
    trust_remote_code: bool = False
    finetune: str = "full"  # full | lora
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    dtype: str = "auto"  # auto (fp32 on CPU, bf16 on GPU) | float32 | bfloat16 | float16
    # causal: every token sees only earlier tokens. bidirectional: a prefix LM, the prompt sees
    # the whole prompt and the answer stays causal; for backbones pretrained as bidirectional
    # encoders (the default minilm). Absent from old run configs, hence causal by default.
    prompt_attention: str = "causal"

    def __post_init__(self) -> None:
        if self.prompt_attention not in ("causal", "bidirectional"):
            raise ValueError(
                f"model.prompt_attention={self.prompt_attention!r}; use causal or bidirectional"
            )
        if self.finetune not in ("full", "lora"):
            raise ValueError(f"model.finetune={self.finetune!r}; use full or lora")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"model.dtype={self.dtype!r}; use auto, float32, bfloat16, float16")


@dataclass(frozen=True)
class DatasetSpec:
    """One source of examples: a registered corpus split, or a contract JSONL file."""

    __pydantic_config__ = _FORBID

    corpus: str
    split: str = "train"
    path: str | None = None  # for corpus "jsonl"
    label_set: str | None = None  # for corpus "jsonl" (registered corpora know theirs)
    max_examples: int | None = None  # a seeded subset, for quick runs

    def __post_init__(self) -> None:
        if self.corpus == "jsonl" and (not self.path or not self.label_set):
            raise ValueError("a jsonl dataset needs path and label_set")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError("max_examples must be >= 1")


@dataclass(frozen=True)
class DataConfig:
    __pydantic_config__ = _FORBID

    train: tuple[DatasetSpec, ...] = (DatasetSpec("goemotions"), DatasetSpec("empathetic"))
    dev: tuple[DatasetSpec, ...] = (DatasetSpec("goemotions", "dev"),)
    data_dir: str | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    weak_vad: WeakVADConfig = field(default_factory=WeakVADConfig)

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("data.train needs at least one dataset")


@dataclass(frozen=True)
class PromptConfig:
    __pydantic_config__ = _FORBID

    max_length: int = 256  # prompt + completion tokens; the prompt is truncated, never the answer
    rationale: bool = True  # the 8-word rationale in targets (from the appraisal verifier)
    max_context_turns: int = 3
    list_labels: bool = False  # spell out every label in the prompt (zero-shot use)

    def __post_init__(self) -> None:
        if self.max_length < 32:
            raise ValueError("prompt.max_length must be >= 32")


@dataclass(frozen=True)
class ComponentsConfig:
    """The EmoLoom components, each switchable for ablations."""

    __pydantic_config__ = _FORBID

    valence_flip: bool = True
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    vad_loss: bool = True
    vad_loss_weight: float = 1.0
    appraisal: bool = True
    appraisal_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.vad_loss_weight < 0 or self.appraisal_weight < 0:
            raise ValueError("loss weights must be >= 0")


@dataclass(frozen=True)
class OptimConfig:
    __pydantic_config__ = _FORBID

    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 20
    batch_size: int = 32  # global batch: examples per optimizer step
    grad_accum: int = 1  # micro-batches per step (per process)
    max_grad_norm: float = 1.0
    schedule_steps: int | None = None  # cosine horizon; None = budget.max_steps
    # Training forward passes under bf16 autocast ("bf16") or in the weights' dtype ("no");
    # "auto" = bf16 where the device computes it natively (CUDA with bf16, CPUs with AVX512-BF16
    # or AMX), else no; the manifest records what it resolved to. Weights, optimizer state and
    # evaluation stay in model.dtype. A MiniLM step is ~1.4x faster on such a CPU
    # (docs/benchmarks.md); on other CPUs bf16 is emulated and slower.
    mixed_precision: Annotated[str, BeforeValidator(_no_is_a_word)] = "no"

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("optim: lr > 0, batch_size >= 1, grad_accum >= 1")
        if self.mixed_precision not in ("no", "bf16", "auto"):
            raise ValueError(
                f"optim.mixed_precision={self.mixed_precision!r}; use no, bf16 or auto"
            )
        if self.batch_size % self.grad_accum:
            raise ValueError(
                f"optim.batch_size={self.batch_size} is not divisible by "
                f"optim.grad_accum={self.grad_accum}"
            )


@dataclass(frozen=True)
class BudgetConfig:
    """When one budget runs out: finish the step, checkpoint, mark the run budget_exhausted."""

    __pydantic_config__ = _FORBID

    max_steps: int = 1000
    max_train_tokens: int | None = None
    max_wall_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError("budget.max_steps must be >= 1")


@dataclass(frozen=True)
class TrainConfig:
    __pydantic_config__ = _FORBID

    run_name: str = "default"
    output_dir: str = "runs"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    components: ComponentsConfig = field(default_factory=ComponentsConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    log_every: int = 10
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    dev_max_examples: int | None = 500  # dev label-scoring subset logged during training

    def __post_init__(self) -> None:
        if self.log_every < 1 or self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("log_every, checkpoint_every and keep_checkpoints must be >= 1")
        if self.components.appraisal and self.components.appraisal_weight == 0:
            raise ValueError(
                "components.appraisal is on with appraisal_weight=0: switch it off instead"
            )
        if self.components.vad_loss and self.components.vad_loss_weight == 0:
            raise ValueError("components.vad_loss is on with vad_loss_weight=0: switch it off")

    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.run_name

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def hash(self) -> str:
        """sha256 of the canonical JSON of the config (what makes two runs the same)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


_ADAPTER = TypeAdapter(TrainConfig)


def _known_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        keys.append(prefix + f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
        if dataclasses.is_dataclass(default):
            keys += _known_keys(type(default), f"{prefix}{f.name}.")
    return keys


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        known = _known_keys(TrainConfig)
        close = difflib.get_close_matches(loc, known, n=1) or difflib.get_close_matches(
            loc.split(".")[-1], [k.split(".")[-1] for k in known], n=1
        )
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown config key {loc!r}{hint}"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def from_dict(data: dict[str, Any]) -> TrainConfig:
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    except EmoloomError as err:
        raise ConfigError(str(err)) from None


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings; values are parsed as YAML (numbers, lists, null)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as err:
            raise ConfigError(
                f"override {item!r}: value is not valid YAML ({_yaml_problem(err)})"
            ) from None
        _set_dotted(data, key.strip(), value)
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's message on one line: errors are printed as a single line."""
    problem = getattr(err, "problem", None) or str(err)
    return " ".join(problem.split())


def read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file as a dict; ``inherit: other.yaml`` (relative to the file) merges it over
    that file, so per-model configs only state what differs."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: inherit cycle")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, line_start = data.count(b"\n", 0, err.start) + 1, data.rfind(b"\n", 0, err.start) + 1
        raise ConfigError(
            f"{path}:{line}: invalid UTF-8 at byte {err.start - line_start}"
        ) from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML ({_yaml_problem(err)})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    data = loaded or {}
    parent = data.pop("inherit", None)
    if parent is None:
        return data
    return _merge(read_yaml(path.parent / str(parent), (*seen, path.resolve())), data)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a YAML config (or the defaults when `path` is None) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        data = read_yaml(path)
    try:
        return from_dict(apply_overrides(data, overrides or []))
    except ConfigError as err:
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{err}") from None


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    from emoloom.atomic import atomic_write

    with atomic_write(path) as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
