"""The portable engine: expanded products on torch tensors, against the float64 NumPy result.

Tensors go through the engine registry like NumPy arrays do: every structure
stored as diagonal, spherical or tied precisions runs on the portable engine
(two matrix products per block, no (rows, K, D) temporary); dense ones on the
generic engine. Both are checked against the generic engine on float64 NumPy rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gaussmix import GaussianMixture, estep, get_covariance_model  # noqa: E402
from gaussmix.covariance import canonical_covariance_types  # noqa: E402
from gaussmix.estep.portable import ENGINE  # noqa: E402

from .conftest import fit_quietly  # noqa: E402
from .test_engines import _problem  # noqa: E402
from .test_fast_path_reference import _assert_stats_match  # noqa: E402


def _on_host(stats):
    return type(stats)(*(value.numpy() for value in (stats.resp_weight, stats.means, stats.scatter)), 0.0)


def _portable_structures():
    layouts = {name: get_covariance_model(name).layout for name in canonical_covariance_types()}
    return [name for name, layout in layouts.items() if ENGINE.can_run(estep.Problem(layout, None, 5, 8, False, True))]


def test_the_registry_runs_tensors_of_every_axis_aligned_and_tied_structure_on_the_portable_engine():
    structures = _portable_structures()
    assert {"diag", "spherical", "tied", "EII", "EEI", "VEI", "EVI"} <= set(structures)
    assert "full" not in structures
    for layout, expected in (("diag", "portable"), ("tied", "portable"), ("full", "generic")):
        problem = estep.Problem(layout, None, 16, 16, False, True)
        assert next(estep.registry.candidates(problem, "auto")).name == expected
    # NumPy rows never reach it
    assert not ENGINE.can_run(estep.Problem("diag", np.dtype(np.float64), 16, 16, True, True))


@pytest.mark.parametrize("shifted", [False, True], ids=["near zero", "shifted, 1e4 away"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", _portable_structures())
def test_portable_engine_equals_the_float64_numpy_result(covariance_type, dtype, weighted, shifted):
    params, X, weights = _problem(covariance_type, dtype, 1e4 if shifted else 3.0)
    weights = weights.astype(dtype) if weighted else None
    shift = X.astype(np.float64).mean(axis=0).astype(dtype) if shifted else None
    if shift is not None:
        params = params.translated(-shift.astype(np.float64))  # the parameters of X - shift
    X_t = torch.from_numpy(X)
    shift_t = None if shift is None else torch.from_numpy(shift)
    weights_t = None if weights is None else torch.from_numpy(weights)
    params_t = params.converted_like(X_t)
    # these clusters lose no digits to the expansion: the engine itself runs them
    assert ENGINE.accumulate(X_t if shift is None else X_t - shift_t, weights_t, params_t) is not None
    with estep.config_context(block_rows=256):  # several blocks per chunk
        stats, loglik = estep.accumulate(X_t, weights_t, params_t, shift_t)
    assert isinstance(loglik, torch.Tensor) and stats.scatter.dtype == X_t.dtype
    X64 = X.astype(np.float64) - (0.0 if shift is None else shift.astype(np.float64))
    weights64 = None if weights is None else weights.astype(np.float64)
    expected, expected_loglik = estep.accumulate(X64, weights64, params.converted_like(X64), engine="generic")
    tolerance = 1e-9 if dtype == np.float64 else 2e-4
    reference = (expected.resp_weight, expected.means, expected.scatter, expected_loglik)
    _assert_stats_match(_on_host(stats), float(loglik), reference, rtol=tolerance, atol=tolerance)
    assert float(stats.total_weight) == pytest.approx(expected.total_weight, rel=tolerance)


def test_a_component_far_from_the_frame_is_left_to_the_generic_engine():
    params, X, _ = _problem("diag", np.float32, 0.0)
    means = params.means.copy()
    means[0] += 1e5  # 1e5 standard deviations: float32 products would lose every digit
    far = dataclasses.replace(params, means=means)
    X_t = torch.from_numpy(X)
    far_t = far.converted_like(X_t)
    assert ENGINE.accumulate(X_t, None, far_t) is None
    stats, loglik = estep.accumulate(X_t, None, far_t)
    expected, expected_loglik = estep.accumulate(X.astype(np.float64), None, far, engine="generic")
    np.testing.assert_allclose(float(loglik), expected_loglik, rtol=1e-5)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "tied", "VEI"])
def test_a_float64_tensor_fit_on_many_components_matches_numpy(covariance_type):
    rng = np.random.RandomState(0)
    centres = rng.normal(scale=8.0, size=(12, 6))
    X = (centres[rng.randint(12, size=1500)] + rng.normal(size=(1500, 6))) + 1e3
    kwargs = dict(n_components=12, covariance_type=covariance_type, tol=0, max_iter=8, random_state=0)
    reference = fit_quietly(GaussianMixture, X, **kwargs)
    model = fit_quietly(GaussianMixture, torch.from_numpy(X), **kwargs)
    np.testing.assert_allclose(model.lower_bounds_, reference.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(model.means_.numpy(), reference.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(model.covariances_.numpy(), reference.covariances_, rtol=1e-7, atol=1e-9)
