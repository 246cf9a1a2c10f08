"""Half-precision tensors compute in float32 and say so; a zero in weights_init is quiet."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import DataConversionWarning

from gaussmix import GaussianMixture

from .conftest import make_blobs


def _blobs():
    X, _ = make_blobs(n_samples=300, n_features=3, n_components=2, seed=3)
    return X


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_tensors_fit_predict_and_score_in_float32_with_a_warning(half):
    # fit raised NotImplementedError ("float16") or TypeError (BFloat16) from inside
    # the linear algebra; predict and score computed in half precision.
    torch = pytest.importorskip("torch")
    X = _blobs()
    tensor = torch.tensor(X, dtype=getattr(torch, half))
    single = torch.tensor(tensor.to(torch.float32).numpy())
    with pytest.warns(DataConversionWarning, match=f"{half}.*computes in float32"):
        model = GaussianMixture(2, random_state=0).fit(tensor)
    reference = GaussianMixture(2, random_state=0).fit(single)
    assert model.means_.dtype == torch.float32
    torch.testing.assert_close(model.means_, reference.means_)
    for method in ("predict", "predict_proba", "score_samples", "score"):
        with pytest.warns(DataConversionWarning, match="computes in float32"):
            got = getattr(model, method)(tensor)
        expected = getattr(model, method)(single)
        if method == "score":
            assert got == pytest.approx(expected)
        else:
            assert got.dtype == expected.dtype
            torch.testing.assert_close(got, expected)


def test_half_sample_weight_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    X = torch.tensor(_blobs(), dtype=torch.float32)
    weights = torch.ones(X.shape[0], dtype=torch.float16)
    model = GaussianMixture(2, random_state=0).fit(X, sample_weight=weights)
    torch.testing.assert_close(model.means_, GaussianMixture(2, random_state=0).fit(X).means_)


@pytest.mark.parametrize(
    "covariance_type, dtype",
    [(name, dtype) for name in ("full", "diag", "spherical", "tied", "EII") for dtype in (np.float64, np.float32)]
    # (VEV in float32 reports the emptied component as collapsed: a float32 matter apart)
    + [("VEV", np.float64)],
)
def test_a_zero_in_weights_init_is_quiet(covariance_type, dtype):
    # log(0) emitted a divide-by-zero RuntimeWarning (an error under this suite's filter);
    # the component simply takes no responsibility, as in scikit-learn.
    X = _blobs().astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        model = GaussianMixture(3, covariance_type=covariance_type, weights_init=[0.5, 0.5, 0.0], random_state=0).fit(X)
        scores = model.score_samples(X)
    assert np.all(np.isfinite(scores))
    assert model.weights_[2] < 1e-10


def test_log_weights_of_zero_is_minus_infinity():
    from gaussmix._math import log_weights

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logs = log_weights(np.array([0.25, 0.0, 0.75]))
    np.testing.assert_array_equal(logs, [np.log(0.25), -np.inf, np.log(0.75)])
