"""Initialisers: starting responsibilities for EM, found through a registry.

Every initialiser gives each row a starting responsibility (hard labels or soft
weights); the starting parameters are then one M-step away, computed with the
same statistics code as EM itself. Hard-label starts (k-means, k-means++,
random_from_data) assign *every* row to its nearest centre, so every
covariance structure starts from a within-cluster scatter, never from a
covariance built on K single rows.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import numpy as np
import sklearn
from sklearn.cluster import KMeans, kmeans_plusplus

from .estep import _kernels as kernels
from .hierarchical import hierarchical_labels
from .stats import SuffStats, stats_from_responsibilities

#: an initialiser maps (X, sample_weight, K, RandomState) to labels (n,) or responsibilities (n, K)
Initializer = Callable[[np.ndarray, Optional[np.ndarray], int, np.random.RandomState], np.ndarray]

_INITIALIZERS: dict[str, Initializer] = {}


def register_initializer(name: str) -> Callable[[Initializer], Initializer]:
    """Decorator adding an initialiser to the registry under ``name``."""

    def decorate(function: Initializer) -> Initializer:
        _INITIALIZERS[name] = function
        return function

    return decorate


def available_initializers() -> list[str]:
    return sorted(_INITIALIZERS)


def get_initializer(name: Any) -> Initializer:
    """Look up an initialiser; an unknown name gets an error listing the valid ones.

    A callable with the :data:`Initializer` signature is returned as it is
    (``select`` passes a precomputed hierarchical tree this way).
    """
    if callable(name):
        return name
    try:
        return _INITIALIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown init_params {name!r}; valid values are: "
            + ", ".join(repr(n) for n in available_initializers())
        ) from None


#: bytes of the (rows x K) score block of :func:`nearest_centre_labels`
_NEAREST_BLOCK_BYTES = 2**20


#: K D up to which nearest centres and labelled statistics run in one compiled pass
#: (numba) instead of a matrix product per block / a gather per component: at
#: small K D those are bound by per-call overhead, and cost more than an EM
#: iteration (see BENCHMARKS.md, "Measurements behind the code's thresholds")
MAX_COMPILED_NEAREST_WORK = 64
#: features up to which labelled statistics run in one compiled pass (D^2 a row)
MAX_COMPILED_LABELLED_FEATURES = 8


def nearest_centre_labels(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for every row, shape (n,); ties go to the lower index.

    One matrix product per block of rows: ``argmin_k |c_k|^2 - 2 x.c_k`` (the
    row's own ``|x|^2`` does not change the order), with rows and centres
    shifted to the centres' mean first, so the expansion keeps the digits that
    separate the centres even for data far from the origin; only rows almost
    equidistant from two centres can go either way, which a start does not
    mind. An exact difference per row, centre and feature would cost several
    EM iterations at large K D.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    centres : ndarray of shape (K, D)
    """
    compiled = kernels._compiled_kernels()
    if compiled is not None and centres.shape[0] * X.shape[1] <= MAX_COMPILED_NEAREST_WORK:
        return compiled.nearest_centres(X, centres)
    centres = np.asarray(centres, dtype=X.dtype)
    shift = centres.mean(axis=0)
    shifted_centres = centres - shift
    minus_twice = -2 * shifted_centres.T
    centre_norms = np.einsum("kd,kd->k", shifted_centres, shifted_centres)
    labels = np.empty(X.shape[0], dtype=np.intp)
    rows = max(1, _NEAREST_BLOCK_BYTES // (X.dtype.itemsize * max(centres.shape[0], X.shape[1])))
    for start in range(0, X.shape[0], rows):
        scores = (X[start:start + rows] - shift) @ minus_twice
        scores += centre_norms
        labels[start:start + rows] = np.argmin(scores, axis=1)
    return labels


def _selection_probabilities(sample_weight: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    return weights / weights.sum()


#: k-means runs on a uniform sample of ``KMEANS_ROWS_PER_CLUSTER`` rows per
#: cluster (at least ``KMEANS_MIN_ROWS``, at most ``KMEANS_MAX_ROWS``) and then
#: labels every row by its nearest centre: Lloyd's iterations over 10^6 rows
#: would otherwise cost more than the EM they start. 256 rows a cluster place its
#: centre within ~sigma/16; more rows cost time without a better fit
#: (see BENCHMARKS.md, "Measurements behind the code's thresholds").
KMEANS_ROWS_PER_CLUSTER = 256
KMEANS_MIN_ROWS = 2**14
KMEANS_MAX_ROWS = 2**16


def kmeans_sample_rows(n_components: int) -> int:
    """Rows k-means is run on, at most (see :data:`KMEANS_ROWS_PER_CLUSTER`)."""
    return min(KMEANS_MAX_ROWS, max(KMEANS_MIN_ROWS, KMEANS_ROWS_PER_CLUSTER * n_components))


def _sample_without_replacement(random_state: np.random.RandomState, n: int, size: int) -> np.ndarray:
    """``size`` distinct indices below ``n``, drawn from ``random_state``.

    ``RandomState.choice(replace=False)`` permutes all ``n`` (at small D as
    long as several EM iterations); a Generator seeded from it draws only ``size``.
    """
    generator = np.random.default_rng(random_state.randint(2**31))
    return generator.choice(n, size=size, replace=False)


@register_initializer("kmeans")
def _kmeans(X, sample_weight, n_components, random_state):
    model = KMeans(n_clusters=n_components, n_init=1, random_state=random_state)
    sample_rows = kmeans_sample_rows(n_components)
    if X.shape[0] <= sample_rows:
        return model.fit(X, sample_weight=sample_weight).labels_
    rows = np.sort(_sample_without_replacement(random_state, X.shape[0], sample_rows))
    weights = None if sample_weight is None else sample_weight[rows]
    if weights is not None and np.count_nonzero(weights) < n_components:
        # Too few weighted rows in the sample: cluster all of them instead.
        return model.fit(X, sample_weight=sample_weight).labels_
    model.fit(X[rows], sample_weight=weights)
    return nearest_centre_labels(X, model.cluster_centers_.astype(X.dtype, copy=False))


@register_initializer("k-means++")
def _kmeans_plusplus(X, sample_weight, n_components, random_state):
    # Our arguments are validated already; scikit-learn's validation of them costs more
    # than the seeding on small data (every start of a selection grid).
    with sklearn.config_context(skip_parameter_validation=True):
        centres, _ = kmeans_plusplus(X, n_components, random_state=random_state, sample_weight=sample_weight)
    return nearest_centre_labels(X, centres)


@register_initializer("random_from_data")
def _random_from_data(X, sample_weight, n_components, random_state):
    probabilities = _selection_probabilities(sample_weight)
    if probabilities is not None and np.count_nonzero(probabilities) < n_components:
        raise ValueError(
            f"init_params='random_from_data' needs at least n_components={n_components} rows "
            "with positive sample_weight"
        )
    indices = random_state.choice(X.shape[0], size=n_components, replace=False, p=probabilities)
    return nearest_centre_labels(X, X[indices])


@register_initializer("hierarchical")
def _hierarchical(X, sample_weight, n_components, random_state):
    return hierarchical_labels(X, sample_weight, n_components, random_state)


@register_initializer("random")
def _random(X, sample_weight, n_components, random_state):
    resp = random_state.uniform(size=(X.shape[0], n_components)).astype(X.dtype)
    return resp / resp.sum(axis=1, keepdims=True)


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

    compiled = kernels._compiled_kernels() if X.shape[1] <= MAX_COMPILED_LABELLED_FEATURES else None

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
