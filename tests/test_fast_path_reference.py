"""The batched E-step kernels equal a plain, obviously-correct reference.

The reference loops over components and asks scipy.stats.multivariate_normal
for every log-density; the statistics are the textbook weighted sums. Every
structure in the covariance registry is covered, including ones registered
after these kernels were written (they are checked through whatever
engines run their precision layout).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from gaussmix import SuffStats, get_covariance_model
from gaussmix import estep
from gaussmix.covariance import available_covariance_types
from gaussmix.estep import _kernels as kernels
from gaussmix.estep import accumulate
from gaussmix.em import accumulate_source
from gaussmix.params import MixtureParams
from gaussmix.sources import ArraySource


def _registered_models():
    models = {}
    for name in available_covariance_types():
        model = get_covariance_model(name)
        models.setdefault(type(model).__name__, model)
    return [pytest.param(model, id=name) for name, model in sorted(models.items())]


MODELS = _registered_models()


def _random_params(model, n_components, n_features, rng, dtype, offset=0.0):
    """Valid parameters of ``model`` from random statistics (through its own M-step)."""
    resp_weight = rng.uniform(20, 50, n_components)
    means = rng.normal(scale=3, size=(n_components, n_features)) + offset
    factors = rng.normal(size=(n_components, n_features, n_features))
    scatter = resp_weight[:, None, None] * (
        factors @ factors.transpose(0, 2, 1) + 0.5 * np.eye(n_features)
    )
    if not model.full_scatter:
        scatter = np.diagonal(scatter, axis1=1, axis2=2).copy()
    stats = SuffStats(resp_weight, means, scatter, float(resp_weight.sum()))
    covariances = model.estimate(stats, 1e-6)
    weights = resp_weight / resp_weight.sum()
    cast = [np.asarray(a, dtype=dtype) for a in (weights, means, covariances)]
    return MixtureParams.from_covariances(*cast, model)


def _reference(X, weights, params):
    """E-step by a loop over components with scipy's Gaussian density."""
    X = X.astype(np.float64)
    n_samples = X.shape[0]
    w = np.ones(n_samples) if weights is None else weights.astype(np.float64)
    dense = params.dense_covariances().astype(np.float64)
    log_prob = np.column_stack([
        np.log(float(params.weights[k]))
        + multivariate_normal(params.means[k].astype(np.float64), dense[k]).logpdf(X).reshape(n_samples)
        for k in range(params.n_components)
    ])
    log_density = logsumexp(log_prob, axis=1)
    resp = np.exp(log_prob - log_density[:, None]) * w[:, None]
    resp_weight, means, scatters = [], [], []
    for k in range(params.n_components):
        r = resp[:, k]
        total = r.sum()
        mean = r @ X / total if total > 0 else np.zeros(X.shape[1])
        scatter = (r[:, None] * (X - mean)).T @ (X - mean)
        resp_weight.append(total)
        means.append(mean)
        scatters.append(scatter if params.covariance.full_scatter else np.diag(scatter))
    return np.array(resp_weight), np.array(means), np.array(scatters), float(w @ log_density)


def _assert_stats_match(stats, loglik, reference, rtol, atol):
    resp_weight, means, scatter, expected_loglik = reference
    np.testing.assert_allclose(stats.resp_weight, resp_weight, rtol=rtol, atol=atol)
    np.testing.assert_allclose(stats.means, means, rtol=rtol, atol=atol)
    if stats.pooled_scatter:
        # tied keeps only the sum of the per-component scatters (all its M-step needs)
        scatter = scatter.sum(axis=0, keepdims=True)
    if stats.trace_scatter:
        # spherical structures keep each scatter's trace (all their M-steps need)
        scatter = scatter.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(stats.scatter, scatter, rtol=rtol, atol=atol * np.abs(scatter).max())
    np.testing.assert_allclose(loglik, expected_loglik, rtol=rtol)


