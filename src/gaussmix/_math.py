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


def log_weights(weights: Any) -> Any:
    """``log pi_k`` of mixture weights (K,): ``-inf`` for a zero weight, without a warning.

    A ``weights_init`` may hold zeros (as scikit-learn's): that component then
    takes no responsibility, and NumPy's divide-by-zero warning would only alarm.
    """
    xp = get_namespace(weights)
    positive = weights > 0
    logs = xp.log(xp.where(positive, weights, xp.ones_like(weights)))
    return xp.where(positive, logs, xp.full_like(weights, -float("inf")))
