"""Small problems run with one BLAS/OpenMP thread; large ones keep every thread.

The thread count is read with threadpoolctl from inside the M-step (a wrapped
Cholesky factorisation of the NumPy backend), under an outer limit of two
BLAS threads so the expectation does not depend on the machine's defaults.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from gaussmix import GaussianMixture
from gaussmix._threads import SMALL_FIT_ENTRIES, SMALL_MATRIX_DIM
from gaussmix.backends import numpy_backend


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.fixture
def m_step_blas_threads(monkeypatch):
    """Records the BLAS thread counts seen by every Cholesky factorisation."""
    seen: list[set[int]] = []
    original = numpy_backend.cholesky_lower

    def recording(matrices):
        seen.append(_blas_threads())
        return original(matrices)

    monkeypatch.setattr(numpy_backend, "cholesky_lower", recording)
    return seen


def _fit_and_partial_fit(X: np.ndarray, n_components: int) -> None:
    GaussianMixture(n_components, max_iter=2, tol=0, random_state=0).fit(X)
    online = GaussianMixture(n_components, random_state=0)
    online.partial_fit(X)
    online.partial_fit(X)


def test_small_problem_runs_with_one_blas_thread(m_step_blas_threads):
    X = np.random.default_rng(0).normal(size=(300, 3))
    with threadpool_limits(limits=2, user_api="blas"):
        _fit_and_partial_fit(X, 3)
        assert _blas_threads() == {2}  # the limit is lifted again after the fit
    assert m_step_blas_threads and all(threads == {1} for threads in m_step_blas_threads)


def test_large_matrices_keep_every_blas_thread(m_step_blas_threads):
    n_features, n_components = SMALL_MATRIX_DIM + 8, 2
    n_samples = SMALL_FIT_ENTRIES // (n_features * n_components) + 1
    X = np.random.default_rng(0).normal(size=(n_samples, n_features))
    with threadpool_limits(limits=2, user_api="blas"):
        _fit_and_partial_fit(X, n_components)
    assert m_step_blas_threads and all(threads == {2} for threads in m_step_blas_threads)


def test_small_matrices_of_large_data_use_one_blas_thread_in_the_m_step(m_step_blas_threads):
    # Many rows, few features: the fit keeps its threads but the M-step's 4x4 algebra does not.
    n_features, n_components = 4, 2
    n_samples = SMALL_FIT_ENTRIES // (n_features * n_components) + 1
    X = np.random.default_rng(0).normal(size=(n_samples, n_features))
    with threadpool_limits(limits=2, user_api="blas"):
        GaussianMixture(n_components, max_iter=2, tol=0, random_state=0).fit(X)
    assert m_step_blas_threads and all(threads == {1} for threads in m_step_blas_threads)


@pytest.mark.parametrize("n_chunks", [1, 2, 3, 17])
def test_map_chunks_keeps_order_and_reads_a_bounded_window_ahead(n_chunks, monkeypatch):
    # Chunks of uneven cost run in threads; results come back in order, and at most
    # twice the worker count of chunks are drawn and not yet done.
    import threading
    import time

    from gaussmix._threads import THREADS_VARIABLE, map_chunks

    monkeypatch.setenv(THREADS_VARIABLE, "2")
    drawn = []
    threads = set()

    def chunks():
        for index in range(n_chunks):
            drawn.append(index)
            yield np.full((3, 2), float(index)), None

    def work(chunk):
        threads.add(threading.get_ident())
        time.sleep(0.002 * (int(chunk[0][0, 0]) % 3))  # uneven: later chunks may finish first
        return int(chunk[0][0, 0])

    results = []
    for result in map_chunks(work, chunks()):
        assert len(drawn) - (len(results) + 1) <= 4
        results.append(result)
    assert results == list(range(n_chunks))
    if n_chunks == 17:
        assert len(threads) == 2
