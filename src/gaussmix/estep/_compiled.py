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


#: a tile of :func:`_transpose_into`: (rows, columns) of its input
_TRANSPOSE_TILE = (32, 16)


def _transpose_into(values, out):  # pragma: no cover - compiled
    """``out`` (m, n) <- ``values.T`` for ``values`` (n, m), tile by tile: each tile's
    reads and writes stay within a few cache lines (NumPy's transposing copy runs
    along whole rows, about half as fast)."""
    n_rows, n_columns = values.shape
    tile_rows, tile_columns = _TRANSPOSE_TILE
    full_rows = n_rows - n_rows % tile_rows
    full_columns = n_columns - n_columns % tile_columns
    for i0 in range(0, full_rows, tile_rows):
        for c0 in range(0, full_columns, tile_columns):
            for c in range(c0, c0 + tile_columns):
                for i in range(i0, i0 + tile_rows):
                    out[c, i] = values[i, c]
        for c in range(full_columns, n_columns):
            for i in range(i0, i0 + tile_rows):
                out[c, i] = values[i, c]
    for i in range(full_rows, n_rows):
        for c in range(n_columns):
            out[c, i] = values[i, c]


def _outer_products(centred, out):  # pragma: no cover - compiled
    """``out[t] = centred[a] * centred[c]`` for the pairs a <= c in row-major order:
    (D, b) rows -> (D (D + 1) / 2, b) products, in one call instead of D NumPy calls."""
    n_features, n_samples = centred.shape
    t = 0
    for a in range(n_features):
        for c in range(a, n_features):
            for j in range(n_samples):
                out[t, j] = centred[a, j] * centred[c, j]
            t += 1


def _centred_squares(X, origin, out):  # pragma: no cover - compiled
    """``out`` (b, 2D) <- ``[(x - origin)^2, x - origin]``, one pass over the rows."""
    n_samples, n_features = X.shape
    for i in range(n_samples):
        for a in range(n_features):
            value = X[i, a] - origin[a]
            out[i, n_features + a] = value
            out[i, a] = value * value


def _centred_norms(X, origin, out):  # pragma: no cover - compiled
    """``out`` (b, D + 1) <- ``[|x - origin|^2, x - origin]``, one pass over the rows."""
    n_samples, n_features = X.shape
    for i in range(n_samples):
        norm = 0.0
        for a in range(n_features):
            value = X[i, a] - origin[a]
            out[i, 1 + a] = value
            norm += value * value
        out[i, 0] = norm


if numba is None:
    outer_products = centred_squares = centred_norms = transpose_into = None
else:
    outer_products, centred_squares, transpose_into = (
        _njit(nogil=True)(function) for function in (_outer_products, _centred_squares, _transpose_into)
    )
    # reassoc: the norm's sum may be vectorised (a fixed order, so still deterministic)
    centred_norms = _njit(nogil=True, fastmath={"reassoc"})(_centred_norms)


# exp(x) for x <= 0 as 2^n e^r, |r| <= ln(2)/2: Cody and Waite's reduction
# with ln 2 split in two (fdlibm's constants), a degree-13 Taylor polynomial
# (relative error below 1e-17 on that interval) and 2^n assembled from its
# bits. NumPy's float64 exp is vectorised only for AVX-512, and on AVX2 machines
# it is a large share of a diag/spherical E-step; these loops compile to AVX2
# code, within 1 ulp of NumPy's exp.
_LOG2_E = 1.4426950408889634
_LN2_HIGH = 6.93147180369123816490e-01
_LN2_LOW = 1.90821492927058770002e-10
#: 1.5 * 2^52: adding it rounds to an integer held in the low bits of the mantissa
_ROUNDING_SHIFTER = 6755399441055744.0


