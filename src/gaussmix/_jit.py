"""numba's ``njit`` with the disk cache where there is somewhere to write it.

Every module of compiled kernels imports numba through this one (and is
itself imported lazily, see :mod:`gaussmix._numba`): importing this module
imports numba where it is installed (``numba`` is None where it is not).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from .exceptions import NumbaCacheWarning

try:
    import numba
except ImportError:  # the optional extra is not installed: the NumPy path runs
    numba = None

#: whether compiled kernels are cached on disk; False once numba has found nowhere to write
_CACHE = True


def _njit(**options: Any) -> Callable:
    """``numba.njit(cache=True, **options)``, without the disk cache where numba has nowhere to write it.

    numba raises at decoration time when none of ``NUMBA_CACHE_DIR``, the
    package's ``__pycache__`` and the user's cache directory is writable (a
    read-only install without a writable home). The kernels then compile in
    every process instead, after one :class:`NumbaCacheWarning`.
    """

    def decorate(function: Callable) -> Any:
        global _CACHE
        if _CACHE:
            try:
                return numba.njit(cache=True, **options)(function)
            except RuntimeError as error:
                if "cannot cache" not in str(error):
                    raise
                _CACHE = False
                warnings.warn(NumbaCacheWarning(_NO_CACHE_MESSAGE), stacklevel=2)
        return numba.njit(**options)(function)

    return decorate


_NO_CACHE_MESSAGE = (
    "numba found no writable cache directory (NUMBA_CACHE_DIR, gaussmix's __pycache__ or the user cache): "
    "the fast kernels are compiled again in every process; set NUMBA_CACHE_DIR to a writable directory to keep them"
)
