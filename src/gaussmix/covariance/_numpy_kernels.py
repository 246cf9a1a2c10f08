"""Batched NumPy E-step kernels shared by the covariance structures.

Every structure's fast path ends the same way: weighted log-densities of shape
(K, n) are turned into responsibilities in place, and the statistics of the
chunk are formed from a few large matrix products. The (K, n) layout (not
(n, K)) makes the reductions over components run along contiguous rows, which
is what keeps a small K cheap.

All kernels work in a frame centred on the chunk's mean row, so that
expansions like ``x^T P x - 2 x^T P mu + mu^T P mu`` only cancel as much as a
component's distance from the data (in its own standard deviations) demands;
a stray far-away mean does not spoil the other components' digits.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Optional

import numpy as np

from ..stats import SuffStats


def is_numpy(*arrays: Any) -> bool:
    """Whether every array is a NumPy array (memory maps included)."""
    return all(isinstance(array, np.ndarray) for array in arrays)


def centre_on_rows(X: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and means shifted by the mean row of the chunk.

    Returns
    -------
    X_centred : ndarray of shape (n, D)
    means_centred : ndarray of shape (K, D)
    origin : ndarray of shape (D,)
    """
    origin = X.mean(axis=0)
    return X - origin, means - origin, origin


#: rounding error an expanded quadratic form may add to a log-density, per
#: dimension, before the kernels fall back to per-component differences
#: (see :func:`expansion_is_accurate`)
EXPANSION_TOLERANCE = 1e-4


def expansion_is_accurate(whitened_means: np.ndarray) -> bool:
    """Whether ``|y|^2 - 2 y.b + |b|^2`` keeps enough digits for these means.

    Expanding a squared distance adds a rounding error of about the working
    precision times ``max_k |b_k|^2`` (the squared distance of the chunk's
    centre from each mean, in that component's standard deviations) to the
    log-densities, whose own size grows with D. Allow ``EXPANSION_TOLERANCE``
    per dimension: never an issue in float64; in float32 tight clusters far
    apart take the generic per-component-difference path instead.

    Parameters
    ----------
    whitened_means : ndarray of shape (K, D)
        Component means relative to the chunk's origin, whitened by their own precision.
    """
    eps = float(np.finfo(whitened_means.dtype).eps)
    largest = float(np.max(np.sum(whitened_means * whitened_means, axis=1)))
    return eps * largest <= EXPANSION_TOLERANCE * (1 + whitened_means.shape[1])


def gaussian_constant(n_features: int) -> float:
    """``-D/2 log(2 pi)``, the normalising constant of a D-dimensional Gaussian."""
    return -0.5 * n_features * math.log(2 * math.pi)


def _log_smallest_normal(dtype: np.dtype) -> float:
    return math.log(float(np.finfo(dtype).tiny))


#: bytes the widest temporary of one block (rows x K x D) may take: about the
#: per-core L2 cache, past which the element-wise passes slow down severalfold
BLOCK_BUDGET_BYTES = 1 * 2**20
MIN_BLOCK_ROWS = 128
MAX_BLOCK_ROWS = 8192


def block_rows(row_width: int, itemsize: int) -> int:
    """Rows per block so that a (rows, ``row_width``) temporary stays cache-sized."""
    rows = BLOCK_BUDGET_BYTES // max(1, row_width * itemsize)
    return int(min(MAX_BLOCK_ROWS, max(MIN_BLOCK_ROWS, rows)))


def row_blocks(n_samples: int, rows: int):
    """``(start, stop)`` of consecutive row blocks covering ``n_samples`` rows."""
    return ((start, min(start + rows, n_samples)) for start in range(0, n_samples, rows))


