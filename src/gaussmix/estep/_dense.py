"""Terms of dense (full-covariance) parameters that several engines start from."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _kernels as kernels


def log_det_and_offsets(params: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log det C_k``, ``log pi_k`` and their sum with the Gaussian constant, each (K,), float64.

    In float64 whatever the parameters' dtype: with correlations near 1, ``C C^T``
    has entries far larger than ``P``'s, and rounding them would spoil ``x^T P x``.
    """
    factors64 = params.precisions_cholesky.astype(np.float64, copy=False)
    log_det = np.log(np.diagonal(factors64, axis1=1, axis2=2)).sum(axis=1)
    log_weights = params.log_weights(np.float64)
    return log_det, log_weights, log_det + log_weights + kernels.gaussian_constant(params.means.shape[1])


def deviations(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``C^{-1}`` (K, D, D) and the standard deviations sigma_ka (K, D) of upper factors ``C``:
    ``C^{-T} C^{-1} = Sigma``, so the squared column norms of ``C^{-1}``."""
    factor_inverse = np.linalg.inv(factors)
    return factor_inverse, np.sqrt(np.sum(factor_inverse * factor_inverse, axis=1))
