"""EM per iteration: gaussmix against scikit-learn's GaussianMixture, same start.

Every case runs in a fresh process that fits both libraries on the same data
from the same initial parameters (weights_init, means_init, precisions_init),
tol=0 and the same fixed number of iterations, and reports:

* seconds per EM iteration of each (median over the iterations of a fit, best
  of ``--repeats`` fits, the libraries alternating), and their ratio;
* peak extra memory of each ``fit`` (tracemalloc: NumPy's allocations beyond the input);
* achieved GFLOP/s (the flops an iteration really needs, see ``needed_flops``)
  and its share of the machine's measured matrix-product peak;
* the final mean log-likelihood of each and their relative difference.

Then it shows that the peak RSS of ``fit`` does not grow with N, and what the
k-means start costs on 10^6 rows against one EM iteration.

Usage::

    python benchmarks/bench_em.py            # the cases of issue 3, float64 and float32
    python benchmarks/bench_em.py --quick    # N / 10: usable on a busy machine
    python benchmarks/bench_em.py --cases mid diag --dtypes float32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    name: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str


CASES = {
    case.name: case
    for case in (
        Case("small-d", 1_000_000, 2, 5, "full"),
        Case("mid", 200_000, 16, 16, "full"),
        Case("wide", 200_000, 64, 32, "full"),
        Case("diag", 1_000_000, 64, 64, "diag"),
        Case("tied", 200_000, 32, 16, "tied"),
        Case("spherical", 200_000, 32, 16, "spherical"),
    )
}


#: regularisation of both libraries: with K=64 random-row starts in 64 dimensions a
#: component can end on a single row, and float32 with 1e-6 then fails in both
REG_COVAR = 1e-3


def needed_flops(case: Case, n_samples: int) -> float:
    """Floating-point operations one EM iteration really needs (multiply and add count 2).

    Counts only the dominant products, exploiting structure: a triangular
    precision factor (D(D+1)/2 multiply-adds per whitening) and symmetric
    scatter matrices (D(D+1)/2 per row and component). Element-wise work
    (exp, logsumexp) is not counted, so the figures are a lower bound on work.
    """
    n, D, K = n_samples, case.n_features, case.n_components
    triangle = D * (D + 1) / 2
    if case.covariance_type == "full":
        return 2 * n * K * (triangle + triangle + D)  # whitening, scatter, means
    if case.covariance_type == "tied":
        # shared whitening, K distances, pooled scatter, means
        return 2 * n * (triangle + K * D + triangle + K * D)
    if case.covariance_type == "diag":
        return 2 * n * K * (2 * D + 2 * D)  # [x^2, x] both ways
    return 2 * n * K * (2 * (D + 1))  # spherical: [|x|^2, x] both ways


def make_data(case: Case, n_samples: int, dtype: np.dtype, seed: int = 0) -> np.ndarray:
    """Gaussian clusters (anisotropic for full/tied), generated in blocks to keep RSS low."""
    rng = np.random.RandomState(seed)
    D, K = case.n_features, case.n_components
    centres = rng.normal(scale=3.0, size=(K, D))
    mixing = rng.normal(size=(K, D, D)) / np.sqrt(D) + np.eye(D)
    X = np.empty((n_samples, D), dtype=dtype)
    block = 4096  # small blocks: the generator's temporaries must not mask the fit's peak RSS
    for start in range(0, n_samples, block):
        stop = min(start + block, n_samples)
        labels = rng.randint(K, size=stop - start)
        noise = rng.normal(size=(stop - start, D))
        X[start:stop] = centres[labels] + np.einsum("nd,nde->ne", noise, mixing[labels])
    return X


def initial_arrays(case: Case, X: np.ndarray, seed: int = 1) -> dict:
    """The same start for both libraries: K random rows, equal weights, the data's variances."""
    rng = np.random.RandomState(seed)
    K, D = case.n_components, case.n_features
    means = X[rng.choice(X.shape[0], K, replace=False)].astype(np.float64)
    variances = X[:20000].astype(np.float64).var(axis=0)
    precision_diag = 1.0 / variances
    precisions = {
        "full": np.broadcast_to(np.diag(precision_diag), (K, D, D)).copy(),
        "tied": np.diag(precision_diag),
        "diag": np.tile(precision_diag, (K, 1)),
        "spherical": np.full(K, 1.0 / variances.mean()),
    }[case.covariance_type]
    return dict(
        weights_init=np.full(K, 1.0 / K),
        means_init=means,
        precisions_init=precisions,
    )


def matmul_peak_gflops(dtype: np.dtype, size: int = 2000, repeats: int = 3) -> float:
    """Best-of-``repeats`` GFLOP/s of a square matrix product (all BLAS threads)."""
    rng = np.random.RandomState(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    best = np.inf
    for _ in range(repeats):
        began = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - began)
    return 2 * size**3 / best / 1e9


def _sklearn_timed():
    """scikit-learn's estimator with a time stamp at every M-step (one per iteration)."""
    from sklearn.mixture import GaussianMixture

    class Timed(GaussianMixture):
        def _m_step(self, *args, **kwargs):
            super()._m_step(*args, **kwargs)
            self.stamps_.append((time.perf_counter(), time.process_time()))

    return Timed


