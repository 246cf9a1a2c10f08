"""Compare gaussmix's BIC table (K = 1..9 x mclust's 14 structures) with R's mclust.

    python benchmarks/compare_mclust.py [--data faithful iris] [--refit]

Needs ``Rscript`` with the mclust package on the PATH (Debian: ``apt-get install
r-cran-mclust``) to run benchmarks/mclust_reference.R, or a reference CSV
written by it beforehand (``--reference-dir``). R is not a gaussmix dependency.

Signs: mclust reports ``2 logL - p log n`` (higher is better), gaussmix follows
scikit-learn, ``-2 logL + p log n`` (lower is better); the tables below show
gaussmix's convention, mclust's values negated.

Each gaussmix cell is the best (lowest BIC) of a hierarchical start and
several k-means++ starts, fitted without regularisation (as mclust) to a tight
tolerance, so that a difference means two different optima, not two stopping
points.
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from gaussmix import MCLUST_COVARIANCE_TYPES, GaussianMixture

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
TOLERANCE = 0.1  # the acceptance threshold on |BIC difference|


def load(name: str) -> np.ndarray:
    with open(DATA / f"{name}.csv") as handle:
        header = next(csv.reader(handle))
    numeric = [i for i, column in enumerate(header) if column != "Species"]
    return np.loadtxt(DATA / f"{name}.csv", delimiter=",", skiprows=1, usecols=numeric)


def mclust_table(name: str, reference_dir: Path, tight: bool) -> dict[tuple[int, str], float]:
    """mclust's BICs converted to gaussmix's sign; NaN where mclust gives NA.

    ``tight``: mclust run to a relative tolerance of 1e-10 instead of its default 1e-5.
    """
    path = reference_dir / ("tight" if tight else "default") / f"{name}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        command = ["Rscript", str(HERE / "mclust_reference.R"), str(DATA / f"{name}.csv"), str(path)]
        subprocess.run(command + (["tight"] if tight else []), check=True)
    table = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            value = float(row["bic"]) if row["bic"] not in ("NA", "") else math.nan
            table[int(row["K"]), row["structure"]] = -value
    return table


def best_fit(X: np.ndarray, n_components: int, structure: str, n_kmeans_starts: int):
    """The fitted model of lowest BIC over a hierarchical start and k-means++ starts (None if all collapse)."""
    best_model, best, how = None, math.nan, "-"
    starts = [("hierarchical", 0)] + [("k-means++", seed) for seed in range(n_kmeans_starts)]
    for init, seed in starts:
        model = GaussianMixture(
            n_components, covariance_type=structure, init_params=init, random_state=seed,
            reg_covar=0.0, tol=1e-8, max_iter=10000,
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X)
        except (ValueError, ArithmeticError):  # a collapsed component: no finite optimum here
            continue
        bic = model.bic(X)
        if math.isfinite(bic) and not bic >= best:
            best_model, best, how = model, bic, init
    return best_model, best, how


def best_fit_bic(X: np.ndarray, n_components: int, structure: str, n_kmeans_starts: int) -> tuple[float, str]:
    """Lowest BIC over a hierarchical start and k-means++ starts; NaN if every start collapses."""
    _, best, how = best_fit(X, n_components, structure, n_kmeans_starts)
    return best, how


def mclust_from_gaussmix(name: str, X: np.ndarray, n_components: int, structure: str, n_kmeans_starts: int):
    """(gaussmix BIC, mclust's BIC after its own EM from gaussmix's responsibilities)."""
    model, bic, _ = best_fit(X, n_components, structure, n_kmeans_starts)
    with tempfile.TemporaryDirectory() as folder:
        z_path = Path(folder) / "z.csv"
        np.savetxt(z_path, model.predict_proba(X), delimiter=",")
        command = ["Rscript", str(HERE / "mclust_from_start.R"), str(DATA / f"{name}.csv"), str(z_path), structure]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return bic, -float(output.split()[0])


def verify(name: str, n_cells: int, n_kmeans_starts: int, out_dir: Path) -> list[str]:
    """Restart mclust from gaussmix's solution in the ``n_cells`` cells where gaussmix beats it most."""
    X = load(name)
    with open(out_dir / f"{name}.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["difference"]) < -TOLERANCE]
    rows.sort(key=lambda r: float(r["difference"]))
    lines = [f"### {name}: mclust restarted from gaussmix's solution", "",
             "| structure | K | gaussmix BIC | -(mclust BIC) from gaussmix's start | -(mclust BIC), own start |",
             "|---|---|---|---|---|"]
    for r in rows[:n_cells]:
        ours, theirs = mclust_from_gaussmix(name, X, int(r["K"]), r["structure"], n_kmeans_starts)
        lines.append(f"| {r['structure']} | {r['K']} | {ours:.3f} | {theirs:.3f} | {float(r['mclust_bic_negated']):.3f} |")
    return lines + [""]


def gaussmix_table(name: str, X: np.ndarray, n_kmeans_starts: int, cache: Path) -> dict:
    """``(K, structure) -> (BIC, best start)``, fitted, or read from ``cache`` when it exists."""
    if cache.exists():
        with open(cache) as handle:
            return {(int(r["K"]), r["structure"]): (float(r["gaussmix_bic"]), r["best_start"]) for r in csv.DictReader(handle)}
    table = {}
    for structure in MCLUST_COVARIANCE_TYPES:
        started = time.perf_counter()
        for K in range(1, 10):
            table[K, structure] = best_fit_bic(X, K, structure, n_kmeans_starts)
        print(f"{name} {structure}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return table


def compare(name: str, reference_dir: Path, n_kmeans_starts: int, out_dir: Path, refit: bool) -> list[str]:
    X = load(name)
    default, reference = mclust_table(name, reference_dir, False), mclust_table(name, reference_dir, True)
    cache = out_dir / f"{name}.csv"
    if refit and cache.exists():
        cache.unlink()
    began = time.perf_counter()
    ours_table = gaussmix_table(name, X, n_kmeans_starts, cache)
    elapsed = time.perf_counter() - began
    rows, lines = [], []
    for structure in MCLUST_COVARIANCE_TYPES:
        for K in range(1, 10):
            ours, how = ours_table[K, structure]
            theirs = reference[K, structure]
            rows.append((K, structure, ours, theirs, ours - theirs, how, default[K, structure]))
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(cache, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["K", "structure", "gaussmix_bic", "mclust_bic_negated", "difference", "best_start",
                         "mclust_default_bic_negated"])
        writer.writerows(rows)
    finite = [r for r in rows if math.isfinite(r[2]) and math.isfinite(r[3])]
    ours_best = min(finite, key=lambda r: r[2])
    theirs_best = min((r for r in rows if math.isfinite(r[3])), key=lambda r: r[3])
    agree = [r for r in finite if abs(r[4]) <= TOLERANCE]
    better = [r for r in finite if r[4] < -TOLERANCE]
    worse = [r for r in finite if r[4] > TOLERANCE]
    lines.append(f"## {name} (n = {X.shape[0]}, D = {X.shape[1]}; gaussmix grid {elapsed:.0f} s)")
    lines.append("")
    lines.append(f"- best model: gaussmix {ours_best[1]},{ours_best[0]} (BIC {ours_best[2]:.3f}); "
                 f"mclust {theirs_best[1]},{theirs_best[0]} (BIC {theirs_best[3]:.3f})")
    lines.append(f"- cells with both finite: {len(finite)} of {len(rows)}; |difference| <= {TOLERANCE}: {len(agree)}; "
                 f"gaussmix lower (better optimum): {len(better)}; gaussmix higher: {len(worse)}")
    only_mclust = [f"{r[1]},{r[0]}" for r in rows if math.isnan(r[2]) and math.isfinite(r[3])]
    only_ours = [f"{r[1]},{r[0]}" for r in rows if math.isfinite(r[2]) and math.isnan(r[3])]
    lines.append(f"- finite only in mclust: {', '.join(only_mclust) or 'none'}; "
                 f"only in gaussmix: {', '.join(only_ours) or 'none'}")
    lines.append("")
    lines.append("Cells that differ by more than the tolerance (mclust tight = tolerance 1e-10; "
                 "its default, 1e-5, for reference):")
    lines.append("")
    lines.append("| structure | K | gaussmix BIC | -(mclust BIC), tight | difference | gaussmix start | -(mclust BIC), default |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in rows:
        if not (math.isfinite(r[4]) and abs(r[4]) <= TOLERANCE):
            lines.append(f"| {r[1]} | {r[0]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:+.3f} | {r[5]} | {r[6]:.3f} |")
    lines.append("")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["faithful", "iris"])
    parser.add_argument("--reference-dir", type=Path, default=Path("benchmarks/results/mclust"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gaussmix_vs_mclust"))
    parser.add_argument("--kmeans-starts", type=int, default=3)
    parser.add_argument("--refit", action="store_true", help="refit gaussmix even if --out holds its table")
    parser.add_argument("--verify", type=int, default=0, metavar="N",
                        help="restart mclust from gaussmix's solution in the N cells where gaussmix is best ahead")
    args = parser.parse_args(argv)
    lines = []
    for name in args.data:
        lines += compare(name, args.reference_dir, args.kmeans_starts, args.out, args.refit)
    for name in args.data if args.verify else []:
        lines += verify(name, args.verify, args.kmeans_starts, args.out)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
