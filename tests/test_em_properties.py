"""Properties of EM and of the sufficient statistics it reduces."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from gaussmix import CollapsedComponentError, GaussianMixture, SuffStats, get_covariance_model
from gaussmix.em import accumulate, m_step
from gaussmix.stats import WEIGHT_FLOOR
from gaussmix.sources import ArraySource
from gaussmix.em import accumulate_source

from .conftest import COVARIANCE_TYPES, fit_quietly, make_blobs


def _fitted_params(X, covariance_type, n_components=3, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=2, random_state=seed).fit(X)
    return model._fitted_params(X.dtype)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows_per_parameter=st.integers(3, 12),
    n_features=st.integers(1, 4),
    n_components=st.integers(1, 4),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_em_never_lowers_the_log_likelihood(rows_per_parameter, n_features, n_components, covariance_type, dtype, seed):
    # Enough rows per component that no covariance is singular (then float32 rounding, not EM,
    # would decide the sign of a step).
    n_samples = rows_per_parameter * n_components * (n_features + 1) * 2
    X = make_blobs(n_samples, n_features, n_components, seed=seed, dtype=dtype)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(
            n_components, covariance_type=covariance_type, tol=0, max_iter=15,
            reg_covar=1e-10 if dtype == np.float64 else 1e-6, random_state=seed,
        ).fit(X)
    trace = np.asarray(model.lower_bounds_, dtype=np.float64)
    # EM is monotone in exact arithmetic; allow rounding of the working precision (and the
    # tiny regularisation float32 needs, which makes the M-step not quite the maximiser).
    slack = 1e-9 if dtype == np.float64 else 1e-4
    assert np.all(np.diff(trace) >= -slack * (1 + np.abs(trace[1:])))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_chunked_accumulation_equals_one_pass(covariance_type, weighted):
    X = make_blobs(700, 3, 3, seed=3)[0]
    weights = np.random.RandomState(0).uniform(0, 3, size=len(X)) if weighted else None
    params = _fitted_params(X, covariance_type)
    whole, loglik_whole = accumulate(X, weights, params)
    for chunk_rows in (1, 7, 100, 699):
        chunked, loglik_chunked = accumulate_source(ArraySource(X, weights, chunk_rows), params)
        _assert_stats_close(chunked, whole, rtol=1e-10)
        np.testing.assert_allclose(loglik_chunked, loglik_whole, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_merge_is_order_independent(covariance_type):
    X = make_blobs(400, 2, 3, seed=4)[0]
    params = _fitted_params(X, covariance_type)
    parts = [accumulate(X[i:i + 50], None, params)[0] for i in range(0, 400, 50)]
    forward = functools.reduce(SuffStats.merge, parts)
    backward = functools.reduce(SuffStats.merge, parts[::-1])
    tree = _tree_merge(parts)
    _assert_stats_close(backward, forward, rtol=1e-11)
    _assert_stats_close(tree, forward, rtol=1e-11)


def _tree_merge(parts):
    while len(parts) > 1:
        parts = [a.merge(b) if b is not None else a for a, b in zip(parts[::2], parts[1::2] + [None])]
    return parts[0]


def _assert_stats_close(actual, expected, rtol):
    np.testing.assert_allclose(actual.resp_weight, expected.resp_weight, rtol=rtol)
    np.testing.assert_allclose(actual.means, expected.means, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(actual.scatter, expected.scatter, rtol=rtol, atol=1e-10)
    np.testing.assert_allclose(actual.total_weight, expected.total_weight, rtol=rtol)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_statistics_match_direct_weighted_formulas(covariance_type):
    X = make_blobs(300, 3, 2, seed=5)[0]
    weights = np.random.RandomState(1).uniform(0.5, 2, size=len(X))
    params = _fitted_params(X, covariance_type, n_components=2)
    stats, loglik = accumulate(X, weights, params)
    dense = params.dense_covariances()
    densities = np.column_stack([
        params.weights[k] * multivariate_normal(params.means[k], dense[k]).pdf(X) for k in range(2)
    ])
    resp = densities / densities.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loglik, np.sum(weights * np.log(densities.sum(axis=1))), rtol=1e-10)
    scatters = []
    for k in range(2):
        r = resp[:, k] * weights
        mean = r @ X / r.sum()
        scatter = (r[:, None] * (X - mean)).T @ (X - mean)
        np.testing.assert_allclose(stats.resp_weight[k], r.sum(), rtol=1e-10)
        np.testing.assert_allclose(stats.means[k], mean, rtol=1e-10)
        scatters.append(scatter if stats.full_scatter else np.diag(scatter))
    # tied keeps the sum of the per-component scatters (all its M-step needs)
    expected = np.sum(scatters, axis=0, keepdims=True) if stats.pooled_scatter else np.array(scatters)
    if stats.trace_scatter:  # spherical keeps each scatter's trace (all its M-step needs)
        expected = expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(stats.scatter, expected, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type):
    X = make_blobs(200, 2, 3, seed=6)[0]
    counts = np.random.RandomState(2).randint(0, 4, size=len(X))
    start = _fitted_params(X, covariance_type)
    kwargs = dict(
        n_components=3, covariance_type=covariance_type, tol=0, max_iter=20,
        weights_init=start.weights, means_init=start.means,
        precisions_init=start.covariance.precisions(start.precisions_cholesky),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = GaussianMixture(**kwargs).fit(X, sample_weight=counts)
        repeated = GaussianMixture(**kwargs).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-9)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-9)
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, rtol=1e-9)


def test_integer_weights_equal_repeated_rows_with_default_kmeans_start():
    X = make_blobs(300, 2, 3, seed=7)[0]
    counts = np.random.RandomState(3).randint(1, 3, size=len(X))
    weighted = GaussianMixture(3, random_state=0, tol=1e-10, max_iter=500).fit(X, sample_weight=counts)
    repeated = GaussianMixture(3, random_state=0, tol=1e-10, max_iter=500).fit(np.repeat(X, counts, axis=0))
    # different random draws in the start, same optimum on well separated clusters
    order_w, order_r = np.argsort(weighted.means_[:, 0]), np.argsort(repeated.means_[:, 0])
    np.testing.assert_allclose(weighted.means_[order_w], repeated.means_[order_r], rtol=1e-5)
    np.testing.assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-7)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_input_equals_float_input(covariance_type, faithful):
    X_float = np.round(faithful).astype(np.float64)
    X_int = X_float.astype(np.int64)
    ours = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X_int)
    theirs = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X_float)
    assert ours.means_.dtype == np.float64
    np.testing.assert_array_equal(ours.means_, theirs.means_)
    np.testing.assert_array_equal(ours.covariances_, theirs.covariances_)
    np.testing.assert_array_equal(ours.score_samples(X_int), theirs.score_samples(X_float))
    assert ours.bic(X_int) == theirs.bic(X_float) and ours.aic(X_int) == theirs.aic(X_float)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_far_from_origin_stays_accurate(covariance_type):
    # Round to float32 first: the comparison is float32 arithmetic vs float64 arithmetic on the
    # same numbers (at 1e4, float32 rows are only resolved to ~1e-3).
    X = (make_blobs(2000, 3, 3, seed=8)[0] * np.array([1e-1, 1.0, 1e2]) + 1e4).astype(np.float32).astype(np.float64)
    start = _fitted_params(X, covariance_type)
    kwargs = dict(
        n_components=3, covariance_type=covariance_type, tol=0, max_iter=30,
        weights_init=start.weights, means_init=start.means,
        precisions_init=start.covariance.precisions(start.precisions_cholesky),
        reg_covar=1e-6,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        single = GaussianMixture(**kwargs).fit(X.astype(np.float32))
        double = GaussianMixture(**kwargs).fit(X)
    assert single.means_.dtype == np.float32 and single.covariances_.dtype == np.float32
    assert np.all(single._fitted_params().dense_covariances().diagonal(axis1=1, axis2=2) > 0)
    np.testing.assert_allclose(single.lower_bound_, double.lower_bound_, rtol=1e-4)
    np.testing.assert_allclose(
        single.score(X.astype(np.float32)), double.score(X), rtol=1e-4
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_reproduces_parameters(covariance_type):
    X = make_blobs(600, 2, 3, seed=9)[0]
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    n = 200_000
    draws, labels = model.sample(n)
    assert draws.shape == (n, 2) and labels.shape == (n,)
    counts = np.bincount(labels, minlength=3) / n
    np.testing.assert_allclose(counts, model.weights_, atol=4 * np.sqrt(0.25 / n))
    dense = model._fitted_params().dense_covariances()
    for k in range(3):
        rows = draws[labels == k]
        scale = np.sqrt(np.diag(dense[k]))
        assert np.all(np.abs(rows.mean(axis=0) - model.means_[k]) < 5 * scale / np.sqrt(len(rows)))
        np.testing.assert_allclose(np.cov(rows.T), dense[k], atol=0.05 * scale.max() ** 2)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data", "random"])
def test_every_start_gives_a_sensible_covariance(covariance_type, init_params):
    # Three tight, well separated clusters: a start must see within-cluster spread (~1),
    # not the total spread (~100) nor a collapsed one (reg_covar).
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    X = np.concatenate([c + rng.normal(size=(200, 2)) for c in centres])
    model = GaussianMixture(3, covariance_type=covariance_type, init_params=init_params, max_iter=0, random_state=1).fit(X)
    variances = model._fitted_params().dense_covariances().diagonal(axis1=1, axis2=2)
    total_variance = X.var(axis=0)
    assert np.all(variances > 0.05)  # every start sees the spread of its rows, never reg_covar alone
    if init_params in ("kmeans", "k-means++"):
        assert np.all(variances < 5)  # within-cluster scatter (~1), not the total spread
    elif init_params == "random_from_data":
        # K random rows may share a cluster, but the partition they induce still cuts the scatter
        assert np.all(variances.mean(axis=0) < total_variance)
    fitted = GaussianMixture(
        3, covariance_type=covariance_type, init_params=init_params, n_init=4, random_state=1
    ).fit(X)
    np.testing.assert_allclose(np.sort(fitted.weights_), [1 / 3] * 3, atol=0.02)


def test_m_step_of_exact_statistics_is_the_weighted_mle():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 3)) + 5
    model = get_covariance_model("full")
    from gaussmix.stats import stats_from_responsibilities

    stats = stats_from_responsibilities(X, np.ones((500, 1)), True, 500.0)
    params = m_step(stats, model, reg_covar=0.0)
    np.testing.assert_allclose(params.means[0], X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(params.covariances[0], np.cov(X.T, bias=True), rtol=1e-10)


def test_pooled_scatter_merges_like_the_sum_of_per_component_scatters():
    # Per-component statistics (the full model) of two chunks, pooled on either side or both.
    X = make_blobs(500, 3, 3, seed=8)[0]
    weights = np.random.RandomState(3).uniform(0, 2, size=len(X))
    params = _fitted_params(X, "full")
    a, _ = accumulate(X[:180], weights[:180], params)
    b, _ = accumulate(X[180:], weights[180:], params)
    assert not a.pooled_scatter and a.pooled().pooled_scatter
    expected = a.merge(b).pooled()
    assert expected.scatter.shape == (1, 3, 3)
    for merged in (a.pooled().merge(b), a.merge(b.pooled()), a.pooled().merge(b.pooled())):
        assert merged.pooled_scatter
        _assert_stats_close(merged, expected, rtol=1e-12)
    # and the pooled sum is what tied's M-step estimates from
    tied = get_covariance_model("tied")
    np.testing.assert_allclose(tied.estimate(expected, 1e-6), tied.estimate(a.merge(b), 1e-6), rtol=1e-12)
    with pytest.raises(ValueError, match="diagonals"):
        accumulate(X, None, _fitted_params(X, "diag"))[0].pooled()


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_trace_scatter_merges_like_the_traces_of_the_scatters(covariance_type):
    X = make_blobs(500, 3, 3, seed=9)[0]
    weights = np.random.RandomState(4).uniform(0, 2, size=len(X))
    params = _fitted_params(X, covariance_type)
    a, _ = accumulate(X[:230], weights[:230], params)
    b, _ = accumulate(X[230:], weights[230:], params)
    assert not a.trace_scatter and a.traced().trace_scatter
    expected = a.merge(b).traced()
    assert expected.scatter.shape == (3, 1)
    np.testing.assert_allclose(expected.scatter[:, 0], a.merge(b).traces(), rtol=1e-12)
    for merged in (a.traced().merge(b), a.merge(b.traced()), a.traced().merge(b.traced())):
        assert merged.trace_scatter
        _assert_stats_close(merged, expected, rtol=1e-12)
    if covariance_type == "diag":  # spherical structures estimate the same variances from either layout
        for name in ("spherical", "EII"):
            model = get_covariance_model(name)
            np.testing.assert_allclose(model.estimate(expected, 1e-6), model.estimate(a.merge(b), 1e-6), rtol=1e-12)
    with pytest.raises(ValueError, match="pooled"):
        a.pooled().traces()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_an_emptied_component_passes_the_m_step_on_reg_covar_alone(covariance_type, dtype):
    # Component 1's responsibilities sum to 0: its covariance is reg_covar alone, in
    # float32 below 10 eps32 of component 0's variances. The M-step goes on (as
    # scikit-learn's), since reg_covar, not rounding, decided it; without reg_covar the
    # component has no variance at all, and is named.
    model = get_covariance_model(covariance_type)
    resp_weight = np.array([120.0, 0.0, 37.5])
    spreads = np.array([[400.0, 900.0, 300.0], [0.0, 0.0, 0.0], [2.0, 3.0, 1.0]]) * resp_weight[:, None]
    scatter = np.stack([np.diag(row) for row in spreads]) if model.full_scatter else spreads
    if covariance_type == "spherical":
        scatter = spreads.sum(axis=1, keepdims=True)
    means = np.random.RandomState(2).normal(size=(3, 3))
    stats = SuffStats(*(np.asarray(a, dtype=dtype) for a in (resp_weight, means, scatter)), float(resp_weight.sum()))
    params = m_step(stats, model, 1e-4)
    assert np.all(np.isfinite(params.precisions_cholesky))
    np.testing.assert_allclose(model.dense(params.covariances, 3, 3)[1], 1e-4 * np.eye(3), rtol=1e-6)
    with pytest.raises(CollapsedComponentError, match="component 1 collapsed"):
        m_step(stats, model, 0.0)


def test_float32_fit_with_a_component_that_empties_goes_on_as_the_float64_fit():
    # The third start is ~1000 standard deviations from every row: its float32
    # responsibilities underflow to 0 at the first E-step, and its covariance becomes
    # reg_covar alone. float64 (and scikit-learn's float32) carry it on at weight ~0;
    # float32 used to stop with a CollapsedComponentError.
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(-20, 1, size=(1000, 3)), rng.normal(20, 1, size=(1000, 3))])
    X = X.astype(np.float32).astype(np.float64)
    kwargs = dict(
        n_components=3, covariance_type="full", tol=0.0, max_iter=5,
        means_init=np.array([[-20.0] * 3, [20.0] * 3, [1000.0] * 3]),
    )
    single = fit_quietly(GaussianMixture, X.astype(np.float32), **kwargs)
    double = fit_quietly(GaussianMixture, X, **kwargs)
    assert single.weights_[2] < 1e-5 and double.weights_[2] < 1e-12
    # float32 accuracy (the NumPy path without numba: 1.6e-6)
    np.testing.assert_allclose(single.lower_bound_, double.lower_bound_, rtol=1e-5)
    np.testing.assert_allclose(single.means_[:2], double.means_[:2], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_fit_does_not_depend_on_the_order_of_the_rows(covariance_type, monkeypatch):
    # Rows stored by cluster, in chunks of 1,000: most chunks hold one or two clusters,
    # so the truncation's floors for absent components come into play (see
    # gaussmix.estep._sparse_moments.ABSENT_SHARE; the "sparse" engine takes the sparse
    # moments at this size). EM's answer is the same as for the rows shuffled, to
    # float64's rounding.
    from .test_expanded import _separated_mixture

    rng = np.random.RandomState(4)
    _, params, X = _separated_mixture(rng, covariance_type, n_components=20, n_features=16, n_samples=8000, spread=8.0)
    order = rng.permutation(len(X))
    kwargs = dict(
        n_components=20, covariance_type=covariance_type, tol=0.0, max_iter=4, chunk_size=1000, engine="sparse",
        weights_init=params.weights, means_init=params.means + rng.normal(scale=0.3, size=params.means.shape),
    )
    by_cluster = fit_quietly(GaussianMixture, X, **kwargs)
    shuffled = fit_quietly(GaussianMixture, X[order], **kwargs)
    np.testing.assert_allclose(by_cluster.lower_bound_, shuffled.lower_bound_, rtol=1e-12)
    np.testing.assert_allclose(by_cluster.means_, shuffled.means_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(by_cluster.covariances_, shuffled.covariances_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_m_step_takes_an_emptied_components_mean_to_the_origin_only(covariance_type, dtype):
    # Component 1's responsibilities sum to 1e-300 (float64) or 0 (float32): its mean
    # goes to the user's origin (-origin in the frame), as scikit-learn's (sum r x /
    # (N_k + 10 eps)); the others keep their exact means, to the bit.
    model = get_covariance_model(covariance_type)
    rng = np.random.RandomState(1)
    resp_weight = np.array([120.0, 1e-300 if dtype == np.float64 else 0.0, 37.5])
    means = rng.normal(size=(3, 4))
    scatter = np.stack([np.eye(4) * w for w in resp_weight]) if model.full_scatter else np.outer(resp_weight, np.ones(4))
    if covariance_type == "tied":
        scatter = scatter.sum(axis=0, keepdims=True)
    stats = SuffStats(*(np.asarray(a, dtype=dtype) for a in (resp_weight, means, scatter)), float(resp_weight.sum()))
    origin = np.array([1e4, -3.0, 0.5, 7.0], dtype=dtype)
    params = m_step(stats, model, 1e-6, origin=origin)
    np.testing.assert_array_equal(params.means[[0, 2]], stats.means[[0, 2]])
    np.testing.assert_allclose(params.means[1], -origin, rtol=1e-12)
    # without an origin, to the frame's own zero
    np.testing.assert_allclose(m_step(stats, model, 1e-6).means[1], 0.0, atol=1e-12)


def _separated_data(seed, covariance_type, n_features, n_components, n_samples, offset):
    """Clusters 12 apart per coordinate (a few within reach of each other in few
    dimensions, none in many), each with its own scales, and a start of means near
    random rows: found by fuzzing float32 against float64 fits."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=12.0, size=(n_components, n_features))
    labels = rng.integers(0, n_components, n_samples)
    scales = rng.uniform(0.3, 2, (n_components, n_features))
    X = centres[labels] + rng.normal(size=(n_samples, n_features)) * scales[labels] + offset
    means = X[rng.choice(n_samples, n_components, replace=False)] + rng.normal(scale=0.1, size=(n_components, n_features))
    return X, dict(n_components=n_components, covariance_type=covariance_type, means_init=means)


