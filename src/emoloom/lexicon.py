"""VAD lexicons and lexicon-weak VAD targets (text → (v, a, d) in [0, 1]).

The corpora carry no gold VAD, so targets are derived (mission.md, "Weak VAD targets"):

1. tokenise the lower-cased text; look each content word up in a word-level VAD lexicon (NRC VAD
   v1 by default, Warriner et al. 2013 rescaled from 1–9 as an alternative), trying a few
   suffix-stripped forms when the surface form is missing;
2. flip valence (v → 1 − v) for words within `negation_window` tokens after a negator, up to
   the next clause punctuation;
3. average the hits and blend with the label prior (`labels.label_prior`) with weight
   `blend_weight` on the lexicon side; with fewer than `min_hits` hits use the prior alone.

Every target says where it came from in `meta`: ``vad_source`` is ``lexicon`` (blend),
``prior`` or ``gold``; ``vad_hits`` counts lexicon hits.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from emoloom.errors import DataError, EmoloomError
from emoloom.labels import label_prior

VAD3 = tuple[float, float, float]

LEXICON_FILES: Mapping[str, str] = {
    "nrc": "nrc_vad/NRC-VAD-Lexicon.txt",
    "warriner": "warriner_vad/Ratings_Warriner_et_al.csv",
}


@dataclass(frozen=True)
class WeakVADConfig:
    """How weak VAD targets are made. `lexicon="none"` uses label priors only."""

    lexicon: str = "nrc"
    blend_weight: float = 0.5
    negation_window: int = 3
    min_hits: int = 2

    def __post_init__(self) -> None:
        if self.lexicon not in (*LEXICON_FILES, "none"):
            raise EmoloomError(
                f"Unknown lexicon {self.lexicon!r}. Available: {', '.join(LEXICON_FILES)}, none"
            )
        if not 0.0 <= self.blend_weight <= 1.0:
            raise EmoloomError(f"weak_vad.blend_weight={self.blend_weight} must be in [0, 1]")
        if self.negation_window < 0 or self.min_hits < 1:
            raise EmoloomError("weak_vad.negation_window must be >= 0 and min_hits >= 1")


@dataclass(frozen=True, eq=False)  # identity hash: cached per loaded lexicon
class VADLexicon:
    name: str
    path: str
    entries: Mapping[str, VAD3]
    # surface form → resolved entry (or None); corpora repeat words, suffix rules are slow
    _resolved: dict[str, VAD3 | None] = field(default_factory=dict, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, word: str) -> VAD3 | None:
        """The entry for `word`, or for the first of its suffix-stripped forms that has one."""
        try:
            return self._resolved[word]
        except KeyError:
            pass
        hit = self.entries.get(word)
        if hit is None:
            hit = next((self.entries[f] for f in _base_forms(word) if f in self.entries), None)
        self._resolved[word] = hit
        return hit


def _unit(path: Path, line: int, field: str, raw: str, lo: float, hi: float) -> float:
    try:
        x = float(raw)
    except ValueError:
        raise DataError(path, line, field, f"not a number: {raw!r}") from None
    if not lo <= x <= hi:
        raise DataError(path, line, field, f"{x} outside [{lo}, {hi}]")
    return (x - lo) / (hi - lo)


def _open_text(path: Path) -> io.StringIO:
    """The lexicon file as text: strict UTF-8 (a bad byte is named with its line), a leading
    BOM dropped, line endings left for the caller (``newline=""``, as csv needs)."""
    if not path.is_file():
        what = "a directory" if path.is_dir() else "missing"
        raise EmoloomError(f"{path}: lexicon file is {what}")
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(
            path, line, None, f"invalid UTF-8 at byte {err.start - line_start}"
        ) from None
    return io.StringIO(text, newline="")


def load_nrc_vad(path: str | Path) -> VADLexicon:
    """NRC VAD Lexicon v1: header ``Word\\tValence\\tArousal\\tDominance``, scores in [0, 1]."""
    path = Path(path)
    entries: dict[str, VAD3] = {}
    with _open_text(path) as f:
        for n, row in enumerate(f, start=1):
            parts = row.rstrip("\r\n").split("\t")
            if n == 1 and parts[0].lower() == "word":
                continue
            if len(parts) != 4:
                raise DataError(path, n, None, f"expected 4 tab-separated fields, got {len(parts)}")
            word = parts[0].strip().lower()
            entries[word] = tuple(  # type: ignore[assignment]
                _unit(path, n, name, raw, 0.0, 1.0)
                for name, raw in zip(("valence", "arousal", "dominance"), parts[1:], strict=True)
            )
    if not entries:
        raise DataError(path, None, None, "lexicon has no entries")
    return VADLexicon("nrc_vad_v1", str(path), entries)


def load_warriner(path: str | Path) -> VADLexicon:
    """Warriner, Kuperman & Brysbaert (2013) norms: CSV with Word, V/A/D.Mean.Sum on 1–9."""
    path = Path(path)
    entries: dict[str, VAD3] = {}
    columns = ("V.Mean.Sum", "A.Mean.Sum", "D.Mean.Sum")
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        n = 0  # the last line read completely
        try:
            missing = [c for c in ("Word", *columns) if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(path, 1, missing[0], "column missing from the header")
            n = reader.line_num
            for row in reader:
                n = reader.line_num
                word = (row["Word"] or "").strip().lower()
                if not word:
                    raise DataError(path, n, "Word", "empty")
                entries[word] = tuple(  # type: ignore[assignment]
                    _unit(path, n, c, row[c] or "", 1.0, 9.0) for c in columns
                )
        except csv.Error as err:  # e.g. an unclosed quote running past the field size limit
            raise DataError(path, n + 1, None, f"malformed CSV ({err})") from None
    if not entries:
        raise DataError(path, None, None, "lexicon has no entries")
    return VADLexicon("warriner_2013", str(path), entries)


@lru_cache(maxsize=4)
def load_lexicon(name: str, data_dir: str) -> VADLexicon:
    """Load lexicon `name` ("nrc" or "warriner") from its place under `data_dir` (cached)."""
    path = Path(data_dir) / LEXICON_FILES[name]
    return load_nrc_vad(path) if name == "nrc" else load_warriner(path)


# ------------------------------------------------------------------------------ text → VAD

# Tokens: words (with inner apostrophes, so "didn't" stays one token) and clause punctuation,
# which ends a negation scope.
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)*|[.!?;:,]")
_CLAUSE_END = frozenset(".!?;:,")
NEGATORS = frozenset(
    "not no never nothing nobody none neither nor nowhere without hardly barely cannot "
    "cant dont doesnt didnt isnt wasnt werent wont wouldnt shouldnt couldnt aint".split()
)


@lru_cache(maxsize=8)
def stopwords(lexicon: VADLexicon) -> frozenset[str]:
    """scikit-learn's English stop words, less negators and less words `lexicon` rates as
    clearly valenced (|v - 0.5| > 0.25).

    The list (Glasgow IR group) holds generic verbs and numerals the lexicons rate (be, get,
    one) that carry no affect in context; it also holds "cry", "alone", "empty", "serious",
    which do, hence the valence filter.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # lazy: sklearn is slow

    def valenced(word: str) -> bool:
        entry = lexicon.entries.get(word)
        return entry is not None and abs(entry[0] - 0.5) > 0.25

    return frozenset(w for w in ENGLISH_STOP_WORDS if w not in NEGATORS and not valenced(w))


