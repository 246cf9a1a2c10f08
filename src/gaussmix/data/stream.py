"""User chunk sources, and the checked, converted stream EM reads from every out-of-core source."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterator, Optional

import numpy as np

from .. import _validation as checks
from . import open_chunk_source
from .base import RowsPerChunk, SourceKind, check_real_dtype, shifted_chunks


class ChunkSource(SourceKind):
    """An object following the chunk-source protocol of :mod:`gaussmix.sources`: used as it is."""

    @classmethod
    def accepts(cls, X: Any) -> bool:
        return callable(getattr(X, "chunks", None)) and hasattr(X, "n_features")

    @classmethod
    def open(cls, X: Any, sample_weight: Optional[Any], rows_per_chunk: RowsPerChunk) -> Any:
        if sample_weight is not None:
            raise ValueError(
                "sample_weight cannot be combined with a chunk source: yield the weights "
                "from its chunks() as (X_chunk, weight_chunk) pairs"
            )
        return X


def source_dtype(source: Any) -> np.dtype:
    """Working precision of a chunk source: float32 stays float32, all else float64."""
    dtype = getattr(source, "dtype", None)
    if dtype is None:
        first = next(iter(source.chunks()), None)
        dtype = np.asarray(first[0]).dtype if first is not None else np.float64
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


@dataclass(frozen=True)
class StreamSource:
    """What EM streams from a chunk source: converted, shape-checked, shifted chunks.

    Parameters
    ----------
    inner : chunk source
    dtype : numpy dtype
        Every chunk is converted to it (float32 or float64).
    n_features : int
    origin : array of shape (D,) or None
        Subtracted from every chunk (the data-centred frame of EM).
    expected_rows : int or None
        Rows every pass must yield; a source whose ``chunks()`` is not
        re-iterable is caught here instead of fitting on nothing.
    weight_scale : float
        Every chunk's weights are multiplied by it (in float64, before they
        take ``dtype``): see :meth:`centred`.
    """

    inner: Any
    dtype: np.dtype
    n_features: int
    origin: Optional[Any] = None
    expected_rows: Optional[int] = None
    weight_scale: float = 1.0

    @property
    def n_samples(self) -> Optional[int]:
        """Rows the source says it has, if it says."""
        declared = getattr(self.inner, "n_samples", None)
        return None if declared is None else int(declared)

    def centred(self, origin: np.ndarray, n_rows: int, weight_scale: float = 1.0) -> "StreamSource":
        """The same stream in the frame centred on ``origin``, checked to yield ``n_rows`` rows per pass.

        ``weight_scale`` multiplies every weight (``n_rows / total weight``
        makes them mean one, as the in-memory fit's; see
        :func:`gaussmix._validation.unit_mean_weights`).
        """
        return replace(self, origin=origin, expected_rows=n_rows, weight_scale=weight_scale)

    def chunks(self) -> Iterator[tuple[np.ndarray, Optional[np.ndarray]]]:
        return shifted_chunks(self.unshifted_chunks(), self.origin)

    def unshifted_chunks(self) -> Iterator[tuple[np.ndarray, Optional[np.ndarray]]]:
        """The converted and checked chunks, ``origin`` not subtracted."""
        n_rows = 0
        for X, weights in self.inner.chunks():
            X = np.asarray(X)
            check_real_dtype(X.dtype, f"the chunk at row {n_rows}")
            X = X.astype(self.dtype, copy=False)
            if X.ndim != 2 or X.shape[1] != self.n_features:
                raise ValueError(
                    f"chunk at row {n_rows} has shape {X.shape}; every chunk must have shape "
                    f"(n_rows, {self.n_features})"
                )
            if weights is not None:
                weights = np.asarray(weights, dtype=np.float64) * self.weight_scale
                weights = weights.astype(self.dtype, copy=False)
                if weights.shape != (X.shape[0],):
                    raise ValueError(
                        f"weights of the chunk at row {n_rows} have shape {weights.shape}; "
                        f"expected ({X.shape[0]},), one weight per row"
                    )
            n_rows += X.shape[0]
            yield X, weights
        if self.expected_rows is not None and n_rows != self.expected_rows:
            raise ValueError(
                f"the data source yielded {n_rows} rows on this pass but {self.expected_rows} on "
                "the first: chunks() must return a fresh iterator over the same rows on every call"
            )


def open_stream(X: Any, sample_weight: Optional[Any], rows_per_chunk: RowsPerChunk) -> StreamSource:
    """Out-of-core ``X`` (and ``sample_weight`` of shape (n,), or None) as a stream of converted, shape-checked chunks."""
    source = open_chunk_source(X, sample_weight, rows_per_chunk)
    return StreamSource(source, source_dtype(source), int(source.n_features))


def finite_chunks(stream: StreamSource, nan_is_missing: bool = False):
    """The finite chunks of ``stream``; after the last, an error naming every NaN/inf row, if any.

    The whole source is read before the error (as the in-memory check lists
    every bad row); chunks holding bad rows are not handed out.
    ``nan_is_missing`` (``missing="marginalize"``): chunks may hold NaN, but
    not rows with every entry NaN.
    """
    first_row, bad = 0, None
    for chunk, weights in stream.chunks():
        entries = checks.NonFiniteEntries.of(chunk, first_row, nan_is_missing)
        if entries is None:
            if bad is None:
                yield chunk, weights
        else:
            bad = entries if bad is None else bad.merge(entries)
        first_row += chunk.shape[0]
    if bad is not None:
        raise bad.error("X", checks.MARGINALIZE_HINT if nan_is_missing else checks.MISSING_HINT)
