"""The compiled EM loop (gaussmix.compiled_em) against Python's (gaussmix.em.run_em), step for step."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture, compiled_em, em
from gaussmix.covariance import canonical_covariance_types, get_covariance_model
from gaussmix.em import EMConfig, IterationEvent
from gaussmix.exceptions import CollapsedComponentError
from gaussmix.init import initial_stats
from gaussmix.sources import ArraySource

pytest.importorskip("numba")

TYPES = canonical_covariance_types()


def _blobs(n_features: int, seed: int = 0, offset: float = 1e4) -> np.ndarray:
    """Three overlapping, elongated clusters far from the origin (the frame matters)."""
    rng = np.random.RandomState(seed)
    parts = []
    for k, size in enumerate((60, 90, 50)):
        factor = rng.normal(size=(n_features, n_features)) * (0.5 + k)
        parts.append(rng.normal(size=(size, n_features)) @ factor + 4.0 * k)
    return np.concatenate(parts) + offset


def _problem(covariance_type: str, n_features: int, n_components: int, weighted: bool, seed: int = 0):
    X = _blobs(n_features, seed)
    rng = np.random.RandomState(seed + 1)
    weights = rng.uniform(0.2, 2.0, size=X.shape[0]) if weighted else None
    if weights is not None:
        weights /= weights.mean()
    origin = X.mean(axis=0)
    model = get_covariance_model(covariance_type)
    labels = rng.randint(n_components, size=X.shape[0])
    stats = initial_stats(X, weights, labels, n_components, model.full_scatter, X.shape[0], origin)
    start = em.m_step(stats, model, 1e-6, origin=origin)
    source = ArraySource(X, weights, X.shape[0], origin)
    return source, start, EMConfig(model, 1e-6, 1e-9, 400, origin)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("n_features, n_components, weighted", [(1, 2, False), (2, 3, True), (4, 3, False), (5, 1, True)])
def test_compiled_loop_takes_the_same_steps_as_python(covariance_type, n_features, n_components, weighted):
    source, start, config = _problem(covariance_type, n_features, n_components, weighted)
    python = em.run_em(source, start, config)
    compiled = compiled_em.run_em(source, start, config)
    assert compiled.n_iter == python.n_iter
    assert compiled.converged == python.converged
    np.testing.assert_allclose(compiled.lower_bounds, python.lower_bounds, rtol=1e-11, atol=0)
    # EM never lowers the log-likelihood (up to rounding).
    assert np.all(np.diff(compiled.lower_bounds) >= -1e-12 * np.abs(compiled.lower_bounds[1:]))
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        got, expected = getattr(compiled.params, name), getattr(python.params, name)
        assert got.shape == expected.shape, name
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10 * np.abs(expected).max(), err_msg=name)


@pytest.mark.parametrize("covariance_type", ["full", "VEV", "EVE", "diag"])
def test_estimator_fits_equal_with_and_without_compiled_code(covariance_type, monkeypatch):
    X = _blobs(3, seed=4)
    fitted = GaussianMixture(3, covariance_type=covariance_type, random_state=0, tol=1e-8, max_iter=2000).fit(X)
    monkeypatch.setenv("GAUSSMIX_NUMBA", "0")  # the public switch: every loop and kernel in NumPy
    plain = GaussianMixture(3, covariance_type=covariance_type, random_state=0, tol=1e-8, max_iter=2000).fit(X)
    assert fitted.n_iter_ == plain.n_iter_
    np.testing.assert_allclose(fitted.lower_bound_, plain.lower_bound_, rtol=1e-11)
    np.testing.assert_allclose(fitted.means_, plain.means_, rtol=1e-8)
    np.testing.assert_allclose(fitted.covariances_, plain.covariances_, rtol=1e-7, atol=1e-9)


def test_a_collapse_inside_the_compiled_loop_raises_python_s_error():
    # A component that shrinks onto repeated rows, without regularisation.
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(size=(40, 2)), np.repeat([[8.0, 8.0]], 5, axis=0), [[8.0, 8.5]]])
    model = get_covariance_model("full")
    origin = X.mean(axis=0)
    labels = (X[:, 0] > 4).astype(int)
    start = em.m_step(initial_stats(X, None, labels, 2, True, X.shape[0], origin), model, 1e-3, origin=origin)
    source = ArraySource(X, None, X.shape[0], origin)
    config = EMConfig(model, 0.0, 1e-12, 200, origin)
    with pytest.raises(CollapsedComponentError) as python_error:
        em.run_em(source, start, config)
    with pytest.raises(CollapsedComponentError) as compiled_error:
        compiled_em.run_em(source, start, config)
    assert str(compiled_error.value) == str(python_error.value)


def test_callbacks_receive_the_same_events_from_either_loop():
    source, start, config = _problem("VEV", 2, 3, weighted=True)
    python_events: list[IterationEvent] = []
    compiled_events: list[IterationEvent] = []
    em.run_em(source, start, config, callback=python_events.append)
    compiled_em.run_em(source, start, config, callback=compiled_events.append)
    assert [event.n_iter for event in compiled_events] == [event.n_iter for event in python_events]
    np.testing.assert_allclose([event.lower_bound for event in compiled_events],
                               [event.lower_bound for event in python_events], rtol=1e-11)
    assert compiled_events[0].change == python_events[0].change == np.inf


def test_float32_rows_run_python_s_loop():
    source, start, config = _problem("full", 2, 3, weighted=False)
    rows32 = ArraySource(source.X.astype(np.float32), None, source.X.shape[0], source.origin.astype(np.float32))
    start32 = start.converted_like(rows32.X)
    expected = em.run_em(rows32, start32, config)
    got = compiled_em.run_em(rows32, start32, config)
    assert got.lower_bounds == expected.lower_bounds  # the very same loop


def test_compiled_m_step_is_not_inherited():
    from gaussmix.covariance import FullCovariance

    class Shrunk(FullCovariance):
        """A structure with its own M-step, derived from full's."""

        name = "shrunk-full"

        def estimate(self, stats, reg_covar, previous=None):
            return 0.5 * super().estimate(stats, reg_covar, previous)

    assert compiled_em.compiled_m_step_of(FullCovariance()) == "VVV"
    assert compiled_em.compiled_m_step_of(Shrunk()) is None
