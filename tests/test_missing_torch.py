"""missing="marginalize" on torch tensors: the same fit, inference and imputation as on NumPy arrays.

The NumPy path is the reference: its E-step runs through NumPy (and the
compiled kernel, or sweeps), the torch one through batched torch products
and Cholesky factors on the tensor's device.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.covariance import canonical_covariance_types
from gaussmix.missing import accumulate_incomplete

from .conftest import make_blobs
from .test_missing import _remove

torch = pytest.importorskip("torch")

FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def _fit(X, sample_weight=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(missing="marginalize", **kwargs).fit(X, sample_weight=sample_weight)


@pytest.fixture(scope="module")
def incomplete():
    # rows missing one, two and three of four entries, and complete rows
    return _remove(make_blobs(600, 4, 3, seed=3)[0], 0.3, seed=3)[0]


@pytest.mark.parametrize("covariance_type", canonical_covariance_types())
def test_torch_fit_equals_the_numpy_fit_in_float64(incomplete, covariance_type):
    kwargs = dict(n_components=3, covariance_type=covariance_type, random_state=0, tol=0, max_iter=10)
    reference = _fit(incomplete, **kwargs)
    model = _fit(torch.from_numpy(incomplete), **kwargs)
    for name in FITTED:
        actual, expected = getattr(model, name), getattr(reference, name)
        assert isinstance(actual, torch.Tensor) and actual.dtype == torch.float64
        np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max(),
                                   err_msg=name)
    np.testing.assert_allclose(model.lower_bounds_, reference.lower_bounds_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_weighted_torch_fit_equals_the_numpy_fit(incomplete, covariance_type):
    weights = np.random.RandomState(1).uniform(0.2, 3, size=len(incomplete))
    kwargs = dict(n_components=3, covariance_type=covariance_type, random_state=0, tol=0, max_iter=10)
    reference = _fit(incomplete, sample_weight=weights, **kwargs)
    model = _fit(torch.from_numpy(incomplete), sample_weight=torch.from_numpy(weights), **kwargs)
    for name in FITTED:
        np.testing.assert_allclose(getattr(model, name).numpy(), getattr(reference, name), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.lower_bounds_, reference.lower_bounds_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "spherical", "VEV"])
def test_torch_inference_and_imputation_equal_numpy(incomplete, covariance_type):
    reference = _fit(incomplete, n_components=3, covariance_type=covariance_type, random_state=0, max_iter=10)
    model = _fit(torch.from_numpy(incomplete), n_components=3, covariance_type=covariance_type, random_state=0,
                 max_iter=10)
    X = torch.from_numpy(incomplete)
    for method, args in [("score_samples", ()), ("predict_proba", ()), ("impute", ()),
                         ("impute", (2, 4))]:
        actual = getattr(model, method)(X, *args)
        assert isinstance(actual, torch.Tensor), method
        np.testing.assert_allclose(actual.numpy(), getattr(reference, method)(incomplete, *args), rtol=1e-8,
                                   atol=1e-12, err_msg=method)
    np.testing.assert_array_equal(model.predict(X).numpy(), reference.predict(incomplete))
    np.testing.assert_allclose(model.score(X), reference.score(incomplete), rtol=1e-10)
    np.testing.assert_allclose(model.bic(X), reference.bic(incomplete), rtol=1e-10)
    # observed entries are kept as they are
    gaps = np.isnan(incomplete)
    np.testing.assert_array_equal(model.impute(X).numpy()[~gaps], incomplete[~gaps])


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied"])
def test_torch_estep_equals_the_numpy_one(incomplete, covariance_type, monkeypatch):
    model = _fit(incomplete, n_components=3, covariance_type=covariance_type, random_state=0, max_iter=3)
    weights = np.random.RandomState(2).uniform(0.2, 3, size=len(incomplete))
    params = model._fitted_params()
    monkeypatch.setenv("GAUSSMIX_NUMBA", "0")  # the batched NumPy path, the torch one's twin
    expected, expected_loglik = accumulate_incomplete(incomplete, weights, params)
    actual, loglik = accumulate_incomplete(torch.from_numpy(incomplete), torch.from_numpy(weights),
                                           params.converted_like(torch.zeros(1, dtype=torch.float64)))
    np.testing.assert_allclose(float(loglik), expected_loglik, rtol=1e-12)
    for name in ("resp_weight", "means", "scatter"):
        np.testing.assert_allclose(getattr(actual, name).numpy(), getattr(expected, name), rtol=1e-10,
                                   atol=1e-10, err_msg=name)


def test_torch_block_inverses_equal_lapack():
    from gaussmix.backends import torch_backend

    rng = np.random.RandomState(0)
    factors = rng.normal(size=(3, 4, 5, 5))
    blocks = factors @ np.swapaxes(factors, -1, -2) + 0.1 * np.eye(5)
    inverse, log_det = torch_backend.inverse_positive_definite(torch.from_numpy(blocks))
    np.testing.assert_allclose(inverse.numpy(), np.linalg.inv(blocks), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(log_det.numpy(), np.linalg.slogdet(blocks)[1], rtol=1e-12)
    # a block that is not positive definite gives NaN, which the log-likelihood then carries
    assert torch.isnan(torch_backend.inverse_positive_definite(-torch.eye(2)[None])[1]).all()


def test_float32_tensors_fit_in_float32(incomplete):
    X = incomplete.astype(np.float32)
    reference = _fit(X, n_components=3, random_state=0, tol=0, max_iter=10)
    model = _fit(torch.from_numpy(X), n_components=3, random_state=0, tol=0, max_iter=10)
    assert model.means_.dtype == torch.float32
    np.testing.assert_allclose(model.means_.numpy(), reference.means_, rtol=1e-4, atol=1e-4)
    assert model.impute(torch.from_numpy(X)).dtype == torch.float32


def test_bad_rows_in_tensors_are_named(incomplete):
    bad = incomplete.copy()
    bad[[4, 50]] = np.nan
    with pytest.raises(ValueError, match=r"2 row\(s\) of X have every entry missing .* row\(s\) 4, 50"):
        GaussianMixture(2, missing="marginalize").fit(torch.from_numpy(bad))
    infinite = incomplete.copy()
    infinite[7, 1] = np.inf
    with pytest.raises(ValueError, match=r"infinite values in row\(s\) 7"):
        GaussianMixture(2, missing="marginalize").fit(torch.from_numpy(infinite))
    model = _fit(torch.from_numpy(incomplete), n_components=2, random_state=0, max_iter=2)
    for method in ("predict", "score_samples", "impute"):
        with pytest.raises(ValueError, match=r"row\(s\) 4, 50"):
            getattr(model, method)(torch.from_numpy(bad))
    with pytest.raises(ValueError, match='missing="marginalize"'):  # the default still refuses NaN
        GaussianMixture(2).fit(torch.from_numpy(incomplete))
