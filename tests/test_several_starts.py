"""Several starts in one fit: a sound start beats a degenerate one, a collapsed start is dropped."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gaussmix import GaussianMixture, select
from gaussmix.degeneracy import DegenerateFitWarning
from gaussmix.exceptions import CollapsedComponentError


def _cluster_and_repeated_rows(seed: int = 0) -> np.ndarray:
    """One round cluster of 120 rows; six copies of one row inside it."""
    rng = np.random.RandomState(seed)
    return np.concatenate([rng.normal(size=(120, 2)), np.repeat([[0.5, 0.5]], 6, axis=0)])


class Partitions:
    """``init_params``: the i-th call of a fit gives the i-th partition."""

    def __init__(self, *partitions: np.ndarray) -> None:
        self.partitions, self.calls = partitions, 0

    def __call__(self, X, sample_weight, n_components, random_state):
        labels = self.partitions[self.calls % len(self.partitions)]
        self.calls += 1
        return labels


def _on_the_copies(X: np.ndarray) -> np.ndarray:
    """Component 1 on the six copies, component 0 on everything else."""
    return (np.arange(X.shape[0]) >= 120).astype(int)


def _halves(X: np.ndarray) -> np.ndarray:
    return (X[:, 0] > 0.0).astype(int)


def test_a_sound_start_is_kept_before_a_degenerate_one_with_a_higher_likelihood():
    X = _cluster_and_repeated_rows()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateFitWarning)
        degenerate = GaussianMixture(2, init_params=Partitions(_on_the_copies(X)), max_iter=300).fit(X)
    sound = GaussianMixture(2, init_params=Partitions(_halves(X)), max_iter=300).fit(X)
    assert degenerate.degenerate_ and not sound.degenerate_
    assert degenerate.lower_bound_ > sound.lower_bound_  # what scikit-learn's rule would keep
    both = GaussianMixture(2, init_params=Partitions(_on_the_copies(X), _halves(X)), n_init=2, max_iter=300).fit(X)
    assert not both.degenerate_
    assert both.best_init_ == 1
    assert both.lower_bound_ == sound.lower_bound_
    assert len(both.lower_bounds_per_init_) == 2


def test_a_start_that_collapses_is_dropped_and_every_start_collapsing_raises():
    X = _cluster_and_repeated_rows()
    collapsing = Partitions(_on_the_copies(X))
    with pytest.raises(CollapsedComponentError):
        GaussianMixture(2, init_params=collapsing, reg_covar=0.0, max_iter=300).fit(X)
    both = GaussianMixture(2, init_params=Partitions(_on_the_copies(X), _halves(X)), n_init=2,
                           reg_covar=0.0, max_iter=300).fit(X)
    assert both.best_init_ == 1
    assert both.lower_bounds_per_init_[0] == []
    with pytest.raises(CollapsedComponentError):
        GaussianMixture(2, init_params=Partitions(_on_the_copies(X)), n_init=3, reg_covar=0.0, max_iter=300).fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "VEV", "EII"])
def test_each_cell_of_select_is_at_least_as_good_as_its_hierarchical_start_alone(covariance_type):
    rng = np.random.RandomState(3)
    X = np.concatenate([rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) * [3.0, 0.5] + 5.0])
    result = select(X, n_components=[1, 2, 3], covariance_types=[covariance_type], random_state=0)
    for k in (1, 2, 3):
        alone = GaussianMixture(k, covariance_type=covariance_type, init_params="hierarchical",
                                tol=1e-5, max_iter=500).fit(X)
        row = next(row for row in result.rows if row.n_components == k)
        assert row.log_likelihood >= alone.score(X) * X.shape[0] - 1e-6
        assert result.estimators_[(k, covariance_type)].init_params in ("hierarchical", "k-means++")
