"""Shared fixtures: real datasets and small synthetic mixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "src" / "gaussmix" / "data"


@pytest.fixture(scope="session")
def faithful() -> np.ndarray:
    return np.loadtxt(PACKAGE_DATA / "faithful.csv", delimiter=",", skiprows=1)


@pytest.fixture(scope="session")
def iris() -> np.ndarray:
    path = SHARED_DATA / "iris.csv"
    if not path.exists():
        pytest.skip("../shared/data/iris.csv is not beside the checkout")
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(4))


def make_blobs(n_samples=600, n_features=3, n_components=3, seed=0, dtype=np.float64):
    """Well-separated anisotropic Gaussian clusters."""
    rng = np.random.RandomState(seed)
    means = rng.uniform(-10, 10, size=(n_components, n_features))
    labels = rng.randint(n_components, size=n_samples)
    X = np.empty((n_samples, n_features))
    for k in range(n_components):
        A = rng.normal(size=(n_features, n_features))
        rows = labels == k
        X[rows] = means[k] + rng.normal(size=(rows.sum(), n_features)) @ A
    return X.astype(dtype), labels


@pytest.fixture
def blobs():
    return make_blobs()


def starting_point(X, covariance_type, n_components=3):
    """``*_init`` arguments of a one-iteration fit: a start shared by fits compared with each other."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from gaussmix import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=1, random_state=0).fit(X)
    return dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)


def fit_quietly(estimator_class, X, sample_weight=None, **kwargs):
    """``estimator_class(**kwargs).fit(X)``, ignoring ConvergenceWarning (fixed iteration counts)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator_class(**kwargs).fit(X, sample_weight=sample_weight)


def assert_same_fit(actual, expected, rtol=1e-10):
    """Same iterations, lower bound and parameters up to ``rtol``."""
    assert actual.n_iter_ == expected.n_iter_
    np.testing.assert_allclose(actual.lower_bound_, expected.lower_bound_, rtol=rtol)
    np.testing.assert_allclose(actual.weights_, expected.weights_, rtol=rtol)
    np.testing.assert_allclose(actual.means_, expected.means_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(actual.covariances_, expected.covariances_, rtol=rtol, atol=1e-12)


def random_start_weight_check(reason: str = "the k-means start") -> dict:
    """scikit-learn's check that integer weights equal repeated rows, as an expected failure.

    A start that draws rows (k-means, k-means++) draws other rows from repeated rows than
    from weighted ones, so EM with K > 1 may end in another local optimum.
    """
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            f"{reason} draws rows: repeated rows and integer weights give other starting "
            "points, so EM with K > 1 may end in another local optimum"
        )
    }


#: fitted attributes of a BayesianGaussianMixture (arrays; the Dirichlet process's concentration is a pair)
BAYESIAN_ATTRIBUTES = ("mean_precision_", "means_", "degrees_of_freedom_", "covariances_", "precisions_cholesky_",
                       "weights_", "mean_prior_", "covariance_prior_")


def assert_same_bayesian_fit(actual, expected, rtol=1e-10):
    """Two BayesianGaussianMixture fits: same iterations, bounds, posterior and priors up to ``rtol``."""
    assert actual.n_iter_ == expected.n_iter_
    assert actual.converged_ == expected.converged_
    np.testing.assert_allclose(actual.lower_bounds_, expected.lower_bounds_, rtol=rtol)
    np.testing.assert_allclose(np.ravel(actual.weight_concentration_), np.ravel(expected.weight_concentration_),
                               rtol=rtol)
    for name in BAYESIAN_ATTRIBUTES:
        np.testing.assert_allclose(getattr(actual, name), getattr(expected, name), rtol=rtol, atol=1e-12, err_msg=name)
