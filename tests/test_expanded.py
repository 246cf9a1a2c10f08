"""The expanded-products E-step: its features, and when float32 moments give way to float64."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import get_covariance_model
from gaussmix.estep import _compiled_sparse as _numba_kernels
from gaussmix.estep import _features, _sparse_moments, accumulate, expanded
from gaussmix.params import MixtureParams

from .test_fast_path_reference import _assert_stats_match, _reference


def _expected_features(cls, centred):
    if cls is _features.OuterProducts:
        rows, columns = np.triu_indices(centred.shape[1])
        return centred[:, rows] * centred[:, columns]
    if cls is _features.Squares:
        return centred * centred
    return np.sum(centred * centred, axis=1, keepdims=True)


@pytest.mark.parametrize("numba", ["1", "0"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", [_features.Squares, _features.SquaredNorm, _features.OuterProducts])
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


@pytest.mark.parametrize("cls", [_features.Squares, _features.SquaredNorm, _features.OuterProducts])
def test_quadratic_coefficients_give_minus_half_the_quadratic_form(cls):
    rng = np.random.RandomState(1)
    n_features = 5
    factors = rng.normal(size=(3, n_features, n_features))
    dense = factors @ factors.transpose(0, 2, 1)
    if cls is _features.OuterProducts:
        precisions = dense
    elif cls is _features.Squares:
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
    moments = expanded._moments

    def spy(*args):
        calls.append(np.dtype(args[-1]))
        return moments(*args)

    monkeypatch.setattr(expanded, "_moments", spy)
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
    calls = _spy_on_moments(monkeypatch)
    X, model, params = _two_clusters(1.0, 1.0, covariance_type, np.random.RandomState(2))
    stats, loglik = accumulate(X, None, params, engine="expanded")
    assert calls == [np.float32]
    assert stats.scatter.dtype == np.float32
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_float32_moments_that_would_cancel_are_summed_in_float64(covariance_type, monkeypatch):
    calls = _spy_on_moments(monkeypatch)
    # The start's means (+-1) predict little cancellation; the clusters at +-30 make the new
    # means cancel ~30^2 times eps in float32: the check afterwards redoes the chunk in float64.
    X, model, params = _two_clusters(30.0, 1.0, covariance_type, np.random.RandomState(3))
    stats, loglik = accumulate(X, None, params, engine="expanded")
    assert calls == [np.float32, np.float64]
    assert stats.scatter.dtype == np.float32
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=1e-5, atol=1e-5)
    # Started from means that already sit at the clusters, the float64 sums are chosen first.
    calls.clear()
    X, model, params = _two_clusters(30.0, 30.0, covariance_type, np.random.RandomState(3))
    accumulate(X, None, params, engine="expanded")
    assert calls == [np.float64]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correlations_near_one_keep_the_statistics_accurate(dtype, monkeypatch):
    # x^T P x expanded over two coordinates with correlation 1 - 1e-4 cancels ~1e4-fold:
    # float32 must leave the float32 expansion, float64 may keep it.
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
    stats, loglik = accumulate(X, None, params, engine="expanded")
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
    and how many components the (gathered) sparse moments were summed for."""
    calls, sparse_components = [], []
    moments, finish = expanded._moments, _sparse_moments.GatheredSparseMoments.finish

    def moments_spy(*args):
        calls.append(args[-2] is not None)
        return moments(*args)

    def finish_spy(self, *rest):
        sparse_components.append(int(np.count_nonzero(self.kept.any(axis=1))))
        return finish(self, *rest)

    monkeypatch.setattr(expanded, "_moments", moments_spy)
    monkeypatch.setattr(_sparse_moments.GatheredSparseMoments, "finish", finish_spy)
    return calls, sparse_components


def _separated_mixture(rng, covariance_type="full", n_components=6, n_features=5, n_samples=3000, spread=12.0):
    model = get_covariance_model(covariance_type)
    means = rng.normal(scale=spread, size=(n_components, n_features))
    factors = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features) + np.eye(n_features)
    covariances = factors @ factors.transpose(0, 2, 1)
    if covariance_type == "diag":
        covariances = np.diagonal(covariances, axis1=1, axis2=2).copy()
    elif covariance_type == "spherical":
        covariances = np.trace(covariances, axis1=1, axis2=2) / n_features
    params = MixtureParams.from_covariances(np.full(n_components, 1 / n_components), means, covariances, model)
    return model, params, params.sample(n_samples, rng)[0]


