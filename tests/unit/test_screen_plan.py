"""Screen configs: the shipped ones load; candidates, variants and ablations expand into a plan
that shares identical training runs; bad screen configs are refused with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emoloom.config import ConfigError, load_config
from emoloom.screen import ABLATIONS, Screen, load_screen, plan

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SCREENS = sorted(p for p in CONFIGS.glob("*.yaml") if "screen" in yaml.safe_load(p.read_text()))


def write_screen(tmp_path: Path, **body) -> Path:
    data = {
        "screen": "t",
        "output_dir": str(tmp_path / "out"),
        "base": str(CONFIGS / "debug.yaml"),
        "candidates": [{"name": "qwen", "model": "tiny-qwen2"}],
        **body,
    }
    path = tmp_path / "screen.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_quick_gpu_and_quality_screens_ship_and_expand(tmp_path):
    assert {p.stem for p in SCREENS} == {"quick", "gpu", "quality"}
    quality = Screen(load_screen(CONFIGS / "quality.yaml"), CONFIGS / "quality.yaml")
    # the default recipe exactly (the base with no override), decoded greedy and calibrated
    default, calibrated = quality.candidates
    assert default.train == load_config(
        CONFIGS / "default.yaml",
        [f"run_name={default.train.run_name}", f"output_dir={default.train.output_dir}"],
    )
    assert calibrated.train == default.train and calibrated.train_run == default.train_run
    assert (default.decode.labels, calibrated.decode.labels) == ("greedy", "calibrated")
    quick = Screen(load_screen(CONFIGS / "quick.yaml"), CONFIGS / "quick.yaml")
    assert [c.name for c in quick.candidates] == [
        "minilm",
        "minilm-no-vad-loss",
        "minilm-no-valence-flip",
    ]
    assert {c.train.model.name for c in quick.candidates} == {"minilm"}
    gpu = Screen(load_screen(CONFIGS / "gpu.yaml"), CONFIGS / "gpu.yaml")
    bases = [c for c in gpu.candidates if c.ablation is None]
    assert len(bases) == 7 and all(c.train.model.finetune == "lora" for c in bases)
    assert {c.train.model.dtype for c in gpu.candidates} == {"bfloat16"}
    assert {c.ablation for c in gpu.candidates} - {None} == set(ABLATIONS)


def test_protocol_overrides_hold_for_every_candidate_and_variants_change_one_thing(tmp_path):
    path = write_screen(
        tmp_path,
        overrides={"budget.max_steps": 3, "optim.lr": 0.01},
        candidates=[
            {"name": "qwen", "model": "tiny-qwen2"},
            {"name": "llama", "model": "tiny-llama", "overrides": {"seed": 7}},
        ],
        variants=[{"name": "qwen-lr", "overrides": {"optim.lr": 0.02}}],
    )
    cands = {c.name: c for c in plan(load_screen(path), path, tmp_path / "out" / "t")}
    assert {c.train.budget.max_steps for c in cands.values()} == {3}
    assert cands["llama"].train.model.name == "tiny-llama" and cands["llama"].train.seed == 7
    assert cands["qwen-lr"].train.optim.lr == 0.02 and cands["qwen"].train.optim.lr == 0.01
    assert cands["qwen-lr"].train.model.name == "tiny-qwen2"  # a variant of the first candidate
    assert all(c.train.output_dir == str(tmp_path / "out" / "t" / "runs") for c in cands.values())


def test_each_ablation_switches_off_exactly_its_component(tmp_path):
    path = write_screen(tmp_path, ablate=["all"])
    cands = {c.name: c for c in plan(load_screen(path), path, tmp_path)}
    base = cands["qwen"]
    assert cands["qwen-no-vad-loss"].train.components.vad_loss is False
    assert cands["qwen-no-appraisal"].train.components.appraisal is False
    assert cands["qwen-no-valence-flip"].train.components.valence_flip is False
    assert cands["qwen-no-cooling"].train.components.mixture.cooling is False
    assert cands["qwen-no-constrained"].decode.mode == "free"
    assert cands["qwen-no-kv-off"].decode.use_cache is True
    assert base.decode.mode == "constrained" and base.decode.use_cache is False
    assert base.train.components.vad_loss and base.train.components.valence_flip


def test_decode_only_ablations_reuse_the_parents_training_run(tmp_path):
    path = write_screen(tmp_path, ablate=["constrained", "kv_off", "vad_loss"])
    runs = {c.name: c.train_run for c in plan(load_screen(path), path, tmp_path)}
    assert runs == {
        "qwen": "qwen",
        "qwen-no-constrained": "qwen",
        "qwen-no-kv-off": "qwen",
        "qwen-no-vad-loss": "qwen-no-vad-loss",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ablate": ["vad"]}, "unknown ablation 'vad'"),
        ({"candidates": []}, "at least one candidate"),
        ({"evaluation": [{"corpus": "imdb"}]}, "evaluation corpus 'imdb'"),
        ({"primary": "x"}, "primary: unknown key"),
        ({"decode": {"mode": "beam"}}, "decode.mode='beam'"),
        ({"variants": [{"name": "qwen"}]}, "names must be unique"),
        ({"variants": [{"name": "v", "of": "nope"}]}, "no candidate 'nope'"),
        ({"candidates": [{"name": "a/b", "model": "tiny-qwen2"}]}, "cannot name a candidate"),
        ({"overrides": {"optim.lrr": 1}}, "did you mean"),
    ],
)
def test_bad_screen_configs_are_refused_with_the_key_named(tmp_path, body, message):
    path = write_screen(tmp_path, **body)
    with pytest.raises(ConfigError, match="screen.yaml") as err:
        Screen(load_screen(path), path)
    assert message in str(err.value)


def test_a_screen_directory_with_another_plan_is_refused(tmp_path):
    from emoloom.errors import EmoloomError

    path = write_screen(tmp_path)
    Screen(load_screen(path), path)._check_plan()
    changed = Screen(load_screen(path, ["overrides={budget.max_steps: 2}"]), path)
    with pytest.raises(EmoloomError, match="another plan"):
        changed._check_plan()
    Screen(load_screen(path), path)._check_plan()  # the same plan is accepted again


def test_nested_and_dotted_overrides_set_single_fields_without_dropping_siblings(tmp_path):
    path = write_screen(
        tmp_path,
        overrides={"budget": {"max_steps": 5}, "components.mixture.t0": 3.0},
    )
    (cand,) = plan(load_screen(path), path, tmp_path)
    base = yaml.safe_load((CONFIGS / "debug.yaml").read_text())
    assert cand.train.budget.max_steps == 5
    assert cand.train.components.mixture.t0 == 3.0
    # siblings of the overridden fields keep the base config's values
    assert cand.train.components.mixture.probe_every == base["components"]["mixture"]["probe_every"]
    assert cand.train.budget.max_wall_seconds == base["budget"]["max_wall_seconds"]


def test_screen_overrides_on_the_command_line_reach_the_plan(tmp_path):
    path = write_screen(tmp_path)
    screen = load_screen(path, ["screen=other", "overrides.budget.max_steps=2", "ablate=all"])
    cands = plan(screen, path, tmp_path)
    assert screen.screen == "other" and len(cands) == 1 + len(ABLATIONS)
    assert {c.train.budget.max_steps for c in cands} == {2}
