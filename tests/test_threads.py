"""Small problems run with one BLAS/OpenMP thread; large ones keep every thread.

The thread count is read with threadpoolctl from inside the M-step (a wrapped
Cholesky factorisation of the NumPy backend), under an outer limit of two
BLAS threads so the expectation does not depend on the machine's defaults.
"""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
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


def _two_iterations(X: np.ndarray, n_components: int) -> None:
    """Two EM iterations (not converged, by design: only the threads matter here)."""
    with pytest.warns(ConvergenceWarning):
        GaussianMixture(n_components, max_iter=2, tol=0, random_state=0).fit(X)


def _fit_and_partial_fit(X: np.ndarray, n_components: int) -> None:
    _two_iterations(X, n_components)
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
        _two_iterations(X, n_components)
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


def _numpy_chunks(n_chunks):
    return [(np.full((3, 2), float(index)), None) for index in range(n_chunks)]


def test_map_chunks_keeps_its_worker_threads_between_calls(monkeypatch):
    # One EM iteration is one call: a pool per call started its threads every iteration.
    import threading

    from gaussmix._threads import THREADS_VARIABLE, map_chunks

    monkeypatch.setenv(THREADS_VARIABLE, "2")
    seen = []
    for _ in range(3):
        threads = set()

        def work(chunk):
            threads.add(threading.current_thread())  # the objects: idents are reused
            return float(chunk[0][0, 0])

        assert list(map_chunks(work, _numpy_chunks(6))) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        seen.append(threads)
    assert all(threads and threads <= seen[0] | seen[1] | seen[2] for threads in seen)
    assert len(seen[0] | seen[1] | seen[2]) <= 2
    assert threading.current_thread() not in seen[0] | seen[1] | seen[2]


def test_map_chunks_inside_a_worker_runs_in_that_worker(monkeypatch):
    # A chunk function that maps chunks itself must not wait on the pool it runs in.
    import threading

    from gaussmix._threads import THREADS_VARIABLE, map_chunks

    monkeypatch.setenv(THREADS_VARIABLE, "2")

    def inner(chunk):
        return threading.get_ident()

    def outer(chunk):
        return threading.get_ident(), set(map_chunks(inner, _numpy_chunks(4)))

    for worker, inner_threads in map_chunks(outer, _numpy_chunks(4)):
        assert inner_threads == {worker}


def test_map_chunks_raises_a_chunks_error_and_stays_usable(monkeypatch):
    from gaussmix._threads import THREADS_VARIABLE, map_chunks

    monkeypatch.setenv(THREADS_VARIABLE, "2")
    done = []

    def failing(chunk):
        index = int(chunk[0][0, 0])
        if index == 3:
            raise RuntimeError("chunk 3")
        done.append(index)
        return index

    with pytest.raises(RuntimeError, match="chunk 3"):
        list(map_chunks(failing, _numpy_chunks(40)))
    assert len(done) < 39  # what was queued behind the error did not all run
    assert list(map_chunks(lambda chunk: int(chunk[0][0, 0]), _numpy_chunks(5))) == [0, 1, 2, 3, 4]


def test_map_chunks_works_in_a_forked_child(monkeypatch):
    # The parent's pool threads do not exist in a child made by fork.
    import multiprocessing

    from gaussmix._threads import THREADS_VARIABLE, map_chunks

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    assert list(map_chunks(lambda chunk: int(chunk[0][0, 0]), _numpy_chunks(4))) == [0, 1, 2, 3]
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as child:
        assert child.apply(_map_in_child, (), ) == [0, 1, 2, 3]


def _map_in_child():
    from gaussmix._threads import map_chunks

    return list(map_chunks(_first_value, _numpy_chunks(4)))


def _first_value(chunk):
    return int(chunk[0][0, 0])
