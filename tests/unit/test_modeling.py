"""Backbones: the offline MiniLM decoder, tiny in-process models, local-path loading, LoRA."""

from __future__ import annotations

import pytest
import torch

from emoloom.config import LoRAConfig, ModelConfig
from emoloom.errors import EmoloomError
from emoloom.modeling import load_backbone, resolve_mixed_precision


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_minilm_loads_offline_as_a_tied_causal_decoder():
    backbone = load_backbone(ModelConfig(name="minilm"), seed=0)
    model = backbone.model
    assert type(model).__name__ == "BertLMHeadModel" and model.config.is_decoder
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert backbone.total_params == backbone.trainable_params == 22_744_506
    assert model.generation_config.do_sample is False


def test_minilm_head_starts_as_the_identity_transform():
    model = load_backbone(ModelConfig(name="minilm"), seed=0).model
    dense = model.cls.predictions.transform.dense
    assert torch.equal(dense.weight, torch.eye(384)) and not dense.bias.any()


@pytest.mark.parametrize("name", ["minilm", "tiny-qwen2", "tiny-llama"])
def test_attention_is_causal(name):
    backbone = load_backbone(ModelConfig(name=name), seed=0)
    lm = backbone.lm.eval()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    changed = ids.clone()
    changed[0, -1] = 11
    mask = torch.ones_like(ids)
    rows, cols = torch.zeros(4, dtype=torch.long), torch.arange(4)
    with torch.no_grad():
        assert torch.allclose(lm(ids, mask, rows, cols), lm(changed, mask, rows, cols))
        last = torch.tensor([5])
        assert not torch.allclose(lm(ids, mask, rows[:1], last - 1), lm(ids, mask, rows[:1], last))


def test_tiny_models_are_deterministic_given_the_seed():
    a = load_backbone(ModelConfig(name="tiny-llama"), seed=1).model.state_dict()
    b = load_backbone(ModelConfig(name="tiny-llama"), seed=1).model.state_dict()
    c = load_backbone(ModelConfig(name="tiny-llama"), seed=2).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_local_model_directory_loads_through_the_hub_code_path(tmp_path):
    tiny = load_backbone(ModelConfig(name="tiny-qwen2"), seed=0)
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    loaded = load_backbone(ModelConfig(name=str(tmp_path)), seed=0)
    assert type(loaded.model).__name__ == "Qwen2ForCausalLM"
    ids = torch.tensor([[1, 2, 3]])
    args = (ids, torch.ones_like(ids), torch.tensor([0]), torch.tensor([2]))
    with torch.no_grad():
        assert torch.allclose(tiny.lm.eval()(*args), loaded.lm.eval()(*args), atol=1e-5)
    assert loaded.tokenizer.chat_template == tiny.tokenizer.chat_template


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(EmoloomError, match="cannot load"):
        load_backbone(ModelConfig(name=str(tmp_path / "nope")), seed=0)


@pytest.mark.parametrize(
    "name, targets", [("tiny-qwen2", {"q_proj", "v_proj"}), ("minilm", {"query", "value"})]
)
def test_lora_wraps_the_per_architecture_attention_projections(name, targets):
    backbone = load_backbone(ModelConfig(name=name, finetune="lora", lora=LoRAConfig(r=4)), seed=0)
    trainable = [n for n, p in backbone.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable} == targets
    assert backbone.trainable_params < backbone.total_params / 5


def test_explicit_lora_targets_win_over_the_defaults():
    cfg = ModelConfig(
        name="tiny-llama", finetune="lora", lora=LoRAConfig(r=2, target_modules=("o_proj",))
    )
    trainable = [
        n for n, p in load_backbone(cfg, seed=0).model.named_parameters() if p.requires_grad
    ]
    assert trainable and all(".o_proj." in n for n in trainable)


@pytest.mark.parametrize("name", ["minilm", "tiny-qwen2", "tiny-llama"])
def test_the_head_restricted_to_some_tokens_computes_just_those_logits(name):
    lm = load_backbone(ModelConfig(name=name), seed=0).lm.eval()
    hidden = torch.randn(5, lm._hf.config.hidden_size, generator=torch.Generator().manual_seed(0))
    vocab = torch.tensor([3, 17, 40, 41, 99])
    with torch.no_grad():
        full = lm.head(hidden)
        part = lm.head(hidden, vocab)
    assert part.shape == full.shape
    torch.testing.assert_close(part[:, vocab], full[:, vocab])  # the transform is applied too
    others = torch.ones(full.shape[1], dtype=torch.bool)
    others[vocab] = False
    assert torch.isinf(part[:, others]).all() and (part[:, others] < 0).all()


@pytest.mark.parametrize("avx512_bf16, amx, expected", [(True, False, "bf16"), (False, True, "bf16"), (False, False, "no")])  # fmt: skip
def test_auto_mixed_precision_takes_bf16_only_where_the_cpu_has_it(
    monkeypatch, avx512_bf16, amx, expected
):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    cpu = torch.device("cpu")
    assert resolve_mixed_precision("auto", cpu) == expected
    assert resolve_mixed_precision("no", cpu) == "no"  # explicit values are kept as given
    assert resolve_mixed_precision("bf16", cpu) == "bf16"
