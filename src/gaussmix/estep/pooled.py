"""The pooled engine: tied covariances, one shared whitening and one pooled scatter.

Distances come from one shared whitening and one (n, D) @ (D, K) product:

``|y - b_k|^2 = |y|^2 - 2 y.b_k + |b_k|^2`` with ``y = x C`` and ``b_k = mu_k C``;
rows and means are centred on the chunk's mean row first (and tight
clusters far apart in float32, whose expansion would lose too many digits,
are declined: the generic engine runs them).

The M-step needs only the pooled within-component scatter, so that is
what is summed (a (1, D, D) :class:`SuffStats` scatter): the scatter of
the rows about their mean minus the between-component part,
``sum_n w_n x_n x_n^T - sum_k N_k m_k m_k^T`` in the chunk's centred
frame, accumulated in float64. That subtraction loses as many digits as
the between-component spread exceeds the within-component one, which
float64 products can afford; float32 rows take float32 products where
the expanded moments' rule allows it (:func:`sums_dtype`). It replaces K
per-component scatters (K n D^2 flops) by one (n D^2).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..stats import SuffStats
from . import _kernels as kernels
from ._features import OuterProducts, rounding_scale, summing_dtype
from .engine import Engine, Problem


def sums_dtype(dtype: np.dtype, factor: np.ndarray, centred_means: np.ndarray) -> np.dtype:
    """The dtype of the products that sum a chunk's pooled scatter: float32 for float32
    rows where rounding them costs at most what the expanded moments may lose
    (:func:`~gaussmix.estep._features.summing_dtype`), float64 otherwise.

    Parameters
    ----------
    dtype : dtype
        Of the rows.
    factor : ndarray of shape (D, D)
        The precision's Cholesky factor ``C`` (``C C^T = P``).
    centred_means : ndarray of shape (K, D)
        The means relative to the chunk's centre.
    """
    if np.dtype(dtype) != np.float32:
        return np.dtype(np.float64)
    factor = factor.astype(np.float64)
    n_components, n_features = centred_means.shape
    precision = np.broadcast_to(factor @ factor.T, (n_components, n_features, n_features))
    # sigma_a: C^{-T} C^{-1} = Sigma, so the column norms of C^{-1}
    deviations = np.sqrt(np.sum(np.linalg.inv(factor) ** 2, axis=0))
    scale = rounding_scale(
        OuterProducts(n_features), precision, centred_means.astype(np.float64), deviations
    )
    lost = float(np.finfo(np.float32).eps) * float(np.max(scale))
    return summing_dtype(np.float32, lost, n_features)


class PooledEngine(Engine):
    name = "pooled"

    def can_run(self, problem: Problem) -> bool:
        return problem.layout == "tied" and problem.numpy

    def accumulate(
        self, X: Any, sample_weight: Optional[Any], params: Any, shift: Optional[Any] = None
    ) -> Optional[tuple[SuffStats, float]]:
        # Each block is centred as it is whitened: no shifted copy of the chunk.
        factor = params.precisions_cholesky
        n_features = X.shape[1]
        centre, means, origin = kernels.chunk_centre(X, params.means, shift)
        whitened_means = means @ factor
        if not kernels.expansion_is_accurate(whitened_means):
            return None
        n_components = whitened_means.shape[0]
        log_det = np.log(np.diagonal(factor)).sum()
        offsets = -0.5 * np.einsum("kd,kd->k", whitened_means, whitened_means)
        offsets = offsets + log_det + params.log_weights() + kernels.gaussian_constant(n_features)
        sums = sums_dtype(X.dtype, factor, means)
        totals = kernels.ResponsibilityTotals(n_components)
        row_sums = np.zeros((n_components, n_features))
        second_moment = np.zeros((n_features, n_features))
        block = kernels.block_rows(n_components + n_features, X.dtype.itemsize)
        buffer = np.empty((min(block, X.shape[0]), n_features), dtype=X.dtype)
        for start, stop in kernels.row_blocks(X.shape[0], block):
            centred = np.subtract(X[start:stop], centre, out=buffer[: stop - start])
            whitened_rows = centred @ factor
            log_prob = kernels.per_component_product(whitened_means, whitened_rows)
            log_prob -= 0.5 * np.einsum("nd,nd->n", whitened_rows, whitened_rows)
            totals.add(log_prob, sample_weight, start, stop, offsets)
            weights = None if sample_weight is None else sample_weight[start:stop]
            rows = centred.astype(sums, copy=False)
            row_sums += log_prob.astype(sums, copy=False) @ rows
            # The responsibilities of a row sum to its weight: sum_k r_nk x x^T = w_n x x^T.
            scaled = rows if weights is None else rows * np.sqrt(weights).astype(sums)[:, None]
            second_moment += scaled.T @ scaled
        resp_weight = totals.resp_weight
        safe = np.where(resp_weight > 0, resp_weight, 1)
        new_means = row_sums / safe[:, None]
        within = second_moment - (new_means * resp_weight[:, None]).T @ new_means
        within = 0.5 * (within + within.T)
        dtype = X.dtype
        return kernels.suff_stats(
            resp_weight.astype(dtype), new_means.astype(dtype), within[None].astype(dtype), totals.total_weight, origin
        ), totals.loglik


ENGINE = PooledEngine()
