"""Missing values (NaN) marginalised exactly: the E-step, inference and imputation on incomplete rows.

The EM of Ghahramani & Jordan (1994) for data missing at random. A row with
missing entries ``m`` and observed entries ``o`` enters the likelihood through
its observed block alone, ``p(x_o) = sum_k pi_k N(x_o | mu_ko, Sigma_koo)``,
and, for each component, the E-step fills the missing block with its
conditional mean ``mu_km + B_k (x_o - mu_ko)`` (``B_k = Sigma_kmo
Sigma_koo^-1``) and adds the conditional covariance ``Sigma_kmm - B_k
Sigma_kom`` (the Schur complement) to the component's scatter. The result is
the same :class:`~gaussmix.stats.SuffStats` every covariance structure's
M-step consumes, so no M-step changes: this is one more way of computing the
statistics, not a second EM. For diagonal and spherical structures ``B_k = 0``:
a missing entry drops out of the row's likelihood exactly.

The E-step groups rows by how many entries they miss, whatever their
pattern: through each component's precision matrix only the M x M block of
the missing entries has to be inverted per row, so each group is one pass of
a compiled kernel (:mod:`gaussmix.estep._compiled_incomplete`, where numba
runs: rows missing three or more entries sorted by pattern, so that each
pattern's block is inverted once) or a few batched products
(:func:`_group_stats`, whose M x M blocks are inverted by vectorised sweeps,
:func:`sweep_inverse`); 10 % of entries
missing at random in 16 features make thousands of patterns but at most 16
groups.
Inference groups rows by pattern (``np.unique`` over the rows of the boolean
mask) and computes the marginal blocks once per pattern; so does imputation
(:mod:`gaussmix.imputation`, whose results do not depend on the chunking).
Complete rows go through the structure's own E-step kernel, so data without
NaN give bit-identical results.

A row with every entry missing carries no information and is an error (it
is named); infinite entries are errors as always. NumPy arrays (``fit`` and
``partial_fit``), out-of-core data (:class:`IncompleteStream`: the same
E-step on each streamed chunk) and Dask arrays (:class:`IncompleteBlocks`:
on each block's chunks on the workers, tree-reduced) are supported, not
torch input yet.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ._math import logsumexp_rows
from .conditioning import _index, _layout, _take, marginal_covariance_model
from ._numba import compiled
from .em import accumulate, sum_scalars
from .params import MixtureParams
from .data.arrays import ArraySource
from .data.chunking import auto_chunk_rows
from .stats import SuffStats

#: the values of ``GaussianMixture(missing=...)``
MISSING_OPTIONS = ("error", "marginalize")


# ------------------------------------------------------------------ checks
def has_missing(X: Any) -> bool:
    """Whether the NumPy array ``X`` holds a NaN."""
    return isinstance(X, np.ndarray) and bool(np.isnan(np.sum(X))) and bool(np.isnan(X).any())


def check_incomplete_rows(X: np.ndarray, name: str = "X") -> None:
    """Refuse infinite entries and rows with every entry missing (NaN), naming them.

    Raises
    ------
    ValueError
        Naming up to five rows (0-based) and what to do.
    """
    infinite = np.flatnonzero(np.isinf(X).any(axis=1))
    if infinite.size:
        raise ValueError(
            f"Input {name} contains infinite values in row(s) {_rows_text(infinite)} (0-based): "
            "missing='marginalize' treats NaN as missing, not inf; replace them with NaN or remove those rows"
        )
    empty = np.flatnonzero(np.isnan(X).all(axis=1))
    if empty.size:
        raise ValueError(
            f"{empty.size} row(s) of {name} have every entry missing (NaN), at row(s) {_rows_text(empty)} "
            "(0-based): such a row carries no information about the mixture; drop those rows"
        )


def _rows_text(rows: np.ndarray, limit: int = 5) -> str:
    return ", ".join(str(int(r)) for r in rows[:limit]) + (", ..." if rows.size > limit else "")


def column_means(X: np.ndarray, sample_weight: Optional[np.ndarray] = None) -> np.ndarray:
    """The (weighted) mean of each column over its observed entries, shape (D,), in X's dtype.

    Summed in float64. The EM frame is centred on it, and the initialisers
    (k-means & co.) see incomplete rows filled with it.

    Raises
    ------
    ValueError
        If a column has no observed entry of positive weight.
    """
    means, counts = observed_moments(X, sample_weight)
    check_observed_columns(counts)
    return means.astype(X.dtype)


def observed_moments(X: np.ndarray, sample_weight: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """The (weighted) mean of each column's observed entries (D,) and their total weight (D,), float64.

    A column without an observed entry of positive weight has mean 0. Summed
    in float64; the means of chunks merge by their columns' weights.
    """
    observed = ~np.isnan(X)
    weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    totals = weights @ np.where(observed, X, 0).astype(np.float64)
    counts = weights @ observed
    return np.divide(totals, counts, out=np.zeros_like(totals), where=counts > 0), counts


def check_observed_columns(counts: np.ndarray) -> None:
    """Refuse columns whose observed entries weigh nothing (``counts`` (D,), see :func:`observed_moments`)."""
    empty = np.flatnonzero(counts <= 0)
    if empty.size:
        raise ValueError(
            f"column(s) {_rows_text(empty)} (0-based) of X have no observed entry (of positive weight): "
            "nothing can be learnt about them; drop those columns"
        )


def filled_with(X: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A copy of ``X`` (n, D) with each NaN replaced by its column's entry of ``values`` (D,)."""
    return np.where(np.isnan(X), values[None, :], X)


