"""Gaussian mixtures on Dask arrays and DataFrames (``pip install 'gaussmix[dask]'``).

The rows stay on the workers: ``fit`` persists the blocks once, and every pass
(validation and mean, starting statistics, each EM iteration) maps the same
per-chunk functions the out-of-core fit uses (:func:`gaussmix.em.accumulate`
for the E-step) over the blocks and tree-reduces their small, mergeable
results with ``dask.delayed``; only the M-step runs on the client. Works with
any scheduler, the distributed one (``dask.distributed.Client``) included;
a worker lost mid-fit costs a recomputation of its blocks, not a different
result, because the tree and the order of every merge are fixed by the blocks.

``import gaussmix`` does not import this module (nor Dask).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("gaussmix.dask needs Dask: pip install 'gaussmix[dask]'") from error

from . import _validation as checks
from . import estimator as _estimator
from .em import responsibilities
from .params import MixtureParams

#: how many partial results one task of the reduction tree merges
SPLIT_EVERY = 8


@dataclass(frozen=True)
class DaskBlocks:
    """Row blocks of a persisted Dask array: the stream a Dask fit reduces over.

    Attributes
    ----------
    X : dask.array.Array of shape (n, D)
        One chunk along the columns, persisted.
    sample_weight : dask.array.Array of shape (n,) or None
        Chunked like the rows of ``X``.
    chunk_rows : int
        A block is processed in chunks of this many rows, so a worker's
        temporaries stay bounded by the chunk (as in memory), not the block.
    origin : ndarray of shape (D,) or None
        Subtracted from every chunk on the workers (the centred frame of EM).
    """

    X: Any
    sample_weight: Optional[Any]
    chunk_rows: int
    origin: Optional[np.ndarray] = None

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.X.dtype)

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def centred(self, origin: np.ndarray, n_rows: int, weight_scale: float = 1.0) -> "DaskBlocks":
        """The blocks in the frame centred on ``origin``, every weight multiplied by ``weight_scale``."""
        if self.sample_weight is None or weight_scale == 1.0:
            return replace(self, origin=origin)
        dtype = self.sample_weight.dtype
        scaled = (self.sample_weight.astype(np.float64) * weight_scale).astype(dtype)
        return replace(self, origin=origin, sample_weight=scaled)

    def map_reduce(self, function: Callable[..., Any], merge: Callable[[Any, Any], Any]) -> Any:
        """``function(X_block, w_block, first_row)`` on every block, merged along a fixed tree."""
        x_blocks = self.X.to_delayed().ravel()
        w_blocks = [None] * len(x_blocks) if self.sample_weight is None else self.sample_weight.to_delayed().ravel()
        first_rows = np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]]).astype(int)
        part = dask.delayed(_block_part)
        level = [
            part(function, merge, x, w, int(row), self.origin, self.chunk_rows)
            for x, w, row in zip(x_blocks, w_blocks, first_rows)
        ]
        merge_group = dask.delayed(_merge_group)
        while len(level) > 1:
            level = [merge_group(merge, level[i:i + SPLIT_EVERY]) for i in range(0, len(level), SPLIT_EVERY)]
        return dask.compute(level[0])[0]


def _block_part(
    function: Callable[..., Any], merge: Callable[[Any, Any], Any], X: np.ndarray, weights: Optional[np.ndarray],
    first_row: int, origin: Optional[np.ndarray], chunk_rows: int,
) -> Any:
    """One block's merged result, computed chunk by chunk on the worker."""
    result = None
    for start in range(0, max(X.shape[0], 1), chunk_rows):
        rows = X[start:start + chunk_rows]
        part = function(
            rows if origin is None else rows - origin,
            None if weights is None else weights[start:start + chunk_rows],
            first_row + start,
        )
        result = part if result is None else merge(result, part)
    return result


def _merge_group(merge: Callable[[Any, Any], Any], parts: list) -> Any:
    return functools.reduce(merge, parts)


def as_dask_rows(X: Any) -> Any:
    """A 2-D Dask array with known row chunks and one column chunk, in float32 or float64.

    Accepts Dask arrays, Dask DataFrames and anything ``dask.array.asarray`` takes.
    """
    if hasattr(X, "to_dask_array"):
        X = X.to_dask_array(lengths=True)
    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array (n_samples, n_features); got shape {X.shape}")
    if any(np.isnan(size) for size in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"X must hold real numbers; got dtype {X.dtype}")
    if X.dtype != np.float32:
        X = X.astype(np.float64)
    return X.rechunk({1: -1})


