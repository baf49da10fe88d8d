"""Training data: corpora → pools A (original) and B (Valence Flip) of encoded examples.

For every training row: load it (with its weak or gold VAD), optionally take a seeded subset,
compute its appraisal atoms (the external verifier's prediction, or the label profile when the
verifier is off), build the target line (labels, VAD to two decimals, rationale from the atoms),
and encode prompt + completion for the backbone's tokenizer. Dev rows are kept as records for
label scoring and the entropy probe.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emoloom.appraisal import SentenceEncoder, atom_targets, load_or_fit, rationale_from_atoms
from emoloom.atomic import atomic_write
from emoloom.augment import valence_flip
from emoloom.config import DatasetSpec, TrainConfig
from emoloom.contract import Prediction, Record
from emoloom.data import LoadedSplit, load_jsonl, load_split
from emoloom.data.prepare import sha256_file
from emoloom.errors import EmoloomError
from emoloom.labels import LabelSet, get_label_set
from emoloom.prompting import Encoded, PromptEncoder

log = logging.getLogger(__name__)


@dataclass
class Example:
    record: Record
    label_set: str
    classes: list[int]  # indices into TrainingData.class_names
    atoms: np.ndarray  # (4,) appraisal atoms of the text
    encoded: Encoded


@dataclass
class TrainingData:
    pool_a: list[Example]
    pool_b: list[Example]
    dev: list[tuple[Record, str]]  # (record, label set name)
    encoders: dict[str, PromptEncoder]
    class_names: list[tuple[str, str]]  # (label set, label)
    sources: list[dict[str, Any]] = field(default_factory=list)  # for the manifest
    truncated: int = 0

    def fingerprint(self) -> str:
        """Hash of every source file and record count: a resume must see the same data."""
        blob = json.dumps(self.sources, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def load_spec(spec: DatasetSpec, cfg: TrainConfig, seed: int) -> tuple[LoadedSplit, LabelSet]:
    data = cfg.data
    if spec.corpus == "jsonl":
        assert spec.path and spec.label_set
        label_set = get_label_set(spec.label_set)
        loaded = load_jsonl(
            spec.path, label_set=label_set, data_dir=data.data_dir, options=data.read,
            weak_vad=data.weak_vad,
        )  # fmt: skip
    else:
        loaded = load_split(
            spec.corpus, spec.split, data_dir=data.data_dir, options=data.read,
            weak_vad=data.weak_vad,
        )  # fmt: skip
        assert loaded.label_set is not None, f"{spec.corpus} has no label set to train on"
        label_set = loaded.label_set
    if spec.max_examples is not None and spec.max_examples < len(loaded.records):
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(loaded.records), spec.max_examples, replace=False))
        loaded.records = [loaded.records[i] for i in keep]
    unlabeled = [r.id for r in loaded.records if not r.labels]
    if unlabeled:
        raise EmoloomError(
            f"{loaded.origin}: {len(unlabeled)} training rows have no labels (first: "
            f"{unlabeled[0]}); training needs gold labels"
        )
    return loaded, label_set


def _source_entry(spec: DatasetSpec, loaded: LoadedSplit) -> dict[str, Any]:
    return {
        "corpus": spec.corpus,
        "split": spec.split,
        "path": spec.path,
        "max_examples": spec.max_examples,
        "records": len(loaded.records),
        "skipped": len(loaded.report.skipped),
        "origin": loaded.origin,
        "files": {str(p): sha256_file(p) for p in loaded.files},
    }


class _Precomputed:
    """An encoder that serves embeddings computed once for a known set of texts (the
    verifier is fit on pool A and predicts pools A and B: each text is encoded once)."""

    def __init__(self, name: str, texts: Sequence[str], embeddings: np.ndarray) -> None:
        self.name = name
        self._row = {t: i for i, t in enumerate(texts)}
        self._emb = embeddings

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self._emb[[self._row[t] for t in texts]]


def _embeddings(texts: list[str], cache_dir: Path) -> _Precomputed:
    encoder = SentenceEncoder()
    key = hashlib.sha256(json.dumps([encoder.name, texts], ensure_ascii=False).encode())
    path = cache_dir / f"embeddings-{key.hexdigest()[:16]}.npy"
    if path.exists():
        emb = np.load(path)
    else:
        log.info("encoding %d texts for the appraisal verifier (cached afterwards)", len(texts))
        emb = encoder.encode(texts, batch_size=128)
        with atomic_write(path, "wb") as f:
            np.save(f, emb)
    return _Precomputed(encoder.name, texts, emb)


def _atoms(
    records: Sequence[Record], fit_records: Sequence[Record], cfg: TrainConfig, seed: int
) -> np.ndarray:
    """Verifier atoms for `records` (the verifier is fit on `fit_records`), both cached."""
    if not cfg.components.appraisal:
        return np.stack([atom_targets(r.labels) for r in records]) if records else np.zeros((0, 4))
    cache_dir = Path(cfg.output_dir) / ".cache"
    texts = sorted({r.text for r in records} | {r.text for r in fit_records})
    encoder = _embeddings(texts, cache_dir)
    verifier = load_or_fit(
        [r.text for r in fit_records],
        [r.labels for r in fit_records],
        encoder,
        seed=seed,
        cache_dir=cache_dir,
    )
    return verifier.predict([r.text for r in records], encoder).astype(np.float32)


def build_training_data(cfg: TrainConfig, tokenizer: Any, seeds: dict[str, int]) -> TrainingData:
    encoders: dict[str, PromptEncoder] = {}
    class_names: list[tuple[str, str]] = []
    class_index: dict[tuple[str, str], int] = {}
    sources = []
    a_rows: list[tuple[Record, str]] = []
    b_rows: list[tuple[Record, str]] = []

    def encoder_for(label_set: LabelSet) -> None:
        if label_set.name not in encoders:
            encoders[label_set.name] = PromptEncoder(
                tokenizer,
                label_set,
                max_length=cfg.prompt.max_length,
                rationale=cfg.prompt.rationale,
                max_context_turns=cfg.prompt.max_context_turns,
                list_labels=cfg.prompt.list_labels,
            )

    for i, spec in enumerate(cfg.data.train):
        loaded, label_set = load_spec(spec, cfg, seeds["data"] + i)
        sources.append(_source_entry(spec, loaded))
        if label_set.name not in encoders:
            encoder_for(label_set)
            for label in label_set.labels:
                class_index[(label_set.name, label)] = len(class_names)
                class_names.append((label_set.name, label))
        a_rows += [(r, label_set.name) for r in loaded.records]
        if cfg.components.valence_flip:
            b_rows += [(r, label_set.name) for r in valence_flip(loaded.records, label_set)]

    all_rows = a_rows + b_rows
    atoms = _atoms([r for r, _ in all_rows], [r for r, _ in a_rows], cfg, seeds["appraisal"])
    examples, truncated = [], 0
    for (record, name), atom in zip(all_rows, atoms, strict=True):
        assert record.vad is not None
        target = Prediction(
            record.labels,
            tuple(round(x, 2) for x in record.vad.as_tuple()),  # type: ignore[arg-type]
            rationale_from_atoms(atom) if cfg.prompt.rationale else None,
        )
        encoded = encoders[name].encode(record, target)
        truncated += encoded.truncated
        classes = [class_index[(name, lab)] for lab in record.labels]
        examples.append(Example(record, name, classes, np.asarray(atom), encoded))

    dev: list[tuple[Record, str]] = []
    for i, spec in enumerate(cfg.data.dev):
        loaded, label_set = load_spec(spec, cfg, seeds["data"] + 1000 + i)
        sources.append(_source_entry(spec, loaded) | {"role": "dev"})
        encoder_for(label_set)
        dev += [(r, label_set.name) for r in loaded.records]
    if truncated:
        log.warning("%d of %d training prompts were truncated", truncated, len(examples))
    return TrainingData(
        pool_a=examples[: len(a_rows)],
        pool_b=examples[len(a_rows) :],
        dev=dev,
        encoders=encoders,
        class_names=class_names,
        sources=sources,
        truncated=truncated,
    )
