"""Valence Flip: the mirror-word table, text flipping and record flipping."""

from __future__ import annotations

import pytest

from emoloom.augment import MIRROR_WORDS, flip_record, flip_text, valence_flip
from emoloom.contract import VAD, Record
from emoloom.labels import (
    DAILYDIALOG,
    EMPATHETIC,
    GOEMOTIONS,
    LABEL_SETS,
    LABEL_VAD_PRIORS,
    MIRROR_PAIRS,
    symmetric_pairs,
)


def goemotions_row(
    text: str, labels: tuple[str, ...], vad: VAD | None = None, id: str = "ge:1"
) -> Record:
    return Record(
        id=id, text=text, source="goemotions", labels=labels, vad=vad, meta={"split": "train"}
    )


# ----------------------------------------------------------------------------------- table


def test_mirror_table_has_at_least_150_symmetric_pairs_without_self_pairs():
    assert len(MIRROR_WORDS) // 2 >= 150
    for word, mirror in MIRROR_WORDS.items():
        assert word != mirror
        assert MIRROR_WORDS[mirror] == word


def test_mirror_table_words_are_lower_case_letters_only():
    assert all(word.isalpha() and word == word.lower() for word in MIRROR_WORDS)


def test_mirror_table_pairs_the_everyday_antonyms():
    expected = {
        "happy": "sad",
        "love": "hate",
        "good": "bad",
        "best": "worst",
        "great": "terrible",
        "beautiful": "ugly",
        "win": "lose",
        "won": "lost",
        "calm": "anxious",
        "loved": "hated",
        "happier": "sadder",
    }
    assert {w: MIRROR_WORDS[w] for w in expected} == expected


def test_a_word_in_two_pairs_or_paired_with_itself_is_rejected():
    # a symmetric table has an even number of keys only when no word appears in two pairs;
    # the builder is what guarantees it, so check the builder refuses both mistakes
    assert len(MIRROR_WORDS) % 2 == 0
    with pytest.raises(ValueError, match="repeats"):
        symmetric_pairs([("good", "bad"), ("great", "bad")])
    with pytest.raises(ValueError, match="repeats"):
        symmetric_pairs([("fine", "fine")])


# ------------------------------------------------------------------------------ flip_text


def test_flip_text_swaps_mirror_words_and_counts_them():
    assert flip_text("I love this, best day ever") == ("I hate this, worst day ever", 2)


def test_flip_text_keeps_the_case_pattern_of_each_word():
    assert flip_text("Happy HAPPY happy") == ("Sad SAD sad", 3)


def test_flip_text_touches_whole_words_only():
    decoys = "a badge, a goodbye, a winery, a glove, to sadden"
    assert not set(decoys.replace(",", "").split()) & set(MIRROR_WORDS)
    assert flip_text(decoys) == (decoys, 0)
    # longer words swap only as table entries of their own, never by their prefix
    assert flip_text("sadness and sadly") == ("happiness and happily", 2)


def test_flip_text_leaves_contractions_alone_but_swaps_quoted_words():
    assert "won" in MIRROR_WORDS
    assert flip_text("I won't, don't") == ("I won't, don't", 0)
    assert flip_text("they said 'happy' and won") == ("they said 'sad' and lost", 2)


def test_flip_text_without_mirror_words_returns_the_text_unchanged():
    assert flip_text("The meeting is on Tuesday.") == ("The meeting is on Tuesday.", 0)


# ---------------------------------------------------------------------------- flip_record


def test_a_goemotions_joy_row_becomes_a_sadness_row_with_reversed_valence():
    row = goemotions_row("So happy, best day ever!", ("joy",), VAD(v=0.9, a=0.7, d=0.6))
    flipped = flip_record(row, GOEMOTIONS)
    assert flipped is not None
    assert flipped.id == "ge:1#flip"
    assert flipped.text == "So sad, worst day ever!"
    assert flipped.labels == ("sadness",)
    assert flipped.vad is not None
    assert flipped.vad.v == pytest.approx(1 - 0.9, abs=5e-4)
    _, prior_a, prior_d = LABEL_VAD_PRIORS["sadness"]
    assert flipped.vad.a == pytest.approx((0.7 + prior_a) / 2, abs=5e-4)
    assert flipped.vad.d == pytest.approx((0.6 + prior_d) / 2, abs=5e-4)
    assert abs(flipped.vad.a - prior_a) < abs(0.7 - prior_a)
    assert abs(flipped.vad.d - prior_d) < abs(0.6 - prior_d)
    assert flipped.meta == {
        "split": "train",
        "augment": "valence_flip",
        "parent": "ge:1",
        "swaps": 2,
        "vad_source": "valence_flip",
    }
    assert flipped.source == "goemotions" and flipped.context == row.context


