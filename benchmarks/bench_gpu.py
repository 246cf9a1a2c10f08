"""EM per iteration on a torch device: gaussmix against scikit-learn on the CPU.

For each case of issue 7, (N, D, K, covariance) =

* (10^6,   2,    5, full)
* (10^6,  32,   16, full)
* (10^7,  64,   64, diag)
* (10^6, 128, 1024, spherical)  (Flash-GMM's published case: A100, 30 iterations)

it reports

* gaussmix's seconds per EM iteration on the torch device (CUDA when there is
  one, else the CPU build of torch), timed between the per-iteration callbacks
  (each iteration ends with the convergence check, a device synchronisation);
  the first iteration is dropped as warm-up;
* scikit-learn's seconds per iteration on the host, measured on at most
  ``--sklearn-rows`` rows (fit with ``1 + n`` iterations minus fit with 1) and
  scaled linearly to N (EM is linear in N);
* torchgmm / pycave per iteration (same 1 + n minus 1 difference), when importable;
* achieved GFLOP/s (:func:`needed_flops`) against the device's measured
  matrix-product peak in the same dtype, with TF32 off.

Without CUDA it runs on the CPU build of torch; ``--quick`` divides N by 100
there (by 10 on CUDA) so that it finishes on a laptop.

Usage::

    python benchmarks/bench_gpu.py                 # the four cases, float32, on CUDA if present
    python benchmarks/bench_gpu.py --quick         # N / 100 on CPU, N / 10 on CUDA
    python benchmarks/bench_gpu.py --cases 0 3 --dtype float64 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from gaussmix import GaussianMixture


@dataclass(frozen=True)
class Case:
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str

    def label(self) -> str:
        return f"N={self.n_samples:.0e} D={self.n_features} K={self.n_components} {self.covariance_type}"


#: k-means++ seeds (on the host, on at most 2**17 rows for gaussmix): with K up to 1024, random
#: seeds leave clusters without a component and others with two, and float32 fits then stop
#: with a collapsed component (reg_covar=1e-6 is below float32's resolution of the variances).
INIT = "k-means++"

CASES = (
    Case(1_000_000, 2, 5, "full"),
    Case(1_000_000, 32, 16, "full"),
    Case(10_000_000, 64, 64, "diag"),
    Case(1_000_000, 128, 1024, "spherical"),
)


def needed_flops(case: Case, n_samples: int) -> float:
    """Floating-point operations one EM iteration needs (a multiply-add counts 2).

    Only the products that grow with N*K are counted, at the size the maths
    needs (not what a given implementation executes):

    * full: whitening ``x C_k`` with a triangular C_k (D(D+1)/2 multiply-adds),
      the symmetric scatter (D(D+1)/2) and the weighted means (D), per row and component;
    * diag: the distance as ``x^2 . p_k - 2 x . (mu_k p_k)`` (2D) and the
      first and second moments (2D), per row and component;
    * spherical: the cross term ``x . mu_k`` (D) and the moments (2D).

    Exponentials and the log-sum-exp are not counted: the figure is a lower
    bound on the work done.
    """
    n, D, K = n_samples, case.n_features, case.n_components
    triangle = D * (D + 1) // 2
    per_row_and_component = {
        "full": 2 * triangle + D,
        "diag": 4 * D,
        "spherical": 3 * D,
    }[case.covariance_type]
    return 2.0 * n * K * per_row_and_component


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, repeats: int = 5) -> float:
    """Measured GFLOP/s of a square matrix product on ``device`` (TF32 off)."""
    size = 8192 if device.type == "cuda" else 2048
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        a @ b  # warm-up: library load, kernel selection
        synchronize(device)
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            a @ b
            synchronize(device)
            times.append(time.perf_counter() - began)
    finally:
        torch.set_float32_matmul_precision(previous)
    return 2.0 * size**3 / min(times) / 1e9


def make_data(case: Case, n_samples: int, device: torch.device, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """K Gaussian clusters generated on the device, in blocks (no N x D x D temporary)."""
    generator = torch.Generator(device=device).manual_seed(seed)
    D, K = case.n_features, case.n_components
    means = 6 * torch.randn(K, D, generator=generator, device=device, dtype=dtype)
    scales = 0.5 + torch.rand(K, D, generator=generator, device=device, dtype=dtype)
    X = torch.empty(n_samples, D, device=device, dtype=dtype)
    block = 1_000_000
    for start in range(0, n_samples, block):
        stop = min(start + block, n_samples)
        labels = torch.randint(K, (stop - start,), generator=generator, device=device)
        noise = torch.randn(stop - start, D, generator=generator, device=device, dtype=dtype)
        X[start:stop] = means[labels] + noise * scales[labels]
    return X


def time_gaussmix(case: Case, X: torch.Tensor, n_iter: int, reg_covar: float) -> dict:
    """Seconds per iteration from callback timestamps, first iteration dropped."""
    stamps = []
    model = GaussianMixture(
        case.n_components,
        covariance_type=case.covariance_type,
        init_params=INIT,
        reg_covar=reg_covar,
        tol=0,
        max_iter=n_iter + 1,
        random_state=0,
        callback=lambda event: stamps.append(time.perf_counter()),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    per_iter = statistics.median(np.diff(stamps))
    return dict(seconds_per_iter=per_iter, chunk_rows=model._chunk_rows(X), lower_bound=model.lower_bound_)


def _iteration_difference(fit, n_iter: int) -> float:
    """(time of fit with 1 + n_iter iterations - time with 1) / n_iter: start-up cost cancels."""
    times = {}
    for iterations in (1, 1 + n_iter):
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit(iterations)
        times[iterations] = time.perf_counter() - began
    return max(times[1 + n_iter] - times[1], 0.0) / n_iter


def time_sklearn(case: Case, X: torch.Tensor, n_iter: int, max_rows: int, reg_covar: float) -> dict:
    host = X[:max_rows].cpu().numpy()

    def fit(iterations: int) -> None:
        SklearnGaussianMixture(
            case.n_components, covariance_type=case.covariance_type, init_params=INIT,
            reg_covar=reg_covar, tol=0, max_iter=iterations, random_state=0,
        ).fit(host)

    measured = _iteration_difference(fit, n_iter)
    return dict(seconds_per_iter=measured * X.shape[0] / host.shape[0], rows_measured=host.shape[0])


def time_lightning_gmm(module_name: str, case: Case, X: torch.Tensor, n_iter: int, reg_covar: float) -> dict:
    """torchgmm / pycave (same Lightning-based API), if installed; else why not."""
    try:
        bayes = __import__(f"{module_name}.bayes", fromlist=["GaussianMixture"])
    except Exception as error:  # not installed, or broken against this torch
        return dict(skipped=f"{type(error).__name__}: {error}")
    accelerator = "gpu" if X.device.type == "cuda" else "cpu"

    def fit(iterations: int) -> None:
        bayes.GaussianMixture(
            num_components=case.n_components, covariance_type=case.covariance_type,
            init_strategy="random", convergence_tolerance=0, covariance_regularization=reg_covar,
            trainer_params=dict(accelerator=accelerator, devices=1, max_epochs=iterations,
                                enable_progress_bar=False, logger=False),
        ).fit(X)

    try:
        return dict(seconds_per_iter=_iteration_difference(fit, n_iter))
    except Exception as error:
        return dict(skipped=f"{type(error).__name__}: {error}")


def run_case(case: Case, n_samples: int, device: torch.device, dtype: torch.dtype, args) -> dict:
    X = make_data(case, n_samples, device, dtype)
    synchronize(device)
    result = dict(case=asdict(case), n_samples=n_samples, device=str(device), dtype=str(dtype), reg_covar=args.reg_covar)
    result["gaussmix"] = time_gaussmix(case, X, args.iterations, args.reg_covar)
    result["gaussmix"]["gflops"] = needed_flops(case, n_samples) / result["gaussmix"]["seconds_per_iter"] / 1e9
    if not args.no_sklearn:
        result["sklearn"] = time_sklearn(case, X, args.sklearn_iterations, args.sklearn_rows, args.reg_covar)
    for name in ("torchgmm", "pycave"):
        result[name] = time_lightning_gmm(name, case, X, args.iterations, args.reg_covar)
    del X
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads (torch {torch.__version__})"


def print_table(results: list[dict], peak: float, device_text: str) -> None:
    dtypes = sorted({r["dtype"] for r in results})
    print(f"\ndevice: {device_text}; {', '.join(dtypes)}; matrix-product peak {peak:.0f} GFLOP/s\n")
    print("| case | N | gaussmix s/iter | GFLOP/s (% peak) | chunk rows | sklearn CPU s/iter (rows measured) | sklearn / gaussmix | torchgmm s/iter | pycave s/iter |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        case = Case(**r["case"])
        g = r["gaussmix"]
        s = r.get("sklearn")
        sk = f"{s['seconds_per_iter']:.3g} ({s['rows_measured']:,})" if s else "-"
        ratio = f"{s['seconds_per_iter'] / g['seconds_per_iter']:.1f}x" if s else "-"
        others = [
            f"{r[name]['seconds_per_iter']:.3g}" if "seconds_per_iter" in r[name] else "not run"
            for name in ("torchgmm", "pycave")
        ]
        print(
            f"| D={case.n_features} K={case.n_components} {case.covariance_type} | {r['n_samples']:,} | "
            f"{g['seconds_per_iter']:.3g} | {g['gflops']:.0f} ({100 * g['gflops'] / peak:.1f}%) | "
            f"{g['chunk_rows']:,} | {sk} | {ratio} | {others[0]} | {others[1]} |"
        )
    reasons = {r[name]["skipped"] for r in results for name in ("torchgmm", "pycave") if "skipped" in r[name]}
    for reason in sorted(reasons):
        print(f"\nnot run: {reason}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N / 100 on CPU, N / 10 on CUDA")
    parser.add_argument("--cases", type=int, nargs="*", default=list(range(len(CASES))), help="case indices 0-3")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--iterations", type=int, default=5, help="timed EM iterations after one warm-up")
    parser.add_argument("--sklearn-iterations", type=int, default=3)
    parser.add_argument("--sklearn-rows", type=int, default=100_000, help="rows scikit-learn is timed on")
    parser.add_argument("--no-sklearn", action="store_true")
    parser.add_argument("--reg-covar", type=float, default=1e-6, help="for every library (default: theirs)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if device.type != "cuda":
        print("no CUDA device: running on the CPU build of torch" + ("" if args.quick else " (add --quick for N / 100)"))
    divisor = (100 if device.type != "cuda" else 10) if args.quick else 1
    peak = matmul_peak_gflops(device, dtype)
    results = []
    for index in args.cases:
        case = CASES[index]
        # at least 20 rows per component: fewer leave components on one or two rows
        n_samples = max(case.n_samples // divisor, 20 * case.n_components)
        print(f"running {case.label()} with N={n_samples:,} on {device} ...", flush=True)
        try:
            results.append(run_case(case, n_samples, device, dtype, args))
        except Exception as error:  # report the case as failed and go on with the others
            print(f"  failed: {type(error).__name__}: {error}", flush=True)
    device_text = device_description(device)
    print_table(results, peak, device_text)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(dict(device=device_text, peak_gflops=peak, results=results), handle, indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
