"""Out-of-core fits: files, memmaps, HDF5, Zarr and chunk sources equal the in-memory fit."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from gaussmix import BayesianGaussianMixture, GaussianMixture
from gaussmix.streaming import INIT_SAMPLE_ROWS, Reservoir

from .conftest import (COVARIANCE_TYPES, assert_same_bayesian_fit, assert_same_fit, fit_quietly, make_blobs,
                       starting_point)


class ListSource:
    """A chunk source over in-memory pieces (the documented protocol, nothing more)."""

    def __init__(self, X, weights=None, chunk_rows=300):
        self.n_features = X.shape[1]
        self.pieces = [
            (X[i:i + chunk_rows], None if weights is None else weights[i:i + chunk_rows])
            for i in range(0, len(X), chunk_rows)
        ]

    def chunks(self):
        return iter(self.pieces)





@pytest.fixture(scope="module")
def data():
    return make_blobs(3000, 3, 3, seed=11)[0]


@pytest.fixture(scope="module")
def npy_path(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("ooc") / "X.npy"
    np.save(path, data)
    return path


def _as_kind(kind, X, tmp_path):
    if kind == "npy":
        path = tmp_path / "X.npy"
        np.save(path, X)
        return str(path)
    if kind == "memmap":
        array = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=X.dtype, shape=X.shape)
        array[:] = X
        return array
    if kind == "hdf5":
        h5py = pytest.importorskip("h5py")
        handle = h5py.File(tmp_path / "X.h5", "w")
        return handle.create_dataset("X", data=X, chunks=(256, X.shape[1]))
    if kind == "zarr":
        zarr = pytest.importorskip("zarr")
        array = zarr.open_array(str(tmp_path / "X.zarr"), mode="w", shape=X.shape, chunks=(500, X.shape[1]), dtype=X.dtype)
        array[:] = X
        return array
    return ListSource(X)


@pytest.mark.parametrize("kind, covariance_type", [
    ("npy", "full"), ("memmap", "tied"), ("hdf5", "diag"), ("zarr", "spherical"), ("chunks", "full"),
    ("npy", "VEV"),  # an mclust structure whose M-step iterates from the previous parameters
])
def test_streamed_fit_equals_in_memory_fit_from_the_same_start(kind, covariance_type, data, tmp_path):
    kwargs = dict(n_components=3, covariance_type=covariance_type, tol=0, max_iter=25, chunk_size=700,
                  **starting_point(data, covariance_type))
    streamed = fit_quietly(GaussianMixture, _as_kind(kind, data, tmp_path), **kwargs)
    assert_same_fit(streamed, fit_quietly(GaussianMixture, data, **kwargs))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sampled_start_then_em_equals_in_memory_em_from_that_start(covariance_type, npy_path, data):
    # The out-of-core start (k-means on a reservoir sample, then a streamed pass) seen with
    # max_iter=0; in-memory EM from exactly that start must give the streamed fit.
    common = dict(n_components=3, covariance_type=covariance_type, random_state=3, chunk_size=512)
    start = fit_quietly(GaussianMixture, str(npy_path), max_iter=0, **common)
    streamed = fit_quietly(GaussianMixture, str(npy_path), tol=0, max_iter=20, **common)
    in_memory = fit_quietly(GaussianMixture, data, n_components=3, covariance_type=covariance_type, tol=0, max_iter=20,
                     weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
    assert_same_fit(streamed, in_memory)


def test_weighted_sources_equal_weighted_in_memory_fit(data, tmp_path):
    weights = np.random.RandomState(0).uniform(0, 3, size=len(data))
    weights[::7] = 0
    kwargs = dict(n_components=3, tol=0, max_iter=15, chunk_size=400, **starting_point(data, "full"))
    expected = fit_quietly(GaussianMixture, data, sample_weight=weights, **kwargs)
    assert_same_fit(fit_quietly(GaussianMixture, _as_kind("memmap", data, tmp_path), sample_weight=weights, **kwargs), expected)
    assert_same_fit(fit_quietly(GaussianMixture, ListSource(data, weights, chunk_rows=333), **kwargs), expected)


def test_inference_streams_and_matches_in_memory(data, npy_path):
    model = GaussianMixture(3, random_state=0, chunk_size=256).fit(data)
    path = str(npy_path)
    np.testing.assert_allclose(model.predict_proba(path), model.predict_proba(data), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(model.score_samples(path), model.score_samples(data), rtol=1e-12)
    np.testing.assert_array_equal(model.predict(path), model.predict(data))
    np.testing.assert_allclose(model.score(path), model.score(data), rtol=1e-12)
    np.testing.assert_allclose(model.bic(path), model.bic(data), rtol=1e-12)
    np.testing.assert_allclose(model.aic(ListSource(data)), model.aic(data), rtol=1e-12)


def test_weighted_chunk_source_score_is_the_weighted_mean(data):
    model = GaussianMixture(3, random_state=0).fit(data)
    weights = np.random.RandomState(1).uniform(0, 2, size=len(data))
    expected = np.average(model.score_samples(data), weights=weights)
    np.testing.assert_allclose(model.score(ListSource(data, weights)), expected, rtol=1e-12)


def test_float32_memmap_fits_in_float32_near_the_float64_fit(data, tmp_path):
    shifted = (data + 1e4).astype(np.float32)
    kwargs = dict(n_components=3, tol=0, max_iter=20, **starting_point(shifted.astype(np.float64), "full"))
    single = fit_quietly(GaussianMixture, _as_kind("memmap", shifted, tmp_path), **kwargs)
    double = fit_quietly(GaussianMixture, shifted.astype(np.float64), **kwargs)
    assert single.means_.dtype == np.float32
    np.testing.assert_allclose(single.lower_bound_, double.lower_bound_, rtol=1e-4)


def test_nan_is_reported_with_global_row_numbers(data, tmp_path):
    bad = data.copy()
    bad[1234, 1] = np.nan
    bad[1240, 0] = np.inf
    bad[2999, 0] = np.inf  # in a later chunk
    model = GaussianMixture(2, random_state=0).fit(data)
    with pytest.raises(ValueError, match=r"row\(s\) 1234"):
        model.predict(ListSource(bad, chunk_rows=1000))


@pytest.mark.parametrize("kind", ["npy", "memmap", "chunks"])
def test_non_finite_rows_of_every_chunk_are_reported_as_in_memory(data, tmp_path, kind):
    bad = data.copy()
    bad[[1234, 1500, 2999], 1] = np.nan  # three chunks of 500 rows
    bad[[10, 1240, 2000, 2100, 2200, 2300], 0] = np.inf  # six rows: the message shows five
    with pytest.raises(ValueError) as in_memory:
        GaussianMixture(2).fit(bad)
    source = ListSource(bad, chunk_rows=500) if kind == "chunks" else _as_kind(kind, bad, tmp_path)
    with pytest.raises(ValueError) as streamed:
        GaussianMixture(2, chunk_size=500).fit(source)
    assert "3 NaN value(s) in row(s) 1234, 1500, 2999 (0-based)" in str(in_memory.value)
    assert "6 infinite (inf) value(s) in row(s) 10, 1240, 2000, 2100, 2200, ..." in str(in_memory.value)
    assert str(streamed.value) == str(in_memory.value)


@pytest.mark.parametrize("kind", ["npy", "memmap", "chunks"])
def test_complex_data_is_refused_as_in_memory(data, tmp_path, kind):
    X = data + 1j
    with pytest.raises(ValueError, match="Complex data not supported"):
        GaussianMixture(2).fit(X)
    source = ListSource(X) if kind == "chunks" else _as_kind(kind, X, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning: the imaginary part was dropped
        with pytest.raises(ValueError, match=r"holds complex numbers \(dtype complex128\); gaussmix fits real data"):
            GaussianMixture(2).fit(source)


@pytest.mark.parametrize("order", ["C", "F"])
def test_truncated_npy_file_is_named(data, tmp_path, order):
    path = tmp_path / "cut.npy"
    np.save(path, np.asarray(data, order=order))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 8 * 100])
    model = GaussianMixture(2, random_state=0).fit(data)
    for call in (GaussianMixture(2).fit, model.predict):
        with pytest.raises(ValueError, match=r"cut\.npy' is truncated: its header declares an array of shape \(3000, 3\)"):
            call(str(path))


def test_negative_chunk_weight_is_reported_with_global_row(data):
    weights = np.ones(len(data))
    weights[2500] = -1
    with pytest.raises(ValueError, match=r"non-negative; 1 negative value\(s\) at row\(s\) 2500"):
        GaussianMixture(2).fit(ListSource(data, weights))


class OneShotSource:
    n_features = 3

    def __init__(self, X):
        self._iterator = iter([(X, None)])

    def chunks(self):
        return self._iterator


def test_source_that_cannot_be_iterated_twice_is_caught(data):
    with pytest.raises(ValueError, match="chunks\\(\\) must return a fresh iterator"):
        GaussianMixture(2).fit(OneShotSource(data))


@pytest.mark.parametrize("make_input, message", [
    (lambda tmp: str(tmp / "missing.npy"), "no such file"),
    (lambda tmp: (np.save(tmp / "v.npy", np.arange(10.0)), str(tmp / "v.npy"))[1], "expected a 2-D array"),
    (lambda tmp: ((tmp / "t.npy").write_text("hello"), str(tmp / "t.npy"))[1], "is not a .npy file"),
])
def test_bad_files_get_clear_errors(make_input, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(make_input(tmp_path))


def test_misuse_of_weights_and_features(data, npy_path):
    with pytest.raises(ValueError, match="sample_weight cannot be combined with a chunk source"):
        GaussianMixture(2).fit(ListSource(data), sample_weight=np.ones(len(data)))
    with pytest.raises(ValueError, match=r"sample_weight must be an array of shape \(3000,\)"):
        GaussianMixture(2).fit(str(npy_path), sample_weight=np.ones(5))
    model = GaussianMixture(2, random_state=0).fit(str(npy_path))
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.predict(ListSource(data[:, :2]))
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(ListSource(data[:4]))


# ------------------------------------------------------------------ reservoir
def _reservoir(X, weights, capacity, seed, chunk_rows):
    parts = [
        Reservoir.of_chunk(X[i:i + chunk_rows], None if weights is None else weights[i:i + chunk_rows], i, capacity, seed)
        for i in range(0, len(X), chunk_rows)
    ]
    return parts


def test_reservoir_merge_order_does_not_matter():
    X = np.arange(2000.0).reshape(1000, 2)
    weights = np.random.RandomState(0).uniform(0, 1, 1000)
    parts = _reservoir(X, weights, 50, seed=7, chunk_rows=64)
    forward = functools.reduce(Reservoir.merge, parts).in_row_order()
    backward = functools.reduce(Reservoir.merge, parts[::-1]).in_row_order()
    pairs = parts
    while len(pairs) > 1:
        pairs = [a.merge(b) if b is not None else a for a, b in zip(pairs[::2], pairs[1::2] + [None])]
    for other in (backward, pairs[0].in_row_order()):
        np.testing.assert_array_equal(other.row_ids, forward.row_ids)
    assert len(forward.row_ids) == 50 and np.all(np.diff(forward.row_ids) > 0)
    np.testing.assert_array_equal(forward.rows, X[forward.row_ids])


def test_reservoir_draws_rows_in_proportion_to_their_weights():
    # With capacity 1, A-Res picks row i with probability w_i / sum(w) (closed form).
    X = np.zeros((4, 1))
    weights = np.array([1.0, 2.0, 0.0, 5.0])
    n_draws = 4000
    picks = [functools.reduce(Reservoir.merge, _reservoir(X, weights, 1, seed, 2)).row_ids[0] for seed in range(n_draws)]
    frequencies = np.bincount(picks, minlength=4) / n_draws
    expected = weights / weights.sum()
    assert frequencies[2] == 0
    np.testing.assert_allclose(frequencies, expected, atol=4 * np.sqrt(0.25 / n_draws))


# ------------------------------------------------------- memory-limited fit
_LIMITED_FIT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from gaussmix import GaussianMixture

    path, headroom = sys.argv[1], int(sys.argv[2])
    # Load every lazily imported module (k-means, BLAS) before the limit.
    GaussianMixture(2, random_state=0).fit(np.random.RandomState(0).normal(size=(200, 4)))
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    used = int(status["VmSize"].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (used + headroom, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        np.load(path)
        whole_file_fits = True
    except MemoryError:
        whole_file_fits = False
    model = GaussianMixture(2, random_state=0, max_iter=3, tol=0, chunk_size=2048).fit(path)
    print(json.dumps({"whole_file_fits": whole_file_fits, "means": model.means_.tolist(),
                      "weights": model.weights_.tolist()}))
""")


