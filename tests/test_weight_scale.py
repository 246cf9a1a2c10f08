"""Frequency weights count only relative to each other: a constant factor changes no fit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaussmix import GaussianMixture

from .conftest import fit_quietly

STRUCTURES = ("full", "diag", "spherical", "tied", "EII", "VEI", "EVE", "VEV")


def _two_clusters(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0.0, 1.0, (100, 2)), rng.normal(5.0, 1.0, (100, 2))])
    weights = rng.uniform(0.5, 2.0, len(X))
    return X.astype(dtype), weights


def _assert_same_fit(scaled, reference, rtol=1e-10):
    assert scaled.lower_bound_ == pytest.approx(reference.lower_bound_, rel=rtol)
    np.testing.assert_allclose(scaled.weights_, reference.weights_, rtol=rtol)
    np.testing.assert_allclose(scaled.means_, reference.means_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(scaled.covariances_, reference.covariances_, rtol=rtol)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    exponent=st.integers(-30, 30),
    covariance_type=st.sampled_from(STRUCTURES),
    seed=st.integers(0, 2**16),
)
def test_scaling_every_weight_changes_no_fit(exponent, covariance_type, seed):
    # Weights of 1e-20 once moved the means by 5 (the M-step's floor of 10 eps, in
    # absolute weight, outweighed every row); 1e-15 already moved them by 1e-4.
    X, weights = _two_clusters(seed)
    kwargs = dict(n_components=2, covariance_type=covariance_type, random_state=seed)
    reference = fit_quietly(GaussianMixture, X, sample_weight=weights, **kwargs)
    scaled = fit_quietly(GaussianMixture, X, sample_weight=weights * 10.0**exponent, **kwargs)
    _assert_same_fit(scaled, reference)


@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e-15, 1e20, 1e30])
def test_scaled_unit_weights_fit_as_no_weights(scale):
    X, _ = _two_clusters()
    reference = fit_quietly(GaussianMixture, X, n_components=2, random_state=0)
    scaled = fit_quietly(GaussianMixture, X, sample_weight=np.full(len(X), scale), n_components=2, random_state=0)
    _assert_same_fit(scaled, reference)


@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e30])
def test_scaling_every_weight_changes_no_streamed_fit(tmp_path, scale):
    X, weights = _two_clusters()
    path = tmp_path / "rows.npy"
    np.save(path, X)
    reference = fit_quietly(GaussianMixture, str(path), sample_weight=weights, n_components=2, random_state=0)
    scaled = fit_quietly(GaussianMixture, str(path), sample_weight=weights * scale, n_components=2, random_state=0)
    _assert_same_fit(scaled, reference)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e-300, 1e-40, 1e-20, 1e300])
@pytest.mark.parametrize("first_batch_weighted", [False, True])
def test_a_batch_counts_as_one_step_whatever_its_total_weight(dtype, scale, first_batch_weighted):
    # A first batch weighted 1e-20 once moved the model's means by 7; in float32, weights
    # of 1e-300 were refused as summing to zero and 1e300 as infinite.
    X, _ = _two_clusters(dtype=dtype)
    batch = np.random.default_rng(1).normal(2.0, 1.0, (50, 2)).astype(dtype)
    models = []
    for factor in (1.0, scale):
        model = GaussianMixture(2, covariance_type="diag", random_state=0)
        model.partial_fit(X, sample_weight=np.full(len(X), factor) if first_batch_weighted else None)
        model.partial_fit(batch, sample_weight=np.full(len(batch), factor))
        models.append(model)
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(models[1].means_, models[0].means_, rtol=rtol)
    np.testing.assert_allclose(models[1].covariances_, models[0].covariances_, rtol=rtol)
    np.testing.assert_allclose(models[1].weights_, models[0].weights_, rtol=rtol)


def test_unit_weights_are_left_to_the_bit():
    from gaussmix._validation import unit_mean_weights

    ones = np.ones(1234)
    assert np.array_equal(unit_mean_weights(ones), ones)
    scaled = unit_mean_weights(np.array([1e-300, 3e-300, 0.0, 4e-300]))
    np.testing.assert_allclose(scaled, [0.5, 1.5, 0.0, 2.0], rtol=1e-15)
