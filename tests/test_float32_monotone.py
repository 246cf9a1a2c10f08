"""float32 EM: its log-likelihood never falls by more than float32's rounding (property tests).

Where a float32 run's mean log-likelihood falls by more than that, EM stops in float32 and the
fit finishes in float64 from the parameters before the fall (``float64_iterations_``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaussmix import CollapsedComponentError, GaussianMixture
from gaussmix.covariance import available_covariance_types
from gaussmix.em import DECREASE_EPSILONS

NAMES = [name for name in available_covariance_types() if name not in ("E", "V")]


def _problem(seed: int, n_samples: int, n_features: int, spread: float) -> np.ndarray:
    rng = np.random.RandomState(seed)
    centres = rng.normal(scale=4.0, size=(3, n_features))
    rows = centres[rng.randint(3, size=n_samples)] + rng.normal(size=(n_samples, n_features))
    scales = np.exp(rng.uniform(-spread, spread, size=n_features))  # columns in other units
    return rows * scales + rng.normal(scale=10.0, size=n_features)


def _assert_monotone(model: GaussianMixture) -> None:
    trace = np.asarray(model.lower_bounds_)
    allowed = DECREASE_EPSILONS * np.finfo(np.float32).eps * (1 + np.abs(trace[:-1]))
    assert np.all(np.diff(trace) >= -allowed), (model.covariance_type, np.diff(trace).min())


def _check(name, seed, n_samples, n_features, n_components, spread, reg_covar):
    X = _problem(seed, n_samples, n_features, spread)
    fits = {}
    for dtype in (np.float32, np.float64):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fits[dtype] = GaussianMixture(n_components, covariance_type=name, reg_covar=reg_covar, tol=1e-6,
                                              max_iter=300, init_params="k-means++",
                                              random_state=seed).fit(X.astype(dtype))
            except CollapsedComponentError:
                return
    float32 = fits[np.float32]
    _assert_monotone(float32)
    assert float32.means_.dtype == np.float32
    assert fits[np.float64].float64_iterations_ == 0


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_samples=st.integers(30, 120), n_features=st.integers(1, 4),
       n_components=st.integers(1, 4), spread=st.floats(0.0, 5.0), reg_covar=st.sampled_from([0.0, 1e-6]))
def test_float32_em_never_falls_beyond_rounding(name, seed, n_samples, n_features, n_components, spread, reg_covar):
    _check(name, seed, n_samples, n_features, n_components, spread, reg_covar)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_samples=st.integers(30, 300), n_features=st.integers(1, 6),
       n_components=st.integers(1, 6), spread=st.floats(0.0, 6.0), reg_covar=st.sampled_from([0.0, 1e-6]))
def test_float32_em_never_falls_beyond_rounding_long(name, seed, n_samples, n_features, n_components, spread,
                                                      reg_covar):
    _check(name, seed, n_samples, n_features, n_components, spread, reg_covar)


def test_a_float32_fit_that_falls_finishes_in_float64():
    # Columns six orders of magnitude apart, reg_covar=0: float32's rounding moves the
    # likelihood by more than EM's steps near the optimum.
    found = []
    for seed in range(40):
        X = _problem(seed, 200, 4, 7.0).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model = GaussianMixture(5, covariance_type="EVV", reg_covar=0, tol=1e-7, max_iter=500,
                                        init_params="k-means++", random_state=seed).fit(X)
            except CollapsedComponentError:
                continue
        _assert_monotone(model)
        if model.float64_iterations_:
            found.append(model)
    assert found, "no float32 fit lost precision: the problems no longer exercise the fallback"
    for model in found:
        assert model.means_.dtype == np.float32 and model.float64_iterations_ <= model.n_iter_