class WhitenedAccumulator:
    """Running E-step sums of one chunk for dense covariances, block by block.

    Keeps, per component, the responsibility weight, the weighted sum of the
    (centred) rows and the weighted scatter of the rows whitened about the
    *current* means, ``sum_n r_nk y_nk y_nk^T`` with ``y_nk = (x_n - mu_k) C_k``.
    :meth:`finish` maps the scatter back through ``C_k^{-1}`` once per chunk
    and moves it to the new means.
    """

    def __init__(self, n_components: int, n_features: int, dtype: np.dtype) -> None:
        self.resp_weight = np.zeros(n_components, dtype=dtype)
        self.row_sums = np.zeros((n_components, n_features), dtype=dtype)
        self.scatter = np.zeros((n_components, n_features, n_features), dtype=dtype)
        self.total_weight = 0.0
        self.loglik = 0.0

    def add(
        self, log_prob: np.ndarray, X: np.ndarray, whitened: np.ndarray, sample_weight: Optional[np.ndarray],
        scale: float = 1.0, offsets: Optional[np.ndarray] = None,
    ) -> None:
        """Fold in one block.

        Parameters
        ----------
        log_prob : ndarray of shape (K, b)
            Weighted log-densities of the block, up to ``scale`` and
            ``offsets`` (K,) as in :func:`weighted_responsibilities` (overwritten).
        X : ndarray of shape (b, D)
            The block's rows (centred).
        whitened : ndarray of shape (b, K, D)
            ``(x_n - mu_k) C_k`` (overwritten).
        sample_weight : ndarray of shape (b,) or None
        """
        resp_weight, total, loglik = weighted_responsibilities(log_prob, sample_weight, scale, offsets)
        self.total_weight += total
        self.loglik += loglik
        self.resp_weight += resp_weight
        self.row_sums += log_prob @ X
        whitened *= np.sqrt(log_prob).T[:, :, None]
        # One batched product over components; NumPy uses a symmetric rank-k
        # update when both operands view the same buffer, halving the flops.
        by_component = whitened.transpose(1, 0, 2)
        self.scatter += np.matmul(by_component.transpose(0, 2, 1), by_component)

    def finish(self, factor_inverse: np.ndarray, means: np.ndarray, origin: np.ndarray) -> tuple[SuffStats, float]:
        """Statistics of the chunk.

        Parameters
        ----------
        factor_inverse : ndarray of shape (K, D, D) or (D, D)
            ``C_k^{-1}``: ``x - mu = y C^{-1}``.
        means : ndarray of shape (K, D)
            The current means, in the centred frame of the rows.
        origin : ndarray of shape (D,)
            Where that frame's zero lies.
        """
        safe = np.where(self.resp_weight > 0, self.resp_weight, 1)
        new_means = self.row_sums / safe[:, None]
        shift = new_means - means
        about_old_means = np.swapaxes(factor_inverse, -1, -2) @ self.scatter @ factor_inverse
        # About the old means the scatter is larger by N_k (m_k - mu_k)(m_k - mu_k)^T;
        # the shift is one EM step, small, so this subtraction does not cancel.
        scatter = about_old_means - self.resp_weight[:, None, None] * (shift[:, :, None] * shift[:, None, :])
        scatter = 0.5 * (scatter + np.swapaxes(scatter, -1, -2))
        scatter[self.resp_weight == 0] = 0
        return suff_stats(self.resp_weight, new_means, scatter, self.total_weight, origin), self.loglik


def responsibilities_in_place(log_prob: np.ndarray) -> np.ndarray:
    """Turn weighted log-densities into responsibilities, in place.

    Parameters
    ----------
    log_prob : ndarray of shape (K, n)
        ``log pi_k + log N(x_n | k)``; overwritten by ``p(k | x_n)``.

    Returns
    -------
    log_density : ndarray of shape (n,)
        ``log p(x_n)``.
    """
    # Passes over (K, n): max, shift, flush, exp, sum, divide.
    row_max = log_prob.max(axis=0)
    row_max[~np.isfinite(row_max)] = 0
    log_prob -= row_max
    # exp is several times slower when its results are subnormal; such
    # responsibilities (below 1e-308 or 1e-38) are zero to every later sum anyway.
    np.putmask(log_prob, log_prob < _log_smallest_normal(log_prob.dtype), -np.inf)
    np.exp(log_prob, out=log_prob)
    total = log_prob.sum(axis=0)
    log_prob /= total
    return np.log(total) + row_max


#: environment variable: "0" turns the compiled (numba) kernels off
NUMBA_VARIABLE = "GAUSSMIX_NUMBA"


def _compiled_kernels() -> Optional[Any]:
    """:mod:`gaussmix.covariance._numba_kernels` when numba is installed and not turned off.

    Imported on first use only, so that ``import gaussmix`` does not load numba.
    """
    if os.environ.get(NUMBA_VARIABLE, "1") == "0":
        return None
    from . import _numba_kernels

    return _numba_kernels if _numba_kernels.numba is not None else None


