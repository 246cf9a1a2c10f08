"""Tied covariance: one covariance matrix shared by all components (mclust EEE)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..backends import get_namespace
from ..stats import WEIGHT_FLOOR, SuffStats
from . import _expanded
from . import _numpy_kernels as kernels
from .base import CovarianceModel, held_by_frame, own_frame_columns
from .full import DensePrecisionAlgebra, _eye, dense_precision_cholesky, own_frame_mahalanobis


def sums_dtype(dtype: np.dtype, factor: np.ndarray, centred_means: np.ndarray) -> np.dtype:
    """The dtype of the products that sum a chunk's pooled scatter: float32 for float32
    rows where rounding them costs at most what the expanded moments may lose
    (:func:`~gaussmix.covariance._expanded.summing_dtype`), float64 otherwise.

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
    scale = _expanded.rounding_scale(
        _expanded.OuterProducts(n_features), precision, centred_means.astype(np.float64), deviations
    )
    lost = float(np.finfo(np.float32).eps) * float(np.max(scale))
    return _expanded.summing_dtype(np.float32, lost, n_features)


class TiedCovariance(DensePrecisionAlgebra, CovarianceModel):
    """All components share one D x D covariance."""

    name = "tied"
    compiled_m_step = "EEE"
    aliases = ("EEE",)
    full_scatter = True

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_features, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        total = xp.sum(stats.resp_weight) + stats.n_components * WEIGHT_FLOOR
        covariance = xp.sum(stats.scatter, axis=0) / total
        return covariance + reg_covar * _eye(xp, stats.n_features, covariance)

    def precision_cholesky(self, covariances: Any, *, reg_covar: float = 0.0) -> Any:
        # one covariance pooled over every row: only its factorisation can fail
        return dense_precision_cholesky(covariances)

    def mahalanobis(self, X: Any, means: Any, precisions_cholesky: Any) -> Any:
        xp = get_namespace(X, means)
        centred_X, centred_means = self._centre(X, means)
        held = held_by_frame(xp.sum(xp.abs(centred_means) * xp.sum(xp.abs(precisions_cholesky), axis=1), axis=1))
        if held is None:
            return own_frame_mahalanobis(X, means, precisions_cholesky)

        def shared() -> Any:
            # one whitening of the rows for every component
            whitened = (centred_X @ precisions_cholesky)[:, None, :] - (centred_means @ precisions_cholesky)[None, :, :]
            return xp.sum(whitened * whitened, axis=2)

        if held.all():
            return shared()
        # Components far from the others: each of those about its own mean (one whitening each).
        def own(k: int) -> Any:
            whitened = (X - means[k][None, :]) @ precisions_cholesky
            return xp.sum(whitened * whitened, axis=1)

        return own_frame_columns(xp, held, shared, own)

    def log_det_precision_cholesky(self, precisions_cholesky: Any, n_features: int) -> Any:
        xp = get_namespace(precisions_cholesky)
        return xp.sum(xp.log(xp.linalg.diagonal(precisions_cholesky)))

    def accumulate_chunk(self, X: Any, sample_weight: Any, params: Any) -> tuple[SuffStats, float]:
        """Batched E-step: one shared whitening, distances from one (n, D) @ (D, K) product.

        ``|y - b_k|^2 = |y|^2 - 2 y.b_k + |b_k|^2`` with ``y = x C`` and ``b_k = mu_k C``;
        rows and means are centred on the chunk's mean row first (and tight
        clusters far apart in float32 take the generic path instead).

        The M-step needs only the pooled within-component scatter, so that is
        what is summed (a (1, D, D) :class:`SuffStats` scatter): the scatter of
        the rows about their mean minus the between-component part,
        ``sum_n w_n x_n x_n^T - sum_k N_k m_k m_k^T`` in the chunk's centred
        frame, accumulated in float64. That subtraction loses as many digits as
        the between-component spread exceeds the within-component one, which
        float64 products can afford; float32 rows take float32 products where
        the expanded moments' rule allows it (:func:`sums_dtype`). It replaces K
        per-component scatters (K n D^2 flops) by one (n D^2). Other namespaces
        than NumPy take the generic path.
        """
        return self._accumulate_folding(X, sample_weight, params, None)

    def _accumulate_folding(self, X: Any, sample_weight: Any, params: Any, shift: Optional[Any]) -> tuple[SuffStats, float]:
        """:meth:`accumulate_chunk` on ``X - shift`` (on ``X`` where ``shift`` is None)."""
        # Each block is centred as it is whitened: no shifted copy of the chunk.
        factor = params.precisions_cholesky
        if not kernels.is_numpy(X, factor, shift):
            return super().accumulate_chunk(kernels.shifted(X, shift), sample_weight, params)
        n_features = X.shape[1]
        centre, means, origin = kernels.chunk_centre(X, params.means, shift)
        whitened_means = means @ factor
        if not kernels.expansion_is_accurate(whitened_means):
            return super().accumulate_chunk(kernels.shifted(X, shift), sample_weight, params)
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

    def dense(self, covariances: Any, n_components: int, n_features: int) -> Any:
        xp = get_namespace(covariances)
        return xp.broadcast_to(covariances, (n_components, n_features, n_features))
