"""Vectorised exp and log for the compiled kernels (needs numba).

NumPy's float64 exp is vectorised only for AVX-512, and libm's log is a scalar
call: these loops compile to vector code on any x86-64 machine. The E-step
kernels (:mod:`gaussmix.estep._compiled_responsibilities`,
:mod:`gaussmix.estep._compiled_screened`) and the compiled EM loop
(:mod:`gaussmix.covariance._numba_em`) call them through their dtype-dispatching
stubs (``_exp_of_row_of``, ``_power_of_two_of``, ``_logs_of``), which numba
resolves at compile time to the float64 or float32 loop. Importing this module
imports numba: do it lazily.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import _njit, numba

#: options of the dtype-dispatching overloads (here and in the modules that add their own)
_OVERLOAD_OPTIONS = {"jit_options": {"fastmath": {"contract"}}}

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


#: e^x below a dtype's smallest normal number counts as 0 (as on the NumPy path)
_LOWEST_EXPONENT = {
    np.dtype(dtype): math.ceil(math.log(float(np.finfo(dtype).tiny))) for dtype in (np.float32, np.float64)
}


if numba is not None:
    from numba.extending import overload

    _exp_of_row = _njit(nogil=True, fastmath={"contract"})(_exp_of_row)

    # Type dispatch at compile time (direct, inlinable calls: helpers passed as arguments
    # are not inlined, which slows the float64 kernel).

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

    # error_model="numpy": Python's zero-division check in (m - 1) / (m + 1) is a
    # branch, and keeps the loop scalar
    _log_in_place, _log_in_place32 = (
        _njit(nogil=True, fastmath={"contract"}, error_model="numpy")(function)
        for function in (_log_in_place, _log_in_place32)
    )
    # reassoc: the sums may be vectorised (a fixed order, so still deterministic)
    _log_density_sums = _njit(nogil=True, fastmath={"contract", "reassoc"})(_log_density_sums)
