"""The estimator on torch tensors: same maths as NumPy, results stay on the tensor's device.

The NumPy fit is the independent reference: it runs through NumPy/SciPy linear
algebra, the torch fit through torch's, from the same start.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gaussmix import CollapsedComponentError, GaussianMixture  # noqa: E402
from gaussmix.backends import device as _device  # noqa: E402
from gaussmix.covariance import canonical_covariance_types  # noqa: E402
from gaussmix.em import accumulate  # noqa: E402
from gaussmix.sources import auto_chunk_rows  # noqa: E402

from .conftest import make_blobs  # noqa: E402
from .test_bad_input import INVALID_SAMPLE_WEIGHTS  # noqa: E402

#: one name per covariance class in the registry (aliases name the same class)
REGISTERED_TYPES = canonical_covariance_types()
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _fit_without_convergence_warning(model, X, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, **fit_params)


def _assert_same_fit(reference, model, rtol):
    for name in FITTED:
        expected = getattr(reference, name)
        actual = getattr(model, name).cpu().numpy()
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max(), err_msg=name)
    assert model.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(model.lower_bounds_, reference.lower_bounds_, rtol=rtol)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type", REGISTERED_TYPES)
def test_torch_and_numpy_give_the_same_fit_in_float64(covariance_type, weighted):
    X, _ = make_blobs(500, 3, 3, seed=1)
    weights = np.random.RandomState(2).uniform(0.1, 3, size=len(X)) if weighted else None
    # tol=0 with a fixed max_iter: both run exactly the same number of iterations
    params = dict(n_components=3, covariance_type=covariance_type, tol=0, max_iter=15, random_state=0)
    reference = _fit_without_convergence_warning(GaussianMixture(**params), X, sample_weight=weights)
    model = _fit_without_convergence_warning(
        GaussianMixture(**params),
        torch.from_numpy(X),
        sample_weight=None if weights is None else torch.from_numpy(weights),
    )
    _assert_same_fit(reference, model, rtol=1e-8)
    X_t = torch.from_numpy(X)
    np.testing.assert_allclose(model.score_samples(X_t).numpy(), reference.score_samples(X), rtol=1e-8)
    np.testing.assert_allclose(model.predict_proba(X_t).numpy(), reference.predict_proba(X), rtol=1e-6, atol=1e-10)
    np.testing.assert_array_equal(model.predict(X_t).numpy(), reference.predict(X))


def test_float32_tensors_fit_in_float32_close_to_numpy():
    X, _ = make_blobs(600, 4, 3, seed=4, dtype=np.float32)
    params = dict(n_components=3, tol=0, max_iter=10, random_state=0)
    reference = _fit_without_convergence_warning(GaussianMixture(**params), X)
    model = _fit_without_convergence_warning(GaussianMixture(**params), torch.from_numpy(X))
    assert all(getattr(model, name).dtype == torch.float32 for name in FITTED)
    np.testing.assert_allclose(model.means_.numpy(), reference.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(model.covariances_.numpy(), reference.covariances_, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("covariance_type", REGISTERED_TYPES)
def test_attributes_and_results_stay_tensors(covariance_type):
    X = torch.from_numpy(make_blobs(300, 2, 2, seed=5)[0])
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    for name in FITTED:
        value = getattr(model, name)
        assert isinstance(value, torch.Tensor) and value.device == X.device and value.dtype == X.dtype, name
    labels = model.fit_predict(X)
    assert isinstance(labels, torch.Tensor) and labels.shape == (300,)
    for result in (model.predict(X), model.predict_proba(X), model.score_samples(X)):
        assert isinstance(result, torch.Tensor) and result.device == X.device
    rows, components = model.sample(50)
    assert isinstance(rows, torch.Tensor) and rows.shape == (50, 2) and rows.dtype == X.dtype
    assert isinstance(components, torch.Tensor) and components.shape == (50,)
    assert isinstance(model.score(X), float) and isinstance(model.bic(X), float)


def test_a_torch_fitted_model_saves_and_loads_as_numpy(tmp_path):
    from gaussmix.io import load, save

    X, _ = make_blobs(300, 2, 2, seed=17)
    model = GaussianMixture(2, random_state=0).fit(torch.from_numpy(X))
    save(model, tmp_path / "model.gmm")
    loaded = load(tmp_path / "model.gmm")
    np.testing.assert_array_equal(loaded.means_, model.means_.numpy())
    np.testing.assert_allclose(loaded.score_samples(X), model.score_samples(torch.from_numpy(X)).numpy(), rtol=1e-12)


def test_icl_of_a_torch_fit_equals_numpy():
    X, _ = make_blobs(300, 2, 3, seed=18)
    model = GaussianMixture(3, random_state=0).fit(torch.from_numpy(X))
    reference = GaussianMixture(3, random_state=0).fit(X)
    assert model.icl(torch.from_numpy(X)) == pytest.approx(reference.icl(X), rel=1e-8)


def test_sampling_follows_the_fitted_mixture():
    X = torch.from_numpy(make_blobs(400, 2, 2, seed=6)[0])
    model = GaussianMixture(2, random_state=0).fit(X)
    rows, components = model.sample(20000)
    for k in range(2):
        drawn = rows[components == k].numpy()
        np.testing.assert_allclose(drawn.mean(axis=0), model.means_[k].numpy(), atol=0.1 * np.sqrt(model.covariances_[k].diagonal().max().item()))
        np.testing.assert_allclose(np.cov(drawn.T), model.covariances_[k].numpy(), rtol=0.1, atol=0.05 * model.covariances_[k].abs().max().item())


def test_numpy_input_to_a_torch_fitted_model_gets_numpy_results():
    X, _ = make_blobs(300, 2, 2, seed=7)
    model = GaussianMixture(2, random_state=0).fit(torch.from_numpy(X))
    reference = GaussianMixture(2, random_state=0).fit(X)
    labels = model.predict(X)
    assert isinstance(labels, np.ndarray)
    np.testing.assert_array_equal(labels, reference.predict(X))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied"])
def test_reads_back_from_the_device_do_not_grow_with_the_number_of_chunks(monkeypatch, covariance_type):
    """The EM loop leaves per-chunk results on the device: only per-iteration scalars come back
    (the portable engine reads its parameters back once per iteration: diag, tied)."""
    X = torch.from_numpy(make_blobs(600, 3, 3, seed=8)[0])
    weights = torch.from_numpy(np.random.RandomState(0).uniform(0.5, 2, size=600))
    reads = []
    for method in ("__float__", "__bool__", "__int__", "item", "tolist", "cpu", "numpy"):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, _method=method, **kwargs):
            reads.append(_method)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    counts = []
    for chunk_size in (600, 50):
        reads.clear()
        model = GaussianMixture(
            3, covariance_type=covariance_type, tol=0, max_iter=5, chunk_size=chunk_size, random_state=0
        )
        _fit_without_convergence_warning(model, X, sample_weight=weights)
        counts.append(len(reads))
    assert counts[0] == counts[1], counts


def test_e_step_results_stay_on_the_device():
    X = torch.from_numpy(make_blobs(200, 2, 2, seed=9)[0])
    model = GaussianMixture(2, random_state=0).fit(X)
    stats, loglik = accumulate(X, torch.ones(200, dtype=X.dtype), model._fitted_params(like=X))
    assert isinstance(loglik, torch.Tensor) and loglik.ndim == 0
    assert isinstance(stats.total_weight, torch.Tensor)
    assert isinstance(stats.scatter, torch.Tensor)


def test_initialisation_on_a_host_sample_reaches_the_same_optimum(monkeypatch):
    X, _ = make_blobs(3000, 2, 3, seed=10)
    reference = GaussianMixture(3, tol=1e-10, max_iter=500, random_state=0).fit(X)
    monkeypatch.setattr(_device, "INIT_HOST_ROWS", 200)
    model = GaussianMixture(3, tol=1e-10, max_iter=500, random_state=0).fit(torch.from_numpy(X))
    order_ref = np.argsort(reference.means_[:, 0])
    order = np.argsort(model.means_[:, 0].numpy())
    np.testing.assert_allclose(model.means_.numpy()[order], reference.means_[order_ref], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.lower_bound_, reference.lower_bound_, rtol=1e-8)


def test_float32_matrix_products_are_kept_off_tf32_during_fit():
    seen = []
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        model = GaussianMixture(2, random_state=0, callback=lambda event: seen.append(torch.get_float32_matmul_precision()))
        model.fit(torch.from_numpy(make_blobs(200, 2, 2, seed=11)[0]).float())
        assert seen and set(seen) == {"highest"}
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(previous)


def test_input_that_requires_grad_builds_no_autograd_graph():
    X = torch.from_numpy(make_blobs(200, 2, 2, seed=16)[0]).requires_grad_()
    model = GaussianMixture(2, random_state=0).fit(X)
    assert not any(getattr(model, name).requires_grad for name in FITTED)
    assert not model.predict_proba(X).requires_grad


# ---------------------------------------------------------------- device=
def test_device_cpu_moves_numpy_input_and_keeps_float64():
    X, _ = make_blobs(300, 2, 2, seed=12)
    model = GaussianMixture(2, random_state=0, device="cpu").fit(X)
    assert isinstance(model.means_, torch.Tensor) and model.means_.dtype == torch.float64
    reference = GaussianMixture(2, random_state=0).fit(X)
    np.testing.assert_allclose(model.means_.numpy(), reference.means_, rtol=1e-8)
    assert isinstance(model.predict(X), torch.Tensor)


@pytest.mark.parametrize("device, error, message", [
    ("gpu0", ValueError, "device='gpu0' is not a torch device"),
    (3.5, ValueError, "is not a torch device"),
])
def test_invalid_device_is_explained(device, error, message):
    with pytest.raises(error, match=message):
        GaussianMixture(2, device=device).fit(np.random.RandomState(0).normal(size=(20, 2)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_gpu_is_explained():
    with pytest.raises(ValueError, match="asks for CUDA, but torch .* sees no CUDA device"):
        GaussianMixture(2, device="cuda").fit(np.random.RandomState(0).normal(size=(20, 2)))


def test_device_without_torch_installed_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "gaussmix.backends.torch_backend", None)
    with pytest.raises(ImportError, match=r"device='cuda' needs PyTorch, which is not installed: pip install 'gaussmix\[torch\]'"):
        GaussianMixture(2, device="cuda").fit(np.random.RandomState(0).normal(size=(20, 2)))


# ------------------------------------------------------------ bad input
@pytest.fixture
def X():
    return np.random.RandomState(0).normal(size=(50, 2))


def _same_error_on_numpy_and_torch(call, array):
    """Run ``call`` on the NumPy array and on it as a tensor; both must raise the same message."""
    with pytest.raises(ValueError) as on_numpy:
        call(array)
    with pytest.raises(ValueError) as on_torch:
        call(torch.from_numpy(np.asarray(array)))
    assert type(on_torch.value) is type(on_numpy.value)
    return str(on_numpy.value), str(on_torch.value)


def test_nan_and_inf_in_tensors_get_the_numpy_message(X):
    X = X.copy()
    X[3, 0] = np.nan
    X[9, 1] = np.inf
    expected, actual = _same_error_on_numpy_and_torch(GaussianMixture(2).fit, X)
    assert actual == expected and "row(s) 3" in actual


def test_nan_in_predict_tensor_is_reported(X):
    model = GaussianMixture(2, random_state=0).fit(torch.from_numpy(X))
    bad = X.copy()
    bad[4, 1] = np.nan
    for method in ("predict", "predict_proba", "score_samples"):
        expected, actual = _same_error_on_numpy_and_torch(getattr(model, method), bad)
        assert actual == expected


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 2)), r"Found array with 0 sample\(s\) \(shape=\(0, 2\)\) while a minimum of 2 is required"),
    (np.arange(10.0), "Expected 2D array, got 1D array instead"),
    (np.zeros((1, 2)), r"Found array with 1 sample\(s\) .* minimum of 2 is required"),
    (np.zeros((5, 0)), r"Found array with 0 feature\(s\)"),
])
def test_empty_and_malformed_tensors(bad, message):
    for array in (bad, torch.from_numpy(bad)):
        with pytest.raises(ValueError, match=message):
            GaussianMixture(1).fit(array)


def test_complex_tensor_is_refused():
    with pytest.raises(ValueError, match="Complex data not supported"):
        GaussianMixture(1).fit(torch.zeros((5, 2), dtype=torch.complex64))


def test_integer_tensor_is_fitted_as_float64():
    X = torch.from_numpy(np.random.RandomState(0).randint(0, 20, size=(60, 2)))
    model = GaussianMixture(2, random_state=0).fit(X)
    assert model.means_.dtype == torch.float64


def test_wrong_number_of_features_in_predict_tensor(X):
    model = GaussianMixture(2, random_state=0).fit(torch.from_numpy(X))
    reference = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError) as on_torch:
        model.predict(torch.zeros((4, 3), dtype=torch.float64))
    with pytest.raises(ValueError) as on_numpy:
        reference.predict(np.zeros((4, 3)))
    assert str(on_torch.value) == str(on_numpy.value)


@pytest.mark.parametrize("weights, message", INVALID_SAMPLE_WEIGHTS)
def test_invalid_tensor_sample_weight(X, weights, message):
    for sample_weight in (weights, torch.from_numpy(weights)):
        with pytest.raises(ValueError, match=message):
            GaussianMixture(2).fit(torch.from_numpy(X), sample_weight=sample_weight)


def test_collapsed_component_on_tensors_is_named():
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(size=(40, 2)), np.tile([[8.0, 8.0]], (20, 1))])
    model = GaussianMixture(2, reg_covar=0, random_state=0)
    with pytest.raises(CollapsedComponentError, match=r"component 1 collapsed") as info:
        model.fit(torch.from_numpy(X))
    assert info.value.components == [1]


# ------------------------------------------------------------ chunking
def test_chunk_budget_replaces_the_host_default():
    # 1 MiB for rows of K * D * itemsize = 4 * 8 * 4 = 128 bytes: 8192 rows, no host cap
    assert auto_chunk_rows(4, 8, 4, budget_bytes=2**20) == 2**20 // 128
    assert auto_chunk_rows(1, 1, 4, budget_bytes=2**40) == 2**40 // 4


def test_cpu_tensors_use_the_host_chunk_budget():
    from gaussmix.backends import torch_backend

    assert torch_backend.chunk_budget_bytes(torch.zeros(3)) is None


# ------------------------------------------------------------ CUDA
@pytest.mark.gpu
@cuda
def test_cuda_tensors_fit_on_the_gpu():
    X, _ = make_blobs(2000, 3, 3, seed=13)
    X_cuda = torch.from_numpy(X).cuda()
    model = _fit_without_convergence_warning(GaussianMixture(3, tol=0, max_iter=15, random_state=0), X_cuda)
    for name in FITTED:
        assert getattr(model, name).device.type == "cuda", name
    for result in (model.predict(X_cuda), model.score_samples(X_cuda), model.sample(10)[0]):
        assert result.device.type == "cuda"
    reference = _fit_without_convergence_warning(GaussianMixture(3, tol=0, max_iter=15, random_state=0), X)
    _assert_same_fit(reference, model, rtol=1e-8)


@pytest.mark.gpu
@cuda
def test_device_cuda_moves_numpy_input_as_float32():
    X, _ = make_blobs(2000, 3, 3, seed=14)
    model = GaussianMixture(3, random_state=0, device="cuda").fit(X)
    assert model.means_.device.type == "cuda" and model.means_.dtype == torch.float32
    assert model.predict(X).device.type == "cuda"
    from gaussmix.backends import torch_backend

    assert torch_backend.chunk_budget_bytes(model.means_) > 0


@pytest.mark.gpu
@cuda
def test_medium_float32_fit_on_the_gpu_matches_float32_on_the_host():
    # N <= 2**17: the host initialisation sees every row, so both fits start alike; float64 on
    # the host would be no reference, as k-means in float64 can reach another start.
    X, _ = make_blobs(120_000, 16, 8, seed=15, dtype=np.float32)
    params = dict(n_components=8, tol=0, max_iter=20, random_state=0)
    reference = _fit_without_convergence_warning(GaussianMixture(**params), X)
    model = _fit_without_convergence_warning(GaussianMixture(**params, device="cuda"), X)
    assert model.means_.dtype == torch.float32 and model.means_.device.type == "cuda"
    scale = np.abs(reference.means_).max()
    np.testing.assert_allclose(model.means_.cpu().numpy(), reference.means_, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(model.lower_bound_, reference.lower_bound_, rtol=1e-5)
