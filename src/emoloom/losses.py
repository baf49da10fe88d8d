"""Training losses over logits computed only at supervised positions.

- `lm_loss`: token cross-entropy on the completion (the contract line + eos), the paper's BCE
  over labels and Euclidean VAD regression being carried by the generated tokens.
- `vad_loss` (mission.md, "VAD-preserving loss"): cross-entropy treats 0.41 and 0.99 as equally
  wrong for 0.42. At each VAD digit position take the model's distribution over digit tokens,
  form the expected numeric value of the number, and penalise its squared distance to the
  target. Works for one token per digit (Qwen: 0 . 4 2), a two-digit fraction token (MiniLM:
  0 . 42) or three-digit groups (Llama 3).
- `appraisal_loss`: the atoms implied by the label distribution at the first label position,
  Σ_c p(c)·profile(c), pulled toward the external verifier's atoms for the text.

`collate` turns encoded examples into one padded micro-batch with the index tensors these
losses need; the trainer computes logits once, for every supervised row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from emoloom.prompting import DigitVocab, Encoded


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T), right-padded
    attention_mask: torch.Tensor  # (B, T)
    prompt_len: torch.Tensor  # (B,) tokens before the answer (read by prefix-LM attention)
    rows: torch.Tensor  # (N,) batch index of each supervised target
    cols: torch.Tensor  # (N,) position of the hidden state that predicts it
    targets: torch.Tensor  # (N,) target token ids
    label_rows: torch.Tensor  # (B,) index into N of the first-label-token prediction
    # VAD digit tokens: one entry per token, grouped by candidate set (DigitVocab groups)
    vad_rows: dict[str, torch.Tensor]  # group -> (n,) index into N
    vad_scales: dict[str, torch.Tensor]  # group -> (n,) place value
    vad_numbers: dict[str, torch.Tensor]  # group -> (n,) which number (b * 3 + dim)
    vad_targets: torch.Tensor  # (B * 3,)
    vad_valid: torch.Tensor  # (B * 3,) numbers whose tokens all are digit tokens
    tokens: int  # real (unpadded) tokens in the batch

    @property
    def size(self) -> int:
        return self.input_ids.shape[0]


def collate(examples: Sequence[Encoded], pad_id: int) -> Batch:
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    rows, cols, targets, label_rows = [], [], [], []
    vad: dict[str, tuple[list[int], list[float], list[int]]] = {}
    vad_targets, vad_valid = [], []
    for b, e in enumerate(examples):
        n = len(e.input_ids)
        input_ids[b, :n] = torch.tensor(e.input_ids)
        attention[b, :n] = 1
        first = len(rows)  # row of target index prompt_len
        for t in range(e.prompt_len, n):
            rows.append(b)
            cols.append(t - 1)
            targets.append(e.input_ids[t])
        assert e.label_index is not None and e.vad_target is not None, "training needs targets"
        label_rows.append(first + e.label_index - e.prompt_len)
        for dim, tokens in enumerate(e.numbers):
            vad_targets.append(e.vad_target[dim])
            vad_valid.append(bool(tokens))
            for tok in tokens:
                k_rows, k_scales, k_numbers = vad.setdefault(tok.group, ([], [], []))
                k_rows.append(first + tok.index - e.prompt_len)
                k_scales.append(tok.scale)
                k_numbers.append(b * 3 + dim)
    return Batch(
        input_ids=input_ids,
        attention_mask=attention,
        prompt_len=torch.tensor([e.prompt_len for e in examples]),
        rows=torch.tensor(rows),
        cols=torch.tensor(cols),
        targets=torch.tensor(targets),
        label_rows=torch.tensor(label_rows),
        vad_rows={k: torch.tensor(v[0]) for k, v in vad.items()},
        vad_scales={k: torch.tensor(v[1]) for k, v in vad.items()},
        vad_numbers={k: torch.tensor(v[2]) for k, v in vad.items()},
        vad_targets=torch.tensor(vad_targets, dtype=torch.float32),
        vad_valid=torch.tensor(vad_valid),
        tokens=int(attention.sum()),
    )


def lm_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    return F.cross_entropy(logits, batch.targets)


def expected_vad(logits: torch.Tensor, batch: Batch, digits: DigitVocab) -> torch.Tensor:
    """Expected value of each VAD number under the model, shape (B * 3,)."""
    expected = torch.zeros(batch.vad_targets.shape[0], dtype=logits.dtype)
    for k, rows in batch.vad_rows.items():
        candidates = logits[rows][:, digits.ids[k]]  # (n_k, n_candidates)
        values = torch.softmax(candidates, dim=-1) @ digits.values[k]
        expected = expected.index_add(0, batch.vad_numbers[k], values * batch.vad_scales[k])
    return expected


def vad_loss(logits: torch.Tensor, batch: Batch, digits: DigitVocab) -> torch.Tensor:
    if not bool(batch.vad_valid.any()):
        return logits.new_zeros(())
    expected = expected_vad(logits, batch, digits)
    err = (expected - batch.vad_targets)[batch.vad_valid]
    return (err**2).mean()


def label_distribution(
    logits_at_label: torch.Tensor, label_token_ids: torch.Tensor
) -> torch.Tensor:
    """p(c) over a label set from next-token logits at the first label position. Labels whose
    first tokens coincide share that logit (and so split its mass evenly)."""
    return torch.softmax(logits_at_label[:, label_token_ids], dim=-1)


def normalized_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of each row divided by log(C): 1 = uniform, 0 = certain."""
    ent = -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)
    return ent / torch.log(torch.tensor(float(probs.shape[-1])))


def appraisal_loss(
    logits: torch.Tensor,
    batch: Batch,
    groups: Mapping[str, torch.Tensor],
    label_token_ids: Mapping[str, torch.Tensor],
    profiles: Mapping[str, torch.Tensor],
    atoms: torch.Tensor,
) -> torch.Tensor:
    """MSE between Σ_c p(c)·profile(c) and the verifier's atoms (B, 4).

    `groups` maps a label-set name to the batch indices of its examples: each label set has
    its own label tokens and profile matrix.
    """
    total = logits.new_zeros(())
    for name, idx in groups.items():
        probs = label_distribution(logits[batch.label_rows[idx]], label_token_ids[name])
        implied = probs @ profiles[name]
        total = total + ((implied - atoms[idx]) ** 2).sum()
    return total / (atoms.shape[0] * atoms.shape[1])
