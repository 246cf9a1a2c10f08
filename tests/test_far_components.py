"""A component far from the others must not spoil their log-densities (issue 22, item 2).

Inference and the E-step compute Mahalanobis terms in a frame shared by every
component only where that frame holds each of them exactly; elsewhere about each
component's own mean. Reference: scikit-learn given the same parameters.
"""

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SklearnMixture

from gaussmix import GaussianMixture
from gaussmix.em import accumulate

STRUCTURES = ["full", "diag", "spherical", "tied"]
#: float32 against scikit-learn's float64: rounding of the rows and parameters (~1e-5 measured)
TOLERANCE = {np.float64: 1e-9, np.float32: 2e-4}


def _clusters(rng, n_per, n_features, n_clusters, spacing=5.0):
    offsets = spacing * np.arange(n_clusters)
    return np.concatenate([rng.normal(size=(n_per, n_features)) + offset for offset in offsets])


def _sklearn_with(model, X):
    """A fitted scikit-learn mixture holding ``model``'s parameters in float64 (mclust
    structures in the layout of the scikit-learn type they constrain)."""
    layout = {3: "full", 2: "diag", 1: "spherical"}[model.precisions_cholesky_.ndim]
    layout = "tied" if model.covariance_type in ("tied", "EEE") else layout
    reference = SklearnMixture(model.n_components, covariance_type=layout, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(X)
    reference.weights_ = model.weights_.astype(np.float64)
    reference.means_ = model.means_.astype(np.float64)
    reference.precisions_cholesky_ = model.precisions_cholesky_.astype(np.float64)
    return reference


def _fit(X, n_components, structure, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(n_components, covariance_type=structure, random_state=0, **kwargs).fit(X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_one_mean_at_1e20_leaves_the_others_exact(structure, dtype):
    X = _clusters(np.random.default_rng(0), 150, 3, 3)
    model = _fit(X.astype(dtype), 3, structure)
    means = model.means_.copy()
    means[2] = 1e20
    model.means_ = means
    reference = _sklearn_with(model, X)
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(model.score_samples(X.astype(dtype)), reference.score_samples(X), rtol=0, atol=tolerance * 10)
    np.testing.assert_allclose(model.predict_proba(X.astype(dtype)), reference.predict_proba(X), rtol=0, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_outlier_rows_at_1e14_leave_ordinary_rows_exact(structure, dtype):
    rng = np.random.default_rng(1)
    ordinary = _clusters(rng, 150, 3, 3)
    outliers = np.full((20, 3), 1e14) + rng.normal(size=(20, 3))
    # fitted in float64: a float32 fit centres the rows on their mean (~3e12), where float32
    # cannot tell the ordinary rows apart (see the report on issue 22)
    model = _fit(np.concatenate([ordinary, outliers]), 4, structure)
    assert np.max(np.abs(model.means_)) > 1e13  # a component took the outliers
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(model, name, getattr(model, name).astype(dtype))
    reference = _sklearn_with(model, ordinary)
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(
        model.score_samples(ordinary.astype(dtype)), reference.score_samples(ordinary), rtol=0, atol=tolerance * 10
    )
    np.testing.assert_allclose(
        model.predict_proba(ordinary.astype(dtype)), reference.predict_proba(ordinary), rtol=0, atol=tolerance
    )


# shapes that take the fused kernel (D=3), the expanded products or whitening (D=8, K=8),
# the whitening (D=16, K=2) and many components (D=6, K=16)
@pytest.mark.parametrize("n_features, n_components", [(3, 3), (8, 8), (16, 2), (6, 16)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_estep_log_likelihood_with_a_far_mean(structure, dtype, n_features, n_components):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2000, n_features)) + 6.0 * rng.integers(0, n_components, 2000)[:, None]
    model = _fit(X.astype(dtype), n_components, structure, max_iter=3)
    means = model.means_.copy()
    means[-1] = 1e20
    model.means_ = means
    _, loglik = accumulate(X.astype(dtype), None, model._fitted_params(dtype))
    expected = _sklearn_with(model, X).score_samples(X).sum()
    assert abs(float(loglik) - expected) / X.shape[0] <= TOLERANCE[dtype]


def _batch(rng, n=300):
    return rng.normal(size=(n, 3)) + 6.0 * rng.integers(0, 3, n)[:, None]


@pytest.mark.parametrize("structure", ["full", "diag", "spherical", "tied", "EVE", "VVE", "VEI"])
def test_a_batch_at_1e150_leaves_an_online_model_usable(structure):
    rng = np.random.default_rng(3)
    test_rows = _batch(rng, 2000)
    model = GaussianMixture(3, covariance_type=structure, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(5):
            model.partial_fit(_batch(rng))
        before = model.score(test_rows)
        means = model.means_.copy()
        with pytest.raises(ValueError, match="left unchanged"):
            model.partial_fit(np.full((50, 3), 1e150) + rng.normal(size=(50, 3)))
        np.testing.assert_array_equal(model.means_, means)
        for _ in range(10):
            model.partial_fit(_batch(rng))
    after = model.score(test_rows)
    assert np.isfinite(after) and abs(after - before) < 0.05
    np.testing.assert_allclose(model.score_samples(test_rows), _sklearn_with(model, test_rows).score_samples(test_rows), atol=1e-9)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_torch_rows_with_a_far_mean(structure):
    torch = pytest.importorskip("torch")
    X = _clusters(np.random.default_rng(4), 150, 3, 3)
    model = _fit(X, 3, structure)
    means = model.means_.copy()
    means[2] = 1e20
    model.means_ = means
    scores = model.score_samples(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(scores, _sklearn_with(model, X).score_samples(X), rtol=0, atol=1e-8)
