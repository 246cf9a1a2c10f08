"""Array backends: the few operations the array API standard lacks.

The EM maths is written against the array namespace of the input
(``array_api_compat.array_namespace``). Only a handful of operations differ
between libraries (a Cholesky factorisation that reports failure instead of
raising, the inverse of a triangular factor, random draws); each backend module
implements those, and :func:`backend_for` picks the module from the namespace.
Backends are imported lazily so that ``import gaussmix`` loads no torch.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType
from typing import Any

import array_api_compat

# namespace-name prefix -> module holding that backend's operations
_BACKENDS = {
    "numpy": "gaussmix.backends.numpy_backend",
    "torch": "gaussmix.backends.torch_backend",
}


def get_namespace(*arrays: Any) -> Any:
    """The array-API namespace of ``arrays`` (numpy arrays give numpy's)."""
    # NumPy arrays, the common case, skip array_namespace's inspection: the small
    # M-steps of a selection grid ask for a namespace tens of times each.
    if all(type(array) is _NDARRAY for array in arrays):
        return _numpy_namespace()
    return array_api_compat.array_namespace(*arrays)


_NDARRAY = __import__("numpy").ndarray


@lru_cache(maxsize=None)
def _numpy_namespace() -> ModuleType:
    import numpy

    return array_api_compat.array_namespace(numpy.empty(0))


@lru_cache(maxsize=None)
def _load(module_name: str) -> ModuleType:
    return importlib.import_module(module_name)


def backend_for(xp: Any) -> ModuleType:
    """Return the backend module implementing non-standard operations for ``xp``.

    Raises
    ------
    KeyError
        If no backend exists for the namespace; the message lists the known ones.
    """
    name = getattr(xp, "__name__", str(xp))
    for prefix, module_name in _BACKENDS.items():
        if prefix in name:
            return _load(module_name)
    raise KeyError(
        f"gaussmix has no backend for array namespace {name!r}; "
        f"known backends: {sorted(_BACKENDS)}"
    )


def to_numpy(array: Any) -> Any:
    """Host numpy copy (or view) of an array of any supported namespace."""
    return backend_for(get_namespace(array)).to_numpy(array)


def asarray_like(values: Any, like: Any) -> Any:
    """``values`` in the namespace, device and dtype of the array ``like``.

    Moves small parameter arrays between host and device (numpy ↔ torch,
    CPU ↔ CUDA); used outside the EM loop only.
    """
    return backend_for(get_namespace(like)).asarray(values, like)
