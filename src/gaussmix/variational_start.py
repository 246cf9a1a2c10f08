"""The start of a variational fit: scikit-learn's starting responsibilities, as summed statistics.

scikit-learn's ``BayesianGaussianMixture`` starts from responsibilities (the
k-means labels, K rows from k-means++ or drawn from the data, or random ones)
and one variational M-step. Here those responsibilities are summed into
sufficient statistics, the M-step's input:

- rows in memory: the initialiser runs on them with scikit-learn's draws, and
  the statistics are summed block by block (:func:`rows_stats`);
- out-of-core data and Dask arrays: the initialiser runs on the reservoir
  sample of the first pass (:mod:`gaussmix.streaming`), in row order. Where
  that sample holds every row of positive weight it *is* the data, and the
  start is the in-memory one; otherwise k-means' centres label every row in
  one more pass, and k-means++ / random_from_data take K rows of the sample.
  Random responsibilities take one pass, drawn row after row as in memory
  (on Dask, each chunk from its own generator: see :func:`stream_stats`).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus

from .init import assignment_stats, nearest_centre_labels
from .stats import SuffStats
from .streaming import DataSummary, reduce_chunks

#: scikit-learn's names of the starts, in its order
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def start_labels(
    init_params: str, X: np.ndarray, weights: Optional[np.ndarray], n_components: int,
    random_state: np.random.RandomState,
) -> Optional[np.ndarray]:
    """scikit-learn's starting labels of the rows ``X`` (n, D), drawn from ``random_state``.

    Returns
    -------
    labels : ndarray of int, shape (n,), or None
        The component of each row, -1 for none (k-means++ and random_from_data
        label K rows only); None for ``"random"`` (responsibilities, see :func:`random_resp`).
    """
    n_samples = X.shape[0]
    if init_params == "kmeans":
        return KMeans(n_clusters=n_components, n_init=1, random_state=random_state).fit(X, sample_weight=weights).labels_
    if init_params == "k-means++":
        _, indices = kmeans_plusplus(X, n_components, random_state=random_state, sample_weight=weights)
        return labels_of_rows(indices, n_samples)
    if init_params == "random_from_data":
        return labels_of_rows(rows_from_data(n_samples, n_components, weights, random_state), n_samples)
    return None


def random_resp(n_rows: int, n_components: int, dtype: Any, random_state: Any) -> np.ndarray:
    """scikit-learn's random starting responsibilities of ``n_rows`` rows, shape (n_rows, K).

    Drawn row after row: blocks drawn one after the other give the draws of one
    block of all their rows.
    """
    resp = random_state.uniform(size=(n_rows, n_components)).astype(dtype)
    resp /= resp.sum(axis=1)[:, np.newaxis]
    return resp


def rows_stats(
    X: np.ndarray, weights: Optional[np.ndarray], labels: Optional[np.ndarray], n_components: int,
    full_scatter: bool, block_rows: int, random_state: Optional[np.random.RandomState] = None,
) -> Optional[SuffStats]:
    """Statistics of the rows ``X`` (n, D) under ``labels`` (n,), or random responsibilities.

    ``labels`` None draws scikit-learn's random responsibilities from
    ``random_state``, block by block. Blocks of ``block_rows`` rows bound the
    (rows, K, D) temporaries. None for no rows.
    """
    stats: Optional[SuffStats] = None
    for start in range(0, X.shape[0], max(1, int(block_rows))):
        stop = min(start + int(block_rows), X.shape[0])
        assignment = random_resp(stop - start, n_components, X.dtype, random_state) if labels is None else labels[start:stop]
        part = assignment_stats(X[start:stop], None if weights is None else weights[start:stop], assignment,
                                n_components, full_scatter)
        stats = part if stats is None else stats.merge(part)
    return stats


def stream_stats(
    stream: Any, summary: DataSummary, init_params: str, n_components: int, full_scatter: bool,
    random_state: np.random.RandomState, block_rows: int,
) -> SuffStats:
    """Starting statistics of the stream's rows (see the module's docstring).

    Parameters
    ----------
    stream : chunk source or Dask blocks
        The rows as EM reads them (:func:`gaussmix.streaming.reduce_chunks` takes both).
    summary : DataSummary
        Of the first pass, with its reservoir sample.
    init_params : str
        One of :data:`INIT_PARAMS`.
    random_state : RandomState
        Draws as the in-memory start would draw from it.
    block_rows : int
        Rows per block of responsibilities (``chunk_size`` where the estimator has one).
    """
    if init_params == "random":
        return _random_stream_stats(stream, n_components, full_scatter, random_state, block_rows)
    sample = summary.reservoir.in_row_order()
    complete = summary.n_positive <= sample.capacity
    # Unit weights are no weights (random_from_data draws otherwise with them); where the
    # sample is a draw in proportion to the weights, its rows count once each for the initialiser.
    weights = None if np.all(sample.weights == 1) else sample.weights.astype(sample.rows.dtype)
    if init_params == "kmeans" and not complete:
        kmeans = KMeans(n_clusters=n_components, n_init=1, random_state=random_state).fit(sample.rows)
        function = functools.partial(_nearest_centre_stats, centres=kmeans.cluster_centers_,
                                     n_components=n_components, full_scatter=full_scatter)
        return reduce_chunks(stream, function, SuffStats.merge)
    labels = start_labels(init_params, sample.rows, weights if complete else None, n_components, random_state)
    # The labelled rows are all in the sample (every row of positive weight, or the K rows
    # chosen), each with its own weight.
    return rows_stats(sample.rows, weights, labels, n_components, full_scatter, block_rows)


def _nearest_centre_stats(
    X: np.ndarray, weights: Optional[np.ndarray], first_row: int, centres: np.ndarray, n_components: int,
    full_scatter: bool,
) -> SuffStats:
    """One chunk's statistics, every row labelled by its nearest centre."""
    labels = nearest_centre_labels(X, centres.astype(X.dtype))
    return assignment_stats(X, weights, labels, n_components, full_scatter)


