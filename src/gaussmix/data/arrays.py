"""Arrays served in row chunks: in memory, or read slice by slice (memory maps, HDF5, Zarr)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np

from .base import RowsPerChunk, SourceKind, check_real_dtype, check_weight_length, shifted_chunks


@dataclass(frozen=True)
class ArraySource:
    """An array (and optional sample weights) served in row chunks.

    In memory, or read slice by slice: a ``numpy.memmap``, an h5py dataset or a
    Zarr array give one chunk at a time as an in-memory array.

    Parameters
    ----------
    X : array of shape (n, D)
    sample_weight : array of shape (n,) or None
    chunk_rows : int
        Rows per chunk.
    origin : array of shape (D,) or None
        Subtracted from every chunk (a copy of one chunk at a time), so that EM
        runs in a frame centred on the data: float32 data far from the origin
        then keeps its precision in the statistics.
    """

    X: Any
    sample_weight: Optional[Any]
    chunk_rows: int
    origin: Optional[Any] = None

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def dtype(self) -> Any:
        return self.X.dtype

    def chunks(self) -> Iterator[tuple[Any, Optional[Any]]]:
        return shifted_chunks(self.unshifted_chunks(), self.origin)

    def unshifted_chunks(self) -> Iterator[tuple[Any, Optional[Any]]]:
        """The chunks as stored, ``origin`` not subtracted (views of an in-memory array)."""
        step = max(1, int(self.chunk_rows))
        for start in range(0, self.n_samples, step):
            stop = min(start + step, self.n_samples)
            weights = None if self.sample_weight is None else self.sample_weight[start:stop]
            yield self.X[start:stop], weights


#: top-level modules whose 2-D arrays are read chunk by chunk, never loaded whole
_SLICEABLE_ARRAY_MODULES = ("h5py", "zarr")


def _aligned_rows(chunk_rows: int, storage_chunks: Any) -> int:
    """Round ``chunk_rows`` to whole storage chunks (Zarr/HDF5 read whole chunks anyway)."""
    if isinstance(storage_chunks, tuple) and storage_chunks and storage_chunks[0]:
        block = int(storage_chunks[0])
        return max(1, chunk_rows // block) * block
    return chunk_rows


class SlicedArray(SourceKind):
    """A ``numpy.memmap``, an h5py dataset or a Zarr array: read one row slice at a time."""

    @classmethod
    def accepts(cls, X: Any) -> bool:
        return isinstance(X, np.memmap) or type(X).__module__.split(".")[0] in _SLICEABLE_ARRAY_MODULES

    @classmethod
    def open(cls, X: Any, sample_weight: Optional[Any], rows_per_chunk: RowsPerChunk) -> ArraySource:
        return row_slices(X, sample_weight, rows_per_chunk)


def row_slices(X: Any, sample_weight: Optional[Any], rows_per_chunk: RowsPerChunk) -> ArraySource:
    """A memmap, HDF5 or Zarr array in row slices, aligned to its storage chunks."""
    if len(getattr(X, "shape", ())) != 2:
        raise ValueError(f"expected a 2-D array (n_samples, n_features); got shape {getattr(X, 'shape', None)}")
    check_real_dtype(X.dtype, "X")
    check_weight_length(sample_weight, int(X.shape[0]))
    chunk_rows = _aligned_rows(rows_per_chunk(int(X.shape[1]), np.dtype(X.dtype)), getattr(X, "chunks", None))
    return ArraySource(X, sample_weight, chunk_rows)
