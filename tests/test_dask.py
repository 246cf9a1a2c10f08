"""gaussmix.dask: fits on a LocalCluster of worker processes equal the in-memory fit."""

from __future__ import annotations

import os
import signal
import warnings

import numpy as np
import pytest

from gaussmix import BayesianGaussianMixture, GaussianMixture

from .conftest import assert_same_bayesian_fit, assert_same_fit, fit_quietly, make_blobs, starting_point
from .test_missing import _remove

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dask_gaussmix = pytest.importorskip("gaussmix.dask")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        worker_dashboard_address=None,
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def data():
    return make_blobs(4000, 3, 3, seed=21)[0]





# The source only changes how statistics are summed: one full and one diagonal-scatter type suffice.
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_dask_fit_equals_in_memory_fit_from_the_same_start(client, data, covariance_type):
    kwargs = dict(n_components=3, covariance_type=covariance_type, tol=0, max_iter=5, **starting_point(data, covariance_type))
    distributed_fit = fit_quietly(dask_gaussmix.GaussianMixture, da.from_array(data, chunks=(450, 3)), **kwargs)
    assert_same_fit(distributed_fit, fit_quietly(GaussianMixture, data, **kwargs))


def test_weighted_dataframe_fit_and_sampled_start(client, data):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    weights = np.random.RandomState(0).uniform(0, 2, len(data))
    frame = dd.from_pandas(pd.DataFrame(data, columns=list("abc")), npartitions=5)
    common = dict(n_components=3, random_state=4)
    start = fit_quietly(dask_gaussmix.GaussianMixture, frame, max_iter=0, sample_weight=da.from_array(weights, chunks=1000), **common)
    fitted = fit_quietly(dask_gaussmix.GaussianMixture, frame, tol=0, max_iter=5, sample_weight=da.from_array(weights), **common)
    expected = fit_quietly(GaussianMixture, data, tol=0, max_iter=5, sample_weight=weights, n_components=3,
                    weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
    assert_same_fit(fitted, expected)


def test_a_worker_killed_mid_fit_does_not_change_the_result(client, data):
    kwargs = dict(n_components=3, tol=0, max_iter=8, **starting_point(data, "full"))
    expected = fit_quietly(GaussianMixture, data, **kwargs)
    victims = list(client.run(os.getpid).values())
    killed = []

    def kill_one_worker(event):
        if event.n_iter == 3 and not killed:
            os.kill(victims[0], signal.SIGKILL)  # its persisted blocks are lost with it
            killed.append(victims[0])

    X = da.from_array(data, chunks=(400, 3))
    result = fit_quietly(dask_gaussmix.GaussianMixture, X, callback=kill_one_worker, **kwargs)
    assert killed
    assert_same_fit(result, expected)


def test_inference_is_lazy_and_matches_in_memory(client, data):
    model = fit_quietly(dask_gaussmix.GaussianMixture, da.from_array(data, chunks=1000), n_components=3, random_state=0, max_iter=3)
    X = da.from_array(data, chunks=700)
    # The same fitted attributes on the in-memory estimator are the reference.
    in_memory = GaussianMixture(3)
    in_memory.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    for method in ("predict", "predict_proba", "score_samples"):
        lazy = getattr(model, method)(X)
        assert isinstance(lazy, da.Array)
        np.testing.assert_allclose(lazy.compute(), getattr(in_memory, method)(data), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(model.bic(X), in_memory.bic(data), rtol=1e-12)
    np.testing.assert_allclose(model.aic(X), in_memory.aic(data), rtol=1e-12)


@pytest.fixture(scope="module")
def incomplete(data):
    """``data`` with a fifth of its entries missing at random; the first block kept complete."""
    X, _ = _remove(data, 0.2, seed=21)
    X[:500] = data[:500]
    return X


# Blocks with NaN only change which E-step runs on the workers: one dense and one diagonal
# structure, one of them weighted, and an iterative mclust structure.
@pytest.mark.parametrize("covariance_type, weighted", [("full", True), ("diag", False), ("VEV", False)])
def test_marginalize_fit_equals_the_in_memory_incomplete_fit(client, incomplete, covariance_type, weighted):
    weights = np.random.RandomState(1).uniform(0.3, 2, len(incomplete)) if weighted else None
    kwargs = dict(n_components=3, covariance_type=covariance_type, missing="marginalize", tol=0, max_iter=5,
                  **starting_point(np.nan_to_num(incomplete), covariance_type))
    distributed_fit = fit_quietly(
        dask_gaussmix.GaussianMixture, da.from_array(incomplete, chunks=(500, 3)),
        sample_weight=None if weights is None else da.from_array(weights, chunks=500), **kwargs,
    )
    in_memory = fit_quietly(GaussianMixture, incomplete, sample_weight=weights, **kwargs)
    assert_same_fit(distributed_fit, in_memory)
    np.testing.assert_allclose(distributed_fit.lower_bounds_, in_memory.lower_bounds_, rtol=1e-10)


def test_marginalize_fit_with_its_own_start_finds_the_in_memory_optimum(client, incomplete):
    kwargs = dict(n_components=3, missing="marginalize", random_state=0, tol=1e-8, max_iter=500)
    distributed_fit = fit_quietly(dask_gaussmix.GaussianMixture, da.from_array(incomplete, chunks=700), **kwargs)
    in_memory = fit_quietly(GaussianMixture, incomplete, **kwargs)
    np.testing.assert_allclose(distributed_fit.lower_bound_, in_memory.lower_bound_, rtol=1e-7)
    np.testing.assert_allclose(np.sort(distributed_fit.means_, axis=0), np.sort(in_memory.means_, axis=0), atol=1e-4)


def test_marginalize_inference_is_lazy_and_matches_in_memory(client, incomplete):
    model = fit_quietly(GaussianMixture, incomplete, n_components=3, missing="marginalize", random_state=0,
                        max_iter=3)
    lazy_model = dask_gaussmix.GaussianMixture(**model.get_params())
    lazy_model.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    X = da.from_array(incomplete, chunks=700)
    for method in ("predict", "predict_proba", "score_samples"):
        lazy = getattr(lazy_model, method)(X)
        assert isinstance(lazy, da.Array)
        np.testing.assert_allclose(lazy.compute(), getattr(model, method)(incomplete), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(lazy_model.score(X), model.score(incomplete), rtol=1e-12)
    np.testing.assert_allclose(lazy_model.bic(X), model.bic(incomplete), rtol=1e-12)


def test_marginalize_names_rows_with_nothing_observed(client, incomplete):
    bad = incomplete.copy()
    bad[[17, 3210]] = np.nan
    with pytest.raises(ValueError, match=r"row\(s\) 17, 3210 .*every entry missing"):
        dask_gaussmix.GaussianMixture(2, missing="marginalize").fit(da.from_array(bad, chunks=500))
    model = fit_quietly(dask_gaussmix.GaussianMixture, da.from_array(incomplete, chunks=1000), n_components=2,
                        missing="marginalize", random_state=0, max_iter=2)
    # a lazy result fails at the first bad block computed: it names its rows in the whole array
    with pytest.raises(ValueError, match=r"row\(s\) (17|3210) .*every entry missing"):
        model.predict(da.from_array(bad, chunks=1000)).compute()


def test_nan_without_marginalize_names_the_option(client, incomplete):
    with pytest.raises(ValueError, match='NaN value.*missing="marginalize"'):
        dask_gaussmix.GaussianMixture(2).fit(da.from_array(incomplete, chunks=500))
    model = fit_quietly(dask_gaussmix.GaussianMixture, da.from_array(np.nan_to_num(incomplete), chunks=1000),
                        n_components=2, random_state=0, max_iter=2)
    with pytest.raises(ValueError, match='missing="marginalize"'):
        model.score_samples(da.from_array(incomplete, chunks=1000)).compute()


def test_nan_on_a_worker_is_reported_with_global_row(client, data):
    bad = data.copy()
    bad[3210, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN value\(s\) in row\(s\) 3210"):
        dask_gaussmix.GaussianMixture(2).fit(da.from_array(bad, chunks=500))
    model = fit_quietly(dask_gaussmix.GaussianMixture, da.from_array(data, chunks=1000), n_components=2, random_state=0, max_iter=2)
    with pytest.raises(ValueError, match=r"row\(s\) 3210"):
        model.predict(da.from_array(bad, chunks=1000)).compute()


def test_lazy_impute_equals_the_in_memory_one_bit_for_bit(client, incomplete):
    model = fit_quietly(GaussianMixture, incomplete, n_components=3, missing="marginalize", random_state=0,
                        max_iter=3)
    lazy_model = dask_gaussmix.GaussianMixture(**{**model.get_params(), "chunk_size": 300})
    lazy_model.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    X = da.from_array(incomplete, chunks=700)
    filled = lazy_model.impute(X)
    assert isinstance(filled, da.Array) and filled.shape == incomplete.shape
    np.testing.assert_array_equal(filled.compute(), model.impute(incomplete))
    draws = lazy_model.impute(X, n_draws=3, random_state=2)
    assert isinstance(draws, da.Array) and draws.shape == (3, *incomplete.shape)
    np.testing.assert_array_equal(draws.compute(), model.impute(incomplete, n_draws=3, random_state=2))
    with pytest.raises(ValueError, match="lazy Dask array"):
        lazy_model.impute(X, out="filled.npy")
    bad = incomplete.copy()
    bad[2500] = np.nan
    with pytest.raises(ValueError, match=r"row\(s\) 2500 .*every entry missing"):
        lazy_model.impute(da.from_array(bad, chunks=700)).compute()


# ------------------------------------------------------------------ BayesianGaussianMixture
@pytest.mark.parametrize("covariance_type, prior_type", [("full", "dirichlet_process"),
                                                         ("spherical", "dirichlet_distribution")])
def test_dask_bayesian_fit_equals_in_memory_fit(client, data, covariance_type, prior_type):
    # 4000 rows: the workers' reservoir sample is every row, so the start is the in-memory one
    settings = dict(n_components=4, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
                    random_state=0, tol=0, max_iter=12)
    distributed_fit = fit_quietly(dask_gaussmix.BayesianGaussianMixture, da.from_array(data, chunks=(450, 3)),
                                  **settings)
    assert_same_bayesian_fit(distributed_fit, fit_quietly(BayesianGaussianMixture, data, **settings))


def test_dask_bayesian_weighted_random_start_then_em_equals_in_memory_em(client, data):
    dd = pytest.importorskip("dask.dataframe")
    import pandas as pd

    # Random responsibilities are drawn per chunk on the workers (not scikit-learn's draws):
    # in-memory EM continuing from that start must give the Dask fit.
    weights = np.random.RandomState(0).uniform(0, 2, len(data))
    frame = dd.from_pandas(pd.DataFrame(data, columns=list("abc")), npartitions=5)
    settings = dict(n_components=3, covariance_type="diag", init_params="random", random_state=4, tol=0)
    start = fit_quietly(dask_gaussmix.BayesianGaussianMixture, frame, max_iter=0,
                        sample_weight=da.from_array(weights, chunks=1000), **settings)
    again = fit_quietly(dask_gaussmix.BayesianGaussianMixture, frame, max_iter=0,
                        sample_weight=da.from_array(weights, chunks=1000), **settings)
    assert_same_bayesian_fit(again, start, rtol=1e-12)  # the same draws whichever worker ran a chunk
    fitted = fit_quietly(dask_gaussmix.BayesianGaussianMixture, frame, max_iter=6,
                         sample_weight=da.from_array(weights, chunks=1000), **settings)
    continued = BayesianGaussianMixture(warm_start=True, max_iter=6, **settings)
    continued.__dict__.update({key: value for key, value in start.__dict__.items() if key.endswith("_")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        continued.fit(data, sample_weight=weights)
    assert_same_bayesian_fit(fitted, continued)


def test_dask_bayesian_inference_is_lazy_and_matches_in_memory(client, data):
    model = fit_quietly(dask_gaussmix.BayesianGaussianMixture, da.from_array(data, chunks=1000), n_components=3,
                        random_state=0, max_iter=5)
    in_memory = fit_quietly(BayesianGaussianMixture, data, n_components=3, random_state=0, max_iter=5)
    X = da.from_array(data, chunks=700)
    for method in ("predict", "predict_proba", "score_samples"):
        lazy = getattr(model, method)(X)
        assert isinstance(lazy, da.Array)
        np.testing.assert_allclose(lazy.compute(), getattr(in_memory, method)(data), rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(model.score(X), in_memory.score(data), rtol=1e-9)


def test_dask_bayesian_bad_input_is_reported(client, data):
    bad = data.copy()
    bad[3210, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN value\(s\) in row\(s\) 3210"):
        dask_gaussmix.BayesianGaussianMixture(n_components=2).fit(da.from_array(bad, chunks=500))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(4000,\)"):
        dask_gaussmix.BayesianGaussianMixture().fit(da.from_array(data, chunks=500), sample_weight=da.ones(10))
    model = fit_quietly(dask_gaussmix.BayesianGaussianMixture, da.from_array(data, chunks=1000), n_components=2,
                        random_state=0, max_iter=2)
    with pytest.raises(ValueError, match="X has 2 features, but BayesianGaussianMixture is expecting 3"):
        model.predict(da.from_array(data[:, :2], chunks=1000))
