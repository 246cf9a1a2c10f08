"""Sparse moments: a block's moments over its non-negligible responsibilities only.

Where clusters are far apart most responsibilities of a block are below
:data:`TRUNCATION_THRESHOLD` times their component's largest. The expanded
E-step (:mod:`gaussmix.estep.expanded`) then sums the moments of the few
that are not, instead of one product over every (row, component) pair, and
bounds what the others would have added (:func:`truncation_is_negligible`);
where that bound fails the chunk is summed again in full. The ``"expanded"``
engine takes the sparse moments where the moments product is large enough to
pay for them; the ``"sparse"`` engine takes them whatever its size.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _kernels as kernels
from ._features import OuterProducts, QuadraticFeatures, Squares, rounding_scale

#: responsibilities below this times their component's largest in the block are
#: left out of the moments where few are above it (:class:`GatheredSparseMoments`,
#: :class:`CompiledSparseMoments`); what they would have added is bounded afterwards,
#: and must stay under float64's own rounding. Relative, not absolute: a component
#: with only tiny responsibilities in a chunk (one that is dying, or whose rows are
#: elsewhere) keeps its largest, else all its weight would be left out and the bound
#: fail (and the chunk be summed again in full).
TRUNCATION_THRESHOLD = 2.0**-100
#: the least share of its mixture weight pi_k that a component's responsibility counts
#: as in a block that is crowded otherwise: its threshold is then TRUNCATION_THRESHOLD
#: times the larger of its largest responsibility in the block and ABSENT_SHARE pi_k
#: (times the mean row weight), and what is left out is measured against ABSENT_SHARE
#: pi_k times the chunk's weight at least. Without it, a component absent from a block
#: (rows stored by cluster) kept every responsibility within 2^-100 of its own tiny best:
#: the compiled sparse blocks were declined and the screened ones gave way
#: (see BENCHMARKS.md, "Measurements behind the code's thresholds"). Blocks that are not
#: crowded keep the relative thresholds alone (a component far from every row keeps its
#: tiny statistics exact). The bound holds against the merged statistics unless a
#: component loses 2^20 times that weight in one step (and then it is a component
#: nearly gone, whose chunk statistics are left out, ~2^-100 of it)
ABSENT_SHARE = 2.0**-20
#: blocks of dense precisions whose responsibilities are at most this share above the
#: threshold take the sparse moments: their flops are 2 D^2 a kept responsibility
#: against the product's K D^2 a row
MAX_SPARSE_SHARE = 0.25
#: ... and only where the moments product is this large a row (K W): below it the
#: gathers and per-component calls cost what they save
#: (see BENCHMARKS.md, "Measurements behind the code's thresholds")
MIN_SPARSE_WORK = 2**14
#: blocks of axis-aligned precisions whose responsibilities are at most this share
#: above the threshold take the compiled sparse moments: a kept one costs a fraction
#: of a row of the dense product (see BENCHMARKS.md, "Measurements behind the code's thresholds")
MAX_COMPILED_SPARSE_SHARE = 0.125
#: ... and only where the moments product is this large a row (K W), by dtype of the
#: features (float32 products run twice as fast; the sparse sums do not;
#: see BENCHMARKS.md, "Measurements behind the code's thresholds")
MIN_COMPILED_SPARSE_WORK = {np.dtype(np.float64): 2**10, np.dtype(np.float32): 2**12}

def sparse_moments(
    features: QuadraticFeatures, n_components: int, n_samples: int, dtype: np.dtype, always: bool = False
) -> Optional["SparseMoments"]:
    """How a chunk of ``n_samples`` rows may sum its moments over the non-negligible
    responsibilities only (features in ``dtype``), or None where that does not pay
    (the work thresholds :data:`MIN_SPARSE_WORK` and :data:`MIN_COMPILED_SPARSE_WORK`,
    ignored with ``always``) or cannot run."""
    work = n_components * features.width
    if isinstance(features, OuterProducts):
        if work < MIN_SPARSE_WORK and not always:
            return None
        return GatheredSparseMoments(n_components, n_samples, features)
    if isinstance(features, Squares):
        minimum = MIN_COMPILED_SPARSE_WORK.get(np.dtype(dtype))
        compiled = kernels._compiled_kernels("sparse")
        if compiled is None or minimum is None or (work < minimum and not always):
            return None
        return CompiledSparseMoments(compiled, features.n_squares)
    return None


class SparseMoments:
    """The moments of a chunk over its non-negligible responsibilities only.

    Where clusters are far apart, most responsibilities are below
    :data:`TRUNCATION_THRESHOLD` times their component's largest in the block. A
    block where few reach that is summed over those (and zeros are never kept);
    what the others would have added is tallied in ``dropped`` (2, K):
    per component, the left-out responsibilities and their sum weighted by
    ``|x - origin|^2``, for :func:`_truncation_is_negligible`. ``floors`` (K,), where
    set, is the least a component's largest responsibility counts as in a block that
    is crowded otherwise (see :data:`ABSENT_SHARE`).
    """

    floors: Optional[np.ndarray] = None

    def add_block(
        self, resp: np.ndarray, features: Optional[np.ndarray], X: np.ndarray, origin: np.ndarray,
        start: int, stop: int, moments: np.ndarray, dropped: np.ndarray,
    ) -> bool:
        """Take a block if few enough of its responsibilities reach the threshold.

        Parameters
        ----------
        resp : ndarray of shape (K, b)
            Its weighted responsibilities.
        features : ndarray of shape (b, W), float64, or None
            Its features about ``origin``, where they are at hand in float64.
        X : ndarray of shape (n, D)
            The chunk's rows; the block is ``X[start:stop]``.
        origin : ndarray of shape (D,), float64
            The moments are those of the features of ``x - origin``.
        moments : ndarray of shape (K, W), float64
            May gain the block's moments now, or only in :meth:`finish`.
        dropped : ndarray of shape (2, K)
            Gains what is left out.

        Returns
        -------
        bool
            Whether the block was taken (else the caller sums it in full).
        """
        raise NotImplementedError

    def finish(self, X: np.ndarray, origin: np.ndarray, moments: np.ndarray) -> None:
        """Add to ``moments`` whatever the taken blocks set aside."""


class GatheredSparseMoments(SparseMoments):
    """Dense precisions: the kept responsibilities are set aside, (K, n) (O(chunk K)
    like the rest), and summed per component at the end: one gather of its rows and
    one symmetric product (2 m D^2 flops for m kept rows, against K n D^2 for all)."""

    def __init__(self, n_components: int, n_samples: int, features: "OuterProducts") -> None:
        self.kept = np.zeros((n_components, n_samples))
        self.features = features

    def add_block(
        self, resp: np.ndarray, features: Optional[np.ndarray], X: np.ndarray, origin: np.ndarray,
        start: int, stop: int, moments: np.ndarray, dropped: np.ndarray,
    ) -> bool:
        largest = resp.max(axis=1, keepdims=True)
        large = (resp >= TRUNCATION_THRESHOLD * largest) & (resp > 0)
        if np.count_nonzero(large) > MAX_SPARSE_SHARE * large.size and self.floors is not None:
            # crowded: again with the floors (components absent from the block)
            large = (resp >= TRUNCATION_THRESHOLD * np.maximum(largest, self.floors[:, None])) & (resp > 0)
        if np.count_nonzero(large) > MAX_SPARSE_SHARE * large.size:
            return False
        np.copyto(self.kept[:, start:stop], resp, where=large)
        small = np.where(large, 0.0, resp)
        centred = X[start:stop] - origin
        dropped[0] += small.sum(axis=1)
        dropped[1] += small @ np.einsum("nd,nd->n", centred, centred)
        return True

    def finish(self, X: np.ndarray, origin: np.ndarray, moments: np.ndarray) -> None:
        n_squares = self.features.n_squares
        rows, columns = self.features.rows, self.features.columns
        for k, resp in enumerate(self.kept):
            members = np.flatnonzero(resp)
            if members.size == 0:
                continue
            weights = resp[members]
            centred = X[members] - origin
            moments[k, n_squares:] += weights @ centred
            scaled = centred * np.sqrt(weights)[:, None]
            moments[k, :n_squares] += (scaled.T @ scaled)[rows, columns]


class CompiledSparseMoments(SparseMoments):
    """Axis-aligned precisions: each kept responsibility adds ``r f(x)`` (W values) to its
    component's moments, in one compiled pass over the block
    (:func:`gaussmix.estep._compiled_sparse.sparse_block_moments`).

    A kept one saves only W = 2D (or D + 1) multiply-adds of the product, so this
    pays only for few kept ones and a large product (see :data:`MAX_COMPILED_SPARSE_SHARE`).
    """

    #: after a declined block, this many blocks go straight to the product: a chunk's
    #: blocks are mostly alike, and a declined one costs a pass over its responsibilities
    SKIPPED_AFTER_DECLINE = 7

    def __init__(self, compiled: Any, n_squares: int) -> None:
        self.compiled = compiled
        self.n_squares = n_squares
        self.skipping = 0

    def add_block(
        self, resp: np.ndarray, features: Optional[np.ndarray], X: np.ndarray, origin: np.ndarray,
        start: int, stop: int, moments: np.ndarray, dropped: np.ndarray,
    ) -> bool:
        if self.skipping > 0:
            self.skipping -= 1
            return False
        if not resp.flags.c_contiguous:
            return False
        max_kept = int(MAX_COMPILED_SPARSE_SHARE * resp.size)
        taken = self.compiled.sparse_block_moments(
            resp, X[start:stop], origin, self.n_squares, TRUNCATION_THRESHOLD, max_kept, moments, dropped, features,
            self.floors,
        )
        if not taken:
            self.skipping = self.SKIPPED_AFTER_DECLINE
        return taken


def truncation_is_negligible(
    features: QuadraticFeatures, precisions: np.ndarray, deviations: np.ndarray,
    resp_weight: np.ndarray, means: np.ndarray, dropped: np.ndarray, reference: Optional[np.ndarray] = None,
) -> bool:
    """Whether what the sparse moments left out is below float64's own rounding of them.

    A left-out weight ``w`` with ``sum w |c|^2 = s`` changes ``sum r c_a c_b`` by at
    most ``s`` and ``sum r c_a`` by ``sqrt(w s)``, so the covariance, in its own
    metric, by at most ``|v|^T |P| |v| / N`` with ``v = sqrt(s) + sqrt(w) |mean|``;
    that must stay under ``eps * rounding_scale`` (what the expansion itself loses).
    ``N`` is the chunk's own weight of the component, or at least ``reference`` (K,)
    where given: a weight the chunk's statistics will be merged into (see
    :data:`ABSENT_SHARE`).
    """
    weight, squares = dropped
    merged = resp_weight if reference is None else np.maximum(resp_weight, reference)
    checked = merged > 0
    if not np.any(weight[checked] != 0):  # (a NaN left out goes on to fail the bound)
        return True
    bound = np.sqrt(squares)[:, None] + np.sqrt(weight)[:, None] * np.abs(means)
    safe = np.where(checked, merged, 1.0)
    loss = features.absolute_form(precisions, bound) / safe
    allowed = np.finfo(np.float64).eps * rounding_scale(features, precisions, means, deviations)
    return bool(np.all((loss <= allowed) | ~checked))