def test_flipped_vad_values_are_rounded_to_three_decimals():
    row = goemotions_row("so happy", ("joy",), VAD(v=0.12345, a=0.3333, d=0.7777))
    flipped = flip_record(row, GOEMOTIONS)
    assert flipped is not None and flipped.vad is not None
    assert all(round(x, 3) == x for x in flipped.vad.as_tuple())


def test_a_row_without_vad_starts_from_its_labels_prior():
    row = goemotions_row("so happy", ("joy",))
    flipped = flip_record(row, GOEMOTIONS)
    assert flipped is not None and flipped.vad is not None
    v, a, d = LABEL_VAD_PRIORS["joy"]
    _, sa, sd = LABEL_VAD_PRIORS["sadness"]
    assert flipped.vad.as_tuple() == (
        round(1 - v, 3),
        round((a + sa) / 2, 3),
        round((d + sd) / 2, 3),
    )


def test_context_is_kept_and_only_the_text_is_flipped():
    row = Record(id="ed:1", text="I was so happy", context=("Was it good?",), labels=("joyful",))
    flipped = flip_record(row, EMPATHETIC)
    assert flipped is not None
    assert flipped.text == "I was so sad" and flipped.context == ("Was it good?",)


@pytest.mark.parametrize("labels", [("surprise",), ("neutral",), ()])
def test_rows_whose_labels_lack_a_mirror_are_not_flipped(labels):
    assert flip_record(goemotions_row("what a great day", labels), GOEMOTIONS) is None


def test_rows_without_a_mirror_word_are_not_flipped():
    assert flip_record(goemotions_row("see you on Tuesday", ("joy",)), GOEMOTIONS) is None


def test_a_multi_label_row_is_flipped_only_when_every_label_has_a_mirror():
    both = goemotions_row("I love it, great job", ("approval", "joy"))
    flipped = flip_record(both, GOEMOTIONS)
    assert flipped is not None
    assert flipped.labels == ("disapproval", "sadness")  # canonical GoEmotions order
    partial = goemotions_row("I love it, great job", ("joy", "surprise"))
    assert flip_record(partial, GOEMOTIONS) is None


def test_flipping_twice_returns_the_original_text_and_labels():
    text = "Happy LOVE best win. Great, beautiful and calm!"
    row = goemotions_row(text, ("joy", "pride"), VAD(v=0.8, a=0.6, d=0.7))
    once = flip_record(row, GOEMOTIONS)
    assert once is not None and once.text != text
    twice = flip_record(once, GOEMOTIONS)
    assert twice is not None
    assert twice.text == text
    assert twice.labels == row.labels
    assert twice.vad is not None and twice.vad.v == pytest.approx(0.8, abs=1e-3)


def test_every_word_in_the_table_round_trips_in_every_case_pattern():
    words = sorted(MIRROR_WORDS)
    for text in (
        " ".join(words),
        " ".join(w.upper() for w in words),
        " ".join(w.title() for w in words),
    ):
        once, n = flip_text(text)
        assert n == len(words)
        assert flip_text(once) == (text, n)


def test_single_label_sets_flip_to_their_mirror():
    ed = Record(id="ed:1", text="I felt so happy", labels=("joyful",))
    dd = Record(id="dd:1", text="what a wonderful gift", labels=("happiness",))
    ed_flip, dd_flip = flip_record(ed, EMPATHETIC), flip_record(dd, DAILYDIALOG)
    assert ed_flip is not None and ed_flip.labels == ("sad",)
    assert dd_flip is not None and dd_flip.labels == ("sadness",)
    assert dd_flip.text == "what a horrible gift"
    no_emotion = Record(id="dd:2", text="a good plan", labels=("no emotion",))
    assert flip_record(no_emotion, DAILYDIALOG) is None


def test_every_mirrored_label_is_in_its_set_and_has_a_vad_prior():
    for name, mirrors in MIRROR_PAIRS.items():
        for label in mirrors:
            assert label in LABEL_SETS[name] and label in LABEL_VAD_PRIORS


# --------------------------------------------------------------------------- valence_flip


def test_valence_flip_keeps_input_order_and_drops_rows_it_cannot_flip():
    rows = [
        goemotions_row("a great day", ("joy",), id="a"),
        goemotions_row("what a surprise", ("surprise",), id="b"),
        goemotions_row("I hate this", ("anger",), id="c"),
        goemotions_row("see you Tuesday", ("joy",), id="d"),
        goemotions_row("so sad", ("sadness",), id="e"),
    ]
    flipped = valence_flip(rows, GOEMOTIONS)
    assert [r.id for r in flipped] == ["a#flip", "c#flip", "e#flip"]
    assert [r.labels for r in flipped] == [("sadness",), ("love",), ("joy",)]


def test_valence_flip_is_deterministic():
    rows = [goemotions_row(f"good day {i}", ("joy",), id=str(i)) for i in range(20)]
    assert valence_flip(rows, GOEMOTIONS) == valence_flip(iter(rows), GOEMOTIONS)