def _exp_of_row(row, scale, offset, shift, lowest, scale_bits, constants):  # pragma: no cover - compiled
    """``row <- e^r`` with ``scale row + offset - shift = n ln2 + r`` (0 below ``lowest``);
    ``n`` goes to ``scale_bits``. ``constants`` (:data:`_EXP_CONSTANTS` or
    :data:`_EXP_CONSTANTS32`) fix the dtype of the arithmetic and the polynomial.

    Non-finite ``n`` (NaN or +inf arguments) leave bits that make 1.0, so the
    NaN or inf in ``row`` survives the scaling."""
    log2_e, ln2_high, ln2_low, shifter, zero, taylor = constants
    for j in range(row.shape[0]):
        x = row[j] * scale + offset - shift[j]
        clamped = x if x > lowest else lowest
        rounded = clamped * log2_e + shifter
        scale_bits[j] = rounded
        n = rounded - shifter
        r = (clamped - n * ln2_high) - n * ln2_low
        p = taylor[0]
        for coefficient in taylor[1:]:  # Horner, highest degree first
            p = p * r + coefficient
        # 0 below ``lowest``; NaN and +inf pass through (as NumPy's exp gives them).
        # Two selects, not a chained comparison: branches would stop the vectorisation.
        value = p if x > lowest else zero
        row[j] = value if x < np.inf else x


#: float64: fdlibm's two-part ln 2 and a degree-13 Taylor polynomial
_EXP_CONSTANTS = (
    _LOG2_E, _LN2_HIGH, _LN2_LOW, _ROUNDING_SHIFTER, 0.0,
    tuple(1.0 / math.factorial(i) for i in range(13, -1, -1)),
)
# float32, for float32 log-densities: twice the lanes of each vector instruction.
# x - max is then rounded to float32, an error of the size the float32
# log-densities already carry (eps32 |x|); Cephes' two-part ln 2 and a degree-7
# Taylor polynomial (relative error below 1e-8 on |r| <= ln(2)/2). 1.5 * 2^23
# rounds a float32 to an integer held in the low mantissa bits.
_EXP_CONSTANTS32 = (
    np.float32(_LOG2_E), np.float32(0.693359375), np.float32(-2.12194440e-4), np.float32(12582912.0),
    np.float32(0.0), tuple(np.float32(1.0 / math.factorial(i)) for i in range(7, -1, -1)),
)


def _power_of_two_from_bits(scratch):  # pragma: no cover - compiled
    """``scratch`` (float64) <- 2^n, from n held in the low bits of its mantissa."""
    bits = scratch.view(np.int64)
    for j in range(bits.shape[0]):
        bits[j] = (bits[j] + 1023) << 52


def _power_of_two_from_bits32(scratch):  # pragma: no cover - compiled
    """:func:`_power_of_two_from_bits` for float32 ``scratch``."""
    bits = scratch.view(np.int32)
    for j in range(bits.shape[0]):
        bits[j] = (bits[j] + np.int32(127)) << np.int32(23)


# log(x) as n ln 2 + log(m) with m = x / 2^n in [sqrt(1/2), sqrt(2)] and n ln 2 in two
# parts (fdlibm's, as in the exp): log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172,
# from its series up to s^23 (truncation below 1e-17 relative). The fused kernel takes
# one log a row (its log-likelihood), where libm's scalar log is a noticeable share of
# the row; these two passes compile to vector code. (NumPy's own log is vectorised: the
# other paths use it.)
_SQRT_TWO = math.sqrt(2.0)
_ATANH_SERIES = tuple(2.0 / (2 * i + 1) for i in range(11, -1, -1))  # highest degree first
_MANTISSA_BITS = (1 << 52) - 1
_ONE_BITS = 1023 << 52


