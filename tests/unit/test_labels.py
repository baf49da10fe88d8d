"""Label sets, cross-corpus mappings and the per-label tables."""

from __future__ import annotations

import pytest

from emoloom.errors import EmoloomError
from emoloom.labels import (
    APPRAISAL_ATOMS,
    APPRAISAL_PROFILES,
    DAILYDIALOG,
    EKMAN,
    EMPATHETIC,
    GOEMOTIONS,
    GOEMOTIONS_TO_EKMAN,
    LABEL_SETS,
    LABEL_VAD_PRIORS,
    MIRROR_PAIRS,
    get_label_set,
    label_prior,
    map_labels,
    mapping,
)


def test_label_sets_have_the_published_sizes_and_shapes():
    assert (len(GOEMOTIONS), len(EMPATHETIC), len(DAILYDIALOG), len(EKMAN)) == (28, 32, 7, 7)
    assert GOEMOTIONS.labels[27] == "neutral" and GOEMOTIONS.multi_label
    assert DAILYDIALOG.labels[0] == "no emotion" and DAILYDIALOG.labels[4] == "happiness"
    assert not EMPATHETIC.multi_label and not DAILYDIALOG.multi_label


def test_canonical_sorts_into_label_set_order_and_deduplicates():
    assert GOEMOTIONS.canonical(["neutral", "joy", "admiration", "joy"]) == (
        "admiration",
        "joy",
        "neutral",
    )


def test_unknown_label_set_error_lists_the_available_ones():
    with pytest.raises(EmoloomError, match="Available: goemotions, empathetic"):
        get_label_set("sentiment")


def test_goemotions_to_ekman_covers_every_label_with_the_official_groups():
    assert set(GOEMOTIONS_TO_EKMAN) == set(GOEMOTIONS.labels)
    assert set(GOEMOTIONS_TO_EKMAN.values()) == set(EKMAN.labels)
    assert GOEMOTIONS_TO_EKMAN["nervousness"] == "fear"
    assert GOEMOTIONS_TO_EKMAN["disapproval"] == "anger"
    assert GOEMOTIONS_TO_EKMAN["realization"] == "surprise"


def test_goemotions_predictions_map_to_dailydialog_classes():
    assert map_labels(["amusement", "anger"], "goemotions", "dailydialog") == ("anger", "happiness")
    assert map_labels(["neutral"], "goemotions", "dailydialog") == ("no emotion",)
    assert map_labels(["grief", "remorse"], "goemotions", "ekman") == ("sadness",)


def test_empathetic_labels_without_a_basic_emotion_map_to_neutral():
    table = mapping("empathetic", "ekman")
    assert {"anticipating", "nostalgic", "sentimental"}.isdisjoint(table)
    assert map_labels(["nostalgic"], "empathetic", "ekman") == ("neutral",)
    assert map_labels(["terrified"], "empathetic", "dailydialog") == ("fear",)


def test_unknown_mapping_error_lists_the_known_ones():
    with pytest.raises(EmoloomError, match="goemotions->ekman"):
        mapping("dailydialog", "goemotions")


@pytest.mark.parametrize("label_set", list(LABEL_SETS.values()), ids=list(LABEL_SETS))
def test_every_label_has_a_vad_prior_and_an_appraisal_profile_in_unit_range(label_set):
    for label in label_set.labels:
        assert all(0.0 <= x <= 1.0 for x in LABEL_VAD_PRIORS[label]), label
        profile = APPRAISAL_PROFILES[label]
        assert len(profile) == len(APPRAISAL_ATOMS) and all(0.0 <= x <= 1.0 for x in profile)


def test_appraisal_profiles_follow_appraisal_theory_contrasts():
    goal, control, certainty, fairness = range(4)
    assert APPRAISAL_PROFILES["anger"][fairness] < APPRAISAL_PROFILES["joy"][fairness]
    assert APPRAISAL_PROFILES["fear"][certainty] < APPRAISAL_PROFILES["sadness"][certainty]
    assert APPRAISAL_PROFILES["anger"][control] > APPRAISAL_PROFILES["fear"][control]
    assert APPRAISAL_PROFILES["pride"][goal] > APPRAISAL_PROFILES["disappointment"][goal]


@pytest.mark.parametrize("name", list(MIRROR_PAIRS))
def test_mirror_pairs_are_symmetric_and_flip_the_valence_prior(name):
    label_set = LABEL_SETS[name]
    pairs = MIRROR_PAIRS[name]
    assert pairs, name
    for a, b in pairs.items():
        assert a in label_set and b in label_set
        assert pairs[b] == a
        va, vb = LABEL_VAD_PRIORS[a][0], LABEL_VAD_PRIORS[b][0]
        assert (va - 0.5) * (vb - 0.5) < 0, f"{a}↔{b} should sit on opposite valence sides"


def test_label_prior_averages_known_labels_and_ignores_unknown_ones():
    joy, sadness = LABEL_VAD_PRIORS["joy"], LABEL_VAD_PRIORS["sadness"]
    mean = label_prior(["joy", "sadness", "not-a-label"])
    assert mean == pytest.approx(tuple((x + y) / 2 for x, y in zip(joy, sadness, strict=True)))
    assert label_prior([]) is None
    assert label_prior(["not-a-label"]) is None
