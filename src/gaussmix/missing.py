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

The E-step (:mod:`gaussmix.estep.incomplete`) groups rows by how many
entries they miss, whatever their pattern: through each component's
precision matrix only the M x M block of the missing entries has to be
inverted per row, so each group is one pass of a compiled kernel
(:mod:`gaussmix.estep._compiled_incomplete`, NumPy rows where numba runs:
rows missing three or more entries sorted by pattern, so that each pattern's
block is inverted once) or a few batched products in the rows' namespace
(NumPy, whose M x M blocks are inverted by vectorised sweeps, or torch);
10 % of entries
missing at random in 16 features make thousands of patterns but at most 16
groups.
Inference groups rows by pattern (``np.unique`` over the rows of the boolean
mask) and computes the marginal blocks once per pattern; so does imputation
(:mod:`gaussmix.imputation`, whose results do not depend on the chunking).
Complete rows go through the structure's own E-step kernel, so data without
NaN give bit-identical results.

A row with every entry missing carries no information and is an error (it
is named); infinite entries are errors as always. NumPy arrays (``fit`` and
``partial_fit``), torch tensors (the batched E-step in torch, on their
device), out-of-core data (:class:`IncompleteStream`: the same E-step on
each streamed chunk) and Dask arrays (:class:`IncompleteBlocks`: on each
block's chunks on the workers, tree-reduced) are supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ._math import logsumexp_rows
from .backends import device as _device
from .backends import get_namespace, to_numpy
from .conditioning import _index, _layout, _take, marginal_covariance_model
from .estep.incomplete import accumulate_incomplete
from .params import MixtureParams
from .data.arrays import ArraySource

#: the values of ``GaussianMixture(missing=...)``
MISSING_OPTIONS = ("error", "marginalize")


# ------------------------------------------------------------------ checks
def has_missing(X: Any) -> bool:
    """Whether the array ``X`` (NumPy, or another library's, such as a torch tensor) holds a NaN."""
    if isinstance(X, np.ndarray):
        return bool(np.isnan(np.sum(X))) and bool(np.isnan(X).any())
    if not _device.is_device_array(X):
        return False
    xp = get_namespace(X)
    return xp.isdtype(X.dtype, "real floating") and bool(xp.any(xp.isnan(X)))


def check_incomplete_rows(X: Any, name: str = "X") -> None:
    """Refuse infinite entries and rows with every entry missing (NaN) of ``X`` (n, D), naming them.

    ``X`` may live on a device: two (n,) masks come to the host.

    Raises
    ------
    ValueError
        Naming up to five rows (0-based) and what to do.
    """
    xp = get_namespace(X)
    infinite = np.flatnonzero(to_numpy(xp.any(xp.isinf(X), axis=1)))
    if infinite.size:
        raise ValueError(
            f"Input {name} contains infinite values in row(s) {_rows_text(infinite)} (0-based): "
            "missing='marginalize' treats NaN as missing, not inf; replace them with NaN or remove those rows"
        )
    empty = np.flatnonzero(to_numpy(xp.all(xp.isnan(X), axis=1)))
    if empty.size:
        raise ValueError(
            f"{empty.size} row(s) of {name} have every entry missing (NaN), at row(s) {_rows_text(empty)} "
            "(0-based): such a row carries no information about the mixture; drop those rows"
        )


def _rows_text(rows: np.ndarray, limit: int = 5) -> str:
    return ", ".join(str(int(r)) for r in rows[:limit]) + (", ..." if rows.size > limit else "")


def column_means(X: Any, sample_weight: Optional[Any] = None) -> Any:
    """The (weighted) mean of each column of ``X`` (n, D) over its observed entries, shape (D,), in X's
    namespace and dtype.

    Summed in float64. The EM frame is centred on it, and the initialisers
    (k-means & co.) see incomplete rows filled with it.

    Raises
    ------
    ValueError
        If a column has no observed entry of positive weight.
    """
    means, counts = observed_moments(X, sample_weight)
    check_observed_columns(counts)
    return get_namespace(X).astype(means, X.dtype)


def observed_moments(X: Any, sample_weight: Optional[Any] = None) -> tuple[Any, Any]:
    """The (weighted) mean of each column's observed entries (D,) and their total weight (D,), float64,
    in X's namespace.

    A column without an observed entry of positive weight has mean 0. Summed
    in float64; the means of chunks merge by their columns' weights.
    """
    xp = get_namespace(X)
    observed = ~xp.isnan(X)
    if sample_weight is None:
        weights = xp.ones(X.shape[0], dtype=xp.float64, device=getattr(X, "device", None))
    else:
        weights = xp.astype(sample_weight, xp.float64)
    totals = weights @ xp.astype(xp.where(observed, X, xp.zeros_like(X)), xp.float64)
    counts = weights @ xp.astype(observed, xp.float64)
    seen = counts > 0
    return xp.where(seen, totals / xp.where(seen, counts, xp.ones_like(counts)), xp.zeros_like(totals)), counts


def check_observed_columns(counts: Any) -> None:
    """Refuse columns whose observed entries weigh nothing (``counts`` (D,), see :func:`observed_moments`)."""
    empty = np.flatnonzero(to_numpy(counts) <= 0)
    if empty.size:
        raise ValueError(
            f"column(s) {_rows_text(empty)} (0-based) of X have no observed entry (of positive weight): "
            "nothing can be learnt about them; drop those columns"
        )


def filled_with(X: Any, values: Any) -> Any:
    """A copy of ``X`` (n, D) with each NaN replaced by its column's entry of ``values`` (D,)."""
    xp = get_namespace(X)
    return xp.where(xp.isnan(X), xp.broadcast_to(values[None, :], X.shape), X)


def observed_frame(X: Any, sample_weight: Optional[Any] = None) -> tuple[Any, Any]:
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


def mask_patterns(mask: np.ndarray) -> Iterator[Pattern]:
    """The missingness patterns of the boolean ``mask`` (n, D) (True: missing) and their rows
    (``np.unique`` over the mask's rows, encoded)."""
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
    xp = get_namespace(params.means)
    observed_index = _index(xp, observed, params.means)
    target = marginal_covariance_model(params.covariance)
    covariances = _layout(params.covariance).marginal(params.covariances, observed_index)
    # Blocks of covariances the M-step accepted: refuse only what cannot be factorised
    # (a tiny reg_covar lifts the relative collapse test, meant for the M-step's output).
    tiny = float(xp.finfo(params.means.dtype).smallest_normal)
    factor = target.precision_cholesky(covariances, reg_covar=tiny)
    return MixtureParams(params.weights, _take(xp, params.means, observed_index, 1), covariances, factor, target)


@dataclass(frozen=True)
class IncompleteArraySource(ArraySource):
    """An :class:`~gaussmix.data.arrays.ArraySource` whose rows may hold NaN.

    Its chunks are shifted copies (NaN stays NaN), and :func:`gaussmix.em.accumulate_source`
    runs its :meth:`accumulate` on them instead of the structure's kernel.
    """

    accumulate = staticmethod(accumulate_incomplete)


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
def posterior_incomplete(X: Any, params: MixtureParams) -> tuple[Any, Any]:
    """Responsibilities (n, K) and ``log p(x_n,o)`` (n,) of rows with NaN, each on its observed features."""
    weighted = log_weighted_incomplete(X, params)
    log_density = logsumexp_rows(weighted)
    return get_namespace(X).exp(weighted - log_density[:, None]), log_density


def log_weighted_incomplete(X: Any, params: MixtureParams) -> Any:
    """``log pi_k + log N(x_n,o | mu_ko, Sigma_koo)``, shape (n, K) (for ``predict``), in X's namespace.

    Patterns are found on the host (from the (n, D) mask); the rows stay where they are.
    """
    xp = get_namespace(X)
    device = getattr(X, "device", None)
    result = xp.empty((X.shape[0], params.n_components), dtype=X.dtype, device=device)
    for pattern in mask_patterns(np.asarray(to_numpy(xp.isnan(X)))):
        rows = pattern.rows if isinstance(X, np.ndarray) else _index(xp, pattern.rows.tolist(), X)
        rows_X = xp.take(X, rows, axis=0)
        if pattern.missing.size == 0:
            result[rows] = params.log_weighted_prob(rows_X)
        else:
            marginal = observed_marginal(params, pattern.observed)
            result[rows] = marginal.log_weighted_prob(xp.take(rows_X, _index(xp, pattern.observed.tolist(), X), axis=1))
    return result


def per_chunk_function(function: Callable[[Any, MixtureParams], Any], incomplete: Callable[[Any, MixtureParams], Any]):
    """``function`` on complete chunks, ``incomplete`` on chunks holding NaN."""

    def run(chunk: Any, params: MixtureParams) -> Any:
        return incomplete(chunk, params) if has_missing(chunk) else function(chunk, params)

    return run
