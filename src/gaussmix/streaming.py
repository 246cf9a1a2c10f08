"""The passes over chunked data that a fit needs besides its EM iterations.

One pass validates every chunk (NaN/inf and bad weights, named by their
global row numbers), computes the weighted mean that fixes the data-centred
frame, and draws a bounded weighted reservoir sample for the initialiser. A
second pass turns the initialiser's centres into starting statistics over all
rows. Each pass is a per-chunk function plus an associative ``merge``, so the
same code runs as a sequential fold over a file and as a tree reduction over
Dask blocks (a source with a ``map_reduce`` method, see :mod:`gaussmix.dask`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from . import _validation as checks
from . import missing as incomplete
from .init import Initializer, assignment_stats, initial_stats, nearest_centre_labels, repair_thin_components
from .data.chunking import auto_chunk_rows
from .stats import SuffStats

#: most rows the initialiser (k-means, k-means++, ...) sees on out-of-core data
INIT_SAMPLE_ROWS = 32768

#: ``function(X_chunk, weight_chunk_or_None, first_row)``: one chunk's part of a pass
ChunkFunction = Callable[[np.ndarray, Optional[np.ndarray], int], Any]


def reduce_chunks(source: Any, function: ChunkFunction, merge: Callable[[Any, Any], Any]) -> Any:
    """Apply ``function`` to every chunk of ``source`` and merge the results.

    A source with a ``map_reduce(function, merge)`` method (Dask blocks)
    reduces in its own way; any other is folded chunk by chunk, in order.

    Raises
    ------
    ValueError
        If the source yields no chunk.
    """
    map_reduce = getattr(source, "map_reduce", None)
    if map_reduce is not None:
        return map_reduce(function, merge)
    result, first_row = None, 0
    for X, weights in source.chunks():
        part = function(X, weights, first_row)
        result = part if result is None else merge(result, part)
        first_row += X.shape[0]
    if result is None:
        raise ValueError(
            "the data source yielded no rows: a fit needs at least 2, and chunks() must "
            "return a fresh iterator over the same rows on every call"
        )
    return result


@dataclass(frozen=True)
class Reservoir:
    """A weighted sample without replacement of at most ``capacity`` rows.

    Efraimidis & Spirakis' A-Res: a row of weight ``w > 0`` draws the key
    ``log(u) / w`` (``u`` uniform) and the sample keeps the largest keys.
    Keeping the largest keys of a union is associative, so the reservoirs of
    chunks merge in any order into the reservoir of all rows.

    Attributes
    ----------
    log_keys : ndarray of shape (m,)
    row_ids : ndarray of shape (m,)
        Global row numbers (see :meth:`in_row_order`).
    rows : ndarray of shape (m, D)
    weights : ndarray of shape (m,)
    capacity : int
    """

    log_keys: np.ndarray
    row_ids: np.ndarray
    rows: np.ndarray
    weights: np.ndarray
    capacity: int

    @classmethod
    def of_chunk(cls, X: np.ndarray, weights: Optional[np.ndarray], first_row: int, capacity: int, seed: int) -> "Reservoir":
        # The draws depend on (seed, first_row) only: the same sample whichever worker sees the chunk.
        uniform = np.random.default_rng([seed, first_row]).random(X.shape[0])
        weights = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
        positive = np.flatnonzero(weights > 0)
        # 1 - u lies in (0, 1], so no key is -inf.
        log_keys = np.log1p(-uniform[positive]) / weights[positive]
        if log_keys.size > capacity:  # keep the chunk's best before copying any row
            best = np.argpartition(-log_keys, capacity - 1)[:capacity]
            positive, log_keys = positive[best], log_keys[best]
        return cls(log_keys, positive + first_row, X[positive], weights[positive], capacity)

    def merge(self, other: "Reservoir") -> "Reservoir":
        if other.log_keys.size and self.log_keys.size >= self.capacity:
            # Only keys above the smallest kept one can enter a full reservoir.
            other = other._subset(np.flatnonzero(other.log_keys > self.log_keys.min()))
        return Reservoir(
            np.concatenate([self.log_keys, other.log_keys]),
            np.concatenate([self.row_ids, other.row_ids]),
            np.concatenate([self.rows, other.rows]),
            np.concatenate([self.weights, other.weights]),
            self.capacity,
        )._trimmed()

    def in_row_order(self) -> "Reservoir":
        return self._subset(np.argsort(self.row_ids, kind="stable"))

    def _trimmed(self) -> "Reservoir":
        if self.log_keys.size <= self.capacity:
            return self
        return self._subset(np.argpartition(-self.log_keys, self.capacity - 1)[: self.capacity])

    def _subset(self, keep: np.ndarray) -> "Reservoir":
        return Reservoir(self.log_keys[keep], self.row_ids[keep], self.rows[keep], self.weights[keep], self.capacity)


@dataclass(frozen=True)
class DataSummary:
    """What the first pass learns about the data.

    Attributes
    ----------
    n_rows : int
    n_positive : int
        Rows with a positive weight.
    total_weight : float
    mean : ndarray of shape (D,), float64
        Weighted mean of the rows (merged with Chan's formula, no large sums).
    reservoir : Reservoir or None
        Sample for the initialiser, when one was asked for.
    non_finite : NonFiniteEntries or None
        The NaN and infinite entries found (None: none); a chunk holding any
        adds nothing else to the summary, which :func:`summarise` then refuses.
        Where NaN are missing values (``missing="marginalize"``), only
        infinite entries and rows with every entry missing count.
    observed_weight : ndarray of shape (D,) or None
        Where NaN are missing values: the weight of each column's observed
        entries, and ``mean`` is the mean of those; None: every entry observed.
    n_missing : int
        NaN entries taken as missing values.
    """

    n_rows: int
    n_positive: int
    total_weight: float
    mean: np.ndarray
    reservoir: Optional[Reservoir]
    non_finite: Optional[checks.NonFiniteEntries] = None
    observed_weight: Optional[np.ndarray] = None
    n_missing: int = 0

    def merge(self, other: "DataSummary") -> "DataSummary":
        total = self.total_weight + other.total_weight
        observed = None
        if self.observed_weight is None and other.observed_weight is None:
            share = other.total_weight / total if total > 0 else 0.0
        else:  # each column's mean weighs its observed entries
            mine, theirs = self._observed_weight(), other._observed_weight()
            observed = mine + theirs
            share = np.divide(theirs, observed, out=np.zeros_like(observed), where=observed > 0)
        reservoir = self.reservoir if other.reservoir is None else (
            other.reservoir if self.reservoir is None else self.reservoir.merge(other.reservoir)
        )
        return DataSummary(
            self.n_rows + other.n_rows,
            self.n_positive + other.n_positive,
            total,
            self.mean + (other.mean - self.mean) * share,
            reservoir,
            checks.merge_non_finite(self.non_finite, other.non_finite),
            observed,
            self.n_missing + other.n_missing,
        )

    def _observed_weight(self) -> np.ndarray:
        if self.observed_weight is None:
            return np.full(self.mean.shape, float(self.total_weight))
        return self.observed_weight

    def initializer_sample(self) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """Rows (and weights) the initialiser runs on.

        When every positive-weight row fits in the reservoir, the sample is the
        data and keeps its weights, scaled to mean one over all rows (only
        their ratios matter); otherwise rows were drawn with probability
        proportional to their weights and count once each.
        """
        assert self.reservoir is not None
        sample = self.reservoir.in_row_order()
        complete = self.n_positive <= sample.capacity
        return sample.rows, (sample.weights * (self.n_rows / self.total_weight) if complete else None)


def summarise_chunk(
    X: np.ndarray, weights: Optional[np.ndarray], first_row: int, sample_rows: int, seed: Optional[int],
    marginalize: bool = False,
) -> DataSummary:
    """Validate one chunk and summarise it (see :class:`DataSummary`).

    ``seed`` None skips the reservoir (a start that needs no sample).
    ``marginalize``: NaN entries are missing values (``missing="marginalize"``).
    """
    non_finite = checks.NonFiniteEntries.of(X, first_row, nan_is_missing=marginalize)
    if non_finite is not None:
        # Go on to the other chunks, so that the error names every bad row of the data.
        return DataSummary(X.shape[0], 0, 0.0, np.zeros(X.shape[1]), None, non_finite)
    if weights is None:
        total, n_positive = float(X.shape[0]), X.shape[0]
        mean = X.mean(axis=0, dtype=np.float64) if X.shape[0] else np.zeros(X.shape[1])
    else:
        checks.check_chunk_weights(weights, first_row)
        weights64 = weights.astype(np.float64)
        total, n_positive = float(weights64.sum()), int(np.count_nonzero(weights64))
        mean = weights64 @ X.astype(np.float64) / total if total > 0 else np.zeros(X.shape[1])
    reservoir = None if seed is None else Reservoir.of_chunk(X, weights, first_row, sample_rows, seed)
    if marginalize and incomplete.has_missing(X):
        mean, observed = incomplete.observed_moments(X, weights)
        return DataSummary(X.shape[0], n_positive, total, mean, reservoir, None, observed, int(np.isnan(X).sum()))
    return DataSummary(X.shape[0], n_positive, total, mean, reservoir)


def summarise(
    source: Any, *, sample_rows: int = INIT_SAMPLE_ROWS, seed: Optional[int] = None, marginalize: bool = False
) -> DataSummary:
    """One validating pass over ``source``: counts, weighted mean and (with ``seed``) a sample.

    ``marginalize``: NaN entries are missing values, the mean is each column's
    over its observed entries (``missing="marginalize"``).

    Raises
    ------
    ValueError
        If rows hold NaN or infinite values (with ``marginalize``: infinite
        values, or rows with every entry missing): the message counts them
        over all rows and names the first few, as for an in-memory array. With
        ``marginalize``, also if a column has no observed entry.
    """
    function = functools.partial(summarise_chunk, sample_rows=sample_rows, seed=seed, marginalize=marginalize)
    summary = reduce_chunks(source, function, DataSummary.merge)
    if summary.non_finite is not None:
        raise summary.non_finite.error("X", checks.MARGINALIZE_HINT if marginalize else checks.MISSING_HINT)
    if summary.observed_weight is not None:
        incomplete.check_observed_columns(summary.observed_weight)
    return summary



def _nearest_centre_stats(
    X: np.ndarray, weights: Optional[np.ndarray], first_row: int,
    centres: np.ndarray, component_ids: np.ndarray, n_components: int, full_scatter: bool,
) -> SuffStats:
    if incomplete.has_missing(X):  # missing entries at the origin, as the in-memory start fills them
        X = incomplete.filled_with(X, np.zeros(X.shape[1], dtype=X.dtype))
    labels = component_ids[nearest_centre_labels(X, centres.astype(X.dtype))]
    return assignment_stats(X, weights, labels, n_components, full_scatter)


def nearest_centre_start(
    source: Any, centres: np.ndarray, n_components: int, full_scatter: bool, n_rows: int,
    component_ids: Optional[np.ndarray] = None,
) -> SuffStats:
    """Starting statistics: every row of ``source`` assigned to its nearest centre.

    Parameters
    ----------
    centres : ndarray of shape (m, D)
        In the frame of the rows ``source`` yields.
    component_ids : ndarray of shape (m,), optional
        Component of each centre (default ``0..m-1``); components without a
        centre start empty and are repaired like thin ones.
    """
    ids = np.arange(len(centres)) if component_ids is None else component_ids
    function = functools.partial(
        _nearest_centre_stats, centres=centres, component_ids=ids,
        n_components=n_components, full_scatter=full_scatter,
    )
    stats = reduce_chunks(source, function, SuffStats.merge)
    return repair_thin_components(stats, n_rows)


def sampled_start(
    source: Any, summary: DataSummary, origin: np.ndarray, initializer: Initializer,
    n_components: int, full_scatter: bool, random_state: np.random.RandomState,
) -> SuffStats:
    """Starting statistics from an initialiser run on the reservoir sample.

    Hard labels on the sample give centres (their labels' weighted means), and
    one streamed pass assigns every row to its nearest centre. Soft starting
    responsibilities (``init_params="random"``) are random for every row
    alike, so the sample's own statistics are the start.
    """
    rows, weights = summary.initializer_sample()
    rows = (rows - origin).astype(rows.dtype)
    if summary.n_missing:  # the initialisers see missing entries at the origin (the column means)
        rows = incomplete.filled_with(rows, np.zeros(rows.shape[1], dtype=rows.dtype))
    assignment = initializer(rows, weights, n_components, random_state)
    if assignment.ndim == 2:
        chunk_rows = auto_chunk_rows(n_components, rows.shape[1], rows.dtype.itemsize)
        return initial_stats(rows, weights, assignment, n_components, full_scatter, chunk_rows)
    unit = np.ones(len(rows)) if weights is None else weights
    component_ids = np.unique(assignment)
    centres = np.stack([np.average(rows[assignment == k], axis=0, weights=unit[assignment == k]) for k in component_ids])
    return nearest_centre_start(source, centres, n_components, full_scatter, summary.n_rows, component_ids)


def _one_component_stats(X: np.ndarray, weights: Optional[np.ndarray], first_row: int, full_scatter: bool) -> SuffStats:
    # In float64 whatever the rows' dtype, as numpy.cov computes
    rows = X.astype(np.float64, copy=False)
    weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    return assignment_stats(rows, weights, np.zeros(rows.shape[0], dtype=np.intp), 1, full_scatter)


def weighted_covariance(source: Any, full: bool) -> np.ndarray:
    """The covariance of the rows of ``source``, weighted, ``ddof=1`` counted in weight: one pass.

    ``numpy.cov`` of the rows (``full``, shape (D, D)) or their variances
    (shape (D,)) where every weight is one; with frequency weights, those of the
    rows repeated. In float64, from centred statistics merged chunk by chunk.
    """
    function = functools.partial(_one_component_stats, full_scatter=full)
    stats = reduce_chunks(source, function, SuffStats.merge)
    return np.asarray(stats.scatter[0], dtype=np.float64) / (float(stats.resp_weight[0]) - 1.0)
