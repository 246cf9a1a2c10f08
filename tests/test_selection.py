"""gaussmix.select and the information criteria, against independent computations."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import gaussmix
from gaussmix import GaussianMixture, select
from gaussmix.covariance import _REGISTRY, SphericalCovariance, canonical_covariance_types, register
from gaussmix.selection import information_criteria

from .conftest import make_blobs


def _log_weighted_densities(model, X):
    """log(pi_k N(x | mu_k, Sigma_k)) with scipy, shape (n, K)."""
    dense = model._fitted_params().dense_covariances()
    return np.column_stack([
        np.log(model.weights_[k]) + multivariate_normal(model.means_[k], dense[k]).logpdf(X)
        for k in range(model.n_components)
    ])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_criteria_match_scipy_and_closed_forms(covariance_type):
    X, _ = make_blobs(n_samples=200, n_features=2, seed=1)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    weighted = _log_weighted_densities(model, X)
    log_density = np.logaddexp.reduce(weighted, axis=1)
    resp = np.exp(weighted - log_density[:, None])
    entropy = -np.sum(resp * np.log(np.where(resp > 0, resp, 1.0)))
    hard = -np.sum(np.log(resp.max(axis=1)))  # mclust's icl: the hard classification's term
    D, K = 2, 3
    n_cov = {"full": K * D * (D + 1) / 2, "tied": D * (D + 1) / 2, "diag": K * D, "spherical": K}[covariance_type]
    p = (K - 1) + K * D + n_cov
    bic = -2 * log_density.sum() + p * math.log(len(X))
    assert model.bic(X) == pytest.approx(bic, rel=1e-10)
    assert model.icl(X) == pytest.approx(bic + 2 * hard, rel=1e-10)
    assert model.icl_entropy(X) == pytest.approx(bic + 2 * entropy, rel=1e-10)
    values = information_criteria(model, X)
    assert values["n_parameters"] == p
    assert values["bic"] == pytest.approx(bic, rel=1e-10)
    assert values["aic"] == pytest.approx(-2 * log_density.sum() + 2 * p, rel=1e-10)
    assert values["icl"] == pytest.approx(bic + 2 * hard, rel=1e-10)
    assert values["icl_entropy"] == pytest.approx(bic + 2 * entropy, rel=1e-10)


def test_icl_is_at_least_bic_and_equals_it_for_one_component():
    X, _ = make_blobs(n_samples=150, n_features=2, seed=2)
    one = GaussianMixture(1, random_state=0).fit(X)
    assert one.icl(X) == pytest.approx(one.bic(X), rel=1e-12)
    assert one.icl_entropy(X) == pytest.approx(one.bic(X), rel=1e-12)
    three = GaussianMixture(3, random_state=0).fit(X)
    assert three.icl_entropy(X) >= three.icl(X) >= three.bic(X)


def test_frequency_weights_count_like_repeated_rows():
    X, _ = make_blobs(n_samples=60, n_features=2, seed=3)
    counts = np.random.RandomState(0).randint(1, 4, size=len(X))
    model = GaussianMixture(2, random_state=0).fit(X)
    weighted = information_criteria(model, X, counts.astype(float))
    repeated = information_criteria(model, np.repeat(X, counts, axis=0))
    for key in ("log_likelihood", "bic", "aic", "icl"):
        assert weighted[key] == pytest.approx(repeated[key], rel=1e-10)


def test_old_faithful_chooses_tied_three_components_like_mclust(faithful):
    result = select(faithful, n_components=[2, 3], covariance_types=["tied", "full"],
                    n_init=3, random_state=0, tol=1e-6, max_iter=500, init_params="k-means++")
    assert (result.best.n_components, result.best.covariance_type) == (3, "tied")
    reference = SklearnGaussianMixture(3, covariance_type="tied", n_init=3, tol=1e-6, max_iter=500,
                                       random_state=0).fit(faithful)
    assert result.best.bic == pytest.approx(reference.bic(faithful), rel=1e-5)
    # mclust: EEE, 3 components, BIC = -2314.386 in its (higher is better) sign
    assert abs(-result.best.bic - (-2314.386)) < 0.2
    assert result.best_estimator_.n_components == 3
    assert len(result.rows) == 4


def test_rows_agree_with_each_estimator_and_grid_order():
    X, _ = make_blobs(n_samples=120, n_features=2, seed=4)
    result = select(X, n_components=[1, 2, 3], covariance_types=["diag", "spherical"], random_state=0)
    assert [(r.covariance_type, r.n_components) for r in result.rows] == [
        ("diag", 1), ("diag", 2), ("diag", 3), ("spherical", 1), ("spherical", 2), ("spherical", 3)]
    for row in result.rows:
        model = result.estimators_[(row.n_components, row.covariance_type)]
        assert row.bic == pytest.approx(model.bic(X), rel=1e-12)
        assert row.aic == pytest.approx(model.aic(X), rel=1e-12)
        assert row.icl == pytest.approx(model.icl(X), rel=1e-12)
    assert result.best.bic == min(r.bic for r in result.rows)
    by_aic = select(X, n_components=[1, 2, 3], covariance_types="diag", criterion="aic", random_state=0)
    assert by_aic.best.aic == min(r.aic for r in by_aic.rows)


def test_all_means_every_registered_structure_including_new_ones():
    class OtherSpherical(SphericalCovariance):
        name = "test-only-spherical"
        aliases = ()

    X, _ = make_blobs(n_samples=80, n_features=2, seed=5)
    register(OtherSpherical())
    try:
        assert "test-only-spherical" in canonical_covariance_types()
        result = select(X, n_components=1, covariance_types="all", random_state=0)
        assert result.covariance_types == canonical_covariance_types()
        # more types than K: one table line per type, each holding its BIC
        lines = result.table().split("\n")[2:]
        for line, row in zip(lines, result.rows):
            assert line.split()[0] == row.covariance_type and f"{row.bic:.2f}" in line
    finally:
        del _REGISTRY["test-only-spherical"]
    assert {"full", "tied", "diag", "spherical"} <= set(result.covariance_types)
    # aliases of one structure are one column
    assert select(X, 1, ["full", "VVV"], random_state=0).covariance_types == ["full"]


def test_failed_cells_are_recorded_not_fatal():
    X = np.random.RandomState(0).normal(size=(6, 2))
    result = select(X, n_components=[1, 2, 10], covariance_types="full", random_state=0)
    failed = [row for row in result.rows if not row.ok]
    assert [row.n_components for row in failed] == [10]
    assert "n_samples >= n_components" in failed[0].error
    assert failed[0].bic is None and not failed[0].converged
    assert "failed" in result.table()
    collapsing = np.repeat(np.eye(2), 20, axis=0)  # two distinct points
    result = select(collapsing + 1e-3 * np.random.RandomState(1).normal(size=(40, 2)),
                    n_components=[1, 3], covariance_types="full", reg_covar=0, random_state=0)
    assert result.best.n_components in (1, 3)


def test_every_cell_failing_raises():
    X = np.random.RandomState(0).normal(size=(4, 2))
    with pytest.raises(ValueError, match="every fit of the selection grid failed .*K=5 full"):
        select(X, n_components=[5, 6], covariance_types="full")


@pytest.mark.parametrize("kwargs, message", [
    (dict(criterion="bci"), "unknown criterion 'bci'; valid values are: 'bic', 'aic', 'icl'"),
    (dict(n_components=[]), "n_components is empty"),
    (dict(n_components=[0, 1]), "n_components must be >= 1"),
    (dict(covariance_types="fulll"), "unknown covariance_type 'fulll'"),
    (dict(covariance_types=[]), "covariance_types is empty"),
    (dict(n_init=0), "n_init must be >= 1"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    X = np.random.RandomState(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=message):
        select(X, **kwargs)


def test_bad_data_raises_once():
    X = np.random.RandomState(0).normal(size=(20, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"row\(s\) 3"):
        select(X, n_components=[1, 2])
    with pytest.raises(TypeError, match="select\\(\\) sets covariance_type itself"):
        select(X, covariance_type="full")


def test_parallel_equals_sequential_and_progress_reports_each_cell():
    X, _ = make_blobs(n_samples=100, n_features=2, seed=6)
    seen = []
    sequential = select(X, [1, 2], ["full", "diag"], random_state=0, progress=seen.append)
    parallel = select(X, [1, 2], ["full", "diag"], random_state=0, n_jobs=2)
    assert sequential.to_dict() == parallel.to_dict()
    assert len(seen) == 4


def test_to_dict_is_json_and_repr_is_readable():
    X, _ = make_blobs(n_samples=100, n_features=2, seed=7)
    result = select(X, [1, 2, 3], ["full", "tied"], random_state=0)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["criterion"] == "bic" and data["lower_is_better"] is True
    assert len(data["rows"]) == 6 and data["best"]["bic"] == result.best.bic
    text = repr(result)
    assert "lower is better" in text and "*" in text and "tied" in text


def test_to_pandas():
    pandas = pytest.importorskip("pandas")
    X, _ = make_blobs(n_samples=60, n_features=2, seed=8)
    frame = select(X, [1, 2], "diag", random_state=0).to_pandas()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame["n_components"]) == [1, 2]


def test_progress_events_carry_the_restart():
    X, _ = make_blobs(n_samples=100, n_features=2, seed=9)
    events = []
    model = GaussianMixture(2, n_init=3, random_state=0, callback=events.append).fit(X)
    assert {e.init_index for e in events} == {0, 1, 2}
    assert all(e.n_init == 3 for e in events)
    assert [len(trace) for trace in model.lower_bounds_per_init_] == [
        sum(e.init_index == i for e in events) for i in range(3)]
    assert gaussmix.select is select


def test_dataframe_input_keeps_feature_names_without_warnings(faithful):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(faithful, columns=["eruptions", "waiting"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = select(frame, [2], ["tied"], random_state=0)
        assert list(result.best_estimator_.feature_names_in_) == ["eruptions", "waiting"]
        result.best_estimator_.predict(frame)
