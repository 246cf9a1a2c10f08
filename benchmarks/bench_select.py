"""Model selection, gaussmix against R mclust side by side: K = 1..9 x the 14 structures.

For each data set, ``gaussmix.select(X)`` with its defaults and R's ``Mclust(X, G = 1:9)``
with its defaults run in the same process tree, one after the other, each on one
thread (BLAS, OpenMP and gaussmix's chunk threads held to one); then gaussmix again
with ``n_jobs=-1``. Printed per data set: seconds of each, their ratio, both chosen
models and BICs (mclust's sign: higher is better).

Data: Old Faithful, iris (``../shared/data``), and four Gaussian clusters at
N = 2,000 / 20,000 / 200,000 rows and D = 4 and 10. R comes from Debian
(``apt-get install -y r-cran-mclust``); without ``Rscript`` gaussmix is timed alone.

Usage: ``python benchmarks/bench_select.py [--sizes 2000,20000] [--dims 4,10] [--no-r]``
"""

from __future__ import annotations

import os

# One thread each, set before NumPy loads its BLAS.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GAUSSMIX_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from gaussmix import select  # noqa: E402

MCLUST_NAMES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

R_SCRIPT = r"""
suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1])
data <- data[, sapply(data, is.numeric), drop = FALSE]
seconds <- system.time(fit <- Mclust(data, G = 1:9, verbose = FALSE))[["elapsed"]]
cat(seconds, fit$modelName, fit$G, fit$bic, "\n")
"""


def read_numeric_csv(path: Path) -> np.ndarray:
    """The numeric columns of a CSV file with a header, shape (n, D) (text columns read as NaN)."""
    values = np.genfromtxt(path, delimiter=",", skip_header=1)
    return values[:, ~np.isnan(values).all(axis=0)]


def clusters(n_rows: int, n_features: int, seed: int = 0) -> np.ndarray:
    """Four Gaussian clusters of unequal size and shape, shape (n_rows, n_features)."""
    rng = np.random.RandomState(seed)
    sizes = rng.multinomial(n_rows, [0.4, 0.3, 0.2, 0.1])
    parts = []
    for k, size in enumerate(sizes):
        centre = rng.normal(scale=4.0, size=n_features)
        mixing = rng.normal(size=(n_features, n_features)) * (0.5 + 0.5 * k)
        parts.append(centre + rng.normal(size=(size, n_features)) @ mixing.T / np.sqrt(n_features))
    X = np.vstack(parts)
    return X[rng.permutation(n_rows)]


def warm_up() -> None:
    """Load (or compile, on a first run) the compiled kernels before any timing.

    R's timing likewise leaves out loading mclust; numba compiles once per
    installation and caches on disk, and loads its cache once per process.
    """
    X = clusters(200, 3, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        select(X, n_components=[1, 2], random_state=0)


def time_gaussmix(X: np.ndarray, n_jobs) -> tuple[float, str, int, float]:
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = select(X, random_state=0, n_jobs=n_jobs)
    seconds = time.perf_counter() - began
    best = result.best
    return seconds, MCLUST_NAMES.get(best.covariance_type, best.covariance_type), best.n_components, -best.bic


def time_mclust(path: Path, script: Path) -> tuple[float, str, int, float]:
    environment = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    output = subprocess.run(["Rscript", str(script), str(path)], capture_output=True, text=True, check=True,
                            env=environment).stdout.split()
    return float(output[0]), output[1], int(output[2]), float(output[3])


def data_sets(sizes: list[int], dims: list[int]):
    yield "faithful", read_numeric_csv(SHARED / "faithful.csv")
    yield "iris", read_numeric_csv(SHARED / "iris.csv")
    for n in sizes:
        for d in dims:
            yield f"clusters N={n} D={d}", clusters(n, d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000,200000", help="synthetic row counts, comma-separated")
    parser.add_argument("--dims", default="4,10", help="synthetic feature counts, comma-separated")
    parser.add_argument("--no-r", action="store_true", help="time gaussmix alone")
    args = parser.parse_args()
    sizes = [int(v) for v in args.sizes.split(",") if v]
    dims = [int(v) for v in args.dims.split(",") if v]
    with_r = not args.no_r and shutil.which("Rscript") is not None
    if not with_r:
        print("Rscript not found (apt-get install -y r-cran-mclust): timing gaussmix alone")
    header = (f"{'data':<24}{'mclust s':>10}{'gaussmix s':>12}{'ratio':>8}{'n_jobs=-1 s':>13}"
              f"  {'mclust model':<18}{'gaussmix model':<18}")
    print(header)
    warm_up()
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "mclust.R"
        script.write_text(R_SCRIPT)
        for name, X in data_sets(sizes, dims):
            path = Path(folder) / "data.csv"
            np.savetxt(path, X, delimiter=",", header=",".join(f"x{j}" for j in range(X.shape[1])), comments="")
            mclust = time_mclust(path, script) if with_r else None
            ours = time_gaussmix(X, None)
            parallel = time_gaussmix(X, -1)
            ratio = f"{mclust[0] / ours[0]:8.2f}" if mclust else f"{'-':>8}"
            mclust_text = f"{mclust[1]},{mclust[2]} {mclust[3]:.2f}" if mclust else "-"
            print(f"{name:<24}{mclust[0] if mclust else float('nan'):>10.2f}{ours[0]:>12.2f}{ratio}"
                  f"{parallel[0]:>13.2f}  {mclust_text:<18}{ours[1]},{ours[2]} {ours[3]:.2f}", flush=True)
    print("ratio = mclust seconds / gaussmix seconds (above 1: gaussmix faster); BIC in mclust's sign")


if __name__ == "__main__":
    main()
