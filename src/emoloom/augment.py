"""Valence Flip: mirrored copies of training rows, for polarity sensitivity (pool B).

A row is flipped by swapping its evaluative words for antonyms (``happy`` → ``sad``, ``love`` →
``hate``) and its labels for their mirrors (`labels.MIRROR_PAIRS`: joy ↔ sadness, ...). The new
row's valence is reversed (v' = 1 − v) and its arousal and dominance move halfway toward the
mirrored labels' prior (`labels.label_prior`), since antonyms reverse pleasantness but only
partly change how activated or in control the speaker sounds.

A row is flipped only when it has labels, every label has a mirror and at least one word swaps;
everything else yields nothing. The flip is a pure function of the row (no randomness), and
flipping a flipped row gives the original text and labels back::

    from emoloom.augment import valence_flip
    from emoloom.labels import GOEMOTIONS

    pool_b = valence_flip(train_records, GOEMOTIONS)  # ids "<parent id>#flip"
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from emoloom.contract import VAD, Record
from emoloom.errors import EmoloomError
from emoloom.labels import MIRROR_PAIRS, LabelSet, label_prior, symmetric_pairs

# Hand-written pairs of common English antonyms whose two sides sit on opposite sides of the
# valence scale (checked by eye against the NRC VAD lexicon while writing them). A table, not a
# library: no offline antonym source knows valence, and WordNet's antonyms need a corpus download
# and pair many neutral words (up/down, hot/cold). Inflections are their own pairs, because
# swapping "loved" for "hate" would break the grammar. Left out on purpose: words that are
# usually not evaluative in chat text — "like" (preposition, filler), "right" (direction,
# "right now"), "kind" ("kind of"), "pretty" ("pretty good"), "well", "fine", "hope" ("I hope
# you ..." has no antonym verb), "hell" (an intensifier).
_PAIRS: tuple[tuple[str, str], ...] = (
    # happiness and sadness
    ("happy", "sad"), ("happier", "sadder"), ("happiest", "saddest"), ("happily", "sadly"),
    ("happiness", "sadness"), ("unhappy", "contented"), ("glad", "sorry"),
    ("cheerful", "gloomy"), ("cheery", "dreary"), ("joyful", "sorrowful"),
    ("joyous", "mournful"), ("joy", "sorrow"), ("bliss", "misery"), ("blissful", "miserable"),
    ("delighted", "dismayed"), ("delight", "dismay"), ("pleased", "displeased"),
    ("satisfied", "dissatisfied"), ("satisfying", "unsatisfying"),
    ("satisfaction", "dissatisfaction"), ("thrilled", "devastated"),
    ("ecstatic", "heartbroken"), ("overjoyed", "distraught"), ("elated", "depressed"),
    # calm and fear
    ("calm", "anxious"), ("calmness", "anxiety"), ("relaxed", "stressed"),
    ("relaxing", "stressful"), ("relax", "panic"), ("relieved", "worried"),
    ("relief", "distress"), ("confident", "insecure"), ("confidence", "insecurity"),
    ("brave", "cowardly"), ("courage", "cowardice"), ("courageous", "fearful"),
    ("fearless", "scared"), ("safe", "dangerous"), ("safety", "danger"),
    ("peaceful", "violent"),
    # pride and shame, gratitude and resentment
    ("proud", "ashamed"), ("pride", "shame"), ("proudly", "shamefully"),
    ("grateful", "ungrateful"), ("thankful", "resentful"), ("gratitude", "resentment"),
    # interest and boredom, hope and despair
    ("excited", "bored"), ("exciting", "boring"), ("excitement", "boredom"),
    ("interested", "uninterested"), ("interesting", "dull"), ("thrilling", "tedious"),
    ("fascinating", "tiresome"), ("inspiring", "depressing"), ("inspired", "uninspired"),
    ("encouraging", "discouraging"), ("encouraged", "discouraged"),
    ("uplifting", "demoralizing"), ("motivated", "unmotivated"),
    ("willing", "unwilling"), ("enthusiastic", "unenthusiastic"), ("hopeful", "hopeless"),
    ("optimistic", "pessimistic"), ("optimism", "pessimism"), ("positive", "negative"),
    ("impressed", "unimpressed"), ("impressive", "unimpressive"), ("amazed", "appalled"),
    # quality
    ("good", "bad"), ("better", "worse"), ("best", "worst"), ("great", "terrible"),
    ("amazing", "awful"), ("wonderful", "horrible"), ("excellent", "dismal"),
    ("superb", "atrocious"), ("fantastic", "horrendous"), ("terrific", "horrific"),
    ("fabulous", "abysmal"), ("outstanding", "pathetic"), ("brilliant", "dreadful"),
    ("marvelous", "lousy"), ("awesome", "crappy"), ("delightful", "distressing"),
    ("glorious", "shameful"), ("heavenly", "hellish"), ("paradise", "nightmare"),
    ("nice", "nasty"), ("nicest", "nastiest"), ("lovely", "horrid"),
    ("pleasant", "unpleasant"), ("agreeable", "disagreeable"), ("perfect", "imperfect"),
    ("flawless", "flawed"), ("easy", "difficult"), ("useful", "useless"),
    ("helpful", "unhelpful"), ("valuable", "worthless"), ("worthy", "unworthy"),
    ("meaningful", "meaningless"), ("effective", "ineffective"), ("efficient", "inefficient"),
    ("convenient", "inconvenient"), ("beneficial", "harmful"), ("benefit", "harm"),
    ("improve", "worsen"), ("improved", "worsened"), ("improvement", "deterioration"),
    ("gain", "loss"),
    # looks, taste, comfort
    ("beautiful", "ugly"), ("beauty", "ugliness"), ("beautifully", "horribly"),
    ("wonderfully", "terribly"), ("gorgeous", "hideous"), ("attractive", "unattractive"),
    ("appealing", "unappealing"), ("charming", "obnoxious"), ("adorable", "repulsive"),
    ("cute", "gross"), ("clean", "dirty"), ("tidy", "messy"), ("fresh", "rotten"),
    ("delicious", "disgusting"), ("tasty", "bland"), ("yummy", "yucky"), ("sweet", "bitter"),
    ("healthy", "unhealthy"), ("comfortable", "uncomfortable"), ("comfort", "discomfort"),
    ("painless", "painful"), ("pleasure", "pain"),
    # luck and outcome
    ("lucky", "unlucky"), ("luckily", "unluckily"), ("fortunate", "unfortunate"),
    ("fortunately", "unfortunately"), ("blessing", "curse"), ("blessed", "cursed"),
    ("win", "lose"), ("wins", "loses"), ("won", "lost"), ("winning", "losing"),
    ("winner", "loser"), ("winners", "losers"), ("victory", "defeat"),
    ("triumph", "disaster"), ("succeed", "fail"), ("succeeded", "failed"),
    ("succeeds", "fails"), ("succeeding", "failing"), ("success", "failure"),
    ("successes", "failures"), ("successful", "unsuccessful"),
    # attitudes toward things and people (verbs with their inflections)
    ("love", "hate"), ("loved", "hated"), ("loves", "hates"), ("loving", "hateful"),
    ("lover", "hater"), ("lovers", "haters"), ("beloved", "detested"),
    ("adore", "loathe"), ("adored", "loathed"), ("adores", "loathes"),
    ("admire", "despise"), ("admired", "despised"), ("admires", "despises"),
    ("enjoy", "dread"), ("enjoyed", "dreaded"), ("enjoys", "dreads"), ("enjoying", "dreading"),
    ("appreciate", "resent"), ("appreciated", "resented"), ("liked", "disliked"),
    ("likes", "dislikes"), ("likable", "unlikable"), ("popular", "unpopular"),
    ("welcome", "unwelcome"), ("wanted", "unwanted"), ("praise", "criticize"),
    ("praised", "criticized"), ("compliment", "insult"), ("compliments", "insults"),
    ("complimented", "insulted"), ("celebrate", "mourn"), ("celebrated", "mourned"),
    ("celebrating", "mourning"), ("laugh", "cry"), ("laughed", "cried"),
    ("laughing", "crying"), ("laughs", "cries"), ("smile", "frown"), ("smiled", "frowned"),
    ("smiling", "frowning"), ("smiles", "frowns"), ("gladly", "reluctantly"),
    ("accept", "reject"), ("accepted", "rejected"), ("acceptance", "rejection"),
    ("agree", "disagree"), ("agreed", "disagreed"), ("agreement", "disagreement"),
    ("approve", "disapprove"), ("approved", "disapproved"), ("approval", "disapproval"),
    # character
    ("friendly", "hostile"), ("generous", "selfish"), ("generosity", "selfishness"),
    ("kindness", "cruelty"), ("gentle", "harsh"), ("caring", "uncaring"),
    ("compassionate", "heartless"), ("sympathetic", "unsympathetic"), ("polite", "rude"),
    ("respectful", "disrespectful"), ("respect", "disrespect"), ("honor", "dishonor"),
    ("considerate", "inconsiderate"), ("thoughtful", "thoughtless"), ("honest", "dishonest"),
    ("honesty", "dishonesty"), ("loyal", "disloyal"), ("faithful", "unfaithful"),
    ("trustworthy", "untrustworthy"), ("reliable", "unreliable"), ("trust", "distrust"),
    ("responsible", "irresponsible"), ("mature", "immature"), ("moral", "immoral"),
    ("ethical", "unethical"), ("innocent", "guilty"), ("fair", "unfair"),
    ("strong", "weak"), ("stronger", "weaker"), ("strongest", "weakest"),
    ("strength", "weakness"), ("powerful", "powerless"), ("capable", "incapable"),
    ("competent", "incompetent"), ("talented", "untalented"), ("skilled", "unskilled"),
    ("smart", "stupid"), ("smarter", "dumber"), ("clever", "dumb"), ("wise", "foolish"),
    ("intelligent", "unintelligent"), ("genius", "idiot"), ("hero", "villain"),
    ("heroes", "villains"), ("angel", "devil"), ("angels", "devils"),
)  # fmt: skip


MIRROR_WORDS: Mapping[str, str] = symmetric_pairs(_PAIRS)

# Longest words first so that the alternation tries "happiness" before "happy". The edges are
# stricter than \b: a word joined to a letter by an apostrophe is part of a longer token, so
# "won't" keeps its "won" and "love's" is left alone, while a quoted 'happy' still swaps.
_MIRROR_RE = re.compile(
    r"(?<!\w)(?<!\w['’])("
    + "|".join(re.escape(w) for w in sorted(MIRROR_WORDS, key=lambda w: (-len(w), w)))
    + r")(?!\w)(?!['’]\w)",
    re.IGNORECASE,
)


def _match_case(template: str, word: str) -> str:
    """`word` in the case pattern of `template`: ALL CAPS, Capitalised or lower."""
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[0].isupper():
        return word[0].upper() + word[1:]
    return word


def flip_text(text: str) -> tuple[str, int]:
    """Swap every mirror word in `text` (whole words, any case); return the text and the count."""
    swaps = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal swaps
        swaps += 1
        found = match.group(0)
        return _match_case(found, MIRROR_WORDS[found.lower()])

    return _MIRROR_RE.sub(swap, text), swaps


def _prior(labels: tuple[str, ...]) -> tuple[float, float, float]:
    prior = label_prior(labels)
    if prior is None:  # every mirrored label has a prior (tested); only a table edit gets here
        raise EmoloomError(f"no VAD prior for labels {list(labels)}")
    return prior


def _unit(x: float) -> float:
    return min(1.0, max(0.0, round(x, 3)))


def flip_record(record: Record, label_set: LabelSet) -> Record | None:
    """The mirrored copy of `record`, or None when it cannot be flipped (see module docstring)."""
    mirrors = MIRROR_PAIRS.get(label_set.name, {})
    if not record.labels or not all(lab in mirrors for lab in record.labels):
        return None
    text, swaps = flip_text(record.text)
    if swaps == 0:
        return None
    mirrored = label_set.canonical(mirrors[lab] for lab in record.labels)
    v, a, d = record.vad.as_tuple() if record.vad is not None else _prior(record.labels)
    _, prior_a, prior_d = _prior(mirrored)
    vad = VAD(v=_unit(1.0 - v), a=_unit((a + prior_a) / 2), d=_unit((d + prior_d) / 2))
    return record.model_copy(
        update={
            "id": f"{record.id}#flip",
            "text": text,
            "labels": mirrored,
            "vad": vad,
            # the VAD is now derived from the parent's, whatever the parent's source was
            "meta": {
                **record.meta,
                "augment": "valence_flip",
                "parent": record.id,
                "swaps": swaps,
                "vad_source": "valence_flip",
            },
        }
    )


def valence_flip(records: Iterable[Record], label_set: LabelSet) -> list[Record]:
    """The flipped copies of the `records` that can be flipped, in input order."""
    return [f for r in records if (f := flip_record(r, label_set)) is not None]
