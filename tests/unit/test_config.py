"""Typed config: every shipped config loads; unknown keys and contradictions are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emoloom.config import ConfigError, TrainConfig, load_config, save_config

# Training configs; screen configs (a top-level `screen:` key) are tested in test_screen_plan.py.
CONFIGS = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")
    if "screen" not in yaml.safe_load(p.read_text())
)
REAL_MODELS = {
    "qwen-1_8b-chat": "Qwen/Qwen-1_8B-Chat",
    "qwen1.5-1.8b-chat": "Qwen/Qwen1.5-1.8B-Chat",
    "qwen2.5-0.5b-instruct": "Qwen/Qwen2.5-0.5B-Instruct",
    "qwen2.5-1.5b-instruct": "Qwen/Qwen2.5-1.5B-Instruct",
    "smollm2-360m-instruct": "HuggingFaceTB/SmolLM2-360M-Instruct",
    "llama-3.2-1b-instruct": "meta-llama/Llama-3.2-1B-Instruct",
    "gemma-2-2b-it": "google/gemma-2-2b-it",
}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_loads_and_validates(path):
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)
    assert cfg.run_name == path.stem


def test_a_config_ships_for_each_real_base_model_with_lora():
    shipped = {p.stem for p in CONFIGS}
    assert {"default", "debug", *REAL_MODELS} <= shipped
    for stem, model_id in REAL_MODELS.items():
        cfg = load_config(Path(CONFIGS[0].parent / f"{stem}.yaml"))
        assert cfg.model.name == model_id and cfg.model.finetune == "lora"
    assert load_config(CONFIGS[0].parent / "qwen-1_8b-chat.yaml").model.trust_remote_code


def test_default_config_is_the_minilm_recipe_on_goemotions_and_ed():
    cfg = load_config(CONFIGS[0].parent / "default.yaml")
    assert cfg.model.name == "minilm" and cfg.model.finetune == "full"
    assert [s.corpus for s in cfg.data.train] == ["goemotions", "empathetic"]
    assert cfg.budget.max_wall_seconds <= 45 * 60
    comps = cfg.components
    assert comps.valence_flip and comps.mixture.enabled and comps.vad_loss and comps.appraisal


def test_overrides_set_nested_keys_with_yaml_values():
    cfg = load_config(
        None,
        [
            "optim.lr=3e-4",
            "budget.max_steps=7",
            "model.lora.target_modules=[q_proj]",
            "data.data_dir=null",
        ],
    )
    assert cfg.optim.lr == 3e-4 and cfg.budget.max_steps == 7
    assert cfg.model.lora.target_modules == ("q_proj",) and cfg.data.data_dir is None


def test_mixed_precision_no_stays_a_word_in_yaml(tmp_path):
    assert load_config(None, ["optim.mixed_precision=no"]).optim.mixed_precision == "no"
    path = tmp_path / "c.yaml"
    path.write_text("optim: {mixed_precision: no}\n")
    assert load_config(path).optim.mixed_precision == "no"
    assert load_config(None, ["optim.mixed_precision=bf16"]).optim.mixed_precision == "bf16"
    with pytest.raises(ConfigError, match="optim.mixed_precision"):
        load_config(None, ["optim.mixed_precision=yes"])  # YAML true is not a precision


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.lrr=1"], "unknown config key 'optim.lrr'; did you mean 'optim.lr'"),
        (["components.valence_flp=false"], "did you mean 'components.valence_flip'"),
        (["optim.batch_size=10", "optim.grad_accum=3"], "not divisible"),
        (["components.appraisal_weight=0"], "switch it off"),
        (["model.finetune=partial"], "model.finetune"),
        (["optim.lr=fast"], "optim.lr"),
        (["components.mixture.t0=0.5"], "t0"),
        (["data.weak_vad.lexicon=vader"], "Unknown lexicon"),
        (["noequals"], "not key=value"),
        (["optim.mixed_precision=fp8"], "optim.mixed_precision='fp8'; use no, bf16 or auto"),
    ],
)
def test_bad_configs_are_refused_with_a_clear_message(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("'", "'")):
        load_config(None, overrides)


def test_inherit_merges_the_parent_and_errors_name_the_file(tmp_path):
    (tmp_path / "base.yaml").write_text("run_name: base\noptim: {lr: 0.5, batch_size: 4}\n")
    (tmp_path / "child.yaml").write_text("inherit: base.yaml\nrun_name: child\noptim: {lr: 0.25}\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.run_name, cfg.optim.lr, cfg.optim.batch_size) == ("child", 0.25, 4)
    (tmp_path / "bad.yaml").write_text("optim: {warmup: 3}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'optim.warmup'"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_saved_config_reloads_to_the_same_config_and_hash(tmp_path):
    cfg = load_config(CONFIGS[0].parent / "debug.yaml", ["seed=3"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg and again.hash() == cfg.hash()
    assert load_config(tmp_path / "config.yaml", ["seed=4"]).hash() != cfg.hash()