def _base_forms(word: str) -> Iterable[str]:
    """Candidate lemmas by suffix stripping, most specific first.

    WordNet lemmatisers need corpora we cannot download at run time, and the lexicons list
    base forms, so a handful of English inflection rules recover most misses (cries→cry,
    loved→love, hated→hate, running→run, happily→happy, sadness kept as is).
    """
    if word.endswith("'s"):
        yield word[:-2]
    if len(word) <= 3:
        return
    if word.endswith("ies"):
        yield word[:-3] + "y"
    if word.endswith("ied"):
        yield word[:-3] + "y"
    if word.endswith("ily"):
        yield word[:-3] + "y"
    for suffix in ("ing", "ed"):
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            yield stem
            yield stem + "e"
            if len(stem) > 2 and stem[-1] == stem[-2]:
                yield stem[:-1]
    for suffix in ("es", "s", "ly", "er", "est"):
        if word.endswith(suffix) and not word.endswith("ss"):
            yield word[: -len(suffix)]


def _is_negator(token: str) -> bool:
    return token in NEGATORS or token.endswith("n't")


def lexicon_vad(text: str, lexicon: VADLexicon, negation_window: int) -> tuple[VAD3 | None, int]:
    """Mean (v, a, d) over the lexicon hits of `text` with negation flips, and the hit count."""
    text = text.lower().replace("\u2019", "'")
    stop = stopwords(lexicon)
    sums = [0.0, 0.0, 0.0]
    hits = 0
    negated = 0  # content tokens still inside the current negation scope
    for token in _TOKEN.findall(text):
        if token in _CLAUSE_END:
            negated = 0
            continue
        if _is_negator(token):
            negated = negation_window
            continue
        if token in stop:
            continue
        entry = lexicon.lookup(token)
        if entry is not None:
            v, a, d = entry
            sums[0] += 1.0 - v if negated else v
            sums[1] += a
            sums[2] += d
            hits += 1
        if negated:
            negated -= 1
    if not hits:
        return None, 0
    return (sums[0] / hits, sums[1] / hits, sums[2] / hits), hits


@dataclass(frozen=True)
class WeakTarget:
    vad: VAD3
    source: str  # "lexicon" | "prior"
    hits: int


class WeakVAD:
    """Turns (text, gold labels) into a weak VAD target per `WeakVADConfig`."""

    def __init__(self, config: WeakVADConfig, lexicon: VADLexicon | None) -> None:
        if config.lexicon != "none" and lexicon is None:
            raise EmoloomError(f"weak VAD with lexicon {config.lexicon!r} needs a loaded lexicon")
        self.config = config
        self.lexicon = lexicon if config.lexicon != "none" else None

    @property
    def lexicon_name(self) -> str:
        return self.lexicon.name if self.lexicon else "none"

    def target(self, text: str, labels: Iterable[str]) -> WeakTarget:
        prior = label_prior(labels) or label_prior(["neutral"])
        assert prior is not None
        if self.lexicon is None:
            return WeakTarget(_round3(prior), "prior", 0)
        lex, hits = lexicon_vad(text, self.lexicon, self.config.negation_window)
        if lex is None or hits < self.config.min_hits:
            return WeakTarget(_round3(prior), "prior", hits)
        w = self.config.blend_weight
        blended = tuple(w * x + (1.0 - w) * p for x, p in zip(lex, prior, strict=True))
        return WeakTarget(_round3(blended), "lexicon", hits)  # type: ignore[arg-type]


def _round3(vad: Iterable[float]) -> VAD3:
    # Three decimals: the precision of the lexicon itself; the contract rounds outputs to two.
    v, a, d = (min(1.0, max(0.0, round(x, 3))) for x in vad)
    return (v, a, d)