def test_fit_of_a_file_four_times_larger_than_the_memory_allowed(tmp_path):
    headroom = 8 * 2**20
    n_features, n_rows = 4, 4 * headroom // 32 + 1
    true_means = np.array([[-5.0, 0, 0, 0], [5.0, 0, 0, 0]])
    path = tmp_path / "big.npy"
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n_rows, n_features))
    rng = np.random.default_rng(0)
    for start in range(0, n_rows, 2**18):
        stop = min(start + 2**18, n_rows)
        array[start:stop] = true_means[rng.integers(0, 2, stop - start)] + rng.standard_normal((stop - start, n_features))
    array.flush()
    del array
    assert path.stat().st_size > 4 * headroom
    # One E-step thread: each worker thread reserves a stack of address space,
    # which RLIMIT_AS counts although it is not memory the data needs.
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GAUSSMIX_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _LIMITED_FIT, str(path), str(headroom)],
        capture_output=True, text=True, env={**__import__("os").environ, **env}, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert not report["whole_file_fits"], "the memory limit did not bind: the test proves nothing"
    means = np.asarray(report["means"])
    np.testing.assert_allclose(means[np.argsort(means[:, 0])], true_means, atol=0.01)
    np.testing.assert_allclose(report["weights"], 0.5, atol=0.01)


