"""Write corpora as contract JSONL, with a record of exactly what was read.

``emoloom data prepare --out-dir DIR`` writes ``DIR/<corpus>/<split>.jsonl`` for each split and
``DIR/prepare.json``: contract version, options, and per file the origin, the sha256 and size of
every source file, record and skip counts, and the first skip reasons.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from emoloom.atomic import atomic_write
from emoloom.contract import CONTRACT_VERSION
from emoloom.data.base import SPLITS, LoadReport, ReadOptions
from emoloom.data.jsonl import read_jsonl
from emoloom.data.registry import CORPORA, LoadedSplit, load_split, resolve_data_dir
from emoloom.data.stats import split_stats
from emoloom.errors import DataError, EmoloomError
from emoloom.labels import LABEL_SETS
from emoloom.lexicon import LEXICON_FILES, WeakVADConfig, load_lexicon

MAX_REASONS = 5


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_jsonl(path: str | Path, loaded: LoadedSplit) -> None:
    with atomic_write(path) as f:
        for record in loaded.records:
            f.write(record.to_line() + "\n")


def local_corpora(data_dir: str | Path | None) -> list[str]:
    """Registered corpora whose folder exists under the data directory."""
    root = resolve_data_dir(data_dir)
    if root is None:
        return []
    return [name for name, r in CORPORA.items() if (root / r.dirname).is_dir()]


def _lexicon_entry(weak_vad: WeakVADConfig, data_dir: str | Path | None) -> dict[str, Any] | None:
    """The lexicon file weak targets came from (None with lexicon "none" or gold VAD only)."""
    root = resolve_data_dir(data_dir)
    if weak_vad.lexicon == "none" or root is None:
        return None
    path = root / LEXICON_FILES[weak_vad.lexicon]
    if not path.is_file():
        return None  # nothing was read from it: every split carried gold VAD
    lexicon = load_lexicon(weak_vad.lexicon, str(root))
    return {
        "name": lexicon.name,
        "path": str(path),
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
    }


def summary(loaded: LoadedSplit) -> dict[str, Any]:
    return {
        "corpus": loaded.corpus,
        "split": loaded.split,
        "records": len(loaded.records),
        "skipped": len(loaded.report.skipped),
        "skip_reasons": [str(e) for e in loaded.report.skipped[:MAX_REASONS]],
        "origin": loaded.origin,
        "source_files": {
            str(p): {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in loaded.files
        },
    }


def prepare(
    corpora: Sequence[str],
    splits: Iterable[str] = SPLITS,
    *,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    options: ReadOptions | None = None,
    weak_vad: WeakVADConfig | None = None,
) -> list[LoadedSplit]:
    """Load every (corpus, split), write its JSONL under `out_dir`, then ``prepare.json``."""
    out_dir = Path(out_dir)
    options, weak_vad = options or ReadOptions(), weak_vad or WeakVADConfig()
    loaded, files = [], []
    for corpus in corpora:
        for split in splits:
            result = load_split(
                corpus, split, data_dir=data_dir, options=options, weak_vad=weak_vad
            )
            write_jsonl(out_dir / corpus / f"{result.split}.jsonl", result)
            loaded.append(result)
            files.append({"path": f"{corpus}/{result.split}.jsonl", **summary(result)})
    manifest = {
        "contract_version": CONTRACT_VERSION,
        "read_options": asdict(options),
        "weak_vad": asdict(weak_vad),
        "lexicon": _lexicon_entry(weak_vad, data_dir),
        "files": files,
    }
    with atomic_write(out_dir / "prepare.json") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return loaded


def prepared_stats(out_dir: str | Path, options: ReadOptions | None = None) -> list[dict[str, Any]]:
    """Statistics of the files `prepare` wrote under `out_dir`, in its order, with the rows
    skipped at the source (read back from ``prepare.json``)."""
    out_dir = Path(out_dir)
    manifest_path = out_dir / "prepare.json"
    if not manifest_path.is_file():
        raise EmoloomError(f"{manifest_path}: not found (run `emoloom data prepare --out-dir`)")
    try:
        entries = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(manifest_path, None, None, f"unreadable manifest ({err!r})") from None
    options = options or ReadOptions()
    stats = []
    for entry in entries:
        report = LoadReport(skip_invalid=options.skip_invalid)
        label_set = LABEL_SETS.get(entry["corpus"])
        records = list(read_jsonl(out_dir / entry["path"], report, label_set))
        stats.append(
            split_stats(entry["corpus"], entry["split"], records, label_set, entry["skipped"])
        )
    return stats
