"""Additive sufficient statistics of a Gaussian mixture's E-step.

The statistics of a chunk are kept *centred*: per component, the responsibility
weight ``N_k``, the weighted mean ``m_k`` and the scatter about that mean
``S_k = sum_n w_n g_nk (x_n - m_k)(x_n - m_k)^T``. Merging two chunks uses
Chan et al.'s pairwise update, so nothing of the form ``E[x^2] - E[x]^2`` ever
cancels (that formula yields negative variances in float32).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from .backends import get_namespace


#: the least responsibility weight an M-step divides by and gives a component:
#: added to every ``N_k`` there (as scikit-learn's ``nk + 10 eps``), and the weight
#: below which a component counts as emptied. float64's 10 eps whatever the dtype, so
#: that float32 fits carry on (and may revive) the nearly empty components float64 fits
#: do, instead of leaving them reg_covar alone and ending elsewhere.
#: It is relative to the total weight: the estimator scales frequency weights to
#: mean one per row (see gaussmix._validation.unit_mean_weights), and partial_fit's
#: running statistics have total weight one
WEIGHT_FLOOR = 10 * 2.0**-52


@dataclass(frozen=True)
class SuffStats:
    """Mergeable E-step statistics of a Gaussian mixture.

    Attributes
    ----------
    resp_weight : array of shape (K,)
        ``N_k = sum_n w_n g_nk``.
    means : array of shape (K, D)
        Responsibility-weighted mean of the rows per component (zero where
        ``N_k == 0``).
    scatter : array of shape (K, D, D), (1, D, D), (K, D) or (K, 1)
        Weighted scatter about ``means``; only its diagonal when the
        covariance model needs no more (``diag``); only its trace, as (K, 1),
        when that is all (``spherical``: products on ``[|x|^2, x]``, D + 1
        columns, instead of ``[x^2, x]``, 2D); or, as (1, D, D), the *pooled*
        within-component scatter ``sum_k S_k`` when the model needs only that
        (``tied``: one product of n x D^2 flops instead of K of them). Where
        K = 1 (pooled) or D = 1 (trace) the reduced layout is the full one.
    total_weight : float or 0-d array
        ``sum_n w_n`` over the rows summarised (a 0-d array on the device for
        weighted tensor input, so that summing it never waits for the device).
    """

    resp_weight: Any
    means: Any
    scatter: Any
    total_weight: Any

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    @property
    def full_scatter(self) -> bool:
        """Whether ``scatter`` holds full (K, D, D) matrices."""
        return self.scatter.ndim == 3

    @property
    def pooled_scatter(self) -> bool:
        """Whether ``scatter`` is the (1, D, D) sum of the per-component scatters (K > 1)."""
        return self.scatter.ndim == 3 and self.scatter.shape[0] != self.means.shape[0]

    @property
    def trace_scatter(self) -> bool:
        """Whether ``scatter`` holds only the (K, 1) traces of the scatters (D > 1)."""
        return self.scatter.ndim == 2 and self.scatter.shape[1] != self.means.shape[1]

    def traces(self) -> Any:
        """``trace S_k`` of every component's scatter, shape (K,), whatever the layout (not pooled)."""
        xp = get_namespace(self.scatter)
        if self.pooled_scatter:
            raise ValueError("a pooled (1, D, D) scatter has no per-component traces")
        return xp.sum(xp.linalg.diagonal(self.scatter), axis=1) if self.full_scatter else xp.sum(self.scatter, axis=1)

    def traced(self) -> "SuffStats":
        """The same statistics with each scatter reduced to its trace: a (K, 1) scatter."""
        if self.trace_scatter:
            return self
        return SuffStats(self.resp_weight, self.means, self.traces()[:, None], self.total_weight)

    def pooled(self) -> "SuffStats":
        """The same statistics with the full per-component scatters summed to one (1, D, D) matrix."""
        if not self.full_scatter:
            raise ValueError("only full (K, D, D) scatters can be pooled; these hold (K, D) diagonals")
        if self.pooled_scatter:
            return self
        xp = get_namespace(self.scatter)
        return SuffStats(self.resp_weight, self.means, xp.sum(self.scatter, axis=0, keepdims=True), self.total_weight)

    def about(self, means: Any, mask: Any) -> "SuffStats":
        """The same rows' statistics with the masked components' scatters taken about ``means``.

        For frozen means the M-step needs each covariance about the frozen
        mean, not about the weighted one: ``S_k + N_k d_k d_k^T`` with
        ``d_k = m_k - mu_k`` (Steiner's theorem; no cancellation: a sum of
        non-negative terms). Works for every scatter layout.

        Parameters
        ----------
        means : array of shape (K, D)
        mask : bool array of shape (K,)
            Components whose scatter moves to ``means``; the others are unchanged.
        """
        xp = get_namespace(self.means, means)
        delta = xp.where(mask[:, None], self.means - means, xp.zeros_like(self.means))
        moved = xp.where(mask[:, None], means, self.means)
        return SuffStats(self.resp_weight, moved, self._plus_outer(self.resp_weight, delta), self.total_weight)

    def _plus_outer(self, weights: Any, vectors: Any) -> Any:
        """``scatter`` plus ``weights_k v_k v_k^T`` for every component, in its layout.

        ``weights`` has shape (K,), ``vectors`` (K, D); a pooled scatter gains their sum.
        """
        xp = get_namespace(self.scatter, vectors)
        if self.full_scatter:
            correction = weights[:, None, None] * (vectors[:, :, None] * vectors[:, None, :])
            if self.pooled_scatter:
                correction = xp.sum(correction, axis=0, keepdims=True)
        elif self.trace_scatter:
            correction = weights[:, None] * xp.sum(vectors * vectors, axis=1, keepdims=True)
        else:
            correction = weights[:, None] * vectors * vectors
        return self.scatter + correction

    def with_scatter_added(self, weights: Any, vectors: Any, matrix: Any, resp_weight: Any) -> "SuffStats":
        """These statistics with pseudo-statistics added (a prior's, :mod:`gaussmix.priors`).

        Every component's scatter gains ``weights_k v_k v_k^T + matrix``, in
        its layout (a pooled scatter gains the sum over the components, a
        diagonal one the diagonal, a trace the trace); ``resp_weight``
        replaces ``N_k``. Means and total weight are kept.

        Parameters
        ----------
        weights : array of shape (K,)
        vectors : array of shape (K, D)
        matrix : array of shape (D, D)
        resp_weight : array of shape (K,)
        """
        xp = get_namespace(self.scatter, matrix)
        if self.full_scatter:
            added = matrix[None, :, :] * (self.n_components if self.pooled_scatter else 1)
        elif self.trace_scatter:
            added = xp.sum(xp.linalg.diagonal(matrix))
        else:
            added = xp.linalg.diagonal(matrix)[None, :]
        return SuffStats(resp_weight, self.means, self._plus_outer(weights, vectors) + added, self.total_weight)

    def merge(self, other: "SuffStats") -> "SuffStats":
        """Statistics of the union of the rows summarised by ``self`` and ``other``.

        Exact in exact arithmetic and associative; merging with statistics of
        zero weight returns the other side unchanged. A pooled scatter merged
        with per-component ones gives a pooled scatter (the per-component
        detail is lost on one side).
        """
        if self.trace_scatter != other.trace_scatter and self.means.shape == other.means.shape:
            return self.traced().merge(other.traced())
        if self.full_scatter != other.full_scatter or self.means.shape != other.means.shape:
            raise ValueError(
                "cannot merge statistics of different shapes: "
                f"{tuple(self.scatter.shape)} and {tuple(other.scatter.shape)}"
            )
        if self.pooled_scatter != other.pooled_scatter:
            return self.pooled().merge(other.pooled())
        xp = get_namespace(self.means, other.means)
        weight_a, weight_b = self.resp_weight, other.resp_weight
        total = weight_a + weight_b
        positive = total > 0
        safe_total = xp.where(positive, total, xp.ones_like(total))
        share_b = xp.where(positive, weight_b / safe_total, xp.zeros_like(total))
        delta = other.means - self.means
        means = self.means + delta * share_b[:, None]
        # N_a N_b / (N_a + N_b): the weight of the between-chunk correction
        cross = xp.where(positive, weight_a * share_b, xp.zeros_like(total))
        if self.full_scatter:
            correction = cross[:, None, None] * (delta[:, :, None] * delta[:, None, :])
            if self.pooled_scatter:
                correction = xp.sum(correction, axis=0, keepdims=True)
        elif self.trace_scatter:
            correction = cross[:, None] * xp.sum(delta * delta, axis=1, keepdims=True)
        else:
            correction = cross[:, None] * delta * delta
        return SuffStats(
            resp_weight=total,
            means=means,
            scatter=self.scatter + other.scatter + correction,
            total_weight=self.total_weight + other.total_weight,
        )