def test_integer_file_is_fitted_in_float64_like_the_float_array(tmp_path):
    X = np.round(make_blobs(600, 2, 2, seed=5)[0] * 10)
    path = tmp_path / "int.npy"
    np.save(path, X.astype(np.int32))
    kwargs = dict(n_components=2, tol=0, max_iter=10, **starting_point(X, "full", 2))
    streamed = fit_quietly(GaussianMixture, str(path), **kwargs)
    assert streamed.means_.dtype == np.float64
    assert_same_fit(streamed, fit_quietly(GaussianMixture, X, **kwargs))


class CountingSource(ListSource):
    def __init__(self, X, **kwargs):
        super().__init__(X, **kwargs)
        self.n_passes = 0

    def chunks(self):
        self.n_passes += 1
        return super().chunks()


@pytest.mark.parametrize("init", ["means_init", "kmeans"])
def test_each_iteration_streams_the_data_once(data, init):
    source = CountingSource(data, chunk_rows=500)
    extra = starting_point(data, "full") if init == "means_init" else dict(random_state=0)
    fit_quietly(GaussianMixture, source, n_components=3, tol=0, max_iter=7, **extra)
    # a peek at the first chunk for the dtype, the validating/mean/sample pass, the start pass, 7 iterations
    assert source.n_passes == 1 + 1 + 1 + 7


