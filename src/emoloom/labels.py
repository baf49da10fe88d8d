"""Label sets, cross-corpus mappings and the per-label knowledge tables emoloom uses.

Everything here is small, static and part of the protocol, so it lives in code (and is hashed
into run manifests by later stages) rather than being read from data files:

- `LABEL_SETS`: GoEmotions (28), EmpatheticDialogues (32), DailyDialog (7), Ekman-7.
- Mappings: the official GoEmotions→Ekman grouping, our EmpatheticDialogues→Ekman grouping,
  Ekman→DailyDialog, and their compositions (`mapping`, `map_labels`).
- `LABEL_VAD_PRIORS`: a (v, a, d) prior per label word, for lexicon-weak VAD targets.
- `APPRAISAL_PROFILES`: four appraisal atoms per label, the targets of the appraisal verifier.
- `MIRROR_PAIRS`: label mirrors per label set, for Valence Flip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from emoloom.errors import EmoloomError


@dataclass(frozen=True)
class LabelSet:
    """An ordered label vocabulary. The order is canonical: outputs list labels in this order."""

    name: str
    labels: tuple[str, ...]
    multi_label: bool
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"label set {self.name!r} repeats a label")
        object.__setattr__(
            self, "_index", MappingProxyType({lab: i for i, lab in enumerate(self.labels)})
        )

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        return self._index[label]

    def canonical(self, labels: Iterable[str]) -> tuple[str, ...]:
        """Deduplicate and sort `labels` into label-set order (all must belong to the set)."""
        return tuple(sorted(set(labels), key=self._index.__getitem__))


# GoEmotions "simplified": 27 emotions + neutral, in the order of the official emotions.txt
# (label ids in the TSVs index this tuple).
GOEMOTIONS = LabelSet(
    "goemotions",
    (
        "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
        "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
        "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
        "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
    ),
    multi_label=True,
)  # fmt: skip

# EmpatheticDialogues: the 32 situation emotions, alphabetical (the order of the HF card).
EMPATHETIC = LabelSet(
    "empathetic",
    (
        "afraid", "angry", "annoyed", "anticipating", "anxious", "apprehensive", "ashamed",
        "caring", "confident", "content", "devastated", "disappointed", "disgusted",
        "embarrassed", "excited", "faithful", "furious", "grateful", "guilty", "hopeful",
        "impressed", "jealous", "joyful", "lonely", "nostalgic", "prepared", "proud", "sad",
        "sentimental", "surprised", "terrified", "trusting",
    ),
    multi_label=False,
)  # fmt: skip

# DailyDialog: emotion ids 0..6 of the original release index this tuple.
DAILYDIALOG = LabelSet(
    "dailydialog",
    ("no emotion", "anger", "disgust", "fear", "happiness", "sadness", "surprise"),
    multi_label=False,
)

# Ekman's six basic emotions plus neutral: the coarse view GoEmotions publishes a mapping to.
EKMAN = LabelSet(
    "ekman",
    ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"),
    multi_label=True,
)

LABEL_SETS: Mapping[str, LabelSet] = MappingProxyType(
    {ls.name: ls for ls in (GOEMOTIONS, EMPATHETIC, DAILYDIALOG, EKMAN)}
)


def get_label_set(name: str) -> LabelSet:
    try:
        return LABEL_SETS[name]
    except KeyError:
        raise EmoloomError(
            f"Unknown label set {name!r}. Available: {', '.join(LABEL_SETS)}"
        ) from None


def _invert(groups: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    return {member: target for target, members in groups.items() for member in members}


# The official grouping (google-research goemotions/data/ekman_mapping.json), neutral → neutral.
# The GoEmotions loader checks this table against the file when the file is present.
GOEMOTIONS_EKMAN_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "anger": ("anger", "annoyance", "disapproval"),
        "disgust": ("disgust",),
        "fear": ("fear", "nervousness"),
        "joy": (
            "joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism",
            "relief", "pride", "admiration", "desire", "caring",
        ),
        "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
        "surprise": ("surprise", "realization", "confusion", "curiosity"),
    }
)  # fmt: skip
GOEMOTIONS_TO_EKMAN: Mapping[str, str] = MappingProxyType(
    {**_invert(GOEMOTIONS_EKMAN_GROUPS), "neutral": "neutral"}
)

# Ours: an EmpatheticDialogues label maps to an Ekman class only where it names the same state as
# a GoEmotions category of that class (afraid~fear, annoyed~annoyance, guilty~remorse,
# hopeful~optimism, impressed~admiration, proud~pride, ...). Labels with no defensible single
# basic emotion (anticipating, faithful, jealous, nostalgic, prepared, sentimental, trusting)
# are left unmapped and drop out of Ekman-level scores.
EMPATHETIC_TO_EKMAN: Mapping[str, str] = MappingProxyType(
    _invert(
        {
            "anger": ("angry", "annoyed", "furious"),
            "disgust": ("disgusted",),
            "fear": ("afraid", "anxious", "apprehensive", "terrified"),
            "joy": (
                "caring", "confident", "content", "excited", "grateful", "hopeful", "impressed",
                "joyful", "proud",
            ),
            "sadness": (
                "ashamed", "devastated", "disappointed", "embarrassed", "guilty", "lonely", "sad",
            ),
            "surprise": ("surprised",),
        }
    )
)  # fmt: skip

EKMAN_TO_DAILYDIALOG: Mapping[str, str] = MappingProxyType(
    {
        "neutral": "no emotion",
        "anger": "anger",
        "disgust": "disgust",
        "fear": "fear",
        "joy": "happiness",
        "sadness": "sadness",
        "surprise": "surprise",
    }
)

_MAPPINGS: Mapping[tuple[str, str], Mapping[str, str]] = MappingProxyType(
    {
        ("goemotions", "ekman"): GOEMOTIONS_TO_EKMAN,
        ("empathetic", "ekman"): EMPATHETIC_TO_EKMAN,
        ("ekman", "dailydialog"): EKMAN_TO_DAILYDIALOG,
        ("goemotions", "dailydialog"): MappingProxyType(
            {k: EKMAN_TO_DAILYDIALOG[v] for k, v in GOEMOTIONS_TO_EKMAN.items()}
        ),
        ("empathetic", "dailydialog"): MappingProxyType(
            {k: EKMAN_TO_DAILYDIALOG[v] for k, v in EMPATHETIC_TO_EKMAN.items()}
        ),
    }
)


def mapping(source: str, target: str) -> Mapping[str, str]:
    """The label mapping from label set `source` to label set `target` (partial for ED)."""
    try:
        return _MAPPINGS[(source, target)]
    except KeyError:
        known = ", ".join(f"{s}->{t}" for s, t in _MAPPINGS)
        raise EmoloomError(f"No label mapping {source}->{target}. Available: {known}") from None


def map_labels(labels: Iterable[str], source: str, target: str) -> tuple[str, ...]:
    """Map labels across label sets; unmapped labels drop out; result in `target` order.

    A prediction whose labels all drop out maps to the target's neutral class when it has one
    (DailyDialog "no emotion", Ekman "neutral"), so every input still gets a class.
    """
    table = mapping(source, target)
    target_set = LABEL_SETS[target]
    mapped = {table[lab] for lab in labels if lab in table}
    if not mapped:
        neutral = neutral_class(target)
        return (neutral,) if neutral else ()
    return target_set.canonical(mapped)


def neutral_class(label_set: str) -> str | None:
    """The label set's no-emotion class (Ekman/GoEmotions "neutral", DailyDialog "no
    emotion"), or None: where `map_labels` sends predictions whose labels all drop out."""
    names = LABEL_SETS[label_set]
    return next((n for n in ("neutral", "no emotion") if n in names), None)


