"""BayesianGaussianMixture per iteration: gaussmix against scikit-learn, at the core benchmark's cases.

For each case of ``bench_em.py`` (its data, N/10 with ``--quick``), each library fits its
k-means start once (``max_iter=0``; both draw the same start from ``random_state=0``), after
a warm-up fit (numba loads its kernels once per process). From that start, fits warm-started
with ``tol=0`` run exactly ``--iters`` iterations and exactly none (validation, priors and, in
scikit-learn, the final E-step of ``fit``), ``--repeats`` times each, the libraries alternating.
Seconds per iteration = (median of the ``--iters`` fits - median of the 0-iteration fits) /
``--iters``: no k-means in the timed fits, and medians, so that one disturbed fit on a shared
machine moves nothing. The lower bounds after the ``--iters`` iterations are printed side by side.

Usage: ``python benchmarks/bench_bayesian.py [--quick] [--cases mid tied] [--dtypes float64 float32]
[--iters 10] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.mixture import BayesianGaussianMixture as SklearnBayesian

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_em  # noqa: E402  (the cases and their data)

from gaussmix import BayesianGaussianMixture  # noqa: E402


def started(estimator_class, X: np.ndarray, case: bench_em.Case):
    """A library's model at its k-means start (no iteration yet), after a warm-up fit."""
    settings = dict(n_components=case.n_components, covariance_type=case.covariance_type, random_state=0,
                    reg_covar=bench_em.REG_COVAR)
    estimator_class(max_iter=1, **settings).fit(X[: min(len(X), 20_000)])  # warm-up
    return estimator_class(max_iter=0, **settings).fit(X)


def timed_fit(start, X: np.ndarray, n_iter: int) -> tuple[float, object]:
    """Seconds of a fit of exactly ``n_iter`` iterations from ``start`` (a copy of it), and the model."""
    model = copy.deepcopy(start)
    model.set_params(max_iter=n_iter, tol=0, warm_start=True)
    began = time.perf_counter()
    model.fit(X)
    return time.perf_counter() - began, model


def seconds_per_iteration(starts: dict, X: np.ndarray, n_iter: int, repeats: int) -> dict:
    """``library -> (seconds per iteration, lower bound after n_iter)``; fits alternate between the libraries."""
    times = {name: {0: [], n_iter: []} for name in starts}
    bounds = {}
    for _ in range(repeats):
        for name, start in starts.items():
            for iterations in (0, n_iter):
                seconds, model = timed_fit(start, X, iterations)
                times[name][iterations].append(seconds)
                if iterations:
                    assert model.n_iter_ == n_iter, (name, model.n_iter_)
                    bounds[name] = float(np.ravel(model.lower_bound_)[0])
    return {
        name: ((statistics.median(runs[n_iter]) - statistics.median(runs[0])) / n_iter, bounds[name])
        for name, runs in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(bench_em.CASES), choices=list(bench_em.CASES))
    parser.add_argument("--dtypes", nargs="*", default=["float64", "float32"], choices=["float64", "float32"])
    parser.add_argument("--iters", type=int, default=10, help="iterations of each timed fit")
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per library and length (median)")
    parser.add_argument("--quick", action="store_true", help="N/10 rows")
    args = parser.parse_args()
    if args.iters < 1 or args.repeats < 1:
        parser.error("--iters and --repeats must be at least 1")
    warnings.simplefilter("ignore")
    print(f"{args.iters} iterations per timed fit, median of {args.repeats}; load average at start "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| case | dtype | N | D | K | cov | gaussmix s/it | sklearn s/it | speed-up | gaussmix bound | sklearn bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        case = bench_em.CASES[name]
        n_samples = case.n_samples // 10 if args.quick else case.n_samples
        for dtype in args.dtypes:
            X = bench_em.make_data(case, n_samples, np.dtype(dtype))
            starts = {"gaussmix": started(BayesianGaussianMixture, X, case), "sklearn": started(SklearnBayesian, X, case)}
            result = seconds_per_iteration(starts, X, args.iters, args.repeats)
            (ours, our_bound), (theirs, their_bound) = result["gaussmix"], result["sklearn"]
            print(f"| {name} | {dtype} | {n_samples:,} | {case.n_features} | {case.n_components} | "
                  f"{case.covariance_type} | {ours:.4f} | {theirs:.4f} | {theirs / ours:.1f}x | "
                  f"{our_bound:.6f} | {their_bound:.6f} |", flush=True)


if __name__ == "__main__":
    main()
