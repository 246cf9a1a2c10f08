"""The compiled (numba) responsibilities kernel against NumPy's exp and SciPy's logsumexp."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from gaussmix.estep import _kernels as kernels

numba_kernels = pytest.importorskip("gaussmix.estep._compiled_responsibilities")
vector_kernels = pytest.importorskip("gaussmix.estep._compiled_vector")
if numba_kernels.numba is None:
    pytest.skip("numba is not installed", allow_module_level=True)


def _compiled_responsibilities(log_prob, sample_weight=None):
    """Unweighted responsibilities in place by the compiled kernel; the log-densities, in ``log_prob``'s dtype."""
    log_density = np.empty(log_prob.shape[1])
    numba_kernels.weighted_responsibilities(log_prob, sample_weight, log_density=log_density)
    return log_density.astype(log_prob.dtype, copy=False)


def _reference(log_prob):
    """Responsibilities and log-densities of (K, n) log-probabilities, in float64 by SciPy."""
    log_prob = log_prob.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_density = logsumexp(log_prob, axis=0)
        return np.exp(log_prob - log_density), log_density


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(1, 7), (5, 1000), (64, 333)])
def test_compiled_responsibilities_equal_the_reference_and_the_numpy_path(dtype, shape):
    rng = np.random.RandomState(sum(shape))
    # Spreads from a few units to hundreds: many responsibilities underflow, some are exactly 1.
    log_prob = (rng.normal(size=shape) * rng.choice([1.0, 30.0, 300.0], size=shape[1])).astype(dtype)
    log_prob[0, ::3] = -np.inf  # an empty component (log weight -inf); with K = 1 a row of density 0
    expected_resp, expected_log_density = _reference(log_prob)
    resp = log_prob.copy()
    with np.errstate(divide="ignore"):
        log_density = _compiled_responsibilities(resp)
    assert resp.dtype == log_density.dtype == dtype
    # e^(x - max) / sum against SciPy's e^(x - logsumexp): the arguments' rounding (eps |x|,
    # |x| up to ~1500) bounds the difference; below the smallest normal number both count as 0.
    rtol = 5e-13 if dtype == np.float64 else 1e-4
    atol = 2 * float(np.finfo(dtype).tiny) * np.e
    np.testing.assert_allclose(resp, expected_resp, rtol=rtol, atol=atol)
    np.testing.assert_allclose(log_density, expected_log_density, rtol=rtol)
    # Against the NumPy path (the same formula), only exp's last bit may differ in float64; in
    # float32 both round x - max to float32 (eps |x|), and their exps differ in the last bits.
    plain = log_prob.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        plain_log_density = kernels.responsibilities_in_place(plain)
    rtol = 1e-14 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(resp, plain, rtol=rtol, atol=atol)
    np.testing.assert_allclose(log_density, plain_log_density, rtol=rtol)


def test_compiled_exp_is_accurate_over_the_whole_range():
    # Column j holds (x_j, 0): the responsibility of the first row is e^x / (e^x + 1).
    x = np.linspace(-707.9, 0, 200_001)
    log_prob = np.vstack([x, np.zeros_like(x)])
    _compiled_responsibilities(log_prob)
    expected = np.exp(x) / (np.exp(x) + 1)
    assert np.max(np.abs(log_prob[0] - expected) / expected) < 4 * np.finfo(np.float64).eps


def test_compiled_float32_exp_is_accurate_over_the_whole_range():
    # float32 log-densities are computed on in float32: e^x to a few float32 ulps down to
    # the smallest normal float32, then 0 (as NumPy's float32 path counts them).
    x = np.linspace(-87.3, 0, 400_001).astype(np.float32)
    log_prob = np.vstack([x, np.zeros_like(x)])
    _compiled_responsibilities(log_prob)
    wide = x.astype(np.float64)
    expected = np.exp(wide) / (np.exp(wide) + 1)
    normal = wide > -87  # above log(smallest normal float32): computed, not flushed
    error = np.abs(log_prob[0, normal] - expected[normal]) / expected[normal]
    assert np.max(error) < 4 * np.finfo(np.float32).eps
    assert np.all(log_prob[0, ~normal] == 0)
    assert log_prob.dtype == np.float32


def test_compiled_log_is_accurate_over_the_whole_range():
    # The fused kernel's log-likelihood takes a log a row, of a total in [1, K] (or 0
    # for a row of density 0): within 2 ulp of NumPy's log from the smallest to the
    # largest normal number, at the reduction's edges, and 0, inf, NaN as NumPy has them.
    rng = np.random.RandomState(0)
    edges = [1.0, 2.0, 0.5, np.sqrt(2), np.nextafter(np.sqrt(2), 2), np.nextafter(np.sqrt(2), 1),
             np.finfo(np.float64).tiny, np.finfo(np.float64).max]
    x = np.concatenate([np.exp(rng.uniform(-708, 709.7, 200_000)), rng.uniform(1, 64, 100_000), edges])
    values = x.copy()
    vector_kernels._log_in_place(values, np.empty_like(values))
    expected = np.log(x)
    exact_zero = expected == 0
    assert np.all(values[exact_zero] == 0)
    assert np.max(np.abs(values - expected)[~exact_zero] / np.spacing(np.abs(expected[~exact_zero]))) <= 2
    special = np.array([0.0, -0.0, np.inf, np.nan])
    vector_kernels._log_in_place(special, np.empty(4))
    np.testing.assert_array_equal(special, [-np.inf, -np.inf, np.inf, np.nan])


