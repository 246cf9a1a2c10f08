"""The compiled inner iterations of the mclust M-steps against their NumPy loops."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm as scipy_expm

from gaussmix.covariance import InnerIteration
from gaussmix.covariance._eigen import alternate_volume_and_shape, fit_common_orientation, shared_orientation

pytest.importorskip("numba")


def _scatter(n_components: int, n_features: int, dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    factors = rng.normal(size=(n_components, n_features, n_features)) * rng.uniform(0.1, 10, size=(n_components, 1, 1))
    counts = rng.uniform(5, 50, size=n_components)
    scatter = factors @ np.swapaxes(factors, 1, 2) + 0.1 * np.eye(n_features)
    return scatter.astype(dtype), counts.astype(dtype)


def _objective(scatter, counts, covariances) -> float:
    """The M-step's objective sum_k N_k log det Sigma_k + tr(W_k Sigma_k^-1), in float64."""
    scatter, covariances = scatter.astype(np.float64), covariances.astype(np.float64)
    log_det = np.linalg.slogdet(covariances)[1]
    traces = np.trace(scatter @ np.linalg.inv(covariances), axis1=1, axis2=2)
    return float(np.sum(counts.astype(np.float64) * log_det + traces))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", [0, 1])  # EVE's and VVE's rule for the scales
@pytest.mark.parametrize("n_components, n_features", [(1, 2), (3, 2), (5, 4), (8, 6)])
def test_common_orientation_loop_equals_the_numpy_loop(dtype, mode, n_components, n_features):
    scatter, counts = _scatter(n_components, n_features, dtype)

    def scales_in_frame(summaries):
        if mode == 1:
            return summaries / counts[:, None]
        volumes = np.exp(np.mean(np.log(summaries), axis=1))
        return (np.sum(volumes) / np.sum(counts)) * summaries / volumes[:, None]

    start = shared_orientation(scatter / counts[:, None, None])
    control = InnerIteration()
    plain = fit_common_orientation(scatter, counts, start, scales_in_frame, control, warm=False)
    compiled = fit_common_orientation(scatter, counts, start, scales_in_frame, control, warm=False, compiled_mode=mode)
    dense = [orientation[None] * scales[:, None, :] @ orientation.T for orientation, scales in (plain, compiled)]
    assert compiled[0].dtype == compiled[1].dtype == np.dtype(dtype)
    if dtype == np.float64:
        np.testing.assert_allclose(dense[1], dense[0], rtol=1e-9, atol=1e-9 * np.abs(dense[0]).max())
    else:
        # float32 stops at 100 eps32 of a flat objective, where the two loops' orientations
        # still differ: the compiled one is an M-step all the same (f never rises).
        for covariances in dense:
            assert np.all(np.isfinite(covariances))
        before = scales_in_frame(np.einsum("ji,kjl,li->ki", start, scatter, start))
        start_dense = start[None] * before[:, None, :] @ start.T
        assert _objective(scatter, counts, dense[1]) <= _objective(scatter, counts, start_dense) * (1 + 1e-6)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("warm", [False, True])
def test_volume_and_shape_loop_equals_the_numpy_loop(dtype, rtol, warm):
    rng = np.random.RandomState(1)
    summaries = rng.uniform(0.1, 30, size=(6, 4)).astype(dtype)
    counts = rng.uniform(3, 40, size=6).astype(dtype)
    volumes = rng.uniform(0.5, 2, size=6).astype(dtype)
    control = InnerIteration()
    plain = alternate_volume_and_shape(summaries, counts, volumes, control, warm, compiled=False)
    compiled = alternate_volume_and_shape(summaries, counts, volumes, control, warm)
    for ours, reference in zip(compiled, plain):
        np.testing.assert_allclose(ours, np.asarray(reference), rtol=rtol)


def _vve_scales(counts):
    return lambda summaries: summaries / counts[:, None]


@pytest.mark.parametrize("compiled_mode", [None, 1])
@pytest.mark.parametrize("n_components, n_features", [(1, 6), (3, 8), (4, 5)])
def test_common_orientation_reaches_a_shared_eigenbasis_exactly(compiled_mode, n_components, n_features):
    # Scatters that share one eigenbasis: VVE's M-step optimum is W_k / N_k itself. From a
    # random orientation a cold M-step must get there (the MM steps it replaced did not).
    rng = np.random.RandomState(n_components + n_features)
    basis = np.linalg.qr(rng.normal(size=(n_features, n_features)))[0]
    counts = rng.uniform(10, 100, size=n_components)
    spectra = rng.uniform(0.1, 20, size=(n_components, n_features))
    scatter = counts[:, None, None] * (basis[None] * spectra[:, None, :]) @ basis.T
    start = np.linalg.qr(rng.normal(size=(n_features, n_features)))[0]
    orientation, scales = fit_common_orientation(
        scatter, counts, start, _vve_scales(counts), InnerIteration(), warm=False, compiled_mode=compiled_mode
    )
    np.testing.assert_allclose(orientation.T @ orientation, np.eye(n_features), atol=1e-12)
    fitted = (orientation[None] * scales[:, None, :]) @ orientation.T
    expected = scatter / counts[:, None, None]
    np.testing.assert_allclose(fitted, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


@pytest.mark.parametrize("compiled_mode", [None, 0, 1])
def test_common_orientation_is_a_stationary_point(compiled_mode):
    # At a minimum over orthogonal D of f, no plane rotation lowers it: the derivative of f
    # along every rotation generator vanishes (to the inner tolerance), by central differences.
    scatter, counts = _scatter(5, 7, np.float64, seed=3)

    def scales_in_frame(summaries):
        if compiled_mode == 1 or compiled_mode is None:
            return summaries / counts[:, None]
        volumes = np.exp(np.mean(np.log(summaries), axis=1))
        return (np.sum(volumes) / np.sum(counts)) * summaries / volumes[:, None]

    start = shared_orientation(scatter / counts[:, None, None])
    orientation, scales = fit_common_orientation(
        scatter, counts, start, scales_in_frame, InnerIteration(), warm=False, compiled_mode=compiled_mode
    )

    def f(rotation):
        frame = orientation @ rotation
        summaries = np.einsum("ji,kjl,li->ki", frame, scatter, frame)
        covariances = (frame[None] * scales_in_frame(summaries)[:, None, :]) @ frame.T
        return _objective(scatter, counts, covariances)

    step = 1e-5
    for p in range(7):
        for q in range(p + 1, 7):
            generator = np.zeros((7, 7))
            generator[p, q], generator[q, p] = step, -step
            turn = scipy_expm(generator)
            slope = (f(turn) - f(turn.T)) / (2 * step)
            assert abs(slope) <= 1e-5 * abs(f(np.eye(7)))
