"""Data sources: how the rows reach the E-step, chunk by chunk.

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

import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ._threads import SMALL_FIT_ENTRIES, n_worker_threads
from .estep._kernels import balanced_rows

#: bytes the widest per-chunk temporary (n_chunk x K x D) may take
CHUNK_BUDGET_BYTES = 8 * 2**20
MIN_CHUNK_ROWS = 256
MAX_CHUNK_ROWS = 2**17


def auto_chunk_rows(n_components: int, n_features: int, itemsize: int, budget_bytes: Optional[int] = None) -> int:
    """Rows per chunk so that an (n_chunk, K, D) temporary stays within the budget.

    ``budget_bytes`` replaces the host's cache-sized default (and lifts its
    row cap): a GPU backend passes a share of the free device memory.
    """
    per_row = max(1, n_components * max(n_features, 1) * itemsize)
    if budget_bytes is not None:
        return int(max(MIN_CHUNK_ROWS, budget_bytes // per_row))
    return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, CHUNK_BUDGET_BYTES // per_row)))


#: an EM source hands over up to this many times ``auto_chunk_rows`` at once:
#: the E-step kernels work through a chunk in cache-sized blocks anyway, and
#: fewer, larger chunks cost less per-chunk overhead (~0.3-0.5 ms of Python and
#: parameter-derived arrays each). 64 against 16, median s/iteration of issue 3's
#: cases (float64, two threads): diag (4e5 rows) 0.35-0.37 -> 0.28-0.30, wide
#: 1.35-1.49 -> 1.13, tied 0.067 -> 0.057, spherical 0.032-0.035 -> 0.027-0.028,
#: mid unchanged (its chunks were already at ``MAX_CHUNK_ROWS`` / 2)
SOURCE_CHUNK_FACTOR = 64


def auto_source_rows(n_samples: int, n_components: int, n_features: int, itemsize: int, n_workers: int) -> int:
    """Rows per chunk of an EM data source.

    Large chunks (``SOURCE_CHUNK_FACTOR`` times :func:`auto_chunk_rows`, at
    most ``MAX_CHUNK_ROWS``), as many as a multiple of ``n_workers`` and of
    equal size, so that every worker thread gets the same share: the workers
    take chunks in rounds, and three full chunks and a sliver on two threads
    kept one of them idle for a whole chunk (a quarter of the iteration). Peak
    memory stays independent of N: each ``accumulate_chunk`` keeps its
    (rows, K, D) temporaries within the :func:`auto_chunk_rows` budget by
    working in blocks.
    """
    if n_samples * n_features * n_components < SMALL_FIT_ENTRIES:
        # Small data run on one thread (one_thread_for_small_fit): a second chunk would
        # only add a thread-pool round trip to every iteration.
        return max(1, n_samples)
    large = min(MAX_CHUNK_ROWS, SOURCE_CHUNK_FACTOR * auto_chunk_rows(n_components, n_features, itemsize))
    return max(MIN_CHUNK_ROWS, balanced_rows(n_samples, large, n_workers))


def read_npy_header(stream: Any) -> Optional[tuple[tuple, bool, np.dtype]]:
    """``(shape, fortran_order, dtype)`` of the .npy header at the start of ``stream``.

    None for a format version NumPy's header readers do not cover (3.0: the
    caller loads such a file whole); ValueError for data that is not .npy.
    """
    version = np.lib.format.read_magic(stream)
    read_header = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }.get(version)
    return None if read_header is None else read_header(stream)


def _shifted_chunks(chunks: Iterator[tuple[Any, Optional[Any]]], origin: Optional[Any]) -> Iterator[tuple[Any, Optional[Any]]]:
    """``(X - origin, weights)`` for each chunk (copies), or the chunks as they are without ``origin``."""
    for rows, weights in chunks:
        yield (rows if origin is None else rows - origin), weights


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
        return _shifted_chunks(self.unshifted_chunks(), self.origin)

    def unshifted_chunks(self) -> Iterator[tuple[Any, Optional[Any]]]:
        """The chunks as stored, ``origin`` not subtracted (views of an in-memory array)."""
        step = max(1, int(self.chunk_rows))
        for start in range(0, self.n_samples, step):
            stop = min(start + step, self.n_samples)
            weights = None if self.sample_weight is None else self.sample_weight[start:stop]
            yield self.X[start:stop], weights


# ---------------------------------------------------------- out-of-core sources

#: ``rows_per_chunk(n_features, dtype) -> int``
RowsPerChunk = Callable[[int, np.dtype], int]

#: top-level modules whose 2-D arrays are read chunk by chunk, never loaded whole
_SLICEABLE_ARRAY_MODULES = ("h5py", "zarr")


def is_out_of_core(X: Any) -> bool:
    """Whether ``X`` is data ``fit`` streams instead of loading into memory.

    True for a ``.npy`` path, a ``numpy.memmap``, an HDF5 dataset, a Zarr
    array, and any object following the chunk-source protocol (module docstring).
    """
    if isinstance(X, (str, os.PathLike)):
        return True
    if isinstance(X, np.memmap):
        return True
    if type(X).__module__.split(".")[0] in _SLICEABLE_ARRAY_MODULES:
        return True
    return callable(getattr(X, "chunks", None)) and hasattr(X, "n_features")


def _aligned_rows(chunk_rows: int, storage_chunks: Any) -> int:
    """Round ``chunk_rows`` to whole storage chunks (Zarr/HDF5 read whole chunks anyway)."""
    if isinstance(storage_chunks, tuple) and storage_chunks and storage_chunks[0]:
        block = int(storage_chunks[0])
        return max(1, chunk_rows // block) * block
    return chunk_rows


@dataclass(frozen=True)
class NpyFileSource:
    """A ``.npy`` file read through one memory map per chunk.

    Mapping a chunk at a time (instead of the whole file) keeps the address
    space bounded too, so the fit also runs under ``ulimit -v`` (RLIMIT_AS)
    limits smaller than the file, as batch schedulers often impose.

    Parameters
    ----------
    path : str or PathLike
        A C-ordered 2-D array saved by ``numpy.save``.
    sample_weight : array-like of shape (n,) or None
    chunk_rows : int
    """

    path: Any
    shape: tuple[int, int]
    dtype: np.dtype
    data_offset: int
    sample_weight: Optional[Any]
    chunk_rows: int

    @classmethod
    def open(cls, path: Any, sample_weight: Optional[Any], rows_per_chunk: "RowsPerChunk") -> Any:
        """Read the header of ``path``; Fortran-ordered files fall back to one whole-file map."""
        try:
            with open(path, "rb") as handle:
                header = read_npy_header(handle)
                if header is None:
                    return _row_slices(np.load(path, mmap_mode="r"), sample_weight, rows_per_chunk)
                shape, fortran_order, dtype = header
                data_offset = handle.tell()
                file_size = os.fstat(handle.fileno()).st_size
        except FileNotFoundError:
            raise ValueError(f"no such file: {os.fspath(path)!r}; pass a path to a .npy file") from None
        except ValueError as error:
            raise ValueError(
                f"{os.fspath(path)!r} is not a .npy file ({error}); save the data with numpy.save, "
                "or pass a numpy.memmap, an h5py/Zarr array or a chunk source"
            ) from None
        if len(shape) != 2:
            raise ValueError(f"{os.fspath(path)!r} holds an array of shape {shape}; expected a 2-D array (n_samples, n_features)")
        if dtype.hasobject or dtype.names is not None:
            raise ValueError(f"{os.fspath(path)!r} holds dtype {dtype}; expected a numeric 2-D array")
        check_real_dtype(dtype, repr(os.fspath(path)))
        _check_file_size(path, shape, dtype, data_offset, file_size)
        if fortran_order:
            return _row_slices(np.load(path, mmap_mode="r"), sample_weight, rows_per_chunk)
        _check_weight_length(sample_weight, int(shape[0]))
        # Equal chunks, a multiple of the worker threads: 31 chunks on two threads left
        # one idle for the last.
        chunk_rows = balanced_rows(int(shape[0]), rows_per_chunk(int(shape[1]), dtype), n_worker_threads())
        return cls(path, (int(shape[0]), int(shape[1])), dtype, data_offset, sample_weight, chunk_rows)

    @property
    def n_samples(self) -> int:
        return self.shape[0]

    @property
    def n_features(self) -> int:
        return self.shape[1]

    def chunks(self) -> Iterator[tuple[Any, Optional[Any]]]:
        step = max(1, int(self.chunk_rows))
        row_bytes = self.n_features * self.dtype.itemsize
        with open(self.path, "rb") as handle:
            for start in range(0, self.n_samples, step):
                stop = min(start + step, self.n_samples)
                if row_bytes == 0:
                    rows = np.empty((stop - start, 0), dtype=self.dtype)
                else:
                    rows = np.memmap(
                        handle, dtype=self.dtype, mode="r", shape=(stop - start, self.n_features),
                        offset=self.data_offset + start * row_bytes,
                    )
                weights = None if self.sample_weight is None else np.asarray(self.sample_weight[start:stop])
                yield rows, weights


def _check_file_size(path: Any, shape: tuple[int, ...], dtype: np.dtype, data_offset: int, file_size: int) -> None:
    """Refuse a ``.npy`` file shorter than its header says (numpy's memory map would
    fail later with "mmap length is greater than file size", naming no file)."""
    needed = data_offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if file_size < needed:
        raise ValueError(
            f"{os.fspath(path)!r} is truncated: its header declares an array of shape {tuple(shape)} "
            f"and dtype {dtype} ({needed} bytes with the header), but the file has {file_size} bytes; "
            "copy or save it again"
        )


def check_real_dtype(dtype: Any, what: str) -> None:
    """Refuse complex data, as the in-memory path does (converting would drop the imaginary part).

    Parameters
    ----------
    dtype : numpy dtype
    what : str
        The data, for the message (a file name, "chunk at row 0").
    """
    if np.dtype(dtype).kind == "c":
        raise ValueError(
            f"{what} holds complex numbers (dtype {np.dtype(dtype)}); gaussmix fits real data: "
            "pass the real part, or the real and imaginary parts as separate features"
        )


def _check_weight_length(sample_weight: Optional[Any], n_samples: int) -> None:
    shape = getattr(sample_weight, "shape", None)
    if sample_weight is not None and (shape is None or tuple(shape) != (n_samples,)):
        raise ValueError(
            f"sample_weight must be an array of shape ({n_samples},), one weight per row of X; "
            f"got {'shape ' + str(tuple(shape)) if shape is not None else type(sample_weight).__name__}"
        )


def _row_slices(X: Any, sample_weight: Optional[Any], rows_per_chunk: "RowsPerChunk") -> ArraySource:
    """A memmap, HDF5 or Zarr array in row slices, aligned to its storage chunks."""
    if len(getattr(X, "shape", ())) != 2:
        raise ValueError(f"expected a 2-D array (n_samples, n_features); got shape {getattr(X, 'shape', None)}")
    check_real_dtype(X.dtype, "X")
    _check_weight_length(sample_weight, int(X.shape[0]))
    chunk_rows = _aligned_rows(rows_per_chunk(int(X.shape[1]), np.dtype(X.dtype)), getattr(X, "chunks", None))
    return ArraySource(X, sample_weight, chunk_rows)


def open_chunk_source(X: Any, sample_weight: Optional[Any], rows_per_chunk: "RowsPerChunk") -> Any:
    """Wrap out-of-core data (see :func:`is_out_of_core`) as a chunk source.

    ``rows_per_chunk(n_features, dtype)`` chooses the chunk length of arrays
    and files (a chunk source's own chunks are used as they come).

    Raises
    ------
    ValueError
        For a chunk source given together with ``sample_weight`` (its weights
        come from its chunks), for a path that is not a 2-D ``.npy`` file, or
        for arrays that are not 2-D.
    """
    if isinstance(X, (str, os.PathLike)):
        return NpyFileSource.open(X, sample_weight, rows_per_chunk)
    if callable(getattr(X, "chunks", None)):
        if sample_weight is not None:
            raise ValueError(
                "sample_weight cannot be combined with a chunk source: yield the weights "
                "from its chunks() as (X_chunk, weight_chunk) pairs"
            )
        return X
    return _row_slices(X, sample_weight, rows_per_chunk)


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
        return _shifted_chunks(self.unshifted_chunks(), self.origin)

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
