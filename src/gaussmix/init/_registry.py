"""The registry of initialisers, by name."""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

#: an initialiser maps (X, sample_weight, K, RandomState) to labels (n,) or responsibilities (n, K)
Initializer = Callable[[np.ndarray, Optional[np.ndarray], int, np.random.RandomState], np.ndarray]

_INITIALIZERS: dict[str, Initializer] = {}


def register_initializer(name: str) -> Callable[[Initializer], Initializer]:
    """Decorator adding an initialiser to the registry under ``name``."""

    def decorate(function: Initializer) -> Initializer:
        _INITIALIZERS[name] = function
        return function

    return decorate


def available_initializers() -> list[str]:
    return sorted(_INITIALIZERS)


def get_initializer(name: Any) -> Initializer:
    """Look up an initialiser; an unknown name gets an error listing the valid ones.

    A callable with the :data:`Initializer` signature is returned as it is
    (``select`` passes a precomputed hierarchical tree this way).
    """
    if callable(name):
        return name
    try:
        return _INITIALIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown init_params {name!r}; valid values are: "
            + ", ".join(repr(n) for n in available_initializers())
        ) from None
