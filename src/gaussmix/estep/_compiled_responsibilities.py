"""Compiled weighted responsibilities of a block of log-densities (needs numba).

:func:`weighted_responsibilities` is the compiled twin of
:func:`gaussmix.estep._kernels.weighted_responsibilities`: max, exp, scaling and
log of each tile of columns in four passes, with the vectorised exp and log of
:mod:`gaussmix.estep._compiled_vector`. The fused E-step
(:mod:`gaussmix.estep._compiled_fused`) calls its kernel on every block.
Importing this module imports numba: do it lazily.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .._jit import _njit, numba
from ._compiled_vector import (
    _LOWEST_EXPONENT, _OVERLOAD_OPTIONS, _exp_of_row_of, _log_density_sums, _power_of_two_of,
)


def _scale_and_sum(row, scale, total):  # pragma: no cover - compiled
    for j in range(row.shape[0]):
        value = row[j] * scale[j]
        row[j] = value
        total[j] += value


def _affine_copy(row, scale, offset, out):  # pragma: no cover - compiled
    for j in range(row.shape[0]):
        out[j] = row[j] * scale + offset


def _affine_max(row, scale, offset, largest):  # pragma: no cover - compiled
    for j in range(row.shape[0]):
        value = row[j] * scale + offset
        current = largest[j]
        # "+ 0.0" (which only turns -0.0 into 0.0) keeps the store unconditional:
        # storing ``current`` back compiles to a masked store, much slower on AMD cores.
        largest[j] = value if value > current else current + 0.0


_ZERO32 = np.float32(0.0)


def _affine_max32(row, scale, offset, largest):  # pragma: no cover - compiled
    """:func:`_affine_max` with float32 arithmetic (a float64 ``+ 0.0`` would widen every value)."""
    for j in range(row.shape[0]):
        value = row[j] * scale + offset
        current = largest[j]
        largest[j] = value if value > current else current + _ZERO32


def _multiply_and_sum(row, factor):  # pragma: no cover - compiled
    """``row *= factor``; returns the new row's sum."""
    total = 0.0
    for j in range(row.shape[0]):
        value = row[j] * factor[j]
        row[j] = value
        total += value
    return total


#: columns of (K, n) handled together: every pass over a tile stays in the L1/L2 cache
_TILE_COLUMNS = 256


def _affine_max_of(row, scale, offset, largest):
    """:func:`_affine_max` or :func:`_affine_max32`, chosen by numba from ``largest``'s dtype."""


def _weighted_responsibilities(
    log_prob, scale, offsets, lowest, weights, row_max, total, scratch, log_total, exponents, resp_weight
):  # pragma: no cover - compiled
    """Columns of ``log_prob`` (K, n), read as ``scale * log_prob + offsets[:, None]``,
    become ``w_n p(k | x_n)`` (``weights`` (n,) or, empty, all 1); ``resp_weight`` (K,) is
    filled, and ``row_max`` and ``log_total`` (n,) so that ``log p(x_n) = log_total_n +
    row_max_n``. Returns ``(sum_n w_n, sum_n w_n log p(x_n))``. The arithmetic is in the
    dtype that ``row_max``, ``total``, ``scratch``, ``offsets``, ``scale`` and ``lowest``
    share (float64, or float32 for float32 ``log_prob``); ``log_total`` and ``exponents``
    (a tile's columns at least) are float64, and so are the sums.

    Four passes over each tile of columns: max, exp (with the sum per column),
    scaling by ``w_n / total_n`` (with the sum per row); and the log of each column's
    total, for the log-likelihood (one call does it all: a log and sums outside would add
    NumPy and dispatch overhead to every block)."""
    n_components, n_samples = log_prob.shape
    weighted = weights.shape[0] > 0
    resp_weight[:] = 0.0
    total_weight = 0.0
    loglik = 0.0
    for start in range(0, n_samples, _TILE_COLUMNS):
        stop = min(start + _TILE_COLUMNS, n_samples)
        tile_max = row_max[start:stop]
        tile_total = total[start:stop]
        tile_scratch = scratch[start:stop]
        _affine_copy(log_prob[0, start:stop], scale, offsets[0], tile_max)
        for k in range(1, n_components):
            _affine_max_of(log_prob[k, start:stop], scale, offsets[k], tile_max)
        for j in range(stop - start):
            largest = tile_max[j]
            tile_max[j] = largest + 0.0 if -np.inf < largest < np.inf else 0.0
            tile_total[j] = 0.0
        for k in range(n_components):
            row = log_prob[k, start:stop]
            _exp_of_row_of(row, scale, offsets[k], tile_max, lowest, tile_scratch)
            _power_of_two_of(tile_scratch)
            _scale_and_sum(row, tile_scratch, tile_total)
        for j in range(stop - start):
            tile_scratch[j] = (weights[start + j] if weighted else 1.0) / tile_total[j]
        for k in range(n_components):
            resp_weight[k] += _multiply_and_sum(log_prob[k, start:stop], tile_scratch)
        tile_weight, tile_loglik = _log_density_sums(
            tile_total, tile_max, weights, start, log_total[start:stop], exponents
        )
        total_weight += tile_weight
        loglik += tile_loglik
    return total_weight, loglik