def test_inference_on_a_file_names_every_bad_row_not_only_the_first_chunks(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 2))
    model = GaussianMixture(2, chunk_size=10, random_state=0).fit(X)
    X[3, 0], X[57, 1] = np.nan, np.inf  # in the first and the sixth chunk
    path = tmp_path / "bad.npy"
    np.save(path, X)
    for method in (model.predict, model.score_samples, model.predict_proba):
        with pytest.raises(ValueError) as info:
            method(str(path))
        assert re.search(r"\b3\b", str(info.value)) and re.search(r"\b57\b", str(info.value))


# ------------------------------------------------------------------ BayesianGaussianMixture
def _warm_copy(model, **params):
    """A copy of a fitted model that continues from its posterior (warm_start) with ``params``."""
    import copy

    twin = copy.deepcopy(model)
    twin.set_params(warm_start=True, **params)
    return twin


@pytest.mark.parametrize("kind, covariance_type", [
    *[("npy", covariance_type) for covariance_type in COVARIANCE_TYPES],
    ("memmap", "tied"), ("hdf5", "diag"), ("zarr", "spherical"), ("chunks", "full"),
])
def test_bayesian_streamed_fit_equals_in_memory_fit(kind, covariance_type, data, tmp_path):
    # 3000 rows: the reservoir sample holds them all, so k-means sees the in-memory rows and
    # draws what it draws there: the same start from the same random_state, then the same EM
    settings = dict(n_components=4, covariance_type=covariance_type, random_state=0, tol=0, max_iter=25,
                    chunk_size=700)
    streamed = fit_quietly(BayesianGaussianMixture, _as_kind(kind, data, tmp_path), **settings)
    in_memory = fit_quietly(BayesianGaussianMixture, data, **settings)
    assert streamed.n_iter_ == 25 and not hasattr(streamed, "feature_names_in_")
    assert_same_bayesian_fit(streamed, in_memory)


