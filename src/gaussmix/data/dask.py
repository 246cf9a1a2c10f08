"""Dask arrays as persisted row blocks, each pass a fixed-tree reduction over them.

Dask is imported by the functions that need it, so that
:func:`gaussmix.data.source_kinds` can import this module without it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import numpy as np

from .base import RowsPerChunk


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
        import dask

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
    import dask.array as da

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


def open_blocks(X: Any, sample_weight: Any, rows_per_chunk: RowsPerChunk) -> DaskBlocks:
    """``X`` (a Dask array or DataFrame, shape (n, D)) and ``sample_weight`` (shape (n,), or None) as persisted blocks."""
    import dask
    import dask.array as da

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
    return DaskBlocks(X, weights, rows_per_chunk(int(X.shape[1]), X.dtype))
