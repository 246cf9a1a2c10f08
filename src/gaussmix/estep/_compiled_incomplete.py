"""Compiled E-step of rows that miss the same number of entries (needs numba).

The twin of :func:`gaussmix.estep.incomplete.group_stats`, laid out as the fused
kernel (:mod:`gaussmix.estep._compiled_fused`): blocks of rows held
coordinate by coordinate, each component's whitening and weighted sums along
the rows (vector code), and only the M x M block of the missing entries
handled row by row. Through each component's precision ``P = C C^T`` (``C``
lower triangular), with the residual ``r`` zero in the missing entries and
``w = C^T r``: ``g = (P r)_m = C_m w``, the observed block's quadratic form is
``|w|^2 - g^T P_mm^-1 g``, ``log det Sigma_oo = log det Sigma + log det P_mm``,
the conditional mean of the missing block ``mu_m - P_mm^-1 g`` and its
covariance ``P_mm^-1`` (inverted by Gauss-Jordan sweeps: their pivots give the
determinant). ``P_mm^-1`` and its determinant depend on the pattern, not on the
values: rows missing three or more entries come sorted by pattern
(:func:`incomplete_group_stats` sorts them), and a run of rows sharing one
pattern inverts its block once and adds its conditional covariance once,
weighted by the run's summed responsibilities. Importing this module imports
numba: do it lazily.

Statistics are summed in float64 about the current means and moved to the
new means at the end, as the fused kernel's.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .._jit import _njit, numba
from ..stats import SuffStats
from ._compiled_fused import _add_scaled, _add_square, _dot, _multiply
from ._compiled_responsibilities import _compiled_weighted_responsibilities
from ._compiled_vector import _LOWEST_EXPONENT

#: rows handled together: a block's (D, rows) coordinates and (K, rows) log-densities
#: stay in the cache, as the fused kernel's blocks
_BLOCK_ROWS = 512


def incomplete_group_stats(
    X: np.ndarray,
    missing: np.ndarray,
    sample_weight: Optional[np.ndarray],
    means: np.ndarray,
    factors: np.ndarray,
    precisions: np.ndarray,
    offsets: np.ndarray,
    full_scatter: bool,
) -> tuple[SuffStats, float]:
    """Statistics and observed-data log-likelihood of rows that each miss M entries.

    Parameters
    ----------
    X : ndarray of shape (n, D)
        NaN in the missing entries.
    missing : ndarray of int, shape (n, M)
        Each row's missing columns, ascending (M >= 1). Rows are taken in any
        order; with M >= 3 they are handled sorted by pattern.
    sample_weight : ndarray of shape (n,) or None
    means : ndarray of shape (K, D)
    factors : ndarray of shape (K, D, D)
        Lower Cholesky factors of the precisions (``C C^T = P``), float64.
    precisions : ndarray of shape (K, D, D)
        float64.
    offsets : ndarray of shape (K,)
        ``log pi_k + log det C_k - D/2 log(2 pi)``.
    full_scatter : bool
        Whether the statistics keep full (K, D, D) scatters, else their diagonals (K, D).

    Returns
    -------
    stats : SuffStats
        In X's dtype, as :func:`gaussmix.estep.incomplete.accumulate_incomplete`'s.
    loglik : float
    """
    weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if missing.shape[1] >= 3:
        # Rows of one pattern side by side share their inverted block (see the module's docstring).
        order = np.lexsort(missing.T[::-1])
        X, missing, weights = X[order], missing[order], weights[order]
    means64 = np.ascontiguousarray(means, dtype=np.float64)
    resp_weight, sums, scatter, total_weight, loglik = _compiled_incomplete_estep(
        np.ascontiguousarray(X), np.ascontiguousarray(missing, dtype=np.int64), weights, means64,
        np.ascontiguousarray(factors, dtype=np.float64), np.ascontiguousarray(precisions, dtype=np.float64),
        np.ascontiguousarray(offsets, dtype=np.float64), float(_LOWEST_EXPONENT[np.dtype(np.float64)]),
    )
    safe = np.where(resp_weight > 0, resp_weight, 1.0)
    moved = sums / safe[:, None]
    # Lower triangle about the old means -> full matrix about the new means.
    scatter = scatter + np.swapaxes(np.tril(scatter, -1), 1, 2)
    scatter -= resp_weight[:, None, None] * moved[:, :, None] * moved[:, None, :]
    new_means = means64 + moved
    empty = resp_weight == 0
    scatter[empty] = 0
    new_means[empty] = 0
    if not full_scatter:
        scatter = np.diagonal(scatter, axis1=1, axis2=2)
    dtype = X.dtype
    stats = SuffStats(resp_weight.astype(dtype), new_means.astype(dtype), scatter.astype(dtype), float(total_weight))
    return stats, float(loglik)


def _incomplete_estep(X, missing, weights, means, factors, precisions, offsets, lowest):  # pragma: no cover - compiled
    """Sums of the rows ``X`` (n, D), each missing the entries ``missing`` (n, M): weights
    (K,), sums of the filled rows minus ``means`` (K, D), lower-triangular scatter about
    ``means`` (K, D, D) including the conditional covariances, total weight and
    observed-data log-likelihood (all float64)."""
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_missing = missing.shape[1]
    # fewer rows a block where the per-row M x M inverses would outgrow the cache
    block = max(1, min(_BLOCK_ROWS, n_samples, _BLOCK_ROWS * 16 // (n_missing * n_missing)))
    resp_weight = np.zeros(n_components)
    sums = np.zeros((n_components, n_features))
    scatter = np.zeros((n_components, n_features, n_features))
    coordinates = np.empty((n_features, block))
    observed = np.empty((n_features, block))
    centred = np.empty((n_features, block))
    whitened = np.empty((n_features, block))
    weighted = np.empty(block)
    log_prob_buffer = np.empty(n_components * block)
    # per component and row: P_mm^-1 g (the conditional mean's offset); P_mm^-1 and its
    # log-determinant at the first row of each run of rows sharing a pattern (``first``)
    solved = np.empty((n_components, block, n_missing))
    conditional = np.empty((n_components, block, n_missing, n_missing))
    log_dets = np.empty(block)
    first = np.empty(block, dtype=np.int64)
    gathered = np.empty(n_missing)
    row_max = np.empty(block)
    total = np.empty(block)
    scratch = np.empty(block)
    log_total = np.empty(block)
    exponents = np.empty(block)
    block_weight = np.empty(n_components)
    missing_constant = n_missing * math.log(2 * math.pi)
    total_weight = 0.0
    loglik = 0.0
    for start in range(0, n_samples, block):
        rows = min(block, n_samples - start)
        for a in range(n_features):
            for j in range(rows):
                value = X[start + j, a]
                absent = value != value  # NaN
                coordinates[a, j] = 0.0 if absent else value
                observed[a, j] = 0.0 if absent else 1.0
        _pattern_runs(missing[start:start + rows], n_missing >= 3, first)
        log_prob = log_prob_buffer[: n_components * rows].reshape((n_components, rows))
        for k in range(n_components):
            distance = log_prob[k]
            _centre_observed(coordinates, observed, means[k], rows, centred)
            distance[:] = 0.0
            for b in range(n_features):  # w_b = sum_{a >= b} C_ab r_a
                column = whitened[b, :rows]
                column[:] = 0.0
                for a in range(b, n_features):
                    _add_scaled(centred[a, :rows], factors[k, a, b], column)
                _add_square(column, distance)
            block_missing = missing[start:start + rows]
            if n_missing == 1:
                _one_missing_terms(factors[k], precisions[k], whitened, block_missing, conditional[k], solved[k],
                                   distance)
            elif n_missing == 2:
                _two_missing_terms(factors[k], precisions[k], whitened, block_missing, conditional[k], solved[k],
                                   distance)
            else:
                _missing_terms(factors[k], precisions[k], whitened, block_missing, first, gathered, conditional[k],
                               log_dets, solved[k], distance)
            for j in range(rows):
                distance[j] -= missing_constant
        row_weights = weights[start:start + rows]
        block_total, block_loglik = _compiled_weighted_responsibilities(
            log_prob, -0.5, offsets, lowest, row_weights, row_max, total, scratch, log_total, exponents,
            block_weight,
        )
        total_weight += block_total
        loglik += block_loglik
        for k in range(n_components):
            resp = log_prob[k]
            resp_weight[k] += block_weight[k]
            # the filled row minus the mean: the residual, and -P_mm^-1 g in the missing entries
            _centre_observed(coordinates, observed, means[k], rows, centred)
            for j in range(rows):
                for i in range(n_missing):
                    centred[missing[start + j, i], j] = -solved[k, j, i]
            for a in range(n_features):
                sums[k, a] += _dot(resp, centred[a, :rows])
                _multiply(resp, centred[a, :rows], weighted[:rows])
                for b in range(a + 1):
                    scatter[k, a, b] += _dot(weighted[:rows], centred[b, :rows])
            j = 0
            while j < rows:  # the conditional covariances at the missing entries, once a run of one pattern
                p = first[j]
                r = 0.0
                while j < rows and first[j] == p:
                    r += resp[j]
                    j += 1
                for i in range(n_missing):
                    for l in range(i + 1):
                        scatter[k, missing[start + p, i], missing[start + p, l]] += r * conditional[k, p, i, l]
    return resp_weight, sums, scatter, total_weight, loglik


def _pattern_runs(missing, reuse, first):  # pragma: no cover - compiled
    """``first[j]`` <- the first row of the run of consecutive rows sharing row j's pattern
    (``missing`` (rows, M)); with ``reuse`` False every row is its own run."""
    for j in range(missing.shape[0]):
        first[j] = j
        if reuse and j > 0:
            same = True
            for i in range(missing.shape[1]):
                if missing[j, i] != missing[j - 1, i]:
                    same = False
                    break
            if same:
                first[j] = first[j - 1]


def _missing_terms(factor, precision, whitened, missing, first, gathered, conditional, log_dets, solved,
                   distance):  # pragma: no cover - compiled
    """For each row j of a block and one component: ``distance[j] += log det P_mm - g^T
    P_mm^-1 g`` and ``solved[j]`` (M,) <- ``P_mm^-1 g``, where ``g = (C w)_m`` (``w``: the
    block's whitened residuals, (D, rows)). ``P_mm^-1`` (M, M) and its log-determinant are
    computed at the first row ``p = first[j]`` of each run of one pattern, into
    ``conditional[p]`` and ``log_dets[p]``, and read there by the run's other rows."""
    n_missing = missing.shape[1]
    for j in range(missing.shape[0]):
        p = first[j]
        if p == j:
            inverse = conditional[j]
            for i in range(n_missing):
                for l in range(n_missing):
                    inverse[i, l] = precision[missing[j, i], missing[j, l]]
            log_dets[j] = _sweep_inverse(inverse)
        inverse = conditional[p]
        for i in range(n_missing):
            row_i = missing[j, i]
            value = 0.0
            for b in range(row_i + 1):  # g_i = (C w)_{m_i}
                value += factor[row_i, b] * whitened[b, j]
            gathered[i] = value
        correction = 0.0
        for i in range(n_missing):
            value = 0.0
            for l in range(n_missing):
                value += inverse[i, l] * gathered[l]
            solved[j, i] = value
            correction += gathered[i] * value
        distance[j] += log_dets[p] - correction


def _one_missing_terms(factor, precision, whitened, missing, conditional, solved, distance):  # pragma: no cover - compiled
    """:func:`_missing_terms` for rows missing one entry (the most frequent, with two, at a
    few per cent missing), in closed form."""
    for j in range(missing.shape[0]):
        row_i = missing[j, 0]
        value = 0.0
        for b in range(row_i + 1):
            value += factor[row_i, b] * whitened[b, j]
        pivot = precision[row_i, row_i]
        conditional[j, 0, 0] = 1.0 / pivot
        solved[j, 0] = value / pivot
        distance[j] += math.log(pivot) - value * (value / pivot)


def _two_missing_terms(factor, precision, whitened, missing, conditional, solved, distance):  # pragma: no cover - compiled
    """:func:`_missing_terms` for rows missing two entries, in closed form."""
    for j in range(missing.shape[0]):
        m0, m1 = missing[j, 0], missing[j, 1]
        g0 = 0.0
        for b in range(m0 + 1):
            g0 += factor[m0, b] * whitened[b, j]
        g1 = 0.0
        for b in range(m1 + 1):
            g1 += factor[m1, b] * whitened[b, j]
        a, c, d = precision[m0, m0], precision[m1, m0], precision[m1, m1]
        determinant = a * d - c * c
        i00, i01, i11 = d / determinant, -c / determinant, a / determinant
        conditional[j, 0, 0] = i00
        conditional[j, 0, 1] = i01
        conditional[j, 1, 0] = i01
        conditional[j, 1, 1] = i11
        s0 = i00 * g0 + i01 * g1
        s1 = i01 * g0 + i11 * g1
        solved[j, 0] = s0
        solved[j, 1] = s1
        distance[j] += math.log(determinant) - g0 * s0 - g1 * s1


def _centre_observed(coordinates, observed, mean, rows, out):  # pragma: no cover - compiled
    """``out`` <- ``(coordinates - mean) * observed``: residuals, zero in the missing entries."""
    for a in range(coordinates.shape[0]):
        for j in range(rows):
            out[a, j] = (coordinates[a, j] - mean[a]) * observed[a, j]


def _sweep_inverse(matrix):  # pragma: no cover - compiled
    """Invert the positive definite ``matrix`` (M, M) in place by Gauss-Jordan sweeps and
    return its log-determinant (the sum of the pivots' logs: no pivoting is needed); one
    matrix at a time, where the NumPy backend's ``inverse_positive_definite`` sweeps a stack."""
    size = matrix.shape[0]
    log_det = 0.0
    for p in range(size):
        pivot = matrix[p, p]
        log_det += math.log(pivot)
        matrix[p, p] = 1.0
        for l in range(size):
            matrix[p, l] /= pivot
        for i in range(size):
            if i != p:
                factor = matrix[i, p]
                matrix[i, p] = 0.0
                for l in range(size):
                    matrix[i, l] -= factor * matrix[p, l]
    return log_det


if numba is not None:
    _centre_observed = _njit(nogil=True, fastmath={"contract"})(_centre_observed)
    _sweep_inverse = _njit(nogil=True, error_model="numpy")(_sweep_inverse)
    _missing_terms, _one_missing_terms, _two_missing_terms, _pattern_runs = (
        _njit(nogil=True, error_model="numpy")(function)
        for function in (_missing_terms, _one_missing_terms, _two_missing_terms, _pattern_runs)
    )
    # error_model="numpy": a row of density 0 gives log(0) = -inf, not an exception
    _compiled_incomplete_estep = _njit(nogil=True, error_model="numpy")(_incomplete_estep)
else:
    _compiled_incomplete_estep = None
