"""``make demo``: fit the bundled Old Faithful data and print the fitted mixture."""

from __future__ import annotations

from importlib import resources

import numpy as np

from . import GaussianMixture


def load_faithful() -> tuple[np.ndarray, list[str]]:
    """The Old Faithful eruptions (272 x 2: duration, waiting time, in minutes)."""
    with resources.files("gaussmix.data").joinpath("faithful.csv").open() as handle:
        header = handle.readline().strip().split(",")
        return np.loadtxt(handle, delimiter=","), header


def main() -> None:
    X, columns = load_faithful()
    print(f"Old Faithful: {X.shape[0]} eruptions, columns {columns}")
    print(f"{'K':>2} {'covariance':>10} {'BIC':>10}  (lower is better)")
    best = None
    for covariance_type in ("full", "tied", "diag", "spherical"):
        for k in range(1, 5):
            model = GaussianMixture(k, covariance_type=covariance_type, n_init=3, random_state=0).fit(X)
            bic = model.bic(X)
            print(f"{k:>2} {covariance_type:>10} {bic:10.2f}")
            if best is None or bic < best[0]:
                best = (bic, model)
    bic, model = best
    print(f"\nchosen: K={model.n_components}, covariance_type={model.covariance_type!r}, BIC={bic:.2f}")
    np.set_printoptions(precision=4, suppress=True)
    for k in range(model.n_components):
        print(f"component {k}: weight {model.weights_[k]:.4f}, mean {model.means_[k]}")
        print(f"  covariance\n{model.covariances_[k] if model.covariances_.ndim == 3 else model.covariances_}")


if __name__ == "__main__":
    main()
