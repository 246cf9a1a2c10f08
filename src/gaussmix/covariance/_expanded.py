"""E-steps on expanded quadratic features: two matrix products per block of rows.

With rows centred on the chunk's mean row, a component's weighted
log-density is linear in the features ``f(x) = [q(x), x]``, where ``q(x)``
holds the products of coordinates its precision ``P_k`` weighs::

    log pi_k N(x | k) = <Q_k, q(x)> + (P_k mu_k) . x + c_k

So one product ``A (K, W) @ F^T (W, b)`` gives every log-density of a block,
and once those are responsibilities ``R (K, b)``, one product ``R @ F`` gives
every weighted moment: ``sum r q(x)`` and ``sum r x``. The scatter about the
new means is then ``M2 - N m m^T``. Three feature maps, one per kind of
precision: :class:`Squares` (diagonal, ``q = x^2``), :class:`SquaredNorm`
(spherical, ``q = |x|^2``) and :class:`OuterProducts` (full, ``q`` the upper
triangle of ``x x^T``: the product then needs only the flops the symmetric
precision and scatter really have, in two large products instead of K
whitenings and K scatters).

Both expansions cancel digits: as many as a row's (or mean's) distance from
the chunk's centre, in the component's standard deviations, demands; more
when a correlation is close to 1. :func:`rounding_scale` bounds that. The
log-densities are expanded only where the bound allows (else the caller takes
a per-component path); float32 moments are checked afterwards, and redone in
float64 where they would have lost too much.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ..stats import SuffStats
from . import _numpy_kernels as kernels

#: rounding error (relative to the covariances, summed over dimensions) that
#: float32 moments may add before a chunk's moments are summed in float64
#: instead; see :func:`rounding_scale`
MOMENTS_TOLERANCE = 1e-5
#: responsibilities below this times their component's largest in the block are
#: left out of the moments where few are above it (:class:`GatheredSparseMoments`,
#: :class:`CompiledSparseMoments`); what they would have added is bounded afterwards,
#: and must stay under float64's own rounding. Relative, not absolute: a component
#: with only tiny responsibilities in a chunk (one that is dying, or whose rows are
#: elsewhere) keeps its largest, else all its weight would be left out and the bound
#: fail (it did for 43 of 50 chunks an iteration of the diag benchmark).
TRUNCATION_THRESHOLD = 2.0**-100
#: the least share of its mixture weight pi_k that a component's responsibility counts
#: as in a block that is crowded otherwise: its threshold is then TRUNCATION_THRESHOLD
#: times the larger of its largest responsibility in the block and ABSENT_SHARE pi_k
#: (times the mean row weight), and what is left out is measured against ABSENT_SHARE
#: pi_k times the chunk's weight at least. Without it, a component absent from a block
#: (rows stored by cluster) kept every responsibility within 2^-100 of its own tiny best:
#: diag's compiled blocks were declined (D=64 K=64, one chunk: 944 against 669 ns a row
#: for the same rows shuffled) and the screened ones gave way. Blocks that are not
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
#: gathers and per-component calls cost what they save. One thread, float64, after
#: 4 EM iterations, dense / sparse ns a row: D=64 K=32 11981 / 7929, D=64 K=16
#: 6710 / 5335, D=48 K=24 5169 / 4183, D=64 K=8 5974 / 5301, D=32 K=16 1893 / 1860,
#: D=24 K=16 1182 / 1300, D=16 K=16 783 / 1182
MIN_SPARSE_WORK = 2**14
#: blocks of axis-aligned precisions whose responsibilities are at most this share
#: above the threshold take the compiled sparse moments: a kept one costs ~25 ns at
#: W = 128, against the product's ~460 ns (float64) or ~240 ns (float32) a row at K = 64
MAX_COMPILED_SPARSE_SHARE = 0.125
#: ... and only where the moments product is this large a row (K W), by dtype of the
#: features (float32 products run twice as fast; the sparse sums do not). One thread,
#: 1.5 kept a row, dense / sparse ns a row, float64: K=64 W=128 462 / 139, K=32 W=64
#: 135 / 72, K=16 W=64 98 / 71, K=16 W=33 45 / 55; float32: K=64 W=128 240 / 148,
#: K=32 W=128 132 / 102, K=32 W=64 59 / 62, K=16 W=64 36 / 47
MIN_COMPILED_SPARSE_WORK = {np.dtype(np.float64): 2**10, np.dtype(np.float32): 2**12}


def moments_tolerance(n_features: int) -> float:
    """What rounding a chunk's moments may cost (relative to the covariances, in
    their own metric, summed over dimensions): :data:`MOMENTS_TOLERANCE` per dimension."""
    return MOMENTS_TOLERANCE * (1 + n_features)


def summing_dtype(dtype: np.dtype, lost: float, n_features: int) -> np.dtype:
    """``dtype`` where moments summed in it lose at most :func:`moments_tolerance`
    (``lost``: its eps times :func:`rounding_scale`), float64 otherwise."""
    return np.dtype(dtype) if lost <= moments_tolerance(n_features) else np.dtype(np.float64)


class QuadraticFeatures:
    """The features ``[q(x), x]`` of one kind of precision, and what goes with them.

    Parameters
    ----------
    n_features : int
        D, the number of columns of the data.
    """

    #: whether a block's features are stored column by column: (W, b) memory,
    #: used through its (b, W) transpose (cheaper to build when q has many columns)
    by_columns = False

    def __init__(self, n_features: int) -> None:
        self.n_features = n_features

    @property
    def n_squares(self) -> int:
        """Columns of ``q(x)``."""
        raise NotImplementedError

    @property
    def width(self) -> int:
        """W, the columns of ``[q(x), x]``."""
        return self.n_squares + self.n_features

    def allocate(self, rows: int, dtype: np.dtype) -> np.ndarray:
        """A buffer for the features of ``rows`` rows (see :meth:`view`)."""
        shape = (self.width, rows) if self.by_columns else (rows, self.width)
        return np.empty(shape, dtype=dtype)

    def view(self, buffer: np.ndarray, rows: int) -> np.ndarray:
        """The (``rows``, W) features array inside ``buffer``."""
        return buffer[:, :rows].T if self.by_columns else buffer[:rows]

    def fill(self, X: np.ndarray, origin: np.ndarray, out: np.ndarray) -> None:
        """``out`` (b, W) <- the features of the rows ``X - origin`` (``X`` of shape (b, D))."""
        compiled = kernels._compiled_kernels()
        if compiled is not None and out.flags.c_contiguous:  # one pass instead of two or three
            self._compiled_fill(compiled)(X, origin, out)
            return
        centred = out[:, self.n_squares:]
        np.subtract(X, origin, out=centred)
        self._fill_squares(centred, out[:, : self.n_squares])

    def _fill_squares(self, centred: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError

    def _compiled_fill(self, compiled: Any) -> Callable[..., None]:
        raise NotImplementedError

    def quadratic_coefficients(self, precisions: np.ndarray) -> np.ndarray:
        """``Q_k`` (K, ``n_squares``): ``<Q_k, q(x)> = -x^T P_k x / 2``."""
        raise NotImplementedError

    def times(self, precisions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """``P_k v_k`` for (K, D) vectors."""
        raise NotImplementedError

    def absolute_form(self, precisions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """``sum_ab |P_k,ab| v_k,a v_k,b`` (K,) for non-negative (K, D) vectors."""
        raise NotImplementedError

    def sparse_moments(self, n_components: int, n_samples: int, dtype: np.dtype) -> Optional["SparseMoments"]:
        """How a chunk of ``n_samples`` rows may sum its moments over the non-negligible
        responsibilities only (features in ``dtype``), or None where that does not pay."""
        return None

    def scatter(self, second_moments: np.ndarray, resp_weight: np.ndarray, means: np.ndarray) -> np.ndarray:
        """Scatter about ``means`` from the moments ``sum r q(x)`` (K, ``n_squares``),
        in the :class:`SuffStats` layout of this kind of precision."""
        raise NotImplementedError


class Squares(QuadraticFeatures):
    """``[x^2, x]`` for diagonal precisions, given as (K, D); (K, D) scatters.

    The columns of ``q(x)`` sum to ``|x|^2`` (here and in :class:`SquaredNorm`),
    which :class:`CompiledSparseMoments` relies on.
    """

    def sparse_moments(self, n_components: int, n_samples: int, dtype: np.dtype) -> Optional["SparseMoments"]:
        minimum = MIN_COMPILED_SPARSE_WORK.get(np.dtype(dtype))
        compiled = kernels._compiled_kernels()
        if compiled is None or minimum is None or n_components * self.width < minimum:
            return None
        return CompiledSparseMoments(compiled, self.n_squares)

    @property
    def n_squares(self) -> int:
        return self.n_features

    def _fill_squares(self, centred: np.ndarray, out: np.ndarray) -> None:
        np.multiply(centred, centred, out=out)

    def _compiled_fill(self, compiled: Any) -> Callable[..., None]:
        return compiled.centred_squares

    def quadratic_coefficients(self, precisions: np.ndarray) -> np.ndarray:
        return -0.5 * precisions

    def times(self, precisions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        return precisions * vectors

    def absolute_form(self, precisions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        return np.sum(precisions * vectors * vectors, axis=1)

    def scatter(self, second_moments: np.ndarray, resp_weight: np.ndarray, means: np.ndarray) -> np.ndarray:
        # rounding may leave a tiny negative where a component has almost no spread
        return np.maximum(second_moments - resp_weight[:, None] * means * means, 0)


class SquaredNorm(Squares):
    """``[|x|^2, x]`` for spherical precisions, given as (K, D) with equal columns; (K, 1) trace scatters."""

    @property
    def n_squares(self) -> int:
        return 1

    def _fill_squares(self, centred: np.ndarray, out: np.ndarray) -> None:
        np.einsum("nd,nd->n", centred, centred, out=out[:, 0])

    def _compiled_fill(self, compiled: Any) -> Callable[..., None]:
        return compiled.centred_norms

    def quadratic_coefficients(self, precisions: np.ndarray) -> np.ndarray:
        return -0.5 * precisions[:, :1]

    def scatter(self, second_moments: np.ndarray, resp_weight: np.ndarray, means: np.ndarray) -> np.ndarray:
        squared_norms = np.sum(means * means, axis=1, keepdims=True)
        return np.maximum(second_moments - resp_weight[:, None] * squared_norms, 0)


class OuterProducts(QuadraticFeatures):
    """``[upper(x x^T), x]`` for dense precisions, given as (K, D, D); (K, D, D) scatters.

    The D (D + 1) / 2 products are built one feature row at a time, so the
    features are stored by columns: each step is then one contiguous
    (D - a, b) product.
    """

    by_columns = True

    def __init__(self, n_features: int) -> None:
        super().__init__(n_features)
        self.rows, self.columns = np.triu_indices(n_features)

    @property
    def n_squares(self) -> int:
        return self.rows.size

    def fill(self, X: np.ndarray, origin: np.ndarray, out: np.ndarray) -> None:
        by_feature = out.T  # (W, b), C-contiguous rows
        n_squares = self.n_squares
        centred = by_feature[n_squares:]
        np.subtract(X.T, origin[:, None], out=centred)
        compiled = kernels._compiled_kernels()
        if compiled is not None:  # one call, not D: 2-5x faster at D = 16 to 64
            compiled.outer_products(centred, by_feature[:n_squares])
            return
        start = 0
        for a in range(self.n_features):
            stop = start + self.n_features - a
            np.multiply(centred[a], centred[a:], out=by_feature[start:stop])
            start = stop

    def quadratic_coefficients(self, precisions: np.ndarray) -> np.ndarray:
        # x^T P x counts each off-diagonal product twice
        twice_off_diagonal = np.where(self.rows == self.columns, -0.5, -1.0)
        return precisions[:, self.rows, self.columns] * twice_off_diagonal

    def times(self, precisions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        return np.einsum("kab,kb->ka", precisions, vectors)

    def absolute_form(self, precisions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        return np.einsum("ka,kab,kb->k", vectors, np.abs(precisions), vectors)

    def sparse_moments(self, n_components: int, n_samples: int, dtype: np.dtype) -> Optional["SparseMoments"]:
        if n_components * self.width < MIN_SPARSE_WORK:
            return None
        return GatheredSparseMoments(n_components, n_samples, self)

    def scatter(self, second_moments: np.ndarray, resp_weight: np.ndarray, means: np.ndarray) -> np.ndarray:
        n_components, n_features = means.shape
        scatter = np.empty((n_components, n_features, n_features))
        scatter[:, self.rows, self.columns] = second_moments
        scatter[:, self.columns, self.rows] = second_moments
        return scatter - resp_weight[:, None, None] * (means[:, :, None] * means[:, None, :])


def rounding_scale(
    features: QuadraticFeatures, precisions: np.ndarray, centred_means: np.ndarray, deviations: np.ndarray
) -> np.ndarray:
    """How many units of the working precision an expanded quadratic form may lose, per component.

    A row near component k sits at about ``|mu_k - origin| + sigma_k`` from the
    chunk's centre in each coordinate; the expansion's terms are then of size
    ``v^T |P_k| v`` with ``v`` that sum, while their total (the squared
    Mahalanobis distance) is of order D. Rounding the terms costs about ``eps``
    times that: in the log-densities (absolute), and, relative to the
    covariance in ``P_k``'s metric, in the scatter ``M2 - N m m^T``.

    Parameters
    ----------
    precisions : ndarray
        In the layout of ``features``.
    centred_means : ndarray of shape (K, D)
        Means relative to the chunk's origin.
    deviations : ndarray of shape (K, D)
        Standard deviations per component and feature.

    Returns
    -------
    ndarray of shape (K,)
    """
    with np.errstate(over="ignore"):  # a mean beyond the dtype's range: inf, and the caller declines
        return features.absolute_form(precisions, np.abs(centred_means) + deviations)


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

    Returns
    -------
    stats : SuffStats
    loglik : float
        ``None`` in place of both where the expansion would lose too many
        digits (the caller then takes a per-component path).
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
    absent = ABSENT_SHARE * np.exp(log_weights)
    may_truncate = True
    while True:
        sparse = features.sparse_moments(n_components, n_samples, moments_dtype) if may_truncate else None
        if sparse is not None:
            sparse.floors = absent * mean_row_weight
        resp_weight, moments, total_weight, loglik, dropped = _moments(
            X, sample_weight, feature_origin, coefficients.astype(product_dtype), offsets, features, sparse,
            moments_dtype,
        )
        safe = np.where(resp_weight > 0, resp_weight, 1)
        new_means = moments[:, features.n_squares:] / safe[:, None]
        if sparse is not None and not _truncation_is_negligible(
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
    sparse: Optional["SparseMoments"],
    moments_dtype: np.dtype,
) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray]:
    """Block by block: log-densities ``coefficients @ f(x)`` in ``coefficients``' dtype (the
    features are built in it, about ``origin``), responsibilities, and the moments
    ``sum_n r_nk f(x_n)`` from a product in ``moments_dtype``, summed in float64.

    With ``sparse``, blocks where few responsibilities are non-negligible (see
    :data:`TRUNCATION_THRESHOLD`) are summed over those only (see :class:`SparseMoments`).

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
    (:func:`gaussmix.covariance._numba_kernels.sparse_block_moments`).

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


