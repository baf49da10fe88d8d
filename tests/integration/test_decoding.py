"""Decoding, batch prediction and evaluation on tiny random models (nothing downloaded)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emoloom.config import ModelConfig, TrainConfig
from emoloom.contract import Record, parse
from emoloom.data import load_split
from emoloom.decoding import AnswerSpace, DecodeConfig
from emoloom.errors import EmoloomError
from emoloom.evaluate import evaluate, polarity, protocol_turns, stratified_order
from emoloom.inference import load_model, make_decoder
from emoloom.labels import DAILYDIALOG, EMPATHETIC, GOEMOTIONS
from emoloom.predict import predict_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "corpora"
WORDS = "happy sad angry love hate great terrible fine okay worried calm excited bored".split()


def texts(n: int) -> list[Record]:
    return [
        Record(id=f"t{i}", text=f"I feel {WORDS[i % len(WORDS)]} about thing {i} today")
        for i in range(n)
    ]


@pytest.fixture(scope="module", params=["tiny-qwen2", "tiny-llama"])
def model(request):
    return load_model(model=request.param)


def decoder_for(model, label_sets=("goemotions",), **kwargs):
    cfg, backbone = model
    return make_decoder(cfg, backbone, list(label_sets), DecodeConfig(**kwargs))


def test_constrained_decoding_is_always_valid_even_for_a_random_model(model):
    rows = [(r, "goemotions" if i % 2 else "empathetic") for i, r in enumerate(texts(200))]
    results = decoder_for(model, ("goemotions", "empathetic"), batch_size=32).decode(rows)
    assert len(results) == 200 and all(r.parse_ok for r in results)
    for (_, name), result in zip(rows, results, strict=True):
        label_set = GOEMOTIONS if name == "goemotions" else EMPATHETIC
        assert parse(result.line, label_set) == result.prediction  # the line is canonical
        assert result.prediction.labels and set(result.prediction.labels) <= set(label_set.labels)
        if not label_set.multi_label:
            assert len(result.prediction.labels) == 1
        assert len(result.prediction.rationale.split()) <= 8
    # forced tokens cost no model call
    assert sum(r.model_calls for r in results) < sum(r.generated_tokens for r in results) / 2


def test_free_decoding_reports_its_real_parse_rate(model):
    results = decoder_for(model, mode="free", max_new_tokens=32, batch_size=16).decode(
        [(r, "goemotions") for r in texts(40)]
    )
    rate = sum(r.parse_ok for r in results) / len(results)
    assert rate < 1.0  # a random model does not write JSON by chance
    failed = [r for r in results if not r.parse_ok]
    assert all(r.failure and r.prediction is None and r.line is None for r in failed)
    assert all(r.model_calls <= 32 for r in results)


def test_greedy_decoding_is_deterministic_across_runs_and_batch_sizes(model):
    rows = [(r, "goemotions") for r in texts(24)]
    one = [r.line for r in decoder_for(model, batch_size=1).decode(rows)]
    eight = [r.line for r in decoder_for(model, batch_size=8).decode(rows)]
    again = [r.line for r in decoder_for(model, batch_size=8).decode(rows)]
    assert one == eight == again


def test_rows_are_batched_by_prompt_length_and_returned_in_input_order(model, monkeypatch):
    from emoloom.decoding import Decoder

    rows = [
        (Record(id=f"r{i}", text=" ".join(WORDS[: (12 if i % 2 else 1)]) + f" {i}"), "goemotions")
        for i in range(8)
    ]  # long, short, long, short, ...
    alone = [r.line for r in decoder_for(model, batch_size=1).decode(rows)]
    batches: list[list[int]] = []
    original = Decoder._constrained

    def spy(self, chunk, prompts, **kwargs):
        batches.append([len(p) for p in prompts])
        return original(self, chunk, prompts, **kwargs)

    monkeypatch.setattr(Decoder, "_constrained", spy)
    results = decoder_for(model, batch_size=4).decode(rows)
    assert [r.line for r in results] == alone  # input order, same answers
    assert len(batches) == 2 and max(batches[0]) < min(batches[1])  # short rows together


def test_kv_on_and_kv_off_agree_in_fp32(model):
    rows = [(r, "goemotions") for r in texts(12)]
    off = [r.line for r in decoder_for(model, use_cache=False).decode(rows)]
    on = [r.line for r in decoder_for(model, use_cache=True).decode(rows)]
    assert off == on


def test_kv_on_constrained_runs_the_prompts_once_then_only_new_answer_tokens(model):
    cfg, backbone = model
    body = backbone.lm.body
    widths: list[tuple[int, int, bool]] = []

    def spy(module, args, kwargs):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        widths.append((*kwargs["input_ids"].shape, cache is not None))

    rows = [(Record(id=f"r{i}", text=" ".join(WORDS[: 2 + i])), "goemotions") for i in range(6)]
    handle = body.register_forward_pre_hook(spy, with_kwargs=True)
    try:
        results = decoder_for(model, use_cache=True, batch_size=6).decode(rows)
    finally:
        handle.remove()
    prompt = max(len(backbone.tokenizer(r.text)["input_ids"]) for r, _ in rows)
    assert widths[0][0] == 6 and widths[0][2] is False and widths[0][1] >= prompt  # prompts
    later = widths[1:]
    assert later and all(cached for _, _, cached in later)
    assert len(widths) == 1 + max(r.model_calls for r in results)  # one call per step, batched
    # incremental: each call feeds only tokens no earlier call confirmed, so all the calls
    # together feed about one answer (plus guesses the model rejected), not one per call
    longest = max(r.generated_tokens for r in results)
    fed = sum(width for _, width, _ in later)
    assert fed < 2 * longest
    off = decoder_for(model, use_cache=False, batch_size=6).decode(rows)
    assert [r.line for r in results] == [r.line for r in off]


def test_speculating_on_predictable_decisions_saves_calls_and_changes_no_answer(model, monkeypatch):
    rows = [(r, "goemotions") for r in texts(16)]
    speculative = decoder_for(model, batch_size=8).decode(rows)
    monkeypatch.setattr(
        AnswerSpace, "guess", lambda self, s, lookahead=False: None
    )  # one decision per call
    plain = decoder_for(model, batch_size=8).decode(rows)
    assert [r.line for r in speculative] == [r.line for r in plain]
    # every VAD number costs one call instead of two (integer digit and fraction together)
    assert sum(r.model_calls for r in speculative) <= sum(r.model_calls for r in plain) - 3 * 16


@pytest.fixture(scope="module", params=["minilm", "tiny-qwen2"])
def prefix_lm(request):
    return load_model(model=request.param, prompt_attention="bidirectional")


def test_a_bidirectional_prompt_decodes_alike_kv_off_kv_on_batched_and_speculative(
    prefix_lm, monkeypatch
):
    rows = [(r, "goemotions") for r in texts(12)]
    off = [r.line for r in decoder_for(prefix_lm, batch_size=5).decode(rows)]
    assert off == [r.line for r in decoder_for(prefix_lm, batch_size=12).decode(rows)]
    assert off == [r.line for r in decoder_for(prefix_lm, use_cache=True).decode(rows)]
    free = decoder_for(prefix_lm, mode="free", max_new_tokens=12, batch_size=4).decode(rows[:4])
    free_on = decoder_for(prefix_lm, mode="free", max_new_tokens=12, use_cache=True).decode(
        rows[:4]
    )
    assert [r.raw for r in free] == [r.raw for r in free_on]
    monkeypatch.setattr(AnswerSpace, "guess", lambda self, s, lookahead=False: None)
    assert off == [r.line for r in decoder_for(prefix_lm, batch_size=5).decode(rows)]
    # and the attention really changed: the same weights read causally answer differently
    cfg, backbone = prefix_lm
    backbone.lm.bidirectional_prompt = False
    try:
        causal = [r.line for r in decoder_for(prefix_lm, batch_size=12).decode(rows)]
    finally:
        backbone.lm.bidirectional_prompt = True
    assert causal != off


def test_minilm_constrained_lines_are_rendered_not_detokenised():
    cfg, backbone = load_model(model="minilm")
    decoder = make_decoder(cfg, backbone, ["dailydialog"], DecodeConfig(batch_size=4))
    results = decoder.decode([(r, "dailydialog") for r in texts(8)])
    for result in results:
        assert result.parse_ok and '" labels "' not in result.line
        assert parse(result.line, DAILYDIALOG).ok


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _input_lines(n: int, bad_at: int | None = None) -> list[str]:
    lines = [
        json.dumps({"id": f"r{i}", "text": f"row {i} is {WORDS[i % len(WORDS)]}"}) for i in range(n)
    ]
    if bad_at is not None:
        lines[bad_at] = '{"id": "broken", "text": '  # truncated JSON
    return lines


def test_predict_keeps_every_row_and_marks_a_malformed_one(model, tmp_path):
    source = _jsonl(
        tmp_path / "in.jsonl", _input_lines(10, bad_at=4) + ["", '{"id":"r1","text":"dup"}']
    )
    out = tmp_path / "out.jsonl"
    summary = predict_file(decoder_for(model, batch_size=3), "goemotions", source, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and summary.rows == 12 and summary.errors == 3
    assert [r.get("id") for r in rows[:4]] == ["r0", "r1", "r2", "r3"]
    assert (
        rows[4]["parse_ok"] is False
        and rows[4]["input_line"] == 5
        and "invalid JSON" in rows[4]["error"]
    )
    assert "empty line" in rows[10]["error"] and "duplicate id" in rows[11]["error"]
    assert all(r["parse_ok"] for i, r in enumerate(rows) if i not in (4, 10, 11))
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_predict_strict_stops_at_the_first_bad_row(model, tmp_path):
    from emoloom.errors import DataError

    source = _jsonl(tmp_path / "in.jsonl", _input_lines(6, bad_at=2))
    with pytest.raises(DataError, match=r"in.jsonl:3"):
        predict_file(decoder_for(model), "goemotions", source, tmp_path / "o.jsonl", strict=True)


def test_predict_output_is_byte_identical_across_runs(model, tmp_path):
    source = _jsonl(tmp_path / "in.jsonl", _input_lines(9))
    predict_file(decoder_for(model, batch_size=4), "goemotions", source, tmp_path / "a.jsonl")
    predict_file(decoder_for(model, batch_size=2), "goemotions", source, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_resuming_a_finished_predict_is_a_no_op_that_reports_the_file(model, tmp_path):
    source = _jsonl(tmp_path / "in.jsonl", _input_lines(5, bad_at=2))
    out = tmp_path / "out.jsonl"
    first = predict_file(decoder_for(model, batch_size=2), "goemotions", source, out)
    before = out.read_bytes()
    again = predict_file(decoder_for(model), "goemotions", source, out, resume=True)
    assert out.read_bytes() == before
    assert (again.rows, again.errors, again.parse_ok) == (first.rows, first.errors, first.parse_ok)
    assert again.rows == 5 and again.errors == 1


def test_an_interrupted_predict_resumes_without_duplicates_or_gaps(model, tmp_path):
    source = _jsonl(tmp_path / "in.jsonl", _input_lines(11, bad_at=6))
    straight = tmp_path / "straight.jsonl"
    predict_file(decoder_for(model, batch_size=3), "goemotions", source, straight)

    decoder = decoder_for(model, batch_size=3)
    real = decoder.decode
    calls = {"n": 0}

    def dying(rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(rows)

    decoder.decode = dying
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        predict_file(decoder, "goemotions", source, out)
    partial = tmp_path / "out.jsonl.partial"
    with partial.open("a") as f:  # a torn write, as a SIGKILL mid-line would leave
        f.write('{"id": "r7", "predic')
    decoder.decode = real
    summary = predict_file(decoder, "goemotions", source, out, resume=True)
    assert summary.resumed_from == 6
    assert out.read_bytes() == straight.read_bytes()


@pytest.mark.slow
def test_a_predict_killed_with_sigkill_resumes_to_the_same_file(tmp_path):
    source = _jsonl(tmp_path / "in.jsonl", _input_lines(60, bad_at=13))
    argv = [sys.executable, "-m", "emoloom.cli", "predict", "--model", "tiny-qwen2", "--label-set", "goemotions", "--input", str(source), "--batch-size", "4"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([*argv, "--output", str(tmp_path / "straight.jsonl")], check=True, env=env, capture_output=True)  # fmt: skip
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([*argv, "--output", str(out)], env=env, stderr=subprocess.DEVNULL)
    partial = tmp_path / "out.jsonl.partial"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if partial.exists() and partial.read_text().count("\n") >= 10:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = subprocess.run([*argv, "--output", str(out), "--resume"], env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_bytes() == (tmp_path / "straight.jsonl").read_bytes()
    assert len(out.read_text().splitlines()) == 60


def test_stratified_order_interleaves_labels_and_depends_on_the_seed():
    records = [
        Record(id=str(i), text="x", labels=("joy",) if i < 6 else ("anger",)) for i in range(9)
    ]
    order = stratified_order(records, seed=1)
    assert sorted(order) == list(range(9))
    first = [records[i].labels[0] for i in order[:6]]
    assert first.count("joy") == 3 and first.count("anger") == 3
    assert order == stratified_order(records, seed=1)
    many = [
        Record(id=str(i), text="x", labels=(("joy", "anger", "fear")[i % 3],)) for i in range(60)
    ]
    assert stratified_order(many, seed=1) != stratified_order(many, seed=2)


def _fixture_cfg() -> TrainConfig:
    from emoloom.config import DataConfig

    return TrainConfig(
        model=ModelConfig(name="tiny-qwen2"), data=DataConfig(data_dir=str(FIXTURES))
    )


def test_evaluate_writes_the_per_example_log_and_metrics(tmp_path):
    _, backbone = load_model(model="tiny-qwen2")
    cfg = _fixture_cfg()
    report = evaluate(
        cfg,
        backbone,
        "goemotions",
        "test",
        DecodeConfig(batch_size=2),
        out_dir=tmp_path,
        resamples=20,
    )
    rows = [
        json.loads(line)
        for line in (tmp_path / "predictions" / "goemotions-test.jsonl").read_text().splitlines()
    ]
    saved = json.loads((tmp_path / "eval" / "goemotions-test.json").read_text())
    assert len(rows) == report["examples_evaluated"] == report["examples_total"] == 3
    assert saved["metrics"]["parse_ok"] == 1.0
    strict = saved["metrics"]["strict"]
    assert {"macro_f1", "macro_recall", "micro_f1", "exact_match", "vad_score"} <= set(
        strict["headline"]
    )
    assert set(strict["ci"]["macro_f1"]) == {"value", "ci_low", "ci_high"}
    assert len(strict["classification"]["per_label"]) == 28 and "ekman" in saved


def test_dailydialog_is_scored_through_the_goemotions_prompt_and_mapping(tmp_path):
    _, backbone = load_model(model="tiny-qwen2")
    report = evaluate(
        _fixture_cfg(),
        backbone,
        "dailydialog",
        "test",
        DecodeConfig(batch_size=4),
        out_dir=tmp_path,
        resamples=20,
    )
    assert (
        report["prompt_label_set"] == "goemotions" and report["target_label_set"] == "dailydialog"
    )
    rows = [
        json.loads(line)
        for line in (tmp_path / "predictions" / "dailydialog-test.jsonl").read_text().splitlines()
    ]
    assert all(set(r["pred_labels"]) <= set(DAILYDIALOG.labels) for r in rows)
    assert all(set(r["pred_prompt_labels"]) <= set(GOEMOTIONS.labels) for r in rows)
    assert "macro_f1_all_classes" in report and "macro_f1_without_excluded" in report


def _capture_decoders(monkeypatch) -> list:
    import emoloom.evaluate as ev

    made = []

    def spy(*args, **kwargs):
        made.append(make_decoder(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ev, "make_decoder", spy)
    return made


@pytest.mark.parametrize("turns, expected", [(None, 0), (2, 2)])
def test_dailydialog_prompts_show_the_utterance_alone_unless_told(
    tmp_path, monkeypatch, turns, expected
):
    _, backbone = load_model(model="tiny-qwen2")
    cfg = _fixture_cfg()
    assert cfg.prompt.max_context_turns == 3  # the run's setting, which the protocol overrides
    made = _capture_decoders(monkeypatch)
    report = evaluate(
        cfg, backbone, "dailydialog", "test", DecodeConfig(batch_size=4), out_dir=tmp_path,
        resamples=20, context_turns=turns,
    )  # fmt: skip
    assert report["context_turns"] == expected
    (decoder,) = made
    encoder = decoder.encoders["goemotions"]
    records = load_split("dailydialog", "test", data_dir=str(FIXTURES)).records
    with_context = [r for r in records if r.context]
    assert with_context  # the fixture has later turns of its dialogues
    for r in with_context:
        alone = encoder.encode(r.model_copy(update={"context": ()})).input_ids
        assert (encoder.encode(r).input_ids == alone) == (expected == 0)


def test_goemotions_and_empathetic_prompts_keep_the_runs_context_setting(tmp_path, monkeypatch):
    _, backbone = load_model(model="tiny-qwen2")
    cfg = _fixture_cfg()
    made = _capture_decoders(monkeypatch)
    report = evaluate(
        cfg, backbone, "empathetic", "test", DecodeConfig(batch_size=4), out_dir=tmp_path,
        resamples=20,
    )  # fmt: skip
    assert report["context_turns"] == cfg.prompt.max_context_turns == 3
    assert made[0].encoders["empathetic"].max_context_turns == 3


def test_protocol_turns_prefers_the_caller_then_the_protocol_then_the_run():
    cfg = _fixture_cfg()
    assert protocol_turns(cfg, "dailydialog") == 0
    assert protocol_turns(cfg, "dailydialog", 1) == 1
    assert protocol_turns(cfg, "goemotions") == protocol_turns(cfg, "empathetic") == 3
    with pytest.raises(EmoloomError, match="context_turns=-1 must be >= 0"):
        protocol_turns(cfg, "goemotions", -1)


def test_a_partial_evaluation_with_other_context_turns_is_not_resumed(tmp_path, monkeypatch):
    _, backbone = load_model(model="tiny-qwen2")
    cfg = _fixture_cfg()

    def crash(name):
        if name == "eval.after_batch":
            raise KeyboardInterrupt

    import emoloom.evaluate as ev

    monkeypatch.setattr(ev, "fault_point", crash)
    with pytest.raises(KeyboardInterrupt):
        evaluate(
            cfg, backbone, "dailydialog", "test", DecodeConfig(batch_size=2), out_dir=tmp_path,
            resamples=20, time_budget=1e6,
        )  # fmt: skip
    monkeypatch.undo()
    with pytest.raises(EmoloomError, match="other examples or decoding settings"):
        evaluate(
            cfg, backbone, "dailydialog", "test", DecodeConfig(batch_size=2), out_dir=tmp_path,
            resamples=20, time_budget=1e6, resume=True, context_turns=3,
        )  # fmt: skip
    report = evaluate(
        cfg, backbone, "dailydialog", "test", DecodeConfig(batch_size=2), out_dir=tmp_path,
        resamples=20, time_budget=1e6, resume=True,
    )  # fmt: skip
    assert report["context_turns"] == 0 and report["examples_evaluated"] == report["examples_total"]


def test_a_time_budget_stops_early_and_says_how_many_were_evaluated(tmp_path):
    _, backbone = load_model(model="tiny-qwen2")
    report = evaluate(
        _fixture_cfg(),
        backbone,
        "goemotions",
        "train",
        DecodeConfig(batch_size=1),
        out_dir=tmp_path,
        time_budget=1e-9,
        resamples=20,
    )
    assert report["examples_evaluated"] == 1 < report["examples_total"]


def test_polarity_reports_rates_over_the_flipped_pairs():
    _, backbone = load_model(model="tiny-qwen2")
    result = polarity(_fixture_cfg(), backbone, DecodeConfig(batch_size=4), split="train")
    assert result["pairs"] >= 1
    for key in ("valence_flip_rate", "label_flip_rate", "polarity_flip_rate"):
        assert 0.0 <= result[key] <= 1.0


def test_lookahead_drafts_past_a_missed_guess_saving_calls_kv_off_and_changes_no_answer(model):
    rows = [(r, "goemotions") for r in texts(16)]
    ahead = decoder_for(model, batch_size=8).decode(rows)
    plain_decoder = decoder_for(model, batch_size=8)
    plain_decoder.lookahead = False  # stop each draft at the first decision without a guess
    plain = plain_decoder.decode(rows)
    assert [r.line for r in ahead] == [r.line for r in plain]
    # the model's own choices after a missed guess are next call's guesses, mostly right
    assert sum(r.model_calls for r in ahead) < 0.8 * sum(r.model_calls for r in plain)
    kv_on = decoder_for(model, batch_size=8, use_cache=True).decode(rows)
    assert [r.line for r in kv_on] == [r.line for r in plain]


def test_a_head_and_tail_split_the_tokenizer_does_not_honour_is_caught_and_redone(
    model, monkeypatch
):
    rows = [(r, "goemotions") for r in texts(12)]
    expected = [r.line for r in decoder_for(model, batch_size=6).decode(rows)]
    original = AnswerSpace._split
    redone: list[int] = []

    def unchecked(self, plan, slot):  # trust a cut in the label list: tails then carry labels
        self._splits.setdefault(slot, True)
        return original(self, plan, slot)

    monkeypatch.setattr(AnswerSpace, "_cut", staticmethod(lambda line, slot: 12))
    monkeypatch.setattr(AnswerSpace, "_split", unchecked)
    whole = AnswerSpace.whole_lines
    monkeypatch.setattr(AnswerSpace, "whole_lines", lambda self: redone.append(1) or whole(self))
    assert [r.line for r in decoder_for(model, batch_size=6).decode(rows)] == expected
    assert redone  # the batch was decoded again on whole lines
