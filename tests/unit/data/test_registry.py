"""The registry: corpus names, where data comes from (local, env, hub), VAD on every record,
and `prepare`, which writes the loaded splits as contract JSONL with a manifest."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from emoloom.contract import CONTRACT_VERSION, parse_record_line
from emoloom.data import (
    CORPORA,
    SPLITS,
    ReadOptions,
    get_corpus,
    load_split,
    registry,
    resolve_data_dir,
)
from emoloom.data.prepare import prepare, prepared_stats
from emoloom.errors import DataError, EmoloomError
from emoloom.labels import label_prior
from emoloom.lexicon import WeakVADConfig

ALL = [(corpus, split) for corpus in sorted(CORPORA) for split in SPLITS]


def _summary(records):
    return [(r.id, r.text, r.context, r.labels, r.vad, r.meta["vad_source"]) for r in records]


# ---------------------------------------------------------------------------------- names


def test_registered_corpora_are_the_four_readers():
    assert sorted(CORPORA) == ["dailydialog", "emobank", "empathetic", "goemotions"]
    assert get_corpus("goemotions").dirname == "goemotions"
    assert get_corpus("empathetic").dirname == "empatheticdialogues"


def test_unknown_corpus_lists_the_available_names():
    with pytest.raises(EmoloomError) as info:
        get_corpus("nope")
    message = str(info.value)
    assert "Unknown corpus 'nope'" in message
    for name in CORPORA:
        assert name in message


def test_load_split_of_an_unknown_corpus_or_split_is_refused(corpora_dir):
    with pytest.raises(EmoloomError, match="Unknown corpus"):
        load_split("nope", "train", data_dir=corpora_dir)
    with pytest.raises(EmoloomError, match="Unknown split 'holdout'"):
        load_split("goemotions", "holdout", data_dir=corpora_dir)


# ------------------------------------------------------------------------ VAD on every record


@pytest.mark.parametrize(("corpus", "split"), ALL)
def test_every_record_leaves_with_a_unit_vad_and_its_source(corpus, split, corpora_dir):
    loaded = load_split(corpus, split, data_dir=corpora_dir)
    assert loaded.records
    for r in loaded.records:
        assert r.vad is not None
        assert all(0.0 <= x <= 1.0 for x in r.vad.as_tuple())
        assert r.meta["vad_source"] in {"lexicon", "prior", "gold"}
        assert (r.meta["vad_source"] == "gold") == (corpus == "emobank")


def test_weak_targets_use_the_lexicon_where_it_has_enough_hits(corpora_dir):
    records = {r.id: r for r in load_split("goemotions", "train", data_dir=corpora_dir).records}
    loved = records["goemotions:fx01a"]  # "I love this so much, thank you!": love, thank
    assert loved.meta["vad_source"] == "lexicon"
    assert loved.meta["vad_hits"] == 2
    assert loved.meta["vad_lexicon"] == "nrc_vad_v1"
    assert loved.vad.as_tuple() != pytest.approx(label_prior(loved.labels), abs=1e-3)
    plain = records["goemotions:fx01d"]  # "Ok."
    assert plain.meta["vad_source"] == "prior"
    assert plain.vad.as_tuple() == pytest.approx(label_prior(["neutral"]), abs=1e-3)


def test_warriner_lexicon_is_read_from_its_fixture(corpora_dir):
    war = load_split(
        "goemotions", "train", data_dir=corpora_dir, weak_vad=WeakVADConfig(lexicon="warriner")
    ).records
    assert {r.meta["vad_lexicon"] for r in war} == {"warriner_2013"}
    first = war[0]  # "I love this so much, thank you!", gratitude + love
    assert first.meta["vad_source"] == "lexicon"
    # fixture ratings love (8.0, 5.4, 5.9) and thank (7.4, 3.6, 6.1) on 1-9 → (x - 1) / 8,
    # averaged, then blended half and half with the mean prior of gratitude and love
    lexical = ((0.875 + 0.8) / 2, (0.55 + 0.325) / 2, (0.6125 + 0.6375) / 2)
    expected = [0.5 * x + 0.5 * p for x, p in zip(lexical, label_prior(first.labels), strict=True)]
    assert first.vad.as_tuple() == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("corpus", ["goemotions", "dailydialog", "empathetic"])
def test_lexicon_none_gives_label_priors_only(corpus, tmp_path, corpora_dir):
    # a data directory without any lexicon folder: none is needed
    folder = CORPORA[corpus].dirname
    shutil.copytree(corpora_dir / folder, tmp_path / folder)
    loaded = load_split(corpus, "train", data_dir=tmp_path, weak_vad=WeakVADConfig(lexicon="none"))
    for r in loaded.records:
        assert r.meta["vad_source"] == "prior"
        assert r.meta["vad_lexicon"] == "none"
        assert r.vad.as_tuple() == pytest.approx(label_prior(r.labels), abs=1e-3)


def test_missing_lexicon_is_an_error_naming_it(data_copy):
    shutil.rmtree(data_copy / "nrc_vad")
    with pytest.raises(EmoloomError, match="NRC-VAD-Lexicon.txt"):
        load_split("goemotions", "dev", data_dir=data_copy)


# ------------------------------------------------------------------------- resolve_data_dir


def test_explicit_data_dir_beats_the_environment(tmp_path, monkeypatch, corpora_dir):
    monkeypatch.setenv("EMOLOOM_DATA", str(tmp_path))
    assert resolve_data_dir(corpora_dir) == corpora_dir


def test_environment_beats_the_shared_data_fallback(tmp_path, monkeypatch, corpora_dir):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("EMOLOOM_DATA", str(corpora_dir))
    assert resolve_data_dir() == corpora_dir
    assert resolve_data_dir(None) == corpora_dir


def test_shared_data_next_to_the_working_directory_is_the_fallback(tmp_path, monkeypatch):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert resolve_data_dir() == (tmp_path / "shared" / "data").resolve()


def test_no_data_directory_anywhere_gives_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "_REPO_ROOT", tmp_path / "checkout")
    assert resolve_data_dir() is None


def test_explicit_path_that_is_not_a_directory_is_an_error(tmp_path, monkeypatch, corpora_dir):
    monkeypatch.setenv("EMOLOOM_DATA", str(corpora_dir))
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x", encoding="utf-8")
    for bad in (not_a_dir, tmp_path / "missing"):
        with pytest.raises(EmoloomError, match="--data-dir=.*not a directory"):
            resolve_data_dir(bad)


def test_environment_path_that_is_not_a_directory_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLOOM_DATA", str(tmp_path / "missing"))
    with pytest.raises(EmoloomError, match="EMOLOOM_DATA=.*not a directory"):
        resolve_data_dir()


def test_load_split_reads_from_the_environment_directory(monkeypatch, corpora_dir):
    monkeypatch.setenv("EMOLOOM_DATA", str(corpora_dir))
    loaded = load_split("goemotions", "dev")
    assert loaded.origin == str(corpora_dir / "goemotions")
    assert len(loaded.records) == 3


# ------------------------------------------------------------------------------ hub access


def test_missing_corpus_folder_with_hub_offline_names_both(tmp_path):
    with pytest.raises(EmoloomError) as info:
        load_split("goemotions", "dev", data_dir=tmp_path, hub_loader=_never_called)
    message = str(info.value)
    assert str(tmp_path / "goemotions") in message
    assert "does not exist" in message
    assert "hub is disabled" in message


def test_datasets_offline_also_disables_the_hub(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(EmoloomError, match="hub is disabled"):
        load_split("emobank", "dev", data_dir=tmp_path, hub_loader=_never_called)


def test_no_data_directory_and_hub_offline_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "_REPO_ROOT", tmp_path / "checkout")
    with pytest.raises(EmoloomError, match="no data directory found.*hub is disabled"):
        load_split("dailydialog", "test", hub_loader=_never_called)


def _never_called(reader, split):
    raise AssertionError("the hub must not be used")


@pytest.fixture
def hub_dir(tmp_path, monkeypatch, corpora_dir):
    """A data directory with the lexicon but no corpus folder, and the hub allowed."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    shutil.copytree(corpora_dir / "nrc_vad", tmp_path / "hub_data" / "nrc_vad")
    return tmp_path / "hub_data"


