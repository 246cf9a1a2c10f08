"""Tied covariance: one covariance matrix shared by all components (mclust EEE)."""

from __future__ import annotations

from typing import Any, Optional

from ..backends import get_namespace
from ..stats import WEIGHT_FLOOR, SuffStats
from .base import CovarianceModel, PriorTerms, held_by_frame, own_frame_columns
from .full import DensePrecisionAlgebra, _eye, dense_precision_cholesky, own_frame_mahalanobis


class TiedCovariance(DensePrecisionAlgebra, CovarianceModel):
    """All components share one D x D covariance."""

    name = "tied"
    compiled_m_step = "EEE"
    aliases = ("EEE",)
    full_scatter = True
    layout = "tied"
    # each mean's prior (1), and one inverse-Wishart (dof + D + 1) shared by the K components
    conjugate_prior = PriorTerms("matrix", True, lambda dof, K, D: 1 + (dof + D + 1) / K)

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_features, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        total = xp.sum(stats.resp_weight) + stats.n_components * WEIGHT_FLOOR
        covariance = xp.sum(stats.scatter, axis=0) / total
        return covariance + reg_covar * _eye(xp, stats.n_features, covariance)

    def precision_cholesky(self, covariances: Any, *, reg_covar: float = 0.0) -> Any:
        # one covariance pooled over every row: only its factorisation can fail
        return dense_precision_cholesky(covariances)

    def mahalanobis(self, X: Any, means: Any, precisions_cholesky: Any) -> Any:
        xp = get_namespace(X, means)
        centred_X, centred_means = self._centre(X, means)
        held = held_by_frame(xp.sum(xp.abs(centred_means) * xp.sum(xp.abs(precisions_cholesky), axis=1), axis=1))
        if held is None:
            return own_frame_mahalanobis(X, means, precisions_cholesky)

        def shared() -> Any:
            # one whitening of the rows for every component
            whitened = (centred_X @ precisions_cholesky)[:, None, :] - (centred_means @ precisions_cholesky)[None, :, :]
            return xp.sum(whitened * whitened, axis=2)

        if held.all():
            return shared()
        # Components far from the others: each of those about its own mean (one whitening each).
        def own(k: int) -> Any:
            whitened = (X - means[k][None, :]) @ precisions_cholesky
            return xp.sum(whitened * whitened, axis=1)

        return own_frame_columns(xp, held, shared, own)

    def log_det_precision_cholesky(self, precisions_cholesky: Any, n_features: int) -> Any:
        xp = get_namespace(precisions_cholesky)
        return xp.sum(xp.log(xp.linalg.diagonal(precisions_cholesky)))

    def dense(self, covariances: Any, n_components: int, n_features: int) -> Any:
        xp = get_namespace(covariances)
        return xp.broadcast_to(covariances, (n_components, n_features, n_features))
