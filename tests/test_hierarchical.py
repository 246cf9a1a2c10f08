"""init_params="hierarchical": model-based agglomerative clustering as an EM start."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from gaussmix import GaussianMixture
from gaussmix.hierarchical import hierarchical_labels
from gaussmix.init import available_initializers


def _separated(n_per_cluster=150, seed=0):
    """Three far-apart clusters, one round, one elongated, one small and tight."""
    rng = np.random.RandomState(seed)
    X = np.concatenate(
        [
            rng.normal(size=(n_per_cluster, 2)),
            rng.normal(size=(n_per_cluster, 2)) * [6.0, 0.3] + [0, 12],
            rng.normal(size=(n_per_cluster // 3, 2)) * 0.2 + [14, 0],
        ]
    )
    truth = np.repeat([0, 1, 2], [n_per_cluster, n_per_cluster, n_per_cluster // 3])
    return X, truth


def _parallel_bars(n_per_cluster=200, seed=0):
    """Two long thin parallel clusters closer to each other than their length."""
    rng = np.random.RandomState(seed)
    bar = rng.normal(size=(2 * n_per_cluster, 2)) * [5.0, 0.25]
    bar[n_per_cluster:, 1] += 2.0
    return bar, np.repeat([0, 1], n_per_cluster)


def test_is_registered():
    assert "hierarchical" in available_initializers()


def test_recovers_well_separated_clusters_exactly():
    X, truth = _separated()
    labels = hierarchical_labels(X, None, 3, np.random.RandomState(0))
    assert adjusted_rand_score(truth, labels) == 1.0


def test_recovers_parallel_elongated_clusters():
    # Euclidean criteria (Ward, k-means) cut the bars across; the VVV stage follows their shape.
    X, truth = _parallel_bars()
    labels = hierarchical_labels(X, None, 2, np.random.RandomState(0))
    assert adjusted_rand_score(truth, labels) == 1.0


def test_deterministic_without_subsampling():
    X, _ = _separated()
    first = hierarchical_labels(X, None, 3, np.random.RandomState(0))
    second = hierarchical_labels(X, None, 3, np.random.RandomState(123))
    assert np.array_equal(first, second)


def test_subset_is_reproducible_and_every_row_is_labelled():
    X, truth = _separated(n_per_cluster=600)
    first = hierarchical_labels(X, None, 3, np.random.RandomState(5), max_rows=300, n_groups=60)
    second = hierarchical_labels(X, None, 3, np.random.RandomState(5), max_rows=300, n_groups=60)
    assert np.array_equal(first, second)
    assert first.shape == truth.shape
    assert adjusted_rand_score(truth, first) == 1.0


def test_zero_weight_rows_take_no_part_but_get_labels():
    X, truth = _separated()
    rng = np.random.RandomState(1)
    # Far-away rows that would form their own cluster if they counted.
    outliers = rng.normal(size=(40, 2)) + [-40, -40]
    weights = np.concatenate([np.ones(len(X)), np.zeros(len(outliers))])
    labels = hierarchical_labels(np.concatenate([X, outliers]), weights, 3, np.random.RandomState(0))
    assert adjusted_rand_score(truth, labels[: len(X)]) == 1.0
    assert set(labels[len(X):]) <= set(range(3))


def test_weights_enter_the_model_based_merges():
    X, truth = _separated()
    weights = np.random.RandomState(2).uniform(0.5, 3.0, size=len(X))
    labels = hierarchical_labels(X, weights, 3, np.random.RandomState(0))
    assert adjusted_rand_score(truth, labels) == 1.0


@pytest.mark.parametrize("covariance_type", ["VVV", "EVE", "VVI"])
def test_as_em_start(covariance_type):
    X, truth = _separated()
    model = GaussianMixture(3, covariance_type=covariance_type, init_params="hierarchical", random_state=0)
    assert adjusted_rand_score(truth, model.fit_predict(X)) == 1.0
    weighted = GaussianMixture(3, covariance_type=covariance_type, init_params="hierarchical", random_state=0)
    weighted.fit(X, sample_weight=np.full(len(X), 2.0))
    assert np.allclose(np.sort(weighted.weights_), np.sort(model.weights_), atol=1e-6)
