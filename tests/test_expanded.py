"""The expanded-products E-step: its features, and when float32 moments give way to float64."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import get_covariance_model
from gaussmix.covariance import _expanded
from gaussmix.params import MixtureParams

from .test_fast_path_reference import _assert_stats_match, _reference


def _expected_features(cls, centred):
    if cls is _expanded.OuterProducts:
        rows, columns = np.triu_indices(centred.shape[1])
        return centred[:, rows] * centred[:, columns]
    if cls is _expanded.Squares:
        return centred * centred
    return np.sum(centred * centred, axis=1, keepdims=True)


@pytest.mark.parametrize("numba", ["1", "0"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", [_expanded.Squares, _expanded.SquaredNorm, _expanded.OuterProducts])
def test_features_are_the_centred_rows_and_their_products(cls, numba, dtype, monkeypatch):
    monkeypatch.setenv("GAUSSMIX_NUMBA", numba)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(37, 6)).astype(dtype) + 5
    origin = X.mean(axis=0)
    features = cls(6)
    out = features.view(features.allocate(50, dtype), 37)
    features.fill(X, origin, out)
    centred = X - origin
    np.testing.assert_array_equal(out[:, features.n_squares:], centred)
    rtol = 1e-15 if dtype == np.float64 else 1e-6  # the compiled norm may sum in another order
    np.testing.assert_allclose(out[:, : features.n_squares], _expected_features(cls, centred), rtol=rtol)


@pytest.mark.parametrize("cls", [_expanded.Squares, _expanded.SquaredNorm, _expanded.OuterProducts])
def test_quadratic_coefficients_give_minus_half_the_quadratic_form(cls):
    rng = np.random.RandomState(1)
    n_features = 5
    factors = rng.normal(size=(3, n_features, n_features))
    dense = factors @ factors.transpose(0, 2, 1)
    if cls is _expanded.OuterProducts:
        precisions = dense
    elif cls is _expanded.Squares:
        precisions = np.diagonal(dense, axis1=1, axis2=2).copy()
    else:
        precisions = np.repeat(rng.uniform(0.5, 2, size=(3, 1)), n_features, axis=1)
    features = cls(n_features)
    x = rng.normal(size=(4, n_features))
    values = features.view(features.allocate(4, np.float64), 4)
    features.fill(x, np.zeros(n_features), values)
    expanded = features.quadratic_coefficients(precisions) @ values[:, : features.n_squares].T
    matrices = precisions if precisions.ndim == 3 else precisions[:, :, None] * np.eye(n_features)
    np.testing.assert_allclose(expanded, -0.5 * np.einsum("nd,kde,ne->kn", x, matrices, x), rtol=1e-12)


def _spy_on_moments(monkeypatch):
    """Record the dtype in which every call of the moments loop sums its products."""
    calls = []
    moments = _expanded._moments

    def spy(*args):
        calls.append(np.dtype(args[-1]))
        return moments(*args)

    monkeypatch.setattr(_expanded, "_moments", spy)
    return calls


def _two_clusters(separation, means_at, covariance_type, rng):
    """float32 rows in two unit clusters at +-separation on the first axis, and a start with means at +-means_at."""
    n_features = 3
    labels = rng.randint(2, size=4000)
    X = rng.normal(size=(4000, n_features))
    X[:, 0] += np.where(labels == 1, separation, -separation)
    model = get_covariance_model(covariance_type)
    means = np.zeros((2, n_features))
    means[:, 0] = [-means_at, means_at]
    shape = model.parameter_shape(2, n_features)
    covariances = np.ones(shape) if len(shape) < 3 else np.broadcast_to(np.eye(n_features), shape).copy()
    params = MixtureParams.from_covariances(
        np.full(2, 0.5, np.float32), means.astype(np.float32), covariances.astype(np.float32), model
    )
    return X.astype(np.float32), model, params


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_float32_moments_where_clusters_are_close(covariance_type, monkeypatch):
    monkeypatch.setenv("GAUSSMIX_NUMBA", "0")  # full: the expanded path, not the fused kernel
    calls = _spy_on_moments(monkeypatch)
    X, model, params = _two_clusters(1.0, 1.0, covariance_type, np.random.RandomState(2))
    stats, loglik = model.accumulate_chunk(X, None, params)
    assert calls == [np.float32]
    assert stats.scatter.dtype == np.float32
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_float32_moments_that_would_cancel_are_summed_in_float64(covariance_type, monkeypatch):
    monkeypatch.setenv("GAUSSMIX_NUMBA", "0")
    calls = _spy_on_moments(monkeypatch)
    # The start's means (+-1) predict little cancellation; the clusters at +-30 make the new
    # means cancel ~30^2 times eps in float32: the check afterwards redoes the chunk in float64.
    X, model, params = _two_clusters(30.0, 1.0, covariance_type, np.random.RandomState(3))
    stats, loglik = model.accumulate_chunk(X, None, params)
    assert calls == [np.float32, np.float64]
    assert stats.scatter.dtype == np.float32
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=1e-5, atol=1e-5)
    # Started from means that already sit at the clusters, the float64 sums are chosen first.
    calls.clear()
    X, model, params = _two_clusters(30.0, 30.0, covariance_type, np.random.RandomState(3))
    model.accumulate_chunk(X, None, params)
    assert calls == [np.float64]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correlations_near_one_keep_the_statistics_accurate(dtype, monkeypatch):
    # x^T P x expanded over two coordinates with correlation 1 - 1e-4 cancels ~1e4-fold:
    # float32 must leave the float32 expansion, float64 may keep it.
    monkeypatch.setenv("GAUSSMIX_NUMBA", "0")
    calls = _spy_on_moments(monkeypatch)
    rng = np.random.RandomState(4)
    n_features, n_components = 12, 3
    base = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features) + np.eye(n_features)
    base[:, 1, :] = base[:, 0, :] + 0.014 * rng.normal(size=(n_components, n_features))
    covariances = base @ base.transpose(0, 2, 1)
    model = get_covariance_model("full")
    means = rng.normal(scale=2, size=(n_components, n_features))
    weights = np.full(n_components, 1 / 3)
    # parameters built in the working dtype, so that the reference sees the same mixture
    params = MixtureParams.from_covariances(*(np.asarray(a, dtype) for a in (weights, means, covariances)), model)
    correlation = covariances[:, 0, 1] / np.sqrt(covariances[:, 0, 0] * covariances[:, 1, 1])
    assert np.all(correlation > 1 - 1e-3)
    X = params.sample(3000, rng)[0].astype(dtype)
    stats, loglik = model.accumulate_chunk(X, None, params)
    # The reference mixture is the one the factors define (a float32 factor of so
    # ill-conditioned a covariance is itself off by ~eps * 1e4).
    factors = params.precisions_cholesky.astype(np.float64)
    exact = MixtureParams(
        params.weights.astype(np.float64), params.means.astype(np.float64),
        np.linalg.inv(factors @ factors.transpose(0, 2, 1)), factors, model,
    )
    reference = _reference(X, None, exact)
    if dtype == np.float32:
        assert np.float32 not in calls  # widened to float64 products, or whitened
        _assert_stats_match(stats, loglik, reference, rtol=1e-4, atol=1e-4)
    else:
        assert calls == [np.float64]
        _assert_stats_match(stats, loglik, reference, rtol=1e-9, atol=1e-9)


def _spy_on_sparse_choice(monkeypatch):
    """Record, for every call of the moments loop, whether it may take the sparse moments,
    and how many components the sparse moments were summed for."""
    calls, sparse_components = [], []
    moments, sparse_moments = _expanded._moments, _expanded._sparse_moments

    def moments_spy(*args):
        calls.append(args[-2])
        return moments(*args)

    def sparse_spy(kept, *rest):
        sparse_components.append(int(np.count_nonzero(kept.any(axis=1))))
        return sparse_moments(kept, *rest)

    monkeypatch.setattr(_expanded, "_moments", moments_spy)
    monkeypatch.setattr(_expanded, "_sparse_moments", sparse_spy)
    return calls, sparse_components


def _separated_full_mixture(rng, n_components=6, n_features=5, n_samples=3000, spread=12.0):
    model = get_covariance_model("full")
    means = rng.normal(scale=spread, size=(n_components, n_features))
    factors = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features) + np.eye(n_features)
    covariances = factors @ factors.transpose(0, 2, 1)
    params = MixtureParams.from_covariances(np.full(n_components, 1 / n_components), means, covariances, model)
    return model, params, params.sample(n_samples, rng)[0]


@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_moments_equal_the_reference(weighted, monkeypatch):
    # Clusters far apart: most responsibilities are below 2^-100, the moments are summed
    # over the others only, and the statistics still agree to float64 rounding.
    monkeypatch.setattr(_expanded, "MIN_SPARSE_WORK", 0)
    calls, sparse_components = _spy_on_sparse_choice(monkeypatch)
    rng = np.random.RandomState(7)
    model, params, X = _separated_full_mixture(rng)
    weights = rng.uniform(0, 2, X.shape[0]) if weighted else None
    stats, loglik = model.accumulate_chunk(X, weights, params)
    assert calls == [True] and sparse_components and sparse_components[0] == params.n_components
    _assert_stats_match(stats, loglik, _reference(X, weights, params), rtol=1e-10, atol=1e-10)


def test_sparse_moments_give_way_where_what_they_leave_out_counts(monkeypatch):
    # A component far from every row (responsibilities ~1e-60, not 0): all of its weight
    # would be left out, so the bound fails and the chunk is summed in full.
    monkeypatch.setattr(_expanded, "MIN_SPARSE_WORK", 0)
    calls, _ = _spy_on_sparse_choice(monkeypatch)
    rng = np.random.RandomState(8)
    model, params, X = _separated_full_mixture(rng)
    means = params.means.copy()
    means[-1] = X.mean(axis=0) + (means[-1] - X.mean(axis=0)) * 1.6  # farther out, but not so far its weight is 0
    far = MixtureParams.from_covariances(params.weights, means, params.covariances, model)
    stats, loglik = model.accumulate_chunk(X, None, far)
    assert 0 < stats.resp_weight[-1] < 1e-30
    assert calls == [True, False]
    _assert_stats_match(stats, loglik, _reference(X, None, far), rtol=1e-9, atol=1e-12)
