"""`decode.vad`: constrained VAD numbers nearest the expected value ("mean") or greedy."""

from __future__ import annotations

import pytest
import torch

from emoloom.config import ModelConfig
from emoloom.decoding import AnswerSpace, DecodeConfig, _State
from emoloom.errors import EmoloomError
from emoloom.labels import GOEMOTIONS
from emoloom.modeling import load_backbone
from emoloom.prompting import PromptEncoder


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module", params=["minilm", "tiny-qwen2", "tiny-llama"])
def tokenizer(request):
    return load_backbone(ModelConfig(name=request.param), seed=0).tokenizer


def _decode_numbers(tokenizer, vad: str, split: tuple[str, str]) -> list[float]:
    """Drive one answer through AnswerSpace with hand-made logits: labels and rationale take
    the first candidate; every number puts equal mass on two ways to write it (0.2x and 0.8x)
    and prefers "0" at any other digit."""
    space = AnswerSpace(PromptEncoder(tokenizer, GOEMOTIONS, max_length=128, rationale=False))
    s = _State(prompt=[1, 2, 3])
    space.advance(s)
    vocab = len(tokenizer)
    fractions_seen: set[int] = set()
    while not s.done:
        logits = torch.full((vocab,), -30.0)
        names = tokenizer.convert_ids_to_tokens(s.candidates)
        if not s.closed:
            logits[s.candidates[0]] = 0.0
        else:
            first_fraction = len(s.candidates) > 2 and len(s.numbers) not in fractions_seen
            if len(s.candidates) > 2:
                fractions_seen.add(len(s.numbers))
            for token_id, name in zip(s.candidates, names, strict=True):
                name = name.lstrip("#Ġ▁")
                if first_fraction and name in split:  # the two halves of the bimodal number
                    logits[token_id] = 5.0
                elif name in ("0", "00", "000"):
                    logits[token_id] = 3.0 if first_fraction else 10.0
        space.choose(s, logits, vad=vad)
        space.advance(s)
    return s.numbers


def test_mean_takes_the_middle_of_a_bimodal_number_where_greedy_takes_a_mode(tokenizer):
    # MiniLM writes the fraction as one token ("20"), Qwen one digit at a time, Llama in
    # groups of up to three: the two modes are "20"/"80" or "2"/"8" whichever exists.
    vocab = tokenizer.get_vocab()
    split = ("20", "80") if "20" in vocab or "##20" in vocab else ("2", "8")
    greedy = _decode_numbers(tokenizer, "greedy", split)
    mean = _decode_numbers(tokenizer, "mean", split)
    assert all(x in (0.2, 0.8) for x in greedy), greedy
    assert all(0.45 <= x <= 0.55 for x in mean), mean


def test_an_unknown_vad_rule_is_refused():
    with pytest.raises(EmoloomError, match="decode.vad='median'"):
        DecodeConfig(vad="median")
