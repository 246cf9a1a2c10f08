"""Data sources: how the rows reach the E-step, chunk by chunk (the public names of :mod:`gaussmix.data`).

A source is anything with a ``chunks()`` method returning a fresh iterator of
``(X_chunk, w_chunk)`` pairs (``w_chunk`` may be ``None`` for unit weights)
and a ``n_features`` attribute. EM streams the source once per iteration, so
the temporaries of an iteration are bounded by the chunk, not by N.

Chunk-source protocol
---------------------
Besides arrays, ``GaussianMixture.fit`` (and ``predict``, ``score``, ...)
accepts any object with:

``n_features`` : int
    Number of columns D of every chunk.
``n_samples`` : int, optional
    Number of rows, if known (checked against what ``chunks()`` yields).
``dtype`` : numpy dtype, optional
    float32 keeps the fit in float32; anything else is fitted in float64.
    Without it the first chunk's dtype decides.
``chunks()`` : callable
    Returns a *fresh* iterator of ``(X_chunk, weight_chunk_or_None)`` pairs,
    ``X_chunk`` of shape (n_chunk, D) and the weights of shape (n_chunk,).
    It is called once per pass (once per EM iteration, plus two passes before
    the first) and must yield the same rows in the same order every time.

For example, CSV files read a piece at a time::

    class CsvPieces:
        n_features = 4

        def __init__(self, paths):
            self.paths = paths

        def chunks(self):
            for path in self.paths:
                yield np.loadtxt(path, delimiter=","), None

``numpy.memmap`` arrays, ``.npy`` paths, HDF5 datasets (h5py) and Zarr arrays
are wrapped (:func:`open_chunk_source`) in sources following the same protocol.
"""

from __future__ import annotations

from .data import is_out_of_core, open_chunk_source
from .data.arrays import ArraySource
from .data.base import RowsPerChunk, SourceKind, check_real_dtype
from .data.chunking import (
    CHUNK_BUDGET_BYTES,
    MAX_CHUNK_ROWS,
    MIN_CHUNK_ROWS,
    SOURCE_CHUNK_FACTOR,
    auto_chunk_rows,
    auto_source_rows,
)
from .data.npy import NpyFileSource, read_npy_header
from .data.stream import StreamSource, source_dtype

__all__ = [
    "CHUNK_BUDGET_BYTES",
    "MAX_CHUNK_ROWS",
    "MIN_CHUNK_ROWS",
    "SOURCE_CHUNK_FACTOR",
    "ArraySource",
    "NpyFileSource",
    "RowsPerChunk",
    "SourceKind",
    "StreamSource",
    "auto_chunk_rows",
    "auto_source_rows",
    "check_real_dtype",
    "is_out_of_core",
    "open_chunk_source",
    "read_npy_header",
    "source_dtype",
]
