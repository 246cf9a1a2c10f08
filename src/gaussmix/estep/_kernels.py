"""Batched NumPy E-step kernels shared by the engines.

Every batched engine ends the same way: weighted log-densities of shape
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
from typing import Any, Optional

import numpy as np

from .._numba import NUMBA_VARIABLE, compiled  # noqa: F401  (NUMBA_VARIABLE: the switch, for callers)
from ..stats import SuffStats
from ._config import get_config


def is_numpy(*arrays: Any) -> bool:
    """Whether every array is a NumPy array (memory maps included); ``None`` entries are skipped."""
    return all(array is None or isinstance(array, np.ndarray) for array in arrays)


def shifted(X: Any, shift: Optional[Any]) -> Any:
    """The rows ``X - shift`` (a copy), or ``X`` itself where ``shift`` is None."""
    return X if shift is None else X - shift


def mean_row(X: np.ndarray, weights: Optional[np.ndarray] = None, dtype: Optional[np.dtype] = None) -> np.ndarray:
    """The (weighted) mean row of ``X`` (n, D), summed in float64, in ``dtype`` (``X``'s by default).

    NumPy's ``X.mean(axis=0)`` adds the rows one after another in ``X``'s dtype
    (pairwise summation runs only along the contiguous axis): on many float32 rows far
    from the origin it can miss by several standard deviations, and ``weights @ X``
    too. einsum's float64 sum keeps the digits, at about the mean's cost.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    weights : ndarray of shape (n,), optional
    dtype : dtype, optional

    Returns
    -------
    ndarray of shape (D,)
    """
    if weights is None:
        total, count = np.einsum("ij->j", X, dtype=np.float64), X.shape[0]
    else:
        total, count = np.einsum("i,ij->j", weights, X, dtype=np.float64), np.sum(weights, dtype=np.float64)
    return (total / count).astype(X.dtype if dtype is None else dtype, copy=False)


def chunk_centre(
    X: np.ndarray, means: np.ndarray, shift: Optional[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The point about which the kernels centre each block of rows as they go: the
    chunk's mean row, or with a ``shift`` (the data's mean row, in EM's frame) that.

    Parameters
    ----------
    X : ndarray of shape (n, D)
        Rows as stored.
    means : ndarray of shape (K, D)
        In the frame of the parameters: that of ``X - shift``.
    shift : ndarray of shape (D,) or None

    Returns
    -------
    centre : ndarray of shape (D,)
        In ``X``'s frame and dtype (subtract it from the rows).
    centred_means : ndarray of shape (K, D)
    origin : ndarray of shape (D,)
        ``centre`` in the frame of the parameters (``centre - shift``: exact in
        float64 and small, so rounding it back to ``X``'s dtype costs nothing).
    """
    if shift is not None:
        # The data's mean row serves as well as the chunk's (the expanded paths centre on it
        # too), and costs nothing, where the chunk's own mean is a noticeable share of a
        # cheap E-step
        centre = np.asarray(shift).astype(X.dtype)
        origin = (centre.astype(np.float64) - shift).astype(X.dtype)
        return centre, means - origin, origin
    # X's own dtype (not mean_row): a centring point the kernels use consistently, whose
    # float32 error over a chunk stays far below the rows' spread, and summing in float64
    # would slow float32 E-steps for no gain
    centre = X.mean(axis=0)
    return centre, means - centre, centre


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
    with np.errstate(over="ignore"):  # a mean beyond the dtype's range: inf, not accurate
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


def block_rows(row_width: int, itemsize: int, budget: Optional[int] = None) -> int:
    """Rows per block so that a (rows, ``row_width``) temporary stays cache-sized
    (``budget`` bytes, by default :data:`BLOCK_BUDGET_BYTES`), or the configured
    ``block_rows`` (see :func:`gaussmix.estep.config_context`)."""
    configured = get_config().block_rows
    if configured is not None:  # (tests: many small blocks)
        return configured
    budget = BLOCK_BUDGET_BYTES if budget is None else budget
    rows = budget // max(1, row_width * itemsize)
    return int(min(MAX_BLOCK_ROWS, max(MIN_BLOCK_ROWS, rows)))


def balanced_rows(n_samples: int, largest: int, n_workers: int = 1) -> int:
    """Rows per chunk (or block), at most ``largest``, such that the ``n_samples`` rows make
    chunks of (nearly) equal size, as many as a multiple of ``n_workers``: no short last one."""
    workers = max(1, n_workers)
    n_chunks = -(-max(1, n_samples) // max(1, largest))
    n_chunks = -(-n_chunks // workers) * workers
    return int(max(1, -(-n_samples // n_chunks)))


def row_blocks(n_samples: int, rows: int):
    """``(start, stop)`` of consecutive row blocks covering ``n_samples`` rows."""
    return ((start, min(start + rows, n_samples)) for start in range(0, n_samples, rows))


def per_component_product(coefficients: np.ndarray, rows: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``coefficients @ rows.T``, one row per component: what the responsibilities read.

    float32 rows stored row by row (C-contiguous) take ``rows @ coefficients.T`` and
    a copy of its transpose (tile by tile where numba is installed): OpenBLAS's sgemm
    runs ``(K, W) @ (W, b)`` with a (b, W) row-major right operand up to twice as slowly
    as either the other order or a (W, b) row-major one (measured on its SkylakeX kernels
    only; see BENCHMARKS.md, "Measurements behind the code's thresholds"). Rows stored by
    column (``rows.T`` C-contiguous, as the outer products are) already take the fast
    kernel, and float64 runs both orders alike, so for them the copy would only cost.

    Parameters
    ----------
    coefficients : ndarray of shape (K, W)
    rows : ndarray of shape (b, W)
    out : ndarray of shape (K, b), optional
        C-contiguous, of the result's dtype.

    Returns
    -------
    ndarray of shape (K, b)
    """
    if rows.dtype != np.float32 or not rows.flags.c_contiguous:
        return np.matmul(coefficients, rows.T, out=out)
    by_row = rows @ coefficients.T
    if out is None:
        out = np.empty(by_row.shape[::-1], dtype=by_row.dtype)
    compiled = _compiled_kernels("layout")
    if compiled is not None:  # tile by tile: half the time of NumPy's transposing copy
        compiled.transpose_into(by_row, out)
    else:
        out[...] = by_row.T
    return out


class ResponsibilityTotals:
    """Running sums of :func:`weighted_responsibilities` over the row blocks of a chunk.

    Attributes
    ----------
    resp_weight : ndarray of shape (K,)
        In ``dtype`` (float64 by default).
    total_weight, loglik : float
    """

    def __init__(self, n_components: int, dtype: np.dtype = np.float64) -> None:
        self.resp_weight = np.zeros(n_components, dtype=dtype)
        self.total_weight = 0.0
        self.loglik = 0.0

    def add(
        self, log_prob: np.ndarray, sample_weight: Optional[np.ndarray], start: int, stop: int,
        offsets: Optional[np.ndarray], scale: float = 1.0,
    ) -> None:
        """Responsibilities of rows ``start:stop`` in place (``log_prob`` (K, b), read as
        ``scale * log_prob + offsets`` as in :func:`weighted_responsibilities`), and their sums."""
        weights = None if sample_weight is None else sample_weight[start:stop]
        resp_weight, total_weight, loglik = weighted_responsibilities(log_prob, weights, scale, offsets)
        self.resp_weight += resp_weight
        self.total_weight += total_weight
        self.loglik += loglik


class WhitenedAccumulator(ResponsibilityTotals):
    """Running E-step sums of one chunk for dense covariances, block by block.

    Keeps, per component, the responsibility weight, the weighted sum of the
    (centred) rows and the weighted scatter of the rows whitened about the
    *current* means, ``sum_n r_nk y_nk y_nk^T`` with ``y_nk = (x_n - mu_k) C_k``.
    :meth:`finish` maps the scatter back through ``C_k^{-1}`` once per chunk
    and moves it to the new means.
    """

    def __init__(self, n_components: int, n_features: int, dtype: np.dtype) -> None:
        super().__init__(n_components, dtype)
        self.row_sums = np.zeros((n_components, n_features), dtype=dtype)
        self.scatter = np.zeros((n_components, n_features, n_features), dtype=dtype)

    def add_whitened(
        self, log_prob: np.ndarray, sample_weight: Optional[np.ndarray], start: int, stop: int,
        X: np.ndarray, whitened: np.ndarray, scale: float = 1.0, offsets: Optional[np.ndarray] = None,
    ) -> None:
        """Fold in the block of rows ``start:stop``.

        Parameters
        ----------
        log_prob : ndarray of shape (K, b)
            Weighted log-densities of the block, up to ``scale`` and
            ``offsets`` (K,) as in :func:`weighted_responsibilities` (overwritten).
        sample_weight : ndarray of shape (n,) or None
            The whole chunk's weights.
        X : ndarray of shape (b, D)
            The block's rows (centred).
        whitened : ndarray of shape (b, K, D)
            ``(x_n - mu_k) C_k`` (overwritten).
        """
        self.add(log_prob, sample_weight, start, stop, offsets, scale)
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


def _compiled_kernels(job: str = "responsibilities") -> Optional[Any]:
    """The compiled kernels of one job, :mod:`gaussmix.estep._compiled_<job>`
    (``"responsibilities"``, ``"fused"``, ``"sparse"`` or ``"layout"``), when numba
    is installed and not turned off (see :mod:`gaussmix._numba`); else None."""
    return compiled(f"gaussmix.estep._compiled_{job}")


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
    divide, weight, row sums), in the dtype of ``log_prob`` (float32 ones in
    float32, with twice the vector lanes), and its exp is vectorised where
    NumPy's float64 exp is not (on machines without AVX-512).
    """
    compiled = _compiled_kernels()
    if compiled is not None and log_prob.flags.c_contiguous and log_prob.dtype in (np.float32, np.float64):
        return compiled.weighted_responsibilities(log_prob, sample_weight, scale, offsets)
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