@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_moments_equal_the_reference(weighted, monkeypatch):
    # Clusters far apart: most responsibilities are below 2^-100, the moments are summed
    # over the others only, and the statistics still agree to float64 rounding.
    calls, sparse_components = _spy_on_sparse_choice(monkeypatch)
    rng = np.random.RandomState(7)
    model, params, X = _separated_mixture(rng)
    weights = rng.uniform(0, 2, X.shape[0]) if weighted else None
    stats, loglik = accumulate(X, weights, params, engine="sparse")
    assert calls == [True] and sparse_components and sparse_components[0] == params.n_components
    _assert_stats_match(stats, loglik, _reference(X, weights, params), rtol=1e-10, atol=1e-10)


def _far_component(model, params, X, factor):
    """``params`` with the last component moved ``factor`` times as far from the data's mean."""
    means = params.means.copy()
    means[-1] = X.mean(axis=0) + (means[-1] - X.mean(axis=0)) * factor
    return MixtureParams.from_covariances(params.weights, means, params.covariances, model)


def test_sparse_moments_keep_the_largest_of_a_component_that_has_only_tiny_ones(monkeypatch):
    # A component far from every row (responsibilities ~1e-60, not 0): thresholds relative
    # to each component's largest keep its largest ones, so its mean and scatter are still
    # those of the reference (an absolute threshold left all of it out, and the chunk was redone).
    calls, sparse_components = _spy_on_sparse_choice(monkeypatch)
    rng = np.random.RandomState(8)
    model, params, X = _separated_mixture(rng)
    far = _far_component(model, params, X, 1.6)
    stats, loglik = accumulate(X, None, far, engine="sparse")
    assert 0 < stats.resp_weight[-1] < 1e-30
    assert calls == [True] and sparse_components == [params.n_components]
    _assert_stats_match(stats, loglik, _reference(X, None, far), rtol=1e-9, atol=1e-12)


def test_sparse_moments_give_way_where_what_they_leave_out_counts(monkeypatch):
    # With a threshold far too high, what is left out counts: the bound fails and the
    # chunk is summed in full (still equal to the reference).
    monkeypatch.setattr(_sparse_moments, "TRUNCATION_THRESHOLD", 1e-3)
    calls, _ = _spy_on_sparse_choice(monkeypatch)
    rng = np.random.RandomState(8)
    model, params, X = _separated_mixture(rng, "full", spread=4.0)
    stats, loglik = accumulate(X, None, params, engine="sparse")
    assert calls == [True, False]
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=1e-9, atol=1e-12)


def _spy_on_compiled_sparse_blocks(monkeypatch):
    """Record what each block's call of the compiled sparse moments returned (the "sparse"
    engine takes them at any size)."""
    from gaussmix._numba import NUMBA_VARIABLE

    monkeypatch.setenv(NUMBA_VARIABLE, "1")  # whatever the environment says
    taken = []
    add_block = _sparse_moments.CompiledSparseMoments.add_block

    def spy(self, *args):
        taken.append(add_block(self, *args))
        return taken[-1]

    monkeypatch.setattr(_sparse_moments.CompiledSparseMoments, "add_block", spy)
    return taken


needs_numba = pytest.mark.skipif(
    _numba_kernels.numba is None, reason="numba is not installed"
)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_compiled_sparse_moments_equal_the_reference(covariance_type, weighted, dtype, monkeypatch):
    # Axis-aligned clusters far apart: each block is summed over its few kept
    # responsibilities in the compiled loop, and the statistics equal the reference.
    taken = _spy_on_compiled_sparse_blocks(monkeypatch)
    rng = np.random.RandomState(9)
    model, params, X = _separated_mixture(rng, covariance_type, n_components=20, n_features=6, n_samples=5000)
    weights = rng.uniform(0, 2, X.shape[0]) if weighted else None
    X = X.astype(dtype)
    cast = (np.asarray(a, dtype=dtype) for a in (params.weights, params.means, params.covariances))
    params = MixtureParams.from_covariances(*cast, model)
    stats, loglik = accumulate(X, weights, params, engine="sparse")
    assert taken and all(taken)
    tolerance = 1e-10 if dtype == np.float64 else 1e-4
    _assert_stats_match(stats, loglik, _reference(X, weights, params), rtol=tolerance, atol=tolerance)


@needs_numba
def test_compiled_sparse_moments_keep_the_largest_of_a_component_that_has_only_tiny_ones(monkeypatch):
    taken = _spy_on_compiled_sparse_blocks(monkeypatch)
    calls, _ = _spy_on_sparse_choice(monkeypatch)
    rng = np.random.RandomState(8)
    model, params, X = _separated_mixture(rng, "diag", n_components=20, n_features=6)
    far = _far_component(model, params, X, 2.4)
    stats, loglik = accumulate(X, None, far, engine="sparse")
    assert 0 < stats.resp_weight[-1] < 1e-30
    assert calls == [True] and taken and all(taken)
    _assert_stats_match(stats, loglik, _reference(X, None, far), rtol=1e-9, atol=1e-12)


