"""Robust selection: hierarchical plus k-means++ starts pick the right K where k-means starts do not."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from gaussmix import MCLUST_COVARIANCE_TYPES, select

SKLEARN_TYPES = ["full", "tied", "diag", "spherical"]
N_COMPONENTS = range(1, 5)


def _parallel_bars(seed=0, n_per_bar=150, n_bars=3):
    """Three long, thin, parallel clusters (sd 6 along, 0.2 across, 1.5 apart), rotated 0.5 rad."""
    rng = np.random.RandomState(seed)
    X = np.concatenate([rng.normal(size=(n_per_bar, 2)) * [6.0, 0.2] + [0.0, 1.5 * i] for i in range(n_bars)])
    angle = 0.5
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return X @ rotation.T


def _sklearn_selection(X, seed):
    """What scikit-learn users do: lowest BIC over K and the four types, default k-means start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [
            (SklearnGaussianMixture(k, covariance_type=c, random_state=seed).fit(X).bic(X), k, c)
            for k in N_COMPONENTS
            for c in SKLEARN_TYPES
        ]
    return min(fits)


def test_select_finds_the_three_parallel_clusters_where_kmeans_starts_do_not():
    X = _parallel_bars(0)
    sklearn_bic, sklearn_k, _ = _sklearn_selection(X, 0)
    assert sklearn_k != 3
    # k-means starts with scikit-learn's tol and max_iter, as scikit-learn's own selection runs
    kmeans_only = select(X, N_COMPONENTS, SKLEARN_TYPES, random_state=0, init_params="kmeans", tol=1e-3, max_iter=100)
    assert kmeans_only.best.n_components != 3
    result = select(X, N_COMPONENTS, SKLEARN_TYPES, random_state=0)
    assert result.best.n_components == 3
    # Same structures, so the difference is the starts: ours reach the better optimum.
    assert result.best.bic < min(sklearn_bic, kmeans_only.best.bic)


@pytest.mark.slow
def test_select_over_all_fourteen_structures_on_parallel_clusters():
    X = _parallel_bars(0)
    result = select(X, n_components=N_COMPONENTS, covariance_types="all", random_state=0)
    assert set(MCLUST_COVARIANCE_TYPES) <= {*result.covariance_types, "VVV", "EEE", "VVI", "VII"}
    assert len(result.covariance_types) == 14
    assert result.best.n_components == 3
