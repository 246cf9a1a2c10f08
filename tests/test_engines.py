"""Every E-step engine against the generic engine, on the same problems.

One suite for all engines: each runs every covariance structure it can run
(:meth:`Engine.can_run`), float32 and float64 rows, with and without sample
weights, on rows stored far from the origin (EM's shifted frame) and on rows
near it. An engine added to the registry is picked up here without any change.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from gaussmix import GaussianMixture, estep, get_covariance_model
from gaussmix.covariance import canonical_covariance_types
from gaussmix.params import MixtureParams

from .conftest import fit_quietly
from .test_fast_path_reference import _assert_stats_match

N_COMPONENTS, N_FEATURES = 8, 5


def _structures():
    return canonical_covariance_types()


def _problem(covariance_type, dtype, offset, seed=0):
    """Separated clusters (every engine runs them rather than declining), their
    parameters, and rows ``offset`` from the origin, stored in ``dtype``."""
    rng = np.random.RandomState(seed)
    model = get_covariance_model(covariance_type)
    means = rng.normal(scale=6.0, size=(N_COMPONENTS, N_FEATURES))
    factors = rng.normal(size=(N_COMPONENTS, N_FEATURES, N_FEATURES)) / np.sqrt(N_FEATURES) + np.eye(N_FEATURES)
    covariances = factors @ factors.transpose(0, 2, 1)
    resp_weight = rng.uniform(20, 50, N_COMPONENTS)
    scatter = resp_weight[:, None, None] * covariances
    if not model.full_scatter:
        scatter = np.diagonal(scatter, axis1=1, axis2=2).copy()
    from gaussmix import SuffStats

    stats = SuffStats(resp_weight, means, scatter, float(resp_weight.sum()))
    params = MixtureParams.from_covariances(resp_weight / resp_weight.sum(), means, model.estimate(stats, 1e-6), model)
    X = params.sample(3000, rng)[0] + offset
    weights = rng.uniform(0, 2, X.shape[0])
    return params.translated(np.full(N_FEATURES, offset)), X.astype(dtype), weights


def _run(engine, X, weights, params, shift):
    """The engine itself on the chunk (no fall-through): None where it declined."""
    if engine.folds_shift:
        return engine.accumulate(X, weights, params, shift)
    return engine.accumulate(X if shift is None else X - shift, weights, params, None)


@pytest.mark.parametrize("shifted", [False, True], ids=["near zero", "shifted, 1e4 away"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", _structures())
@pytest.mark.parametrize("name", estep.available_engines())
def test_engine_equals_the_generic_engine(name, covariance_type, dtype, weighted, shifted):
    engine = estep.get_engine(name)
    params, X, weights = _problem(covariance_type, dtype, 1e4 if shifted else 3.0)
    weights = weights.astype(dtype) if weighted else None
    shift = X.astype(np.float64).mean(axis=0).astype(dtype) if shifted else None
    if shift is not None:
        params = params.translated(-shift.astype(np.float64))  # the parameters of X - shift
    params = params.converted_like(X)
    if not engine.can_run(estep.Problem.of(X, params, shift)):
        pytest.skip(f"the {name!r} engine does not run {covariance_type} in {np.dtype(dtype)}")
    if dtype == np.float64:
        # no digits to lose on these clusters: the engine itself runs them
        assert _run(engine, X, weights, params, shift) is not None, f"the {name!r} engine declined"
    # (float32 chunks an engine declines go on to the next engine: what a fit gets)
    stats, loglik = estep.accumulate(X, weights, params, shift, engine=name)
    assert stats.scatter.dtype == stats.means.dtype == np.dtype(dtype)
    # the generic engine on the same rows, in float64
    X64 = X.astype(np.float64) - (0.0 if shift is None else shift.astype(np.float64))
    params64 = params.converted_like(X64)
    weights64 = None if weights is None else weights.astype(np.float64)
    expected, expected_loglik = estep.accumulate(X64, weights64, params64, engine="generic")
    tolerance = 1e-9 if dtype == np.float64 else 2e-4
    reference = (expected.resp_weight, expected.means, expected.scatter, expected_loglik)
    _assert_stats_match(stats, loglik, reference, rtol=tolerance, atol=tolerance)
    assert stats.total_weight == pytest.approx(expected.total_weight, rel=tolerance)


@pytest.mark.parametrize("name", estep.available_engines())
def test_fits_with_each_engine_agree(name):
    params, X, _ = _problem("full", np.float64, 3.0, seed=2)
    kwargs = dict(n_components=N_COMPONENTS, tol=0.0, max_iter=5, means_init=params.means + 0.2, random_state=0)
    fitted = fit_quietly(GaussianMixture, X, engine=name, **kwargs)
    generic = fit_quietly(GaussianMixture, X, engine="generic", **kwargs)
    np.testing.assert_allclose(fitted.lower_bound_, generic.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(fitted.means_, generic.means_, rtol=1e-8, atol=1e-8)


def test_an_unknown_engine_is_refused_with_the_valid_names():
    with pytest.raises(InvalidParameterError, match="engine"):
        GaussianMixture(engine="fastest").fit(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="'auto', 'fused'.*'generic'"):
        with estep.config_context(engine="fastest"):
            pass
    with pytest.raises(ValueError, match="'generic'"):
        estep.get_engine("fastest")


def test_auto_takes_the_first_preferred_engine_in_the_registry_order():
    def chosen(layout, dtype, n_features, n_components, numpy=True, compiled=True):
        problem = estep.Problem(layout, np.dtype(dtype), n_features, n_components, numpy, compiled)
        return next(estep.registry.candidates(problem, "auto")).name

    assert chosen("full", np.float64, 2, 5) == "fused"
    assert chosen("full", np.float64, 2, 5, compiled=False) == "expanded"
    assert chosen("full", np.float32, 16, 16) == "screened"
    assert chosen("full", np.float64, 16, 16) == "expanded"
    assert chosen("full", np.float64, 64, 4) == "whitened"
    assert chosen("tied", np.float64, 16, 16) == "pooled"
    assert chosen("diag", np.float32, 16, 16) == "expanded"
    assert chosen("spherical", np.float64, 3, 2) == "expanded"
    assert chosen("full", None, 16, 16, numpy=False) == "generic"
    assert chosen(None, np.float64, 16, 16) == "generic"


def test_a_named_engine_that_cannot_run_leaves_the_chunk_to_the_automatic_choice():
    problem = estep.Problem("diag", np.dtype(np.float64), 16, 16, True, True)
    assert [engine.name for engine in estep.registry.candidates(problem, "pooled")] == ["expanded", "generic"]
    # a named engine goes first; after a decline, the automatic choice among those after it
    problem = estep.Problem("full", np.dtype(np.float32), 16, 16, True, True)
    assert [engine.name for engine in estep.registry.candidates(problem, "screened")] == [
        "screened", "expanded", "whitened", "generic"
    ]


def test_block_rows_setting_reaches_the_engines_and_threads():
    params, X, weights = _problem("tied", np.float64, 3.0)
    whole = estep.accumulate(X, weights, params, engine="pooled")
    with estep.config_context(block_rows=7):
        assert estep.get_config().block_rows == 7
        blocked = estep.accumulate(X, weights, params, engine="pooled")
        carried = estep.carrying_config(estep.get_config)
    assert estep.get_config().block_rows is None and carried().block_rows == 7
    np.testing.assert_allclose(blocked[1], whole[1], rtol=1e-12)
    np.testing.assert_allclose(blocked[0].scatter, whole[0].scatter, rtol=1e-10)
    with pytest.raises(ValueError, match="block_rows"):
        with estep.config_context(block_rows=0):
            pass
