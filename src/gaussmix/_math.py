"""Array-namespace-generic numerical helpers."""

from __future__ import annotations

from typing import Any

from .backends import get_namespace


def logsumexp_rows(a: Any) -> Any:
    """``log(sum(exp(a), axis=1))`` for a 2-D array, stable for large magnitudes.

    Rows that are entirely ``-inf`` give ``-inf``.
    """
    xp = get_namespace(a)
    row_max = xp.max(a, axis=1, keepdims=True)
    row_max = xp.where(xp.isfinite(row_max), row_max, xp.zeros_like(row_max))
    return xp.log(xp.sum(xp.exp(a - row_max), axis=1)) + row_max[:, 0]
