"""Tied covariance: one covariance matrix shared by all components (mclust EEE)."""

from __future__ import annotations

from typing import Any, Optional

from ..backends import get_namespace
from ..stats import SuffStats
from .base import CovarianceModel
from .full import _eye, _tiny, dense_factor_of_precisions, dense_precision_cholesky


class TiedCovariance(CovarianceModel):
    """All components share one D x D covariance."""

    name = "tied"
    aliases = ("EEE",)
    full_scatter = True

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_features, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        total = xp.sum(stats.resp_weight) + 10 * stats.n_components * _tiny(xp, stats.scatter)
        covariance = xp.sum(stats.scatter, axis=0) / total
        return covariance + reg_covar * _eye(xp, stats.n_features, covariance)

    def precision_cholesky(self, covariances: Any) -> Any:
        return dense_precision_cholesky(covariances)

    def precisions(self, precisions_cholesky: Any) -> Any:
        xp = get_namespace(precisions_cholesky)
        return precisions_cholesky @ xp.matrix_transpose(precisions_cholesky)

    def covariances_from_precisions(self, precisions: Any) -> Any:
        xp = get_namespace(precisions)
        return xp.linalg.inv(precisions)

    def precision_cholesky_from_precisions(self, precisions: Any) -> Any:
        return dense_factor_of_precisions(precisions)

    def mahalanobis(self, X: Any, means: Any, precisions_cholesky: Any) -> Any:
        xp = get_namespace(X, means)
        X, means = self._centre(X, means)
        whitened = (X @ precisions_cholesky)[:, None, :] - (means @ precisions_cholesky)[None, :, :]
        return xp.sum(whitened * whitened, axis=2)

    def log_det_precision_cholesky(self, precisions_cholesky: Any, n_features: int) -> Any:
        xp = get_namespace(precisions_cholesky)
        return xp.sum(xp.log(xp.linalg.diagonal(precisions_cholesky)))

    def dense(self, covariances: Any, n_components: int, n_features: int) -> Any:
        xp = get_namespace(covariances)
        return xp.broadcast_to(covariances, (n_components, n_features, n_features))
