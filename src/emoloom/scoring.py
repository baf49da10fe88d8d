"""Label scoring: the model's label distribution at the first label position.

Feed prompt + the fixed answer opening (``{"labels":["``) and read the next-token distribution
restricted to each label's first token. The trainer uses it for the entropy probe that cools
the A/B mixture and for a cheap dev signal while training; generation-based evaluation lives
in the decoder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from emoloom.contract import Record
from emoloom.losses import label_distribution, normalized_entropy
from emoloom.metrics import classification_metrics
from emoloom.modeling import EmoLoomLM
from emoloom.prompting import PromptEncoder


@torch.no_grad()
def label_probs(
    lm: EmoLoomLM,
    rows: Sequence[tuple[Record, str]],
    encoders: Mapping[str, PromptEncoder],
    pad_id: int,
    batch_size: int = 32,
) -> list[np.ndarray]:
    """p(c) over each row's label set, in row order (model in eval mode, no dropout)."""
    was_training = lm.training
    lm.eval()
    out: list[np.ndarray] = []
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            encoded = [encoders[name].prefix(record) for record, name in chunk]
            prefixes = [e.input_ids for e in encoded]
            prompt_len = torch.tensor([e.prompt_len for e in encoded])
            width = max(len(p) for p in prefixes)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for b, p in enumerate(prefixes):
                ids[b, : len(p)] = torch.tensor(p)
                mask[b, : len(p)] = 1
            last = torch.tensor([len(p) - 1 for p in prefixes])
            logits = lm(ids, mask, torch.arange(len(chunk)), last, prompt_len)
            for b, (_, name) in enumerate(chunk):
                probs = label_distribution(logits[b : b + 1], encoders[name].label_token_ids)
                out.append(probs[0].numpy())
    finally:
        lm.train(was_training)
    return out


def mean_entropy(probs: Sequence[np.ndarray]) -> float:
    return float(np.mean([normalized_entropy(torch.from_numpy(p)).item() for p in probs]))


def top1_macro_f1(
    rows: Sequence[tuple[Record, str]],
    probs: Sequence[np.ndarray],
    encoders: Mapping[str, PromptEncoder],
) -> dict[str, float]:
    """Macro-F1 per label set when each row predicts only its top-scored label (a quick
    training-time signal), scored like `emoloom eval`: multi-label, over every label."""
    result: dict[str, float] = {}
    for name in sorted({n for _, n in rows}):
        labels = encoders[name].label_set.labels
        picked = [
            (record.labels, (labels[int(np.argmax(p))],))
            for (record, n), p in zip(rows, probs, strict=True)
            if n == name
        ]
        gold, pred = zip(*picked, strict=True)
        result[name] = classification_metrics(gold, pred, labels)["macro_f1"]
    return result