def _labels(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    return np.argmax(params.log_weighted_prob(X), axis=1)


def _probabilities(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    return responsibilities(X, params)[0]


def _log_density(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    return responsibilities(X, params)[1]


def _apply_to_block(
    X: np.ndarray, function: Callable[[np.ndarray, MixtureParams], np.ndarray], params: MixtureParams,
    chunk_rows: int, block_info: Optional[dict] = None,
) -> np.ndarray:
    """``function`` over one block, chunk by chunk, after a NaN/inf check naming global rows."""
    first_row = 0 if not block_info else block_info[0]["array-location"][0][0]
    checks.check_all_finite(X, "X", first_row, nan_hint=checks.MISSING_HINT)
    pieces = [function(X[start:start + chunk_rows], params) for start in range(0, max(X.shape[0], 1), chunk_rows)]
    return np.concatenate(pieces, axis=0)


class GaussianMixture(_estimator.GaussianMixture):
    """:class:`gaussmix.GaussianMixture` fitted on a Dask cluster.

    Same parameters, attributes and results (equal to the in-memory fit from
    the same start, up to rounding); ``fit`` takes a Dask array or DataFrame
    (other arrays are wrapped with ``dask.array.asarray``) and optional Dask
    ``sample_weight``. The initialiser runs on the client on a weighted
    reservoir sample of at most 32768 rows drawn on the workers.
    ``predict``, ``predict_proba`` and ``score_samples`` return lazy Dask
    arrays; ``score``, ``bic`` and ``aic`` compute.
    """

    def _open_stream(self, X: Any, sample_weight: Any) -> DaskBlocks:
        X = as_dask_rows(X)
        weights = None
        if sample_weight is not None:
            if hasattr(sample_weight, "to_dask_array"):  # a Dask Series
                sample_weight = sample_weight.to_dask_array(lengths=True)
            weights = da.asarray(sample_weight)
            if weights.shape != (X.shape[0],):
                raise ValueError(
                    f"sample_weight must have shape ({X.shape[0]},), one weight per row of X; got shape {weights.shape}"
                )
            weights = weights.astype(X.dtype).rechunk((X.chunks[0],))
        # Read (or compute) the blocks once; every later pass finds them in worker memory.
        X, weights = dask.persist(X, weights)
        return DaskBlocks(X, weights, self._rows_per_chunk(int(X.shape[1]), X.dtype))

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "GaussianMixture":
        """Estimate the parameters with EM over the blocks of ``X`` (see the class docstring)."""
        covariance = self._check_hyperparameters()
        self._online = None
        self._fit_streamed(self._open_stream(X, sample_weight), covariance)
        return self

    def _lazy_rows(self, X: Any) -> tuple[Any, MixtureParams]:
        _estimator.check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        X = as_dask_rows(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X, self._fitted_params(X.dtype)

    def _map_rows(self, X: Any, function: Callable[[np.ndarray, MixtureParams], np.ndarray], **shape: Any) -> Any:
        X, params = self._lazy_rows(X)
        chunk_rows = self._rows_per_chunk(int(X.shape[1]), X.dtype)
        return X.map_blocks(_apply_to_block, function, params, chunk_rows, **shape)

    def predict(self, X: Any) -> Any:
        """Most probable component of each row: a lazy Dask array of shape (n_samples,)."""
        return self._map_rows(X, _labels, drop_axis=1, dtype=np.intp)

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities: a lazy Dask array of shape (n_samples, K)."""
        X = as_dask_rows(X)
        return self._map_rows(X, _probabilities, chunks=(X.chunks[0], (self.n_components,)), dtype=X.dtype)

    def score_samples(self, X: Any) -> Any:
        """Log-density of each row: a lazy Dask array of shape (n_samples,)."""
        X = as_dask_rows(X)
        return self._map_rows(X, _log_density, drop_axis=1, dtype=X.dtype)

    def _log_likelihood(self, X: Any) -> tuple[float, float]:
        log_density = self.score_samples(X)
        return float(log_density.astype(np.float64).sum().compute()), float(log_density.shape[0])

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-density of the rows of ``X`` (computed)."""
        total, n = self._log_likelihood(X)
        return total / n
