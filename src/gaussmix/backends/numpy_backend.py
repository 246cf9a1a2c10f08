"""NumPy / SciPy implementations of the operations the array API lacks."""

from __future__ import annotations

import contextlib
from typing import Any, Optional

import numpy as np
import array_api_compat
import scipy.linalg


def cholesky_lower(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors of a stack of symmetric matrices, with a status.

    Parameters
    ----------
    matrices : ndarray of shape (..., D, D)

    Returns
    -------
    factors : ndarray of shape (..., D, D)
        Lower-triangular factors; entries for failed matrices are NaN.
    ok : ndarray of bool, shape (...)
        Whether each matrix was positive definite.
    """
    try:
        return np.linalg.cholesky(matrices), np.ones(matrices.shape[:-2], dtype=bool)
    except np.linalg.LinAlgError:
        pass
    # Slow path only on failure: find which matrices are not positive definite.
    flat = matrices.reshape((-1,) + matrices.shape[-2:])
    factors = np.full_like(flat, np.nan)
    ok = np.zeros(flat.shape[0], dtype=bool)
    for index, matrix in enumerate(flat):
        try:
            factors[index] = np.linalg.cholesky(matrix)
            ok[index] = True
        except np.linalg.LinAlgError:
            pass
    return factors.reshape(matrices.shape), ok.reshape(matrices.shape[:-2])


#: up to this size, triangular inverses are computed for the whole stack at once
_STACKED_INVERSE_DIM = 32


def inverse_lower_triangular(factors: np.ndarray) -> np.ndarray:
    """Inverse of each lower-triangular matrix in a stack of shape (..., D, D)."""
    if factors.shape[-1] <= _STACKED_INVERSE_DIM:
        return _stacked_forward_substitution(factors)
    flat = factors.reshape((-1,) + factors.shape[-2:])
    identity = np.eye(factors.shape[-1], dtype=factors.dtype)
    inverses = np.empty_like(flat)
    for index, factor in enumerate(flat):
        inverses[index] = scipy.linalg.solve_triangular(
            factor, identity, lower=True, check_finite=False
        )
    return inverses.reshape(factors.shape)


def _stacked_forward_substitution(factors: np.ndarray) -> np.ndarray:
    """Forward substitution on every matrix of the stack at once, row by row.

    A SciPy call per small matrix costs far more in call overhead than its
    arithmetic (most of an M-step on a few hundred rows); forward substitution
    keeps the triangular solve's error bounds, which an LU-based inverse does not.
    """
    n_features = factors.shape[-1]
    inverses = np.zeros_like(factors)
    for i in range(n_features):
        row = -np.einsum("...j,...jk->...k", factors[..., i, :i], inverses[..., :i, :])
        row[..., i] += 1.0
        inverses[..., i, :] = row / factors[..., i, i, None]
    return inverses


def inverse_positive_definite(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses (..., M, M) and log-determinants (...) of positive definite ``blocks`` (..., M, M).

    Gauss-Jordan sweeps, each one a few operations over the whole stack: LAPACK
    called once per small matrix costs far more than its arithmetic. Positive
    definite matrices need no pivoting, and the pivots' product is the
    determinant.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a pivot is not positive (a block is not numerically positive definite).
    """
    inverse = np.array(blocks, dtype=np.float64)
    log_det = np.zeros(inverse.shape[:-2])
    for p in range(inverse.shape[-1]):
        pivot = inverse[..., p, p].copy()
        if not np.all(pivot > 0):
            raise np.linalg.LinAlgError("a block of a precision matrix is not positive definite")
        log_det += np.log(pivot)
        column = inverse[..., :, p].copy()
        column[..., p] = 0
        inverse[..., :, p] = 0
        inverse[..., p, p] = 1
        inverse[..., p, :] /= pivot[..., None]
        inverse -= column[..., :, None] * inverse[..., None, p, :]
    return inverse, log_det


def add_at(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sums of ``values`` (m,) by ``index`` (m,): float64 array of shape (size,)."""
    return np.bincount(index, weights=values, minlength=size)


def standard_normal(rng: np.random.RandomState, shape: tuple[int, ...], like: np.ndarray) -> np.ndarray:
    """Standard normal draws of ``shape`` with the dtype of ``like``."""
    return rng.standard_normal(size=shape).astype(like.dtype, copy=False)


def to_numpy(array: np.ndarray) -> np.ndarray:
    """Host numpy view of ``array``."""
    return np.asarray(array)


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """``log(sum(exp(a), axis=1))`` of a 2-D array, shifted by the row maxima to stay finite.

    Rows that are entirely ``-inf`` give ``-inf``.
    """
    row_max = np.max(a, axis=1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    return np.log(np.sum(np.exp(a - row_max), axis=1)) + row_max[:, 0]


def asarray(values: Any, like: np.ndarray) -> np.ndarray:
    """``values`` (array-like, or an array of another library) as numpy with ``like``'s dtype."""
    if not isinstance(values, np.ndarray) and array_api_compat.is_array_api_obj(values):
        # another library's array (a torch tensor, possibly on a GPU): copy it to the host
        values = array_api_compat.to_device(values, "cpu")
    return np.asarray(values, dtype=like.dtype)


def chunk_budget_bytes(like: np.ndarray) -> Optional[int]:
    """None: host chunks use the default cache-sized budget of :mod:`gaussmix.sources`."""
    return None


def computation_context() -> contextlib.AbstractContextManager:
    """NumPy needs no settings for gaussmix's work (products are plain float32/float64)."""
    return contextlib.nullcontext()