def test_compiled_float32_log_is_accurate_over_the_whole_range():
    # float32 totals take a float32 log: within 3 float32 ulp of the exact log (NumPy's
    # float32 log measured 3.2 here), 0 where it is 0, and 0, inf, NaN as NumPy has them.
    rng = np.random.RandomState(1)
    tiny, largest = np.finfo(np.float32).tiny, np.finfo(np.float32).max
    root = np.float32(np.sqrt(2))  # where the reduction halves the mantissa
    edges = [1.0, 2.0, 0.5, root, np.nextafter(root, np.float32(2)), np.nextafter(root, np.float32(1)), tiny, largest]
    x = np.concatenate([
        np.exp(rng.uniform(np.log(tiny), np.log(largest), 200_000)), rng.uniform(1, 64, 100_000),
        rng.uniform(0.7, 1.5, 100_000), edges,
    ]).astype(np.float32)
    values = x.copy()
    vector_kernels._log_in_place32(values, np.empty_like(values))
    assert values.dtype == np.float32
    exact = np.log(x.astype(np.float64))
    zero = exact == 0
    assert np.all(values[zero] == 0)
    ulp = np.spacing(np.abs(exact[~zero]).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(values[~zero] - exact[~zero]) / ulp) <= 3
    special = np.array([0.0, -0.0, np.inf, np.nan], dtype=np.float32)
    vector_kernels._log_in_place32(special, np.empty(4, dtype=np.float32))
    np.testing.assert_array_equal(special, [-np.inf, -np.inf, np.inf, np.nan])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_and_numpy_paths_agree_on_degenerate_columns(dtype):
    log_prob = np.array([[-np.inf, np.nan, 0.0, np.inf], [-np.inf, 0.0, -1e30, 1.0]], dtype=dtype)
    compiled = log_prob.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        compiled_density = _compiled_responsibilities(compiled)
    plain = log_prob.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        plain_density = kernels.responsibilities_in_place(plain)
    np.testing.assert_array_equal(np.isnan(compiled), np.isnan(plain))
    np.testing.assert_allclose(compiled[:, 2], plain[:, 2])
    np.testing.assert_array_equal(np.isnan(compiled_density), np.isnan(plain_density))


def test_numba_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(kernels.NUMBA_VARIABLE, "0")
    assert kernels._compiled_kernels() is None
    monkeypatch.setenv(kernels.NUMBA_VARIABLE, "1")
    assert kernels._compiled_kernels() is numba_kernels


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_fused_weighted_responsibilities_equal_the_numpy_steps(dtype, weighted, monkeypatch):
    rng = np.random.RandomState(7)
    n_components, n_samples = 6, 777
    log_prob = (rng.normal(size=(n_components, n_samples)) * 20).astype(dtype)
    offsets = rng.normal(size=n_components) * 5
    offsets[2] = -np.inf  # an empty component
    weights = rng.uniform(0, 3, n_samples) if weighted else None
    results = {}
    for setting in ("1", "0"):
        monkeypatch.setenv(kernels.NUMBA_VARIABLE, setting)
        resp = log_prob.copy()
        resp_weight, total_weight, loglik = kernels.weighted_responsibilities(resp, weights, -0.5, offsets)
        results[setting] = resp, resp_weight, total_weight, loglik
    compiled, plain = results["1"], results["0"]
    rtol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(compiled[0], plain[0], rtol=rtol, atol=float(np.finfo(dtype).tiny) * 8)
    np.testing.assert_allclose(compiled[1], plain[1], rtol=rtol)
    assert compiled[1][2] == 0 and compiled[2] == plain[2]
    np.testing.assert_allclose(compiled[3], plain[3], rtol=rtol)
    # and against SciPy: w_n p(k | x_n) from the affine log-densities
    expected, log_density = _reference(-0.5 * log_prob.astype(np.float64) + offsets[:, None])
    w = np.ones(n_samples) if weights is None else weights
    np.testing.assert_allclose(compiled[0], expected * w, rtol=1e-11 if dtype == np.float64 else 1e-5, atol=1e-30)
    np.testing.assert_allclose(compiled[3], w @ log_density, rtol=1e-12 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_sums_equal_the_numpy_path(dtype, weighted, monkeypatch):
    # The kernel sums the weights and the weighted log-densities itself, tile by tile
    # (1000 rows: four tiles, the last one short), with offsets and a scale.
    rng = np.random.RandomState(5)
    log_prob = (rng.normal(size=(6, 1000)) * 20).astype(dtype)
    weights = rng.uniform(0.1, 3.0, 1000) if weighted else None
    offsets, scale = rng.normal(size=6), -0.5
    compiled, plain = log_prob.copy(), log_prob.copy()
    log_density = np.empty(1000)
    resp_weight, total_weight, loglik = numba_kernels.weighted_responsibilities(
        compiled, weights, scale, offsets, log_density=log_density
    )
    monkeypatch.setenv(kernels.NUMBA_VARIABLE, "0")
    plain_weight, plain_total, plain_loglik = kernels.weighted_responsibilities(plain, weights, scale, offsets)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    expected_total = 1000.0 if weights is None else np.sum(weights)
    assert total_weight == pytest.approx(expected_total, rel=1e-14)
    assert plain_total == pytest.approx(expected_total, rel=1e-14)
    assert loglik == pytest.approx(plain_loglik, rel=rtol)
    row_weights = np.ones(1000) if weights is None else weights
    assert loglik == pytest.approx(np.dot(row_weights, log_density), rel=1e-12)
    np.testing.assert_allclose(resp_weight, plain_weight, rtol=rtol)
    np.testing.assert_allclose(compiled, plain, rtol=rtol, atol=1e-30)