def _fake_hub(rows):
    calls = []

    def fake(reader, split):
        calls.append((reader.name, split, reader.hub.split(split)))
        return rows

    return fake, calls


def _goemotions_hub_rows(corpora_dir, split):
    rows = []
    for line in (corpora_dir / "goemotions" / f"{split}.tsv").read_text().splitlines():
        text, ids, comment_id = line.split("\t")
        rows.append({"text": text, "labels": [int(i) for i in ids.split(",")], "id": comment_id})
    return rows


def _dailydialog_hub_rows(corpora_dir, folder):
    base = corpora_dir / "dailydialog" / folder
    dialogues = (base / f"dialogues_{folder}.txt").read_text().splitlines()
    emotions = (base / f"dialogues_emotion_{folder}.txt").read_text().splitlines()
    return [
        {
            "dialog": [u + " " for u in d.split(" __eou__ ")[:-1]],  # hub strings keep a space
            "act": [1] * len(e.split()),
            "emotion": [int(x) for x in e.split()],
        }
        for d, e in zip(dialogues, emotions, strict=True)
    ]


def _csv_hub_rows(path, numeric=()):
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (float(v) if k in numeric else v) for k, v in row.items()} for row in rows]


def test_goemotions_from_the_hub_equals_the_local_files(hub_dir, corpora_dir):
    fake, calls = _fake_hub(_goemotions_hub_rows(corpora_dir, "dev"))
    hub = load_split("goemotions", "dev", data_dir=hub_dir, hub_loader=fake)
    local = load_split("goemotions", "dev", data_dir=corpora_dir)
    assert calls == [("goemotions", "dev", "validation")]
    assert _summary(hub.records) == _summary(local.records)
    assert hub.origin == "hf://google-research-datasets/go_emotions[validation]"
    assert hub.files == []


