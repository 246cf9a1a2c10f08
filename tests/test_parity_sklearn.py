"""gaussmix and scikit-learn agree when started from the same parameters."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from gaussmix import GaussianMixture

from .conftest import COVARIANCE_TYPES, make_blobs


def _start(X, covariance_type, n_components, seed=0):
    """Starting parameters taken from a scikit-learn fit with max_iter=1."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = SklearnGaussianMixture(
            n_components, covariance_type=covariance_type, max_iter=1, random_state=seed
        ).fit(X)
    return dict(
        weights_init=reference.weights_,
        means_init=reference.means_,
        precisions_init=reference.precisions_,
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dataset", ["blobs", "faithful"])
def test_same_start_same_fit(covariance_type, dataset, faithful):
    X = make_blobs(n_samples=500, n_features=3, n_components=3)[0] if dataset == "blobs" else faithful
    start = _start(X, covariance_type, 3)
    kwargs = dict(n_components=3, covariance_type=covariance_type, tol=0.0, max_iter=25, **start)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = GaussianMixture(**kwargs).fit(X)
        theirs = SklearnGaussianMixture(**kwargs).fit(X)
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-7)
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-7)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.precisions_, theirs.precisions_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-7)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-7)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.bic(X), theirs.bic(X), rtol=1e-7)
    np.testing.assert_allclose(ours.aic(X), theirs.aic(X), rtol=1e-7)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_parameter_count_matches_sklearn(covariance_type, blobs):
    X, _ = blobs
    ours = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    theirs = SklearnGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    assert ours._n_parameters() == theirs._n_parameters()


def _emptying_start(dtype=np.float64):
    """16-D data of 8 overlapping clusters and a start from which one component empties
    in the first iteration (found by fuzzing float32 against float64 fits)."""
    rng = np.random.default_rng(58)
    centres = rng.normal(scale=0.5, size=(8, 16))
    labels = rng.integers(0, 8, 3000)
    scales = rng.uniform(0.3, 2, (8, 16))
    X = centres[labels] + rng.normal(size=(3000, 16)) * scales[labels] + 10.0
    means = X[rng.choice(3000, 8, replace=False)] + rng.normal(scale=0.1, size=(8, 16))
    start = GaussianMixture(8, max_iter=0, means_init=means, reg_covar=1e-4).fit(X)
    return X, dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)


@pytest.mark.parametrize("n_iter", [1, 2, 10])
def test_an_emptied_component_stays_empty_as_in_sklearn(n_iter):
    # After the first iteration one component's responsibilities are all ~1e-300. Its
    # exact weighted mean sat on the row nearest it, and with a covariance of reg_covar
    # alone it took that row whole at the next E-step (log-likelihood 6.7e-4 above
    # scikit-learn's, a one-row component). Its mean now goes to the origin, as
    # scikit-learn's does, and the fits agree; float32 (whose responsibilities underflow
    # to exactly 0) agrees with both.
    import warnings

    X, start = _emptying_start()
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = dict(n_components=8, tol=0.0, max_iter=n_iter, reg_covar=1e-4)
        reference = SklearnGaussianMixture(**kwargs, **start).fit(X)
        for dtype in (np.float64, np.float32):
            typed = {key: value.astype(dtype) for key, value in start.items()}
            fits[dtype] = GaussianMixture(**kwargs, **typed).fit(X.astype(dtype))
    assert np.sum(reference.weights_ < 1e-15) == 1
    ours = fits[np.float64]
    assert ours.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-13)
    np.testing.assert_allclose(ours.weights_, reference.weights_, rtol=1e-10, atol=1e-18)
    np.testing.assert_allclose(ours.means_, reference.means_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.covariances_, reference.covariances_, rtol=1e-9, atol=1e-12)
    assert fits[np.float32].lower_bound_ == pytest.approx(ours.lower_bound_, rel=1e-6)
