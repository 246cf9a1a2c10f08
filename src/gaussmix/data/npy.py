""".npy files read through one memory map per chunk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np

from .._threads import n_worker_threads
from ..estep._kernels import balanced_rows
from .arrays import row_slices
from .base import RowsPerChunk, SourceKind, check_real_dtype, check_weight_length


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


@dataclass(frozen=True)
class NpyFileSource(SourceKind):
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
    def accepts(cls, X: Any) -> bool:
        return isinstance(X, (str, os.PathLike))

    @classmethod
    def open(cls, path: Any, sample_weight: Optional[Any], rows_per_chunk: RowsPerChunk) -> Any:
        """Read the header of ``path``; Fortran-ordered files fall back to one whole-file map."""
        try:
            with open(path, "rb") as handle:
                header = read_npy_header(handle)
                if header is None:
                    return row_slices(np.load(path, mmap_mode="r"), sample_weight, rows_per_chunk)
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
            return row_slices(np.load(path, mmap_mode="r"), sample_weight, rows_per_chunk)
        check_weight_length(sample_weight, int(shape[0]))
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
