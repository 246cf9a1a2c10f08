"""Where a per-row result too large to hold twice is written, chunk by chunk.

``out`` as :meth:`gaussmix.GaussianMixture.impute` takes it: None (a new
array in memory), the path of a ``.npy`` file to create (written through a
memory map, returned opened read-only), or an array to fill in place (a
NumPy array, ``numpy.memmap``, h5py dataset or Zarr array of the result's
shape): only one chunk of the result is in memory at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..backends import to_numpy


@dataclass
class RowOutput:
    """The result being written: its rows lie along ``row_axis`` (1 for stacks of draws, else 0).

    Attributes
    ----------
    target : array
        Written by :meth:`write`.
    path : path or None
        Where ``target`` is a new ``.npy`` file's memory map.
    row_axis : int
    """

    target: Any
    path: Optional[Any]
    row_axis: int

    @classmethod
    def open(cls, out: Any, shape: tuple[int, ...], dtype: Any, row_axis: int = 0, like: Any = None) -> "RowOutput":
        """The output for ``out`` (see the module's docstring) of ``shape`` and ``dtype``.

        ``like``: a new array (``out`` None) is made in its namespace and on its
        device (a NumPy array by default).

        Raises
        ------
        ValueError
            If ``out`` is an array of another shape, or neither a path nor an array.
        """
        if out is None:
            if like is None:
                return cls(np.empty(shape, dtype=dtype), None, row_axis)
            from ..backends import get_namespace

            xp = get_namespace(like)
            return cls(xp.empty(shape, dtype=like.dtype, device=getattr(like, "device", None)), None, row_axis)
        if isinstance(out, (str, os.PathLike)):
            return cls(np.lib.format.open_memmap(out, mode="w+", dtype=dtype, shape=shape), out, row_axis)
        if not (hasattr(out, "shape") and hasattr(out, "__setitem__")):
            raise ValueError(
                f"out must be None, the path of a .npy file to write, or an array to fill; got {type(out).__name__}"
            )
        if tuple(out.shape) != tuple(shape):
            raise ValueError(f"out has shape {tuple(out.shape)}; the result has shape {tuple(shape)}: "
                             "pass an array of that shape, or a path")
        return cls(out, None, row_axis)

    def write(self, first_row: int, rows: Any) -> None:
        """Put ``rows`` (the result for rows ``first_row ..``) in place."""
        index = [slice(None)] * self.row_axis + [slice(first_row, first_row + rows.shape[self.row_axis])]
        if self.path is not None or not _same_kind(self.target, rows):
            rows = to_numpy(rows)
        self.target[tuple(index)] = rows

    def result(self) -> Any:
        """What the caller gets: the filled array, or the written file opened read-only."""
        if self.path is None:
            return self.target
        self.target.flush()
        del self.target
        return np.load(self.path, mmap_mode="r")


def _same_kind(target: Any, rows: Any) -> bool:
    return type(target) is type(rows)
