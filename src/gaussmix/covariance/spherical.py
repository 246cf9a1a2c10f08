"""Spherical covariance: one variance per component (mclust VII)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..backends import get_namespace
from ..stats import WEIGHT_FLOOR, SuffStats
from .base import CovarianceModel, PriorTerms
from .diag import ElementwisePrecisionAlgebra
from .full import _eye


class SphericalCovariance(ElementwisePrecisionAlgebra, CovarianceModel):
    """Each component has a single variance, stored as a (K,) vector."""

    independent_components = True

    name = "spherical"
    compiled_m_step = "VII"
    #: mclust's univariate "V" (variable variances) is VII on one feature
    aliases = ("VII", "V")
    full_scatter = False
    layout = "spherical"
    # the mean's prior (1 per dimension) and an inverse gamma (dof + 2) on the variance
    conjugate_prior = PriorTerms("trace", False, lambda dof, K, D: 1 + (dof + 2) / D)

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components,)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        weight = stats.resp_weight + WEIGHT_FLOOR
        return stats.traces() / (stats.n_features * weight) + reg_covar

    def precision_cholesky(self, covariances: Any, *, reg_covar: float = 0.0) -> Any:
        self._raise_if_collapsed(covariances[:, None], reg_covar)
        return 1.0 / get_namespace(covariances).sqrt(covariances)

    def mahalanobis(self, X: Any, means: Any, precisions_cholesky: Any) -> Any:
        xp = get_namespace(X, means)
        # Differences about each component's own mean (no shared frame to cancel in).
        diff = X[:, None, :] - means[None, :, :]
        return xp.sum(diff * diff, axis=2) * (precisions_cholesky**2)[None, :]

    def log_det_precision_cholesky(self, precisions_cholesky: Any, n_features: int) -> Any:
        return n_features * get_namespace(precisions_cholesky).log(precisions_cholesky)

    def feature_precisions(self, precisions_cholesky: Any, n_features: int) -> Any:
        """Inverse variances per component and feature, shape (K, D)."""
        return np.repeat((precisions_cholesky**2)[:, None], n_features, axis=1)

    def dense(self, covariances: Any, n_components: int, n_features: int) -> Any:
        xp = get_namespace(covariances)
        eye = _eye(xp, n_features, covariances)
        return covariances[:, None, None] * eye[None, :, :]
