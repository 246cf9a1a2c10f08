"""Data sources: how the rows reach the E-step, chunk by chunk.

A source is anything with a ``chunks()`` method returning a fresh iterator of
``(X_chunk, w_chunk)`` pairs (``w_chunk`` may be ``None`` for unit weights)
and a ``n_features`` attribute. EM streams the source once per iteration, so
the temporaries of an iteration are bounded by the chunk, not by N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

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


@dataclass(frozen=True)
class ArraySource:
    """An in-memory array (and optional sample weights) served in row chunks.

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

    def chunks(self) -> Iterator[tuple[Any, Optional[Any]]]:
        step = max(1, int(self.chunk_rows))
        for start in range(0, self.n_samples, step):
            stop = min(start + step, self.n_samples)
            weights = None if self.sample_weight is None else self.sample_weight[start:stop]
            rows = self.X[start:stop]
            yield (rows if self.origin is None else rows - self.origin), weights
