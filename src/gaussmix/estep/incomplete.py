"""The E-step of a chunk whose rows may miss entries (NaN): statistics of the observed data.

Not an engine: sources of rows with NaN (:mod:`gaussmix.missing`) call
:func:`accumulate_incomplete` instead of the engines, which handle their
complete rows. Rows are grouped by how many entries they miss, whatever
their pattern: through each component's precision matrix only the M x M
block of the missing entries has to be inverted per row, so each group is
one pass of a compiled kernel (:mod:`gaussmix.estep._compiled_incomplete`,
NumPy rows where numba runs) or a few batched products in the rows' array
namespace (:func:`group_stats`: NumPy, or torch on the rows' device, with
two backend operations, ``inverse_positive_definite`` and ``add_at``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .._math import logsumexp_rows
from .._numba import compiled
from ..backends import asarray_like, backend_for, get_namespace, to_numpy
from ..data.chunking import auto_chunk_rows, chunk_rows
from ..em import accumulate, sum_scalars
from ..params import MixtureParams
from ..stats import SuffStats
from ._kernels import is_numpy


def accumulate_incomplete(X: Any, sample_weight: Optional[Any], params: MixtureParams) -> tuple[SuffStats, Any]:
    """E-step on one chunk whose rows may hold NaN: ``(stats, loglik)``, as :func:`gaussmix.em.accumulate`.

    Parameters
    ----------
    X : array of shape (n, D)
        NumPy or torch; NaN marks a missing entry; no row is entirely missing.
    sample_weight : array of shape (n,) or None
    params : MixtureParams
        In X's namespace and dtype.

    Returns
    -------
    stats : SuffStats
        Per component: ``N_k``, the mean of the rows filled with their
        conditional means, and the scatter of the filled rows about it plus
        the responsibility-weighted conditional covariances (their diagonals,
        or traces, where the structure keeps no more).
    loglik : float, or 0-d array on X's device
        ``sum_n w_n log p(x_n,o)``: the observed-data log-likelihood.
    """
    xp = get_namespace(X)
    mask = xp.isnan(X)
    numpy = is_numpy(X)
    n_missing = np.asarray(to_numpy(xp.sum(xp.astype(mask, xp.int64), axis=1)))
    complete = n_missing == 0
    if complete.all():  # complete chunks: the structure's own kernel, bit for bit
        return accumulate(X, sample_weight, params)
    parts = []
    if complete.any():
        parts.append(accumulate(*_rows_of(X, sample_weight, np.flatnonzero(complete), numpy), params))
    group = _GroupStats(params, X, numpy)
    # Rows with the same number of missing entries share the shapes of their blocks: each
    # group is a few batched products (or one compiled pass), whatever its patterns.
    for count in np.unique(n_missing[~complete]):
        rows = np.flatnonzero(n_missing == count)
        for start in range(0, rows.size, group.rows):
            parts.append(group(*_rows_of(X, sample_weight, rows[start:start + group.rows], numpy)))
    stats = functools.reduce(SuffStats.merge, (part for part, _ in parts))
    return stats, sum_scalars([loglik for _, loglik in parts])


def _rows_of(X: Any, sample_weight: Optional[Any], rows: np.ndarray, numpy: bool) -> tuple[Any, Optional[Any]]:
    """The rows ``rows`` (host indices) of ``X`` and of ``sample_weight``, in their namespace."""
    if not numpy:
        xp = get_namespace(X)
        rows = asarray_like(rows, xp.zeros(0, dtype=xp.int64, device=getattr(X, "device", None)))
        return xp.take(X, rows, axis=0), None if sample_weight is None else xp.take(sample_weight, rows, axis=0)
    return X[rows], None if sample_weight is None else sample_weight[rows]


@dataclass(frozen=True)
class _DensePrecisions:
    """Each component's dense precision (K, D, D) and ``log det Sigma_k`` (K,), in float64."""

    precisions: Any
    log_det_covariances: Any

    @classmethod
    def of(cls, params: MixtureParams) -> "_DensePrecisions":
        xp = get_namespace(params.means)
        covariances = xp.astype(params.dense_covariances(), xp.float64)
        return cls(xp.linalg.inv(covariances), xp.linalg.slogdet(covariances)[1])