def observed_frame(X: np.ndarray, sample_weight: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """The origin of an incomplete fit's frame, the observed column means (D,), and ``X`` (n, D)
    filled with them: the initialisers' rows (k-means & co. know nothing of NaN)."""
    origin = column_means(X, sample_weight)
    return origin, filled_with(X, origin)


def array_source(X: Any, sample_weight: Optional[Any], chunk_rows: int, origin: Any, missing: str) -> ArraySource:
    """The rows ``X`` (n, D) as an EM source: an :class:`IncompleteArraySource` where ``missing``
    is ``"marginalize"`` and ``X`` holds NaN, else a plain :class:`~gaussmix.data.arrays.ArraySource`
    (so that data without NaN fit bit for bit as with ``"error"``)."""
    kind = IncompleteArraySource if missing == "marginalize" and has_missing(X) else ArraySource
    return kind(X, sample_weight, chunk_rows, origin)


# ------------------------------------------------------------------ patterns
@dataclass(frozen=True)
class Pattern:
    """The rows of a chunk sharing one missingness pattern.

    Attributes
    ----------
    rows : ndarray of int, shape (n_p,)
        Their positions in the chunk, ascending.
    observed, missing : ndarray of int
        Feature indices, ascending; ``missing`` is empty for complete rows.
    """

    rows: np.ndarray
    observed: np.ndarray
    missing: np.ndarray


def patterns(X: np.ndarray) -> Iterator[Pattern]:
    """The missingness patterns of ``X`` (n, D) and their rows (``np.unique`` over the mask's rows, encoded)."""
    return mask_patterns(np.isnan(X))


def mask_patterns(mask: np.ndarray) -> Iterator[Pattern]:
    """The patterns of the boolean ``mask`` (n, D) (True: missing) and their rows, as :func:`patterns`."""
    # One code per row: np.unique(mask, axis=0) sorts rows of bytes, slowly; integers (bit
    # sets up to 62 features, else packed bytes) sort fast.
    if mask.shape[1] <= 62:
        codes = mask.astype(np.int64) @ (np.int64(1) << np.arange(mask.shape[1], dtype=np.int64))
    else:
        packed = np.ascontiguousarray(np.packbits(mask, axis=1))
        codes = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    unique, inverse = mask[first], np.ravel(inverse)  # NumPy 2.0.x returned the inverse in codes' shape
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=unique.shape[0]))])
    for p, pattern in enumerate(unique):
        yield Pattern(order[bounds[p]:bounds[p + 1]], np.flatnonzero(~pattern), np.flatnonzero(pattern))


def observed_marginal(params: MixtureParams, observed: np.ndarray) -> MixtureParams:
    """The K components' marginal over the ``observed`` features (O,), for one pattern.

    Built on :mod:`gaussmix.conditioning`'s block algebra, layout by layout;
    computed once per pattern (it depends on which features are observed, not on
    the values).
    """
    observed_index = _index(np, observed, params.means)
    target = marginal_covariance_model(params.covariance)
    covariances = _layout(params.covariance).marginal(params.covariances, observed_index)
    # Blocks of covariances the M-step accepted: refuse only what cannot be factorised
    # (a tiny reg_covar lifts the relative collapse test, meant for the M-step's output).
    factor = target.precision_cholesky(covariances, reg_covar=float(np.finfo(params.means.dtype).tiny))
    return MixtureParams(params.weights, _take(np, params.means, observed_index, 1), covariances, factor, target)


