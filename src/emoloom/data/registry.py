"""The corpus registry and `load_split`: corpus name + split → contract records with VAD.

Where data comes from, in order: ``--data-dir``; the ``EMOLOOM_DATA`` environment variable;
``../shared/data`` (next to the working directory or to this checkout) when it exists; the
Hugging Face hub when none of these holds the corpus folder. The hub is skipped when
``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set, and every miss is named in the error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from emoloom.contract import VAD, Record
from emoloom.data.base import CorpusReader, LoadReport, ReadOptions, canonical_split
from emoloom.data.dailydialog import DailyDialog
from emoloom.data.emobank import EmoBank
from emoloom.data.empathetic import EmpatheticDialogues
from emoloom.data.goemotions import GoEmotions
from emoloom.data.jsonl import read_jsonl
from emoloom.errors import DataError, EmoloomError
from emoloom.labels import LabelSet
from emoloom.lexicon import WeakVAD, WeakVADConfig, load_lexicon

CORPORA: Mapping[str, CorpusReader] = MappingProxyType(
    {r.name: r for r in (GoEmotions(), EmpatheticDialogues(), DailyDialog(), EmoBank())}
)
ENV_DATA_DIR = "EMOLOOM_DATA"
_REPO_ROOT = Path(__file__).resolve().parents[3]


def get_corpus(name: str) -> CorpusReader:
    try:
        return CORPORA[name]
    except KeyError:
        raise EmoloomError(
            f"Unknown corpus {name!r}. Available: {', '.join(CORPORA)} (and jsonl for your own "
            "contract files)"
        ) from None


def resolve_data_dir(explicit: str | Path | None = None) -> Path | None:
    """The data directory to read corpora from, or None when only the hub is left."""
    for given, what in ((explicit, "--data-dir"), (os.environ.get(ENV_DATA_DIR), ENV_DATA_DIR)):
        if given:
            path = Path(given)
            if not path.is_dir():
                raise EmoloomError(f"{what}={given}: not a directory")
            return path
    for candidate in (Path.cwd() / ".." / "shared" / "data", _REPO_ROOT / ".." / "shared" / "data"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def hub_disabled() -> bool:
    return any(
        os.environ.get(v, "") not in ("", "0") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def load_hub_rows(corpus: CorpusReader, split: str) -> Iterable[Mapping[str, Any]]:
    """Rows of `corpus`'s hub dataset for `split` (downloads; tests monkeypatch this)."""
    import datasets  # lazy: heavy, and only needed without local files

    hub = corpus.hub
    kwargs: dict[str, Any] = {"split": hub.split(split)}
    if hub.name:
        kwargs["name"] = hub.name
    if hub.revision:
        kwargs["revision"] = hub.revision
    if hub.data_files:
        kwargs["data_files"] = hub.data_files
    return datasets.load_dataset(hub.path, **kwargs)


@dataclass
class LoadedSplit:
    corpus: str
    split: str
    records: list[Record]
    origin: str  # a local folder or an hf:// address
    files: list[Path] = field(default_factory=list)
    report: LoadReport = field(default_factory=LoadReport)
    label_set: LabelSet | None = None


def make_weak_vad(config: WeakVADConfig, data_dir: Path | None) -> WeakVAD:
    if config.lexicon == "none":
        return WeakVAD(config, None)
    if data_dir is None:
        raise EmoloomError(
            f"weak VAD needs the {config.lexicon!r} lexicon, but no data directory was found "
            f"(give --data-dir or {ENV_DATA_DIR}, or use --lexicon none for label priors only)"
        )
    return WeakVAD(config, load_lexicon(config.lexicon, str(data_dir)))


def load_split(
    corpus: str,
    split: str,
    *,
    data_dir: str | Path | None = None,
    options: ReadOptions | None = None,
    weak_vad: WeakVADConfig | None = None,
    hub_loader: Callable[[CorpusReader, str], Iterable[Mapping[str, Any]]] | None = None,
) -> LoadedSplit:
    """Read one split of a registered corpus and attach a VAD target to every record."""
    reader = get_corpus(corpus)
    split = canonical_split(split)
    options = options or ReadOptions()
    report = LoadReport(skip_invalid=options.skip_invalid)
    root = resolve_data_dir(data_dir)
    folder = root / reader.dirname if root is not None else None
    if folder is not None and folder.is_dir():
        records = list(reader.read_local(folder, split, options, report))
        origin, files = str(folder), reader.files(folder, split)
    else:
        where = f"{folder} does not exist" if folder else "no data directory found"
        if hub_disabled():
            raise EmoloomError(
                f"{corpus}: {where}, and the hub is disabled (HF_HUB_OFFLINE); give --data-dir "
                f"or {ENV_DATA_DIR}"
            )
        try:
            rows = (hub_loader or load_hub_rows)(reader, split)
        except Exception as err:  # the hub client raises many types; report, don't crash
            raise EmoloomError(
                f"{corpus}: {where}, and loading {reader.hub.describe(split)} failed: "
                f"{type(err).__name__}: {err}"
            ) from err
        records = list(reader.read_hub(rows, split, options, report))
        origin, files = reader.hub.describe(split), []
    if not records:  # name the file that holds the split (an empty train.tsv), not its folder
        where = files[0] if files else origin
        raise DataError(where, None, None, f"no {split} records ({len(report.skipped)} skipped)")
    records = with_vad(records, weak_vad, root)
    return LoadedSplit(corpus, split, records, origin, files, report, reader.label_set)


def load_jsonl(
    path: str | Path,
    *,
    label_set: LabelSet | None = None,
    data_dir: str | Path | None = None,
    options: ReadOptions | None = None,
    weak_vad: WeakVADConfig | None = None,
) -> LoadedSplit:
    """Read a contract JSONL file; records without VAD get weak targets."""
    options = options or ReadOptions()
    report = LoadReport(skip_invalid=options.skip_invalid)
    records = list(read_jsonl(path, report, label_set))
    if not records:
        raise DataError(path, None, None, f"no records ({len(report.skipped)} skipped)")
    records = with_vad(records, weak_vad, data_dir)
    name = label_set.name if label_set else "jsonl"
    return LoadedSplit(name, Path(path).stem, records, str(path), [Path(path)], report, label_set)


def with_vad(
    records: list[Record], weak_vad: WeakVADConfig | None, data_dir: str | Path | None
) -> list[Record]:
    """`attach_vad` with a lexicon loaded only when some record lacks a VAD."""
    weak = None
    if any(r.vad is None for r in records):
        weak = make_weak_vad(weak_vad or WeakVADConfig(), resolve_data_dir(data_dir))
    return attach_vad(records, weak)


def attach_vad(records: Iterable[Record], weak: WeakVAD | None) -> list[Record]:
    """Give each record a VAD target and say where it came from in ``meta``."""
    out = []
    for record in records:
        if record.vad is not None:
            meta = {**record.meta, "vad_source": record.meta.get("vad_source", "gold")}
            out.append(record.model_copy(update={"meta": meta}))
            continue
        assert weak is not None, "records without VAD need a WeakVAD"
        target = weak.target(record.text, record.labels)
        v, a, d = target.vad
        meta = {
            **record.meta,
            "vad_source": target.source,
            "vad_hits": target.hits,
            "vad_lexicon": weak.lexicon_name,
        }
        out.append(record.model_copy(update={"vad": VAD(v=v, a=a, d=d), "meta": meta}))
    return out
