"""Settings of the E-step: which engine runs, and how many rows a block holds.

They live in a context variable, so that :func:`config_context` applies to
the thread (or task) that sets it; :func:`carrying_config` hands them to
the workers that run its chunks (threads, Dask tasks).
"""

from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar
from dataclasses import dataclass, replace
from numbers import Integral
from typing import Any, Callable, Iterator, Optional


@dataclass(frozen=True)
class EStepConfig:
    """The E-step's settings.

    Attributes
    ----------
    engine : str
        ``"auto"`` (the registry's order of preference) or an engine's name
        (see :func:`gaussmix.estep.available_engines`).
    block_rows : int or None
        Rows per block of every engine that works in blocks (the fused kernel's
        compiled blocks excepted); None: each engine sizes its blocks to the
        cache. Small blocks exercise the code that sums across blocks.
    """

    engine: str = "auto"
    block_rows: Optional[int] = None


_CONFIG: ContextVar[EStepConfig] = ContextVar("gaussmix_estep_config", default=EStepConfig())


def get_config() -> EStepConfig:
    """The E-step settings in force here."""
    return _CONFIG.get()


@contextlib.contextmanager
def config_context(*, engine: Optional[str] = None, block_rows: Optional[int] = None) -> Iterator[EStepConfig]:
    """Run the E-steps inside the ``with`` block with these settings (None: unchanged).

    Parameters
    ----------
    engine : str, optional
        ``"auto"`` or an engine's name. Where the named engine cannot run a chunk
        (another array namespace, a covariance structure it does not serve, numba
        not installed or turned off), or declines it, the automatic choice
        among the engines after it runs instead.
    block_rows : int, optional
        Rows per block (see :class:`EStepConfig`).

    Raises
    ------
    ValueError
        For an unknown engine (the message lists the valid names) or a block
        size below 1.
    """
    from .registry import check_engine_name

    changes: dict[str, Any] = {}
    if engine is not None:
        changes["engine"] = check_engine_name(engine)
    if block_rows is not None:
        if not isinstance(block_rows, Integral) or isinstance(block_rows, bool) or block_rows < 1:
            raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
        changes["block_rows"] = int(block_rows)
    token = _CONFIG.set(replace(_CONFIG.get(), **changes))
    try:
        yield _CONFIG.get()
    finally:
        _CONFIG.reset(token)


def carrying_config(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run under the settings in force where this is called (not where it runs:
    worker threads and Dask tasks do not inherit the caller's context). Picklable where
    ``function`` is."""
    return functools.partial(_run_with, get_config(), function)


def _run_with(config: EStepConfig, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    token = _CONFIG.set(config)
    try:
        return function(*args, **kwargs)
    finally:
        _CONFIG.reset(token)