def weighted_responsibilities(
    log_prob: np.ndarray, sample_weight: Optional[np.ndarray], scale: float = 1.0, offsets: Optional[np.ndarray] = None
) -> tuple[np.ndarray, float, float]:
    """Weighted responsibilities of a block, in place, and their sums.

    Parameters
    ----------
    log_prob : ndarray of shape (K, n)
        The weighted log-densities are ``scale * log_prob + offsets[:, None]``;
        overwritten by ``w_n p(k | x_n)``.
    sample_weight : ndarray of shape (n,) or None
    scale : float
    offsets : ndarray of shape (K,) or None

    Returns
    -------
    resp_weight : ndarray of shape (K,), float64
        ``sum_n w_n p(k | x_n)``.
    total_weight : float
        ``sum_n w_n``.
    loglik : float
        ``sum_n w_n log p(x_n)``.

    With numba (the ``fast`` extra) one compiled kernel makes four passes over
    the block where NumPy makes ten (scale, shift, max, flush, exp, sum,
    divide, weight, row sums); it also computes ``x - max`` in float64, and
    its exp is vectorised where NumPy's float64 exp is not (on machines
    without AVX-512: ~2.5x faster).
    """
    compiled = _compiled_kernels()
    if compiled is not None and log_prob.flags.c_contiguous and log_prob.dtype in (np.float32, np.float64):
        log_density, resp_weight = compiled.weighted_responsibilities(log_prob, sample_weight, scale, offsets)
        if sample_weight is None:
            return resp_weight, float(log_prob.shape[1]), float(np.sum(log_density))
        return resp_weight, float(np.sum(sample_weight)), float(np.dot(sample_weight, log_density))
    if scale != 1.0:
        log_prob *= scale
    if offsets is not None:
        log_prob += np.reshape(offsets, (-1, 1))
    log_density = responsibilities_in_place(log_prob)
    total_weight, loglik = weight_responsibilities(log_prob, log_density, sample_weight)
    return log_prob.sum(axis=1, dtype=np.float64), total_weight, loglik


def weight_responsibilities(resp: np.ndarray, log_density: np.ndarray, sample_weight: Optional[np.ndarray]) -> tuple[float, float]:
    """Multiply ``resp`` (K, n) by the sample weights in place.

    Returns
    -------
    total_weight : float
        ``sum_n w_n``.
    loglik : float
        ``sum_n w_n log p(x_n)``.
    """
    if sample_weight is None:
        return float(resp.shape[1]), float(np.sum(log_density))
    resp *= sample_weight
    return float(np.sum(sample_weight)), float(np.dot(sample_weight, log_density))


def suff_stats(resp_weight: np.ndarray, means: np.ndarray, scatter: np.ndarray, total_weight: float, origin: np.ndarray) -> SuffStats:
    """Statistics with the means moved back from the kernel's frame by ``origin``
    (means of empty components stay zero, as :class:`SuffStats` documents)."""
    means = np.where((resp_weight > 0)[:, None], means + origin, 0)
    return SuffStats(resp_weight, means, scatter, total_weight)


def axis_aligned_accumulate_chunk(
    model: Any, X: Any, sample_weight: Any, params: Any, generic: Callable[..., tuple[SuffStats, float]],
    trace: bool = False,
) -> tuple[SuffStats, float]:
    """Batched E-step for axis-aligned structures (one product with ``[x^2, x]`` each way).

    ``model`` provides ``feature_precisions`` (K, D) and
    ``log_det_precision_cholesky``; ``generic`` is the namespace-generic
    E-step, taken for other namespaces than NumPy and where the expansion
    would lose too many digits (see :func:`diagonal_accumulate`). With
    ``trace`` (spherical precisions), the products use ``[|x|^2, x]`` and the
    statistics keep (K, 1) traces.
    """
    precisions_cholesky = params.precisions_cholesky
    if not is_numpy(X, precisions_cholesky):
        return generic(X, sample_weight, params)
    n_features = X.shape[1]
    fast = diagonal_accumulate(
        X,
        sample_weight,
        np.log(params.weights),
        params.means,
        model.feature_precisions(precisions_cholesky, n_features),
        model.log_det_precision_cholesky(precisions_cholesky, n_features),
        trace=trace,
    )
    return generic(X, sample_weight, params) if fast is None else fast


