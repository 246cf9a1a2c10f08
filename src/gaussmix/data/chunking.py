"""How many rows one chunk holds: the one chunk policy of every fit and every inference.

Three sizes, all derived from one budget on the widest per-chunk temporary,
an (n_chunk, K, D) array:

- :func:`chunk_rows`: rows an E-step works on at once (cache-sized on the
  host, a share of the free memory on a GPU);
- :func:`source_rows`: rows an in-memory EM source hands a worker thread
  (several cache-sized blocks, the same share for every thread);
- :func:`stream_rows`: rows read at a time from out-of-core data.

``chunk_size`` (the estimators' parameter) overrides each of them when set.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._threads import SMALL_FIT_ENTRIES, n_worker_threads
from ..backends import backend_for, get_namespace
from ..estep._kernels import balanced_rows

#: bytes the widest per-chunk temporary (n_chunk x K x D) may take
CHUNK_BUDGET_BYTES = 8 * 2**20
MIN_CHUNK_ROWS = 256
MAX_CHUNK_ROWS = 2**17


def auto_chunk_rows(n_components: int, n_features: int, itemsize: int, budget_bytes: Optional[int] = None) -> int:
    """Rows per chunk so that an (n_chunk, K, D) temporary stays within the budget.

    ``budget_bytes`` replaces the host's cache-sized default (and lifts its
    row cap): a GPU backend passes a share of the free device memory.
    """
    per_row = max(1, n_components * max(n_features, 1) * itemsize)
    if budget_bytes is not None:
        return int(max(MIN_CHUNK_ROWS, budget_bytes // per_row))
    return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, CHUNK_BUDGET_BYTES // per_row)))


#: an EM source hands over up to this many times ``auto_chunk_rows`` at once:
#: the E-step kernels work through a chunk in cache-sized blocks anyway, and
#: fewer, larger chunks cost less Python and fewer parameter-derived arrays
SOURCE_CHUNK_FACTOR = 64


def auto_source_rows(n_samples: int, n_components: int, n_features: int, itemsize: int, n_workers: int) -> int:
    """Rows per chunk of an EM data source.

    Large chunks (``SOURCE_CHUNK_FACTOR`` times :func:`auto_chunk_rows`, at
    most ``MAX_CHUNK_ROWS``), as many as a multiple of ``n_workers`` and of
    equal size, so that every worker thread gets the same share: the workers
    take chunks in rounds, and three full chunks and a sliver on two threads
    kept one of them idle for a whole chunk (a quarter of the iteration). Peak
    memory stays independent of N: each ``accumulate_chunk`` keeps its
    (rows, K, D) temporaries within the :func:`auto_chunk_rows` budget by
    working in blocks.
    """
    if n_samples * n_features * n_components < SMALL_FIT_ENTRIES:
        # Small data run on one thread (one_thread_for_small_fit): a second chunk would
        # only add a thread-pool round trip to every iteration.
        return max(1, n_samples)
    large = min(MAX_CHUNK_ROWS, SOURCE_CHUNK_FACTOR * auto_chunk_rows(n_components, n_features, itemsize))
    return max(MIN_CHUNK_ROWS, balanced_rows(n_samples, large, n_workers))


def chunk_rows(X: Any, n_components: int, chunk_size: Optional[int] = None) -> int:
    """Rows per E-step chunk of the rows ``X`` (shape (n, D)), in their namespace and on their device."""
    if chunk_size is not None:
        return int(chunk_size)
    budget = backend_for(get_namespace(X)).chunk_budget_bytes(X)
    return auto_chunk_rows(n_components, X.shape[1], X.dtype.itemsize, budget)


def stream_rows(n_features: int, dtype: Any, n_components: int, chunk_size: Optional[int] = None) -> int:
    """Rows per chunk read from out-of-core data of ``dtype`` (host NumPy dtypes only)."""
    if chunk_size is not None:
        return int(chunk_size)
    itemsize = 4 if np.dtype(dtype) == np.float32 else 8
    return auto_chunk_rows(n_components, n_features, itemsize)


def source_rows(X: Any, n_components: int, chunk_size: Optional[int] = None) -> int:
    """Rows per chunk of an EM pass over ``X`` (shape (n, D)): several cache-sized blocks per thread on the host."""
    if chunk_size is not None:
        return int(chunk_size)
    if not isinstance(X, np.ndarray):  # device arrays: one memory-sized chunk at a time
        return chunk_rows(X, n_components)
    return auto_source_rows(X.shape[0], n_components, X.shape[1], X.dtype.itemsize, n_worker_threads())


def block_rows(X: Any, n_components: int, chunk_size: Optional[int] = None) -> int:
    """Cache-sized rows of ``X`` (shape (n, D)) for (rows, K, D) temporaries, never above ``chunk_size``."""
    rows = auto_chunk_rows(n_components, X.shape[1], X.dtype.itemsize)
    return rows if chunk_size is None else min(rows, int(chunk_size))
