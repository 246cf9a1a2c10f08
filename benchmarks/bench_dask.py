"""Dask EM vs in-memory EM on one machine: per-iteration overhead and scaling with blocks.

Fits the same model from the same start in memory (one process) and with
``gaussmix.dask.GaussianMixture`` on a ``LocalCluster`` of two worker
processes (one thread each), for several numbers of blocks. Seconds per
iteration are the median time between EM iterations (callback timestamps):
the persist, validation and start passes are not counted. The overhead column
is the Dask time minus the in-memory time, per iteration. A second table
fits tiny data (100 rows per block), where an iteration is almost all
scheduling: tasks, transfers of the statistics and the client's M-step.

Usage: ``python benchmarks/bench_dask.py [--rows 1000000] [--features 8] [--components 4]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from bench_outofcore import machine


def mixture_rows(centres: np.ndarray, seed: int, n_rows: int) -> np.ndarray:
    """Rows ``seed * n_rows ...`` of the synthetic data (generated in fixed pieces)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centres), n_rows)
    return centres[labels] + rng.standard_normal((n_rows, centres.shape[1]))


def rows_of(centres: np.ndarray, start_row: int, n_rows: int) -> np.ndarray:
    """Rows ``start_row : start_row + n_rows`` of the synthetic data, regenerated on a worker."""
    piece = 2**16
    first, last = start_row // piece, (start_row + n_rows - 1) // piece
    block = np.concatenate([mixture_rows(centres, seed, piece) for seed in range(first, last + 1)])
    offset = start_row - first * piece
    return block[offset:offset + n_rows]


def seconds_per_iteration(estimator_class, X, start, n_iter: int) -> float:
    stamps: list[float] = []
    model = estimator_class(
        start.n_components, tol=0, max_iter=n_iter, callback=lambda event: stamps.append(time.perf_counter()),
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return float(np.median(np.diff(stamps)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--components", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--blocks", type=int, nargs="+", default=[2, 8, 32, 128, 512])
    args = parser.parse_args()

    import dask
    import dask.array as da
    import distributed

    from gaussmix import GaussianMixture
    from gaussmix.dask import GaussianMixture as DaskGaussianMixture

    centres = np.random.default_rng(0).uniform(-10, 10, (args.components, args.features))
    X = np.concatenate([mixture_rows(centres, seed, 2**16) for seed in range(-(-args.rows // 2**16))])[: args.rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = GaussianMixture(args.components, max_iter=5, random_state=0).fit(X[:20000])

    print(f"## Dask EM ({args.rows} x {args.features}, K={args.components}, full, float64; "
          "LocalCluster: 2 worker processes x 1 thread)\n")
    print(f"Machine: {machine()}\n")
    in_memory = seconds_per_iteration(GaussianMixture, X, start, args.iterations)
    print("| blocks | rows / block | s / iteration | vs in-memory | overhead s / iteration |")
    print("|---|---|---|---|---|")
    print(f"| in-memory | {args.rows} | {in_memory:.3f} | 1.00x | 0 |", flush=True)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50,
    )
    with distributed.Client(cluster):
        for n_blocks in args.blocks:
            rows = -(-args.rows // n_blocks)
            # Each worker draws its own blocks (no copy of X travels in the graph); same rows as X.
            data = da.concatenate([
                da.from_delayed(dask.delayed(rows_of)(centres, start_row, min(rows, args.rows - start_row)),
                                (min(rows, args.rows - start_row), args.features), np.float64)
                for start_row in range(0, args.rows, rows)
            ]).persist()
            seconds = seconds_per_iteration(DaskGaussianMixture, data, start, args.iterations)
            print(f"| {n_blocks} | {rows} | {seconds:.3f} | {seconds / in_memory:.2f}x | {seconds - in_memory:+.3f} |", flush=True)
            del data
        print("\nScheduling cost alone (100 rows per block):\n")
        print("| blocks | s / iteration (Dask) | s / iteration (in-memory) |")
        print("|---|---|---|")
        for n_blocks in args.blocks:
            tiny = X[: 100 * n_blocks]
            seconds = seconds_per_iteration(DaskGaussianMixture, da.from_array(tiny, chunks=(100, args.features)), start, args.iterations)
            local = seconds_per_iteration(GaussianMixture, tiny, start, args.iterations)
            print(f"| {n_blocks} | {seconds:.3f} | {local:.4f} |", flush=True)
    cluster.close()


if __name__ == "__main__":
    main()
