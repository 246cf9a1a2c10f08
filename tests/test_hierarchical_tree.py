"""The hierarchical merge tree is built once per ``select`` call and cut at every K."""

from __future__ import annotations

import numpy as np
import pytest

import gaussmix.selection as selection
from gaussmix import GaussianMixture, select
from gaussmix.hierarchical import HierarchicalTree, hierarchical_labels


def _clusters(n_rows, seed=0):
    """Three overlapping Gaussian clusters of different shapes, in 2-D."""
    rng = np.random.RandomState(seed)
    third = n_rows // 3
    return np.concatenate(
        [
            rng.normal(size=(third, 2)),
            rng.normal(size=(third, 2)) * [3.0, 0.5] + [2, 4],
            rng.normal(size=(n_rows - 2 * third, 2)) * 0.5 + [5, 0],
        ]
    )


def _is_refinement(fine, coarse):
    """Whether every cluster of ``fine`` lies inside one cluster of ``coarse``."""
    return all(np.unique(coarse[fine == label]).size == 1 for label in np.unique(fine))


def test_cuts_are_nested_partitions_with_k_clusters():
    # A tree: the cut at K+1 splits exactly one cluster of the cut at K.
    X = _clusters(450)
    tree = HierarchicalTree(X, None, np.random.RandomState(0), n_groups=40)
    cuts = {k: tree.labels(k) for k in range(1, 12)}
    for k, labels in cuts.items():
        assert np.array_equal(np.unique(labels), np.arange(k))
    for k in range(1, 11):
        assert _is_refinement(cuts[k + 1], cuts[k])


@pytest.mark.parametrize("weighted", [False, True])
def test_cut_of_one_tree_equals_the_standalone_initializer_for_every_k(weighted):
    # Above n_groups (12) the cut falls in Ward's stage; 2400 rows also exceed max_rows (a subset).
    X = _clusters(900)
    weights = np.random.RandomState(3).uniform(0.2, 3.0, size=len(X)) if weighted else None
    tree = HierarchicalTree(X, weights, np.random.RandomState(7), max_rows=600, n_groups=12)
    for k in range(1, 16):
        standalone = hierarchical_labels(X, weights, k, np.random.RandomState(7), max_rows=600, n_groups=12)
        assert np.array_equal(tree.labels(k), standalone), k


def test_tree_refuses_other_rows():
    X = _clusters(90)
    tree = HierarchicalTree(X, None, np.random.RandomState(0))
    with pytest.raises(ValueError, match="built on 90 rows"):
        tree(X[:50], None, 2, np.random.RandomState(0))


def _count_trees(monkeypatch):
    built = []

    class CountingTree(HierarchicalTree):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(selection, "HierarchicalTree", CountingTree)
    return built


@pytest.mark.parametrize(
    "n_rows, random_state, trees",
    [
        (300, 0, 1),  # no subset: one tree whatever the seeds
        (300, np.random.RandomState(0), 1),
        (2300, 4, 1),  # a subset, the same seed in every cell: one tree
        (2300, np.random.RandomState(0), 0),  # a subset per cell seed: each cell builds its own, as before
    ],
)
def test_select_builds_the_tree_once_when_every_cell_shares_it(monkeypatch, n_rows, random_state, trees):
    built = _count_trees(monkeypatch)
    result = select(_clusters(n_rows), n_components=[1, 2, 3], covariance_types=["VVV", "EII"],
                    random_state=random_state, n_init=1, max_iter=5)
    assert len(built) == trees
    # Fitted models do not carry the tree.
    assert {model.init_params for model in result.estimators_.values()} <= {"hierarchical", "k-means++"}


@pytest.mark.parametrize("n_rows", [300, 2300])
def test_select_cells_equal_standalone_hierarchical_fits(n_rows):
    # The shared tree's start gives each cell exactly the fit of GaussianMixture(init_params="hierarchical").
    X = _clusters(n_rows)
    weights = np.random.RandomState(1).uniform(0.5, 2.0, size=n_rows)
    result = select(X, n_components=[1, 2, 3, 4], covariance_types=["VVV", "VEI"], init_params="hierarchical",
                    random_state=11, sample_weight=weights, max_iter=20, tol=1e-3)
    for (k, covariance_type), model in result.estimators_.items():
        standalone = GaussianMixture(k, covariance_type=covariance_type, init_params="hierarchical",
                                     random_state=11, max_iter=20).fit(X, sample_weight=weights)
        assert np.array_equal(model.means_, standalone.means_)
        assert np.array_equal(model.covariances_, standalone.covariances_)
        assert model.n_iter_ == standalone.n_iter_