# (v, a, d) of each label's head word in the NRC VAD Lexicon v1 (Mohammad, 2018, "Obtaining
# Reliable Human Ratings of Valence, Arousal, and Dominance for 20,000 English Words", ACL),
# scale [0, 1]. Used only as a prior for weak VAD targets; the lexicon itself is never shipped.
# Head words differ from the label for "no emotion" (neutral) and "anticipating" (anticipation);
# "happiness", "joy" etc. are the words themselves.
LABEL_VAD_PRIORS: Mapping[str, tuple[float, float, float]] = MappingProxyType(
    {
        # GoEmotions
        "admiration": (0.969, 0.583, 0.726), "amusement": (0.929, 0.837, 0.803),
        "anger": (0.167, 0.865, 0.657), "annoyance": (0.167, 0.718, 0.342),
        "approval": (0.854, 0.460, 0.889), "caring": (0.635, 0.469, 0.500),
        "confusion": (0.255, 0.667, 0.277), "curiosity": (0.750, 0.755, 0.463),
        "desire": (0.896, 0.692, 0.647), "disappointment": (0.115, 0.490, 0.336),
        "disapproval": (0.085, 0.551, 0.367), "disgust": (0.052, 0.775, 0.317),
        "embarrassment": (0.143, 0.685, 0.226), "excitement": (0.896, 0.684, 0.731),
        "fear": (0.073, 0.840, 0.293), "gratitude": (0.885, 0.441, 0.610),
        "grief": (0.070, 0.640, 0.474), "joy": (0.980, 0.824, 0.794),
        "love": (1.000, 0.519, 0.673), "nervousness": (0.163, 0.915, 0.241),
        "optimism": (0.949, 0.565, 0.814), "pride": (0.729, 0.634, 0.848),
        "realization": (0.554, 0.510, 0.836), "relief": (0.844, 0.278, 0.481),
        "remorse": (0.103, 0.673, 0.377), "sadness": (0.052, 0.288, 0.164),
        "surprise": (0.875, 0.875, 0.562), "neutral": (0.469, 0.184, 0.357),
        # EmpatheticDialogues
        "afraid": (0.010, 0.775, 0.245), "angry": (0.122, 0.830, 0.604),
        "annoyed": (0.104, 0.783, 0.345), "anticipating": (0.698, 0.539, 0.711),
        "anxious": (0.281, 0.875, 0.434), "apprehensive": (0.406, 0.592, 0.431),
        "ashamed": (0.156, 0.588, 0.228), "confident": (0.765, 0.324, 0.723),
        "content": (0.764, 0.296, 0.559), "devastated": (0.120, 0.544, 0.264),
        "disappointed": (0.071, 0.472, 0.241), "disgusted": (0.051, 0.773, 0.274),
        "embarrassed": (0.184, 0.560, 0.246), "excited": (0.908, 0.931, 0.709),
        "faithful": (0.888, 0.333, 0.627), "furious": (0.062, 0.953, 0.598),
        "grateful": (0.958, 0.353, 0.560), "guilty": (0.135, 0.770, 0.352),
        "hopeful": (0.947, 0.357, 0.627), "impressed": (0.806, 0.770, 0.429),
        "jealous": (0.173, 0.855, 0.345), "joyful": (0.990, 0.740, 0.667),
        "lonely": (0.250, 0.226, 0.238), "nostalgic": (0.458, 0.351, 0.184),
        "prepared": (0.710, 0.480, 0.733), "proud": (0.906, 0.700, 0.873),
        "sad": (0.225, 0.333, 0.149), "sentimental": (0.583, 0.378, 0.312),
        "surprised": (0.784, 0.855, 0.539), "terrified": (0.090, 0.902, 0.387),
        "trusting": (0.857, 0.508, 0.750),
        # DailyDialog
        "no emotion": (0.469, 0.184, 0.357), "happiness": (0.960, 0.732, 0.850),
    }
)  # fmt: skip

