"""The whitened engine: full covariances, every component's whitening in one product.

Per block of rows, ``(b, D) @ (D, K D)`` whitens the rows against every
component at once (about the chunk's centre); a batched product then sums
each component's scatter in its whitened coordinates. It serves the dense
problems where the expanded features ``upper(x x^T)`` would be too wide
(many features, few components) or lose too many digits.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..covariance.base import held_by_frame
from ..stats import WEIGHT_FLOOR, SuffStats
from . import _kernels as kernels
from ._dense import log_det_and_offsets
from .engine import Engine, Problem

#: a float32 whitened scatter is redone in float64 where a component's new scatter, in its
#: old whitened coordinates, has an eigenvalue below this many times eps32 times the
#: trace of the scatter about its old mean (the rounding of that sum)
WHITENED_ROUNDING_MARGIN = 1e3


class WhitenedEngine(Engine):
    name = "whitened"

    def can_run(self, problem: Problem) -> bool:
        return problem.layout == "full" and problem.numpy

    def accumulate(
        self, X: Any, sample_weight: Optional[Any], params: Any, shift: Optional[Any] = None
    ) -> Optional[tuple[SuffStats, float]]:
        # Each block is centred as it is whitened: no shifted copy of the chunk.
        factors = params.precisions_cholesky
        n_samples, n_features = X.shape
        n_components = factors.shape[0]
        _, _, offsets = log_det_and_offsets(params)
        centre, means, origin = kernels.chunk_centre(X, params.means, shift)
        if not held_by_frame(np.sum(np.abs(means) * np.sum(np.abs(factors), axis=2), axis=1)).all():
            # A mean far from the chunk: whitening in its frame would spoil the other components.
            return None
        # (b, D) @ (D, K*D): every component's whitening in one product.
        stacked = factors.transpose(1, 0, 2).reshape(n_features, n_components * n_features)
        whitened_means = np.matmul(means[:, None, :], factors)[:, 0, :]
        accumulator = kernels.WhitenedAccumulator(n_components, n_features, X.dtype)
        rows = kernels.block_rows(n_components * n_features, X.dtype.itemsize)
        buffer = np.empty((min(rows, n_samples), n_features), dtype=X.dtype)
        for start, stop in kernels.row_blocks(n_samples, rows):
            centred = np.subtract(X[start:stop], centre, out=buffer[: stop - start])
            whitened = (centred @ stacked).reshape(stop - start, n_components, n_features)
            whitened -= whitened_means
            log_prob = np.einsum("nkd,nkd->kn", whitened, whitened)
            # log N = -|y|^2 / 2 + offsets, applied inside the responsibilities' passes
            accumulator.add_whitened(log_prob, sample_weight, start, stop, centred, whitened, -0.5, offsets)
        if X.dtype != np.float64 and _rounding_dominates(accumulator, factors, means):
            # Redo the chunk in float64 (rare: a component shrinking far below its last
            # covariance), with the statistics in X's dtype as always.
            from .registry import accumulate

            float64_params = params.converted_like(np.zeros(1))  # (like a float64 NumPy array)
            stats, loglik = accumulate(X.astype(np.float64), sample_weight, float64_params, shift)
            dtype = X.dtype
            return SuffStats(
                stats.resp_weight.astype(dtype), stats.means.astype(dtype), stats.scatter.astype(dtype),
                stats.total_weight,
            ), loglik
        # x - mu = y C^{-1}: C^{-1} is the upper Cholesky factor of the covariance.
        return accumulator.finish(np.linalg.inv(factors), means, origin)


def _rounding_dominates(accumulator: Any, factors: np.ndarray, means: np.ndarray) -> bool:
    """Whether a float32 whitened scatter lost a direction of some component to rounding.

    The scatter is summed about the old means, in the old covariances' whitened
    coordinates ``y = (x - mu) C``, and moved to the new means afterwards: ``W_new = W - N
    ybar ybar^T``. Where a component shrinks far below its old covariance (one of under a
    row's weight, going from large variances to reg_covar), eps32 times ``trace W`` exceeds
    what ``W_new`` holds in some direction: the float32 scatter comes out indefinite and
    the fit would stop with a collapsed component.

    Parameters
    ----------
    accumulator : WhitenedAccumulator
        After the chunk's blocks (float32 sums).
    factors : ndarray of shape (K, D, D)
    means : ndarray of shape (K, D)
        The old means, in the rows' centred frame.
    """
    resp_weight = accumulator.resp_weight.astype(np.float64)
    live = resp_weight >= WEIGHT_FLOOR
    if not np.any(live):
        return False
    scatter = accumulator.scatter.astype(np.float64)[live]
    weight = resp_weight[live]
    new_means = accumulator.row_sums.astype(np.float64)[live] / weight[:, None]
    moved = np.einsum("kd,kde->ke", new_means - means[live].astype(np.float64), factors[live].astype(np.float64))
    moved_scatter = scatter - weight[:, None, None] * (moved[:, :, None] * moved[:, None, :])
    lowest = np.linalg.eigvalsh(0.5 * (moved_scatter + np.swapaxes(moved_scatter, 1, 2)))[:, 0]
    lost = WHITENED_ROUNDING_MARGIN * float(np.finfo(np.float32).eps) * np.trace(scatter, axis1=1, axis2=2)
    return bool(np.any(lowest < lost))


ENGINE = WhitenedEngine()