@pytest.fixture(params=["one block", "small blocks", "no numba", "whitened"])
def blocks(request, monkeypatch):
    """Run the kernels in one row block per chunk, or in many (64 rows each), or
    with the numba kernels turned off (the NumPy path), or with dense
    covariances on the whitening engine instead of the expanded products."""
    settings = {}
    if request.param == "no numba":
        monkeypatch.setenv("GAUSSMIX_NUMBA", "0")
    if request.param == "whitened":
        monkeypatch.setenv("GAUSSMIX_NUMBA", "0")
        settings["engine"] = "whitened"
    if request.param == "small blocks":
        settings["block_rows"] = 64
    with estep.config_context(**settings):
        yield request.param


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 4), (3, 7), (4, 11)])
def test_fast_path_equals_scipy_reference(model, weighted, shape, blocks):
    n_components, n_features = shape
    rng = np.random.RandomState(n_components * 100 + n_features + 7 * weighted)
    params = _random_params(model, n_components, n_features, rng, np.float64, offset=5.0)
    X = params.sample(300, rng)[0] + rng.normal(scale=0.5, size=(300, n_features))
    weights = rng.uniform(0, 3, 300) if weighted else None
    stats, loglik = accumulate(X, weights, params)
    _assert_stats_match(stats, loglik, _reference(X, weights, params), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_float32_fast_path_stays_float32_and_close(model):
    rng = np.random.RandomState(11)
    params = _random_params(model, 4, 5, rng, np.float32, offset=100.0)
    X = (params.sample(2000, rng)[0]).astype(np.float32)
    stats, loglik = accumulate(X, None, params)
    assert stats.means.dtype == np.float32 and stats.scatter.dtype == np.float32
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=2e-4, atol=1e-4)


