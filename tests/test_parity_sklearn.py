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
