"""The screened E-step: float32 rows of dense-precision mixtures at float32 speed, float64 accuracy.

The expanded log-densities (:mod:`gaussmix.estep.expanded`) are one
matrix product on the features ``[upper(x x^T), x]``; in float32 that
product runs twice as fast as in float64, but its result loses about eps32
times the terms it cancels (orders of magnitude more than scikit-learn's
float32 whitening on 64-dimensional clusters). That is far
too much for responsibilities, and far too little to matter for the question
*which* components a row's responsibilities are non-negligible for: with
clusters apart, a row has one or two of K.

So, per block of rows: the float32 product gives approximate log-densities;
the compiled kernel (:mod:`gaussmix.estep._compiled_screened`) keeps the
(row, component) pairs within a gap of each component's largest relative
responsibility in the block (the sparse moments' threshold, a margin
:data:`SCREENING_MARGIN`, and twice the float32 error's estimate
:func:`screening_error`), computes those exactly in float64 (a gathered
whitening per component), normalises them per row and sums them about the
current means. Where too many pairs are candidates (components still
overlapping, early iterations), where the error's estimate passes
:data:`MAX_SCREENING_ERROR`, or where the bound on what was left out is not
negligible, the engine declines the chunk: the float64 expanded products run it.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..stats import SuffStats
from . import _kernels as kernels
from . import _sparse_moments as sparsity
from ._config import get_config
from ._dense import deviations as dense_deviations
from ._dense import log_det_and_offsets
from ._features import OuterProducts
from .engine import Engine, Problem
from .expanded import dense_expansion_pays

#: pairs whose approximate log-responsibility, relative to their component's largest in
#: the block, is below it by more than this are left out: the sparse moments' threshold
#: (2^-100) and a margin of 8 (e^-8) for the float32 log-densities' error, itself bounded
#: by :data:`MAX_SCREENING_ERROR` (and added twice more, see :func:`screened_accumulate`)
SCREENING_MARGIN = 8.0
#: the float32 log-densities' estimated error (eps32 times the largest expanded form,
#: see :func:`screening_error`) up to which the screening runs. The estimate is a worst
#: case, and it only costs speed, never accuracy: the gap grows by twice it, so with it
#: more pairs are candidates, until a block has too many and the chunk gives way after
#: its float32 product (see BENCHMARKS.md, "Measurements behind the code's thresholds")
MAX_SCREENING_ERROR = 4096.0
#: how far into its tails (in standard deviations, every coordinate at once) a row is
#: assumed to lie for :func:`screening_error`
TAIL_DEVIATIONS = 4.0
#: blocks where more than this share of the (row, component) pairs are candidates are
#: not screened: the chunk goes to the float64 products (each pair costs ~2 D^2
#: multiply-adds at small-product speed, against K D^2 a row for the products)
MAX_SCREENED_SHARE = 0.25
#: rows of one screened block: the kernel's per-component gathers and products are as
#: long as a block's candidates for that component (~rows / K)
SCREENED_BLOCK_ROWS = 4096


def max_pairs(n_components: int, n_rows: int) -> int:
    """The most candidate pairs a screened block of ``n_rows`` rows may have: the
    :data:`MAX_SCREENED_SHARE` of its pairs, and each component's own largest (listed
    whatever its size; without them a block of a few rows, as a chunk's last, always
    had too many)."""
    return int(MAX_SCREENED_SHARE * n_components * n_rows) + n_components


def screening_error(precisions: np.ndarray, centred_means: np.ndarray, deviations: np.ndarray) -> float:
    """Estimated error of a float32 expanded log-density, in nats, for any row near any mean.

    :func:`gaussmix.estep._features.rounding_scale` with ``v`` the largest, over
    the components, of ``|mu_j - origin| + 4 sigma_j`` per coordinate: a candidate row of
    component k may lie near any other component's mean, and in its tails.

    Parameters
    ----------
    precisions : ndarray of shape (K, D, D)
    centred_means : ndarray of shape (K, D)
        Means relative to the features' origin.
    deviations : ndarray of shape (K, D)
    """
    reach = np.max(np.abs(centred_means) + TAIL_DEVIATIONS * deviations, axis=0)
    features = OuterProducts(centred_means.shape[1])
    largest = np.max(features.absolute_form(precisions, np.broadcast_to(reach, centred_means.shape)))
    return float(np.finfo(np.float32).eps * largest)


def screened_accumulate(
    X: np.ndarray,
    sample_weight: Optional[np.ndarray],
    log_weights: np.ndarray,
    means: np.ndarray,
    factors: np.ndarray,
    precisions: np.ndarray,
    deviations: np.ndarray,
    log_det: np.ndarray,
    shift: Optional[np.ndarray] = None,
) -> Optional[tuple[SuffStats, float]]:
    """E-step of a full-covariance mixture on one chunk of float32 rows, screened.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32
        The rows, or with ``shift`` the rows as stored.
    sample_weight : ndarray of shape (n,) or None
    log_weights : ndarray of shape (K,)
    means : ndarray of shape (K, D), float64
    factors : ndarray of shape (K, D, D), float64
        Upper-triangular precision Cholesky factors (``C C^T = P``).
    precisions : ndarray of shape (K, D, D), float64
    deviations : ndarray of shape (K, D)
        Standard deviations per component and feature.
    log_det : ndarray of shape (K,)
        ``log det C_k``.
    shift : ndarray of shape (D,), optional
        The E-step is on the rows ``X - shift`` (the parameters and the statistics are
        in that frame); the features are built about it (else about the chunk's mean).

    Returns
    -------
    stats : SuffStats
        In float32, like the rows.
    loglik : float
        ``None`` in place of both where the chunk is not screened (see the module docstring).
    """
    from . import _compiled_screened  # numba: imported on first use only

    n_samples, n_features = X.shape
    n_components = means.shape[0]
    frame_shift = np.zeros(n_features) if shift is None else np.asarray(shift, dtype=np.float64)
    # where the float32 features are centred, in the rows' frame and in the parameters'
    stored_origin = kernels.mean_row(X, dtype=np.float64) if shift is None else frame_shift
    origin = stored_origin - frame_shift
    centred_means = means - origin
    error = screening_error(precisions, centred_means, deviations)
    if error > MAX_SCREENING_ERROR:
        return None
    features = OuterProducts(n_features)
    linear = features.times(precisions, centred_means)
    coefficients = np.concatenate([features.quadratic_coefficients(precisions), linear], axis=1).astype(np.float32)
    offsets = log_det + log_weights + kernels.gaussian_constant(n_features)
    approx_offsets = (offsets - 0.5 * np.sum(linear * centred_means, axis=1)).astype(np.float32)
    weights = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    # candidates within the gap of a component's largest or of its floor (see ABSENT_SHARE)
    floors = (log_weights + math.log(sparsity.ABSENT_SHARE)).astype(np.float32)
    # The features are built in cache-sized blocks (as on the expanded path), several to a
    # screened block.
    feature_rows = kernels.block_rows(features.width + n_components, 4, 2 * kernels.BLOCK_BUDGET_BYTES)
    configured = get_config().block_rows
    largest = configured or feature_rows * max(1, SCREENED_BLOCK_ROWS // feature_rows)
    screened_rows = kernels.balanced_rows(n_samples, largest)
    feature_rows = min(feature_rows, screened_rows)
    buffer = features.allocate(feature_rows, np.float32)
    approx_buffer = np.empty((n_components, screened_rows), dtype=np.float32)
    sums = _compiled_screened.ScreenedSums(n_components, n_features, screened_rows, max_pairs(n_components, screened_rows))
    centres = np.ascontiguousarray(means + frame_shift)
    factors = np.ascontiguousarray(factors)
    feature_origin = stored_origin.astype(np.float32)
    # A left-out pair's responsibility is below exp(threshold + 2 error): its log-density
    # may be error too low, and that of its row's largest error too high.
    gap = 100 * math.log(2) + SCREENING_MARGIN + 2 * error
    for start, stop in kernels.row_blocks(n_samples, screened_rows):
        approx = approx_buffer[:, : stop - start]
        for first, last in kernels.row_blocks(stop - start, feature_rows):
            block = features.view(buffer, last - first)
            features.fill(X[start + first:start + last], feature_origin, block)
            kernels.per_component_product(coefficients, block, out=approx[:, first:last])
        taken = sums.add_block(
            approx, approx_offsets, floors, X[start:stop], weights[start:stop], centres, factors, offsets,
            stored_origin, gap, 2 * error, max_pairs(n_components, stop - start),
        )
        if not taken:
            return None
    resp_weight = sums.resp_weight
    live = resp_weight > 0
    moved = sums.sums / np.where(live, resp_weight, 1.0)[:, None]
    new_means = means + moved
    reference = sparsity.ABSENT_SHARE * np.exp(log_weights) * sums.total_weight
    if not sparsity.truncation_is_negligible(
        features, precisions, deviations, resp_weight, new_means - origin, sums.dropped, reference
    ):
        return None
    # about the current means, then moved to the new ones: the move is one EM step, small
    scatter = 0.5 * (sums.scatter + np.swapaxes(sums.scatter, 1, 2))
    scatter -= resp_weight[:, None, None] * (moved[:, :, None] * moved[:, None, :])
    scatter[~live] = 0
    new_means[~live] = 0
    dtype = X.dtype
    stats = SuffStats(resp_weight.astype(dtype), new_means.astype(dtype), scatter.astype(dtype), sums.total_weight)
    return stats, sums.loglik


#: components from which the automatic choice takes the screened engine: every row lists
#: at least its own largest, 1/K of its pairs, and a block is screened only where at most
#: a quarter are candidates. At K = 4 every block gave way (after its float32 product);
#: from K = 8 on two candidates a row fit
MIN_SCREENED_COMPONENTS = int(2 / MAX_SCREENED_SHARE)


class ScreenedEngine(Engine):
    """float32 rows of full-covariance mixtures (see the module docstring). Needs numba."""

    name = "screened"

    def can_run(self, problem: Problem) -> bool:
        return problem.layout == "full" and problem.numpy and problem.compiled and problem.dtype == np.float32

    def preferred(self, problem: Problem) -> bool:
        return (
            self.can_run(problem) and problem.n_components >= MIN_SCREENED_COMPONENTS and dense_expansion_pays(problem)
        )

    def accumulate(
        self, X: np.ndarray, sample_weight: Optional[np.ndarray], params: Any, shift: Optional[np.ndarray] = None
    ) -> Optional[tuple[SuffStats, float]]:
        factors64 = params.precisions_cholesky.astype(np.float64, copy=False)
        log_det, log_weights, _ = log_det_and_offsets(params)
        _, deviations = dense_deviations(params.precisions_cholesky)
        means64, precisions = params.means.astype(np.float64), params.covariance.precisions(factors64)
        return screened_accumulate(
            X, sample_weight, log_weights, means64, factors64, precisions, deviations, log_det, shift
        )


ENGINE = ScreenedEngine()