@pytest.mark.parametrize("model", MODELS)
def test_empty_component_gives_zero_statistics(model):
    rng = np.random.RandomState(3)
    params = _random_params(model, 3, 2, rng, np.float64)
    far = params.means.copy()
    far[1] = 1e6  # no row is anywhere near: its responsibilities underflow to 0
    params = MixtureParams(params.weights, far, params.covariances, params.precisions_cholesky, model)
    X = rng.normal(size=(200, 2))
    stats, loglik = accumulate(X, None, params)
    assert stats.resp_weight[1] == 0
    assert np.all(stats.means[1] == 0)
    assert stats.pooled_scatter or np.all(stats.scatter[1] == 0)
    _assert_stats_match(stats, loglik, _reference(X, None, params), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_threaded_chunks_equal_one_pass(model, monkeypatch, blocks):
    monkeypatch.setenv("GAUSSMIX_NUM_THREADS", "3")
    rng = np.random.RandomState(5)
    params = _random_params(model, 3, 4, rng, np.float64)
    X = params.sample(1000, rng)[0]
    weights = rng.uniform(0, 2, 1000)
    whole, loglik_whole = accumulate(X, weights, params)
    chunked, loglik_chunked = accumulate_source(ArraySource(X, weights, 97), params)
    np.testing.assert_allclose(loglik_chunked, loglik_whole, rtol=1e-12)
    np.testing.assert_allclose(chunked.means, whole.means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chunked.scatter, whole.scatter, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shifted_chunks_match_reference_in_the_shifted_frame(model, dtype, blocks):
    # EM's sources hand the kernels the rows as stored and the data's mean row
    # apart (a shift): the statistics must be those of X - shift,
    # also for float32 rows far from zero.
    rng = np.random.RandomState(17)
    params = _random_params(model, 3, 4, rng, dtype)
    X = (params.sample(800, rng)[0] + 1e4).astype(dtype)
    shift = X.astype(np.float64).mean(axis=0).astype(dtype)
    weights = rng.uniform(0, 2, 800)
    stats, loglik = accumulate_source(ArraySource(X, weights, 97, shift), params)
    reference = _reference(X.astype(np.float64) - shift, weights, params)
    tolerance = 1e-9 if dtype == np.float64 else 2e-4
    _assert_stats_match(stats, loglik, reference, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("model", MODELS)
def test_a_chunk_far_from_the_data_mean_matches_reference(model, dtype):
    # Rows stored by cluster: a chunk holds the rows of one component only, far from the
    # data's mean row (the shift, about which tied and the expanded paths centre the
    # chunk), all 10^4 from zero.
    rng = np.random.RandomState(23)
    params = _random_params(model, 3, 4, rng, dtype)
    X, labels = params.sample(1500, rng)
    X = X + 1e4
    shift = X.mean(axis=0)
    far = np.argmax([np.linalg.norm(X[labels == k].mean(axis=0) - shift) for k in range(3)])
    chunk = X[labels == far].astype(dtype)
    assert np.linalg.norm(chunk.mean(axis=0) - shift) > 3
    in_frame = params.translated(1e4 - shift)  # the parameters of X - shift
    stats, loglik = accumulate(chunk, None, in_frame, shift)
    reference = _reference(chunk.astype(np.float64) - shift, None, in_frame)
    tolerance = 1e-9 if dtype == np.float64 else 2e-4
    _assert_stats_match(stats, loglik, reference, rtol=tolerance, atol=tolerance)


def test_fused_kernel_reads_the_stored_rows_without_a_shifted_copy(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv(kernels.NUMBA_VARIABLE, "1")  # whatever the environment says
    from gaussmix.estep import _compiled_fused as _numba_kernels

    seen = []
    estep = _numba_kernels._compiled_full_estep
    monkeypatch.setattr(_numba_kernels, "_compiled_full_estep", lambda X, *rest: seen.append(X) or estep(X, *rest))
    model = get_covariance_model("full")
    rng = np.random.RandomState(6)
    params = _random_params(model, 3, 2, rng, np.float64)
    X = params.sample(500, rng)[0] + 3.0
    accumulate_source(ArraySource(X, None, 250, X.mean(axis=0)), params)
    assert len(seen) == 2 and all(np.shares_memory(rows, X) for rows in seen)


@pytest.mark.parametrize("name", ["diag", "spherical", "full"])
def test_expanded_products_read_the_stored_rows_without_a_shifted_copy(name, monkeypatch):
    from gaussmix.estep import expanded

    seen = []
    moments = expanded._moments
    monkeypatch.setattr(expanded, "_moments", lambda X, *rest: seen.append(X) or moments(X, *rest))
    model = get_covariance_model(name)
    rng = np.random.RandomState(4)
    params = _random_params(model, 16, 10, rng, np.float64)  # D > 8: not the fused small-D kernel
    X = params.sample(500, rng)[0] + 3.0
    accumulate_source(ArraySource(X, None, 250, X.mean(axis=0)), params)
    assert len(seen) == 2 and all(np.shares_memory(rows, X) for rows in seen)


@pytest.mark.parametrize("model", MODELS)
def test_float32_tight_clusters_far_apart_match_reference(model):
    # Expanded quadratic forms would cancel most float32 digits here: the kernels
    # must notice and keep per-component differences.
    rng = np.random.RandomState(2)
    params = _random_params(model, 3, 2, rng, np.float64)
    tight = MixtureParams.from_covariances(
        params.weights, params.means * 1e3, params.covariances, model
    )
    X = tight.sample(600, rng)[0]
    single = MixtureParams(*(np.asarray(a, np.float32) for a in (
        tight.weights, tight.means, tight.covariances, tight.precisions_cholesky)), model)
    stats, loglik = accumulate(X.astype(np.float32), None, single)
    _assert_stats_match(stats, loglik, _reference(X.astype(np.float32), None, single), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    "shape", [(4, 1), (5, 2), (4, 3), (3, 10)], ids=["one feature", "two features", "few features", "few components"]
)
def test_fused_numba_kernel_equals_numpy_path(dtype, weighted, shape, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv(kernels.NUMBA_VARIABLE, "1")  # whatever the environment says
    model = get_covariance_model("full")
    assert estep.get_engine("fused").preferred(estep.Problem("full", np.dtype(dtype), shape[1], shape[0], True, True))
    rng = np.random.RandomState(21)
    params = _random_params(model, *shape, rng, dtype, offset=3.0)
    X = params.sample(500, rng)[0].astype(dtype)
    weights = rng.uniform(0, 2, 500).astype(dtype) if weighted else None
    if weighted:
        # Factors of user-given precisions are lower-triangular (estimated ones upper).
        precisions = model.precisions(params.precisions_cholesky)
        params = MixtureParams(
            params.weights, params.means, params.covariances,
            model.precision_cholesky_from_precisions(precisions), model,
        )
    fused, loglik_fused = accumulate(X, weights, params)
    monkeypatch.setenv("GAUSSMIX_NUMBA", "0")
    batched, loglik_batched = accumulate(X, weights, params)
    assert fused.scatter.dtype == batched.scatter.dtype == dtype
    rtol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(loglik_fused, loglik_batched, rtol=rtol)
    np.testing.assert_allclose(fused.resp_weight, batched.resp_weight, rtol=rtol)
    np.testing.assert_allclose(fused.means, batched.means, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fused.scatter, batched.scatter, rtol=rtol, atol=rtol * np.abs(batched.scatter).max())


def test_kmeans_start_on_a_sample_labels_every_row():
    from sklearn.metrics import adjusted_rand_score

    from gaussmix import init

    n_rows = init.KMEANS_MIN_ROWS + 3000
    assert init.kmeans_sample_rows(4) < n_rows  # k-means runs on a sample of these rows
    rng = np.random.RandomState(4)
    truth = rng.randint(4, size=n_rows)
    X = 50.0 * np.eye(4)[truth, :3] + rng.normal(size=(n_rows, 3))  # four far-apart clusters
    labels = init.get_initializer("kmeans")(X, None, 4, np.random.RandomState(0))
    assert labels.shape == (n_rows,)
    assert adjusted_rand_score(truth, labels) > 0.99


def test_kmeans_sample_grows_with_the_clusters_within_its_bounds(monkeypatch):
    from gaussmix import init
    from gaussmix.init import kmeans

    sizes = [init.kmeans_sample_rows(k) for k in (1, 5, 64, 65, 256, 10_000)]
    assert sizes == sorted(sizes)  # more clusters, never fewer rows
    assert sizes[0] == init.KMEANS_MIN_ROWS and sizes[-1] == init.KMEANS_MAX_ROWS
    assert init.kmeans_sample_rows(100) == 100 * init.KMEANS_ROWS_PER_CLUSTER
    # The sample is what k-means sees: it is given exactly that many rows.
    seen = []
    original = kmeans.KMeans.fit

    def recording(self, X, *args, **kwargs):
        seen.append(X.shape[0])
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(kmeans.KMeans, "fit", recording)
    X = np.random.RandomState(5).normal(size=(init.KMEANS_MIN_ROWS + 1000, 2))
    init.get_initializer("kmeans")(X, None, 3, np.random.RandomState(0))
    assert seen == [init.KMEANS_MIN_ROWS]


@pytest.mark.parametrize("model", MODELS)
def test_generic_path_in_blocks_matches_reference(model, monkeypatch):
    rng = np.random.RandomState(8)
    params = _random_params(model, 3, 2, rng, np.float64)
    X = params.sample(1000, rng)[0]
    weights = rng.uniform(0, 2, 1000)
    with estep.config_context(block_rows=256):
        stats, loglik = accumulate(X, weights, params, engine="generic")
    _assert_stats_match(stats, loglik, _reference(X, weights, params), rtol=1e-9, atol=1e-9)


def test_source_rows_give_every_worker_a_chunk_and_stay_bounded():
    from gaussmix.sources import MAX_CHUNK_ROWS, SOURCE_CHUNK_FACTOR, auto_chunk_rows, auto_source_rows

    large = min(MAX_CHUNK_ROWS, SOURCE_CHUNK_FACTOR * auto_chunk_rows(16, 16, 8))
    assert auto_source_rows(20_000, 16, 16, 8, 2) == 10_000
    # 4 equal chunks, not 3 full ones and a sliver
    assert auto_source_rows(3 * large + 4, 16, 16, 8, 2) == -(-(3 * large + 4) // 4)
    for n_samples in (200_000, 10**7, 3 * large + 17):
        rows = auto_source_rows(n_samples, 16, 16, 8, 2)
        n_chunks = -(-n_samples // rows)
        assert rows <= large and n_chunks % 2 == 0  # bounded, and the same number for each worker
        assert n_samples - (n_chunks - 1) * rows > rows - n_chunks  # the last chunk is as large as the others


@pytest.mark.parametrize("full_scatter", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_labelled_start_statistics_equal_the_one_hot_formulas(full_scatter, weighted):
    from gaussmix import init
    from gaussmix.stats import stats_from_responsibilities

    rng = np.random.RandomState(12)
    X = rng.normal(size=(300, 4)) * [1, 10, 0.1, 3] + 50
    labels = rng.randint(0, 4, size=300)
    labels[labels == 2] = 3  # component 2 gets no row
    weights = rng.uniform(0, 2, size=300) if weighted else None
    stats = init.assignment_stats(X, weights, labels, 5, full_scatter)
    one_hot = np.eye(5)[labels] * (1 if weights is None else weights[:, None])
    expected = stats_from_responsibilities(X, one_hot, full_scatter, 300.0 if weights is None else weights.sum())
    np.testing.assert_allclose(stats.resp_weight, expected.resp_weight, rtol=1e-12)
    np.testing.assert_allclose(stats.means, expected.means, rtol=1e-12)
    np.testing.assert_allclose(stats.scatter, expected.scatter, rtol=1e-10, atol=1e-10 * np.abs(expected.scatter).max())
    np.testing.assert_allclose(stats.total_weight, expected.total_weight, rtol=1e-12)
    assert stats.resp_weight[2] == 0 and stats.resp_weight[4] == 0


@pytest.mark.parametrize("full_scatter", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_labelled_statistics_equal_the_numpy_ones(full_scatter, weighted, dtype):
    pytest.importorskip("numba")
    from gaussmix import init
    from gaussmix.init import _compiled as _numba_kernels

    rng = np.random.RandomState(14)
    X = (rng.normal(size=(400, 3)) * [1, 10, 0.1] + 50).astype(dtype)
    origin = X.mean(axis=0)
    labels = rng.randint(0, 4, size=400)
    labels[labels == 2] = 3  # component 2 gets no row
    weights = rng.uniform(0, 2, size=400).astype(dtype) if weighted else None
    compiled = _numba_kernels.labelled_stats(X, weights, labels, 5, full_scatter, origin)
    expected = init.assignment_stats((X - origin).astype(np.float64), weights, labels, 5, full_scatter)
    assert compiled.means.dtype == compiled.scatter.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(compiled.resp_weight, expected.resp_weight, rtol=rtol)
    np.testing.assert_allclose(compiled.means, expected.means, rtol=rtol, atol=rtol)
    scale = np.abs(expected.scatter).max()
    np.testing.assert_allclose(compiled.scatter, expected.scatter, rtol=rtol, atol=rtol * scale)
    assert compiled.total_weight == pytest.approx(expected.total_weight, rel=1e-12)
    assert compiled.resp_weight[2] == 0 and np.all(compiled.means[2] == 0) and np.all(compiled.scatter[2] == 0)


@pytest.mark.parametrize("offset", [0.0, 1e6])
@pytest.mark.parametrize("numba", ["numba", "no numba"])
def test_nearest_centre_labels_equal_exact_distances(offset, numba, monkeypatch):
    from gaussmix.init import nearest_centre_labels

    if numba == "no numba":
        monkeypatch.setenv("GAUSSMIX_NUMBA", "0")
    else:
        pytest.importorskip("numba")

    rng = np.random.RandomState(13)
    X = rng.normal(size=(5000, 6)) * 3 + offset
    centres = X[rng.choice(5000, 7, replace=False)] + 0.5
    exact = np.argmin(((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
    labels = nearest_centre_labels(X, centres)
    assert labels.dtype == np.intp
    np.testing.assert_array_equal(labels, exact)
    # ties go to the lower index
    np.testing.assert_array_equal(nearest_centre_labels(centres[:2], np.vstack([centres[:2], centres[:2]])), [0, 1])


@pytest.mark.parametrize("name", ["diag", "spherical", "full", "tied"])
def test_an_engine_that_does_not_fold_the_shift_gets_shifted_chunks(name, monkeypatch):
    # Shifted sources hand the engines the rows as stored and the shift apart: an engine
    # that does not subtract it as it goes (folds_shift False) sees the shifted rows.
    from gaussmix.estep import generic

    seen = []
    original = generic.GenericEngine.accumulate

    def recording(self, X, sample_weight, params, shift=None):
        assert shift is None
        seen.append(X)
        return original(self, X, sample_weight, params, shift)

    monkeypatch.setattr(generic.GenericEngine, "accumulate", recording)  # observes only
    model = get_covariance_model(name)
    rng = np.random.RandomState(9)
    params = _random_params(model, 3, 4, rng, np.float64)
    X = params.sample(400, rng)[0] + 7.0
    shift = X.mean(axis=0)
    with estep.config_context(engine="generic"):
        stats, loglik = accumulate_source(ArraySource(X, None, 200, shift), params)
    # (the two chunks run on worker threads: either may come first)
    expected = [X[:200] - shift, X[200:] - shift]
    assert len(seen) == 2 and all(any(np.allclose(rows, part) for part in expected) for rows in seen)
    _assert_stats_match(stats, loglik, _reference(X - shift, None, params), rtol=1e-9, atol=1e-9)


def _tied_float32_chunk(rng, distance):
    """float32 rows of three tied clusters, each ``distance`` deviations from one point, and their parameters."""
    model = get_covariance_model("tied")
    n_features = 4
    mixing = np.eye(n_features) + 0.05 * rng.normal(size=(n_features, n_features))
    directions = rng.normal(size=(3, n_features))
    means = distance * directions / np.linalg.norm(directions, axis=1, keepdims=True) + 5.0
    labels = rng.randint(3, size=6000)
    X = (means[labels] + rng.normal(size=(6000, n_features)) @ mixing.T).astype(np.float32)
    params = MixtureParams.from_covariances(
        np.full(3, 1 / 3, dtype=np.float32), means.astype(np.float32), (mixing @ mixing.T).astype(np.float32), model
    )
    return model, params, X


def _pooled_scatter_error(stats, reference):
    """Largest error of the pooled scatter, relative to it, in the precision's metric."""
    expected = reference[2].sum(axis=0)
    factor = np.linalg.cholesky(np.linalg.inv(expected))
    pooled = stats.scatter.astype(np.float64).sum(axis=0)  # (1, D, D) pooled, or per component
    return np.max(np.abs(factor.T @ (pooled - expected) @ factor))


@pytest.mark.parametrize("distance, chosen", [(3.0, np.float32), (50.0, np.float64)])
def test_tied_float32_sums_are_float32_only_where_they_stay_accurate(distance, chosen, monkeypatch):
    # Near clusters: float32 products sum the pooled scatter (within the expanded moments'
    # tolerance). Far ones: float32 products would lose more (sum x x^T - N m m^T cancels),
    # and the rule keeps float64 products; forced to float32 they miss the tolerance.
    from gaussmix.estep import _features, pooled

    chosen_dtypes = []
    rule = pooled.sums_dtype
    monkeypatch.setattr(pooled, "sums_dtype", lambda *args: chosen_dtypes.append(rule(*args)) or chosen_dtypes[-1])
    model, params, X = _tied_float32_chunk(np.random.RandomState(0), distance)
    stats, loglik = accumulate(X, None, params)
    assert chosen_dtypes == [np.dtype(chosen)]
    reference = _reference(X, None, params)
    tolerance = _features.MOMENTS_TOLERANCE * (1 + X.shape[1])
    assert _pooled_scatter_error(stats, reference) <= tolerance
    _assert_stats_match(stats, loglik, reference, rtol=2e-4, atol=2e-4)
    if chosen is np.float64:
        monkeypatch.setattr(pooled, "sums_dtype", lambda *args: np.dtype(np.float32))
        forced, _ = accumulate(X, None, params)
        assert _pooled_scatter_error(forced, reference) > tolerance


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("by_columns", [False, True])
# shapes (K, b): partial tiles of the compiled transposing copy on both axes, whole
# tiles only, and a single value
@pytest.mark.parametrize("n_components,n_rows", [(7, 300), (16, 64), (33, 95), (1, 1)])
def test_per_component_product_equals_the_plain_product(dtype, by_columns, n_components, n_rows):
    # float32 rows stored row by row take another BLAS order and a transposed copy.
    rng = np.random.RandomState(0)
    coefficients = rng.normal(size=(n_components, 33)).astype(dtype)
    rows = rng.normal(size=(n_rows, 33)).astype(dtype)
    if by_columns:
        rows = np.ascontiguousarray(rows.T).T
    expected = coefficients.astype(np.float64) @ rows.T.astype(np.float64)
    tolerance = 30 * np.finfo(dtype).eps * np.abs(coefficients) @ np.abs(rows.T)
    result = kernels.per_component_product(coefficients, rows)
    assert result.shape == (n_components, n_rows) and result.dtype == dtype and result.flags.c_contiguous
    assert np.all(np.abs(result - expected) <= tolerance)
    out = np.zeros((n_components, n_rows + 100), dtype=dtype)
    assert kernels.per_component_product(coefficients, rows, out=out[:, 50:50 + n_rows]) is not None
    assert np.all(np.abs(out[:, 50:50 + n_rows] - expected) <= tolerance)
    assert not out[:, :50].any() and not out[:, 50 + n_rows:].any()


@pytest.mark.parametrize("shape", [(1, 1), (31, 15), (32, 16), (100, 37), (2730, 64)])
def test_compiled_transposing_copy_equals_numpy_transpose(shape):
    from gaussmix.estep import _compiled_layout as _numba_kernels

    if _numba_kernels.numba is None:
        pytest.skip("numba is not installed")
    values = np.random.RandomState(1).normal(size=shape).astype(np.float32)
    out = np.full(shape[::-1], np.nan, dtype=np.float32)
    _numba_kernels.transpose_into(values, out)
    np.testing.assert_array_equal(out, values.T)
    # into a strided view, leaving the rest alone
    wider = np.zeros((shape[1], shape[0] + 9), dtype=np.float32)
    _numba_kernels.transpose_into(values, wider[:, 4:4 + shape[0]])
    np.testing.assert_array_equal(wider[:, 4:4 + shape[0]], values.T)
    assert not wider[:, :4].any() and not wider[:, 4 + shape[0]:].any()


@pytest.mark.parametrize("weighted", [False, True])
def test_mean_row_of_float32_rows_far_from_zero_is_exact(weighted):
    # NumPy's mean along the rows adds float32 rows one after another in float32: on these
    # rows it is off by several of their standard deviations. The EM frame's origin must not be.
    rng = np.random.RandomState(1)
    X = (1000.0 + rng.normal(scale=1.0, size=(1_000_000, 2))).astype(np.float32)
    weights = rng.uniform(0, 2, X.shape[0]) if weighted else None
    expected = np.average(X.astype(np.float64), axis=0, weights=weights)
    if not weighted:
        assert np.max(np.abs(X.mean(axis=0) - expected)) > 5  # what the origin used to be (8.9)
    result = kernels.mean_row(X, weights)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=np.finfo(np.float32).eps)
    np.testing.assert_allclose(kernels.mean_row(X, weights, dtype=np.float64), expected, rtol=1e-13)