# ------------------------------------------------------------------ the E-step
def accumulate_incomplete(
    X: np.ndarray, sample_weight: Optional[np.ndarray], params: MixtureParams
) -> tuple[SuffStats, float]:
    """E-step on one chunk whose rows may hold NaN: ``(stats, loglik)``, as :func:`gaussmix.em.accumulate`.

    Parameters
    ----------
    X : ndarray of shape (n, D)
        NaN marks a missing entry; no row is entirely missing.
    sample_weight : ndarray of shape (n,) or None
    params : MixtureParams

    Returns
    -------
    stats : SuffStats
        Per component: ``N_k``, the mean of the rows filled with their
        conditional means, and the scatter of the filled rows about it plus
        the responsibility-weighted conditional covariances (their diagonals,
        or traces, where the structure keeps no more).
    loglik : float
        ``sum_n w_n log p(x_n,o)``: the observed-data log-likelihood.
    """
    mask = np.isnan(X)
    if not mask.any():  # complete chunks: the structure's own kernel, bit for bit
        return accumulate(X, sample_weight, params)
    n_missing = mask.sum(axis=1)
    complete = n_missing == 0
    parts = []
    if complete.any():
        parts.append(accumulate(X[complete], None if sample_weight is None else sample_weight[complete], params))
    group_stats = _GroupStats(params, X.shape[0])
    # Rows with the same number of missing entries share the shapes of their blocks: each
    # group is a few batched products (or one compiled pass), whatever its patterns.
    for count in np.unique(n_missing[~complete]):
        rows = np.flatnonzero(n_missing == count)
        for start in range(0, rows.size, group_stats.rows):
            chunk = rows[start:start + group_stats.rows]
            weights = None if sample_weight is None else sample_weight[chunk]
            parts.append(group_stats(X[chunk], weights))
    stats = functools.reduce(SuffStats.merge, (part for part, _ in parts))
    return stats, sum_scalars([float(loglik) for _, loglik in parts])


@dataclass(frozen=True)
class _DensePrecisions:
    """Each component's dense precision (K, D, D) and ``log det Sigma_k`` (K,), in float64."""

    precisions: np.ndarray
    log_det_covariances: np.ndarray

    @classmethod
    def of(cls, params: MixtureParams) -> "_DensePrecisions":
        covariances = np.asarray(params.dense_covariances(), dtype=np.float64)
        return cls(np.linalg.inv(covariances), np.linalg.slogdet(covariances)[1])


class _GroupStats:
    """``(X, sample_weight) -> (stats, loglik)`` of rows missing the same number of entries, under ``params``.

    The compiled kernel (:mod:`gaussmix.estep._compiled_incomplete`) where numba
    runs, else :func:`_group_stats`; what they need of the parameters is computed
    once per chunk. ``rows``: how many rows one call takes (the NumPy path keeps
    its (K, rows, D) temporaries cache-sized; the kernel works in blocks itself).
    """

    def __init__(self, params: MixtureParams, n_rows: int) -> None:
        self.params = params
        self.dense = _DensePrecisions.of(params)
        self.kernel = compiled("gaussmix.estep._compiled_incomplete")
        n_features = params.means.shape[1]
        if self.kernel is None:
            self.rows = auto_chunk_rows(params.n_components, n_features, params.means.dtype.itemsize)
            return
        self.rows = max(1, n_rows)
        # P = C C^T, C lower triangular: log det C = -log det Sigma / 2
        self.factors = np.linalg.cholesky(self.dense.precisions)
        log_weights = np.log(np.asarray(params.weights, dtype=np.float64))
        self.offsets = log_weights - 0.5 * self.dense.log_det_covariances - 0.5 * n_features * np.log(2 * np.pi)

    def __call__(self, X: np.ndarray, sample_weight: Optional[np.ndarray]) -> tuple[SuffStats, float]:
        if self.kernel is None:
            return _group_stats(X, sample_weight, self.params, self.dense)
        missing = np.nonzero(np.isnan(X))[1].reshape(X.shape[0], -1)
        return self.kernel.incomplete_group_stats(
            X, missing, sample_weight, self.params.means, self.factors, self.dense.precisions, self.offsets,
            self.params.covariance.full_scatter,
        )


