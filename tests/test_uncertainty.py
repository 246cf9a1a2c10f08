"""Per-row uncertainty and the 1-D distribution function and quantiles, against R mclust.

The numbers come from ``benchmarks/mclust_uncertainty_reference.R`` (mclust 6.0.0, Debian's
r-cran-mclust), committed under ``benchmarks/results/mclust/uncertainty`` with 17 significant
digits; no R is needed here. Each comparison uses a GaussianMixture holding mclust's fitted
parameters, so it checks the arithmetic, not two fits that may differ.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from gaussmix import GaussianMixture
from gaussmix.covariance import available_covariance_types, get_covariance_model

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "results" / "mclust" / "uncertainty"
DATA = {"acidity": ROOT / "benchmarks" / "data" / "acidity.csv",
        "faithful": ROOT.parent / "shared" / "data" / "faithful.csv"}


def _rows(name: str) -> list[dict]:
    with open(REFERENCE / name, newline="") as handle:
        return list(csv.DictReader(handle))


def _column(rows: list[dict], key: str) -> np.ndarray:
    return np.array([float(row[key]) for row in rows])


def _data(name: str) -> np.ndarray:
    path = DATA[name]
    if not path.exists():
        pytest.skip(f"{path} is not here")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return np.array([[float(cell) for cell in row] for row in rows[1:]])


def _model(weights, means, covariances, covariance_type="full") -> GaussianMixture:
    """A GaussianMixture holding the given dense (K, D, D) covariances in ``covariance_type``'s layout."""
    weights, means, dense = (np.asarray(a, dtype=np.float64) for a in (weights, means, covariances))
    K, D = means.shape
    structure = get_covariance_model(covariance_type)
    shape = structure.parameter_shape(K, D)
    if D == 1:  # in 1-D every layout holds variances: K of them, or one shared
        variances = dense[:, 0, 0]
        layout = variances.reshape(shape) if np.prod(shape) == K else variances[:1].reshape(shape)
    else:
        assert covariance_type in ("full", "VVV")
        layout = dense
    model = GaussianMixture(K, covariance_type=covariance_type)
    model.weights_, model.means_, model.covariances_ = weights, means, layout
    model.precisions_cholesky_ = structure.precision_cholesky(layout)
    model.precisions_ = structure.precisions(model.precisions_cholesky_)
    model.n_features_in_ = D
    return model


def _mclust_model(name: str, covariance_type: str = "full") -> GaussianMixture:
    """A GaussianMixture holding the parameters mclust fitted on ``name``."""
    rows = _rows(f"{name}_params.csv")
    features = [key for key in rows[0] if key not in ("component", "weight") and not key.startswith("sigma_")]
    D = len(features)
    covariances = np.array([[[float(row[f"sigma_{i + 1}_{j + 1}"]) for j in range(D)] for i in range(D)]
                            for row in rows])
    return _model(_column(rows, "weight"), [[float(row[f]) for f in features] for row in rows], covariances,
                  covariance_type)


def _random_1d_model(seed: int, K: int) -> GaussianMixture:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(K))
    means = rng.normal(0, 5, (K, 1))
    variances = np.exp(rng.uniform(np.log(0.01), np.log(10), K))
    return _model(weights, means, variances[:, None, None], "V")


# ------------------------------------------------------------------ against mclust
@pytest.mark.parametrize("name", ["acidity", "faithful"])
def test_uncertainty_equals_mclusts_at_its_parameters(name):
    X = _data(name)
    reference = _rows(f"{name}_uncertainty.csv")
    model = _mclust_model(name)
    uncertainty = model.uncertainty(X)
    assert uncertainty.shape == (len(X),)
    np.testing.assert_allclose(uncertainty, _column(reference, "uncertainty"), rtol=0, atol=1e-6)
    # far tighter in fact: the same E-step in the same precision
    np.testing.assert_allclose(uncertainty, _column(reference, "uncertainty"), rtol=0, atol=1e-12)
    z = np.column_stack([_column(reference, f"z_{k + 1}") for k in range(model.n_components)])
    np.testing.assert_allclose(model.predict_proba(X), z, rtol=0, atol=1e-12)


def test_mclusts_fit_uncertainty_lags_its_parameters():
    # Why the reference comes from estep: Mclust's own $uncertainty is of the E-step before its
    # last M-step, so it differs from the uncertainty its parameters give by far more than 1e-6.
    X = _data("faithful")
    reference = _rows("faithful_uncertainty.csv")
    lag = np.abs(_mclust_model("faithful").uncertainty(X) - _column(reference, "mclust_fit_uncertainty"))
    assert lag.max() > 1e-3


