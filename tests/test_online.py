"""partial_fit: stepwise EM on a stream of batches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture, SuffStats
from gaussmix.em import accumulate
from gaussmix.online import step_size, stepwise_update

from .conftest import make_blobs

TRUE_MEANS = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 6.0]])


def _draw(rng, n, means, scale=1.0):
    labels = rng.integers(0, len(means), n)
    return means[labels] + scale * rng.standard_normal((n, means.shape[1]))


def test_stepwise_update_is_the_convex_combination_of_raw_moments():
    # Independent reference: blend N_k, sum r x and sum r x x^T per unit weight directly.
    X = make_blobs(400, 2, 2, seed=1)[0]
    params = GaussianMixture(2, random_state=0).fit(X)._fitted_params()
    a, _ = accumulate(X[:150], None, params)
    b, _ = accumulate(X[150:], np.linspace(0.5, 2, 250), params)
    eta = 0.3
    blended = stepwise_update(a, b, eta)

    def raw(stats: SuffStats):
        first = stats.resp_weight[:, None] * stats.means
        second = stats.scatter + stats.resp_weight[:, None, None] * stats.means[:, :, None] * stats.means[:, None, :]
        return [m / stats.total_weight for m in (stats.resp_weight, first, second)]

    expected = [(1 - eta) * ra + eta * rb for ra, rb in zip(raw(a), raw(b))]
    for got, want in zip(raw(blended), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert blended.total_weight == pytest.approx(1.0)


def test_step_sizes_follow_the_schedule():
    assert step_size(0, 1.0) == pytest.approx(0.5)
    assert step_size(8, 0.7) == pytest.approx(10 ** -0.7)


def test_stationary_stream_converges_to_the_batch_fit():
    rng = np.random.default_rng(0)
    batches = [_draw(rng, 300, TRUE_MEANS) for _ in range(100)]
    online = GaussianMixture(3, random_state=0, learning_decay=0.6)
    for batch in batches:
        online.partial_fit(batch)
    everything = np.concatenate(batches)
    batch_fit = GaussianMixture(3, random_state=0).fit(everything)
    assert online.n_iter_ == 100 and not online.converged_
    # The batch fit maximises this likelihood; stepwise EM must get within a small tolerance.
    assert online.score(everything) == pytest.approx(batch_fit.score(everything), abs=5e-3)
    order = np.argsort(online.means_[:, 0] + 10 * online.means_[:, 1])
    np.testing.assert_allclose(online.means_[order], TRUE_MEANS[np.argsort(TRUE_MEANS[:, 0] + 10 * TRUE_MEANS[:, 1])], atol=0.1)


def test_drifting_stream_is_tracked():
    rng = np.random.default_rng(1)
    n_batches, drift = 200, np.array([0.0, 0.05])  # the means move 10 units upwards in all
    online = GaussianMixture(2, random_state=0, learning_decay=0.55)
    means = np.array([[-4.0, 0.0], [4.0, 0.0]])
    seen = []
    for t in range(n_batches):
        batch = _draw(rng, 100, means + t * drift)
        seen.append(batch)
        online.partial_fit(batch)
    final = means + (n_batches - 1) * drift
    static = GaussianMixture(2, random_state=0).fit(np.concatenate(seen))
    order = np.argsort(online.means_[:, 0])
    online_error = np.abs(online.means_[order] - final).max()
    static_error = np.abs(static.means_[np.argsort(static.means_[:, 0])] - final).max()
    assert online_error < 1.5
    assert online_error < static_error / 3


def test_first_batch_needs_n_components_rows_later_batches_do_not():
    model = GaussianMixture(3, random_state=0)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        model.partial_fit(np.zeros((2, 2)))
    rng = np.random.default_rng(2)
    model.partial_fit(_draw(rng, 300, TRUE_MEANS))
    for _ in range(20):
        model.partial_fit(_draw(rng, 1, TRUE_MEANS))
    assert np.all(np.isfinite(model.covariances_)) and model.n_iter_ == 21
    with pytest.raises(ValueError, match="X has 3 features"):
        model.partial_fit(np.zeros((5, 3)))


def test_learning_decay_is_validated():
    X = np.random.default_rng(0).standard_normal((20, 2))
    for bad in (0.5, 0.2, 1.5, "fast"):
        with pytest.raises(ValueError, match="learning_decay"):
            GaussianMixture(1, learning_decay=bad).partial_fit(X)


def test_partial_fit_after_fit_starts_from_the_fit_and_fit_resets():
    rng = np.random.default_rng(3)
    X = _draw(rng, 2000, TRUE_MEANS)
    model = GaussianMixture(3, random_state=0).fit(X)
    before = model.means_.copy()
    model.partial_fit(X)  # the same data: one EM step from the optimum barely moves
    np.testing.assert_allclose(model.means_, before, atol=1e-2)
    model.partial_fit(_draw(rng, 100, TRUE_MEANS))
    assert model.n_iter_ == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    assert model._online is None


def test_float32_stream_far_from_the_origin():
    rng = np.random.default_rng(4)
    offset = np.array([1e4, -1e4])
    single = GaussianMixture(3, random_state=0)
    double = GaussianMixture(3, random_state=0)
    for _ in range(40):
        batch = _draw(rng, 250, TRUE_MEANS) + offset
        single.partial_fit(batch.astype(np.float32))
        double.partial_fit(batch.astype(np.float32).astype(np.float64))
    assert single.means_.dtype == np.float32
    np.testing.assert_allclose(single.means_, double.means_, atol=5e-3)
    np.testing.assert_allclose(single.covariances_, double.covariances_, rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("covariance_type", ["tied", "spherical", "EVE"])
def test_other_covariance_structures_learn_online(covariance_type):
    rng = np.random.default_rng(5)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    for _ in range(30):
        model.partial_fit(_draw(rng, 200, TRUE_MEANS))
    order = np.argsort(model.means_[:, 0] + 10 * model.means_[:, 1])
    expected = TRUE_MEANS[np.argsort(TRUE_MEANS[:, 0] + 10 * TRUE_MEANS[:, 1])]
    np.testing.assert_allclose(model.means_[order], expected, atol=0.25)
