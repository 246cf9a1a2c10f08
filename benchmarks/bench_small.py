"""Small problems with and without gaussmix's one-thread limits, side by side in one process.

On a busy 2-core machine, waking the BLAS/OpenMP threads for tiny LAPACK calls
(3x3 .. 64x64 Cholesky factors and triangular solves in every M-step) costs
far more than the arithmetic. ``gaussmix._threads`` runs the M-step on small
matrices, and whole fits and ``partial_fit`` batches on small data, with one
thread. This script times three workloads under three settings, alternating
the settings within each repeat (in a rotating order) so that the machine's
load affects them alike:

- ``no limits``: every thread-limit threshold set to 0 (BLAS and OpenMP threads
  everywhere; also ``select``'s own per-cell limit switched off);
- ``main``: only ``select``'s per-cell limit for small data (the behaviour
  before the M-step / fit limits; for ``partial_fit`` and ``fit`` the same as
  ``no limits``);
- ``limits``: the defaults of this version.

Workloads: the full ``gaussmix.select`` grid on Old Faithful (K = 1..9, every
covariance structure), ``partial_fit`` on batches of 500 rows (D = 8, K = 8;
milliseconds per batch), and a 2000 x 3, K = 3 full-covariance ``fit``.
The median over ``--repeats`` is printed.

Usage: ``python benchmarks/bench_small.py [--repeats 5] [--data faithful.csv]`` (default: the copy packaged with gaussmix)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from importlib import resources
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_info

import gaussmix
from gaussmix import GaussianMixture, _threads, selection


SETTINGS = {
    "no limits": dict(matrix_dim=0, fit_entries=0, select_entries=0),
    "main": dict(matrix_dim=0, fit_entries=0, select_entries=selection.SMALL_DATA_ENTRIES),
    "limits": dict(
        matrix_dim=_threads.SMALL_MATRIX_DIM,
        fit_entries=_threads.SMALL_FIT_ENTRIES,
        select_entries=selection.SMALL_DATA_ENTRIES,
    ),
}


def apply(setting: dict) -> None:
    """Set the thresholds the library reads at call time."""
    _threads.SMALL_MATRIX_DIM = setting["matrix_dim"]
    _threads.SMALL_FIT_ENTRIES = setting["fit_entries"]
    selection.SMALL_DATA_ENTRIES = setting["select_entries"]


def faithful_grid(data: np.ndarray) -> Callable[[], float]:
    def run() -> float:
        began = time.perf_counter()
        gaussmix.select(data, random_state=0)
        return time.perf_counter() - began

    return run


def partial_fit_batches(n_batches: int = 20, batch_rows: int = 500) -> Callable[[], float]:
    """Milliseconds per ``partial_fit`` batch after the first (the first one initialises)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5, size=(8, 8))
    batches = [centres[rng.integers(0, 8, batch_rows)] + rng.normal(size=(batch_rows, 8)) for _ in range(n_batches + 1)]

    def run() -> float:
        model = GaussianMixture(8, random_state=0)
        model.partial_fit(batches[0])
        began = time.perf_counter()
        for batch in batches[1:]:
            model.partial_fit(batch)
        return (time.perf_counter() - began) / n_batches * 1e3

    return run


def small_fit() -> Callable[[], float]:
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=4, size=(3, 3))
    X = centres[rng.integers(0, 3, 2000)] + rng.normal(size=(2000, 3))

    def run() -> float:
        began = time.perf_counter()
        GaussianMixture(3, random_state=0).fit(X)
        return time.perf_counter() - began

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=None, help="Old Faithful CSV (header, two columns); default: gaussmix's copy")
    args = parser.parse_args()
    if args.data is None:
        with resources.as_file(resources.files("gaussmix.data") / "faithful.csv") as path:
            data = np.loadtxt(path, delimiter=",", skiprows=1)
    else:
        data = np.loadtxt(args.data, delimiter=",", skiprows=1)
    workloads = {
        "Old Faithful select grid (s)": faithful_grid(data),
        "partial_fit per batch, 500x8, K=8 (ms)": partial_fit_batches(),
        "fit 2000x3, K=3 full (s)": small_fit(),
    }
    blas = [(pool["internal_api"], pool["num_threads"]) for pool in threadpool_info()]
    print(f"thread pools: {blas}; load average {os.getloadavg()[0]:.1f}")
    times: dict[tuple[str, str], list[float]] = {}
    warnings.simplefilter("ignore")
    for workload in workloads.values():  # warm-up: imports, caches, numba compilation
        workload()
    names = list(SETTINGS)
    for repeat in range(args.repeats):
        # Rotate the order: the first run after a switch pays for waking sleeping threads.
        order = names[repeat % len(names):] + names[:repeat % len(names)]
        for name, workload in workloads.items():
            for setting_name in order:
                apply(SETTINGS[setting_name])
                times.setdefault((name, setting_name), []).append(workload())
    apply(SETTINGS["limits"])
    print(f"median of {args.repeats}; load average at the end {os.getloadavg()[0]:.1f}")
    print("| workload | " + " | ".join(SETTINGS) + " | main / limits |")
    print("|---|" + "---|" * (len(SETTINGS) + 1))
    for name in workloads:
        medians = [statistics.median(times[(name, setting)]) for setting in SETTINGS]
        ratio = medians[1] / medians[2]
        print(f"| {name} | " + " | ".join(f"{value:.4g}" for value in medians) + f" | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
