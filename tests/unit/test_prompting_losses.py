"""Prompt encoding (completion = contract line, digit tokens found) and the training losses."""

from __future__ import annotations

import pytest
import torch

from emoloom.config import ModelConfig
from emoloom.contract import Prediction, Record, render
from emoloom.errors import EmoloomError
from emoloom.labels import EMPATHETIC, GOEMOTIONS
from emoloom.losses import (
    appraisal_loss,
    collate,
    expected_vad,
    label_distribution,
    lm_loss,
    normalized_entropy,
    vad_loss,
)
from emoloom.modeling import load_backbone
from emoloom.prompting import DigitVocab, PromptEncoder, render_prompt

TARGET = Prediction(("gratitude", "love"), (0.92, 1.0, 0.05), "goal attained fair treatment")
RECORD = Record(id="r", text="Thank you so much, I love it!", context=("hi", "you ok?"))


@pytest.fixture(scope="module", params=["minilm", "tiny-qwen2", "tiny-llama"])
def tokenizer(request):
    return load_backbone(ModelConfig(name=request.param), seed=0).tokenizer


def test_prompt_names_the_label_set_and_the_output_keys():
    prompt = render_prompt("so happy", ["hello"], EMPATHETIC, rationale=False)
    assert prompt.startswith(
        "Task: empathetic emotion (one label) and VAD. Reply JSON: labels, vad."
    )
    assert "rationale" not in prompt and "afraid" not in prompt
    assert prompt.endswith("Context: hello\nText: so happy")
    multi = render_prompt("x", [], GOEMOTIONS, rationale=True, list_labels=True)
    assert "one or more labels" in multi and "Reply JSON: labels, vad, rationale." in multi
    assert "Labels: admiration, amusement, anger," in multi


def test_completion_is_the_contract_line_and_eos(tokenizer):
    enc = PromptEncoder(tokenizer, GOEMOTIONS)
    example = enc.encode(RECORD, TARGET)
    completion = example.input_ids[example.prompt_len :]
    assert completion[-1] == enc.eos_id
    line = render(TARGET, GOEMOTIONS)
    assert completion[:-1] == tokenizer(line, add_special_tokens=False)["input_ids"]
    # the prompt is exactly what inference feeds (same function, no target)
    assert enc.encode(RECORD).input_ids == example.input_ids[: example.prompt_len]


def test_label_index_points_at_the_first_label_token(tokenizer):
    enc = PromptEncoder(tokenizer, GOEMOTIONS)
    example = enc.encode(RECORD, TARGET)
    first = example.input_ids[example.label_index]
    assert first == enc.label_token_ids[GOEMOTIONS.index("gratitude")]
    assert enc.prefix(RECORD).input_ids == example.input_ids[: example.label_index]


def test_digit_tokens_are_found_with_their_place_values(tokenizer):
    example = PromptEncoder(tokenizer, GOEMOTIONS).encode(RECORD, TARGET)
    digits = DigitVocab(tokenizer)
    values = []
    for tokens in example.numbers:
        assert tokens, "every VAD number has digit tokens"
        total = 0.0
        for t in tokens:
            text = tokenizer.convert_ids_to_tokens(example.input_ids[t.index])
            assert t.group in digits.ids and example.input_ids[t.index] in digits.ids[t.group]
            total += int(text) * t.scale
        values.append(round(total, 4))
    assert values == [0.92, 1.0, 0.05]


def test_tokenizers_split_numbers_as_their_families_do():
    groups = {}
    for name in ("minilm", "tiny-qwen2", "tiny-llama"):
        tok = load_backbone(ModelConfig(name=name), seed=0).tokenizer
        example = PromptEncoder(tok, GOEMOTIONS).encode(RECORD, TARGET)
        groups[name] = [t.group for t in example.numbers[0]]  # 0.92
    assert groups["minilm"] == ["int", "2"]  # 0 . 92: the fraction is one WordPiece token
    assert groups["tiny-qwen2"] == ["int", "1", "1"]  # 0 . 9 2: one token per digit
    assert groups["tiny-llama"][0] == "int"  # digit groups of up to three, as merged


def test_long_inputs_lose_context_then_text_never_the_answer(tokenizer):
    long = Record(
        id="l", text=" ".join(["word"] * 400), context=tuple(f"turn {i}" for i in range(5))
    )
    enc = PromptEncoder(tokenizer, GOEMOTIONS, max_length=150)
    example = enc.encode(long, TARGET)
    assert len(example.input_ids) <= 150 and example.truncated
    line_ids = tokenizer(render(TARGET, GOEMOTIONS), add_special_tokens=False)["input_ids"]
    assert example.input_ids[example.prompt_len : -1] == line_ids
    assert example.supervised == len(line_ids) + 1


def test_a_max_length_too_short_for_the_instructions_is_an_error(tokenizer):
    with pytest.raises(EmoloomError, match="max_length"):
        PromptEncoder(tokenizer, GOEMOTIONS, max_length=70, list_labels=True).encode(RECORD, TARGET)


