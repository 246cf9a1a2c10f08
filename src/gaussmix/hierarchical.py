"""mclust's hierarchical start, kept importable here: it lives in :mod:`gaussmix.init.hierarchical`."""

from __future__ import annotations

from .init.hierarchical import MAX_ROWS, N_GROUPS, REGULARISATION, HierarchicalTree, draws_subset, hierarchical_labels

__all__ = ["MAX_ROWS", "N_GROUPS", "REGULARISATION", "HierarchicalTree", "draws_subset", "hierarchical_labels"]
