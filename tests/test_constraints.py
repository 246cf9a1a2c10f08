"""Equal weights (mclust's equalPro) and frozen parameters: the M-step keeps them, the criteria don't count them."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from gaussmix import GaussianMixture, get_covariance_model
from gaussmix.constraints import Constraints, resolve
from gaussmix.em import m_step
from gaussmix.params import MixtureParams
from gaussmix.stats import stats_from_responsibilities

MEANS = np.array([[0.0, 0.0], [5.0, 5.0], [-4.0, 4.0]])


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    return np.vstack([rng.randn(200, 2), rng.randn(60, 2) * 0.7 + 5, rng.randn(100, 2) * [0.5, 1.5] + [-4, 4]])


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(3, random_state=0, tol=1e-6, max_iter=500, **params).fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "EII", "EEI", "VEV", "EVE"])
def test_equal_weights_stay_one_over_k_and_are_not_counted(X, covariance_type):
    free = _fit(X, covariance_type=covariance_type)
    equal = _fit(X, covariance_type=covariance_type, equal_weights=True)
    np.testing.assert_array_equal(equal.weights_, np.full(3, 1 / 3))
    assert not np.allclose(free.weights_, 1 / 3, atol=0.02)  # the data's weights are not equal
    assert equal._n_parameters() == free._n_parameters() - 2
    loglik = equal.score(X) * X.shape[0]
    assert equal.bic(X) == pytest.approx(-2 * loglik + equal._n_parameters() * math.log(X.shape[0]))
    assert equal.aic(X) == pytest.approx(-2 * loglik + 2 * equal._n_parameters())
    # EM under the constraint never lowers the likelihood
    assert np.all(np.diff(equal.lower_bounds_) > -1e-10)


def test_no_constraint_is_bit_identical_to_the_default(X):
    default = _fit(X)
    unconstrained = _fit(X, fixed={"means": False, "weights": [False] * 3}, equal_weights=False)
    assert resolve({"means": False}, False, get_covariance_model("full"), 3) is None
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(default, name), getattr(unconstrained, name))
    assert default.lower_bounds_ == unconstrained.lower_bounds_


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV", "EEI"])
def test_frozen_means_stay_as_given(X, covariance_type):
    model = _fit(X, covariance_type=covariance_type, means_init=MEANS + 0.3, fixed={"means"})
    # exact but for the round trip through EM's frame, centred on the data's mean
    np.testing.assert_allclose(model.means_, MEANS + 0.3, rtol=0, atol=1e-14)
    assert model._n_parameters() == get_covariance_model(covariance_type).n_parameters(3, 2) - 6
    assert np.all(np.diff(model.lower_bounds_) > -1e-10)


def test_per_component_frozen_means(X):
    model = _fit(X, means_init=MEANS + 0.3, fixed={"means": [True, False, True]})
    np.testing.assert_allclose(model.means_[[0, 2]], (MEANS + 0.3)[[0, 2]], rtol=0, atol=1e-14)
    assert np.abs(model.means_[1] - (MEANS[1] + 0.3)).max() > 0.1  # the free one moved
    assert model._n_parameters() == 17 - 4


def test_frozen_means_start_from_the_initialiser_without_means_init(X):
    model = GaussianMixture(3, random_state=0, max_iter=0, fixed="means").fit(X)
    frozen = _fit(X, fixed="means")
    np.testing.assert_allclose(frozen.means_, model.means_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_covariance_is_estimated_about_the_frozen_mean(X, covariance_type):
    """One M-step by hand: sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k about the frozen mu_k."""
    covariance = get_covariance_model(covariance_type)
    rng = np.random.RandomState(1)
    resp = rng.dirichlet(np.ones(3), size=X.shape[0])
    stats = stats_from_responsibilities(X, resp, covariance.full_scatter, X.shape[0])
    if covariance_type == "spherical":
        stats = stats.traced()
    start = MixtureParams.from_covariances(np.full(3, 1 / 3), MEANS, covariance.estimate(stats, 0.0), covariance)
    constraints = Constraints(means=np.array([True, False, True]))
    params = m_step(stats, covariance, 0.0, previous=start, constraints=constraints)
    for k in range(3):
        mu = MEANS[k] if k != 1 else resp[:, k] @ X / resp[:, k].sum()
        centred = X - mu
        dense = (resp[:, k, None] * centred).T @ centred / resp[:, k].sum()
        expected = {"full": dense, "diag": np.diag(dense), "spherical": np.trace(dense) / 2}[covariance_type]
        np.testing.assert_allclose(params.covariances[k], expected, rtol=1e-10)
        np.testing.assert_allclose(params.means[k], mu, rtol=1e-12)


def test_frozen_covariances_stay_as_given(X):
    precisions = np.stack([np.eye(2) * 2.0, np.eye(2), np.eye(2) * 0.5])
    model = _fit(X, precisions_init=precisions, fixed={"covariances": [True, False, True]})
    np.testing.assert_allclose(model.precisions_[[0, 2]], precisions[[0, 2]], rtol=1e-12)
    assert not np.allclose(model.precisions_[1], precisions[1], atol=0.05)
    assert model._n_parameters() == 17 - 2 * 3
    tied = _fit(X, covariance_type="tied", precisions_init=np.eye(2) * 0.5, fixed={"covariances"})
    np.testing.assert_allclose(tied.precisions_, np.eye(2) * 0.5, rtol=1e-12)
    assert tied._n_parameters() == get_covariance_model("tied").n_parameters(3, 2) - 3


def test_frozen_weights_and_free_ones_share_the_rest(X):
    given = np.array([0.5, 0.3, 0.2])
    every = _fit(X, weights_init=given, fixed={"weights"})
    np.testing.assert_array_equal(every.weights_, given)
    assert every._n_parameters() == 17 - 2
    one = _fit(X, weights_init=given, fixed={"weights": [True, False, False]})
    assert one.weights_[0] == 0.5 and one.weights_.sum() == pytest.approx(1.0, abs=1e-14)
    assert one._n_parameters() == 17 - 1
    # two of three frozen: the third is determined, no weight is free
    two = _fit(X, weights_init=given, fixed={"weights": [True, True, False]})
    np.testing.assert_allclose(two.weights_, given, rtol=1e-12)
    assert two._n_parameters() == 17 - 2


def test_everything_frozen_has_only_nothing_free(X):
    model = _fit(X, means_init=MEANS, fixed={"weights", "means", "covariances"})
    assert model._n_parameters() == 0
    start = GaussianMixture(3, means_init=MEANS, max_iter=0).fit(X)
    np.testing.assert_allclose(model.covariances_, start.covariances_, rtol=1e-12)
    np.testing.assert_allclose(model.weights_, start.weights_, rtol=1e-12)


def test_select_passes_equal_weights_to_every_cell(X):
    from gaussmix import select

    result = select(X, [2, 3], ["full", "EII"], random_state=0, equal_weights=True)
    for row in result.rows:
        model = result.estimators_[(row.n_components, row.covariance_type)]
        np.testing.assert_array_equal(model.weights_, np.full(row.n_components, 1 / row.n_components))
        assert row.n_parameters == get_covariance_model(row.covariance_type).n_parameters(row.n_components, 2) - (
            row.n_components - 1)


def test_partial_fit_keeps_equal_weights(X):
    model = GaussianMixture(3, random_state=0, equal_weights=True)
    for batch in np.array_split(np.random.RandomState(2).permutation(X), 4):
        model.partial_fit(batch)
        np.testing.assert_array_equal(model.weights_, np.full(3, 1 / 3))


@pytest.mark.parametrize("params, message", [
    (dict(covariance_type="tied", fixed={"covariances": [True, False, True]}), "frozen all together"),
    (dict(covariance_type="VEV", fixed={"covariances": [True, False, True]}), "share covariance parameters"),
    (dict(fixed={"means": [True, False]}), "has 2 entries, but the mixture has n_components = 3"),
    (dict(equal_weights=True, fixed={"weights"}), "drop 'weights' from fixed"),
    (dict(equal_weights=True, weights_init=[0.2, 0.3, 0.5]), "drop weights_init"),
])
def test_errors_say_what_to_do(X, params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(3, **params).fit(X)


@pytest.mark.parametrize("fixed", [{"mean"}, "covariance", {"means": [1, 0, 1]}, {"means": "yes"}, 3,
                                   {"weights": [[True, False, True]]}])
def test_invalid_fixed_is_a_parameter_error(X, fixed):
    with pytest.raises(InvalidParameterError, match="'fixed' parameter of GaussianMixture must be"):
        GaussianMixture(3, fixed=fixed).fit(X)


def test_equal_weights_must_be_boolean(X):
    with pytest.raises(InvalidParameterError, match="'equal_weights'"):
        GaussianMixture(3, equal_weights="yes").fit(X)


@pytest.mark.parametrize("constraint", [dict(equal_weights=True), dict(fixed={"means"}),
                                        dict(fixed={"means": [True, False]})])
def test_a_saved_constrained_model_counts_the_same_parameters(tmp_path, constraint):
    from gaussmix import load, save

    X = np.random.RandomState(0).normal(size=(200, 2))
    X[:100] += 4
    model = GaussianMixture(2, random_state=0, means_init=[[0.0, 0.0], [4.0, 4.0]], **constraint).fit(X)
    save(model, tmp_path / "constrained.gmm")
    loaded = load(tmp_path / "constrained.gmm")
    assert loaded._n_parameters() == model._n_parameters() < GaussianMixture(2).fit(X)._n_parameters()
    assert loaded.bic(X) == model.bic(X)