class _GroupStats:
    """``(X, sample_weight) -> (stats, loglik)`` of rows missing the same number of entries, under ``params``.

    The compiled kernel (:mod:`gaussmix.estep._compiled_incomplete`) for NumPy rows
    where numba runs, else :func:`group_stats`; what they need of the parameters is
    computed once per chunk. ``rows``: how many rows one call takes (the batched path
    keeps its (K, rows, D) temporaries within the chunk budget of the rows' device;
    the kernel works in blocks itself).
    """

    def __init__(self, params: MixtureParams, X: Any, numpy: bool) -> None:
        self.params = params
        self.dense = _DensePrecisions.of(params)
        self.kernel = compiled("gaussmix.estep._compiled_incomplete") if numpy else None
        n_features = params.means.shape[1]
        if not numpy:
            self.rows = chunk_rows(X, params.n_components)
            return
        if self.kernel is None:
            self.rows = auto_chunk_rows(params.n_components, n_features, params.means.dtype.itemsize)
            return
        self.rows = max(1, X.shape[0])
        # P = C C^T, C lower triangular: log det C = -log det Sigma / 2
        self.factors = np.linalg.cholesky(self.dense.precisions)
        log_weights = np.log(np.asarray(params.weights, dtype=np.float64))
        self.offsets = log_weights - 0.5 * self.dense.log_det_covariances - 0.5 * n_features * np.log(2 * np.pi)

    def __call__(self, X: Any, sample_weight: Optional[Any]) -> tuple[SuffStats, Any]:
        if self.kernel is None:
            return group_stats(X, sample_weight, self.params, self.dense)
        missing = np.nonzero(np.isnan(X))[1].reshape(X.shape[0], -1)
        return self.kernel.incomplete_group_stats(
            X, missing, sample_weight, self.params.means, self.factors, self.dense.precisions, self.offsets,
            self.params.covariance.full_scatter,
        )