APPRAISAL_ATOMS: tuple[str, ...] = ("goal_attainment", "controllability", "certainty", "fairness")

# Appraisal atoms per label, each in [0, 1]: goal attainment (Scherer's goal conduciveness /
# Smith & Ellsworth's pleasantness), controllability (coping potential / situational control),
# certainty (outcome probability / certainty), fairness (norm compatibility / legitimacy).
# Values are our coarse reading of the appraisal profiles in Smith & Ellsworth (1985, JPSP 48:
# 813-838, Table 5-6) and Scherer (2001, "Appraisal considered as a process of multilevel
# sequential checking", Table 5.4): e.g. anger = goal obstructed, other-caused, high power, high
# certainty, unfair; fear = obstructed, low power, low certainty; guilt/remorse = self-caused
# norm violation. 0.5 means "not diagnostic".
APPRAISAL_PROFILES: Mapping[str, tuple[float, float, float, float]] = MappingProxyType(
    {
        "admiration": (0.75, 0.50, 0.75, 0.90), "amusement": (0.85, 0.70, 0.70, 0.70),
        "anger": (0.10, 0.60, 0.80, 0.05), "annoyance": (0.25, 0.55, 0.70, 0.20),
        "approval": (0.75, 0.60, 0.75, 0.85), "caring": (0.60, 0.60, 0.60, 0.80),
        "confusion": (0.40, 0.30, 0.10, 0.50), "curiosity": (0.60, 0.55, 0.20, 0.60),
        "desire": (0.50, 0.50, 0.35, 0.60), "disappointment": (0.10, 0.30, 0.80, 0.35),
        "disapproval": (0.25, 0.50, 0.75, 0.15), "disgust": (0.10, 0.45, 0.75, 0.15),
        "embarrassment": (0.20, 0.25, 0.70, 0.45), "excitement": (0.85, 0.60, 0.55, 0.70),
        "fear": (0.10, 0.15, 0.20, 0.40), "gratitude": (0.90, 0.40, 0.85, 0.90),
        "grief": (0.02, 0.05, 0.90, 0.40), "joy": (0.95, 0.70, 0.80, 0.75),
        "love": (0.85, 0.55, 0.75, 0.80), "nervousness": (0.30, 0.25, 0.15, 0.45),
        "optimism": (0.75, 0.60, 0.40, 0.65), "pride": (0.90, 0.85, 0.80, 0.80),
        "realization": (0.50, 0.50, 0.85, 0.50), "relief": (0.80, 0.50, 0.85, 0.65),
        "remorse": (0.20, 0.60, 0.80, 0.25), "sadness": (0.10, 0.20, 0.75, 0.40),
        "surprise": (0.55, 0.40, 0.10, 0.50), "neutral": (0.50, 0.50, 0.50, 0.50),
        "afraid": (0.10, 0.15, 0.20, 0.40), "angry": (0.10, 0.60, 0.80, 0.05),
        "annoyed": (0.25, 0.55, 0.70, 0.20), "anticipating": (0.60, 0.50, 0.30, 0.60),
        "anxious": (0.25, 0.25, 0.15, 0.45), "apprehensive": (0.30, 0.30, 0.20, 0.50),
        "ashamed": (0.15, 0.40, 0.75, 0.30), "confident": (0.75, 0.85, 0.80, 0.70),
        "content": (0.80, 0.70, 0.80, 0.75), "devastated": (0.02, 0.05, 0.90, 0.30),
        "disappointed": (0.10, 0.30, 0.80, 0.35), "disgusted": (0.10, 0.45, 0.75, 0.15),
        "embarrassed": (0.20, 0.25, 0.70, 0.45), "excited": (0.85, 0.60, 0.55, 0.70),
        "faithful": (0.70, 0.55, 0.75, 0.85), "furious": (0.05, 0.65, 0.85, 0.02),
        "grateful": (0.90, 0.40, 0.85, 0.90), "guilty": (0.20, 0.60, 0.80, 0.20),
        "hopeful": (0.65, 0.45, 0.35, 0.65), "impressed": (0.75, 0.50, 0.70, 0.80),
        "jealous": (0.20, 0.30, 0.60, 0.20), "joyful": (0.95, 0.70, 0.80, 0.75),
        "lonely": (0.15, 0.20, 0.65, 0.40), "nostalgic": (0.50, 0.30, 0.70, 0.60),
        "prepared": (0.65, 0.85, 0.75, 0.60), "proud": (0.90, 0.85, 0.80, 0.80),
        "sad": (0.10, 0.20, 0.75, 0.40), "sentimental": (0.55, 0.40, 0.65, 0.65),
        "surprised": (0.55, 0.40, 0.10, 0.50), "terrified": (0.05, 0.05, 0.20, 0.35),
        "trusting": (0.70, 0.50, 0.70, 0.90),
        "no emotion": (0.50, 0.50, 0.50, 0.50), "happiness": (0.95, 0.70, 0.80, 0.75),
    }
)  # fmt: skip