if numba is not None:
    from numba.extending import overload

    # Type dispatch at compile time, as in :mod:`gaussmix.estep._compiled_vector`.
    @overload(_affine_max_of, **_OVERLOAD_OPTIONS)
    def _affine_max_typed(row, scale, offset, largest):
        return _affine_max32 if largest.dtype == numba.types.float32 else _affine_max

    _scale_and_sum, _affine_copy = (
        _njit(nogil=True, fastmath={"contract"})(function)
        for function in (_scale_and_sum, _affine_copy)
    )
    # reassoc: the row sum may be vectorised (a fixed order, so still deterministic)
    _multiply_and_sum = _njit(nogil=True, fastmath={"contract", "reassoc"})(_multiply_and_sum)
    # error_model="numpy": 1/0 gives inf (then NaN, as on the NumPy path) instead of raising
    _compiled_weighted_responsibilities = _njit(nogil=True, error_model="numpy")(
        _weighted_responsibilities
    )
else:
    _compiled_weighted_responsibilities = None


_NO_WEIGHTS = np.empty(0)


def weighted_responsibilities(
    log_prob: np.ndarray, sample_weight: Optional[np.ndarray], scale: float = 1.0, offsets: Optional[np.ndarray] = None,
    log_density: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, float, float]:
    """:func:`gaussmix.estep._kernels.weighted_responsibilities`, compiled.

    Takes the same arguments and returns the same; ``log_prob`` (K, n) must be
    float32 or float64 and C-contiguous. ``log_density`` (n,), float64, where
    given, receives ``log p(x_n)``.
    """
    n_components, n_samples = log_prob.shape
    # float32 log-densities are computed on in float32 (twice the vector lanes), with
    # float64 sums over the rows
    dtype = log_prob.dtype.type
    weights = _NO_WEIGHTS if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if offsets is None:
        offsets = np.zeros(n_components, dtype=dtype)
    else:
        offsets = np.asarray(offsets, dtype=np.float64).reshape(n_components).astype(dtype, copy=False)
    scratch = np.empty((3, n_samples), dtype=dtype)
    logs = np.empty((2, n_samples))
    resp_weight = np.empty(n_components)
    total_weight, loglik = _compiled_weighted_responsibilities(
        log_prob, dtype(scale), offsets, dtype(_LOWEST_EXPONENT[log_prob.dtype]), weights, scratch[0], scratch[1],
        scratch[2], logs[0], logs[1], resp_weight,
    )
    if log_density is not None:
        np.add(logs[0], scratch[0], out=log_density)
    return resp_weight, float(total_weight), float(loglik)
