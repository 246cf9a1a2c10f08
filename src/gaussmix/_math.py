"""Array-namespace-generic numerical helpers."""

from __future__ import annotations

from typing import Any

from .backends import backend_for, get_namespace


def logsumexp_rows(a: Any) -> Any:
    """``log(sum(exp(a), axis=1))`` for a 2-D array, stable for large magnitudes.

    Rows that are entirely ``-inf`` give ``-inf``. Each backend supplies its own
    (the array API has no logsumexp; torch's is fused).
    """
    return backend_for(get_namespace(a)).logsumexp_rows(a)