def _random_stream_stats(
    stream: Any, n_components: int, full_scatter: bool, random_state: np.random.RandomState, block_rows: int,
) -> SuffStats:
    """Random starting responsibilities of every row of ``stream``, summed."""
    if hasattr(stream, "map_reduce"):
        # Dask blocks are reduced on the workers in no set order: each chunk draws from a
        # generator of its own, seeded by random_state and its first row.
        seed = int(random_state.randint(2**31 - 1))
        function = functools.partial(_seeded_random_stats, seed=seed, n_components=n_components,
                                     full_scatter=full_scatter, block_rows=block_rows)
        return reduce_chunks(stream, function, SuffStats.merge)
    stats: Optional[SuffStats] = None
    for X, weights in stream.chunks():  # in row order, from random_state: the in-memory draws
        part = rows_stats(X, weights, None, n_components, full_scatter, block_rows, random_state)
        if part is not None:
            stats = part if stats is None else stats.merge(part)
    return stats


def _seeded_random_stats(
    X: np.ndarray, weights: Optional[np.ndarray], first_row: int, seed: int, n_components: int, full_scatter: bool,
    block_rows: int,
) -> SuffStats:
    generator = np.random.default_rng([seed, first_row])
    stats = rows_stats(X, weights, None, n_components, full_scatter, block_rows, generator)
    if stats is None:  # an empty chunk
        return assignment_stats(X, weights, np.zeros(0, dtype=np.intp), n_components, full_scatter)
    return stats


def labels_of_rows(indices: np.ndarray, n_samples: int) -> np.ndarray:
    """Labels (n,) giving row ``indices[k]`` to component k and no component to the others (-1)."""
    labels = np.full(n_samples, -1, dtype=np.intp)
    labels[np.asarray(indices)] = np.arange(len(indices))
    return labels


def rows_from_data(
    n_samples: int, n_components: int, weights: Optional[np.ndarray], random_state: np.random.RandomState
) -> np.ndarray:
    """scikit-learn's random_from_data rows; with weights, drawn in proportion to them."""
    if weights is None:
        return random_state.choice(n_samples, size=n_components, replace=False)
    positive = int(np.count_nonzero(weights))
    if positive < n_components:
        raise ValueError(
            f'init_params="random_from_data" needs n_components={n_components} rows of positive weight; '
            f"sample_weight has {positive}: use another init_params or fewer components"
        )
    probabilities = weights.astype(np.float64) / np.sum(weights, dtype=np.float64)
    return random_state.choice(n_samples, size=n_components, replace=False, p=probabilities)