@pytest.mark.parametrize(
    "seed, covariance_type, n_features, n_components, offset",
    [
        # Before float64's floor and the reg_covar exception (see WEIGHT_FLOOR and
        # CovarianceModel._raise_if_collapsed), float32 stopped on a collapsed component
        # (a component of one row: variance reg_covar, under 10 eps32 of the largest) ...
        (2, "spherical", 64, 16, 0.0),
        (5, "diag", 16, 16, 10.0),
        # ... or ended 7e-4 and 8.5e-4 lower: components of ~1e-12 rows' weight, which
        # float64 carries on and revives, were reg_covar alone at float32's floor
        (1, "spherical", 33, 16, 0.0),
        (8, "full", 8, 16, 10.0),
    ],
)
def test_float32_fits_of_separated_clusters_follow_float64(seed, covariance_type, n_features, n_components, offset):
    X, kwargs = _separated_data(seed, covariance_type, n_features, n_components, 3000, offset)
    fits = {}
    for dtype in (np.float64, np.float32):
        typed = dict(kwargs, means_init=kwargs["means_init"].astype(dtype))
        fits[dtype] = fit_quietly(GaussianMixture, X.astype(dtype), max_iter=15, tol=0.0, reg_covar=1e-4, **typed)
    assert fits[np.float32].lower_bound_ == pytest.approx(fits[np.float64].lower_bound_, rel=1e-5)
    np.testing.assert_allclose(np.sort(fits[np.float32].weights_), np.sort(fits[np.float64].weights_), atol=1e-5)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_a_variance_of_reg_covar_is_not_collapsed_in_either_dtype(covariance_type):
    # Component 1 sits on one row: its variances are reg_covar (1e-4), 7e-7 of component
    # 0's 144, below 10 eps32 of it. reg_covar, not rounding, decided them: kept where
    # the M-step says it added reg_covar; still named without it, and where a variance
    # holds less than half of it.
    model = get_covariance_model(covariance_type)
    dense = np.stack([144.0 * np.eye(3), 1e-4 * np.eye(3), np.diag([2.0, 3.0, 1.0])])
    layouts = {
        "full": lambda d: d, "diag": lambda d: np.diagonal(d, axis1=1, axis2=2).copy(),
        "spherical": lambda d: d.trace(axis1=1, axis2=2) / 3,
    }
    covariances = layouts[covariance_type](dense).astype(np.float32)
    factor = model.precision_cholesky(covariances, reg_covar=1e-4)
    assert np.all(np.isfinite(factor))
    with pytest.raises(CollapsedComponentError, match="component 1 collapsed"):
        model.precision_cholesky(covariances)
    with pytest.raises(CollapsedComponentError, match="component 1 collapsed"):
        model.precision_cholesky(covariances, reg_covar=1e-3)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_the_weight_floor_does_not_depend_on_the_dtype(covariance_type):
    # A component of 1e-12 rows' weight keeps its own spread in float32 as in float64
    # (float32's 10 eps, 1.2e-6, once swamped it: its covariance became reg_covar alone).
    model = get_covariance_model(covariance_type)
    resp_weight = np.array([300.0, 1e-12, 50.0])
    means = np.random.RandomState(2).normal(size=(3, 2))
    spread = np.array([1.0, 4.0, 2.0])
    scatter = np.stack([np.eye(2) * w * s for w, s in zip(resp_weight, spread)])
    if not model.full_scatter:
        scatter = np.diagonal(scatter, axis1=1, axis2=2).copy()
    if covariance_type == "tied":
        scatter = scatter.sum(axis=0, keepdims=True)
    params = {}
    for dtype in (np.float64, np.float32):
        stats = SuffStats(*(np.asarray(a, dtype=dtype) for a in (resp_weight, means, scatter)), float(resp_weight.sum()))
        params[dtype] = m_step(stats, model, 1e-6)
    np.testing.assert_allclose(params[np.float32].covariances, params[np.float64].covariances, rtol=1e-6)
    np.testing.assert_allclose(params[np.float32].weights, params[np.float64].weights, rtol=1e-6)
    if covariance_type != "tied":
        # (its own spread over N_k + the floor, as scikit-learn's nk + 10 eps, plus reg_covar)
        expected = 4.0 * 1e-12 / (1e-12 + WEIGHT_FLOOR) + 1e-6
        assert np.max(np.atleast_1d(params[np.float32].covariances[1])) == pytest.approx(expected, rel=1e-6)