@pytest.mark.parametrize("init_params", ["k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("prior_type", ["dirichlet_process", "dirichlet_distribution"])
def test_bayesian_streamed_starts_equal_in_memory_starts(init_params, prior_type, data, npy_path):
    settings = dict(n_components=4, covariance_type="diag", init_params=init_params, random_state=3, n_init=2,
                    weight_concentration_prior_type=prior_type, tol=0, max_iter=10, chunk_size=512)
    assert_same_bayesian_fit(fit_quietly(BayesianGaussianMixture, ListSource(data, chunk_rows=333), **settings),
                             fit_quietly(BayesianGaussianMixture, data, **settings))
    start = dict(settings, max_iter=0)
    assert_same_bayesian_fit(fit_quietly(BayesianGaussianMixture, str(npy_path), **start),
                             fit_quietly(BayesianGaussianMixture, data, **start))


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_bayesian_sampled_start_then_em_equals_in_memory_em_from_that_start(init_params, tmp_path):
    # More rows than the reservoir holds: the initialiser runs on a sample (k-means' centres then
    # label every row in one more pass); in-memory EM continuing from that start must agree.
    X = make_blobs(INIT_SAMPLE_ROWS + 4000, 2, 3, seed=5)[0]
    path = _as_kind("npy", X, tmp_path)
    settings = dict(n_components=3, covariance_type="full", init_params=init_params, random_state=1, tol=0)
    start = fit_quietly(BayesianGaussianMixture, path, max_iter=0, **settings)
    streamed = fit_quietly(BayesianGaussianMixture, path, max_iter=8, **settings)
    continued = _warm_copy(start, max_iter=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        continued.fit(X)
    assert_same_bayesian_fit(streamed, continued)
    # The Dirichlet process's first concentrations are 1 + N_k: k-means labels every row,
    # k-means++ only the K rows it chose
    counted = start.weight_concentration_[0].sum() - 3
    assert counted == pytest.approx(len(X) if init_params == "kmeans" else 3, rel=1e-9)


def test_bayesian_weighted_sources_equal_weighted_in_memory_fit(data, tmp_path):
    rng = np.random.RandomState(0)
    positive = rng.uniform(0.5, 3, size=len(data))
    settings = dict(n_components=3, covariance_type="full", random_state=0, tol=0, max_iter=15, chunk_size=400)
    # Every row weighs: the sample is the data with its weights, so the start is the in-memory one.
    expected = fit_quietly(BayesianGaussianMixture, data, sample_weight=positive, **settings)
    assert_same_bayesian_fit(
        fit_quietly(BayesianGaussianMixture, _as_kind("memmap", data, tmp_path), sample_weight=positive, **settings),
        expected)
    assert_same_bayesian_fit(fit_quietly(BayesianGaussianMixture, ListSource(data, positive, 333), **settings),
                             expected)
    # Rows of weight 0 are not in the sample (k-means sees other rows): the same EM from a shared start.
    some_zero = positive.copy()
    some_zero[::7] = 0
    start = fit_quietly(BayesianGaussianMixture, data, sample_weight=some_zero, **dict(settings, max_iter=0))
    in_memory, streamed = _warm_copy(start), _warm_copy(start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        in_memory.fit(data, sample_weight=some_zero)
        streamed.fit(ListSource(data, some_zero, 333))
    assert_same_bayesian_fit(streamed, in_memory)
    # the default priors are the weighted moments, as in memory (and unlike unweighted ones)
    assert not np.allclose(in_memory.covariance_prior_, np.cov(data.T), rtol=1e-3)


def test_bayesian_inference_streams_and_matches_in_memory(data, npy_path):
    model = fit_quietly(BayesianGaussianMixture, data, n_components=3, random_state=0, chunk_size=256)
    path = str(npy_path)
    np.testing.assert_allclose(model.predict_proba(path), model.predict_proba(data), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(model.score_samples(path), model.score_samples(data), rtol=1e-12)
    np.testing.assert_array_equal(model.predict(path), model.predict(data))
    np.testing.assert_allclose(model.score(path), model.score(data), rtol=1e-12)
    np.testing.assert_array_equal(model.fit_predict(path), model.fit(path).predict(data))
    weights = np.random.RandomState(1).uniform(0, 2, size=len(data))
    expected = np.average(model.score_samples(data), weights=weights)
    np.testing.assert_allclose(model.score(ListSource(data, weights)), expected, rtol=1e-12)


def test_bayesian_float32_memmap_fits_as_the_float32_array(data, tmp_path):
    single = data.astype(np.float32)
    settings = dict(n_components=3, random_state=0, tol=0, max_iter=20, chunk_size=500)
    streamed = fit_quietly(BayesianGaussianMixture, _as_kind("memmap", single, tmp_path), **settings)
    in_memory = fit_quietly(BayesianGaussianMixture, single, **settings)
    double = fit_quietly(BayesianGaussianMixture, data, **settings)
    # float32 E-steps (chunks summed in another order), float64 posterior as scikit-learn's
    assert streamed.means_.dtype == in_memory.means_.dtype == np.float64
    assert_same_bayesian_fit(streamed, in_memory, rtol=1e-5)
    np.testing.assert_allclose(streamed.lower_bound_, double.lower_bound_, rtol=1e-5)
    assert streamed.score_samples(single).dtype == np.float64


def test_bayesian_bad_streamed_input_gets_clear_errors(data, npy_path, tmp_path):
    bad = data.copy()
    bad[1234, 1] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN value\(s\) in row\(s\) 1234"):
        BayesianGaussianMixture(n_components=2).fit(_as_kind("npy", bad, tmp_path))
    with pytest.raises(ValueError, match="no such file"):
        BayesianGaussianMixture().fit(str(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="sample_weight cannot be combined with a chunk source"):
        BayesianGaussianMixture().fit(ListSource(data), sample_weight=np.ones(len(data)))
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        BayesianGaussianMixture(n_components=5).fit(ListSource(data[:4]))
    with pytest.raises(ValueError, match="needs a total weight above 1"):
        BayesianGaussianMixture().fit(str(npy_path), sample_weight=np.full(len(data), 1e-4))
    with pytest.raises(ValueError, match="chunks\\(\\) must return a fresh iterator"):
        BayesianGaussianMixture().fit(OneShotSource(data))
    model = fit_quietly(BayesianGaussianMixture, str(npy_path), n_components=2, random_state=0, max_iter=5)
    with pytest.raises(ValueError, match="X has 2 features, but BayesianGaussianMixture is expecting 3"):
        model.predict(ListSource(data[:, :2]))
    with pytest.raises(ValueError, match=r"row\(s\) 1234"):
        model.score_samples(ListSource(bad))
