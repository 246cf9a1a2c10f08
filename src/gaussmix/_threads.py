"""Process the chunks of one E-step on several cores, without oversubscription.

NumPy releases the GIL inside its matrix products and element-wise loops, so
plain threads run chunks concurrently. While they do, the BLAS library is held
to one thread per chunk (threadpoolctl): two levels of threading on the same
cores would only fight for them.

Small problems run with one BLAS/OpenMP thread altogether: waking the BLAS
threads for a 3x3 .. 64x64 Cholesky factor or triangular solve costs far more
than the arithmetic, above all on a busy machine (see BENCHMARKS.md, "Small
problems"). The limits go through one cached
:class:`threadpoolctl.ThreadpoolController`: ``threadpool_limits`` rescans the
loaded libraries on every entry.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

import numpy as np

Result = TypeVar("Result")

#: environment variable capping the worker threads (default: the usable cores)
THREADS_VARIABLE = "GAUSSMIX_NUM_THREADS"

#: M-steps on D x D matrices with D below this use one BLAS thread. LAPACK is
#: called once per component matrix, so D (not K) sets a call's size: a
#: Cholesky factor costs D**3/3 flops, which from about D = 128 outweighs waking a
#: second thread (see BENCHMARKS.md, "Measurements behind the code's thresholds").
SMALL_MATRIX_DIM = 128
#: in-memory fits (and partial_fit batches) with n_samples * n_features *
#: n_components below this run with one BLAS and one OpenMP thread throughout:
#: an E-step pass is then well under a millisecond of arithmetic. Larger data
#: are split into chunks that the worker threads of :func:`map_chunks` share.
SMALL_FIT_ENTRIES = 2**20

_controller: Optional[Any] = None


def _threadpool_controller() -> Any:
    """The process's threadpoolctl controller, built once (the library scan is the costly part)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


#: the ``user_api`` of the one-thread limits in force (nesting depth, per API name; None: all)
_active_limits: dict[Optional[str], int] = {}


@contextlib.contextmanager
def one_thread(user_api: Optional[str] = None) -> Iterator[None]:
    """Context in which the thread pools of ``user_api`` ("blas", "openmp"; None: all) use one thread.

    Inside an enclosing limit that already covers ``user_api`` (a whole small
    fit), nothing is done: every M-step of the fit would otherwise pay the
    limit's entry, which adds up over a model-selection grid.
    """
    if _active_limits.get(None) or _active_limits.get(user_api):
        yield
        return
    with _threadpool_controller().limit(limits=1, user_api=user_api):
        _active_limits[user_api] = _active_limits.get(user_api, 0) + 1
        try:
            yield
        finally:
            _active_limits[user_api] -= 1


def one_blas_thread_for_matrices(means: Any) -> contextlib.AbstractContextManager:
    """One BLAS thread for an M-step with NumPy ``means`` of shape (K, D) when D is small."""
    if isinstance(means, np.ndarray) and means.shape[-1] < SMALL_MATRIX_DIM:
        return one_thread("blas")
    return contextlib.nullcontext()


def one_thread_for_small_fit(X: Any, n_components: int) -> contextlib.AbstractContextManager:
    """One BLAS and OpenMP thread for a whole fit on small NumPy ``X`` of shape (n, D).

    Large or non-NumPy data (torch tensors have their own thread pools) keep
    every thread.
    """
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.size * n_components < SMALL_FIT_ENTRIES:
        return one_thread()
    return contextlib.nullcontext()


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


#: the worker threads of :func:`map_chunks`, kept between calls: starting a pool every
#: EM iteration costs as much as a small fit's iteration
_pool: Optional[ThreadPoolExecutor] = None
_pool_workers = 0
_pool_lock = threading.Lock()
#: set in the pool's threads: a chunk function that maps chunks itself runs them in its
#: own thread (waiting on the pool from inside it could wait for ever)
_worker_state = threading.local()


def _mark_worker() -> None:
    _worker_state.in_pool = True


def _shared_pool(n_workers: int) -> ThreadPoolExecutor:
    """The process's chunk pool with ``n_workers`` threads (replaced when that changes)."""
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers != n_workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(n_workers, thread_name_prefix="gaussmix-chunks", initializer=_mark_worker)
            _pool_workers = n_workers
        return _pool


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start afresh."""
    global _pool, _pool_workers, _pool_lock
    _pool, _pool_workers, _pool_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _is_numpy_chunk(chunk: Any) -> bool:
    return isinstance(chunk, tuple) and isinstance(chunk[0], np.ndarray)


def map_chunks(function: Callable[[Any], Result], chunks: Iterable[Any]) -> Iterator[Result]:
    """``map(function, chunks)`` in order, a few NumPy chunks at a time in threads.

    At most twice ``n_worker_threads()`` chunks are in flight, so the iterator
    (for example a memory-mapped file) is never read far ahead. Chunks of other
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
    nested = getattr(_worker_state, "in_pool", False)
    if n_workers == 1 or not second or not _is_numpy_chunk(first[0]) or nested:
        # One chunk (or one core, or not NumPy, or already in a worker): let BLAS use
        # every core instead.
        for chunk in (*first, *second):
            yield function(chunk)
        yield from map(function, iterator)
        return
    # A sliding window, not batches: a worker that finishes takes the next chunk at once
    # (batches waited for their slowest chunk, and for the consumer of their results).
    window = 2 * n_workers
    pool = _shared_pool(n_workers)
    with one_thread("blas"):
        pending = deque(pool.submit(function, chunk) for chunk in (*first, *second))
        try:
            pending.extend(pool.submit(function, chunk) for chunk in islice(iterator, window - 2))
            while pending:
                result = pending.popleft().result()
                pending.extend(pool.submit(function, chunk) for chunk in islice(iterator, 1))
                yield result
        finally:
            # An error (or a consumer that stops early): what is queued is not run, and
            # what runs is waited for, as leaving a pool of its own did.
            for future in pending:
                future.cancel()
            for future in pending:
                if not future.cancelled():
                    future.exception()