def test_float32_whitened_scatter_of_a_shrinking_component_is_redone_in_float64():
    # 64 dimensions, 8 components (the whitening path), weighted rows: one component
    # falls to 0.4 rows' weight while its old variances were ~50. Its float32 scatter,
    # summed in the old whitened coordinates, came out indefinite (-5.8e-5 against
    # reg_covar N = 4e-5) and the fit stopped with a collapsed component; the chunk is
    # now redone in float64 and the fit follows float64's. (A random problem of the
    # weighted fuzzing, drawn as it drew it.)
    rng = np.random.default_rng(30764)
    for options in (["full", "diag", "spherical", "tied"], [2, 3, 5, 8, 16, 33, 64], [2, 4, 8, 13, 16, 32],
                    [3000, 20000, 60000], [0.5, 2, 5, 12], [0, 10, 1000]):
        rng.choice(options)  # the fuzzer's draws of the problem's kind
    n_samples, n_features, n_components = 3000, 64, 8
    centres = rng.normal(scale=12.0, size=(n_components, n_features))
    labels = rng.integers(0, n_components, n_samples)
    scales = rng.uniform(0.3, 2, (n_components, n_features))
    X = centres[labels] + rng.normal(size=(n_samples, n_features)) * scales[labels]
    if rng.random() < 0.3:
        X = X[np.argsort(labels, kind="stable")]
    means = X[rng.choice(n_samples, n_components, replace=False)] + rng.normal(scale=0.1, size=(n_components, n_features))
    weights_rng = np.random.default_rng(30764)
    weights = weights_rng.uniform(0.0, 3.0, n_samples) * (weights_rng.random(n_samples) > 0.1)
    fits = {}
    for dtype in (np.float64, np.float32):
        model = GaussianMixture(n_components, means_init=means.astype(dtype), max_iter=10, tol=0.0, reg_covar=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits[dtype] = model.fit(X.astype(dtype), sample_weight=weights)
    assert np.min(fits[np.float64].weights_) < 1e-3
    assert fits[np.float32].lower_bound_ == pytest.approx(fits[np.float64].lower_bound_, rel=1e-5)
