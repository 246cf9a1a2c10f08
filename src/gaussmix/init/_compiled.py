"""Compiled helpers of the initialisers (needs numba): nearest centres and labelled statistics.

For few features and centres, where NumPy's matrix-product route is bound by
per-call overhead, :func:`nearest_centres` labels every row and
:func:`labelled_stats` sums the statistics of hard labels in one pass each
(:mod:`gaussmix.init._nearest`, :mod:`gaussmix.init._statistics`). Importing this module imports numba: do it lazily.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..stats import SuffStats

from .._jit import _njit, numba


def _nearest_centres(X, centres, labels):  # pragma: no cover - compiled
    """``labels[i]`` <- the index of the centre nearest to row i (exact squared
    differences; ties go to the lower index)."""
    n_samples, n_features = X.shape
    for i in range(n_samples):
        best = np.inf
        label = 0
        for k in range(centres.shape[0]):
            distance = 0.0
            for a in range(n_features):
                difference = X[i, a] - centres[k, a]
                distance += difference * difference
            if distance < best:
                best = distance
                label = k
        labels[i] = label


def _labelled_sums(X, weights, labels, origin, resp_weight, means, scatter):  # pragma: no cover - compiled
    """Weights, means and lower-triangular scatters of the rows ``X - origin``
    under hard labels, in two passes (the scatter about the means: nothing cancels)."""
    n_samples, n_features = X.shape
    for i in range(n_samples):
        k = labels[i]
        resp_weight[k] += weights[i]
        for a in range(n_features):
            means[k, a] += weights[i] * (X[i, a] - origin[a])
    for k in range(means.shape[0]):
        if resp_weight[k] > 0:
            for a in range(n_features):
                means[k, a] /= resp_weight[k]
    centred = np.empty(n_features)
    for i in range(n_samples):
        k = labels[i]
        for a in range(n_features):
            centred[a] = X[i, a] - origin[a] - means[k, a]
        for a in range(n_features):
            scaled = weights[i] * centred[a]
            for b in range(a + 1):
                scatter[k, a, b] += scaled * centred[b]


if numba is not None:
    _nearest_centres, _labelled_sums = (
        _njit(nogil=True)(function) for function in (_nearest_centres, _labelled_sums)
    )


def nearest_centres(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for every row, shape (n,), from exact differences.

    One pass over the rows; for few features and centres (K D small), where
    the matrix-product route of :func:`gaussmix.init.nearest_centre_labels` is
    bound by per-call overhead.
    """
    labels = np.empty(X.shape[0], dtype=np.intp)
    _nearest_centres(np.asarray(X), np.ascontiguousarray(centres, dtype=np.float64), labels)
    return labels


def labelled_stats(
    X: np.ndarray, sample_weight: Optional[np.ndarray], labels: np.ndarray, n_components: int,
    full_scatter: bool, origin: Optional[np.ndarray] = None,
) -> SuffStats:
    """Statistics of the rows ``X - origin`` under hard labels (n,), summed in float64.

    The compiled counterpart of :func:`gaussmix.init.assignment_stats` for
    labels, for few features (its scatter loop is D^2 a row, unvectorised).
    """
    n_samples, n_features = X.shape
    weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    origin = np.zeros(n_features) if origin is None else np.asarray(origin, dtype=np.float64)
    resp_weight = np.zeros(n_components)
    means = np.zeros((n_components, n_features))
    lower = np.zeros((n_components, n_features, n_features))
    _labelled_sums(np.asarray(X), weights, np.asarray(labels, dtype=np.intp), origin, resp_weight, means, lower)
    scatter = lower + np.swapaxes(np.tril(lower, -1), 1, 2)
    if not full_scatter:
        scatter = np.diagonal(scatter, axis1=1, axis2=2).copy()
    dtype = X.dtype
    total_weight = float(n_samples) if sample_weight is None else float(weights.sum())
    return SuffStats(resp_weight.astype(dtype), means.astype(dtype), scatter.astype(dtype), total_weight)