def _truncation_is_negligible(
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


def axis_aligned_accumulate_chunk(
    model: Any, X: Any, sample_weight: Any, params: Any, generic: Callable[..., tuple[SuffStats, float]],
    trace: bool = False, shift: Optional[Any] = None,
) -> tuple[SuffStats, float]:
    """Batched E-step for axis-aligned structures (one product with ``[x^2, x]`` each way).

    ``model`` provides ``feature_precisions`` (K, D) and
    ``log_det_precision_cholesky``; ``generic`` is the namespace-generic
    E-step, taken for other namespaces than NumPy and where the expansion
    would lose too many digits (see :func:`expanded_accumulate`). With
    ``trace`` (spherical precisions), the products use ``[|x|^2, x]`` and the
    statistics keep (K, 1) traces. With ``shift``, the E-step is on the rows
    ``X - shift`` (see :meth:`CovarianceModel.accumulate_shifted`).
    """
    precisions_cholesky = params.precisions_cholesky
    if not kernels.is_numpy(X, precisions_cholesky, shift):
        return generic(kernels.shifted(X, shift), sample_weight, params)
    n_features = X.shape[1]
    precisions = model.feature_precisions(precisions_cholesky, n_features)
    fast = expanded_accumulate(
        X,
        sample_weight,
        params.log_weights(),
        params.means,
        precisions,
        1.0 / np.sqrt(precisions),
        model.log_det_precision_cholesky(precisions_cholesky, n_features),
        SquaredNorm(n_features) if trace else Squares(n_features),
        shift=shift,
    )
    if fast is None:
        return generic(kernels.shifted(X, shift), sample_weight, params)
    return fast
