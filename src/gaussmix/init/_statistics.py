"""Starting statistics: the sufficient statistics of a start's labels or responsibilities.

The starting parameters are one M-step away from these, computed with the same
statistics code as EM itself.
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np

from .. import _numba
from ..stats import SuffStats, stats_from_responsibilities

#: features up to which labelled statistics run in one compiled pass (D^2 a row)
MAX_COMPILED_LABELLED_FEATURES = 8
#: bytes of the row chunks that starting statistics under hard labels are summed over
LABELLED_CHUNK_BYTES = 8 * 2**20


def initial_stats(
    X: np.ndarray,
    sample_weight: Optional[np.ndarray],
    assignment: np.ndarray,
    n_components: int,
    full_scatter: bool,
    chunk_rows: int,
    origin: Optional[np.ndarray] = None,
) -> SuffStats:
    """Statistics of the starting responsibilities, summed over row chunks.

    Parameters
    ----------
    assignment : array of shape (n,) of int labels, or (n, K) responsibilities
    origin : array of shape (D,), optional
        Subtracted from the rows: the statistics are those of ``X - origin``.

    Components left with less than two rows' worth of weight get the pooled
    within-cluster covariance (a single row has no scatter, and a component
    started on one row collapses at once).
    """
    n_samples = X.shape[0]
    if assignment.ndim == 1 and isinstance(X, np.ndarray):
        # Hard labels need no (rows, K, D) temporary (see _labelled_stats): chunks of ~8 MiB.
        chunk_rows = max(chunk_rows, LABELLED_CHUNK_BYTES // (X.dtype.itemsize * X.shape[1]))

    compiled = (
        _numba.compiled("gaussmix.init._compiled") if X.shape[1] <= MAX_COMPILED_LABELLED_FEATURES else None
    )

    def chunk_stats(start: int) -> SuffStats:
        stop = min(start + chunk_rows, n_samples)
        weights = None if sample_weight is None else sample_weight[start:stop]
        if compiled is not None and assignment.ndim == 1 and isinstance(X, np.ndarray):
            # one pass, the origin subtracted as the rows are read
            return compiled.labelled_stats(
                X[start:stop], weights, assignment[start:stop], n_components, full_scatter, origin
            )
        rows = X[start:stop] if origin is None else X[start:stop] - origin
        return assignment_stats(rows, weights, assignment[start:stop], n_components, full_scatter)

    # Folded chunk by chunk: memory stays bounded however many chunks there are.
    parts = (chunk_stats(start) for start in range(0, n_samples, chunk_rows))
    stats = functools.reduce(SuffStats.merge, parts)
    return repair_thin_components(stats, n_samples)


def assignment_stats(
    X: np.ndarray, sample_weight: Optional[np.ndarray], assignment: np.ndarray, n_components: int, full_scatter: bool
) -> SuffStats:
    """Statistics of one chunk under starting labels (n,) or responsibilities (n, K)."""
    if assignment.ndim == 1 and isinstance(X, np.ndarray):
        return _labelled_stats(X, sample_weight, assignment, n_components, full_scatter)
    if assignment.ndim == 1:
        resp = np.zeros((X.shape[0], n_components), dtype=X.dtype)
        resp[np.arange(X.shape[0]), assignment] = 1
    else:
        resp = np.asarray(assignment, dtype=X.dtype)
    weighted = resp if sample_weight is None else resp * sample_weight[:, None]
    total = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    return stats_from_responsibilities(X, weighted, full_scatter, total)


def _labelled_stats(
    X: np.ndarray, sample_weight: Optional[np.ndarray], labels: np.ndarray, n_components: int, full_scatter: bool
) -> SuffStats:
    """:func:`assignment_stats` for hard labels: each component's rows gathered once.

    The one-hot route forms an (n, K, D) temporary, K times the work: at large
    K it would cost the start tens of EM iterations.
    """
    n_samples, n_features = X.shape
    weights = np.ones(n_samples, dtype=X.dtype) if sample_weight is None else np.asarray(sample_weight, dtype=X.dtype)
    # Stable sorts of 16-bit integers are radix sorts, much faster than of intp labels.
    narrow = labels.astype(np.int16) if n_components <= np.iinfo(np.int16).max else labels
    order = np.argsort(narrow, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_components + 1))
    resp_weight = np.zeros(n_components, dtype=X.dtype)
    means = np.zeros((n_components, n_features), dtype=X.dtype)
    scatter = np.zeros((n_components, n_features, n_features) if full_scatter else (n_components, n_features), dtype=X.dtype)
    for k in range(n_components):
        members = order[bounds[k]:bounds[k + 1]]
        member_weights = weights[members]
        total = member_weights.sum()
        if not total > 0:
            continue
        rows = X[members]
        resp_weight[k] = total
        means[k] = member_weights @ rows / total
        centred = rows - means[k]
        weighted = centred * member_weights[:, None]
        scatter[k] = weighted.T @ centred if full_scatter else np.einsum("nd,nd->d", weighted, centred)
    total_weight = float(n_samples) if sample_weight is None else float(weights.sum())
    return SuffStats(resp_weight, means, scatter, total_weight)


def repair_thin_components(stats: SuffStats, n_samples: int) -> SuffStats:
    """Give components with less than two rows' worth of weight the pooled scatter.

    ``n_samples`` is the number of rows summarised (for the mean row weight).
    """
    mean_row_weight = stats.total_weight / n_samples
    thin = stats.resp_weight < 2 * mean_row_weight
    if not thin.any():
        return stats
    pooled = stats.scatter.sum(axis=0) / max(stats.resp_weight.sum(), np.finfo(stats.means.dtype).tiny)
    effective = np.maximum(stats.resp_weight, mean_row_weight)
    scatter = stats.scatter.copy()
    scatter[thin] = effective[thin].reshape((-1,) + (1,) * pooled.ndim) * pooled
    means = stats.means.copy()
    resp_weight = stats.resp_weight.copy()
    empty = stats.resp_weight <= 0
    if empty.any():
        # An empty component starts at the heaviest component's mean, with one row's weight.
        means[empty] = stats.means[np.argmax(stats.resp_weight)]
    resp_weight[thin] = effective[thin]
    return SuffStats(resp_weight, means, scatter, stats.total_weight)