def _group_stats(
    X: np.ndarray, sample_weight: Optional[np.ndarray], params: MixtureParams, dense: _DensePrecisions
) -> tuple[SuffStats, float]:
    """Statistics and observed-data log-likelihood of rows (n, D) that miss the same number M of entries.

    Through each component's precision ``P``: with the residual ``r`` zero in
    the missing entries and ``g = (P r)_m``, the observed block's quadratic form
    is ``r^T P r - g^T P_mm^-1 g``, ``log det Sigma_oo = log det Sigma + log det
    P_mm``, the conditional mean of the missing block is ``mu_m - P_mm^-1 g``
    and its conditional covariance ``P_mm^-1``: only M x M systems per row and
    component, batched over rows of any pattern.
    """
    n, n_features = X.shape
    K = params.n_components
    mask = np.isnan(X)
    missing = np.nonzero(mask)[1].reshape(n, -1)  # (n, M): each row's missing columns, ascending
    n_missing = missing.shape[1]
    means = np.asarray(params.means, dtype=np.float64)
    rows = np.where(mask, 0.0, X).astype(np.float64)
    # Component-major (K, n, ...) so that the products are batched matrix products (BLAS).
    residuals = np.where(mask[None, :, :], 0.0, rows[None, :, :] - means[:, None, :])  # (K, n, D)
    projected = residuals @ dense.precisions  # P symmetric: (P r) for every row
    gathered = np.take_along_axis(projected, missing[None, :, :], axis=2)  # (K, n, M)
    blocks = dense.precisions[:, missing[:, :, None], missing[:, None, :]]  # (K, n, M, M)
    conditional, log_det_block = sweep_inverse(blocks)  # P_mm^-1: the conditional covariances
    solved = (conditional @ gathered[..., None])[..., 0]  # (K, n, M)
    quadratic = np.sum(residuals * projected, axis=2) - np.sum(gathered * solved, axis=2)  # (K, n)
    n_observed = n_features - n_missing
    log_normal = -0.5 * (n_observed * np.log(2 * np.pi) + dense.log_det_covariances[:, None] + log_det_block + quadratic)
    weighted = (log_normal + np.log(np.asarray(params.weights, dtype=np.float64))[:, None]).T  # (n, K)
    log_density = logsumexp_rows(weighted)
    resp = np.exp(weighted - log_density[:, None])
    if sample_weight is None:
        weighted_resp, total, loglik = resp, float(n), float(np.sum(log_density))
    else:
        weights = np.asarray(sample_weight, dtype=np.float64)
        weighted_resp, total, loglik = resp * weights[:, None], float(np.sum(weights)), float(weights @ log_density)
    # Each component fills the missing block with its own conditional mean: (K, n, D).
    filled = np.repeat(rows[None, :, :], K, axis=0)
    filled[np.arange(K)[:, None, None], np.arange(n)[None, :, None], missing[None, :, :]] = (
        means[:, missing] - solved
    )
    resp_weight = np.sum(weighted_resp, axis=0)
    safe_weight = np.where(resp_weight > 0, resp_weight, 1)
    by_component = weighted_resp.T[:, :, None]  # (K, n, 1)
    component_means = np.sum(by_component * filled, axis=1) / safe_weight[:, None]
    centred = filled - component_means[:, None, :]
    weighted_conditional = weighted_resp.T[:, :, None, None] * conditional  # (K, n, M, M)
    components = np.arange(K)[:, None, None, None]
    if params.covariance.full_scatter:
        scatter = np.swapaxes(by_component * centred, 1, 2) @ centred  # (K, D, D)
        # every row adds its conditional covariance at its own missing positions
        flat = (components * n_features + missing[None, :, :, None]) * n_features + missing[None, :, None, :]
        scatter += np.bincount(np.broadcast_to(flat, weighted_conditional.shape).ravel(),
                               weights=weighted_conditional.ravel(),
                               minlength=K * n_features * n_features).reshape(K, n_features, n_features)
    else:
        scatter = np.sum(by_component * centred * centred, axis=1)
        diagonal = np.diagonal(weighted_conditional, axis1=2, axis2=3)  # (K, n, M)
        flat = components[..., 0] * n_features + missing[None, :, :]
        scatter += np.bincount(np.broadcast_to(flat, diagonal.shape).ravel(), weights=diagonal.ravel(),
                               minlength=K * n_features).reshape(K, n_features)
    dtype = X.dtype
    return SuffStats(resp_weight.astype(dtype), component_means.astype(dtype), scatter.astype(dtype), total), loglik


