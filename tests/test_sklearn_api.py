"""scikit-learn's own estimator checks, and the behaviours a drop-in must copy."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import GaussianMixture

from .conftest import COVARIANCE_TYPES


@parametrize_with_checks([GaussianMixture(), GaussianMixture(covariance_type="diag", n_init=2)])
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def test_constructor_matches_sklearn():
    ours = GaussianMixture().get_params()
    theirs = SklearnGaussianMixture().get_params()
    for name, default in theirs.items():
        assert name in ours, f"missing scikit-learn parameter {name}"
        assert ours[name] == default, name


def test_not_fitted_error_is_sklearns():
    with pytest.raises(NotFittedError):
        GaussianMixture().predict(np.zeros((3, 2)))


def test_convergence_warning_is_sklearns(blobs):
    X, _ = blobs
    with pytest.warns(ConvergenceWarning, match="increase max_iter"):
        GaussianMixture(3, max_iter=2, tol=0, random_state=0).fit(X)


def test_lower_bounds_trace_is_monotone_and_ends_at_lower_bound(blobs):
    X, _ = blobs
    model = GaussianMixture(3, random_state=0, tol=1e-8).fit(X)
    trace = np.asarray(model.lower_bounds_)
    assert len(trace) == model.n_iter_
    assert trace[-1] == model.lower_bound_
    assert np.all(np.diff(trace) >= -1e-12)


def test_max_iter_zero_returns_initial_parameters(blobs):
    X, _ = blobs
    ours = GaussianMixture(3, max_iter=0, random_state=0).fit(X)
    assert ours.n_iter_ == 0 and not ours.converged_
    assert ours.lower_bound_ == -np.inf and ours.lower_bounds_ == []
    np.testing.assert_allclose(ours.weights_.sum(), 1.0)
    # one EM iteration started from those parameters improves on them
    again = GaussianMixture(
        3, max_iter=1, tol=0, weights_init=ours.weights_, means_init=ours.means_,
        precisions_init=ours.precisions_,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        again.fit(X)
    assert np.isfinite(again.lower_bound_)


def test_warm_start_continues_from_fitted_parameters(blobs):
    X, _ = blobs
    kwargs = dict(n_components=3, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        straight = GaussianMixture(max_iter=6, **kwargs).fit(X)
        warm = GaussianMixture(max_iter=3, warm_start=True, **kwargs).fit(X)
        warm.fit(X)
    np.testing.assert_allclose(warm.means_, straight.means_, rtol=1e-10)
    np.testing.assert_allclose(warm.covariances_, straight.covariances_, rtol=1e-10)


def test_clone_and_pickle_round_trip(blobs):
    X, _ = blobs
    model = GaussianMixture(3, covariance_type="tied", random_state=0).fit(X)
    fresh = clone(model)
    assert not hasattr(fresh, "means_") and fresh.get_params() == model.get_params()
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.score_samples(X), model.score_samples(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_predict_equals_fit_then_predict(covariance_type, blobs):
    X, _ = blobs
    labels = GaussianMixture(3, covariance_type=covariance_type, random_state=1).fit_predict(X)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=1).fit(X)
    np.testing.assert_array_equal(labels, model.predict(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fitted_attribute_shapes_match_sklearn(covariance_type, blobs):
    X, _ = blobs
    ours = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    theirs = SklearnGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(ours, name).shape == getattr(theirs, name).shape, name
    assert ours.n_features_in_ == theirs.n_features_in_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precisions_are_inverse_covariances(covariance_type, blobs):
    X, _ = blobs
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    dense_cov = model._fitted_params().dense_covariances()
    params = model._fitted_params()
    dense_prec = params.covariance.dense(model.precisions_, 3, X.shape[1])
    for cov, prec in zip(dense_cov, dense_prec):
        np.testing.assert_allclose(cov @ prec, np.eye(X.shape[1]), atol=1e-8)
