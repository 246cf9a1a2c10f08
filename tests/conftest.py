"""Shared fixtures: real datasets and small synthetic mixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "src" / "gaussmix" / "data"


@pytest.fixture(scope="session")
def faithful() -> np.ndarray:
    return np.loadtxt(PACKAGE_DATA / "faithful.csv", delimiter=",", skiprows=1)


@pytest.fixture(scope="session")
def iris() -> np.ndarray:
    path = SHARED_DATA / "iris.csv"
    if not path.exists():
        pytest.skip("../shared/data/iris.csv is not beside the checkout")
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(4))


def make_blobs(n_samples=600, n_features=3, n_components=3, seed=0, dtype=np.float64):
    """Well-separated anisotropic Gaussian clusters."""
    rng = np.random.RandomState(seed)
    means = rng.uniform(-10, 10, size=(n_components, n_features))
    labels = rng.randint(n_components, size=n_samples)
    X = np.empty((n_samples, n_features))
    for k in range(n_components):
        A = rng.normal(size=(n_features, n_features))
        rows = labels == k
        X[rows] = means[k] + rng.normal(size=(rows.sum(), n_features)) @ A
    return X.astype(dtype), labels


@pytest.fixture
def blobs():
    return make_blobs()
