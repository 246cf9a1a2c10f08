"""Every mistake a user can make gets a ValueError that says what to do."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import CollapsedComponentError, GaussianMixture


@pytest.fixture
def X():
    return np.random.RandomState(0).normal(size=(50, 2))


def test_nan_and_inf_are_counted_and_located(X):
    X = X.copy()
    X[3, 0] = np.nan
    X[7, 1] = np.nan
    X[9, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 NaN value\(s\) in row\(s\) 3, 7 .* 1 infinite \(inf\) value\(s\) in row\(s\) 9"):
        GaussianMixture(2).fit(X)


def test_nan_in_predict_is_reported(X):
    model = GaussianMixture(2, random_state=0).fit(X)
    bad = X.copy()
    bad[4, 1] = np.nan
    for method in (model.predict, model.predict_proba, model.score_samples):
        with pytest.raises(ValueError, match=r"1 NaN value\(s\) in row\(s\) 4"):
            method(bad)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 2)), "0 sample"),
    (np.arange(10.0), "Expected 2D array"),
    (np.zeros((1, 2)), "minimum of 2 is required"),
])
def test_empty_and_one_dimensional_input(bad, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(bad)


def test_fewer_samples_than_components(X):
    with pytest.raises(ValueError, match="n_samples >= n_components .* n_components = 60, n_samples = 50"):
        GaussianMixture(60).fit(X)


def test_wrong_number_of_features_in_predict(X):
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        model.predict(np.zeros((4, 3)))


@pytest.mark.parametrize("params, message", [
    (dict(n_components=0), "n_components must be >= 1"),
    (dict(n_components=1.5), "n_components must be an integer"),
    (dict(reg_covar=-1e-3), "reg_covar must be >= 0"),
    (dict(tol=-1.0), "tol must be >= 0"),
    (dict(max_iter=-1), "max_iter must be >= 0"),
    (dict(n_init=0), "n_init must be >= 1"),
    (dict(covariance_type="fulll"), "unknown covariance_type 'fulll'; valid values are: .*'diag'.*'full'.*'spherical'.*'tied'"),
    (dict(init_params="kmeans+"), "unknown init_params 'kmeans\\+'; valid values are: .*'k-means\\+\\+'"),
])
def test_invalid_parameters(X, params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**{"n_components": 2, **params}).fit(X)


@pytest.mark.parametrize("params, message", [
    (dict(weights_init=[0.5, 0.6]), "weights_init must sum to one"),
    (dict(weights_init=[1.5, -0.5]), r"weights_init must lie in \[0, 1\]"),
    (dict(weights_init=[1.0]), r"weights_init must have shape \(2,\)"),
    (dict(means_init=np.zeros((3, 2))), r"means_init must have shape \(2, 2\)"),
    (dict(means_init=[[0, np.nan], [1, 1]]), "means_init contains 1 NaN"),
    (dict(precisions_init=np.array([np.eye(2), -np.eye(2)])), "must be positive definite; matrix 1"),
    (dict(precisions_init=np.array([np.eye(2), [[1, 2], [0, 1]]])), "must be symmetric; matrix 1"),
    (dict(precisions_init=np.eye(2)), r"precisions_init must have shape \(2, 2, 2\)"),
    (dict(covariance_type="diag", precisions_init=[[1, 1], [1, 0]]), "positive definite; matrix 1"),
    (dict(covariance_type="spherical", precisions_init=[1, -1]), "positive definite; matrix 1"),
    (dict(covariance_type="tied", precisions_init=[[1, 2], [2, 1]]), "positive definite; matrix 0"),
])
def test_invalid_initial_arrays(X, params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**{"n_components": 2, **params}).fit(X)


#: bad sample weights for 50 rows and 2 components, with the message they must get
INVALID_SAMPLE_WEIGHTS = [
    (-np.ones(50), "non-negative; 50 negative"),
    (np.zeros(50), "sums to zero"),
    (np.ones(49), r"shape \(50,\)"),
    (np.r_[np.ones(49), np.nan], "sample_weight contains 1 NaN"),
    (np.r_[1.0, np.zeros(49)], "only 1 row\\(s\\) have a positive sample_weight"),
]


@pytest.mark.parametrize("weights, message", INVALID_SAMPLE_WEIGHTS)
def test_invalid_sample_weight(X, weights, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(X, sample_weight=weights)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_collapsed_component_is_named_not_a_linalg_crash(covariance_type):
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(size=(40, 2)), np.tile([[8.0, 8.0]], (20, 1))])
    model = GaussianMixture(2, covariance_type=covariance_type, reg_covar=0, random_state=0)
    with pytest.raises(CollapsedComponentError, match=r"component 1 collapsed: .* Raise reg_covar") as info:
        model.fit(X)
    assert info.value.components == [1]
    assert isinstance(info.value, ValueError)
    # the remedy the message names works
    model.set_params(reg_covar=1e-6).fit(X)
    assert np.isfinite(model.score(X))
