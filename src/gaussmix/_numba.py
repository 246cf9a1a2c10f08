"""The switch for the compiled (numba) kernels, and their lazy loading.

numba is a dependency (an environment may still lack it: the NumPy paths then run); ``GAUSSMIX_NUMBA=0``
turns the compiled kernels off where it is installed. Modules holding compiled
code import numba when they are imported, so they are imported here, on first
use only: ``import gaussmix`` does not load numba.
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType
from typing import Optional

#: environment variable: "0" turns the compiled (numba) kernels off
NUMBA_VARIABLE = "GAUSSMIX_NUMBA"


def compiled(module: str) -> Optional[ModuleType]:
    """The compiled-kernel module named ``module`` (dotted path), or None where numba is
    not installed or turned off (:data:`NUMBA_VARIABLE`).

    The module must have a ``numba`` attribute: the numba package, or None where
    importing it failed.
    """
    return _compiled_when(module, os.environ.get(NUMBA_VARIABLE, "1") != "0")


@functools.lru_cache(maxsize=None)
def _compiled_when(module: str, enabled: bool) -> Optional[ModuleType]:
    # Cached: every E- and M-step asks, and an import statement costs more than a small step.
    if not enabled:
        return None
    loaded = importlib.import_module(module)
    return loaded if loaded.numba is not None else None
