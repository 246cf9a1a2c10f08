"""Degenerate fits: covariances that the data do not determine.

A Gaussian mixture's likelihood is unbounded: a component that shrinks onto a
few rows (fewer than it needs to span its dimensions, or repeated copies of one
row) gains likelihood without limit. mclust stops such an EM and reports the
cell as NA ("singular covariance": the relative condition number of a
covariance fell below ``mclust.options("eps")``). gaussmix regularises instead
(``reg_covar``), so such a fit ends with a finite log-likelihood that looks
attractive to BIC (iris, K = 9: three components whose variance in one
direction is ``reg_covar`` alone). This module names those fits, by one rule
for every covariance structure:

**Rule.** Let ``T`` be the mixture's own total covariance
``sum_k pi_k (Sigma_k + (mu_k - mu)(mu_k - mu)^T)`` (at EM's fixed point, the
data's covariance), and ``S_k = Sigma_k - reg_covar I`` the part of
component k's covariance that its data determine. Component k is
*degenerate* when, in some direction ``v``,

    v^T S_k v  <=  rtol * v^T T v,

with ``rtol`` = :data:`RELATIVE_TOLERANCE` (1e-10 in float64, ``10 eps`` in
float32), or when a variance of ``S_k`` is below the rounding of the data's
values (``(16 eps |x_j|)^2``, which catches data with no spread at all).
Directions are taken in ``T``'s whitened frame for dense structures and per
feature for diagonal ones, so the rule does not depend on units, offsets or
(for dense structures) rotations of the data.

The gap it relies on is wide: on iris every cell's smallest ratio is either
above 1e-5 or below 1e-15 (float32: 1e-9), and the degenerate ones are the
components that sit on D or fewer distinct rows.

**With a conjugate prior** (``GaussianMixture(prior=...)``, :mod:`gaussmix.priors`)
a covariance can no longer collapse: the prior's scale holds it up. What
happens instead is that a component *empties*: its effective row count
``N_k = sum_i w_i r_ik`` (rows' weights of mean one times their
responsibilities: ``weights_`` times the number of training rows, the fitted
``effective_counts_``) falls towards zero, and its mean and covariance become
the prior's. mclust stops such an EM when ``N_k`` falls to ``sqrt(eps)`` rows
and reports the cell as NA. gaussmix names it by a count:

    component k of a prior fit is *degenerate* when ``N_k < 1/2``
    (:data:`EMPTY_COUNT`),

besides the rule above, which still applies. Below half a row the component
holds less than half of any row: no row is more its own than another's, so
nothing of the data determines its covariance (nor its mean). The count is in
rows, so the rule does not depend on units, and it is the same for every
structure. An emptying component decays geometrically and EM stops it
wherever its tolerance says: at 1e-43 to 5e-3 rows on faithful and iris with
``tol=1e-5`` or tighter, at up to 0.03 with ``tol=1e-3``; a component that has
settled holds 0.43 rows or more in every cell mclust reports as a number.
Flagged although mclust reports a number: iris EEV, K = 5 (0.43 rows), and
the cells whose component was still emptying when mclust stopped, above its
``sqrt(eps)`` (tests/test_prior_against_mclust.py lists them). A component on
one isolated row (``N_k`` about 1) is sound, as in mclust, although its
covariance is the prior's in every direction: the training rows' scatter,
which would tell, is not kept with the fit.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .backends import to_numpy

#: ``v^T S v / v^T T v`` at or below which a direction is held up by ``reg_covar`` alone
RELATIVE_TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 10 * float(np.finfo(np.float32).eps)}
#: a variance below ``(ROUNDING_FACTOR eps |x|)^2`` is rounding of the values, not spread
ROUNDING_FACTOR = 16
#: with a prior, a component holding fewer rows than this (``N_k``) has emptied
EMPTY_COUNT = 0.5


class DegenerateFitWarning(UserWarning):
    """A fitted mixture has a component whose covariance its data do not determine.

    See :mod:`gaussmix.degeneracy` for the rule.
    """


def degenerate_components(params: Any, reg_covar: float, counts: Optional[Any] = None) -> np.ndarray:
    """Which components of a fitted mixture are degenerate.

    Parameters
    ----------
    params : MixtureParams
        Fitted parameters (any backend; read on the host).
    reg_covar : float
        What the M-step added to every variance.
    counts : array-like of shape (K,), optional
        The effective row counts ``N_k`` of a fit with a conjugate prior
        (``effective_counts_``); components below :data:`EMPTY_COUNT` are
        degenerate. None for fits without a prior: the covariance rule alone.

    Returns
    -------
    ndarray of bool, shape (K,)
    """
    weights = np.asarray(to_numpy(params.weights), dtype=np.float64)
    means = np.asarray(to_numpy(params.means), dtype=np.float64)
    dtype = np.dtype(to_numpy(params.means).dtype)
    rtol = RELATIVE_TOLERANCE.get(dtype, 10 * float(np.finfo(dtype).eps))
    eps = float(np.finfo(dtype).eps)
    centre = weights @ means / np.sum(weights)
    offsets = means - centre
    if params.covariance.full_scatter:
        covariances = np.asarray(to_numpy(params.dense_covariances()), dtype=np.float64)
        total = np.einsum("k,kij->ij", weights, covariances) + np.einsum("k,ki,kj->ij", weights, offsets, offsets)
        determined = covariances - reg_covar * np.eye(means.shape[1])
        variances = np.diagonal(determined, axis1=1, axis2=2)
        ratios = _smallest_whitened_eigenvalues(determined, total)
    else:
        variances = _diagonal_variances(params, means.shape) - reg_covar
        total_variances = weights @ (variances + reg_covar) + weights @ offsets**2
        ratios = np.min(variances / _positive(total_variances), axis=1)
        total = np.diag(total_variances)
    magnitude = centre**2 + np.diagonal(total)
    rounding = variances <= (ROUNDING_FACTOR * eps) ** 2 * magnitude
    degenerate = (ratios <= rtol) | np.any(rounding, axis=1) | ~np.isfinite(ratios)
    if counts is not None:
        degenerate = degenerate | ~(np.asarray(counts, dtype=np.float64) >= EMPTY_COUNT)
    return degenerate


def _diagonal_variances(params: Any, shape: tuple[int, int]) -> np.ndarray:
    """Per-feature variances (K, D) of a structure with axis-aligned covariances."""
    covariances = np.asarray(to_numpy(params.covariances), dtype=np.float64)
    if covariances.ndim == 1:  # one variance per component, or one shared by all
        covariances = covariances[:, None] if covariances.shape[0] == shape[0] else covariances[None, :]
    return np.broadcast_to(covariances, shape)


def _positive(values: np.ndarray) -> np.ndarray:
    return np.where(values > 0, values, np.inf)


def _smallest_whitened_eigenvalues(matrices: np.ndarray, total: np.ndarray) -> np.ndarray:
    """``min_v v^T S_k v / v^T T v`` for each (D, D) matrix ``S_k``: shape (K,)."""
    try:
        factor = np.linalg.cholesky(total)
    except np.linalg.LinAlgError:
        # The mixture has no variance in some direction: every component is degenerate there.
        return np.zeros(matrices.shape[0])
    inverse = np.linalg.inv(factor)
    whitened = inverse @ matrices @ inverse.T
    return np.linalg.eigvalsh((whitened + np.swapaxes(whitened, 1, 2)) / 2)[:, 0]


def describe(components: np.ndarray) -> str:
    """A sentence naming degenerate components and what to do about them."""
    which = ", ".join(str(k) for k in np.flatnonzero(components))
    return (
        f"component(s) {which} of this fit are degenerate: in some direction their covariance is "
        "not determined by the data (reg_covar alone holds it up, or nothing does): they sit on too "
        "few distinct rows, or, with a prior, hold less than half a row (they emptied). The "
        "log-likelihood, and so the BIC, of such a fit mean nothing; use "
        "fewer components or another covariance structure (see gaussmix.degeneracy)."
    )