def _log_in_place(values, exponents):  # pragma: no cover - compiled
    """``values`` (float64) <- their natural logs, within 2 ulp of libm's. 0 gives -inf,
    +inf and NaN stay; negative and subnormal numbers are not for it. ``exponents``
    (as long, float64) is scratch."""
    bits = values.view(np.int64)
    for j in range(bits.shape[0]):  # x = m 2^n, m in [1, 2): n aside, m in place
        word = bits[j]
        exponents[j] = np.float64((word >> 52) - 1023)
        bits[j] = (word & _MANTISSA_BITS) | _ONE_BITS
    for j in range(values.shape[0]):
        mantissa = values[j]
        exponent = exponents[j]
        large = mantissa > _SQRT_TWO
        m = 0.5 * mantissa if large else mantissa
        n = exponent + 1.0 if large else exponent
        s = (m - 1.0) / (m + 1.0)
        z = s * s
        p = _ATANH_SERIES[0]
        for coefficient in _ATANH_SERIES[1:]:  # Horner in s^2
            p = p * z + coefficient
        value = n * _LN2_HIGH + (s * p + n * _LN2_LOW)
        # Selects, not branches (vector code): exponent field 0 is 0 (-inf), 2047 is
        # +inf (m = 1) or NaN.
        value = value if exponent > -1023.0 else -np.inf
        values[j] = value if exponent < 1024.0 else (np.inf if mantissa == 1.0 else np.nan)


# float32 totals take the same steps in float32 (twice the lanes, and five terms of the
# series, up to s^9: truncation below 1e-8 relative), with Cephes' two-part ln 2 of the
# float32 exp. Their error (~1e-7 of a log in [0, log K]) is that of the float32
# log-densities' own rounding.
_SQRT_TWO32 = np.float32(_SQRT_TWO)
_ATANH_SERIES32 = tuple(np.float32(2.0 / (2 * i + 1)) for i in range(4, -1, -1))
_LN2_HIGH32, _LN2_LOW32 = np.float32(0.693359375), np.float32(-2.12194440e-4)
_HALF32, _ONE32 = np.float32(0.5), np.float32(1.0)
_MANTISSA_BITS32 = np.int32((1 << 23) - 1)
_ONE_BITS32 = np.int32(127 << 23)