def test_dailydialog_from_the_hub_equals_the_local_files(hub_dir, corpora_dir):
    for split, folder in (("dev", "validation"), ("train", "train")):
        fake, calls = _fake_hub(_dailydialog_hub_rows(corpora_dir, folder))
        hub = load_split("dailydialog", split, data_dir=hub_dir, hub_loader=fake)
        local = load_split("dailydialog", split, data_dir=corpora_dir)
        assert calls == [("dailydialog", split, folder)]
        assert _summary(hub.records) == _summary(local.records)
        assert len(hub.report.skipped) == len(local.report.skipped)


def test_empathetic_from_the_hub_equals_the_local_files(hub_dir, corpora_dir):
    rows = _csv_hub_rows(corpora_dir / "empatheticdialogues" / "valid.csv")
    for row in rows:  # the hub has integer turn and speaker columns
        for column in ("utterance_idx", "speaker_idx"):
            row[column] = int(row[column])
    for mode in ("situation", "both"):
        fake, calls = _fake_hub(rows)
        options = ReadOptions(empathetic_input=mode)
        hub = load_split("empathetic", "dev", data_dir=hub_dir, hub_loader=fake, options=options)
        local = load_split("empathetic", "dev", data_dir=corpora_dir, options=options)
        assert calls == [("empathetic", "dev", "validation")]
        assert _summary(hub.records) == _summary(local.records)


def test_emobank_from_the_hub_equals_the_local_file(hub_dir, corpora_dir):
    rows = _csv_hub_rows(corpora_dir / "emobank" / "emobank.csv", numeric="VAD")
    for split in SPLITS:
        fake, calls = _fake_hub(rows)
        hub = load_split("emobank", split, data_dir=hub_dir, hub_loader=fake)
        local = load_split("emobank", split, data_dir=corpora_dir)
        assert calls == [("emobank", split, "train")]  # one file; the split column selects
        assert _summary(hub.records) == _summary(local.records)


