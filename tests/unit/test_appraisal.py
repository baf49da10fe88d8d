"""The appraisal-atom verifier: weak targets, soft logistic heads, caching, rationales, encoder."""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from emoloom.appraisal import (
    AppraisalVerifier,
    SentenceEncoder,
    _fit_soft_logistic,
    atom_targets,
    data_hash,
    load_or_fit,
    profile_matrix,
    rationale_from_atoms,
)
from emoloom.errors import EmoloomError
from emoloom.labels import APPRAISAL_ATOMS, APPRAISAL_PROFILES, GOEMOTIONS

GOAL, CONTROL, CERTAINTY, FAIRNESS = range(4)


class HashingBagOfWords:
    """A cheap deterministic encoder: words hashed (sha256, not the salted `hash`) into 64 dims."""

    def __init__(self, dim: int = 64, name: str = "fake-bow-64") -> None:
        self.dim = dim
        self.name = name
        self.calls = 0

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z']+", text.lower()):
                out[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


SUBJECTS = ["she", "my brother", "the manager", "our neighbour", "he", "the team"]
THINGS = ["the delay", "the new job", "the result", "the email", "the weekend", "the call"]


def toy_data() -> tuple[list[str], list[list[str]]]:
    """Texts with "furious" carry anger, texts with "delighted" carry joy; a few are neutral."""
    texts, labels = [], []
    for subj in SUBJECTS:
        for thing in THINGS:
            texts.append(f"{subj} was furious about {thing}")
            labels.append(["anger"])
            texts.append(f"{subj} was delighted about {thing}")
            labels.append(["joy"])
    texts += ["the bus left at nine", "it is tuesday"]
    labels += [["neutral"], []]
    return texts, labels


@pytest.fixture
def encoder() -> HashingBagOfWords:
    return HashingBagOfWords()


@pytest.fixture
def verifier(encoder: HashingBagOfWords) -> AppraisalVerifier:
    texts, labels = toy_data()
    return AppraisalVerifier.fit(texts, labels, encoder, seed=7)


# --------------------------------------------------------------------------- weak targets


def test_atom_targets_average_the_profiles_of_the_labels() -> None:
    got = atom_targets(["anger", "joy"])
    want = (np.array(APPRAISAL_PROFILES["anger"]) + np.array(APPRAISAL_PROFILES["joy"])) / 2
    assert got.shape == (4,)
    np.testing.assert_allclose(got, want)


def test_atom_targets_ignore_unknown_labels_and_are_neutral_when_none_is_known() -> None:
    np.testing.assert_allclose(atom_targets(["fear", "not-a-label"]), APPRAISAL_PROFILES["fear"])
    np.testing.assert_array_equal(atom_targets(["not-a-label"]), [0.5] * 4)
    np.testing.assert_array_equal(atom_targets([]), [0.5] * 4)
    with pytest.raises(TypeError, match="list of labels"):
        atom_targets("joy")


def test_a_label_distribution_times_the_profile_matrix_gives_the_implied_atoms() -> None:
    matrix = profile_matrix(GOEMOTIONS.labels)
    p = np.zeros(len(GOEMOTIONS))
    p[GOEMOTIONS.index("anger")], p[GOEMOTIONS.index("joy")] = 0.25, 0.75
    want = 0.25 * np.array(APPRAISAL_PROFILES["anger"]) + 0.75 * np.array(APPRAISAL_PROFILES["joy"])
    assert matrix.shape == (len(GOEMOTIONS), 4)
    np.testing.assert_allclose(p @ matrix, want)
    np.testing.assert_array_equal(profile_matrix(["unknown"]), [[0.5] * 4])


# --------------------------------------------------------------------------- fitting


def test_the_soft_label_fit_recovers_the_mean_target_when_features_carry_no_signal() -> None:
    # With all-zero features only the intercept can move, and the minimiser of the soft
    # cross-entropy for a constant prediction is the mean target: proof that the duplication
    # trick is the soft log-loss, not some reweighted hard loss.
    t = np.random.default_rng(0).uniform(size=50)
    coef, intercept = _fit_soft_logistic(np.zeros((50, 3)), t, C=1.0, seed=0)
    np.testing.assert_allclose(coef, 0.0, atol=1e-8)
    assert 1 / (1 + np.exp(-intercept)) == pytest.approx(t.mean(), abs=1e-4)


def test_a_furious_text_is_predicted_less_fair_and_less_goal_attaining_than_a_delighted_one(
    verifier: AppraisalVerifier, encoder: HashingBagOfWords
) -> None:
    unseen = [
        "my aunt was furious about the parking fine",
        "my aunt was delighted about the parking fine",
    ]
    atoms = verifier.predict(unseen, encoder)
    assert atoms.shape == (2, 4)
    assert np.all((atoms >= 0) & (atoms <= 1))
    furious, delighted = atoms
    assert furious[FAIRNESS] < delighted[FAIRNESS] - 0.2
    assert furious[GOAL] < delighted[GOAL] - 0.2


def test_predict_embeddings_agrees_with_predict_and_rejects_the_wrong_dimension(
    verifier: AppraisalVerifier, encoder: HashingBagOfWords
) -> None:
    texts = ["she was furious", "he was delighted"]
    np.testing.assert_array_equal(
        verifier.predict_embeddings(encoder.encode(texts)), verifier.predict(texts, encoder)
    )
    with pytest.raises(ValueError, match="dim 64"):
        verifier.predict_embeddings(np.zeros((2, 384), dtype=np.float32))


def test_predict_refuses_an_encoder_the_heads_were_not_fit_with(
    verifier: AppraisalVerifier,
) -> None:
    with pytest.raises(EmoloomError, match="fake-bow-64"):
        verifier.predict(["text"], HashingBagOfWords(name="other-encoder"))


def test_fit_rejects_empty_data_mismatched_lengths_and_non_positive_C(
    encoder: HashingBagOfWords,
) -> None:
    with pytest.raises(EmoloomError, match="zero texts"):
        AppraisalVerifier.fit([], [], encoder, seed=0)
    with pytest.raises(EmoloomError, match="2 texts but 1 label lists"):
        AppraisalVerifier.fit(["a", "b"], [["joy"]], encoder, seed=0)
    with pytest.raises(EmoloomError, match="C=0"):
        AppraisalVerifier.fit(["a"], [["joy"]], encoder, seed=0, C=0)


def test_the_same_seed_gives_identical_coefficients(encoder: HashingBagOfWords) -> None:
    texts, labels = toy_data()
    a = AppraisalVerifier.fit(texts, labels, encoder, seed=3)
    b = AppraisalVerifier.fit(texts, labels, encoder, seed=3)
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.intercept, b.intercept)
    assert a.data_hash == b.data_hash