def _log_in_place32(values, exponents):  # pragma: no cover - compiled
    """:func:`_log_in_place` for float32 ``values`` (``exponents`` float32 scratch):
    within 3 float32 ulp of the exact log, as NumPy's float32 log is."""
    bits = values.view(np.int32)
    for j in range(bits.shape[0]):
        word = bits[j]
        exponents[j] = np.float32((word >> np.int32(23)) - np.int32(127))
        bits[j] = (word & _MANTISSA_BITS32) | _ONE_BITS32
    for j in range(values.shape[0]):
        mantissa = values[j]
        exponent = exponents[j]
        large = mantissa > _SQRT_TWO32
        m = _HALF32 * mantissa if large else mantissa
        n = exponent + _ONE32 if large else exponent
        s = (m - _ONE32) / (m + _ONE32)
        z = s * s
        p = _ATANH_SERIES32[0]
        for coefficient in _ATANH_SERIES32[1:]:
            p = p * z + coefficient
        value = n * _LN2_HIGH32 + (s * p + n * _LN2_LOW32)
        value = value if exponent > np.float32(-127.0) else np.float32(-np.inf)
        values[j] = value if exponent < np.float32(128.0) else (
            np.float32(np.inf) if mantissa == _ONE32 else np.float32(np.nan)
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


def _exp_of_row_of(row, scale, offset, shift, lowest, scale_bits):
    """:func:`_exp_of_row` in float64 or float32, chosen by numba from ``scale_bits``' dtype."""


def _power_of_two_of(scratch):
    """:func:`_power_of_two_from_bits` or :func:`_power_of_two_from_bits32`, chosen by numba
    from ``scratch``'s dtype."""


def _logs_of(totals, logs, exponents):
    """``logs`` (float64) <- ``log totals``, in the dtype of ``totals`` (see
    :func:`_log_density_sums`), chosen by numba."""


def _logs_of64(totals, logs, exponents):  # pragma: no cover - compiled
    n_rows = totals.shape[0]
    for j in range(n_rows):
        logs[j] = totals[j]
    _log_in_place(logs[:n_rows], exponents[:n_rows])


def _logs_of32(totals, logs, exponents):  # pragma: no cover - compiled
    # float32 scratch: the two halves of the (float64) exponents' first n_rows
    n_rows = totals.shape[0]
    scratch = exponents[:n_rows].view(np.float32)
    values = scratch[:n_rows]
    for j in range(n_rows):
        values[j] = totals[j]
    _log_in_place32(values, scratch[n_rows:])
    for j in range(n_rows):
        logs[j] = np.float64(values[j])


def _log_density_sums(totals, row_max, weights, start, logs, exponents):  # pragma: no cover - compiled
    """``logs`` <- ``log totals`` (float64; computed in ``totals``' dtype, float32 or
    float64) over a tile of rows from row ``start`` of the chunk; returns ``(sum_j w_j,
    sum_j w_j (logs_j + row_max_j))`` (weights 1 where ``weights`` is empty).
    ``exponents`` (float64, as long as ``totals``) is scratch."""
    n_rows = totals.shape[0]
    _logs_of(totals, logs, exponents)
    weight = 0.0
    loglik = 0.0
    if weights.shape[0] == 0:
        for j in range(n_rows):
            loglik += logs[j] + np.float64(row_max[j])
        return np.float64(n_rows), loglik
    for j in range(n_rows):
        w = weights[start + j]
        weight += w
        loglik += w * (logs[j] + np.float64(row_max[j]))
    return weight, loglik


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

    _OVERLOAD_OPTIONS = {"jit_options": {"fastmath": {"contract"}}}

    # Type dispatch at compile time (direct, inlinable calls: helpers passed as arguments
    # are not inlined, which slows the float64 kernel).
    @overload(_affine_max_of, **_OVERLOAD_OPTIONS)
    def _affine_max_typed(row, scale, offset, largest):
        return _affine_max32 if largest.dtype == numba.types.float32 else _affine_max

    _exp_of_row = _njit(nogil=True, fastmath={"contract"})(_exp_of_row)

    @overload(_exp_of_row_of, **_OVERLOAD_OPTIONS)
    def _exp_of_row_typed(row, scale, offset, shift, lowest, scale_bits):
        constants = _EXP_CONSTANTS32 if scale_bits.dtype == numba.types.float32 else _EXP_CONSTANTS

        def exp_of_row(row, scale, offset, shift, lowest, scale_bits):  # pragma: no cover - compiled
            _exp_of_row(row, scale, offset, shift, lowest, scale_bits, constants)

        return exp_of_row

    @overload(_power_of_two_of, **_OVERLOAD_OPTIONS)
    def _power_of_two_typed(scratch):
        return _power_of_two_from_bits32 if scratch.dtype == numba.types.float32 else _power_of_two_from_bits

    @overload(_logs_of, **_OVERLOAD_OPTIONS)
    def _logs_of_typed(totals, logs, exponents):
        return _logs_of32 if totals.dtype == numba.types.float32 else _logs_of64

    _scale_and_sum, _affine_copy = (
        _njit(nogil=True, fastmath={"contract"})(function)
        for function in (_scale_and_sum, _affine_copy)
    )
    # error_model="numpy": Python's zero-division check in (m - 1) / (m + 1) is a
    # branch, and keeps the loop scalar
    _log_in_place, _log_in_place32 = (
        _njit(nogil=True, fastmath={"contract"}, error_model="numpy")(function)
        for function in (_log_in_place, _log_in_place32)
    )
    # reassoc: the sums may be vectorised (a fixed order, so still deterministic)
    _log_density_sums = _njit(nogil=True, fastmath={"contract", "reassoc"})(_log_density_sums)
    # reassoc: the row sum may be vectorised (a fixed order, so still deterministic)
    _multiply_and_sum = _njit(nogil=True, fastmath={"contract", "reassoc"})(_multiply_and_sum)
    # error_model="numpy": 1/0 gives inf (then NaN, as on the NumPy path) instead of raising
    _compiled_weighted_responsibilities = _njit(nogil=True, error_model="numpy")(
        _weighted_responsibilities
    )
else:
    _compiled_weighted_responsibilities = None


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


_SMALLEST_SUBNORMAL = float(np.nextafter(0.0, 1.0))


def _tally(
    resp, norms, relative_threshold, largest, floors, use_floors, max_kept, thresholds, left_out, mask, indices, starts,
):  # pragma: no cover - compiled
    """Per component, ``thresholds[k]`` <- ``relative_threshold`` times ``largest[k]``, its
    largest responsibility in the block (or ``floors[k]`` where ``use_floors`` and larger),
    ``left_out[:, k]`` <- the sum of those below it and their sum weighted by ``norms``, and
    the rows of those that reach it listed in order in ``indices[starts[k]:starts[k + 1]]``.
    Returns how many reach it, or, once more than ``max_kept`` do, stops there and returns
    that count. ``mask`` (the rows rounded up to a multiple of 8, the rest 0) and
    ``indices`` (``max_kept`` plus the rows plus 8) are scratch."""
    n_components, n_rows = resp.shape
    # Thresholds relative to each component's largest: a component with only tiny
    # responsibilities here keeps its largest ones, so that what is left out stays
    # negligible against what is kept (else the chunk's bound fails). A NaN largest
    # keeps nothing, and the chunk's bound then fails on the NaN it leaves out.
    for k in range(n_components):
        reference = np.float64(largest[k])
        if use_floors and floors[k] > reference:
            reference = floors[k]
        threshold = relative_threshold * reference
        thresholds[k] = threshold if not threshold <= 0.0 else _SMALLEST_SUBNORMAL  # zeros are never kept
    # One vector pass a component marks the kept ones and sums the others; the list
    # then reads the marks eight at a time, and most such words are 0. (A second pass
    # over the responsibilities would cost twice the pass that finds them.)
    words = mask.view(np.uint64)
    listed = 0
    for k in range(n_components):
        threshold = thresholds[k]
        weight = 0.0
        weighted = 0.0
        row = resp[k]
        for j in range(n_rows):
            r = np.float64(row[j])
            large = r >= threshold
            mask[j] = large
            left = 0.0 if large else r  # selects, not branches: vector code
            weight += left
            weighted += left * norms[j]
        left_out[0, k] = weight
        left_out[1, k] = weighted
        starts[k] = listed
        for w in range(words.shape[0]):
            if words[w] != 0:
                for j in range(8 * w, 8 * w + 8):
                    indices[listed] = j
                    listed += mask[j]
        if listed > max_kept:
            return listed
    starts[n_components] = listed
    return listed


def _add_four_features(f0, f1, f2, f3, r0, r1, r2, r3, out):  # pragma: no cover - compiled
    """``out += r0 f0 + r1 f1 + r2 f2 + r3 f3`` (float64 feature rows)."""
    for a in range(out.shape[0]):
        out[a] += (r0 * f0[a] + r1 * f1[a]) + (r2 * f2[a] + r3 * f3[a])


def _add_four_squares(x0, x1, x2, x3, r0, r1, r2, r3, origin, squares, centred):  # pragma: no cover - compiled
    """With ``c = x - origin`` (in float64): ``squares += sum r c^2``, ``centred += sum r c``."""
    for a in range(origin.shape[0]):
        shift = origin[a]
        c0, c1 = np.float64(x0[a]) - shift, np.float64(x1[a]) - shift
        c2, c3 = np.float64(x2[a]) - shift, np.float64(x3[a]) - shift
        w0, w1, w2, w3 = r0 * c0, r1 * c1, r2 * c2, r3 * c3
        centred[a] += (w0 + w1) + (w2 + w3)
        squares[a] += (w0 * c0 + w1 * c1) + (w2 * c2 + w3 * c3)


def _add_four_centred(x0, x1, x2, x3, r0, r1, r2, r3, origin, centred):  # pragma: no cover - compiled
    """With ``c = x - origin`` (in float64): ``centred += sum r c``."""
    for a in range(origin.shape[0]):
        shift = origin[a]
        centred[a] += (r0 * (np.float64(x0[a]) - shift) + r1 * (np.float64(x1[a]) - shift)) + (
            r2 * (np.float64(x2[a]) - shift) + r3 * (np.float64(x3[a]) - shift)
        )


def _sparse_block_moments(
    resp, largest, features, rows, origin, n_squares, relative_threshold, floors, max_kept, norms, thresholds,
    left_out, mask, indices, starts, moments, dropped,
):  # pragma: no cover - compiled
    """``moments[k] += r_nk f(x_n)`` over the responsibilities ``resp`` (K, b) that reach
    ``relative_threshold`` times their component's largest in the block, ``largest[k]``
    (and are not 0) only, if at most ``max_kept`` do (else, where ``floors`` (K,) are
    given, those that reach ``relative_threshold`` times the larger of that largest and
    ``floors[k]``, if at most ``max_kept`` do: components absent from a crowded block);
    ``dropped[0, k]`` and ``dropped[1, k]`` gain the others and their sum weighted by
    ``|x_n - origin|^2``. Returns whether the block was summed (else nothing changed).

    ``f(x) = [q(x), x - origin]``: ``q(x)`` holds the squares of ``x - origin``
    (``n_squares`` = D) or its squared norm (``n_squares`` = 1). The block's ``features``
    (b, W) hold them in float64; or, where ``features`` has no rows, they are built from
    the block's ``rows`` (b, D) as they are needed, in float64 whatever the rows' dtype
    (cheaper than building every row's). ``norms`` (b,), ``thresholds`` (K,),
    ``left_out`` (2, K), ``mask``, ``indices`` and ``starts`` (K + 1) are scratch (see
    :func:`_tally`). Products and sums are in float64.
    """
    n_components, n_rows = resp.shape
    n_features = rows.shape[1]
    from_rows = features.shape[0] == 0
    by_square = n_squares == n_features and n_features > 1
    for j in range(n_rows):
        norm = 0.0
        if from_rows:
            for a in range(n_features):
                value = np.float64(rows[j, a]) - origin[a]
                norm += value * value
        else:
            for a in range(n_squares):
                norm += features[j, a]
        norms[j] = norm
    kept = _tally(
        resp, norms, relative_threshold, largest, floors, False, max_kept, thresholds, left_out, mask, indices, starts
    )
    if kept > max_kept and floors.shape[0] > 0:
        kept = _tally(
            resp, norms, relative_threshold, largest, floors, True, max_kept, thresholds, left_out, mask, indices,
            starts,
        )
    if kept > max_kept:
        return False
    for k in range(n_components):
        dropped[0, k] += left_out[0, k]
        dropped[1, k] += left_out[1, k]
    # 2. Their moments, four rows at a time (one load and store of a component's moments
    # per four rows; a last group is padded with weight-0 copies of its first row). The
    # helpers take one-dimensional views: indexed into ``moments`` and ``rows`` directly,
    # the loop stayed scalar (the compiler could not rule out that they overlap).
    for k in range(n_components):
        squares = moments[k, :n_squares]
        centred = moments[k, n_squares:]
        for t in range(starts[k], starts[k + 1], 4):
            stop = starts[k + 1]
            j0 = indices[t]
            j1 = indices[t + 1] if t + 1 < stop else j0
            j2 = indices[t + 2] if t + 2 < stop else j0
            j3 = indices[t + 3] if t + 3 < stop else j0
            r0 = np.float64(resp[k, j0])
            r1 = np.float64(resp[k, j1]) if t + 1 < stop else 0.0
            r2 = np.float64(resp[k, j2]) if t + 2 < stop else 0.0
            r3 = np.float64(resp[k, j3]) if t + 3 < stop else 0.0
            if not from_rows:
                _add_four_features(features[j0], features[j1], features[j2], features[j3], r0, r1, r2, r3, moments[k])
            elif by_square:
                _add_four_squares(rows[j0], rows[j1], rows[j2], rows[j3], r0, r1, r2, r3, origin, squares, centred)
            else:
                _add_four_centred(rows[j0], rows[j1], rows[j2], rows[j3], r0, r1, r2, r3, origin, centred)
                squares[0] += (r0 * norms[j0] + r1 * norms[j1]) + (r2 * norms[j2] + r3 * norms[j3])
    return True


if numba is not None:
    # reassoc: the norms and left-out sums may be vectorised (a fixed order, so deterministic)
    _tally, _add_four_features, _add_four_squares, _add_four_centred, _compiled_sparse_block_moments = (
        _njit(nogil=True, fastmath={"contract", "reassoc"})(function)
        for function in (_tally, _add_four_features, _add_four_squares, _add_four_centred, _sparse_block_moments)
    )
else:
    _compiled_sparse_block_moments = None


def sparse_block_moments(
    resp: np.ndarray, rows: np.ndarray, origin: np.ndarray, n_squares: int, relative_threshold: float,
    max_kept: int, moments: np.ndarray, dropped: np.ndarray, features: Optional[np.ndarray] = None,
    floors: Optional[np.ndarray] = None,
) -> bool:
    """Moments of a block over its non-negligible responsibilities only, in one compiled pass.

    Parameters
    ----------
    resp : ndarray of shape (K, b)
        Weighted responsibilities, C-contiguous.
    rows : ndarray of shape (b, D)
        The block's rows, float32 or float64.
    origin : ndarray of shape (D,)
        The moments are those of ``f(x) = [q(x), x - origin]``, in float64.
    n_squares : int
        Columns of ``q(x)``: D for the squares of ``x - origin``, 1 for its squared norm.
    relative_threshold : float
        Responsibilities below it times their component's largest in the block are
        left out (and zeros).
    max_kept : int
        The most responsibilities kept for which the block is summed this way (else
        it is left alone and False returned).
    moments : ndarray of shape (K, n_squares + D), float64
        ``sum r f`` over the kept responsibilities is added to it.
    dropped : ndarray of shape (2, K), float64
        Gains, per component, the left-out responsibilities and their sum weighted
        by ``|x - origin|^2``.
    features : ndarray of shape (b, n_squares + D), float64, optional
        ``f(x)`` of the block's rows where they are already built (read instead of
        built again from ``rows``).
    floors : ndarray of shape (K,), optional
        The least a component's largest responsibility counts as where the block is
        crowded otherwise (see :data:`gaussmix.estep._sparse_moments.ABSENT_SHARE`).

    Returns
    -------
    bool
        Whether the block was summed.
    """
    n_components, n_rows = resp.shape
    if features is None:
        features = np.empty((0, n_squares + rows.shape[1]))
    norms = np.empty(n_rows)
    thresholds = np.empty(n_components)
    left_out = np.empty((2, n_components))
    mask = np.zeros(-(-n_rows // 8) * 8, dtype=np.uint8)  # whole 8-byte words, the rest 0
    indices = np.empty(max_kept + n_rows + 8, dtype=np.intp)
    starts = np.empty(n_components + 1, dtype=np.intp)
    floors = np.empty(0) if floors is None else np.asarray(floors, dtype=np.float64)
    # NumPy's max is vectorised; a compiled one is not (a float max is not associative
    # to the compiler)
    largest = resp.max(axis=1)
    return bool(_compiled_sparse_block_moments(
        resp, largest, features, rows, np.asarray(origin, dtype=np.float64), n_squares, float(relative_threshold),
        floors, int(max_kept), norms, thresholds, left_out, mask, indices, starts, moments, dropped,
    ))


def _nearest_centres(X, centres, labels):  # pragma: no cover - compiled
    """``labels[i]`` <- the index of the centre nearest to row i (exact squared
    differences; ties go to the lower index)."""
    n_samples, n_features = X.shape
    for i in range(n_samples):
        best = np.inf
        label = 0
        for k in range(centres.shape[0]):
            distance = 0.0
            for a in range(n_features):
                difference = X[i, a] - centres[k, a]
                distance += difference * difference
            if distance < best:
                best = distance
                label = k
        labels[i] = label


def _labelled_sums(X, weights, labels, origin, resp_weight, means, scatter):  # pragma: no cover - compiled
    """Weights, means and lower-triangular scatters of the rows ``X - origin``
    under hard labels, in two passes (the scatter about the means: nothing cancels)."""
    n_samples, n_features = X.shape
    for i in range(n_samples):
        k = labels[i]
        resp_weight[k] += weights[i]
        for a in range(n_features):
            means[k, a] += weights[i] * (X[i, a] - origin[a])
    for k in range(means.shape[0]):
        if resp_weight[k] > 0:
            for a in range(n_features):
                means[k, a] /= resp_weight[k]
    centred = np.empty(n_features)
    for i in range(n_samples):
        k = labels[i]
        for a in range(n_features):
            centred[a] = X[i, a] - origin[a] - means[k, a]
        for a in range(n_features):
            scaled = weights[i] * centred[a]
            for b in range(a + 1):
                scatter[k, a, b] += scaled * centred[b]


if numba is not None:
    _nearest_centres, _labelled_sums = (
        _njit(nogil=True)(function) for function in (_nearest_centres, _labelled_sums)
    )


def nearest_centres(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for every row, shape (n,), from exact differences.

    One pass over the rows; for few features and centres (K D small), where
    the matrix-product route of :func:`gaussmix.init.nearest_centre_labels` is
    bound by per-call overhead.
    """
    labels = np.empty(X.shape[0], dtype=np.intp)
    _nearest_centres(np.asarray(X), np.ascontiguousarray(centres, dtype=np.float64), labels)
    return labels


def labelled_stats(
    X: np.ndarray, sample_weight: Optional[np.ndarray], labels: np.ndarray, n_components: int,
    full_scatter: bool, origin: Optional[np.ndarray] = None,
) -> SuffStats:
    """Statistics of the rows ``X - origin`` under hard labels (n,), summed in float64.

    The compiled counterpart of :func:`gaussmix.init.assignment_stats` for
    labels, for few features (its scatter loop is D^2 a row, unvectorised).
    """
    n_samples, n_features = X.shape
    weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    origin = np.zeros(n_features) if origin is None else np.asarray(origin, dtype=np.float64)
    resp_weight = np.zeros(n_components)
    means = np.zeros((n_components, n_features))
    lower = np.zeros((n_components, n_features, n_features))
    _labelled_sums(np.asarray(X), weights, np.asarray(labels, dtype=np.intp), origin, resp_weight, means, lower)
    scatter = lower + np.swapaxes(np.tril(lower, -1), 1, 2)
    if not full_scatter:
        scatter = np.diagonal(scatter, axis1=1, axis2=2).copy()
    dtype = X.dtype
    total_weight = float(n_samples) if sample_weight is None else float(weights.sum())
    return SuffStats(resp_weight.astype(dtype), means.astype(dtype), scatter.astype(dtype), total_weight)


#: e^x below a dtype's smallest normal number counts as 0 (as on the NumPy path)
_LOWEST_EXPONENT = {
    np.dtype(dtype): math.ceil(math.log(float(np.finfo(dtype).tiny))) for dtype in (np.float32, np.float64)
}
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