@needs_numba
def test_compiled_sparse_moments_take_the_blocks_of_rows_stored_by_cluster(monkeypatch):
    # sample() gives rows by component: 3,000 rows are two clusters'. Relative to their own
    # tiny best, the absent components' responsibilities crowd the block (it was declined);
    # counted against ABSENT_SHARE of their weight they do not, and it is summed sparsely.
    # The components present have the reference's statistics, the absent ones ~0 weight.
    taken = _spy_on_compiled_sparse_blocks(monkeypatch)
    rng = np.random.RandomState(9)
    model, params, X = _separated_mixture(rng, "diag", n_components=20, n_features=16, n_samples=40000, spread=8.0)
    X = X[:3000]
    stats, loglik = accumulate(X, None, params, engine="sparse")
    assert taken and all(taken)
    resp_weight, means, scatter, reference_loglik = _reference(X, None, params)
    assert np.sum(resp_weight < 1e-3) >= 15
    np.testing.assert_allclose(loglik, reference_loglik, rtol=1e-12)
    np.testing.assert_allclose(stats.resp_weight, resp_weight, rtol=1e-10, atol=1e-12)
    present = resp_weight > 1e-3
    np.testing.assert_allclose(stats.means[present], means[present], rtol=1e-10)
    np.testing.assert_allclose(stats.scatter[present], scatter[present], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("strategy", ["gathered", "compiled"])
def test_floors_take_a_block_crowded_by_an_absent_component(strategy):
    # 8 rows, each its own component's (0, 1 or 2); component 3 is 1e-60 on every row, all
    # within 2^-100 of its own best: 16 kept of 32, more than the 8 allowed. With a floor of
    # 0.01 for it, none of its own are kept: the block is taken, its 8e-60 tallied as left out.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(8, 2))
    resp = np.zeros((4, 8))
    resp[[0, 0, 1, 1, 2, 2, 2, 2], np.arange(8)] = 1.0
    resp[3] = 1e-60
    origin = np.zeros(2)
    floors = np.array([0.0, 0.0, 0.0, 0.01])

    def add(with_floors):
        moments, dropped = np.zeros((4, 4)), np.zeros((2, 4))
        if strategy == "gathered":
            sparse = _sparse_moments.GatheredSparseMoments(4, 8, _features.OuterProducts(2))
            sparse.floors = floors if with_floors else None
            taken = sparse.add_block(resp, None, X, origin, 0, 8, np.zeros((4, 5)), dropped)
            return taken, dropped
        if _numba_kernels.numba is None:
            pytest.skip("numba is not installed")
        taken = _numba_kernels.sparse_block_moments(
            resp, X, origin, 2, _sparse_moments.TRUNCATION_THRESHOLD, 8, moments, dropped, None,
            floors if with_floors else None,
        )
        return taken, dropped

    assert add(with_floors=False) == (False, pytest.approx(np.zeros((2, 4))))
    taken, dropped = add(with_floors=True)
    assert taken
    np.testing.assert_allclose(dropped[0], [0, 0, 0, 8e-60], rtol=1e-12)
    np.testing.assert_allclose(dropped[1], [0, 0, 0, 1e-60 * np.sum(X * X)], rtol=1e-12)


@needs_numba
def test_compiled_sparse_moments_give_way_where_what_they_leave_out_counts(monkeypatch):
    taken = _spy_on_compiled_sparse_blocks(monkeypatch)
    monkeypatch.setattr(_sparse_moments, "TRUNCATION_THRESHOLD", 1e-3)
    calls, _ = _spy_on_sparse_choice(monkeypatch)
    rng = np.random.RandomState(8)
    model, params, X = _separated_mixture(rng, "diag", n_components=20, n_features=6, spread=4.0)
    stats, loglik = accumulate(X, None, params, engine="sparse")
    assert calls == [True, False] and taken and all(taken)
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=1e-9, atol=1e-12)


