"""decode.labels calibrated: the decoder writes the label set the threshold rule picks from
the first label decision's distribution; eval fits the thresholds on dev and caches them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_decoding import FIXTURES, WORDS, _fixture_cfg  # the same fixture corpora

from emoloom.calibration import decide
from emoloom.cli import main
from emoloom.contract import Record, parse
from emoloom.decoding import DecodeConfig
from emoloom.errors import EmoloomError
from emoloom.evaluate import evaluate, polarity
from emoloom.inference import load_model, make_decoder
from emoloom.labels import DAILYDIALOG, EMPATHETIC, GOEMOTIONS
from emoloom.scoring import label_probs


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module", params=["tiny-qwen2", "minilm"])
def model(request):
    return load_model(model=request.param)


def rows(n: int, label_set: str) -> list[tuple[Record, str]]:
    return [
        (Record(id=f"t{i}", text=f"I feel {WORDS[i % len(WORDS)]} about thing {i}"), label_set)
        for i in range(n)
    ]


@pytest.mark.parametrize("label_set", [GOEMOTIONS, EMPATHETIC])
def test_the_decoder_writes_the_labels_the_threshold_rule_picks(model, label_set):
    cfg, backbone = model
    batch = rows(16, label_set.name)
    plain = make_decoder(cfg, backbone, [label_set.name], DecodeConfig())
    probs = np.stack(
        label_probs(backbone.lm, batch, plain.encoders, backbone.tokenizer.pad_token_id)
    )
    # each label's median over the rows: a random model's distributions barely differ
    # between texts, and relative to these thresholds the rows still pick different labels
    thresholds = np.median(probs, axis=0)
    expected = decide(probs, thresholds, label_set.multi_label)
    want = [tuple(np.array(label_set.labels)[row]) for row in expected]
    assert len(set(want)) > 1  # the rule picks different label sets on these rows
    greedy = [r.prediction.labels for r in plain.decode(batch)]
    calibrated = {}
    for cache in (False, True):
        decoder = make_decoder(
            cfg, backbone, [label_set.name],
            DecodeConfig(labels="calibrated", use_cache=cache, batch_size=5),
            {label_set.name: thresholds},
        )  # fmt: skip
        results = decoder.decode(batch)
        assert [r.prediction.labels for r in results] == want
        assert all(parse(r.line, label_set) == r.prediction for r in results)
        calibrated[cache] = [r.line for r in results]
    assert calibrated[False] == calibrated[True]
    if label_set.multi_label:
        assert want != greedy  # the rule changed something (multi-label sets here)


def test_calibrated_decoding_without_thresholds_is_refused(model):
    cfg, backbone = model
    with pytest.raises(EmoloomError, match="no thresholds for label set 'goemotions'"):
        make_decoder(cfg, backbone, ["goemotions"], DecodeConfig(labels="calibrated"))
    with pytest.raises(EmoloomError, match="needs decode.mode=constrained"):
        DecodeConfig(labels="calibrated", mode="free")


def test_eval_fits_thresholds_on_dev_caches_them_and_decodes_with_them(tmp_path):
    _, backbone = load_model(model="tiny-qwen2")
    cfg = _fixture_cfg()
    decode = DecodeConfig(batch_size=4, labels="calibrated", calibration_rows=50)
    report = evaluate(cfg, backbone, "goemotions", "test", decode, out_dir=tmp_path, resamples=20)
    cal = report["calibration"]
    assert report["decode"]["labels"] == "calibrated"
    assert cal["split"] == "dev" and cal["corpus"] == "goemotions" and cal["rows"] >= 1
    assert cal["dev_macro_f1"] >= cal["dev_macro_f1_top1"]
    assert cal["sample"] == "random"  # a full evaluation: dev at natural label frequencies
    path = tmp_path / "calibration" / "goemotions-dev-random.json"
    saved = json.loads(path.read_text())
    assert list(cal["thresholds"].values()) == saved["thresholds"]
    # the predictions are the rule's choices under those thresholds
    rows_out = [json.loads(x) for x in (tmp_path / "predictions" / "goemotions-test.jsonl").open()]
    decoder = make_decoder(cfg, backbone, ["goemotions"], DecodeConfig())
    from emoloom.data import load_split

    records = load_split("goemotions", "test", data_dir=str(FIXTURES)).records
    probs = np.stack(
        label_probs(
            backbone.lm,
            [(r, "goemotions") for r in records],
            decoder.encoders,
            backbone.tokenizer.pad_token_id,
        )
    )
    chosen = decide(probs, saved["thresholds"], True)
    assert [r["pred_labels"] for r in rows_out] == [
        [lab for lab, on in zip(GOEMOTIONS.labels, row, strict=True) if on] for row in chosen
    ]
    # a second evaluation reuses the cached thresholds instead of fitting again
    before = path.stat().st_mtime_ns
    again = evaluate(cfg, backbone, "goemotions", "test", decode, out_dir=tmp_path, resamples=20)
    assert path.stat().st_mtime_ns == before and again["calibration"] == cal
    # polarity reads the same cache
    pol = polarity(
        cfg, backbone, decode, split="train", limit=2, calibration_dir=tmp_path / "calibration"
    )
    assert pol["pairs"] >= 1 and path.stat().st_mtime_ns == before


def test_dailydialog_thresholds_are_fit_in_its_own_classes_through_the_mapping(tmp_path):
    _, backbone = load_model(model="tiny-qwen2")
    decode = DecodeConfig(batch_size=4, labels="calibrated", calibration_rows=40)
    report = evaluate(
        _fixture_cfg(), backbone, "dailydialog", "test", decode, out_dir=tmp_path, resamples=20,
        time_budget=1e6,
    )  # fmt: skip
    cal = report["calibration"]
    assert cal["label_set"] == "goemotions" and cal["target"] == "dailydialog"
    # time-bounded: the evaluation reads test in label-stratified order, and dev is drawn alike
    assert cal["sample"] == "stratified"
    assert (tmp_path / "calibration" / "dailydialog-dev-stratified.json").is_file()
    assert set(cal["thresholds"]) == set(GOEMOTIONS.labels)
    rows_out = [json.loads(x) for x in (tmp_path / "predictions" / "dailydialog-test.jsonl").open()]
    assert all(set(r["pred_labels"]) <= set(DAILYDIALOG.labels) for r in rows_out)


def test_dailydialog_thresholds_are_fit_on_prompts_like_the_evaluations(tmp_path, monkeypatch):
    """The dev prompts show the prior turns the test prompts show (the protocol's 0 unless
    told), and a cache fitted with other turns is fitted again, not reused."""
    import emoloom.calibration as calibration

    _, backbone = load_model(model="tiny-qwen2")
    seen = []
    real = calibration.label_probs

    def spy(lm, rows, encoders, pad_id, **kwargs):
        seen.append({n: e.max_context_turns for n, e in encoders.items()})
        return real(lm, rows, encoders, pad_id, **kwargs)

    monkeypatch.setattr(calibration, "label_probs", spy)
    decode = DecodeConfig(batch_size=4, labels="calibrated", calibration_rows=40)
    path = tmp_path / "calibration" / "dailydialog-dev-stratified.json"
    fits = {}
    for turns in (None, 2, None):
        report = evaluate(
            _fixture_cfg(), backbone, "dailydialog", "test", decode, out_dir=tmp_path,
            resamples=20, time_budget=1e6, context_turns=turns,
        )  # fmt: skip
        assert report["calibration"]["context_turns"] == report["context_turns"] == (turns or 0)
        fits[turns] = json.loads(path.read_text())["key"]
    assert seen == [{"goemotions": 0}, {"goemotions": 2}, {"goemotions": 0}]
    assert fits[None] != fits[2]


def test_predict_with_calibrated_labels_needs_a_matching_calibration_file(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "a", "text": "I am so happy"}) + "\n")
    out = tmp_path / "out.jsonl"
    base = ["predict", "--model", "tiny-qwen2", "--input", str(src), "--output", str(out)]
    assert main([*base, "--labels", "calibrated"]) != 0
    assert "needs --calibration FILE" in capsys.readouterr().err
    cal = {
        "label_set": "empathetic", "thresholds": [0.5] * len(EMPATHETIC.labels),
        "corpus": "empathetic", "split": "dev", "target": "empathetic", "rows": 1,
        "sample": "random",
        "dev_macro_f1_top1": 0.0, "dev_macro_f1": 0.0, "seconds": 0.0, "key": "k",
    }  # fmt: skip
    (tmp_path / "ed.json").write_text(json.dumps(cal))
    assert main([*base, "--label-set", "goemotions", "--calibration", str(tmp_path / "ed.json")])
    assert "thresholds for empathetic, not for goemotions" in capsys.readouterr().err
    cal.update(label_set="goemotions", thresholds=[1.0] * 27 + [1e-6])  # always "neutral"
    (tmp_path / "ge.json").write_text(json.dumps(cal))
    code = main([*base, "--label-set", "goemotions", "--calibration", str(tmp_path / "ge.json")])
    row = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert code == 0 and row["prediction"]["labels"] == ["neutral"]
    assert row["decode"]["labels"] == "calibrated"
