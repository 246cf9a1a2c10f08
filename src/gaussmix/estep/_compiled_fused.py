"""Optional fused E-step for full covariances in few dimensions (needs numba).

At small D no matrix product is big enough to pay for a BLAS call, and the
NumPy path is bound by its passes over (n, K) temporaries. This kernel makes
one pass over each block of rows: whitening against every component,
logsumexp, responsibilities and the statistics, every loop along the rows
(vector code). It is compiled on first use (and cached on disk); without
numba (``pip install gaussmix[fast]``) the NumPy path runs. Importing this
module imports numba: do it lazily.

The statistics are summed in float64 whatever the input dtype, about the
current means (so nothing cancels), and moved to the new means at the end.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..stats import SuffStats

from .._jit import _njit, numba
from ._compiled_responsibilities import _compiled_weighted_responsibilities


def full_accumulate(
    X: np.ndarray,
    sample_weight: Optional[np.ndarray],
    means: np.ndarray,
    factors: np.ndarray,
    offsets: np.ndarray,
    shift: Optional[np.ndarray] = None,
) -> tuple[SuffStats, float]:
    """E-step of a full-covariance mixture on one chunk, fused in one pass.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    sample_weight : ndarray of shape (n,) or None
    means : ndarray of shape (K, D)
    factors : ndarray of shape (K, D, D)
        Precision Cholesky factors (``C C^T = P``, upper or lower triangular).
    offsets : ndarray of shape (K,)
        ``log pi_k + log det C_k - D/2 log(2 pi)``.
    shift : ndarray of shape (D,), optional
        The E-step is on the rows ``X - shift`` (subtracted in float64 as they are read).

    Returns
    -------
    stats : SuffStats
    loglik : float
    """
    dtype = X.dtype
    weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    # float32 rows are whitened and their responsibilities computed in float32 (twice
    # the vector lanes; about the current means, as scikit-learn's float32 E-step),
    # and summed in float64
    work = X.dtype.type
    means, factors, offsets = (np.ascontiguousarray(a, dtype=work) for a in (means, factors, offsets))
    upper = bool(np.all(np.tril(factors, -1) == 0))
    shift = np.zeros(X.shape[1]) if shift is None else np.asarray(shift, dtype=np.float64)
    lowest = work(math.ceil(math.log(float(np.finfo(work).tiny))))
    resp_weight, row_sums, scatter, total_weight, loglik = _compiled_full_estep(
        np.ascontiguousarray(X), shift, weights, means, factors, offsets, upper, work(-0.5), lowest
    )
    safe = np.where(resp_weight > 0, resp_weight, 1.0)
    new_means = row_sums / safe[:, None]
    moved = new_means - means
    # Lower triangle about the old means -> full matrix about the new means.
    scatter = scatter + np.swapaxes(np.tril(scatter, -1), 1, 2)
    scatter -= resp_weight[:, None, None] * moved[:, :, None] * moved[:, None, :]
    empty = resp_weight == 0
    scatter[empty] = 0
    new_means[empty] = 0
    stats = SuffStats(resp_weight.astype(dtype), new_means.astype(dtype), scatter.astype(dtype), float(total_weight))
    return stats, float(loglik)


#: rows of the fused small-D kernel handled together: its (K, rows) log-densities
#: and (D, rows) coordinates stay in the L1 or L2 cache
#: (see BENCHMARKS.md, "Measurements behind the code's thresholds")
_FUSED_BLOCK_ROWS = 512


def _full_estep(X, shift, weights, means, factors, offsets, upper, minus_half, lowest):  # pragma: no cover - compiled
    """Sums of one chunk of rows ``X - shift``: weights (K,), row sums (K, D), lower-triangular
    scatter about ``means`` (K, D, D), total weight and log-likelihood (all float64).

    Rows go in blocks of :data:`_FUSED_BLOCK_ROWS`, held coordinate by
    coordinate, so that every loop runs along the rows and compiles to vector
    code: the whitening of each component, the responsibilities (the
    vectorised exp of :func:`_weighted_responsibilities`) and the weighted
    sums. The work is in the dtype of ``means``, ``factors``, ``offsets``,
    ``minus_half`` (-0.5) and ``lowest`` (the log of its smallest normal number):
    float64, or float32 for float32 rows; the sums are float64 either way.
    ``upper`` says whether every factor is upper triangular (then only its upper
    triangle is read), otherwise they are used whole."""
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    block = _FUSED_BLOCK_ROWS
    resp_weight = np.zeros(n_components)
    row_sums = np.zeros((n_components, n_features))
    scatter = np.zeros((n_components, n_features, n_features))
    work = means.dtype
    coordinates = np.empty((n_features, block), dtype=work)
    centred = np.empty((n_features, block), dtype=work)
    whitened = np.empty(block, dtype=work)
    log_prob_buffer = np.empty(n_components * block, dtype=work)
    row_max = np.empty(block, dtype=work)
    total = np.empty(block, dtype=work)
    scratch = np.empty(block, dtype=work)
    log_total = np.empty(block)
    exponents = np.empty(block)
    block_weight = np.empty(n_components)
    total_weight = 0.0
    loglik = 0.0
    for start in range(0, n_samples, block):
        rows = min(block, n_samples - start)
        if n_features == 2:  # the columns in one loop: vector code, not a gather per column
            for j in range(rows):
                coordinates[0, j] = X[start + j, 0] - shift[0]
                coordinates[1, j] = X[start + j, 1] - shift[1]
        elif n_features == 3:
            for j in range(rows):
                coordinates[0, j] = X[start + j, 0] - shift[0]
                coordinates[1, j] = X[start + j, 1] - shift[1]
                coordinates[2, j] = X[start + j, 2] - shift[2]
        else:
            for a in range(n_features):
                for j in range(rows):
                    coordinates[a, j] = X[start + j, a] - shift[a]
        # Mahalanobis distances |(x - mu_k) C_k|^2, one whitened coordinate at a time
        log_prob = log_prob_buffer[: n_components * rows].reshape((n_components, rows))
        for k in range(n_components):
            distance = log_prob[k]
            if n_features <= _SMALL_FEATURES:  # one loop, not 5 to 15 of a few hundred rows each
                _small_distances(coordinates, rows, means[k], factors[k], distance)
                continue
            _centre(coordinates, means[k], rows, centred)
            distance[:] = 0.0
            for b in range(n_features):
                whitened[:rows] = 0.0
                for a in range(b + 1 if upper else n_features):
                    _add_scaled(centred[a, :rows], factors[k, a, b], whitened[:rows])
                _add_square(whitened[:rows], distance)
        row_weights = weights[start:start + rows]
        block_total, block_loglik = _compiled_weighted_responsibilities(
            log_prob, minus_half, offsets, lowest, row_weights, row_max, total, scratch, log_total, exponents,
            block_weight,
        )
        total_weight += block_total
        loglik += block_loglik
        for k in range(n_components):
            resp = log_prob[k]
            resp_weight[k] += block_weight[k]
            if n_features <= _SMALL_FEATURES:
                _small_sums(resp, coordinates, rows, means[k], row_sums[k], scatter[k])
                continue
            _centre(coordinates, means[k], rows, centred)
            for a in range(n_features):
                row_sums[k, a] += _dot(resp, coordinates[a, :rows])
                _multiply(resp, centred[a, :rows], whitened[:rows])  # r (x_a - mu_a)
                for b in range(a + 1):
                    scatter[k, a, b] += _dot(whitened[:rows], centred[b, :rows])
    return resp_weight, row_sums, scatter, total_weight, loglik


#: features up to which the fused kernel's distances and weighted sums take one loop a
#: component (:func:`_small_distances`, :func:`_small_sums`) instead of the generic
#: loops' several (see BENCHMARKS.md, "Measurements behind the code's thresholds")
_SMALL_FEATURES = 3


def _small_distances(coordinates, rows, mean, factor, out):  # pragma: no cover - compiled
    """``out`` <- ``|(x - mean) C|^2`` for one to three features (the first ``rows`` columns
    of ``coordinates`` (D, b)), in one loop: the factor ``C`` (D, D) is read whole (a zero
    costs one multiply-add)."""
    if coordinates.shape[0] == 1:
        x0, m0, c00 = coordinates[0, :rows], mean[0], factor[0, 0]
        for j in range(rows):
            w0 = (x0[j] - m0) * c00
            out[j] = w0 * w0
        return
    if coordinates.shape[0] == 2:
        x0, x1, m0, m1 = coordinates[0, :rows], coordinates[1, :rows], mean[0], mean[1]
        c00, c01, c10, c11 = factor[0, 0], factor[0, 1], factor[1, 0], factor[1, 1]
        for j in range(rows):
            d0 = x0[j] - m0
            d1 = x1[j] - m1
            w0 = d0 * c00 + d1 * c10
            w1 = d0 * c01 + d1 * c11
            out[j] = w0 * w0 + w1 * w1
        return
    x0, x1, x2 = coordinates[0, :rows], coordinates[1, :rows], coordinates[2, :rows]
    m0, m1, m2 = mean[0], mean[1], mean[2]
    c00, c01, c02 = factor[0, 0], factor[0, 1], factor[0, 2]
    c10, c11, c12 = factor[1, 0], factor[1, 1], factor[1, 2]
    c20, c21, c22 = factor[2, 0], factor[2, 1], factor[2, 2]
    for j in range(rows):
        d0 = x0[j] - m0
        d1 = x1[j] - m1
        d2 = x2[j] - m2
        w0 = d0 * c00 + d1 * c10 + d2 * c20
        w1 = d0 * c01 + d1 * c11 + d2 * c21
        w2 = d0 * c02 + d1 * c12 + d2 * c22
        out[j] = w0 * w0 + w1 * w1 + w2 * w2


def _small_sums(resp, coordinates, rows, mean, row_sums, scatter):  # pragma: no cover - compiled
    """``row_sums`` += ``sum r x`` and the lower triangle of ``scatter`` += ``sum r (x - mean)
    (x - mean)^T`` for one to three features (the first ``rows`` columns of ``coordinates``),
    in one loop: each product in the working dtype (as :func:`_dot` of :func:`_multiply`'s),
    summed in float64."""
    if coordinates.shape[0] == 1:
        x0, m0 = coordinates[0, :rows], mean[0]
        s0 = s00 = 0.0
        for j in range(rows):
            r = resp[j]
            weighted0 = r * (x0[j] - m0)
            s0 += r * x0[j]
            s00 += weighted0 * (x0[j] - m0)
        row_sums[0] += s0
        scatter[0, 0] += s00
        return
    if coordinates.shape[0] == 2:
        x0, x1, m0, m1 = coordinates[0, :rows], coordinates[1, :rows], mean[0], mean[1]
        s0 = s1 = s00 = s10 = s11 = 0.0
        for j in range(rows):
            r = resp[j]
            d0 = x0[j] - m0
            d1 = x1[j] - m1
            weighted0 = r * d0
            weighted1 = r * d1
            s0 += r * x0[j]
            s1 += r * x1[j]
            s00 += weighted0 * d0
            s10 += weighted1 * d0
            s11 += weighted1 * d1
        row_sums[0] += s0
        row_sums[1] += s1
        scatter[0, 0] += s00
        scatter[1, 0] += s10
        scatter[1, 1] += s11
        return
    x0, x1, x2 = coordinates[0, :rows], coordinates[1, :rows], coordinates[2, :rows]
    m0, m1, m2 = mean[0], mean[1], mean[2]
    s0 = s1 = s2 = s00 = s10 = s11 = s20 = s21 = s22 = 0.0
    for j in range(rows):
        r = resp[j]
        d0 = x0[j] - m0
        d1 = x1[j] - m1
        d2 = x2[j] - m2
        weighted1 = r * d1
        weighted2 = r * d2
        s0 += r * x0[j]
        s1 += r * x1[j]
        s2 += r * x2[j]
        s00 += (r * d0) * d0
        s10 += weighted1 * d0
        s11 += weighted1 * d1
        s20 += weighted2 * d0
        s21 += weighted2 * d1
        s22 += weighted2 * d2
    row_sums[0] += s0
    row_sums[1] += s1
    row_sums[2] += s2
    scatter[0, 0] += s00
    scatter[1, 0] += s10
    scatter[1, 1] += s11
    scatter[2, 0] += s20
    scatter[2, 1] += s21
    scatter[2, 2] += s22


def _centre(coordinates, mean, rows, out):  # pragma: no cover - compiled
    for a in range(coordinates.shape[0]):
        for j in range(rows):
            out[a, j] = coordinates[a, j] - mean[a]


def _add_scaled(values, factor, out):  # pragma: no cover - compiled
    for j in range(values.shape[0]):
        out[j] += values[j] * factor


def _add_square(values, out):  # pragma: no cover - compiled
    for j in range(values.shape[0]):
        out[j] += values[j] * values[j]


def _dot(a, b):  # pragma: no cover - compiled
    total = 0.0
    for j in range(a.shape[0]):
        total += a[j] * b[j]
    return total


def _multiply(a, b, out):  # pragma: no cover - compiled
    for j in range(a.shape[0]):
        out[j] = a[j] * b[j]


if numba is not None:
    _centre, _add_scaled, _add_square, _multiply, _small_distances = (
        _njit(nogil=True, fastmath={"contract"})(function)
        for function in (_centre, _add_scaled, _add_square, _multiply, _small_distances)
    )
    # reassoc: the sums may be vectorised (a fixed order, so still deterministic)
    _dot, _small_sums = (
        _njit(nogil=True, fastmath={"contract", "reassoc"})(function) for function in (_dot, _small_sums)
    )
    # error_model="numpy": a row of density 0 gives log(0) = -inf, not an exception
    _compiled_full_estep = _njit(nogil=True, error_model="numpy")(_full_estep)
else:
    _compiled_full_estep = None