def test_default_hub_loader_is_used_when_no_local_folder_exists(hub_dir, corpora_dir, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    fake, calls = _fake_hub(_goemotions_hub_rows(corpora_dir, "test"))
    monkeypatch.setattr(registry, "load_hub_rows", fake)
    loaded = load_split("goemotions", "test", data_dir=hub_dir)
    assert calls == [("goemotions", "test", "test")]
    assert [r.id for r in loaded.records] == [
        "goemotions:fx03a",
        "goemotions:fx03b",
        "goemotions:fx03c",
    ]


def test_local_folder_wins_over_the_hub(monkeypatch, corpora_dir):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(registry, "load_hub_rows", _never_called)
    assert load_split("goemotions", "dev", data_dir=corpora_dir).origin.endswith("goemotions")


def test_hub_failure_is_reported_with_the_address(hub_dir):
    def broken(reader, split):
        raise ConnectionError("network unreachable")

    with pytest.raises(EmoloomError) as info:
        load_split("dailydialog", "dev", data_dir=hub_dir, hub_loader=broken)
    message = str(info.value)
    assert "hf://li2017dailydialog/daily_dialog[validation]" in message
    assert "ConnectionError: network unreachable" in message
    assert "does not exist" in message


def test_malformed_hub_row_is_a_data_error_naming_the_address(hub_dir):
    fake, _ = _fake_hub([{"text": "fine", "labels": [27], "id": "h1"}, {"text": "no labels"}])
    with pytest.raises(DataError) as info:
        load_split("goemotions", "train", data_dir=hub_dir, hub_loader=fake)
    assert "hf://google-research-datasets/go_emotions[train]:2: " in str(info.value)


# (corpus, our split, what datasets.load_dataset must be called with)
HUB_CALLS = [
    (
        "goemotions",
        "dev",
        "google-research-datasets/go_emotions",
        {"split": "validation", "name": "simplified"},
    ),
    (
        "dailydialog",
        "test",
        "li2017dailydialog/daily_dialog",
        {"split": "test", "revision": "refs/convert/parquet"},
    ),
    (
        "empathetic",
        "dev",
        "facebook/empathetic_dialogues",
        {"split": "validation", "revision": "refs/convert/parquet"},
    ),
    (
        "emobank",
        "test",
        "csv",
        {
            "split": "train",
            "data_files": "https://raw.githubusercontent.com/JULIELab/EmoBank/master/corpus/"
            "emobank.csv",
        },
    ),
]


@pytest.mark.parametrize(("corpus", "split", "path", "kwargs"), HUB_CALLS)
def test_load_hub_rows_asks_datasets_for_the_hub_split(corpus, split, path, kwargs, monkeypatch):
    seen = []
    fake_datasets = types.ModuleType("datasets")
    fake_datasets.load_dataset = lambda path, **kwargs: seen.append((path, kwargs)) or ["row"]
    monkeypatch.setitem(sys.modules, "datasets", fake_datasets)
    assert registry.load_hub_rows(get_corpus(corpus), split) == ["row"]
    assert seen == [(path, kwargs)]


# --------------------------------------------------------------------------------- prepare


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    corpora = Path(__file__).parents[2] / "fixtures" / "corpora"
    out = tmp_path_factory.mktemp("prepared")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        loaded = prepare(list(CORPORA), out_dir=out, data_dir=corpora)
    return out, corpora, loaded


def test_prepare_writes_one_jsonl_per_corpus_and_split(prepared):
    out, corpora, loaded = prepared
    assert len(loaded) == len(CORPORA) * len(SPLITS)
    for result in loaded:
        path = out / result.corpus / f"{result.split}.jsonl"
        records = [parse_record_line(line) for line in path.read_text().splitlines()]
        assert [r.id for r in records] == [r.id for r in result.records]
        assert records == result.records
        direct = load_split(result.corpus, result.split, data_dir=corpora)
        assert [r.id for r in records] == [r.id for r in direct.records]


def test_prepare_manifest_hashes_every_source_file(prepared):
    out, corpora, _ = prepared
    manifest = json.loads((out / "prepare.json").read_text())
    assert manifest["contract_version"] == CONTRACT_VERSION
    assert manifest["read_options"]["skip_invalid"] is False
    assert manifest["weak_vad"]["lexicon"] == "nrc"
    entries = {e["path"]: e for e in manifest["files"]}
    assert sorted(entries) == sorted(f"{c}/{s}.jsonl" for c in CORPORA for s in SPLITS)
    expected_sources = {
        "goemotions/dev.jsonl": [
            "goemotions/dev.tsv",
            "goemotions/emotions.txt",
            "goemotions/ekman_mapping.json",  # checked by the reader, so hashed too
        ],
        "dailydialog/train.jsonl": [
            "dailydialog/train/dialogues_train.txt",
            "dailydialog/train/dialogues_emotion_train.txt",
        ],
        "empathetic/dev.jsonl": ["empatheticdialogues/valid.csv"],
        "emobank/test.jsonl": ["emobank/emobank.csv"],
    }
    for name, sources in expected_sources.items():
        files = entries[name]["source_files"]
        assert sorted(files) == sorted(str(corpora / s) for s in sources)
        for source in sources:
            path = corpora / source
            assert files[str(path)] == {"sha256": _sha256(path), "bytes": path.stat().st_size}


def test_prepare_manifest_counts_records_and_skips(prepared):
    out, _, _ = prepared
    entries = {e["path"]: e for e in json.loads((out / "prepare.json").read_text())["files"]}
    counts = {name: (e["records"], e["skipped"]) for name, e in entries.items()}
    assert counts == {
        "goemotions/train.jsonl": (5, 0),
        "goemotions/dev.jsonl": (3, 0),
        "goemotions/test.jsonl": (3, 0),
        "empathetic/train.jsonl": (3, 0),
        "empathetic/dev.jsonl": (2, 0),
        "empathetic/test.jsonl": (2, 0),
        "dailydialog/train.jsonl": (7, 1),
        "dailydialog/dev.jsonl": (5, 0),
        "dailydialog/test.jsonl": (4, 0),
        "emobank/train.jsonl": (4, 0),
        "emobank/dev.jsonl": (2, 0),
        "emobank/test.jsonl": (2, 0),
    }
    (reason,) = entries["dailydialog/train.jsonl"]["skip_reasons"]
    assert "dialogues_train.txt:3: " in reason


def test_prepare_manifest_records_the_lexicon_file_hash(prepared):
    # weak VAD targets depend on the lexicon file, so two runs with different lexicon files
    # must have different manifests
    out, corpora, _ = prepared
    lexicon = json.loads((out / "prepare.json").read_text())["lexicon"]
    path = corpora / "nrc_vad" / "NRC-VAD-Lexicon.txt"
    assert lexicon == {
        "name": "nrc_vad_v1",
        "path": str(path),
        "sha256": _sha256(path),
        "bytes": path.stat().st_size,
    }


def test_prepared_stats_reads_the_written_files_back(prepared):
    out, _, loaded = prepared
    stats = prepared_stats(out)
    assert [(s["corpus"], s["split"]) for s in stats] == [(r.corpus, r.split) for r in loaded]
    by_key = {(s["corpus"], s["split"]): s for s in stats}
    assert by_key[("dailydialog", "train")]["records"] == 7
    assert by_key[("dailydialog", "train")]["skipped"] == 1
    assert by_key[("goemotions", "train")]["label_counts"]["love"] == 1
    assert by_key[("emobank", "dev")]["vad_source_share"] == {"gold": 1.0}


def test_prepared_stats_without_a_manifest_is_an_error(tmp_path):
    with pytest.raises(EmoloomError, match="prepare.json: not found"):
        prepared_stats(tmp_path)


def test_prepare_stops_on_a_bad_row_and_writes_no_manifest(data_copy, tmp_path, rewrite_line):
    rewrite_line(data_copy / "goemotions" / "dev.tsv", 2, "bad row")
    with pytest.raises(DataError, match=r"dev\.tsv:2: "):
        prepare(["goemotions"], ["dev"], out_dir=tmp_path / "out", data_dir=data_copy)
    assert not (tmp_path / "out" / "prepare.json").exists()
