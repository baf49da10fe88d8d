"""VAD lexicon loading and lexicon-weak VAD targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoloom.errors import DataError, EmoloomError
from emoloom.labels import LABEL_VAD_PRIORS
from emoloom.lexicon import (
    VADLexicon,
    WeakVAD,
    WeakVADConfig,
    lexicon_vad,
    load_nrc_vad,
    load_warriner,
)

ENTRIES = {
    "happy": (1.0, 0.7, 0.8),
    "sad": (0.2, 0.3, 0.2),
    "love": (0.9, 0.5, 0.6),
    "terrible": (0.1, 0.6, 0.3),
    "day": (0.6, 0.3, 0.5),
    "cry": (0.15, 0.6, 0.2),
    "one": (0.5, 0.3, 0.5),
}


@pytest.fixture
def lexicon() -> VADLexicon:
    return VADLexicon("test", "<memory>", ENTRIES)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_nrc_vad_file_loads_lowercased_words(tmp_path):
    lex = load_nrc_vad(
        write(
            tmp_path / "nrc.txt", "Word\tValence\tArousal\tDominance\nHappy\t1.000\t0.735\t0.772\n"
        )
    )
    assert lex.entries == {"happy": (1.0, 0.735, 0.772)} and lex.name == "nrc_vad_v1"


@pytest.mark.parametrize(
    "body, line, field",
    [
        ("happy\t1.0\t0.5\n", 2, None),
        ("happy\tx\t0.5\t0.5\n", 2, "valence"),
        ("happy\t0.5\t0.5\t1.5\n", 2, "dominance"),
    ],
)
def test_nrc_vad_errors_name_file_line_and_field(tmp_path, body, line, field):
    path = write(tmp_path / "nrc.txt", "Word\tValence\tArousal\tDominance\n" + body)
    with pytest.raises(DataError) as info:
        load_nrc_vad(path)
    assert f"nrc.txt:{line}:" in str(info.value) and info.value.field == field


def test_missing_or_empty_lexicon_is_a_clear_error(tmp_path):
    with pytest.raises(EmoloomError, match="missing"):
        load_nrc_vad(tmp_path / "nope.txt")
    with pytest.raises(EmoloomError, match="directory"):
        load_nrc_vad(tmp_path)
    with pytest.raises(DataError, match="no entries"):
        load_nrc_vad(write(tmp_path / "empty.txt", "Word\tValence\tArousal\tDominance\n"))


def test_warriner_norms_are_rescaled_from_1_9_to_unit_range(tmp_path):
    path = write(
        tmp_path / "w.csv",
        ",Word,V.Mean.Sum,A.Mean.Sum,D.Mean.Sum\n1,calm,9,1,5\n2,Storm,3,7,2.6\n",
    )
    lex = load_warriner(path)
    assert lex.entries["calm"] == (1.0, 0.0, 0.5)
    assert lex.entries["storm"] == pytest.approx((0.25, 0.75, 0.2))


def test_warriner_errors_name_the_column(tmp_path):
    with pytest.raises(DataError, match="w.csv:1: D.Mean.Sum"):
        load_warriner(write(tmp_path / "w.csv", ",Word,V.Mean.Sum,A.Mean.Sum\n1,a,5,5\n"))
    with pytest.raises(DataError, match="w.csv:3: A.Mean.Sum: 0.5 outside"):
        load_warriner(
            write(
                tmp_path / "w.csv",
                ",Word,V.Mean.Sum,A.Mean.Sum,D.Mean.Sum\n1,a,5,5,5\n2,b,5,0.5,5\n",
            )
        )


def test_lexicon_vad_averages_hits(lexicon):
    vad, hits = lexicon_vad("A happy, sad day", lexicon, negation_window=3)
    assert hits == 3
    assert vad == pytest.approx(((1.0 + 0.2 + 0.6) / 3, (0.7 + 0.3 + 0.3) / 3, 0.5))


def test_negation_flips_valence_within_the_window_only(lexicon):
    (v_plain, a_plain, _), _ = lexicon_vad("happy", lexicon, 3)
    (v_neg, a_neg, _), _ = lexicon_vad("I am not happy", lexicon, 3)
    assert v_neg == pytest.approx(1.0 - v_plain) and a_neg == a_plain
    (v_far, _, _), _ = lexicon_vad("never a sad sad sad sad day", lexicon, 2)
    # the first two content words after "never" flip, the rest do not
    assert v_far == pytest.approx((0.8 + 0.8 + 0.2 + 0.2 + 0.6) / 5)


def test_contractions_negate_and_punctuation_ends_the_scope(lexicon):
    (v, _, _), _ = lexicon_vad("I didn't love it", lexicon, 3)
    assert v == pytest.approx(0.1)
    (v, _, _), _ = lexicon_vad("I don\u2019t know. Happy", lexicon, 3)
    assert v == pytest.approx(1.0)


def test_suffix_fallback_finds_inflected_forms(lexicon):
    for word in ("loved", "loving", "loves", "cries", "cried", "days", "happily"):
        assert lexicon.lookup(word) is not None, word
    assert lexicon.lookup("unrelated") is None


def test_generic_stop_words_are_skipped_but_valenced_ones_count(lexicon):
    # "one" is an sklearn stop word with a neutral rating: skipped. "cry" is a stop word there
    # too, but clearly valenced, so it stays evidence.
    _, hits = lexicon_vad("one one one", lexicon, 3)
    assert hits == 0
    (v, _, _), hits = lexicon_vad("I cry", lexicon, 3)
    assert hits == 1 and v == pytest.approx(0.15)


def test_weak_target_blends_lexicon_and_label_prior(lexicon):
    weak = WeakVAD(WeakVADConfig(blend_weight=0.25, min_hits=2), lexicon)
    target = weak.target("happy day", ["sadness"])
    lex = ((1.0 + 0.6) / 2, (0.7 + 0.3) / 2, (0.8 + 0.5) / 2)
    prior = LABEL_VAD_PRIORS["sadness"]
    expected = tuple(round(0.25 * x + 0.75 * p, 3) for x, p in zip(lex, prior, strict=True))
    assert target.vad == pytest.approx(expected) and target.source == "lexicon" and target.hits == 2


def test_too_few_hits_fall_back_to_the_label_prior(lexicon):
    weak = WeakVAD(WeakVADConfig(min_hits=2), lexicon)
    target = weak.target("a happy moment", ["joy", "love"])
    expected = tuple(round((x + y) / 2, 3) for x, y in zip(LABEL_VAD_PRIORS["joy"], LABEL_VAD_PRIORS["love"], strict=True))  # fmt: skip
    assert target.source == "prior" and target.hits == 1 and target.vad == pytest.approx(expected)


def test_unlabelled_text_without_hits_gets_the_neutral_prior(lexicon):
    target = WeakVAD(WeakVADConfig(), lexicon).target("xyz", [])
    assert target.vad == pytest.approx(LABEL_VAD_PRIORS["neutral"])


def test_lexicon_none_uses_priors_only():
    weak = WeakVAD(WeakVADConfig(lexicon="none"), None)
    target = weak.target("happy happy happy", ["anger"])
    assert target.source == "prior" and target.vad == pytest.approx(LABEL_VAD_PRIORS["anger"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lexicon": "vader"}, "Unknown lexicon"),
        ({"blend_weight": 1.5}, "blend_weight"),
        ({"min_hits": 0}, "min_hits"),
        ({"negation_window": -1}, "negation_window"),
    ],
)
def test_weak_vad_config_rejects_bad_values(kwargs, message):
    with pytest.raises(EmoloomError, match=message):
        WeakVADConfig(**kwargs)


def test_weak_vad_with_a_lexicon_setting_needs_a_lexicon():
    with pytest.raises(EmoloomError, match="needs a loaded lexicon"):
        WeakVAD(WeakVADConfig(lexicon="nrc"), None)