def symmetric_pairs(pairs: Iterable[tuple[str, str]]) -> Mapping[str, str]:
    """Both directions of each pair. A word in two pairs, or paired with itself, is refused:
    flips must be one-to-one so that flipping twice is the identity."""
    table: dict[str, str] = {}
    for a, b in pairs:
        if a == b or a in table or b in table:
            raise ValueError(f"mirror pair ({a!r}, {b!r}) repeats a word")
        table[a], table[b] = b, a
    return MappingProxyType(table)


# Valence Flip label mirrors (ours): each pair names the emotion a text most plausibly expresses
# once its evaluative words are swapped for antonyms. Only clearly valenced labels are paired;
# ambiguous ones (surprise, curiosity, neutral, nostalgic, ...) have no mirror, and a row is
# flipped only when all of its labels have one. Pairs are symmetric: flipping twice is identity.
MIRROR_PAIRS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "goemotions": symmetric_pairs(
            [
                ("joy", "sadness"), ("approval", "disapproval"), ("admiration", "disgust"),
                ("excitement", "disappointment"), ("pride", "embarrassment"),
                ("optimism", "nervousness"), ("relief", "fear"), ("amusement", "annoyance"),
                ("love", "anger"),
            ]
        ),
        "empathetic": symmetric_pairs(
            [
                ("joyful", "sad"), ("excited", "disappointed"), ("proud", "ashamed"),
                ("confident", "apprehensive"), ("hopeful", "anxious"),
                ("impressed", "disgusted"), ("content", "annoyed"),
            ]
        ),
        "dailydialog": symmetric_pairs([("happiness", "sadness")]),
        "ekman": symmetric_pairs([("joy", "sadness")]),
    }
)  # fmt: skip


def label_prior(labels: Iterable[str]) -> tuple[float, float, float] | None:
    """Mean VAD prior of the `labels` that have one (None when none has)."""
    priors = [LABEL_VAD_PRIORS[lab] for lab in labels if lab in LABEL_VAD_PRIORS]
    if not priors:
        return None
    n = len(priors)
    return (
        sum(p[0] for p in priors) / n,
        sum(p[1] for p in priors) / n,
        sum(p[2] for p in priors) / n,
    )
