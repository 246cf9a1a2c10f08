"""What every kind of out-of-core data shares: the registry of kinds and the checks on what they hold."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterator, Optional

import numpy as np

#: ``rows_per_chunk(n_features, dtype) -> int``
RowsPerChunk = Callable[[int, np.dtype], int]


class SourceKind:
    """One kind of out-of-core data: which inputs it takes, and how it opens them as a chunk source.

    Subclassing registers the kind (:func:`gaussmix.data.source_kinds`); the
    kinds take disjoint inputs, so their order does not matter.
    """

    registered: ClassVar[list] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        SourceKind.registered.append(cls)

    @classmethod
    def accepts(cls, X: Any) -> bool:
        """Whether ``X`` is data of this kind."""
        raise NotImplementedError

    @classmethod
    def open(cls, X: Any, sample_weight: Optional[Any], rows_per_chunk: RowsPerChunk) -> Any:
        """``X`` (and ``sample_weight``, shape (n,), or None) as an object with ``chunks()`` and ``n_features``."""
        raise NotImplementedError


def shifted_chunks(chunks: Iterator[tuple[Any, Optional[Any]]], origin: Optional[Any]) -> Iterator[tuple[Any, Optional[Any]]]:
    """``(X - origin, weights)`` for each chunk (copies), or the chunks as they are without ``origin``."""
    for rows, weights in chunks:
        yield (rows if origin is None else rows - origin), weights


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


def check_weight_length(sample_weight: Optional[Any], n_samples: int) -> None:
    shape = getattr(sample_weight, "shape", None)
    if sample_weight is not None and (shape is None or tuple(shape) != (n_samples,)):
        raise ValueError(
            f"sample_weight must be an array of shape ({n_samples},), one weight per row of X; "
            f"got {'shape ' + str(tuple(shape)) if shape is not None else type(sample_weight).__name__}"
        )
