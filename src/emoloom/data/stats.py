"""Per-split statistics of contract records: counts, label distribution, VAD provenance.

`split_stats` computes a plain dict (what ``emoloom data stats --json`` prints);
`print_stats` renders the same numbers as tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from emoloom.contract import Record
from emoloom.labels import LabelSet


def split_stats(
    corpus: str,
    split: str,
    records: Sequence[Record],
    label_set: LabelSet | None = None,
    skipped: int = 0,
) -> dict[str, Any]:
    n = len(records)
    labels = Counter(lab for r in records for lab in r.labels)
    order = list(label_set.labels) if label_set else sorted(labels)
    order += sorted(set(labels) - set(order))
    sources = Counter(str(r.meta.get("vad_source", "none")) for r in records)
    with_vad = [r.vad for r in records if r.vad is not None]
    return {
        "corpus": corpus,
        "split": split,
        "records": n,
        "skipped": skipped,
        "multi_label_share": sum(len(r.labels) > 1 for r in records) / n if n else 0.0,
        "with_context_share": sum(bool(r.context) for r in records) / n if n else 0.0,
        "mean_words": sum(len(r.text.split()) for r in records) / n if n else 0.0,
        "vad_source_share": {k: sources[k] / n for k in sorted(sources)},
        "vad_mean": {
            dim: (sum(getattr(v, dim) for v in with_vad) / len(with_vad) if with_vad else None)
            for dim in "vad"
        },
        "label_counts": {lab: labels[lab] for lab in order},
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def print_stats(stats: Sequence[dict[str, Any]], console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:  # files and CI logs: wide enough for the overview table
            console = Console(width=140)
    overview = Table(title="Splits", title_justify="left")
    overview.add_column("corpus")
    overview.add_column("split")
    for col in ("records", "skipped", "multi-label", "context", "words", "v", "a", "d"):
        overview.add_column(col, justify="right")
    overview.add_column("VAD from")
    for s in stats:
        means = [f"{m:.3f}" if m is not None else "-" for m in s["vad_mean"].values()]
        overview.add_row(
            s["corpus"],
            s["split"],
            f"{s['records']:,}",
            f"{s['skipped']:,}",
            _pct(s["multi_label_share"]),
            _pct(s["with_context_share"]),
            f"{s['mean_words']:.1f}",
            *means,
            ", ".join(f"{k} {_pct(v)}" for k, v in s["vad_source_share"].items()),
        )
    console.print(overview)
    by_corpus: dict[str, list[dict[str, Any]]] = {}
    for s in stats:
        by_corpus.setdefault(s["corpus"], []).append(s)
    for corpus, splits in by_corpus.items():
        labels = list(dict.fromkeys(lab for s in splits for lab in s["label_counts"]))
        if not labels:
            continue
        table = Table(title=f"{corpus}: label distribution", title_justify="left")
        table.add_column("label")
        for s in splits:
            table.add_column(s["split"], justify="right")
        for lab in labels:
            cells = []
            for s in splits:
                count = s["label_counts"].get(lab, 0)
                cells.append(f"{count:,} ({_pct(count / s['records'] if s['records'] else 0)})")
            table.add_row(lab, *cells)
        console.print(table)