def fit_one(library: str, case: Case, X: np.ndarray, init: dict, n_iter: int, trace_memory: bool) -> dict:
    """Fit one library; seconds per iteration from per-iteration time stamps."""
    kwargs = dict(
        n_components=case.n_components, covariance_type=case.covariance_type,
        tol=0.0, max_iter=n_iter, reg_covar=REG_COVAR, **init,
    )
    if library == "gaussmix":
        import gaussmix

        stamps: list[tuple[float, float]] = []
        model = gaussmix.GaussianMixture(
            callback=lambda event: stamps.append((time.perf_counter(), time.process_time())), **kwargs
        )
    else:
        # random_from_data: scikit-learn runs its initialiser even when all three
        # arrays are given (and then overrides its result); keep that cheap.
        model = _sklearn_timed()(init_params="random_from_data", random_state=0, **kwargs)
        model.stamps_ = stamps = []
    if trace_memory:
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    total = time.perf_counter() - began
    peak = None
    if trace_memory:
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
    # Median of the per-iteration times: robust to a neighbour's burst on a shared machine.
    wall, cpu = np.diff(np.asarray(stamps), axis=0).T
    per_iteration = float(np.median(wall))
    return dict(seconds_per_iter=per_iteration, cpu_seconds_per_iter=float(np.median(cpu)), fit_seconds=total, lower_bound=float(model.lower_bound_), peak_extra_bytes=peak)


def run_case(case: Case, dtype_name: str, n_samples: int, n_iter: int, repeats: int) -> dict:
    dtype = np.dtype(dtype_name)
    X = make_data(case, n_samples, dtype)
    init = initial_arrays(case, X)
    peak = matmul_peak_gflops(dtype)
    flops = needed_flops(case, n_samples)
    result = dict(case=case.name, dtype=dtype_name, n_samples=n_samples, n_iter=n_iter, peak_gflops=peak)
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"gaussmix": [], "sklearn": []}
    # Alternate the libraries so that both see the same neighbours; keep each one's best run.
    for _ in range(repeats):
        for library in runs:
            runs[library].append(fit_one(library, case, X, init, n_iter, trace_memory=False))
    for library, attempts in runs.items():
        timed = min(attempts, key=lambda r: r["seconds_per_iter"])
        timed["all_seconds_per_iter"] = [r["seconds_per_iter"] for r in attempts]
        # Memory in a separate short fit: tracemalloc slows the allocations it watches.
        timed["peak_extra_bytes"] = fit_one(library, case, X, init, 2, trace_memory=True)["peak_extra_bytes"]
        timed["gflops"] = flops / timed["seconds_per_iter"] / 1e9
        result[library] = timed
    result["load"] = [load_before, os.getloadavg()[0]]
    return result


def run_rss(n_samples: int, library: str, quick: bool) -> dict:
    """Peak RSS growth of one fit (the 'mid' case, float64) after the data exist."""
    case = CASES["mid"]
    X = make_data(case, n_samples, np.dtype("float64"))
    init = initial_arrays(case, X)
    # Warm up on a slice first: imports and one-off allocations are not per-row memory.
    fit_one(library, case, X[:5000], init, 2, trace_memory=False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fit_one(library, case, X, init, 3, trace_memory=False)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(n_samples=n_samples, library=library, data_mib=X.nbytes / 2**20, rss_growth_mib=(after - before) / 1024)


def run_init(n_samples: int) -> dict:
    """k-means start on ``n_samples`` rows (small-d and diag data) against one EM iteration."""
    from sklearn.exceptions import ConvergenceWarning

    from gaussmix import GaussianMixture
    from gaussmix.init import get_initializer

    rows = []
    for name in ("small-d", "diag"):
        case = CASES[name]
        X = make_data(case, n_samples, np.dtype("float64"))
        # Each timed twice, the faster kept: the first call in a process also loads
        # the compiled kernels from numba's cache (once per process, not per fit).
        kmeans = start = np.inf
        for _ in range(2):
            began = time.perf_counter()
            get_initializer("kmeans")(X, None, case.n_components, np.random.RandomState(0))
            kmeans = min(kmeans, time.perf_counter() - began)
            # The whole start: validation, k-means labels, their statistics and the first M-step.
            began = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                GaussianMixture(
                    case.n_components, covariance_type=case.covariance_type, max_iter=0, random_state=0
                ).fit(X)
            start = min(start, time.perf_counter() - began)
        iteration = fit_one("gaussmix", case, X, initial_arrays(case, X), 4, trace_memory=False)["seconds_per_iter"]
        rows.append(dict(case=name, n_samples=n_samples, kmeans_seconds=kmeans, start_seconds=start,
                         em_iteration_seconds=iteration))
    return dict(rows=rows)


# ----------------------------------------------------------------- driver
def _child(args: list[str]) -> dict:
    """Run this script in a fresh process and return the JSON it prints last."""
    completed = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _mib(n_bytes) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:.1f}"


