"""Array backends: the few operations the array API standard lacks.

The EM maths is written against the array namespace of the input
(``array_api_compat.array_namespace``). Only a handful of operations differ
between libraries (a Cholesky factorisation that reports failure instead of
raising, the inverse of a triangular factor, random draws); each backend module
implements those, and :func:`backend_for` picks the module from the namespace.
Backends are imported lazily so that ``import gaussmix`` loads no torch.

=================  ==============================================================
module             what
=================  ==============================================================
``protocol``       :class:`~gaussmix.backends.protocol.Backend`: what a backend provides
``numpy_backend``  NumPy / SciPy
``torch_backend``  PyTorch, on the tensors' device (and the ``device=`` option's helpers)
``device``         where the rows live: device arrays, ``device=``, host copies for starts
=================  ==============================================================

To add a backend: write ``gaussmix/backends/<library>_backend.py`` with every
function of :class:`~gaussmix.backends.protocol.Backend`, and add one line to
:data:`BACKENDS`.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType
from typing import Any

import array_api_compat

#: array library -> module of its backend operations (a :class:`~gaussmix.backends.protocol.Backend`);
#: the library is the array namespace's module name, less :data:`_COMPAT_PREFIX`
BACKENDS = {
    "numpy": "gaussmix.backends.numpy_backend",
    "torch": "gaussmix.backends.torch_backend",
}
#: array_api_compat's wrapper namespaces are named after the library they wrap
_COMPAT_PREFIX = "array_api_compat."


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

    The module is looked up by the exact name of the array library
    (:data:`BACKENDS`); it provides :class:`~gaussmix.backends.protocol.Backend`.

    Raises
    ------
    KeyError
        If no backend exists for the namespace; the message lists the supported ones.
    """
    name = getattr(xp, "__name__", str(xp))
    library = name[len(_COMPAT_PREFIX):] if name.startswith(_COMPAT_PREFIX) else name
    try:
        module_name = BACKENDS[library]
    except KeyError:
        raise KeyError(
            f"gaussmix has no backend for array namespace {name!r}; "
            f"supported array libraries: {', '.join(sorted(BACKENDS))}"
        ) from None
    return _load(module_name)


def to_numpy(array: Any) -> Any:
    """Host numpy copy (or view) of an array of any supported namespace."""
    return backend_for(get_namespace(array)).to_numpy(array)


def asarray_like(values: Any, like: Any) -> Any:
    """``values`` in the namespace, device and dtype of the array ``like``.

    Moves small parameter arrays between host and device (numpy ↔ torch,
    CPU ↔ CUDA); used outside the EM loop only.
    """
    return backend_for(get_namespace(like)).asarray(values, like)
