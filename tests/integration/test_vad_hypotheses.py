"""Decoding with given labels, and VAD averaged over the most likely labels
(`DecodeConfig.vad_hypotheses`): the expected VAD under the model's own label belief."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_decoding import WORDS

from emoloom.contract import Record, parse
from emoloom.decoding import DecodeConfig
from emoloom.errors import EmoloomError
from emoloom.inference import load_model, make_decoder
from emoloom.labels import EMPATHETIC, GOEMOTIONS
from emoloom.scoring import label_probs


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module", params=["tiny-qwen2", "minilm"])
def model(request):
    """A model whose VAD depends on the labels written before it: random weights drawn wide
    enough that the label tokens move the numbers (at the default init they barely do)."""
    cfg, backbone = load_model(model=request.param)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in backbone.lm.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return cfg, backbone


def rows(n: int, label_set: str = "goemotions") -> list[tuple[Record, str]]:
    return [
        (Record(id=f"t{i}", text=f"I feel {WORDS[i % len(WORDS)]} about thing {i}"), label_set)
        for i in range(n)
    ]


def test_given_labels_are_written_and_vad_and_rationale_decoded_after_them(model):
    cfg, backbone = model
    batch = rows(6)
    given = [["sadness", "joy"], ["anger"], ["neutral"]] * 2
    lines = {}
    for cache in (False, True):
        decoder = make_decoder(
            cfg, backbone, ["goemotions"], DecodeConfig(batch_size=4, use_cache=cache)
        )
        results = decoder.decode(batch, labels=given)
        preds = [parse(r.line, GOEMOTIONS) for r in results]
        # canonical order, whatever order they were given in
        assert [p.labels for p in preds] == [("joy", "sadness"), ("anger",), ("neutral",)] * 2
        assert all(p.rationale for p in preds)
        lines[cache] = [r.line for r in results]
    assert lines[False] == lines[True]
    # the VAD is conditioned on the labels: other labels give other numbers somewhere
    other = make_decoder(cfg, backbone, ["goemotions"], DecodeConfig(batch_size=4))
    moved = other.decode(batch, labels=[["fear"]] * 6)
    assert [r.prediction.vad for r in moved] != [parse(x, GOEMOTIONS).vad for x in lines[False]]


def test_invalid_given_labels_are_refused(model):
    cfg, backbone = model
    decoder = make_decoder(cfg, backbone, ["goemotions", "empathetic"], DecodeConfig())
    with pytest.raises(EmoloomError, match="2 label sets for 3 rows"):
        decoder.decode(rows(3), labels=[["joy"], ["joy"]])
    with pytest.raises(EmoloomError, match=r"t0: labels \['glee'\].*unknown: \['glee'\]"):
        decoder.decode(rows(1), labels=[["glee"]])
    with pytest.raises(EmoloomError, match="not a valid empathetic answer"):
        decoder.decode(rows(1, "empathetic"), labels=[list(EMPATHETIC.labels[:2])])
    with pytest.raises(EmoloomError, match="not a valid goemotions answer"):
        decoder.decode(rows(1), labels=[[]])
    free = make_decoder(cfg, backbone, ["goemotions"], DecodeConfig(mode="free"))
    with pytest.raises(EmoloomError, match="needs decode.mode=constrained"):
        free.decode(rows(1), labels=[["joy"]])


def test_vad_hypotheses_write_the_probability_weighted_vad_of_the_top_labels(model):
    cfg, backbone = model
    batch = rows(8)
    k = 3
    plain = make_decoder(cfg, backbone, ["goemotions"], DecodeConfig(batch_size=4))
    base = plain.decode(batch)
    probs = np.stack(
        label_probs(backbone.lm, batch, plain.encoders, backbone.tokenizer.pad_token_id)
    ).astype(np.float64)
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    vads = np.stack(
        [
            [
                r.prediction.vad
                for r in plain.decode(batch, labels=[[GOEMOTIONS.labels[j]] for j in top[:, i]])
            ]  # fmt: skip
            for i in range(k)
        ],
        axis=1,
    )  # (rows, k, 3)
    w = np.take_along_axis(probs, top, axis=1)
    w /= w.sum(axis=1, keepdims=True)
    expected = (w[:, :, None] * vads).sum(axis=1)
    lines = {}
    for cache in (False, True):
        decoder = make_decoder(
            cfg, backbone, ["goemotions"], DecodeConfig(batch_size=4, vad_hypotheses=k,
                                                        use_cache=cache),
        )  # fmt: skip
        results = decoder.decode(batch)
        got = np.array([r.prediction.vad for r in results])
        assert np.abs(got - expected).max() <= 0.005 + 1e-9  # two decimals, as the contract
        for r, b in zip(results, base, strict=True):
            # labels and rationale are the ordinary decode's; only the numbers change
            assert r.prediction.labels == b.prediction.labels
            assert r.prediction.rationale == b.prediction.rationale
            assert parse(r.line, GOEMOTIONS) == r.prediction
            assert r.model_calls > b.model_calls  # the hypotheses' calls are counted
        lines[cache] = [r.line for r in results]
    assert lines[False] == lines[True]
    assert [r.line for r in decoder.decode(batch)] == lines[True]  # deterministic
    assert lines[False] != [r.line for r in base]  # the feature changed some numbers


def test_vad_hypotheses_settings_are_checked(model):
    cfg, backbone = model
    with pytest.raises(EmoloomError, match="vad_hypotheses=0 must be >= 1"):
        DecodeConfig(vad_hypotheses=0)
    with pytest.raises(EmoloomError, match="needs decode.mode=constrained"):
        DecodeConfig(vad_hypotheses=2, mode="free")
    decoder = make_decoder(cfg, backbone, ["goemotions"], DecodeConfig(vad_hypotheses=2))
    with pytest.raises(EmoloomError, match="vad_hypotheses must be 1"):
        decoder.decode(rows(1), labels=[["joy"]])