def sweep_inverse(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses (..., M, M) and log-determinants (...) of positive definite ``blocks`` (..., M, M).

    Gauss-Jordan sweeps, each one a few operations over the whole stack: LAPACK
    called once per small matrix costs far more than its arithmetic. Positive
    definite matrices need no pivoting, and the pivots' product is the
    determinant.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a pivot is not positive (a block is not numerically positive definite).
    """
    inverse = np.array(blocks, dtype=np.float64)
    log_det = np.zeros(inverse.shape[:-2])
    for p in range(inverse.shape[-1]):
        pivot = inverse[..., p, p].copy()
        if not np.all(pivot > 0):
            raise np.linalg.LinAlgError("a block of a precision matrix is not positive definite")
        log_det += np.log(pivot)
        column = inverse[..., :, p].copy()
        column[..., p] = 0
        inverse[..., :, p] = 0
        inverse[..., p, p] = 1
        inverse[..., p, :] /= pivot[..., None]
        inverse -= column[..., :, None] * inverse[..., None, p, :]
    return inverse, log_det


@dataclass(frozen=True)
class IncompleteArraySource(ArraySource):
    """An :class:`~gaussmix.data.arrays.ArraySource` whose rows may hold NaN.

    Its chunks are shifted copies (NaN stays NaN), and :func:`gaussmix.em.accumulate_source`
    runs its :meth:`accumulate` on them instead of the structure's kernel.
    """

    @staticmethod
    def accumulate(
        X: np.ndarray, sample_weight: Optional[np.ndarray], params: MixtureParams
    ) -> tuple[SuffStats, float]:
        return accumulate_incomplete(X, sample_weight, params)


@dataclass(frozen=True)
class IncompleteStream:
    """A centred out-of-core stream (:class:`gaussmix.data.stream.StreamSource`) whose rows may hold NaN.

    Its chunks are the stream's shifted chunks, and :func:`gaussmix.em.accumulate_source`
    runs its :meth:`accumulate` on them, as on :class:`IncompleteArraySource`'s.
    """

    stream: Any

    def chunks(self) -> Iterator[tuple[np.ndarray, Optional[np.ndarray]]]:
        return self.stream.chunks()

    #: the E-step of each chunk (a module-level function: Dask's workers unpickle it by name)
    accumulate = staticmethod(accumulate_incomplete)


@dataclass(frozen=True)
class IncompleteBlocks:
    """Centred Dask blocks (:class:`gaussmix.data.dask.DaskBlocks`) whose rows may hold NaN.

    :func:`gaussmix.em.accumulate_source` maps :meth:`accumulate` over the
    blocks' chunks on the workers and tree-reduces the statistics, as it
    maps the structure's E-step over complete blocks.
    """

    blocks: Any

    def map_reduce(self, function: Callable[..., Any], merge: Callable[[Any, Any], Any]) -> Any:
        return self.blocks.map_reduce(function, merge)

    accumulate = staticmethod(accumulate_incomplete)


def incomplete_stream(stream: Any) -> Any:
    """The centred ``stream`` (chunks, or Dask blocks with ``map_reduce``) through the incomplete E-step."""
    return IncompleteBlocks(stream) if hasattr(stream, "map_reduce") else IncompleteStream(stream)


# ------------------------------------------------------------------ inference
def posterior_incomplete(X: np.ndarray, params: MixtureParams) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities (n, K) and ``log p(x_n,o)`` (n,) of rows with NaN, each on its observed features."""
    weighted = log_weighted_incomplete(X, params)
    log_density = logsumexp_rows(weighted)
    return np.exp(weighted - log_density[:, None]), log_density


def log_weighted_incomplete(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    """``log pi_k + log N(x_n,o | mu_ko, Sigma_koo)``, shape (n, K) (for ``predict``)."""
    result = np.empty((X.shape[0], params.n_components), dtype=X.dtype)
    for pattern in patterns(X):
        rows_X = X[pattern.rows]
        if pattern.missing.size == 0:
            result[pattern.rows] = params.log_weighted_prob(rows_X)
        else:
            marginal = observed_marginal(params, pattern.observed)
            result[pattern.rows] = marginal.log_weighted_prob(rows_X[:, pattern.observed])
    return result


def per_chunk_function(function: Callable[[Any, MixtureParams], Any], incomplete: Callable[[Any, MixtureParams], Any]):
    """``function`` on complete chunks, ``incomplete`` on chunks holding NaN."""

    def run(chunk: Any, params: MixtureParams) -> Any:
        return incomplete(chunk, params) if has_missing(chunk) else function(chunk, params)

    return run
