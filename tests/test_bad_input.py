"""Every mistake a user can make gets a ValueError that says what to do."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_param_validation

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
    (dict(n_components=0), r"'n_components' parameter .* must be an int in the range \[1, inf\)"),
    (dict(n_components=1.5), r"'n_components' parameter .* must be an int"),
    (dict(reg_covar=-1e-3), r"'reg_covar' parameter .* must be a float in the range \[0.0, inf\)"),
    (dict(tol=-1.0), r"'tol' parameter .* must be a float in the range \[0.0, inf\)"),
    (dict(max_iter=-1), r"'max_iter' parameter .* must be an int in the range \[0, inf\)"),
    (dict(n_init=0), r"'n_init' parameter .* must be an int in the range \[1, inf\)"),
    (dict(covariance_type="fulll"), "unknown covariance_type 'fulll'; valid values are: .*'diag'.*'full'.*'spherical'.*'tied'"),
    (dict(init_params="kmeans+"), "unknown init_params 'kmeans\\+'; valid values are: .*'k-means\\+\\+'"),
])
def test_invalid_parameters(X, params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**{"n_components": 2, **params}).fit(X)


#: values scikit-learn's GaussianMixture refuses (gaussmix accepted them)
REFUSED_LIKE_SKLEARN = [
    dict(reg_covar=np.nan), dict(reg_covar=np.inf), dict(tol=np.nan), dict(tol=-np.inf),
    dict(warm_start="yes"), dict(warm_start=1), dict(verbose=-1), dict(verbose_interval=0),
    dict(random_state="seed"), dict(means_init="abc"), dict(max_iter=2.0), dict(n_init=1.5),
]


@pytest.mark.parametrize("params", REFUSED_LIKE_SKLEARN, ids=repr)
def test_parameters_sklearn_refuses_are_refused_the_same_way(X, params):
    name = next(iter(params))
    for estimator in (SklearnGaussianMixture, GaussianMixture):
        with pytest.raises(InvalidParameterError, match=rf"The '{name}' parameter of GaussianMixture must be"):
            estimator(2, **params).fit(X)
    with pytest.raises(InvalidParameterError):
        GaussianMixture(2, **params).partial_fit(X)


@pytest.mark.parametrize("params, message", [
    (dict(learning_decay=0.5), r"'learning_decay' parameter .* in the range \(0.5, 1.0\]"),
    (dict(learning_decay=1.01), r"'learning_decay' parameter .* in the range \(0.5, 1.0\]"),
    (dict(learning_decay=np.nan), r"'learning_decay' parameter"),
    (dict(chunk_size=0), r"'chunk_size' parameter .* an int in the range \[1, inf\) or None"),
    (dict(chunk_size=2.5), r"'chunk_size' parameter"),
    (dict(callback="print"), r"'callback' parameter .* a callable or None"),
])
def test_gaussmix_only_parameters_are_validated(X, params, message):
    for method in ("fit", "partial_fit"):
        with pytest.raises(InvalidParameterError, match=message):
            getattr(GaussianMixture(2, **params), method)(X)


def test_every_parameter_has_a_constraint_and_a_wrong_type_is_refused():
    # scikit-learn's own check: a constraint per parameter, an informative error for a bad type
    check_param_validation("GaussianMixture", GaussianMixture(2))


@pytest.mark.parametrize("params, message", [
    (dict(covariance_type=5), "unknown covariance_type 5; valid values are"),
    (dict(covariance_type=None), "unknown covariance_type None; valid values are"),
    (dict(init_params=3), "unknown init_params 3; valid values are"),
])
def test_registry_parameters_of_a_wrong_type_are_explained(X, params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, **params).fit(X)


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
