"""Full covariance: each component has its own unrestricted covariance (mclust VVV)."""

from __future__ import annotations

from typing import Any, Optional

from ..backends import backend_for, get_namespace
from ..exceptions import CollapsedComponentError
from ..stats import WEIGHT_FLOOR, SuffStats
from .base import CovarianceModel, PriorTerms, held_by_frame, own_frame_columns


def _eye(xp: Any, n_features: int, like: Any) -> Any:
    return xp.eye(n_features, dtype=like.dtype, device=getattr(like, "device", None))


def dense_precision_cholesky(covariances: Any) -> Any:
    """Upper-triangular ``C`` with ``C C^T = inv(Sigma)`` for a (..., D, D) stack.

    Factorises the correlation matrix ``R = S^-1 Sigma S^-1`` (``S`` the standard
    deviations) and returns ``C = S^-1 inv(L_R)^T``: features on very different
    scales make ``Sigma`` ill-conditioned, but not ``R``, which keeps float32 accurate.

    Raises :class:`CollapsedComponentError` naming the stack indices that are
    not positive definite.
    """
    xp = get_namespace(covariances)
    backend = backend_for(xp)
    variances = xp.linalg.diagonal(covariances)
    positive = xp.all(variances > 0, axis=-1)
    safe = xp.where(variances > 0, variances, xp.ones_like(variances))
    inverse_scale = 1.0 / xp.sqrt(safe)
    correlation = covariances * inverse_scale[..., :, None] * inverse_scale[..., None, :]
    factors, ok = backend.cholesky_lower(correlation)
    ok = ok & positive
    if not bool(xp.all(ok)):
        bad = backend.to_numpy(xp.reshape(~ok, (-1,)))
        raise CollapsedComponentError([int(i) for i in bad.nonzero()[0]])
    return inverse_scale[..., :, None] * xp.matrix_transpose(backend.inverse_lower_triangular(factors))


def dense_factor_of_precisions(precisions: Any) -> Any:
    """Lower Cholesky factors of precision matrices (C C^T = P)."""
    xp = get_namespace(precisions)
    factors, ok = backend_for(xp).cholesky_lower(precisions)
    if not bool(xp.all(ok)):
        raise ValueError("precisions must be symmetric positive definite")
    return factors


def _whitened_norms(centred: Any, factor: Any) -> Any:
    """``|x C|^2`` of each row of ``centred`` (n, D) for one factor ``C`` (D, D); shape (n,)."""
    xp = get_namespace(centred)
    whitened = centred @ factor
    return xp.sum(whitened * whitened, axis=1)


def own_frame_mahalanobis(X: Any, means: Any, precisions_cholesky: Any) -> Any:
    """Squared Mahalanobis distances (n, K) as ``(x - mu_k) C_k``, every component about its
    own mean: one batched (K, n, D) @ (K, D, D) product (or with a shared (D, D) factor)."""
    xp = get_namespace(X, means)
    whitened = (X[None, :, :] - means[:, None, :]) @ precisions_cholesky
    return xp.sum(whitened * whitened, axis=2).T


def _shared_frame_mahalanobis(X: Any, means: Any, precisions_cholesky: Any) -> Any:
    """Squared Mahalanobis distances (n, K) as ``x C_k - mu_k C_k``: every component's
    whitening in one (n, D) @ (D, K D) product (rows and means in one centred frame)."""
    xp = get_namespace(X, means)
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    stacked = xp.reshape(xp.permute_dims(precisions_cholesky, (1, 0, 2)), (n_features, n_components * n_features))
    whitened = xp.reshape(X @ stacked, (n_samples, n_components, n_features))
    whitened_means = (means[:, None, :] @ precisions_cholesky)[:, 0, :]
    whitened = whitened - whitened_means[None, :, :]
    return xp.sum(whitened * whitened, axis=2)


class DensePrecisionAlgebra:
    """Mixin: precisions, covariances and factors as (..., D, D) matrices (full and tied)."""

    def precisions(self, precisions_cholesky: Any) -> Any:
        xp = get_namespace(precisions_cholesky)
        return precisions_cholesky @ xp.matrix_transpose(precisions_cholesky)

    def covariances_from_precisions(self, precisions: Any) -> Any:
        xp = get_namespace(precisions)
        return xp.linalg.inv(precisions)

    def precision_cholesky_from_precisions(self, precisions: Any) -> Any:
        return dense_factor_of_precisions(precisions)


class FullCovariance(DensePrecisionAlgebra, CovarianceModel):
    """Each component k has its own D x D covariance."""

    independent_components = True

    name = "full"
    compiled_m_step = "VVV"
    aliases = ("VVV",)
    full_scatter = True
    layout = "full"
    # the mean's prior (1) and each covariance's inverse-Wishart (dof + D + 1)
    conjugate_prior = PriorTerms("matrix", False, lambda dof, K, D: dof + D + 2)

    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        return (n_components, n_features, n_features)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features * (n_features + 1) // 2

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        weight = stats.resp_weight + WEIGHT_FLOOR
        covariances = stats.scatter / weight[:, None, None]
        return covariances + reg_covar * _eye(xp, stats.n_features, covariances)

    def precision_cholesky(self, covariances: Any, *, reg_covar: float = 0.0) -> Any:
        self._raise_if_collapsed(get_namespace(covariances).linalg.diagonal(covariances), reg_covar)
        return dense_precision_cholesky(covariances)

    def mahalanobis(self, X: Any, means: Any, precisions_cholesky: Any) -> Any:
        xp = get_namespace(X, means)
        centred_X, centred_means = self._centre(X, means)
        spans = xp.sum(xp.abs(centred_means) * xp.sum(xp.abs(precisions_cholesky), axis=2), axis=1)
        held = held_by_frame(spans)
        if held is None:
            return own_frame_mahalanobis(X, means, precisions_cholesky)
        if held.all():
            return _shared_frame_mahalanobis(centred_X, centred_means, precisions_cholesky)
        # Components far from the others: each of those about its own mean (K products).
        return own_frame_columns(
            xp, held, lambda: _shared_frame_mahalanobis(centred_X, centred_means, precisions_cholesky),
            lambda k: _whitened_norms(X - means[k][None, :], precisions_cholesky[k]),
        )

    def log_det_precision_cholesky(self, precisions_cholesky: Any, n_features: int) -> Any:
        xp = get_namespace(precisions_cholesky)
        return xp.sum(xp.log(xp.linalg.diagonal(precisions_cholesky)), axis=-1)

    def dense(self, covariances: Any, n_components: int, n_features: int) -> Any:
        return covariances