def test_a_larger_C_regularises_less_and_gives_larger_weights(encoder: HashingBagOfWords) -> None:
    texts, labels = toy_data()
    weak = AppraisalVerifier.fit(texts, labels, encoder, seed=0, C=0.1)
    strong = AppraisalVerifier.fit(texts, labels, encoder, seed=0, C=10.0)
    assert np.linalg.norm(strong.coef) > np.linalg.norm(weak.coef)


# --------------------------------------------------------------------------- persistence


def test_save_then_load_gives_identical_predictions(
    verifier: AppraisalVerifier, encoder: HashingBagOfWords, tmp_path: Path
) -> None:
    path = tmp_path / "v.npz"
    verifier.save(path)
    loaded = AppraisalVerifier.load(path, encoder_name=encoder.name, data_hash=verifier.data_hash)
    texts = ["she was furious about the rent", "a quiet day"]
    np.testing.assert_array_equal(loaded.predict(texts, encoder), verifier.predict(texts, encoder))
    assert loaded.metadata() == verifier.metadata()
    assert [p.name for p in tmp_path.iterdir()] == ["v.npz"]  # no temp file left behind


def test_load_refuses_a_file_fit_with_another_encoder_or_other_data(
    verifier: AppraisalVerifier, tmp_path: Path
) -> None:
    path = tmp_path / "v.npz"
    verifier.save(path)
    with pytest.raises(EmoloomError, match="encoder='fake-bow-64'.*delete the file"):
        AppraisalVerifier.load(path, encoder_name="all-MiniLM-L6-v2@0123")
    with pytest.raises(EmoloomError, match="data_hash"):
        AppraisalVerifier.load(path, data_hash="0" * 64)
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(EmoloomError, match="not a readable appraisal verifier"):
        AppraisalVerifier.load(tmp_path / "junk.npz")