def print_case_table(results: list[dict]) -> None:
    header = (
        "| case | dtype | N | D | K | cov | gaussmix s/it | sklearn s/it | speed-up | CPU s/it gaussmix / sklearn | "
        "gaussmix extra MiB | "
        "sklearn extra MiB | gaussmix GFLOP/s (% peak) | sklearn GFLOP/s (% peak) | gaussmix loglik | "
        "sklearn loglik | rel. diff | load avg |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in results:
        case = CASES[r["case"]]
        g, s = r["gaussmix"], r["sklearn"]
        rel = abs(g["lower_bound"] - s["lower_bound"]) / abs(s["lower_bound"])
        print(
            f"| {case.name} | {r['dtype']} | {r['n_samples']:,} | {case.n_features} | {case.n_components} | "
            f"{case.covariance_type} | {g['seconds_per_iter']:.4f} | {s['seconds_per_iter']:.4f} | "
            f"{s['seconds_per_iter'] / g['seconds_per_iter']:.1f}x | "
            f"{g['cpu_seconds_per_iter']:.4f} / {s['cpu_seconds_per_iter']:.4f} | {_mib(g['peak_extra_bytes'])} | "
            f"{_mib(s['peak_extra_bytes'])} | {g['gflops']:.1f} ({100 * g['gflops'] / r['peak_gflops']:.0f}%) | "
            f"{s['gflops']:.1f} ({100 * s['gflops'] / r['peak_gflops']:.0f}%) | {g['lower_bound']:.8g} | "
            f"{s['lower_bound']:.8g} | {rel:.1e} | {r['load'][0]:.1f}-{r['load'][1]:.1f} |"
        )
    by_case = {(r["case"], r["dtype"]): r for r in results}
    for name in dict.fromkeys(r["case"] for r in results):
        if (name, "float32") in by_case and (name, "float64") in by_case:
            single = by_case[name, "float32"]["gaussmix"]["lower_bound"]
            double = by_case[name, "float64"]["gaussmix"]["lower_bound"]
            print(f"\n{name}: gaussmix float32 vs float64 final log-likelihood, relative difference "
                  f"{abs(single - double) / abs(double):.1e}", end="")
    print()
    peaks = sorted({(r["dtype"], round(r["peak_gflops"], 1)) for r in results})
    print("\nmeasured matrix-product peak (2000x2000, per case process): " + ", ".join(f"{d} {p} GFLOP/s" for d, p in peaks))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N / 10 and fewer iterations")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--dtypes", nargs="*", default=["float64", "float32"], choices=["float64", "float32"])
    parser.add_argument("--iters", type=int, default=None, help="EM iterations per fit (default 10, quick 5)")
    parser.add_argument("--repeats", type=int, default=2, help="fits per library and case (best kept)")
    parser.add_argument("--skip-extras", action="store_true", help="only the per-case table")
    parser.add_argument("--only-extras", action="store_true", help="only the memory and k-means tables")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "case":
            name, dtype, n_samples, n_iter, repeats = rest
            print(json.dumps(run_case(CASES[name], dtype, int(n_samples), int(n_iter), int(repeats))))
        elif kind == "rss":
            print(json.dumps(run_rss(int(rest[0]), rest[1], False)))
        elif kind == "init":
            print(json.dumps(run_init(int(rest[0]))))
        return

    scale = 10 if args.quick else 1
    n_iter = args.iters or (5 if args.quick else 10)
    print(f"# gaussmix vs scikit-learn, {n_iter} EM iterations from the same start, tol=0"
          f"{' (quick: N/10)' if args.quick else ''}; load average {os.getloadavg()[0]:.2f}\n")
    results = []
    for name in [] if args.only_extras else args.cases:
        for dtype in args.dtypes:
            case = CASES[name]
            results.append(_child(
                ["--worker", "case", name, dtype, str(case.n_samples // scale), str(n_iter), str(args.repeats)]
            ))
            print(f"  done {name} {dtype}", file=sys.stderr)
    if results:
        print_case_table(results)
    if args.skip_extras:
        return
    print("\n## peak RSS growth of fit ('mid' case, float64, 3 iterations)\n")
    print("| library | N | data MiB | peak RSS growth MiB |\n|---|---|---|---|")
    for library in ("gaussmix", "sklearn"):
        for n_samples in (100_000, 1_000_000):  # full size even with --quick: it is the point
            r = _child(["--worker", "rss", str(n_samples), library])
            print(f"| {library} | {n_samples:,} | {r['data_mib']:.0f} | {r['rss_growth_mib']:.0f} |")
    print("\n## k-means start vs one EM iteration (gaussmix, float64)\n")
    print("| data | N | k-means labels s | whole start s | EM s/iteration | start / iteration |\n|---|---|---|---|---|---|")
    for row in _child(["--worker", "init", "1000000"])["rows"]:
        print(f"| {row['case']} | {row['n_samples']:,} | {row['kmeans_seconds']:.2f} | {row['start_seconds']:.2f} | "
              f"{row['em_iteration_seconds']:.3f} | {row['start_seconds'] / row['em_iteration_seconds']:.1f} |")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
