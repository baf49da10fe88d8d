"""Load a model for inference (a trained run, or a bare backbone) and build its decoder.

cfg, backbone = load_model(run="runs/default")          # the run's config and weights
decoder = make_decoder(cfg, backbone, ["goemotions"], DecodeConfig())
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emoloom.config import ModelConfig, TrainConfig
from emoloom.decoding import DecodeConfig, Decoder
from emoloom.errors import EmoloomError
from emoloom.labels import get_label_set
from emoloom.modeling import Backbone, load_backbone, load_trained
from emoloom.prompting import PromptEncoder
from emoloom.seed import derive_seeds


def load_model(
    run: str | None = None, model: str | None = None, **model_kwargs: Any
) -> tuple[TrainConfig, Backbone]:
    """A trained run (`run`), or an untrained backbone by name (`model`) with default config."""
    if (run is None) == (model is None):
        raise EmoloomError("give either --run RUN_DIR or --model NAME")
    if run is not None:
        return load_trained(run)
    cfg = TrainConfig(model=ModelConfig(name=model, **model_kwargs))
    backbone = load_backbone(cfg.model, seed=derive_seeds(cfg.seed)["model"])
    backbone.lm.eval()
    return cfg, backbone


def make_decoder(
    cfg: TrainConfig,
    backbone: Backbone,
    label_sets: Sequence[str],
    config: DecodeConfig,
    thresholds: Mapping[str, Sequence[float]] | None = None,
) -> Decoder:
    """A decoder for these label sets; `thresholds` (per label set) serve decode.labels
    calibrated (`emoloom.calibration`)."""
    encoders = {
        name: PromptEncoder(
            backbone.tokenizer,
            get_label_set(name),
            max_length=cfg.prompt.max_length,
            rationale=cfg.prompt.rationale,
            max_context_turns=cfg.prompt.max_context_turns,
            list_labels=cfg.prompt.list_labels,
        )
        for name in label_sets
    }
    return Decoder(backbone.lm, backbone.tokenizer, encoders, config, thresholds)
