"""Where a fit's rows come from: data sources, the chunk policy, Dask blocks.

- :mod:`~gaussmix.data.base`: what every out-of-core kind of data shares
  (:class:`~gaussmix.data.base.SourceKind`, the registry of kinds);
- :mod:`~gaussmix.data.arrays`: arrays in memory, memory maps, HDF5 and Zarr arrays;
- :mod:`~gaussmix.data.npy`: ``.npy`` files read one memory map per chunk;
- :mod:`~gaussmix.data.stream`: user chunk sources (the protocol of
  :mod:`gaussmix.sources`) and the checked stream EM reads from all of them;
- :mod:`~gaussmix.data.chunking`: how many rows a chunk holds (the one policy);
- :mod:`~gaussmix.data.dask`: Dask arrays as persisted blocks, reduced on the workers.

To add a kind of out-of-core data, write one subclass of
:class:`~gaussmix.data.base.SourceKind` in a new module of this package:
:func:`open_chunk_source` finds it. The package also holds the bundled data
sets (``faithful.csv``, read through ``importlib.resources``). Importing it
loads no optional library.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Optional

from .base import RowsPerChunk, SourceKind

_found_kinds: list = []


def source_kinds() -> list:
    """Every :class:`SourceKind`, after importing each module of this package once."""
    if not _found_kinds:
        # Importing a module defines its kinds; none of them imports an optional library at the top.
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _found_kinds.extend(SourceKind.registered)
    return _found_kinds


def is_out_of_core(X: Any) -> bool:
    """Whether ``X`` is data ``fit`` streams instead of loading into memory.

    True for a ``.npy`` path, a ``numpy.memmap``, an HDF5 dataset, a Zarr
    array, and any object following the chunk-source protocol (see :mod:`gaussmix.sources`).
    """
    return any(kind.accepts(X) for kind in source_kinds())


def open_chunk_source(X: Any, sample_weight: Optional[Any], rows_per_chunk: RowsPerChunk) -> Any:
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
    for kind in source_kinds():
        if kind.accepts(X):
            return kind.open(X, sample_weight, rows_per_chunk)
    raise TypeError(f"{type(X).__name__} is not out-of-core data: pass an array in memory instead")