def diagonal_accumulate(
    X: np.ndarray,
    sample_weight: Optional[np.ndarray],
    log_weights: np.ndarray,
    means: np.ndarray,
    precisions: np.ndarray,
    log_det: np.ndarray,
    trace: bool = False,
) -> Optional[tuple[SuffStats, float]]:
    """E-step for axis-aligned covariances (diag, spherical) on one chunk.

    Both the log-densities and the statistics come from one product each with
    the features ``[x^2, x]`` of shape (n, 2D):
    ``log N = [x^2, x] . [-p/2, p mu] - p mu^2 / 2 + log det + const``.
    With ``trace`` (every feature of a component has the same precision) the
    features are ``[|x|^2, x]``, shape (n, D + 1), and the scatters (K, 1) traces.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    sample_weight : ndarray of shape (n,) or None
    log_weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    precisions : ndarray of shape (K, D)
        Inverse variances per component and feature.
    log_det : ndarray of shape (K,)
        ``log det C_k`` (half the log-determinant of the precision).

    Returns
    -------
    stats : SuffStats
        With (K, D) diagonal scatters, or (K, 1) traces.
    loglik : float
        ``None`` in place of both when :func:`expansion_is_accurate` says the
        expansion would lose too many digits (the caller takes the generic path).
    """
    n_features = X.shape[1]
    # The frame of centre_on_rows, but each block is centred as it is copied into
    # the features buffer: no centred copy of the whole chunk, no concatenation.
    origin = X.mean(axis=0)
    means = means - origin
    if not expansion_is_accurate(means * np.sqrt(precisions)):
        return None
    squares = precisions[:, :1] if trace else precisions  # the coefficients of |x|^2, or of x^2
    n_squares = squares.shape[1]
    coefficients = np.concatenate([-0.5 * squares, precisions * means], axis=1)
    offsets = -0.5 * np.sum(precisions * means * means, axis=1) + log_det + log_weights + gaussian_constant(n_features)
    n_components = means.shape[0]
    # sum r x^2, sum r x, summed in float64: x^2 - m^2 then cancels only
    # float64 digits (in float32 a tight component lost its variance).
    moments = np.zeros((n_components, n_squares + n_features))
    resp_weight = np.zeros(n_components)
    total_weight = loglik = 0.0
    rows = block_rows(n_components + n_squares + n_features, X.dtype.itemsize)
    buffer = np.empty((min(rows, X.shape[0]), n_squares + n_features), dtype=X.dtype)
    for start, stop in row_blocks(X.shape[0], rows):
        features = buffer[: stop - start]  # [x^2, x] or [|x|^2, x] of the centred block, C-contiguous
        block = features[:, n_squares:]
        np.subtract(X[start:stop], origin, out=block)
        _squares(block, features[:, :n_squares])
        log_prob = coefficients @ features.T
        weights = None if sample_weight is None else sample_weight[start:stop]
        block_resp_weight, block_total, block_loglik = weighted_responsibilities(log_prob, weights, 1.0, offsets)
        resp_weight += block_resp_weight
        total_weight += block_total
        loglik += block_loglik
        if X.dtype == np.float64:
            moments += log_prob @ features
        else:
            features64 = np.empty(features.shape)
            np.copyto(features64[:, n_squares:], block)
            _squares(features64[:, n_squares:], features64[:, :n_squares])
            moments += log_prob.astype(np.float64) @ features64
    safe = np.where(resp_weight > 0, resp_weight, 1)
    new_means = moments[:, n_squares:] / safe[:, None]
    squared_means = new_means * new_means
    if trace:
        squared_means = squared_means.sum(axis=1, keepdims=True)
    # Centred on the chunk's mean row, so x^2 - m^2 keeps the digits a
    # component's spread needs (expansion_is_accurate); rounding may still
    # leave a tiny negative.
    scatter = np.maximum(moments[:, :n_squares] - resp_weight[:, None] * squared_means, 0)
    dtype = X.dtype
    return suff_stats(
        resp_weight.astype(dtype), new_means.astype(dtype), scatter.astype(dtype), total_weight, origin
    ), loglik


def _squares(rows: np.ndarray, out: np.ndarray) -> None:
    """``out <- rows**2`` (shape (n, D)) or, when ``out`` has one column, ``|row|^2``."""
    if out.shape[1] == rows.shape[1]:
        np.multiply(rows, rows, out=out)
    else:
        np.einsum("nd,nd->n", rows, rows, out=out[:, 0])
