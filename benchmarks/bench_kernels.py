"""One E-step chunk per case: float64 against float32, one thread, ns a row.

Whole fits (``bench_em.py``) move by ±30 % from run to run on a shared
machine; one chunk's E-step, timed alone, moves by a few per cent. For each
case of ``bench_em.py`` this fits its data for a few EM iterations (float64),
then times ``gaussmix.estep.accumulate`` on one chunk of ``--rows`` rows in the EM
frame (shifted by the data's mean row), float64 and float32 alternating, on
one BLAS thread, and prints the best of ``--repeats`` in ns a row and their
ratio. To compare two commits, run it in a checkout of each (``git worktree
add``, then ``PYTHONPATH=<checkout>/src``), alternating.

Usage::

    python benchmarks/bench_kernels.py
    python benchmarks/bench_kernels.py --cases mid wide --rows 32768 --repeats 9
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_em  # noqa: E402  (the cases, their data and their start)


def fitted_params(case: bench_em.Case, X: np.ndarray, n_iter: int):
    """The parameters after ``n_iter`` EM iterations from ``bench_em``'s start (float64)."""
    import gaussmix
    from gaussmix.params import MixtureParams

    model = gaussmix.GaussianMixture(
        n_components=case.n_components, covariance_type=case.covariance_type, tol=0.0, max_iter=n_iter,
        reg_covar=bench_em.REG_COVAR, **bench_em.initial_arrays(case, X),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    covariance = gaussmix.get_covariance_model(case.covariance_type)
    return MixtureParams.from_covariances(model.weights_, model.means_, model.covariances_, covariance), covariance


def time_case(case: bench_em.Case, n_rows: int, n_iter: int, repeats: int) -> dict:
    """Best ns a row of one chunk's E-step in float64 and float32 (alternating)."""
    from gaussmix import estep

    X64 = bench_em.make_data(case, 2 * n_rows, np.dtype("float64"))
    params, covariance = fitted_params(case, X64, n_iter)
    shift = X64.mean(axis=0)
    in_frame = params.translated(-shift)
    X32 = X64.astype(np.float32)
    arguments = {
        "float64": (X64[:n_rows], in_frame),
        "float32": (X32[:n_rows], in_frame.converted_like(X32)),
    }
    best = {dtype: np.inf for dtype in arguments}
    with threadpool_limits(1):
        for _ in range(repeats):
            for dtype, (rows, frame_params) in arguments.items():
                began = time.perf_counter()
                estep.accumulate(rows, None, frame_params, shift)
                best[dtype] = min(best[dtype], time.perf_counter() - began)
    return {dtype: seconds / n_rows * 1e9 for dtype, seconds in best.items()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=list(bench_em.CASES), choices=list(bench_em.CASES))
    parser.add_argument("--rows", type=int, default=2**16, help="rows of the timed chunk")
    parser.add_argument("--iters", type=int, default=5, help="EM iterations before timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per dtype (best kept)")
    args = parser.parse_args(argv)
    import gaussmix

    print(f"# one chunk of {args.rows:,} rows, one thread, parameters after {args.iters} iterations, "
          f"best of {args.repeats}; gaussmix from {os.path.dirname(gaussmix.__file__)}\n")
    print("| case | float64 ns/row | float32 ns/row | float64 / float32 |\n|---|---|---|---|")
    for name in args.cases:
        result = time_case(bench_em.CASES[name], args.rows, args.iters, args.repeats)
        print(f"| {name} | {result['float64']:.1f} | {result['float32']:.1f} | "
              f"{result['float64'] / result['float32']:.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
