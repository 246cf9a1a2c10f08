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
from typing import Any, Optional

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


#: relative rounding error an expanded quadratic form may carry before the
#: kernels fall back to per-component differences (see :func:`expansion_is_accurate`)
EXPANSION_TOLERANCE = 1e-5


def expansion_is_accurate(whitened_means: np.ndarray) -> bool:
    """Whether ``|y|^2 - 2 y.b + |b|^2`` keeps enough digits for these means.

    Expanding a squared distance cancels about ``max_k |b_k|^2`` (the squared
    distance of the chunk's centre from each mean, in that component's standard
    deviations) times the working precision. In float64 that never matters; in
    float32 it does for tight clusters far apart, and then the generic
    per-component-difference path is used instead.

    Parameters
    ----------
    whitened_means : ndarray of shape (K, D)
        Component means relative to the chunk's origin, whitened by their own precision.
    """
    eps = float(np.finfo(whitened_means.dtype).eps)
    return eps * float(np.max(np.sum(whitened_means * whitened_means, axis=1))) <= EXPANSION_TOLERANCE


def gaussian_constant(n_features: int) -> float:
    """``-D/2 log(2 pi)``, the normalising constant of a D-dimensional Gaussian."""
    return -0.5 * n_features * math.log(2 * math.pi)


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
    # Four passes over (K, n): max, shift, exp, sum (the division is a fifth).
    row_max = log_prob.max(axis=0)
    row_max[~np.isfinite(row_max)] = 0
    log_prob -= row_max
    np.exp(log_prob, out=log_prob)
    total = log_prob.sum(axis=0)
    log_prob /= total
    return np.log(total) + row_max


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


def component_means(resp: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Responsibility weights (K,) and weighted means (K, D) (zero where the weight is)."""
    resp_weight = resp.sum(axis=1)
    safe = np.where(resp_weight > 0, resp_weight, 1)
    return resp_weight, (resp @ X) / safe[:, None]


def whitened_scatter(
    whitened: np.ndarray, resp: np.ndarray, factor_inverse: np.ndarray, shift: np.ndarray, resp_weight: np.ndarray
) -> np.ndarray:
    """Scatter matrices about the new means from rows whitened about the old ones.

    Parameters
    ----------
    whitened : ndarray of shape (n, K, D)
        ``(x_n - mu_k) C_k``; overwritten (scaled by ``sqrt(resp)``).
    resp : ndarray of shape (K, n)
        Sample-weighted responsibilities.
    factor_inverse : ndarray of shape (K, D, D) or (D, D)
        ``C_k^{-1}``, mapping whitened rows back: ``x - mu = y C^{-1}``.
    shift : ndarray of shape (K, D)
        New mean minus old mean, per component.
    resp_weight : ndarray of shape (K,)

    Returns
    -------
    scatter : ndarray of shape (K, D, D)
        ``sum_n r_nk (x_n - m_k)(x_n - m_k)^T``.
    """
    whitened *= np.sqrt(resp).T[:, :, None]
    # One batched product over components; NumPy uses a symmetric rank-k update
    # when both operands view the same buffer, halving the flops.
    by_component = whitened.transpose(1, 0, 2)
    scatter_whitened = np.matmul(by_component.transpose(0, 2, 1), by_component)
    scatter_old_means = np.swapaxes(factor_inverse, -1, -2) @ scatter_whitened @ factor_inverse
    # About the old means the scatter is larger by N_k (m_k - mu_k)(m_k - mu_k)^T;
    # the shift is one EM step, small, so this subtraction does not cancel.
    scatter = scatter_old_means - resp_weight[:, None, None] * (shift[:, :, None] * shift[:, None, :])
    return 0.5 * (scatter + np.swapaxes(scatter, -1, -2))


def suff_stats(resp_weight: np.ndarray, means: np.ndarray, scatter: np.ndarray, total_weight: float, origin: np.ndarray) -> SuffStats:
    """Statistics with the means moved back from the kernel's frame by ``origin``
    (means of empty components stay zero, as :class:`SuffStats` documents)."""
    means = np.where((resp_weight > 0)[:, None], means + origin, 0)
    return SuffStats(resp_weight, means, scatter, total_weight)


def diagonal_accumulate(
    X: np.ndarray,
    sample_weight: Optional[np.ndarray],
    log_weights: np.ndarray,
    means: np.ndarray,
    precisions: np.ndarray,
    log_det: np.ndarray,
) -> Optional[tuple[SuffStats, float]]:
    """E-step for axis-aligned covariances (diag, spherical) on one chunk.

    Both the log-densities and the statistics come from one product each with
    the features ``[x^2, x]`` of shape (n, 2D):
    ``log N = [x^2, x] . [-p/2, p mu] - p mu^2 / 2 + log det + const``.

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
        With (K, D) diagonal scatters.
    loglik : float
        ``None`` in place of both when :func:`expansion_is_accurate` says the
        expansion would lose too many digits (the caller takes the generic path).
    """
    n_features = X.shape[1]
    X, means, origin = centre_on_rows(X, means)
    if not expansion_is_accurate(means * np.sqrt(precisions)):
        return None
    features = np.concatenate([X * X, X], axis=1)
    coefficients = np.concatenate([-0.5 * precisions, precisions * means], axis=1)
    offsets = -0.5 * np.sum(precisions * means * means, axis=1) + log_det + log_weights + gaussian_constant(n_features)
    log_prob = coefficients @ features.T
    log_prob += offsets[:, None]
    log_density = responsibilities_in_place(log_prob)
    total_weight, loglik = weight_responsibilities(log_prob, log_density, sample_weight)
    moments = log_prob @ features  # (K, 2D): sum r x^2, sum r x
    resp_weight = log_prob.sum(axis=1)
    safe = np.where(resp_weight > 0, resp_weight, 1)
    new_means = moments[:, n_features:] / safe[:, None]
    # Centred on the mean of the means, so x^2 - m^2 keeps the digits a
    # component's spread needs; rounding may still leave a tiny negative.
    scatter = np.maximum(moments[:, :n_features] - resp_weight[:, None] * new_means * new_means, 0)
    return suff_stats(resp_weight, new_means, scatter, total_weight, origin), loglik
