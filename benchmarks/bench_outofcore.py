"""Out-of-core EM vs in-memory EM: seconds per iteration and peak memory.

Writes a .npy file of synthetic mixture data, reads it once so it sits in the
page cache, then fits the same model from the same start three ways, each in
a fresh subprocess (so peak memory is the fit's own):

- ``in-memory``: ``np.load`` the whole file, ``fit(X)``;
- ``npy path``: ``fit(path)``, one memory-mapped window per chunk;
- ``memmap``: ``fit(np.load(path, mmap_mode="r"))``, the whole file mapped.

Seconds per iteration are the median time between EM iterations (the
callback's timestamps), so the one-off passes (validation, start) do not
count. Peak RSS counts page-cache pages mapped into the process (a memmap
"uses" the file without owning it); peak anonymous RSS (sampled after each
iteration) is the memory the process really needs.

Usage: ``python benchmarks/bench_outofcore.py [--rows 1000000] [--features 8] [--components 4]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _anonymous_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(mode: str, path: str, start_file: str, n_iter: int, chunk_size: int | None) -> None:
    """Fit once and print a JSON line with the timings and memory."""
    from gaussmix import GaussianMixture

    start = np.load(start_file)
    stamps: list[float] = []
    anonymous: list[float] = []

    def on_iteration(event):
        stamps.append(time.perf_counter())
        anonymous.append(_anonymous_rss_mib())

    X = {"in-memory": lambda: np.load(path), "npy path": lambda: path,
         "memmap": lambda: np.load(path, mmap_mode="r")}[mode]()
    model = GaussianMixture(
        int(start["means"].shape[0]), tol=0, max_iter=n_iter, callback=on_iteration, chunk_size=chunk_size,
        weights_init=start["weights"], means_init=start["means"], precisions_init=start["precisions"],
    )
    began = time.perf_counter()
    model.fit(X)
    total = time.perf_counter() - began
    print(json.dumps({
        "mode": mode,
        "seconds_per_iteration": float(np.median(np.diff(stamps))),
        "seconds_total": total,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_anonymous_rss_mib": max(anonymous),
        "lower_bound": model.lower_bound_,
    }))


def write_data(path: str, n_rows: int, n_features: int, n_components: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, (n_components, n_features))
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n_rows, n_features))
    for start in range(0, n_rows, 2**18):
        stop = min(start + 2**18, n_rows)
        array[start:stop] = centres[rng.integers(0, n_components, stop - start)] + rng.standard_normal((stop - start, n_features))
    array.flush()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, load average {os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--components", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "START"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.iterations, args.chunk_size)
        return

    from gaussmix import GaussianMixture

    with tempfile.TemporaryDirectory() as folder:
        path, start_file = os.path.join(folder, "X.npy"), os.path.join(folder, "start.npz")
        write_data(path, args.rows, args.features, args.components)
        # A start shared by every mode (fitted on a slice), and a read that fills the page cache.
        head = np.load(path, mmap_mode="r")[:20000]
        start = GaussianMixture(args.components, max_iter=5, random_state=0).fit(np.asarray(head))
        np.savez(start_file, weights=start.weights_, means=start.means_, precisions=start.precisions_)
        with open(path, "rb") as handle:
            while handle.read(2**24):
                pass
        size_mib = os.path.getsize(path) / 2**20
        print(f"## Out-of-core EM ({args.rows} x {args.features}, K={args.components}, full, float64; "
              f"file {size_mib:.0f} MiB in page cache)\n")
        print(f"Machine: {machine()}\n")
        print("| mode | s / iteration | vs in-memory | peak RSS (MiB) | peak anonymous RSS (MiB) |")
        print("|---|---|---|---|---|")
        baseline = None
        for mode in ("in-memory", "npy path", "memmap"):
            command = [sys.executable, __file__, "--child", mode, path, start_file, "--iterations", str(args.iterations)]
            if args.chunk_size:
                command += ["--chunk-size", str(args.chunk_size)]
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode != 0:
                sys.exit(f"the {mode!r} run failed:\n{completed.stderr}")
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            baseline = baseline or result["seconds_per_iteration"]
            print(f"| {mode} | {result['seconds_per_iteration']:.3f} | {result['seconds_per_iteration'] / baseline:.2f}x "
                  f"| {result['peak_rss_mib']:.0f} | {result['peak_anonymous_rss_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
