"""Corpus readers (one module each) and the registry that loads them into contract records.

from emoloom.data import load_split
split = load_split("goemotions", "dev")      # ../shared/data, EMOLOOM_DATA or the hub
split.records[0].to_line()
"""

from emoloom.data.base import SPLITS, LoadReport, ReadOptions, canonical_split
from emoloom.data.registry import (
    CORPORA,
    LoadedSplit,
    get_corpus,
    load_jsonl,
    load_split,
    resolve_data_dir,
)

__all__ = [
    "CORPORA",
    "SPLITS",
    "LoadReport",
    "LoadedSplit",
    "ReadOptions",
    "canonical_split",
    "get_corpus",
    "load_jsonl",
    "load_split",
    "resolve_data_dir",
]