def test_data_hash_covers_seed_C_encoder_texts_and_labels_but_not_label_order() -> None:
    texts, labels = ["a b", "c"], [["joy", "anger"], []]
    base = data_hash(texts, labels, "enc", seed=0, C=1.0)
    assert base == data_hash(texts, [["anger", "joy"], []], "enc", seed=0, C=1.0)
    variants = [
        data_hash(texts, labels, "enc", seed=1, C=1.0),
        data_hash(texts, labels, "enc", seed=0, C=2.0),
        data_hash(texts, labels, "other", seed=0, C=1.0),
        data_hash(["a b", "d"], labels, "enc", seed=0, C=1.0),
        data_hash(texts, [["joy"], []], "enc", seed=0, C=1.0),
        data_hash(["a", "b c"], labels, "enc", seed=0, C=1.0),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_load_or_fit_reuses_the_cache_instead_of_refitting(
    encoder: HashingBagOfWords, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts, labels = toy_data()
    first = load_or_fit(texts, labels, encoder, seed=1, cache_dir=tmp_path)
    [cached] = tmp_path.glob("appraisal-*.npz")
    assert cached.name == f"appraisal-{first.data_hash[:16]}.npz"

    def no_refit(*args: object, **kwargs: object) -> AppraisalVerifier:
        raise AssertionError("refit despite a cache hit")

    monkeypatch.setattr(AppraisalVerifier, "fit", no_refit)
    encoder.calls = 0
    second = load_or_fit(texts, labels, encoder, seed=1, cache_dir=tmp_path)
    assert encoder.calls == 0  # a cache hit encodes nothing
    np.testing.assert_array_equal(second.coef, first.coef)
    np.testing.assert_array_equal(second.intercept, first.intercept)


def test_load_or_fit_refits_into_a_new_file_when_the_data_change(
    encoder: HashingBagOfWords, tmp_path: Path
) -> None:
    texts, labels = toy_data()
    first = load_or_fit(texts, labels, encoder, seed=1, cache_dir=tmp_path)
    labels[0] = ["fear"]
    second = load_or_fit(texts, labels, encoder, seed=1, cache_dir=tmp_path)
    assert second.data_hash != first.data_hash
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"appraisal-{v.data_hash[:16]}.npz" for v in (first, second)
    )


# --------------------------------------------------------------------------- rationales

# Atom order: goal_attainment, controllability, certainty, fairness.
RATIONALES = [
    ((0.1, 0.5, 0.5, 0.5), "goal blocked"),
    ((0.05, 0.2, 0.55, 0.5), "goal blocked little control"),
    ((0.9, 0.5, 0.95, 0.5), "outcome certain goal attained"),
    ((0.5, 0.85, 0.5, 0.1), "unfair treatment in control"),
    ((0.5, 0.5, 0.25, 0.8), "fair treatment outcome uncertain"),  # strongest first
    ((0.6, 0.4, 0.55, 0.45), "no clear appraisal"),
    ((0.5, 0.5, 0.5, 0.5), "no clear appraisal"),
    ((0.2, 0.8, 0.8, 0.2), "goal blocked in control"),  # exact ties fall back to atom order
]


@pytest.mark.parametrize(("atoms", "phrase"), RATIONALES)
def test_the_rationale_names_the_one_or_two_most_extreme_atoms(
    atoms: tuple[float, ...], phrase: str
) -> None:
    assert rationale_from_atoms(atoms) == phrase


def test_rationales_are_short_lower_case_words_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    for atoms in rng.uniform(size=(500, 4)):
        phrase = rationale_from_atoms(atoms)
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", phrase)
        assert 2 <= len(phrase.split()) <= 8
        assert rationale_from_atoms(list(atoms)) == phrase


def test_the_rationale_rejects_the_wrong_number_of_atoms_and_non_finite_values() -> None:
    with pytest.raises(ValueError, match="expected 4 atoms"):
        rationale_from_atoms([0.1, 0.9])
    with pytest.raises(ValueError, match="finite"):
        rationale_from_atoms([0.1, float("nan"), 0.5, 0.5])


def test_every_atom_has_a_rationale_vocabulary() -> None:
    phrases = {
        rationale_from_atoms([0.5] * k + [v] + [0.5] * (3 - k)) for k in range(4) for v in (0, 1)
    }
    assert len(phrases) == 2 * len(APPRAISAL_ATOMS)


# --------------------------------------------------------------------------- the real encoder


def test_the_sentence_encoder_refuses_a_path_that_is_not_a_local_model(tmp_path: Path) -> None:
    encoder = SentenceEncoder(tmp_path / "sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(EmoloomError, match="never downloaded"):
        encoder.encode(["hello"])
    with pytest.raises(EmoloomError, match="no modules.json"):
        _ = encoder.name


@pytest.fixture(scope="module")
def minilm() -> Iterator[SentenceEncoder]:
    """The bundled MiniLM, loaded with the hub switched off and every socket connect refused."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted during an offline test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        encoder = SentenceEncoder()
        encoder.encode(["load the model now, while the network is blocked"])
        yield encoder


SENTENCES = [
    "I am so happy today, everything went well.",
    "Today was a wonderful day and I feel great.",
    "The quarterly tax form is due on the fifteenth.",
]
MORE = [
    f"{subj} was {word} about {thing}"
    for subj, thing in zip(SUBJECTS, THINGS, strict=True)
    for word in ("furious", "delighted")
] + ["the meeting moved to room four", "we ran out of milk", "the train is late again", "thanks a lot for the help", "I can't believe they cheated me", "my exam went really well", "nothing much happened"]  # fmt: skip


def test_the_bundled_minilm_loads_offline_and_gives_unit_vectors_that_rank_similarity(
    minilm: SentenceEncoder,
) -> None:
    emb = minilm.encode(SENTENCES)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert similar > unrelated + 0.2
    assert re.fullmatch(r"all-MiniLM-L6-v2@[0-9a-f]{16}", minilm.name)


def test_the_bundled_minilm_is_deterministic_and_supports_a_verifier(
    minilm: SentenceEncoder,
) -> None:
    texts = SENTENCES + MORE
    assert len(texts) >= 20
    emb = minilm.encode(texts, batch_size=8)
    assert emb.shape == (len(texts), 384)
    np.testing.assert_allclose(minilm.encode(texts, batch_size=8), emb, rtol=0, atol=0)
    labels = [["joy"], ["joy"], ["neutral"]] + [
        ["anger"] if "furious" in t else ["joy"] if "delighted" in t else [] for t in MORE
    ]
    verifier = AppraisalVerifier.fit(texts, labels, minilm, seed=0, C=10.0)
    atoms = verifier.predict(
        ["she was furious at the referee", "she was delighted with the gift"], minilm
    )
    assert atoms[0, FAIRNESS] < atoms[1, FAIRNESS] and atoms[0, GOAL] < atoms[1, GOAL]
