"""Time ``gaussmix.select`` on Old Faithful: K = 1..9, all 14 structures, as ``make demo`` fits it.

Each cell keeps the best of the hierarchical start and one k-means++ start
(``n_init=1``, the demo's setting). Also times the hierarchical agglomeration
itself: once per ``select`` call (the shared tree) against once per cell.

Usage: ``python benchmarks/bench_select.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time
from importlib import resources

import numpy as np

from gaussmix import select
from gaussmix.hierarchical import HierarchicalTree
from gaussmix.selection import _check_covariance_types


def faithful() -> np.ndarray:
    """Old Faithful as packaged with gaussmix: shape (272, 2)."""
    with resources.as_file(resources.files("gaussmix.data") / "faithful.csv") as path:
        return np.loadtxt(path, delimiter=",", skiprows=1)


def seconds(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    X = faithful()
    n_cells = 9 * len(_check_covariance_types("all"))
    tree = seconds(lambda: HierarchicalTree(X, None, np.random.RandomState(0)), args.repeats)
    grid = seconds(lambda: select(X, range(1, 10), "all", n_init=1, random_state=0), args.repeats)
    print(f"Old Faithful {X.shape}, {n_cells} cells, best of {args.repeats}")
    print(f"one hierarchical tree:          {min(tree):8.3f} s (x {n_cells} cells when built per cell: {min(tree) * n_cells:.2f} s)")
    print(f"select(K=1..9, all, n_init=1):  {min(grid):8.3f} s  (all: {', '.join(f'{t:.2f}' for t in grid)})")


if __name__ == "__main__":
    main()