def group_stats(
    X: Any, sample_weight: Optional[Any], params: MixtureParams, dense: _DensePrecisions
) -> tuple[SuffStats, Any]:
    """Statistics and observed-data log-likelihood of rows (n, D) that miss the same number M of entries.

    Through each component's precision ``P``: with the residual ``r`` zero in
    the missing entries and ``g = (P r)_m``, the observed block's quadratic form
    is ``r^T P r - g^T P_mm^-1 g``, ``log det Sigma_oo = log det Sigma + log det
    P_mm``, the conditional mean of the missing block is ``mu_m - P_mm^-1 g``
    and its conditional covariance ``P_mm^-1``: only M x M systems per row and
    component, batched over rows of any pattern. In X's namespace, in float64;
    ``loglik`` is a float for NumPy rows, a 0-d array on the device otherwise.
    """
    xp = get_namespace(X)
    backend = backend_for(xp)
    device = getattr(X, "device", None)
    n, D = X.shape
    K = params.n_components
    mask = xp.isnan(X)
    missing = xp.reshape(xp.nonzero(mask)[1], (n, -1))  # (n, M): each row's missing columns, ascending
    M = missing.shape[1]
    means = xp.astype(params.means, xp.float64)
    rows = xp.where(mask, xp.zeros_like(X), X)
    rows = xp.astype(rows, xp.float64)
    # Component-major (K, n, ...) so that the products are batched matrix products (BLAS).
    residuals = xp.where(mask[None, :, :], xp.zeros_like(rows)[None, :, :], rows[None, :, :] - means[:, None, :])
    projected = residuals @ dense.precisions  # P symmetric: (P r) for every row
    # gathers through flat indices: (P r)_m per row, and the rows' M x M blocks of P
    row_starts = xp.arange(n, dtype=xp.int64, device=device)[:, None] * D
    gathered = xp.reshape(xp.take(xp.reshape(projected, (K, n * D)), xp.reshape(row_starts + missing, (-1,)),
                                  axis=1), (K, n, M))
    block_index = xp.reshape(missing[:, :, None] * D + missing[:, None, :], (-1,))
    blocks = xp.reshape(xp.take(xp.reshape(dense.precisions, (K, D * D)), block_index, axis=1), (K, n, M, M))
    conditional, log_det_block = backend.inverse_positive_definite(blocks)  # P_mm^-1: conditional covariances
    solved = (conditional @ gathered[..., None])[..., 0]  # (K, n, M)
    quadratic = xp.sum(residuals * projected, axis=2) - xp.sum(gathered * solved, axis=2)  # (K, n)
    log_normal = -0.5 * ((D - M) * np.log(2 * np.pi) + dense.log_det_covariances[:, None] + log_det_block + quadratic)
    weighted = xp.permute_dims(log_normal + xp.log(xp.astype(params.weights, xp.float64))[:, None], (1, 0))  # (n, K)
    log_density = logsumexp_rows(weighted)
    resp = xp.exp(weighted - log_density[:, None])
    if sample_weight is None:
        weighted_resp, total, loglik = resp, float(n), xp.sum(log_density)
    else:
        weights = xp.astype(sample_weight, xp.float64)
        weighted_resp, total, loglik = resp * weights[:, None], xp.sum(weights), xp.sum(weights * log_density)
    if isinstance(X, np.ndarray):
        total, loglik = float(total), float(loglik)
    # Each component fills the missing block with its own conditional mean: (K, n, D).
    missing_means = xp.reshape(xp.take(means, xp.reshape(missing, (-1,)), axis=1), (K, n, M))
    components = xp.arange(K, dtype=xp.int64, device=device)
    fill_index = (components[:, None, None] * n + xp.arange(n, dtype=xp.int64, device=device)[None, :, None]) * D \
        + missing[None, :, :]
    filled = rows[None, :, :] + xp.reshape(
        backend.add_at(xp.reshape(fill_index, (-1,)), xp.reshape(missing_means - solved, (-1,)), K * n * D), (K, n, D))
    resp_weight = xp.sum(weighted_resp, axis=0)
    safe_weight = xp.where(resp_weight > 0, resp_weight, xp.ones_like(resp_weight))
    by_component = xp.permute_dims(weighted_resp, (1, 0))[:, :, None]  # (K, n, 1)
    component_means = xp.sum(by_component * filled, axis=1) / safe_weight[:, None]
    centred = filled - component_means[:, None, :]
    weighted_conditional = by_component[..., None] * conditional  # (K, n, M, M)
    if params.covariance.full_scatter:
        scatter = xp.matrix_transpose(by_component * centred) @ centred  # (K, D, D)
        # every row adds its conditional covariance at its own missing positions
        flat = (components[:, None, None, None] * D + missing[None, :, :, None]) * D + missing[None, :, None, :]
        flat = xp.reshape(xp.broadcast_to(flat, weighted_conditional.shape), (-1,))
        scatter = scatter + xp.reshape(
            backend.add_at(flat, xp.reshape(weighted_conditional, (-1,)), K * D * D), (K, D, D))
    else:
        scatter = xp.sum(by_component * centred * centred, axis=1)
        diagonal = xp.linalg.diagonal(weighted_conditional)  # (K, n, M)
        flat = xp.reshape(xp.broadcast_to(components[:, None, None] * D + missing[None, :, :], diagonal.shape), (-1,))
        scatter = scatter + xp.reshape(backend.add_at(flat, xp.reshape(diagonal, (-1,)), K * D), (K, D))
    dtype = X.dtype
    stats = SuffStats(xp.astype(resp_weight, dtype), xp.astype(component_means, dtype), xp.astype(scatter, dtype), total)
    return stats, loglik
