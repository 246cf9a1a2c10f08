"""E-steps on expanded quadratic features: two matrix products per block of rows.

See :mod:`gaussmix.estep._features` for the features and what the expansion
costs in digits. The log-densities are expanded only where
:func:`~gaussmix.estep._features.rounding_scale` allows (else the engine
declines and the next one runs); float32 moments are checked afterwards, and
redone in float64 where they would have lost too much.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..stats import SuffStats
from . import _kernels as kernels
from . import _sparse_moments as sparsity
from ._features import (
    OuterProducts, QuadraticFeatures, SquaredNorm, Squares, moments_tolerance, rounding_scale, summing_dtype,
)
from ._dense import deviations as dense_deviations
from ._dense import log_det_and_offsets
from .engine import Engine, Problem

def expanded_accumulate(
    X: np.ndarray,
    sample_weight: Optional[np.ndarray],
    log_weights: np.ndarray,
    means: np.ndarray,
    precisions: np.ndarray,
    deviations: np.ndarray,
    log_det: np.ndarray,
    features: QuadraticFeatures,
    product_dtype: Optional[np.dtype] = None,
    shift: Optional[np.ndarray] = None,
    always_sparse: bool = False,
) -> Optional[tuple[SuffStats, float]]:
    """E-step on one chunk through the features ``[q(x), x]``.

    Parameters
    ----------
    X : ndarray of shape (n, D)
        The rows, or with ``shift`` the rows as stored.
    sample_weight : ndarray of shape (n,) or None
    log_weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    precisions : ndarray
        (K, D) per-feature precisions or (K, D, D) precision matrices, as ``features`` takes them.
    deviations : ndarray of shape (K, D)
        Standard deviations per component and feature (for :func:`rounding_scale`).
    log_det : ndarray of shape (K,)
        ``log det C_k`` (half the log-determinant of the precision).
    features : QuadraticFeatures
    product_dtype : dtype, optional
        Of the features and the log-density product; ``X``'s by default (the
        statistics are in ``X``'s dtype either way). float32 rows with float64
        products are widened as the features are built, never copied.
    shift : ndarray of shape (D,), optional
        The E-step is on the rows ``X - shift`` (the parameters and statistics
        are in that frame), and the features are built about ``shift``.
        Without it they are built about the chunk's mean row.
    always_sparse : bool, default=False
        Try the sparse moments on every block, not only where the moments product
        is large enough to pay for them (see :func:`gaussmix.estep._sparse_moments.sparse_moments`).

    Returns
    -------
    stats : SuffStats
    loglik : float
        ``None`` in place of both where the expansion would lose too many
        digits (the engine then declines the chunk).
    """
    n_features = X.shape[1]
    product_dtype = X.dtype if product_dtype is None else np.dtype(product_dtype)
    eps = float(np.finfo(product_dtype).eps)
    # Each block is centred as its features are built: no centred copy of the
    # whole chunk. ``origin`` is where the features are centred, in the frame of
    # the parameters: the chunk's mean row, or with a shift (itself the data's
    # mean row) that frame's own origin.
    if shift is None:
        origin = kernels.mean_row(X)
        feature_origin = origin.astype(product_dtype)
    else:
        origin = np.zeros(n_features, dtype=X.dtype)
        feature_origin = np.asarray(shift, dtype=product_dtype)
    centred_means = means - origin
    lost = eps * np.max(rounding_scale(features, precisions, centred_means, deviations))
    if lost > kernels.EXPANSION_TOLERANCE * (1 + n_features):
        return None
    # Sum the moments in float64 right away where the current means predict that
    # float32 moments would fail the check below.
    moments_dtype = summing_dtype(product_dtype, lost, n_features)
    linear = features.times(precisions, centred_means)
    coefficients = np.concatenate([features.quadratic_coefficients(precisions), linear], axis=1)
    offsets = -0.5 * np.sum(linear * centred_means, axis=1) + log_det + log_weights
    offsets = offsets + kernels.gaussian_constant(n_features)
    n_components, n_samples = means.shape[0], X.shape[0]
    # responsibilities are weighted: a component's floor is its share of a mean row's weight
    mean_row_weight = 1.0 if sample_weight is None else float(np.mean(sample_weight))
    absent = sparsity.ABSENT_SHARE * np.exp(log_weights)
    may_truncate = True
    while True:
        sparse = sparsity.sparse_moments(features, n_components, n_samples, moments_dtype, always_sparse) if may_truncate else None
        if sparse is not None:
            sparse.floors = absent * mean_row_weight
        resp_weight, moments, total_weight, loglik, dropped = _moments(
            X, sample_weight, feature_origin, coefficients.astype(product_dtype), offsets, features, sparse,
            moments_dtype,
        )
        safe = np.where(resp_weight > 0, resp_weight, 1)
        new_means = moments[:, features.n_squares:] / safe[:, None]
        if sparse is not None and not sparsity.truncation_is_negligible(
            features, precisions, deviations, resp_weight, new_means, dropped, absent * total_weight
        ):
            may_truncate = False
            continue
        # Relative to the covariances, rounding the moments costs eps * rounding_scale.
        lost_in_moments = np.finfo(moments_dtype).eps * rounding_scale(features, precisions, new_means, deviations)
        if np.max(lost_in_moments, initial=0.0, where=resp_weight > 0) <= moments_tolerance(n_features):
            break
        if moments_dtype == np.float64:
            return None
        moments_dtype = np.dtype(np.float64)
    scatter = features.scatter(moments[:, : features.n_squares], resp_weight, new_means)
    scatter[resp_weight == 0] = 0
    dtype = X.dtype
    stats = kernels.suff_stats(
        resp_weight.astype(dtype), new_means.astype(dtype), scatter.astype(dtype), total_weight, origin
    )
    return stats, loglik


def _moments(
    X: np.ndarray,
    sample_weight: Optional[np.ndarray],
    origin: np.ndarray,
    coefficients: np.ndarray,
    offsets: np.ndarray,
    features: QuadraticFeatures,
    sparse: Optional[sparsity.SparseMoments],
    moments_dtype: np.dtype,
) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray]:
    """Block by block: log-densities ``coefficients @ f(x)`` in ``coefficients``' dtype (the
    features are built in it, about ``origin``), responsibilities, and the moments
    ``sum_n r_nk f(x_n)`` from a product in ``moments_dtype``, summed in float64.

    With ``sparse``, blocks where few responsibilities are non-negligible (see
    :data:`~gaussmix.estep._sparse_moments.TRUNCATION_THRESHOLD`) are summed over those only (see
    :class:`~gaussmix.estep._sparse_moments.SparseMoments`).

    Returns
    -------
    resp_weight : ndarray of shape (K,)
    moments : ndarray of shape (K, W)
    total_weight, loglik : float
    dropped : ndarray of shape (2, K)
        Per component, the responsibilities left out and their sum weighted by
        ``|x - origin|^2`` (zeros without ``sparse``).
    """
    n_samples = X.shape[0]
    n_components = coefficients.shape[0]
    moments = np.zeros((n_components, features.width))
    totals = kernels.ResponsibilityTotals(n_components)
    # The features are the widest temporary; two of the base budget measured best
    # (each product then has a few hundred to a few thousand rows).
    product_dtype = coefficients.dtype
    rows = kernels.block_rows(features.width + n_components, product_dtype.itemsize, 2 * kernels.BLOCK_BUDGET_BYTES)
    rows = min(rows, n_samples)
    buffer = features.allocate(rows, product_dtype)
    wide_buffer = features.allocate(rows, moments_dtype) if moments_dtype != product_dtype else None
    wide_origin = origin.astype(moments_dtype)
    dropped = np.zeros((2, n_components))
    origin64 = origin.astype(np.float64)
    for start, stop in kernels.row_blocks(n_samples, rows):
        block = features.view(buffer, stop - start)
        features.fill(X[start:stop], origin, block)
        log_prob = kernels.per_component_product(coefficients, block)
        totals.add(log_prob, sample_weight, start, stop, offsets)
        # float32 features are of no use to float64 sums: the sparse moments then read the rows
        float64_features = block if block.dtype == np.float64 else None
        taken = sparse is not None and sparse.add_block(
            log_prob, float64_features, X, origin64, start, stop, moments, dropped
        )
        if taken:
            continue
        if wide_buffer is not None:
            # float64 moments of float32 rows: the features rebuilt, the rows widened as they are read
            block = features.view(wide_buffer, stop - start)
            features.fill(X[start:stop], wide_origin, block)
        moments += log_prob.astype(block.dtype, copy=False) @ block
    if sparse is not None:
        sparse.finish(X, origin64, moments)
    return totals.resp_weight, moments, totals.total_weight, totals.loglik, dropped


#: features up to which the automatic choice takes the expanded products for dense
#: precisions: their features grow as D^2 / 2 per row (at D = 128 already 66 KiB a row
#: in float64), the whitening's temporaries as K D
MAX_EXPANDED_FEATURES = 128
#: ... and only where K > D / 8: building the D^2 / 2 products of a row costs about
#: what D / 8 whitenings save (see BENCHMARKS.md, "Measurements behind the code's thresholds")
EXPANDED_FEATURES_PER_COMPONENT = 8


def dense_expansion_pays(problem: Problem) -> bool:
    """Whether the expanded products beat the whitening for dense precisions."""
    n_features = problem.n_features
    return n_features <= MAX_EXPANDED_FEATURES and EXPANDED_FEATURES_PER_COMPONENT * problem.n_components > n_features


class ExpandedEngine(Engine):
    """Full, diagonal and spherical precisions, through ``[upper(x x^T), x]``, ``[x^2, x]``
    or ``[|x|^2, x]``; the sparse moments where the moments product pays for them."""

    name = "expanded"
    #: whether every block tries the sparse moments (:class:`gaussmix.estep.sparse.SparseEngine`)
    always_sparse = False

    def can_run(self, problem: Problem) -> bool:
        return problem.numpy and problem.layout in ("full", "diag", "spherical")

    def preferred(self, problem: Problem) -> bool:
        return self.can_run(problem) and (problem.layout != "full" or dense_expansion_pays(problem))

    def accumulate(
        self, X: Any, sample_weight: Optional[Any], params: Any, shift: Optional[Any] = None
    ) -> Optional[tuple[SuffStats, float]]:
        if params.covariance.layout == "full":
            return self._dense(X, sample_weight, params, shift)
        return self._axis_aligned(X, sample_weight, params, shift)

    def _dense(
        self, X: np.ndarray, sample_weight: Optional[np.ndarray], params: Any, shift: Optional[np.ndarray]
    ) -> Optional[tuple[SuffStats, float]]:
        factors = params.precisions_cholesky
        log_det, log_weights, _ = log_det_and_offsets(params)
        _, deviations = dense_deviations(factors)
        factors64 = factors.astype(np.float64, copy=False)
        means64, precisions = params.means.astype(np.float64), params.covariance.precisions(factors64)
        arguments = (
            sample_weight, log_weights, means64, precisions, deviations, log_det, OuterProducts(X.shape[1]),
        )
        expanded = expanded_accumulate(X, *arguments, shift=shift, always_sparse=self.always_sparse)
        if expanded is None and X.dtype != np.float64:
            # float32 products would lose too many digits; float64 products still beat
            # float32 whitening (see BENCHMARKS.md, "Measurements behind the code's thresholds")
            expanded = expanded_accumulate(
                X, *arguments, product_dtype=np.float64, shift=shift, always_sparse=self.always_sparse
            )
        return expanded

    def _axis_aligned(
        self, X: np.ndarray, sample_weight: Optional[np.ndarray], params: Any, shift: Optional[np.ndarray]
    ) -> Optional[tuple[SuffStats, float]]:
        # One product with [x^2, x] each way; spherical precisions use [|x|^2, x] and keep (K, 1) traces.
        model = params.covariance
        precisions_cholesky = params.precisions_cholesky
        n_features = X.shape[1]
        precisions = model.feature_precisions(precisions_cholesky, n_features)
        features = SquaredNorm(n_features) if model.layout == "spherical" else Squares(n_features)
        return expanded_accumulate(
            X,
            sample_weight,
            params.log_weights(),
            params.means,
            precisions,
            1.0 / np.sqrt(precisions),
            model.log_det_precision_cholesky(precisions_cholesky, n_features),
            features,
            shift=shift,
            always_sparse=self.always_sparse,
        )


ENGINE = ExpandedEngine()
