"""EM per iteration on incomplete rows (missing="marginalize") against the same rows complete.

The issue's case: 10^6 x 16, K = 8, full, float64, 10 % of the entries
missing completely at random. Both fits start from the same parameters
(bench_em's start: K random rows, the data's variances), run ``--iterations``
iterations with tol=0, and the seconds per iteration are the median time
between iterations (the callback's time stamps), best of ``--repeats`` fits,
the two alternating. ``--numpy`` adds the same pair with the compiled kernels
off (``GAUSSMIX_NUMBA=0``).

Usage::

    python benchmarks/bench_missing.py             # the issue's case
    python benchmarks/bench_missing.py --quick     # N / 10
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np

from bench_em import Case, initial_arrays, make_data

CASE = Case("missing", 1_000_000, 16, 8, "full")


def remove_at_random(X: np.ndarray, fraction: float, seed: int = 2) -> np.ndarray:
    """A copy of ``X`` with ``fraction`` of its entries NaN, completely at random (no row emptied)."""
    rng = np.random.RandomState(seed)
    removed = rng.uniform(size=X.shape) < fraction
    emptied = np.flatnonzero(removed.all(axis=1))
    removed[emptied, rng.randint(X.shape[1], size=emptied.size)] = False
    incomplete = X.copy()
    incomplete[removed] = np.nan
    return incomplete


def seconds_per_iteration(X: np.ndarray, init: dict, n_iter: int) -> tuple[float, float]:
    """Median seconds between EM iterations of one fit, and its final mean log-likelihood."""
    from gaussmix import GaussianMixture

    stamps: list[float] = []
    model = GaussianMixture(
        CASE.n_components, covariance_type=CASE.covariance_type, tol=0.0, max_iter=n_iter, missing="marginalize",
        callback=lambda event: stamps.append(time.perf_counter()), **init,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return float(np.median(np.diff(stamps))), float(model.lower_bound_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N / 10")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of entries missing")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--numpy", action="store_true", help="also time the NumPy path (GAUSSMIX_NUMBA=0)")
    args = parser.parse_args()
    n_samples = CASE.n_samples // 10 if args.quick else CASE.n_samples
    X = make_data(CASE, n_samples, np.dtype(np.float64))
    incomplete = remove_at_random(X, args.fraction)
    init = initial_arrays(CASE, X)
    counts = np.bincount(np.isnan(incomplete).sum(axis=1), minlength=4)
    print(f"{n_samples} x {CASE.n_features}, K={CASE.n_components}, {CASE.covariance_type}, "
          f"{args.fraction:.0%} missing: rows missing 0/1/2/3+ entries "
          + "/".join(f"{c / n_samples:.1%}" for c in [*counts[:3], counts[3:].sum()]))
    settings = [("compiled", "1")] + ([("numpy", "0")] if args.numpy else [])
    load_before = os.getloadavg()[0]
    for name, switch in settings:
        os.environ["GAUSSMIX_NUMBA"] = switch
        best = {"complete": (np.inf, None), "incomplete": (np.inf, None)}
        for _ in range(args.repeats):  # alternating, so that both see the same neighbours
            for label, rows in (("complete", X), ("incomplete", incomplete)):
                seconds, bound = seconds_per_iteration(rows, init, args.iterations)
                best[label] = min(best[label], (seconds, bound), key=lambda pair: pair[0])
        ratio = best["incomplete"][0] / best["complete"][0]
        print(json.dumps(dict(kernels=name, complete_s=round(best["complete"][0], 4),
                              incomplete_s=round(best["incomplete"][0], 4), ratio=round(ratio, 2),
                              incomplete_loglik=best["incomplete"][1])))
    print(f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