# every structure name: in 1-D each is a variance per component (acidity's E: one shared)
@pytest.mark.parametrize("covariance_type", available_covariance_types())
def test_cdf_equals_cdfMclust_for_every_structure(covariance_type):
    rows = _rows("acidity_cdf.csv")
    x = _column(rows, "x")
    model = _mclust_model("acidity", covariance_type)
    np.testing.assert_allclose(model.cdf(x), _column(rows, "cdf"), rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.cdf(x), _column(rows, "cdf"), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("covariance_type", ["E", "V", "full", "tied", "spherical"])
def test_quantile_equals_quantileMclust(covariance_type):
    rows = _rows("acidity_quantile.csv")
    p, expected, tight = (_column(rows, key) for key in ("p", "quantile", "quantile_tight"))
    quantile = _mclust_model("acidity", covariance_type).quantile(p)
    assert quantile[0] == -np.inf and quantile[-1] == np.inf  # p = 0 and 1
    inner = slice(1, -1)
    np.testing.assert_allclose(quantile[inner], expected[inner], rtol=0, atol=1e-6)
    # quantileMclust stops uniroot at sqrt(eps) ~ 1.5e-8 in x: it is up to ~3e-9 from the root;
    # the same root solved by uniroot at its tightest agrees with gaussmix's to rounding.
    assert np.max(np.abs(quantile[inner] - expected[inner])) < 1.5e-8
    np.testing.assert_allclose(quantile[inner], tight[inner], rtol=0, atol=1e-12)


# ------------------------------------------------------------------ properties
@pytest.mark.parametrize("seed, K", [(0, 1), (1, 2), (2, 3), (3, 5), (4, 9)])
def test_quantile_inverts_cdf_and_cdf_is_monotone(seed, K):
    model = _random_1d_model(seed, K)
    means, sds = model.means_[:, 0], np.sqrt(model.covariances_)
    x = np.random.default_rng(seed).uniform(np.min(means - 4 * sds), np.max(means + 4 * sds), 500)
    p = model.cdf(x)
    # where the density is tiny, x is not determined by p in floating point (an error in p of
    # 1e-16 moves x by 1e-16 / density): keep the rest
    density = np.exp(model.score_samples(x[:, None]))
    keep = (density > 1e-6) & (p > 1e-12) & (p < 1 - 1e-12)
    assert keep.sum() > 100  # narrow components far apart leave gaps of no density
    np.testing.assert_allclose(model.quantile(p[keep]), x[keep], rtol=0, atol=1e-9)
    q = model.quantile(np.linspace(0, 1, 1001))
    np.testing.assert_allclose(model.cdf(q[1:-1]), np.linspace(0, 1, 1001)[1:-1], rtol=0, atol=1e-14)
    assert np.all(np.diff(q) > 0)
    grid = np.linspace(-40, 40, 20001)
    F = model.cdf(grid)
    # the weights sum to 1 up to rounding, and so does F at the top (mclust does not renormalise)
    assert np.all(np.diff(F) >= 0) and 0 <= F[0] <= F[-1] <= 1 + 1e-15
    assert model.cdf(-np.inf) == 0.0 and model.cdf(np.inf) == pytest.approx(1.0, abs=1e-15)


def test_quantile_is_accurate_deep_in_both_tails():
    model = _random_1d_model(7, 3)
    for p in (1e-300, 1e-100, 1e-20, 1e-8):
        q = model.quantile(p)
        assert np.isfinite(q) and model.cdf(q) == pytest.approx(p, rel=1e-10)
    weights, means = model.weights_, model.means_[:, 0]
    sds = np.sqrt(model.covariances_)
    for tail in (1e-15, 1e-12, 1e-8):  # 1 - F(q) = tail, which F itself would round away
        q = model.quantile(1 - tail)
        upper = float(np.sum(weights * stats.norm.sf(q, means, sds)))
        assert upper == pytest.approx(tail, rel=1e-6)  # 1 - tail itself carries ~1e-16 / tail


@pytest.mark.parametrize("mean, variance", [(0.0, 1.0), (-3.5, 0.04), (1e3, 250.0)])
def test_one_component_is_scipys_normal(mean, variance):
    model = _model([1.0], [[mean]], [[[variance]]], "V")
    sd = np.sqrt(variance)
    x = mean + sd * np.linspace(-8, 8, 161)
    np.testing.assert_allclose(model.cdf(x), stats.norm.cdf(x, mean, sd), rtol=1e-12, atol=1e-300)
    p = np.array([1e-12, 1e-6, 0.001, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999, 1 - 1e-6, 1 - 1e-12])
    np.testing.assert_allclose(model.quantile(p), stats.norm.ppf(p, mean, sd), rtol=1e-12, atol=1e-12 * sd)
    np.testing.assert_array_equal(model.uncertainty(x[:, None]), 0.0)


def test_uncertainty_lies_between_certain_and_a_tie():
    K = 3
    model = _model(np.full(K, 1 / K), [[0.0], [1.0], [2.0]], np.ones((K, 1, 1)) * 0.3, "E")
    x = np.linspace(-5, 7, 1001)[:, None]
    uncertainty = model.uncertainty(x)
    assert np.all(uncertainty >= 0) and np.all(uncertainty <= 1 - 1 / K + 1e-15)
    np.testing.assert_allclose(uncertainty, 1 - model.predict_proba(x).max(axis=1), rtol=0, atol=0)
    # midway between two equal components the top two tie; the third adds a little
    two = _model([0.5, 0.5], [[-1.0], [1.0]], np.ones((2, 1, 1)), "V")
    assert two.uncertainty(np.array([[0.0]]))[0] == pytest.approx(0.5, abs=1e-15)
    assert two.uncertainty(np.array([[50.0]]))[0] < 1e-40


def test_uncertainty_streams_out_of_core_sources(tmp_path):
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 1, (700, 2)), rng.normal(2.5, 1, (700, 2))])
    model = GaussianMixture(2, random_state=0, chunk_size=128).fit(X)
    path = tmp_path / "X.npy"
    np.save(path, X)
    expected = model.uncertainty(X)
    assert 0.05 < expected.max() <= 0.5  # the two blobs overlap: some rows are unsure
    np.testing.assert_allclose(model.uncertainty(str(path)), expected, rtol=1e-12, atol=1e-15)
    memmap = np.load(path, mmap_mode="r")
    np.testing.assert_allclose(model.uncertainty(memmap), expected, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------ shapes and errors
def test_cdf_and_quantile_keep_the_shape_of_their_input():
    model = _mclust_model("acidity", "E")
    assert isinstance(model.cdf(4.5), float) and isinstance(model.quantile(0.5), float)
    assert model.quantile(0.0) == -np.inf and model.quantile(1) == np.inf
    x = np.array([[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    assert model.cdf(x).shape == (3, 2)
    np.testing.assert_allclose(model.cdf(x).ravel(), model.cdf(x.ravel()), rtol=0, atol=0)
    assert model.quantile([[0.1, 0.2]]).shape == (1, 2)
    assert model.cdf([]).shape == (0,) and model.quantile([]).shape == (0,)


def test_cdf_and_quantile_need_a_one_feature_model():
    model = _mclust_model("faithful")
    for method, argument in ((model.cdf, 3.0), (model.quantile, 0.5)):
        with pytest.raises(ValueError, match=r"needs a mixture of one feature, but this model has 2 features"):
            method(argument)


@pytest.mark.parametrize("p", [-0.1, 1.5, np.nan, [0.2, 100.0]])
def test_quantile_refuses_what_is_not_a_probability(p):
    with pytest.raises(ValueError, match=r"p must be probabilities in \[0, 1\]; 1 value\(s\) are not"):
        _mclust_model("acidity", "E").quantile(p)


def test_cdf_refuses_nan_and_text():
    model = _mclust_model("acidity", "E")
    with pytest.raises(ValueError, match="x holds 1 NaN value"):
        model.cdf([1.0, np.nan])
    with pytest.raises(ValueError, match="x must be numbers"):
        model.cdf("four")


def test_unfitted_model_says_so():
    from sklearn.exceptions import NotFittedError

    for method, argument in (("uncertainty", [[1.0]]), ("cdf", 1.0), ("quantile", 0.5)):
        with pytest.raises(NotFittedError):
            getattr(GaussianMixture(2), method)(argument)


# ------------------------------------------------------------------ command line
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_predict_uncertainty_on_the_command_line(tmp_path):
    from click.testing import CliRunner

    from gaussmix.cli import cli
    from gaussmix.io import save

    X = _data("faithful")
    model = _mclust_model("faithful")
    model.feature_names_in_ = np.array(["eruptions", "waiting"], dtype=object)
    model.converged_, model.n_iter_, model.lower_bound_ = True, 1, 0.0
    model.lower_bounds_, model.lower_bounds_per_init_ = [0.0], [[0.0]]
    model.degenerate_components_, model.degenerate_ = np.zeros(3, dtype=bool), False
    path = tmp_path / "faithful.gmm"
    save(model, path)
    data = DATA["faithful"]
    expected = _column(_rows("faithful_uncertainty.csv"), "uncertainty")
    runner = CliRunner()

    result = runner.invoke(cli, ["predict", str(path), str(data), "--uncertainty"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "label,uncertainty"
    table = np.array([line.split(",") for line in lines[1:]], dtype=float)
    np.testing.assert_array_equal(table[:, 0], model.predict(X))
    np.testing.assert_allclose(table[:, 1], expected, rtol=1e-9, atol=1e-12)  # printed with 10 digits

    result = runner.invoke(cli, ["predict", str(path), str(data), "--proba", "--uncertainty"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "p0,p1,p2,uncertainty"

    result = runner.invoke(cli, ["predict", str(path), str(data), "--uncertainty", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    np.testing.assert_allclose(payload["uncertainty"], expected, rtol=0, atol=1e-12)
    assert payload["labels"] == model.predict(X).tolist()

    plain = runner.invoke(cli, ["predict", str(path), str(data)])
    assert plain.stdout.splitlines()[0] == "label"  # unchanged without the option
