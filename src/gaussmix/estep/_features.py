"""Expanded quadratic features ``[q(x), x]``: what the expanded E-steps multiply.

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

from typing import Any, Callable

import numpy as np

from . import _kernels as kernels

#: rounding error (relative to the covariances, summed over dimensions) that
#: float32 moments may add before a chunk's moments are summed in float64
#: instead; see :func:`rounding_scale`
MOMENTS_TOLERANCE = 1e-5

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
        compiled = kernels._compiled_kernels("layout")
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

    def scatter(self, second_moments: np.ndarray, resp_weight: np.ndarray, means: np.ndarray) -> np.ndarray:
        """Scatter about ``means`` from the moments ``sum r q(x)`` (K, ``n_squares``),
        in the :class:`SuffStats` layout of this kind of precision."""
        raise NotImplementedError


class Squares(QuadraticFeatures):
    """``[x^2, x]`` for diagonal precisions, given as (K, D); (K, D) scatters.

    The columns of ``q(x)`` sum to ``|x|^2`` (here and in :class:`SquaredNorm`),
    which :class:`~gaussmix.estep._sparse_moments.CompiledSparseMoments` relies on.
    """

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
        compiled = kernels._compiled_kernels("layout")
        if compiled is not None:  # one call, not one per feature
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