def stats_from_responsibilities(X: Any, weighted_resp: Any, full_scatter: bool, sample_weight_total: Any) -> SuffStats:
    """Centred statistics of one chunk from its (sample-weighted) responsibilities.

    Parameters
    ----------
    X : array of shape (n, D)
    weighted_resp : array of shape (n, K)
        ``w_n * g_nk``: responsibilities already multiplied by the sample weights.
    full_scatter : bool
        Keep the full (K, D, D) scatter, or only its diagonal (K, D).
    sample_weight_total : float or 0-d array
        ``sum_n w_n`` of the chunk (a device scalar is kept as is, not read back).

    Returns
    -------
    SuffStats
    """
    xp = get_namespace(X, weighted_resp)
    resp_weight = xp.sum(weighted_resp, axis=0)
    positive = resp_weight > 0
    safe_weight = xp.where(positive, resp_weight, xp.ones_like(resp_weight))
    means = (weighted_resp.T @ X) / safe_weight[:, None]
    # Centre on each component's own chunk mean: (n, K, D), bounded by the chunk.
    centred = X[:, None, :] - means[None, :, :]
    weighted_centred = weighted_resp[:, :, None] * centred
    if full_scatter:
        # (K, D, n) @ (K, n, D) -> (K, D, D)
        scatter = xp.permute_dims(weighted_centred, (1, 2, 0)) @ xp.permute_dims(centred, (1, 0, 2))
    else:
        scatter = xp.sum(weighted_centred * centred, axis=0)
    if isinstance(sample_weight_total, numbers.Real):  # Python and NumPy scalars; device scalars stay
        sample_weight_total = float(sample_weight_total)
    return SuffStats(resp_weight, means, scatter, sample_weight_total)