@needs_numba
def test_compiled_sparse_moments_leave_crowded_blocks_to_the_product(monkeypatch):
    # Overlapping clusters: most responsibilities count, the blocks are declined
    # (nothing summed twice) and the product sums them.
    taken = _spy_on_compiled_sparse_blocks(monkeypatch)
    rng = np.random.RandomState(10)
    model, params, X = _separated_mixture(rng, "diag", spread=0.3)
    stats, loglik = accumulate(X, None, params, engine="sparse")
    assert taken and not any(taken)
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=1e-9, atol=1e-9)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_rows", [1, 13, 256])
@pytest.mark.parametrize("by_square", [True, False])
def test_sparse_block_kernel_sums_the_kept_and_tallies_the_rest(by_square, n_rows, dtype):

    rng = np.random.RandomState(n_rows)
    n_components, n_features = 7, 5
    rows = (rng.normal(size=(n_rows, n_features)) + 3).astype(dtype)
    origin = rng.normal(size=n_features) + 3
    # the reference features: [squares or squared norm, x - origin], in float64
    centred = rows.astype(np.float64) - origin
    norms = np.sum(centred**2, axis=1)
    features = np.hstack([centred**2 if by_square else norms[:, None], centred])
    n_squares = n_features if by_square else 1
    resp = rng.uniform(0, 1, (n_components, n_rows))
    resp[rng.uniform(size=resp.shape) < 0.7] *= 1e-40  # a random mix of kept and left-out ones
    resp = resp.astype(dtype)
    threshold = 2.0**-100
    resp[3] *= 1e-50  # a component with only tiny responsibilities keeps its largest
    resp[4] = 0  # and one with none keeps nothing
    large = (resp >= threshold * resp.max(axis=1, keepdims=True)) & (resp > 0)
    moments = rng.normal(size=(n_components, features.shape[1]))
    dropped = rng.uniform(size=(2, n_components))
    before = moments.copy(), dropped.copy()
    kept = np.where(large, resp, 0).astype(np.float64)
    left = np.where(large, 0, resp).astype(np.float64)
    n_kept = int(np.count_nonzero(large))
    # the features built from the rows (in float64 whatever their dtype), or given; and
    # with exactly as many kept as allowed
    for given, max_kept in ((None, resp.size), (features, resp.size), (None, n_kept)):
        summed, tallied = moments.copy(), dropped.copy()
        taken = _numba_kernels.sparse_block_moments(
            resp, rows, origin, n_squares, threshold, max_kept, summed, tallied, given
        )
        assert taken
        np.testing.assert_allclose(summed, before[0] + kept @ features, rtol=1e-12, atol=1e-12)
        expected_dropped = before[1] + np.stack([left.sum(axis=1), left @ norms])
        np.testing.assert_allclose(tallied, expected_dropped, rtol=1e-12, atol=1e-300)
    # More kept ones than allowed: declined, and nothing is touched.
    snapshot = moments.copy(), dropped.copy()
    if n_kept:
        declined = _numba_kernels.sparse_block_moments(
            resp, rows, origin, n_squares, threshold, n_kept - 1, moments, dropped
        )
        assert not declined
        np.testing.assert_array_equal(moments, snapshot[0])
        np.testing.assert_array_equal(dropped, snapshot[1])


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_block_kernel_never_leaves_a_nan_out_unnoticed(dtype):
    # A NaN responsibility (from NaN log-densities) must not vanish from the moments:
    # it reaches what is left out, and the chunk's bound then fails (the chunk is summed
    # without truncation, and the NaN shows).
    rng = np.random.RandomState(3)
    rows = rng.normal(size=(40, 3)).astype(dtype)
    resp = np.zeros((4, 40), dtype=dtype)
    resp[np.arange(40) % 4, np.arange(40)] = 1
    resp[2, 7] = np.nan
    moments, dropped = np.zeros((4, 6)), np.zeros((2, 4))
    taken = _numba_kernels.sparse_block_moments(
        resp, rows, np.zeros(3), 3, _sparse_moments.TRUNCATION_THRESHOLD, resp.size, moments, dropped
    )
    assert taken and np.isnan(dropped[:, 2]).all()
    assert not _sparse_moments.truncation_is_negligible(
        _features.Squares(3), np.ones((4, 3)), np.ones((4, 3)), np.full(4, 10.0), np.zeros((4, 3)), dropped
    )


def test_compiled_sparse_moments_skip_blocks_after_a_declined_one():
    # A declined block costs a pass over its responsibilities, so the next few go
    # straight to the product; then the kernel is tried again.
    answers = iter([False, True, True])
    calls = []

    class Kernel:
        @staticmethod
        def sparse_block_moments(*args):
            calls.append(len(calls))
            return next(answers)

    sparse = _sparse_moments.CompiledSparseMoments(Kernel, 3)
    resp, rows = np.zeros((4, 5)), np.zeros((5, 3))
    skipped = sparse.SKIPPED_AFTER_DECLINE
    taken = [sparse.add_block(resp, None, rows, None, 0, 5, None, None) for _ in range(skipped + 3)]
    assert taken == [False] * (skipped + 1) + [True, True]
    assert len(calls) == 3
