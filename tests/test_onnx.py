"""ONNX export: the exported graph, run in onnxruntime, agrees with the estimator."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.exceptions import NotFittedError

import gaussmix
from gaussmix.cli import cli
from gaussmix.covariance import canonical_covariance_types

from .conftest import PACKAGE_DATA, SHARED_DATA, make_blobs

onnx = pytest.importorskip("onnx", reason="ONNX export tests need onnx: pip install gaussmix[onnx]")
ort = pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime")

#: probabilities: absolute; log-densities: relative (issue 27)
PROBABILITY_TOLERANCE = {np.float64: 1e-6, np.float32: 1e-5}
LOG_DENSITY_RTOL = 1e-6


def run_graph(proto, X):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: X})))


def with_far_rows(X):
    """X, plus rows 1e6 away from every component (in several directions)."""
    centre = X.mean(axis=0)
    directions = np.vstack([np.eye(X.shape[1]), -np.eye(X.shape[1]), np.ones((1, X.shape[1]))])
    return np.vstack([X, centre + 1e6 * directions]).astype(X.dtype)


def exact(model):
    """The same model evaluated in float64: the reference a float32 graph is held to.

    gaussmix's own float32 path rounds (by up to a few 1e-6 relative on log-densities
    near 1), so a float32 graph is compared with the exact value of its parameters.
    """
    reference = copy.deepcopy(model)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        setattr(reference, name, getattr(model, name).astype(np.float64))
    return reference


def assert_graph_matches(model, X, dtype):
    outputs = run_graph(gaussmix.to_onnx(model, dtype=dtype), X)
    assert outputs["label"].dtype == np.int64
    assert outputs["probabilities"].dtype == dtype and outputs["score_samples"].dtype == dtype
    np.testing.assert_array_equal(outputs["label"], model.predict(X))
    reference, rows = exact(model), X.astype(np.float64)
    np.testing.assert_allclose(outputs["probabilities"], reference.predict_proba(rows), rtol=0,
                               atol=PROBABILITY_TOLERANCE[dtype])
    assert np.all(np.isfinite(outputs["score_samples"]))
    np.testing.assert_allclose(outputs["score_samples"], reference.score_samples(rows), rtol=LOG_DENSITY_RTOL, atol=0)


def fit(X, covariance_type, n_components=3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and degeneracy are not what is tested here
        return gaussmix.GaussianMixture(n_components, covariance_type=covariance_type, random_state=0,
                                        max_iter=30).fit(X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", canonical_covariance_types())
def test_every_structure_on_random_data_including_far_rows(covariance_type, dtype):
    X, _ = make_blobs(n_samples=300, n_features=3, n_components=3, seed=1, dtype=dtype)
    model = fit(X, covariance_type)
    assert_graph_matches(model, with_far_rows(X), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, columns, covariance_type, k", [
    ("faithful", None, "tied", 3),
    ("faithful", None, "VVV", 2),
    ("iris", range(4), "VEV", 2),
    ("iris", range(4), "diag", 3),
])
def test_real_data(name, columns, covariance_type, k, dtype):
    path = SHARED_DATA / f"{name}.csv"
    if not path.exists():
        path = PACKAGE_DATA / f"{name}.csv"
    if not path.exists():
        pytest.skip(f"{name}.csv is not available")
    X = np.loadtxt(path, delimiter=",", skiprows=1, usecols=columns).astype(dtype)
    model = fit(X, covariance_type, k)
    assert_graph_matches(model, with_far_rows(X), dtype)


def test_far_rows_do_not_overflow_where_exp_alone_would():
    # log-densities near -5e11: exp underflows to 0 without the max subtraction, giving -inf / NaN
    X, _ = make_blobs(n_samples=200, n_features=2, n_components=2, seed=4)
    model = fit(X, "full", 2)
    far = with_far_rows(X)[-3:]
    outputs = run_graph(gaussmix.to_onnx(model), far)
    assert np.all(outputs["score_samples"] < -1e9)
    np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(outputs["score_samples"], model.score_samples(far), rtol=1e-9)


def test_float32_graph_of_a_float64_model_and_saving(tmp_path):
    X, _ = make_blobs(n_samples=200, n_features=2, n_components=2, seed=5)
    model = fit(X, "full", 2)
    path = tmp_path / "model.onnx"
    gaussmix.to_onnx(model, path, dtype="float32")
    proto = onnx.load(str(path))
    outputs = run_graph(proto, X.astype(np.float32))
    assert outputs["probabilities"].dtype == np.float32
    np.testing.assert_array_equal(outputs["label"], model.predict(X))
    np.testing.assert_allclose(outputs["score_samples"], model.score_samples(X), rtol=1e-5)


def test_a_zero_weight_component_takes_no_responsibility():
    X, _ = make_blobs(n_samples=200, n_features=2, n_components=3, seed=6)
    model = fit(X, "full", 3)
    model.weights_ = np.array([0.5, 0.5, 0.0])
    outputs = run_graph(gaussmix.to_onnx(model), X)
    assert np.all(outputs["probabilities"][:, 2] == 0)
    np.testing.assert_allclose(outputs["score_samples"], model.score_samples(X), rtol=1e-9)


def test_errors_a_user_can_cause():
    with pytest.raises(NotFittedError):
        gaussmix.to_onnx(gaussmix.GaussianMixture(2))
    model = fit(make_blobs(n_samples=60, n_features=2, n_components=2)[0], "diag", 2)
    with pytest.raises(ValueError, match="float32 or float64"):
        gaussmix.to_onnx(model, dtype="int32")


def test_a_pipeline_with_a_scaler_converts_through_skl2onnx():
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    gaussmix.register_skl2onnx()
    X, _ = make_blobs(n_samples=300, n_features=3, n_components=3, seed=2)
    X = X * [1.0, 100.0, 0.01] + [0.0, 5000.0, 0.0]
    for covariance_type in ("full", "tied", "spherical", "EVE"):
        pipeline = make_pipeline(StandardScaler(), gaussmix.GaussianMixture(3, covariance_type=covariance_type,
                                                                             random_state=0)).fit(X)
        proto = skl2onnx.to_onnx(pipeline, X[:1])
        outputs = run_graph(proto, with_far_rows(X))
        far = with_far_rows(X)
        np.testing.assert_array_equal(outputs["label"], pipeline.predict(far))
        np.testing.assert_allclose(outputs["probabilities"], pipeline.predict_proba(far), rtol=0, atol=1e-6)
        np.testing.assert_allclose(outputs["score_samples"], pipeline.score_samples(far), rtol=1e-6)
    # float32 input: the scaler rounds too, so only the labels and probabilities are compared
    proto = skl2onnx.to_onnx(pipeline, X[:1].astype(np.float32))
    outputs = run_graph(proto, X.astype(np.float32))
    assert outputs["probabilities"].dtype == np.float32
    np.testing.assert_array_equal(outputs["label"], pipeline.predict(X))
    np.testing.assert_allclose(outputs["probabilities"], pipeline.predict_proba(X), rtol=0, atol=1e-4)


def test_cli_export(tmp_path):
    X, _ = make_blobs(n_samples=120, n_features=2, n_components=2, seed=7)
    model_path, onnx_path = tmp_path / "m.gmm", tmp_path / "m.onnx"
    gaussmix.save(fit(X, "tied", 2), model_path)
    result = CliRunner().invoke(cli, ["export", str(model_path), "--onnx", str(onnx_path)])
    assert result.exit_code == 0, result.output
    outputs = run_graph(onnx.load(str(onnx_path)), X)
    np.testing.assert_allclose(outputs["score_samples"], gaussmix.load(model_path).score_samples(X), rtol=1e-9)
    missing = CliRunner().invoke(cli, ["export", str(model_path)])
    assert missing.exit_code != 0 and "--onnx" in missing.output


def test_cli_export_dtype_sets_the_graphs_float_type(tmp_path):
    X, _ = make_blobs(n_samples=120, n_features=2, n_components=2, seed=8)
    model_path = tmp_path / "m.gmm"
    gaussmix.save(fit(X, "full", 2), model_path)
    for dtype in ("float32", "float64"):
        onnx_path = tmp_path / f"m-{dtype}.onnx"
        result = CliRunner().invoke(cli, ["export", str(model_path), "--onnx", str(onnx_path), "--dtype", dtype])
        assert result.exit_code == 0, result.output
        outputs = run_graph(onnx.load(str(onnx_path)), X.astype(dtype))
        assert outputs["score_samples"].dtype == np.dtype(dtype)
        tolerance = 1e-5 if dtype == "float32" else 1e-9
        np.testing.assert_allclose(outputs["score_samples"], gaussmix.load(model_path).score_samples(X),
                                   rtol=tolerance)
    wrong = CliRunner().invoke(cli, ["export", str(model_path), "--onnx", str(tmp_path / "x.onnx"),
                                     "--dtype", "float16"])
    assert wrong.exit_code != 0 and "float16" in wrong.output
