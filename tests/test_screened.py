"""The screened E-step of float32 rows (full covariances): float32 screening, float64 answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from gaussmix import GaussianMixture
from gaussmix import estep
from gaussmix.estep import _features, accumulate
from gaussmix.estep import _kernels as kernels
from gaussmix.estep import screened as _screened
from gaussmix.params import MixtureParams

from .conftest import fit_quietly
from .test_expanded import _far_component, _separated_mixture, needs_numba
from .test_fast_path_reference import _assert_stats_match, _reference

pytestmark = needs_numba


def _reference_of_factors(X, weights, params):
    """The plain E-step in float64 from the parameters' own precision factors (float32
    parameters: their factors, not a refactorisation of their rounded covariances)."""
    X = X.astype(np.float64)
    w = np.ones(X.shape[0]) if weights is None else weights
    factors = params.precisions_cholesky.astype(np.float64)
    means = params.means.astype(np.float64)
    log_det = np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
    log_prob = np.stack([
        np.log(float(params.weights[k])) + log_det[k] - 0.5 * X.shape[1] * np.log(2 * np.pi)
        - 0.5 * np.sum(((X - means[k]) @ factors[k]) ** 2, axis=1)
        for k in range(params.n_components)
    ], axis=1)
    log_density = logsumexp(log_prob, axis=1)
    resp = np.exp(log_prob - log_density[:, None]) * w[:, None]
    resp_weight = resp.sum(axis=0)
    new_means = (resp.T @ X) / resp_weight[:, None]
    scatter = np.stack([
        (resp[:, k, None] * (X - new_means[k])).T @ (X - new_means[k]) for k in range(params.n_components)
    ])
    return resp_weight, new_means, scatter, float(w @ log_density)


@pytest.fixture(autouse=True)
def _numba_on(monkeypatch):
    monkeypatch.setenv(kernels.NUMBA_VARIABLE, "1")


def _spy_on_screening(monkeypatch):
    """Record, for every screened attempt, whether it returned statistics (or gave way)."""
    outcomes = []
    screened = _screened.screened_accumulate

    def spy(*args, **kwargs):
        result = screened(*args, **kwargs)
        outcomes.append(result is not None)
        return result

    monkeypatch.setattr(_screened, "screened_accumulate", spy)
    return outcomes


def _float32(params, X):
    return params.converted_like(X.astype(np.float32)), X.astype(np.float32)


def _assert_float32_stats_match(stats, loglik, reference):
    """float32 statistics (rounded from float64 sums), and a log-likelihood in float64."""
    assert stats.resp_weight.dtype == np.float32
    _assert_stats_match(stats, loglik, reference, rtol=2e-6, atol=1e-6)
    # The float32 expanded log-densities alone err by ~1e-3 a row here: the log-likelihood
    # must be the exact one, not theirs.
    np.testing.assert_allclose(loglik, reference[-1], rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_screened_statistics_equal_the_reference(weighted, monkeypatch):
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(3)
    model, params, X = _separated_mixture(rng, n_components=8, n_features=7, n_samples=6000)
    params, X = _float32(params, X)
    weights = rng.uniform(0, 2, X.shape[0]) if weighted else None
    stats, loglik = accumulate(X, weights, params)
    assert outcomes == [True]
    _assert_float32_stats_match(stats, loglik, _reference_of_factors(X, weights, params))


def test_screened_statistics_with_a_large_error_estimate_equal_the_reference(monkeypatch):
    # Clusters 12 apart per coordinate in 24 dimensions: the float32 error's estimate is
    # hundreds of nats, the gap twice that, and the answers must still be exact.
    errors = []
    estimate = _screened.screening_error
    monkeypatch.setattr(_screened, "screening_error", lambda *a: errors.append(estimate(*a)) or errors[-1])
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(6)
    model, params, X = _separated_mixture(rng, n_components=12, n_features=24, n_samples=5000)
    params, X = _float32(params, X)
    stats, loglik = accumulate(X, None, params)
    assert outcomes == [True] and 50 < errors[0] <= _screened.MAX_SCREENING_ERROR
    _assert_float32_stats_match(stats, loglik, _reference_of_factors(X, None, params))


def test_screened_statistics_of_shifted_rows_equal_the_reference(monkeypatch):
    # EM's frame: rows stored far from the origin, parameters relative to their mean row.
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(4)
    model, params, X = _separated_mixture(rng, n_components=8, n_features=5, n_samples=5000)
    shift = np.full(5, 300.0)
    X = (X + shift).astype(np.float32)
    shift = X.mean(axis=0, dtype=np.float64)
    moved = params.translated(300.0 - shift).converted_like(X)
    stats, loglik = accumulate(X, None, moved, shift)
    assert outcomes == [True]
    _assert_float32_stats_match(stats, loglik, _reference_of_factors(X.astype(np.float64) - shift, None, moved))


def test_many_blocks_equal_one(monkeypatch):
    # Blocks of 64 rows: thresholds per block, sums across blocks.
    rng = np.random.RandomState(5)
    model, params, X = _separated_mixture(rng, n_components=8, n_features=6, n_samples=3000)
    params, X = _float32(params, X)
    whole = accumulate(X, None, params)
    # a 64-row block lists each component's own largest, a larger share of its pairs
    monkeypatch.setattr(_screened, "MAX_SCREENED_SHARE", 1.0)
    outcomes = _spy_on_screening(monkeypatch)
    with estep.config_context(block_rows=64):
        blocked = accumulate(X, None, params)
    assert outcomes == [True]
    np.testing.assert_allclose(blocked[1], whole[1], rtol=1e-13)
    for name in ("resp_weight", "means", "scatter"):
        np.testing.assert_allclose(getattr(blocked[0], name), getattr(whole[0], name), rtol=1e-6, atol=1e-6)


def test_a_chunk_a_few_rows_past_whole_blocks_is_screened(monkeypatch):
    # 3 x 1024 + 2 rows in blocks of at most 1024: cut in 1024s, the last block had 2
    # rows, its 8 components' own largest alone were more candidates than a quarter of
    # 16 pairs, and the whole chunk gave way. Blocks of equal size keep it screened.
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(10)
    model, params, X = _separated_mixture(rng, n_components=8, n_features=6, n_samples=3 * 1024 + 2)
    params, X = _float32(params, X)
    with estep.config_context(block_rows=1024):
        stats, loglik = accumulate(X, None, params)
    assert outcomes == [True]
    _assert_float32_stats_match(stats, loglik, _reference_of_factors(X, None, params))


def test_a_chunk_of_one_cluster_is_screened_and_equals_the_reference(monkeypatch):
    # sample() gives rows by component: the first 1,200 are one or two clusters', the other
    # components are absent (their responsibilities e^-20 and far below). They list only
    # what could matter against ABSENT_SHARE of their weight; the statistics of the
    # components present are the exact ones, the absent ones' weights next to nothing.
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(15)
    model, params, X = _separated_mixture(rng, n_components=8, n_features=6, n_samples=9600, spread=6.0)
    params, X = _float32(params, X[:1200])
    stats, loglik = accumulate(X, None, params)
    assert outcomes == [True]
    resp_weight, means, scatter, reference_loglik = _reference_of_factors(X, None, params)
    assert np.sum(resp_weight < 1e-3) >= 5  # most components absent
    np.testing.assert_allclose(loglik, reference_loglik, rtol=1e-12)
    np.testing.assert_allclose(stats.resp_weight, resp_weight, rtol=2e-6, atol=1e-6)
    present = resp_weight > 1e-3
    np.testing.assert_allclose(stats.means[present], means[present], rtol=2e-6, atol=1e-5)
    np.testing.assert_allclose(stats.scatter[present], scatter[present], rtol=2e-6, atol=1e-4)


def test_screening_keeps_the_largest_of_a_component_that_has_only_tiny_ones(monkeypatch):
    # A component far from every row: its responsibilities (~1e-20) are all far below each
    # row's largest, but thresholds relative to the component's largest keep its own.
    # (float32 statistics: a weight below ~1e-38 would round to 0.)
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(8)
    model, params, X = _separated_mixture(rng, n_components=8, n_features=5, n_samples=4000)
    far = _far_component(model, params, X, 1.8)
    far, X = _float32(far, X)
    reference = _reference_of_factors(X, None, far)
    assert 1e-35 < reference[0][-1] < 1e-10
    stats, loglik = accumulate(X, None, far)
    assert outcomes == [True]
    np.testing.assert_allclose(stats.resp_weight[-1], reference[0][-1], rtol=1e-5)
    np.testing.assert_allclose(stats.means[-1], reference[1][-1], rtol=1e-5)
    _assert_float32_stats_match(stats, loglik, reference)


@pytest.mark.parametrize("distance", [1e2, 1e4])
def test_screened_statistics_with_a_gross_outlier_equal_the_reference(distance, monkeypatch):
    # A row far outside every component's reach (screening_error assumes 4 sigma): its
    # float32 log-densities err by eps32 of their own size, far past the margin, but so
    # do their differences grow, and the screened sums must still be the exact ones.
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(3)
    model, params, X = _separated_mixture(rng, n_components=8, n_features=7, n_samples=6000)
    params, X = _float32(params, X)
    X[17] = X.mean(axis=0) + distance * rng.normal(size=7)
    stats, loglik = accumulate(X, None, params)
    assert outcomes == [True]
    _assert_float32_stats_match(stats, loglik, _reference_of_factors(X, None, params))


@pytest.mark.parametrize(
    "setting, spread",
    [
        # clusters that overlap: most pairs are candidates (screening would cost more than the products)
        (None, 0.3),
        # pairs left out at e^-1 of their component's largest (not 2^-100): the bound on what
        # they could add is not negligible
        (("SCREENING_MARGIN", 1.0 - 100 * np.log(2)), 3.0),
        # a float32 error past the limit
        (("MAX_SCREENING_ERROR", 0.0), 12.0),
    ],
    ids=["crowded", "gap too small", "error too large"],
)
def test_chunks_give_way_to_the_float64_products(setting, spread, monkeypatch):
    outcomes = _spy_on_screening(monkeypatch)
    if setting is not None:
        monkeypatch.setattr(_screened, *setting)
    rng = np.random.RandomState(9)
    model, params, X = _separated_mixture(rng, n_components=8, n_features=5, n_samples=3000, spread=spread)
    params, X = _float32(params, X)
    stats, loglik = accumulate(X, None, params)
    assert outcomes == [False]
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("spread", [3.0, 12.0, 40.0])
@pytest.mark.parametrize("n_features", [4, 12])
def test_screening_error_bounds_the_float32_log_densities(n_features, spread):
    # The estimate the gap is built on must not be below the error it estimates, for any pair.
    rng = np.random.RandomState(n_features)
    model, params, X = _separated_mixture(rng, n_components=6, n_features=n_features, n_samples=4000, spread=spread)
    X = X.astype(np.float32)
    origin = X.mean(axis=0, dtype=np.float64)
    factors = params.precisions_cholesky
    precisions = factors @ factors.transpose(0, 2, 1)
    deviations = np.sqrt(np.diagonal(params.covariances, axis1=1, axis2=2))
    centred_means = params.means - origin
    features = _features.OuterProducts(n_features)
    linear = features.times(precisions, centred_means)
    coefficients = np.concatenate([features.quadratic_coefficients(precisions), linear], axis=1)
    values = features.view(features.allocate(X.shape[0], np.float32), X.shape[0])
    features.fill(X, origin.astype(np.float32), values)
    approx = coefficients.astype(np.float32) @ values.T - 0.5 * np.sum(linear * centred_means, axis=1)[:, None]
    exact = np.stack([
        -0.5 * np.sum(((X.astype(np.float64) - params.means[k]) @ factors[k]) ** 2, axis=1)
        for k in range(params.n_components)
    ])
    measured = np.max(np.abs(approx - exact))
    assert 0 < measured <= _screened.screening_error(precisions, centred_means, deviations)


def test_float32_fit_is_screened_and_equals_the_float64_fit(monkeypatch):
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(12)
    _, params, X = _separated_mixture(rng, n_components=8, n_features=6, n_samples=8000, spread=6.0)
    kwargs = dict(
        n_components=8, covariance_type="full", tol=0.0, max_iter=6,
        weights_init=params.weights, means_init=params.means + 0.3,
    )
    single = fit_quietly(GaussianMixture, X.astype(np.float32), **kwargs)
    assert outcomes and all(outcomes)
    double = fit_quietly(GaussianMixture, X.astype(np.float32).astype(np.float64), **kwargs)
    np.testing.assert_allclose(single.lower_bound_, double.lower_bound_, rtol=1e-7)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(single.covariances_, double.covariances_, rtol=1e-4, atol=1e-5)


def test_float64_rows_and_few_components_are_not_screened(monkeypatch):
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(13)
    model, params, X = _separated_mixture(rng, n_components=8, n_features=5, n_samples=1000)
    accumulate(X, None, params)
    # every row lists at least its own component: below 2 / MAX_SCREENED_SHARE components
    # every block would be declined, after its float32 product
    n_few = _screened.MIN_SCREENED_COMPONENTS - 1
    assert n_few >= 2 / _screened.MAX_SCREENED_SHARE - 1
    few = MixtureParams.from_covariances(
        np.full(n_few, 1 / n_few), params.means[:n_few], params.covariances[:n_few], model
    )
    accumulate(X.astype(np.float32), None, few.converted_like(X.astype(np.float32)))
    assert outcomes == []


@pytest.mark.parametrize("by_cluster", [False, True])
def test_out_of_core_float32_fit_is_screened_and_equals_the_in_memory_fit(by_cluster, monkeypatch, tmp_path):
    # A .npy file read in chunks of 1,500 rows (their own shift, their own blocks): the
    # statistics are summed chunk by chunk, screened, and equal the in-memory fit's. Rows
    # stored by cluster (as sample() gives them) make chunks of one or two clusters: the
    # components absent from a chunk once listed every row near their own best and the
    # chunk gave way (see ABSENT_SHARE).
    outcomes = _spy_on_screening(monkeypatch)
    rng = np.random.RandomState(14)
    _, params, X = _separated_mixture(rng, n_components=8, n_features=6, n_samples=9000, spread=6.0)
    order = np.arange(len(X)) if by_cluster else rng.permutation(len(X))
    X = (X[order] + 500.0).astype(np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X)
    kwargs = dict(
        n_components=8, covariance_type="full", tol=0.0, max_iter=5,
        weights_init=params.weights, means_init=params.means + 500.3,
    )
    streamed = fit_quietly(GaussianMixture, str(path), chunk_size=1500, **kwargs)
    assert len(outcomes) >= 5 * 6 and all(outcomes)
    in_memory = fit_quietly(GaussianMixture, X, **kwargs)
    assert streamed.means_.dtype == np.float32
    np.testing.assert_allclose(streamed.lower_bound_, in_memory.lower_bound_, rtol=1e-7)
    np.testing.assert_allclose(streamed.means_, in_memory.means_, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(streamed.covariances_, in_memory.covariances_, rtol=1e-4, atol=1e-5)
