"""Optional fused E-step for full covariances in few dimensions (needs numba).

At small D no matrix product is big enough to pay for a BLAS call, and the
NumPy path is bound by its passes over (n, K) temporaries. This kernel makes
one pass per row: whitening against every component, logsumexp,
responsibilities and the statistics, all in registers. It is compiled on first
use (and cached on disk); without numba (``pip install gaussmix[fast]``) the
NumPy path runs. Importing this module imports numba: do it lazily.

The statistics are summed in float64 whatever the input dtype, about the
current means (so nothing cancels), and moved to the new means at the end.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..stats import SuffStats

try:
    import numba
except ImportError:  # the optional extra is not installed: the NumPy path runs
    numba = None


def _full_estep(X, sample_weight, means, factors, offsets, upper):  # pragma: no cover - compiled
    """Sums of one chunk: weights (K,), row sums (K, D), lower-triangular scatter
    about ``means`` (K, D, D), total weight and log-likelihood (all float64).

    ``X`` may be float32 or float64 (compiled for each; float32 rows are
    widened one value at a time, never copied). ``upper`` says whether every
    factor is upper triangular (then only its upper triangle is read),
    otherwise they are used whole."""
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    resp_weight = np.zeros(n_components)
    row_sums = np.zeros((n_components, n_features))
    scatter = np.zeros((n_components, n_features, n_features))
    log_prob = np.empty(n_components)
    centred = np.empty((n_components, n_features))
    total_weight = 0.0
    loglik = 0.0
    for i in range(n_samples):
        weight = sample_weight[i]
        for k in range(n_components):
            for a in range(n_features):
                centred[k, a] = X[i, a] - means[k, a]
            maha = 0.0
            for b in range(n_features):
                # y_b = sum_a d_a C[a, b]; C is upper triangular when estimated
                # but may be lower when it factors user-given precisions.
                value = 0.0
                for a in range(b + 1 if upper else n_features):
                    value += centred[k, a] * factors[k, a, b]
                maha += value * value
            log_prob[k] = offsets[k] - 0.5 * maha
        largest = log_prob[0]
        for k in range(1, n_components):
            largest = max(largest, log_prob[k])
        total = 0.0
        for k in range(n_components):
            log_prob[k] = math.exp(log_prob[k] - largest)
            total += log_prob[k]
        total_weight += weight
        loglik += weight * (largest + math.log(total))
        for k in range(n_components):
            resp = weight * log_prob[k] / total
            resp_weight[k] += resp
            for a in range(n_features):
                row_sums[k, a] += resp * X[i, a]
                scaled = resp * centred[k, a]
                for b in range(a + 1):
                    scatter[k, a, b] += scaled * centred[k, b]
    return resp_weight, row_sums, scatter, total_weight, loglik



_compiled_full_estep = None if numba is None else numba.njit(nogil=True, cache=True)(_full_estep)


def full_accumulate(
    X: np.ndarray, sample_weight: Optional[np.ndarray], means: np.ndarray, factors: np.ndarray, offsets: np.ndarray
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

    Returns
    -------
    stats : SuffStats
    loglik : float
    """
    dtype = X.dtype
    weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    means, factors, offsets = (np.ascontiguousarray(a, dtype=np.float64) for a in (means, factors, offsets))
    upper = bool(np.all(np.tril(factors, -1) == 0))
    resp_weight, row_sums, scatter, total_weight, loglik = _compiled_full_estep(
        np.ascontiguousarray(X), weights, means, factors, offsets, upper
    )
    safe = np.where(resp_weight > 0, resp_weight, 1.0)
    new_means = row_sums / safe[:, None]
    shift = new_means - means
    # Lower triangle about the old means -> full matrix about the new means.
    scatter = scatter + np.swapaxes(np.tril(scatter, -1), 1, 2)
    scatter -= resp_weight[:, None, None] * shift[:, :, None] * shift[:, None, :]
    empty = resp_weight == 0
    scatter[empty] = 0
    new_means[empty] = 0
    stats = SuffStats(resp_weight.astype(dtype), new_means.astype(dtype), scatter.astype(dtype), float(total_weight))
    return stats, float(loglik)
