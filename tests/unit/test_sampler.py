"""A/B mixture sampler: class shares follow n_c^(1/T), B share follows r, cooling, exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emoloom.errors import EmoloomError
from emoloom.sampler import ABMixtureSampler, MixtureConfig

COUNTS = [1000, 100, 10]  # very unequal single-label classes, so temperature matters


def single_label_pool(counts: list[int]) -> list[list[int]]:
    return [[c] for c, n in enumerate(counts) for _ in range(n)]


def make(counts=COUNTS, pool_b_size=0, seed=0, labels=None, **config) -> ABMixtureSampler:
    labels = single_label_pool(counts) if labels is None else labels
    return ABMixtureSampler(labels, pool_b_size, len(counts), MixtureConfig(**config), seed)


def class_shares(sampler: ABMixtureSampler, labels: list[list[int]], n: int) -> np.ndarray:
    rows = np.array([i for src, i in sampler.sample(n) if src == "A"])
    classes = np.array([labels[i][0] for i in rows])
    return np.bincount(classes, minlength=sampler.num_classes) / len(classes)


def expected_shares(counts: list[int], t: float) -> np.ndarray:
    w = np.asarray(counts, dtype=float) ** (1.0 / t)
    return w / w.sum()


@pytest.mark.parametrize("t0", [3.0, 1.0])
def test_sampled_class_shares_match_counts_to_the_power_one_over_t(t0):
    labels = single_label_pool(COUNTS)
    sampler = make(t0=t0, seed=1)
    assert sampler.temperature == t0
    np.testing.assert_allclose(sampler.class_probs(), expected_shares(COUNTS, t0))
    np.testing.assert_allclose(
        class_shares(sampler, labels, 200_000), expected_shares(COUNTS, t0), atol=0.01
    )


def test_high_temperature_gives_rare_classes_more_than_their_natural_share():
    hot = make(t0=3.0).class_probs()
    natural = np.asarray(COUNTS) / sum(COUNTS)
    assert hot[2] > 5 * natural[2] and hot[0] < natural[0]


def test_at_temperature_one_every_single_label_row_is_equally_likely():
    counts = [30, 10, 5]
    sampler = make(counts=counts, t0=1.0, seed=2)
    rows = np.array([i for _, i in sampler.sample(90_000)])
    freq = np.bincount(rows, minlength=sum(counts)) / len(rows)
    np.testing.assert_allclose(freq, 1 / sum(counts), atol=0.003)


def test_the_share_of_b_draws_matches_the_b_fraction_and_b_rows_are_uniform():
    sampler = make(pool_b_size=7, r0=0.3, seed=3)
    draws = sampler.sample(100_000)
    b_rows = np.array([i for src, i in draws if src == "B"])
    assert len(b_rows) / len(draws) == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(np.bincount(b_rows, minlength=7) / len(b_rows), 1 / 7, atol=0.01)
    assert b_rows.max() == 6
    a_rows = [i for src, i in draws if src == "A"]
    assert min(a_rows) >= 0 and max(a_rows) < sum(COUNTS)


def test_an_empty_b_pool_gives_only_a_draws_whatever_the_b_fraction():
    sampler = make(pool_b_size=0, r0=1.0)
    assert sampler.b_fraction == 0.0
    assert {src for src, _ in sampler.sample(5_000)} == {"A"}


def test_multi_label_rows_count_once_per_class_and_are_drawn_through_each_class():
    labels = [[0, 1], [0], [1, 1]]  # the duplicate in row 2 counts once
    sampler = ABMixtureSampler(labels, 0, 3, MixtureConfig(t0=1.0), seed=4)
    np.testing.assert_allclose(sampler.class_probs(), [0.5, 0.5, 0.0])
    freq = np.bincount([i for _, i in sampler.sample(60_000)], minlength=3) / 60_000
    # row 0 is reached through class 0 (1/2 · 1/2) and class 1 (1/2 · 1/2)
    np.testing.assert_allclose(freq, [0.5, 0.25, 0.25], atol=0.01)


def test_unlabelled_rows_are_never_drawn_by_the_class_path():
    labels = [[0], [], [1], []]
    sampler = ABMixtureSampler(labels, 0, 2, MixtureConfig(), seed=5)
    assert set(i for _, i in sampler.sample(5_000)) == {0, 2}


def test_a_pool_with_no_labels_at_all_is_sampled_uniformly():
    sampler = ABMixtureSampler([[], [], []], 0, 2, MixtureConfig(), seed=6)
    assert sampler.class_probs().tolist() == [0.0, 0.0]
    freq = np.bincount([i for _, i in sampler.sample(30_000)], minlength=3) / 30_000
    np.testing.assert_allclose(freq, 1 / 3, atol=0.01)


def test_temperature_and_b_fraction_fall_with_probe_entropy_from_the_first_measurement():
    sampler = make(pool_b_size=10, t0=3.0, r0=0.4, h0=None)
    assert sampler.update(0.8, step=0) is False  # H = h0: still at t0, r0
    assert sampler.h0 == 0.8
    assert (sampler.temperature, sampler.b_fraction) == (3.0, 0.4)
    assert sampler.update(0.4, step=50) is True  # halfway
    assert sampler.temperature == pytest.approx(2.0)
    assert sampler.b_fraction == pytest.approx(0.2)
    np.testing.assert_allclose(sampler.class_probs(), expected_shares(COUNTS, 2.0))
    assert sampler.update(0.0, step=100) is True  # fully cooled
    assert (sampler.temperature, sampler.b_fraction) == (1.0, 0.0)
    assert {src for src, _ in sampler.sample(2_000)} == {"A"}
    assert sampler.update(0.9, step=150) is True  # above the reference is capped at t0, r0
    assert (sampler.temperature, sampler.b_fraction) == (3.0, 0.4)
    assert [h["step"] for h in sampler.history] == [0, 50, 100, 150]
    assert sampler.history[1] == {
        "step": 50,
        "entropy": 0.4,
        "temperature": pytest.approx(2.0),
        "b_fraction": pytest.approx(0.2),
    }


def test_a_configured_reference_entropy_is_used_instead_of_the_first_measurement():
    sampler = make(pool_b_size=10, t0=3.0, r0=0.4, h0=0.5)
    assert sampler.update(0.25, step=0) is True
    assert sampler.h0 == 0.5
    assert sampler.temperature == pytest.approx(2.0)


def test_a_zero_reference_entropy_cools_fully_while_the_model_stays_certain():
    sampler = make(pool_b_size=10, t0=3.0, r0=0.4, h0=0.0)
    assert sampler.update(0.0, step=0) is True
    assert (sampler.temperature, sampler.b_fraction) == (1.0, 0.0)
    sampler.update(0.1, step=1)
    assert (sampler.temperature, sampler.b_fraction) == (3.0, 0.4)


def test_without_cooling_temperature_and_b_fraction_never_move():
    sampler = make(pool_b_size=10, t0=3.0, r0=0.4, cooling=False)
    for step, h in enumerate([0.9, 0.3, 0.0]):
        assert sampler.update(h, step) is False
    assert (sampler.temperature, sampler.b_fraction) == (3.0, 0.4)
    assert len(sampler.history) == 3


def test_disabled_mixture_samples_a_rows_uniformly_and_never_from_b():
    counts = [40, 4, 1]
    sampler = make(counts=counts, pool_b_size=10, t0=3.0, r0=0.5, enabled=False, seed=7)
    draws = sampler.sample(90_000)
    assert {src for src, _ in draws} == {"A"}
    freq = np.bincount([i for _, i in draws], minlength=sum(counts)) / len(draws)
    np.testing.assert_allclose(freq, 1 / sum(counts), atol=0.003)
    assert sampler.update(0.0, step=0) is False
    assert (sampler.temperature, sampler.b_fraction) == (1.0, 0.0)


def test_disabled_mixture_also_draws_unlabelled_rows():
    sampler = ABMixtureSampler([[0], [], [1]], 0, 2, MixtureConfig(enabled=False), seed=8)
    assert set(i for _, i in sampler.sample(3_000)) == {0, 1, 2}


def test_the_same_seed_gives_identical_draws_and_another_seed_different_ones():
    a = make(pool_b_size=20, seed=11).sample(500)
    assert make(pool_b_size=20, seed=11).sample(500) == a
    assert make(pool_b_size=20, seed=12).sample(500) != a


def test_sampling_leaves_the_global_random_state_alone():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    make(pool_b_size=5).sample(1_000)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_a_sampler_loaded_from_a_json_state_continues_with_exactly_the_same_draws():
    original = make(pool_b_size=20, t0=3.0, r0=0.4, seed=13)
    original.sample(300)
    original.update(0.6, step=0)
    original.update(0.3, step=50)  # the state must carry the cooled T, r and h0 too
    original.sample(77)
    state = json.loads(json.dumps(original.state_dict()))
    expected = original.sample(400)

    resumed = make(pool_b_size=20, t0=3.0, r0=0.4, seed=999)  # seed is overwritten by the state
    resumed.load_state_dict(state)
    assert resumed.sample(400) == expected
    assert (resumed.temperature, resumed.b_fraction, resumed.h0) == (
        original.temperature,
        original.b_fraction,
        0.6,
    )
    assert resumed.history == original.history
    assert resumed.update(0.15, step=100) == original.update(0.15, step=100)
    assert resumed.sample(50) == original.sample(50)


def test_the_saved_state_is_not_aliased_to_the_live_sampler():
    sampler = make(pool_b_size=5)
    sampler.update(0.5, step=0)
    state = sampler.state_dict()
    saved = json.dumps(state)
    sampler.update(0.1, step=1)
    sampler.sample(10)
    assert json.dumps(state) == saved
    loaded = make(pool_b_size=5)
    loaded.load_state_dict(state)
    loaded.update(0.2, step=2)
    loaded.sample(10)
    assert json.dumps(state) == saved


def test_loading_a_state_from_different_pools_is_refused():
    state = make(pool_b_size=5).state_dict()
    with pytest.raises(EmoloomError, match="pool_b_size=5 but this run has 6"):
        make(pool_b_size=6).load_state_dict(state)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("t0", 0.5, "t0=0.5 must be a finite number >= 1"),
        ("t0", float("inf"), "t0=inf"),
        ("r0", 1.5, r"r0=1.5 must be in \[0, 1\]"),
        ("r0", -0.1, "r0=-0.1"),
        ("h0", -0.2, "h0=-0.2"),
        ("probe_every", 0, "probe_every=0 must be >= 1"),
        ("probe_size", 0, "probe_size=0 must be >= 1"),
    ],
)
def test_invalid_mixture_configs_are_rejected_with_the_field_named(field, value, message):
    with pytest.raises(EmoloomError, match=message):
        MixtureConfig(**{field: value})


def test_class_indices_outside_the_label_set_are_rejected():
    with pytest.raises(EmoloomError, match="class index 3 outside"):
        ABMixtureSampler([[0], [3]], 0, 3, MixtureConfig(), seed=0)


def test_an_empty_pool_a_is_rejected():
    with pytest.raises(EmoloomError, match="pool A is empty"):
        ABMixtureSampler([], 5, 3, MixtureConfig(), seed=0)


def test_entropy_outside_the_unit_interval_is_a_bug_and_raises():
    with pytest.raises(ValueError, match="entropy"):
        make().update(1.5, step=0)
