"""`model.prompt_attention: bidirectional`: a prefix LM whose answer stays causal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emoloom.config import ModelConfig
from emoloom.contract import Prediction, Record
from emoloom.labels import GOEMOTIONS
from emoloom.losses import collate, label_distribution
from emoloom.modeling import load_backbone, prefix_lm_mask
from emoloom.prompting import PromptEncoder
from emoloom.scoring import label_probs


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _lm(name: str, attention: str):
    return load_backbone(ModelConfig(name=name, prompt_attention=attention), seed=0).lm.eval()


def _hidden_logits(lm, ids, prompt_len):
    mask = torch.ones_like(ids)
    n = ids.shape[1]
    rows, cols = torch.zeros(n, dtype=torch.long), torch.arange(n)
    with torch.no_grad():
        return lm(ids, mask, rows, cols, torch.tensor([prompt_len]))


def test_the_mask_lets_the_prompt_see_itself_and_keeps_the_answer_causal():
    mask = prefix_lm_mask(torch.tensor([[1, 1, 1, 1, 1, 0]]), torch.tensor([3]), torch.float32)
    allowed = (mask[0, 0] == 0).int().tolist()
    assert allowed == [
        [1, 1, 1, 0, 0, 0],  # prompt rows see the whole prompt
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],  # answer rows: prompt + answer so far
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 0],  # the padding column is never seen
    ]


@pytest.mark.parametrize("name", ["minilm", "tiny-qwen2", "tiny-llama"])
def test_prompt_tokens_see_later_prompt_tokens_only_when_bidirectional(name):
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12]])
    later_prompt = ids.clone()
    later_prompt[0, 3] = 13  # the last prompt token (prompt_len 4)
    for attention, sees in (("causal", False), ("bidirectional", True)):
        lm = _lm(name, attention)
        a, b = _hidden_logits(lm, ids, 4), _hidden_logits(lm, later_prompt, 4)
        assert torch.allclose(a[:3], b[:3]) is not sees, attention


@pytest.mark.parametrize("name", ["minilm", "tiny-qwen2"])
def test_answer_tokens_never_see_later_answer_tokens(name):
    lm = _lm(name, "bidirectional")
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12]])
    later_answer = ids.clone()
    later_answer[0, 6] = 13
    a, b = _hidden_logits(lm, ids, 4), _hidden_logits(lm, later_answer, 4)
    assert torch.allclose(a[:6], b[:6], atol=1e-6)
    assert not torch.allclose(a[6:], b[6:])


@pytest.mark.parametrize("name", ["minilm", "tiny-qwen2"])
def test_training_batches_and_label_scoring_see_the_same_first_label_logits(name):
    """The trainer (collate, padded batch) and evaluation (prefix scoring) must give the model
    the same attention, or training would teach a function evaluation never calls."""
    backbone = load_backbone(ModelConfig(name=name, prompt_attention="bidirectional"), seed=0)
    lm = backbone.lm.eval()
    encoder = PromptEncoder(backbone.tokenizer, GOEMOTIONS, max_length=128)
    records = [
        Record(id="a", text="I am so happy for you, this is the best news"),
        Record(id="b", text="no"),
    ]
    target = Prediction(("joy",), (0.8, 0.5, 0.6), None)
    batch = collate([encoder.encode(r, target) for r in records], backbone.tokenizer.pad_token_id)
    with torch.no_grad():
        logits = lm(batch.input_ids, batch.attention_mask, batch.rows, batch.cols, batch.prompt_len)
    trained = label_distribution(logits[batch.label_rows], encoder.label_token_ids)
    scored = label_probs(
        lm,
        [(r, "goemotions") for r in records],
        {"goemotions": encoder},
        backbone.tokenizer.pad_token_id,
    )
    assert torch.allclose(trained, torch.from_numpy(np.stack(scored)), atol=1e-5)


def test_bidirectional_needs_prompt_lengths():
    lm = _lm("tiny-llama", "bidirectional")
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match="prompt length"):
        lm(ids, torch.ones_like(ids), torch.tensor([0]), torch.tensor([2]))


def test_an_unknown_prompt_attention_is_refused():
    with pytest.raises(ValueError, match="prompt_attention='both'"):
        ModelConfig(prompt_attention="both")
