"""Diagonal covariance: axis-aligned ellipsoids, one per component (mclust VVI)."""

from __future__ import annotations

from typing import Any, Optional

from ..backends import get_namespace
from ..stats import WEIGHT_FLOOR, SuffStats
from .base import CovarianceModel, PriorTerms
from .full import _eye


class ElementwisePrecisionAlgebra:
    """Mixin: precisions, covariances and factors as arrays of variances, element by
    element (diagonal and spherical)."""

    def precisions(self, precisions_cholesky: Any) -> Any:
        return precisions_cholesky**2

    def covariances_from_precisions(self, precisions: Any) -> Any:
        return 1.0 / precisions

    def precision_cholesky_from_precisions(self, precisions: Any) -> Any:
        return get_namespace(precisions).sqrt(precisions)


class DiagCovariance(ElementwisePrecisionAlgebra, CovarianceModel):
    """Each component has its own diagonal covariance, stored as (K, D) variances."""

    independent_components = True

    name = "diag"
    compiled_m_step = "VVI"
    aliases = ("VVI",)
    full_scatter = False
    layout = "diag"
    # the mean's prior (1) and an inverse gamma (dof + 2) on every variance
    conjugate_prior = PriorTerms("diagonal", False, lambda dof, K, D: dof + 3)

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        weight = stats.resp_weight + WEIGHT_FLOOR
        return stats.scatter / weight[:, None] + reg_covar

    def precision_cholesky(self, covariances: Any, *, reg_covar: float = 0.0) -> Any:
        self._raise_if_collapsed(covariances, reg_covar)
        return 1.0 / get_namespace(covariances).sqrt(covariances)

    def mahalanobis(self, X: Any, means: Any, precisions_cholesky: Any) -> Any:
        xp = get_namespace(X, means)
        # Differences about each component's own mean (no shared frame to cancel in).
        whitened = (X[:, None, :] - means[None, :, :]) * precisions_cholesky[None, :, :]
        return xp.sum(whitened * whitened, axis=2)

    def log_det_precision_cholesky(self, precisions_cholesky: Any, n_features: int) -> Any:
        xp = get_namespace(precisions_cholesky)
        return xp.sum(xp.log(precisions_cholesky), axis=1)

    def feature_precisions(self, precisions_cholesky: Any, n_features: int) -> Any:
        """Inverse variances per component and feature, shape (K, D)."""
        return precisions_cholesky**2

    def dense(self, covariances: Any, n_components: int, n_features: int) -> Any:
        xp = get_namespace(covariances)
        eye = _eye(xp, n_features, covariances)
        return covariances[:, :, None] * eye[None, :, :]