def _minilm_batch():
    backbone = load_backbone(ModelConfig(name="minilm"), seed=0)
    enc = PromptEncoder(backbone.tokenizer, GOEMOTIONS, max_length=200)
    examples = [
        enc.encode(RECORD, TARGET),
        enc.encode(Record(id="s", text="meh"), Prediction(("neutral",), (0.5, 0.31, 0.4))),
    ]
    return backbone, enc, examples, collate(examples, backbone.tokenizer.pad_token_id)


def test_collate_aligns_every_target_with_the_previous_position():
    _, _, examples, batch = _minilm_batch()
    assert batch.input_ids.shape[0] == 2
    for r, c, y in zip(
        batch.rows.tolist(), batch.cols.tolist(), batch.targets.tolist(), strict=True
    ):
        assert batch.input_ids[r, c + 1] == y
    assert len(batch.targets) == sum(e.supervised for e in examples)
    for b, row in enumerate(batch.label_rows.tolist()):
        assert batch.rows[row] == b and batch.cols[row] + 1 == examples[b].label_index


def test_expected_vad_reads_digit_probabilities():
    backbone, _, _, batch = _minilm_batch()
    digits = DigitVocab(backbone.tokenizer)
    # logits that put all mass on the gold tokens give the gold values exactly
    logits = torch.full((len(batch.targets), len(backbone.tokenizer)), -1e4)
    logits[torch.arange(len(batch.targets)), batch.targets] = 0.0
    assert expected_vad(logits, batch, digits).tolist() == pytest.approx(
        [0.92, 1.0, 0.05, 0.5, 0.31, 0.4]
    )
    assert vad_loss(logits, batch, digits).item() == pytest.approx(0.0, abs=1e-8)
    assert lm_loss(logits, batch).item() == pytest.approx(0.0, abs=1e-6)


def test_vad_loss_gradient_moves_the_expected_value_toward_the_target():
    backbone, _, _, batch = _minilm_batch()
    digits = DigitVocab(backbone.tokenizer)
    logits = torch.zeros((len(batch.targets), len(backbone.tokenizer)), requires_grad=True)
    before = expected_vad(logits, batch, digits).detach()
    vad_loss(logits, batch, digits).backward()
    with torch.no_grad():
        after = expected_vad(logits - 2.0 * logits.grad, batch, digits)
    gap_before = (before - batch.vad_targets).abs()
    gap_after = (after - batch.vad_targets).abs()
    assert bool((gap_after < gap_before).all()), (before, after, batch.vad_targets)


def test_a_near_miss_costs_less_than_a_far_miss_under_the_vad_loss():
    # cross-entropy cannot tell 0.41 from 0.99 for a target of 0.42; the VAD loss can
    backbone, _, _, batch = _minilm_batch()
    digits = DigitVocab(backbone.tokenizer)
    vocab = backbone.tokenizer.get_vocab()

    def loss_with_fraction(token: str) -> float:
        logits = torch.full((len(batch.targets), len(vocab)), -1e4)
        logits[torch.arange(len(batch.targets)), batch.targets] = 0.0
        row = batch.vad_rows["2"][0]  # the fraction token of the first number (0.92)
        logits[row] = -1e4
        logits[row, vocab[token]] = 0.0
        return vad_loss(logits, batch, digits).item()

    assert loss_with_fraction("91") < loss_with_fraction("10")


def test_appraisal_loss_gradient_pulls_implied_atoms_toward_the_verifier():
    backbone, enc, _, batch = _minilm_batch()
    from emoloom.appraisal import profile_matrix

    profiles = {"goemotions": torch.from_numpy(profile_matrix(GOEMOTIONS.labels)).float()}
    tokens = {"goemotions": enc.label_token_ids}
    atoms = torch.tensor([[0.95, 0.7, 0.8, 0.75], [0.1, 0.2, 0.75, 0.4]])  # joy-like, sad-like
    groups = {"goemotions": torch.tensor([0, 1])}
    logits = torch.zeros((len(batch.targets), len(backbone.tokenizer)), requires_grad=True)

    def implied(lg):
        probs = label_distribution(lg[batch.label_rows], enc.label_token_ids)
        return probs @ profiles["goemotions"]

    before = (implied(logits.detach()) - atoms).pow(2).sum()
    appraisal_loss(logits, batch, groups, tokens, profiles, atoms).backward()
    after = (implied(logits.detach() - 20.0 * logits.grad) - atoms).pow(2).sum()
    assert after < before


def test_normalized_entropy_is_one_for_uniform_and_zero_for_certain():
    uniform = torch.full((1, 28), 1 / 28)
    certain = torch.zeros((1, 28))
    certain[0, 3] = 1.0
    assert normalized_entropy(uniform).item() == pytest.approx(1.0)
    assert normalized_entropy(certain).item() == pytest.approx(0.0, abs=1e-6)
