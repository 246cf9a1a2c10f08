"""Process the chunks of one E-step on several cores, without oversubscription.

NumPy releases the GIL inside its matrix products and element-wise loops, so
plain threads run chunks concurrently. While they do, the BLAS library is held
to one thread per chunk (threadpoolctl): two levels of threading on the same
cores would only fight for them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, TypeVar

import numpy as np

Result = TypeVar("Result")

#: environment variable capping the worker threads (default: the usable cores)
THREADS_VARIABLE = "GAUSSMIX_NUM_THREADS"


def n_worker_threads() -> int:
    """Threads for chunk-parallel E-steps: ``GAUSSMIX_NUM_THREADS`` or the usable cores."""
    configured = os.environ.get(THREADS_VARIABLE)
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise ValueError(
                f"{THREADS_VARIABLE} must be a positive integer; got {configured!r}"
            ) from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _is_numpy_chunk(chunk: Any) -> bool:
    return isinstance(chunk, tuple) and isinstance(chunk[0], np.ndarray)


def map_chunks(function: Callable[[Any], Result], chunks: Iterable[Any]) -> Iterator[Result]:
    """``map(function, chunks)`` in order, a few NumPy chunks at a time in threads.

    At most ``n_worker_threads()`` chunks are in flight, so the iterator (for
    example a memory-mapped file) is never read far ahead. Chunks of other
    array libraries (torch on a GPU) run one after the other, untouched.

    Parameters
    ----------
    function : callable
        Applied to each chunk.
    chunks : iterable
        ``(X_chunk, w_chunk)`` pairs or anything else ``function`` accepts.

    Yields
    ------
    The results, in the order of ``chunks``.
    """
    iterator = iter(chunks)
    first = list(islice(iterator, 1))
    if not first:
        return
    n_workers = n_worker_threads()
    second = list(islice(iterator, 1))
    if n_workers == 1 or not second or not _is_numpy_chunk(first[0]):
        # One chunk (or one core, or not NumPy): let BLAS use every core instead.
        for chunk in (*first, *second):
            yield function(chunk)
        yield from map(function, iterator)
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n_workers) as pool:
        batch = first + second + list(islice(iterator, n_workers - 2))
        while batch:
            futures = [pool.submit(function, chunk) for chunk in batch]
            batch = list(islice(iterator, n_workers))
            for future in futures:
                yield future.result()
