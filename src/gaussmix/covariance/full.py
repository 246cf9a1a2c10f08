"""Full covariance: each component has its own unrestricted covariance (mclust VVV)."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import numpy as np

from ..backends import backend_for, get_namespace
from ..exceptions import CollapsedComponentError
from ..stats import WEIGHT_FLOOR, SuffStats
from . import _expanded, _screened
from . import _numpy_kernels as kernels
from .base import CovarianceModel, held_by_frame, own_frame_columns


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

    def accumulate_chunk(self, X: Any, sample_weight: Any, params: Any) -> tuple[SuffStats, float]:
        """Batched E-step in two large products per block of rows.

        The log-densities and the moments come from the features
        ``[upper(x x^T), x]`` (:mod:`gaussmix.covariance._expanded`). Where
        that expansion would lose too many digits (tight clusters far apart
        in float32, correlations near 1), one whitening product for all
        components and one batched scatter run instead. In few dimensions
        (or with few components), with numba installed, a fused kernel runs
        (:mod:`gaussmix.covariance._numba_kernels`).

        See :meth:`CovarianceModel.accumulate_chunk`; other namespaces than NumPy
        take the generic path.
        """
        return self._accumulate_folding(X, sample_weight, params, None)

    def _accumulate_folding(self, X: Any, sample_weight: Any, params: Any, shift: Optional[Any]) -> tuple[SuffStats, float]:
        """:meth:`accumulate_chunk` on ``X - shift`` (on ``X`` where ``shift`` is None)."""
        # The fused, expanded and whitening paths all subtract the shift as they read the rows.
        factors = params.precisions_cholesky
        if not kernels.is_numpy(X, factors, shift):
            return super().accumulate_chunk(kernels.shifted(X, shift), sample_weight, params)
        n_samples, n_features = X.shape
        n_components = factors.shape[0]
        # C C^T and log det C in float64 whatever the dtype: with correlations near 1
        # C C^T has entries far larger than P's, and rounding them would spoil x^T P x.
        factors64 = factors.astype(np.float64, copy=False)
        log_det = np.log(np.diagonal(factors64, axis1=1, axis2=2)).sum(axis=1)
        log_weights = params.log_weights(np.float64)
        offsets = log_det + log_weights + kernels.gaussian_constant(n_features)
        fused = _fused_kernels(n_features, n_components)
        if fused is not None:
            return fused.full_accumulate(X, sample_weight, params.means, factors, offsets, shift)
        factor_inverse = np.linalg.inv(factors)
        if n_features <= MAX_EXPANDED_FEATURES and EXPANDED_FEATURES_PER_COMPONENT * n_components > n_features:
            # sigma_aa: C^{-T} C^{-1} = Sigma, so the squared column norms of C^{-1}
            deviations = np.sqrt(np.sum(factor_inverse * factor_inverse, axis=1))
            means64, precisions = params.means.astype(np.float64), self.precisions(factors64)
            if _screens(X, n_components):
                screened = _screened.screened_accumulate(
                    X, sample_weight, log_weights, means64, factors64, precisions, deviations, log_det, shift
                )
                if screened is not None:
                    return screened
            arguments = (
                sample_weight, log_weights, means64, precisions, deviations, log_det,
                _expanded.OuterProducts(n_features),
            )
            expanded = _expanded.expanded_accumulate(X, *arguments, shift=shift)
            if expanded is None and X.dtype != np.float64:
                # float32 products would lose too many digits; float64 products
                # still beat float32 whitening (BENCHMARKS.md: 1.4 s against 1.6 s an
                # iteration for the wide case, 0.08 s against 0.14 s for mid).
                expanded = _expanded.expanded_accumulate(X, *arguments, product_dtype=np.float64, shift=shift)
            if expanded is not None:
                return expanded
        centre, means, origin = kernels.chunk_centre(X, params.means, shift)
        if not held_by_frame(np.sum(np.abs(means) * np.sum(np.abs(factors), axis=2), axis=1)).all():
            # A mean far from the chunk: whitening in its frame would spoil the other components.
            return super().accumulate_chunk(kernels.shifted(X, shift), sample_weight, params)
        # (b, D) @ (D, K*D): every component's whitening in one product.
        stacked = factors.transpose(1, 0, 2).reshape(n_features, n_components * n_features)
        whitened_means = np.matmul(means[:, None, :], factors)[:, 0, :]
        accumulator = kernels.WhitenedAccumulator(n_components, n_features, X.dtype)
        rows = kernels.block_rows(n_components * n_features, X.dtype.itemsize)
        buffer = np.empty((min(rows, n_samples), n_features), dtype=X.dtype)
        for start, stop in kernels.row_blocks(n_samples, rows):
            centred = np.subtract(X[start:stop], centre, out=buffer[: stop - start])
            whitened = (centred @ stacked).reshape(stop - start, n_components, n_features)
            whitened -= whitened_means
            log_prob = np.einsum("nkd,nkd->kn", whitened, whitened)
            # log N = -|y|^2 / 2 + offsets, applied inside the responsibilities' passes
            accumulator.add_whitened(log_prob, sample_weight, start, stop, centred, whitened, -0.5, offsets)
        if X.dtype != np.float64 and _rounding_dominates(accumulator, factors, means):
            # Redo the chunk in float64 (rare: a component shrinking far below its last
            # covariance), with the statistics in X's dtype as always.
            float64_params = params.converted_like(np.zeros(1))  # (like a float64 NumPy array)
            stats, loglik = self._accumulate_folding(X.astype(np.float64), sample_weight, float64_params, shift)
            dtype = X.dtype
            return SuffStats(
                stats.resp_weight.astype(dtype), stats.means.astype(dtype), stats.scatter.astype(dtype),
                stats.total_weight,
            ), loglik
        # x - mu = y C^{-1}: C^{-1} is the upper Cholesky factor of the covariance.
        return accumulator.finish(factor_inverse, means, origin)

    def dense(self, covariances: Any, n_components: int, n_features: int) -> Any:
        return covariances


#: a float32 whitened scatter is redone in float64 where a component's new scatter, in its
#: old whitened coordinates, has an eigenvalue below this many times eps32 times the
#: trace of the scatter about its old mean (the rounding of that sum)
WHITENED_ROUNDING_MARGIN = 1e3


def _rounding_dominates(accumulator: Any, factors: np.ndarray, means: np.ndarray) -> bool:
    """Whether a float32 whitened scatter lost a direction of some component to rounding.

    The scatter is summed about the old means, in the old covariances' whitened
    coordinates ``y = (x - mu) C``, and moved to the new means afterwards: ``W_new = W - N
    ybar ybar^T``. Where a component shrinks far below its old covariance (in 64
    dimensions, a component of under a row's weight whose old variances were ~50 and new
    ones reg_covar), eps32 times ``trace W`` exceeds what ``W_new`` holds in some
    direction: the float32 scatter came out indefinite (-5.8e-5 against reg_covar N =
    4e-5, found by fuzzing) and the fit stopped with a collapsed component.

    Parameters
    ----------
    accumulator : WhitenedAccumulator
        After the chunk's blocks (float32 sums).
    factors : ndarray of shape (K, D, D)
    means : ndarray of shape (K, D)
        The old means, in the rows' centred frame.
    """
    resp_weight = accumulator.resp_weight.astype(np.float64)
    live = resp_weight >= WEIGHT_FLOOR
    if not np.any(live):
        return False
    scatter = accumulator.scatter.astype(np.float64)[live]
    weight = resp_weight[live]
    new_means = accumulator.row_sums.astype(np.float64)[live] / weight[:, None]
    moved = np.einsum("kd,kde->ke", new_means - means[live].astype(np.float64), factors[live].astype(np.float64))
    moved_scatter = scatter - weight[:, None, None] * (moved[:, :, None] * moved[:, None, :])
    lowest = np.linalg.eigvalsh(0.5 * (moved_scatter + np.swapaxes(moved_scatter, 1, 2)))[:, 0]
    lost = WHITENED_ROUNDING_MARGIN * float(np.finfo(np.float32).eps) * np.trace(scatter, axis1=1, axis2=2)
    return bool(np.any(lowest < lost))


#: the fused kernel (numba) runs up to this many features whatever K, and beyond
#: them where K <= D / 2 and K D <= :data:`MAX_FUSED_WORK`: its work grows as K D^2
#: at vector (not BLAS) speed. One chunk, one thread, float64, fused against the
#: expanded or whitening path, ns a row: D=2 K=5 36/74, D=4 K=16 138/180, D=8 K=16
#: 299/236, D=8 K=64 1092/555, D=8 K=4 101/149, D=16 K=8 529/625, D=16 K=16
#: 1121/656, D=20 K=8 672/523, D=24 K=2 294/669, D=32 K=4 823/1389, D=48 K=4 1706/1596
MAX_FUSED_FEATURES = 4
MAX_FUSED_WORK = 128
#: features up to which the expanded products run: their features grow as D^2 / 2 per row
#: (at D = 128 already 66 KiB a row in float64), the whitening's temporaries as K D
MAX_EXPANDED_FEATURES = 128
#: the expanded products run where K > D / 8: building the D^2 / 2 products of a row
#: costs about what D / 8 whitenings save (one chunk, one thread, float64, expanded
#: against whitening: D=64 K=32 1.75x, K=8 1.14x, K=4 0.61x; D=128 K=32 1.28x,
#: K=8 0.57x; D=32 K=4 0.90x, K=2 0.59x; D=12 K=2 1.64x; D=16 K=1 0.87x)
EXPANDED_FEATURES_PER_COMPONENT = 8


#: components from which float32 rows take the screened E-step (:mod:`gaussmix.covariance._screened`):
#: every row lists at least its own largest, 1/K of its pairs, and a block is screened
#: only where at most a quarter are candidates. At K = 4 every block gave way (after its
#: float32 product: 65 -> 90 ns a row at D = 5); from K = 8 on two candidates a row fit
MIN_SCREENED_COMPONENTS = int(2 / _screened.MAX_SCREENED_SHARE)


def _screens(X: np.ndarray, n_components: int) -> bool:
    """Whether a chunk takes the screened E-step: float32 rows, enough components, numba."""
    return X.dtype == np.float32 and n_components >= MIN_SCREENED_COMPONENTS and kernels._compiled_kernels() is not None


def _fused_kernels(n_features: int, n_components: int) -> Optional[ModuleType]:
    """The numba kernel module when it should run: few features (or few components for
    them), numba installed, not disabled (``GAUSSMIX_NUMBA=0``)."""
    few_components = 2 * n_components <= n_features and n_components * n_features <= MAX_FUSED_WORK
    return kernels._compiled_kernels() if n_features <= MAX_FUSED_FEATURES or few_components else None
