"""BayesianGaussianMixture per iteration: gaussmix against scikit-learn, at the core benchmark's cases.

For each case of ``bench_em.py`` (its data, N/10 with ``--quick``), both libraries fit
``BayesianGaussianMixture(n_components=K, covariance_type=..., random_state=0, tol=0)``
from the same k-means start, after a one-iteration warm-up fit each (numba loads its
kernels once per process). Seconds per iteration = (fit of ``--iters`` iterations − fit
of 0 iterations) / iterations; the final lower bounds are printed side by side.

Usage: ``python benchmarks/bench_bayesian.py [--quick] [--cases mid tied] [--dtypes float64 float32]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.mixture import BayesianGaussianMixture as SklearnBayesian

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_em  # noqa: E402  (the cases and their data)

from gaussmix import BayesianGaussianMixture  # noqa: E402


def seconds_per_iteration(estimator_class, X: np.ndarray, case: bench_em.Case, n_iter: int) -> tuple[float, float]:
    """(seconds per EM iteration, final lower bound) of one library on ``X``."""
    settings = dict(n_components=case.n_components, covariance_type=case.covariance_type, random_state=0,
                    reg_covar=bench_em.REG_COVAR)
    estimator_class(max_iter=1, **settings).fit(X[: min(len(X), 20_000)])  # warm-up
    began = time.perf_counter()
    estimator_class(max_iter=0, **settings).fit(X)
    start_only = time.perf_counter() - began
    began = time.perf_counter()
    model = estimator_class(max_iter=n_iter, tol=0, **settings).fit(X)
    fitted = time.perf_counter() - began
    return (fitted - start_only) / model.n_iter_, float(np.ravel(model.lower_bound_)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=list(bench_em.CASES), choices=list(bench_em.CASES))
    parser.add_argument("--dtypes", nargs="*", default=["float64", "float32"], choices=["float64", "float32"])
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="N/10 rows")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("| case | dtype | N | D | K | cov | gaussmix s/it | sklearn s/it | speed-up | gaussmix bound | sklearn bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.cases:
        case = bench_em.CASES[name]
        n_samples = case.n_samples // 10 if args.quick else case.n_samples
        for dtype in args.dtypes:
            X = bench_em.make_data(case, n_samples, np.dtype(dtype))
            ours, our_bound = seconds_per_iteration(BayesianGaussianMixture, X, case, args.iters)
            theirs, their_bound = seconds_per_iteration(SklearnBayesian, X, case, args.iters)
            print(f"| {name} | {dtype} | {n_samples:,} | {case.n_features} | {case.n_components} | "
                  f"{case.covariance_type} | {ours:.4f} | {theirs:.4f} | {theirs / ours:.1f}x | "
                  f"{our_bound:.6f} | {their_bound:.6f} |", flush=True)


if __name__ == "__main__":
    main()
