"""Tiny random causal LMs of real architectures with an in-process tokenizer.

For tests and ``configs/debug.yaml``: nothing is downloaded. `build_tiny_model("tiny-qwen2")`
gives a 2-layer Qwen2 (hidden 64) with a byte-level BPE tokenizer trained here on prompt-like
text that splits numbers into single digits and carries a ChatML chat template, as Qwen does;
``tiny-llama`` is a 2-layer Llama whose tokenizer groups up to three digits, as Llama 3 does,
and has no chat template. Weights depend only on the torch seed set by the caller.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from emoloom.contract import Prediction, render
from emoloom.labels import LABEL_SETS
from emoloom.prompting import render_prompt

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus() -> list[str]:
    """Prompt-like training text for the tiny BPE (deterministic)."""
    texts = []
    for label_set in LABEL_SETS.values():
        texts.append(
            render_prompt("I am so happy today!", ["hello there"], label_set, rationale=True)
        )
        for i, label in enumerate(label_set.labels):
            vad = ((i * 7) % 101 / 100, (i * 13) % 101 / 100, (i * 29) % 101 / 100)
            texts.append(render(Prediction((label,), vad, "goal attained in control"), label_set))
    texts.append("the a I you it this that was is not no never very really so good bad love hate")
    return texts


@lru_cache(maxsize=2)
def _tokenizer_json(style: str) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    digits = (
        pre_tokenizers.Digits(individual_digits=True)
        if style == "qwen2"
        else pre_tokenizers.Split(r"\d{1,3}", behavior="isolated")
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [digits, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok.to_str()


def build_tiny_tokenizer(name: str) -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    style = "qwen2" if name == "tiny-qwen2" else "llama"
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(style)),
        eos_token="<|im_end|>" if style == "qwen2" else "<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    if style == "qwen2":
        tokenizer.chat_template = CHATML
    return tokenizer


def build_tiny_model(name: str, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tiny_tokenizer(name)
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if name == "tiny-qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=True))
    else:
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=False))
    return model.to(dtype), tokenizer
