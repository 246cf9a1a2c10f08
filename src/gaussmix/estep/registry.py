"""The engines in their order of preference, and the dispatch of one chunk.

The automatic choice (``engine="auto"``) takes the first engine of
:data:`PREFERENCE` whose :meth:`~gaussmix.estep.engine.Engine.preferred` says
yes for the chunk's :class:`~gaussmix.estep.engine.Problem`; if it declines the
chunk, the next such one runs, down to ``"generic"``, which runs everything.
A named engine runs first wherever it can, the automatic choice among the
engines after it otherwise.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Iterator, Optional

from . import _kernels as kernels
from ._config import get_config
from .engine import Engine, Problem

#: the engines, most preferred first: each is the module ``gaussmix.estep.<name>``,
#: which defines ``ENGINE``. To add an engine, add its module and its name here.
PREFERENCE: tuple[str, ...] = (
    "fused",
    "screened",
    "sparse",
    "expanded",
    "whitened",
    "pooled",
    "portable",
    "generic",
)


def available_engines() -> list[str]:
    """The engine names ``engine=`` accepts besides ``"auto"``, in order of preference."""
    return list(PREFERENCE)


def check_engine_name(name: Any) -> str:
    """``name`` if it is ``"auto"`` or an engine's name.

    Raises
    ------
    ValueError
        Otherwise; the message lists the valid names.
    """
    if name == "auto" or (isinstance(name, str) and name in PREFERENCE):
        return name
    valid = ", ".join(repr(n) for n in ("auto", *PREFERENCE))
    raise ValueError(f"unknown E-step engine {name!r}; valid values are: {valid}")


@functools.lru_cache(maxsize=None)
def _engines() -> tuple[Engine, ...]:
    # Imported on first use: the engines' modules need nothing beyond NumPy, but
    # ``import gaussmix`` need not load them.
    return tuple(importlib.import_module(f"{__package__}.{name}").ENGINE for name in PREFERENCE)


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (see :func:`available_engines`).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    check_engine_name(name)
    if name == "auto":
        raise ValueError('"auto" is a choice among the engines, not an engine')
    return _engines()[PREFERENCE.index(name)]


def candidates(problem: Problem, engine: Optional[str] = None) -> Iterator[Engine]:
    """The engines to try on ``problem``, in order: the named one (``engine``, or the
    configured one where None) where it can run it, then the automatic choice among
    the engines after it (all of them for ``"auto"``)."""
    choice = get_config().engine if engine is None else check_engine_name(engine)
    engines = _engines()
    start = 0
    if choice != "auto":
        named = engines[PREFERENCE.index(choice)]
        if named.can_run(problem):
            yield named
            start = PREFERENCE.index(choice) + 1
    for candidate in engines[start:]:
        if candidate.preferred(problem):
            yield candidate


def accumulate(
    X: Any, sample_weight: Optional[Any], params: Any, shift: Optional[Any] = None, engine: Optional[str] = None
) -> tuple[Any, Any]:
    """E-step on one chunk of rows ``X - shift``: ``(stats, loglik)``.

    Parameters
    ----------
    X : array of shape (n, D)
        The rows as stored.
    sample_weight : array of shape (n,) or None
        Frequency weights; None means every row counts once.
    params : MixtureParams
        Current parameters, in the frame of ``X - shift``.
    shift : array of shape (D,), optional
        EM's frame is centred on the data (``shift`` is their mean row): engines
        that build per-row features anyway subtract it as they go, instead of
        reading a shifted copy of every chunk.
    engine : str, optional
        ``"auto"`` or an engine's name; by default the configured one (see
        :func:`gaussmix.estep.config_context`).

    Returns
    -------
    stats : SuffStats
        Centred statistics, in the frame of ``X - shift``, in ``X``'s dtype.
    loglik : scalar
        ``sum_n w_n log p(x_n)`` over the chunk: a NumPy float, or a 0-d array on
        X's device (left there so that the EM loop reads back one scalar per iteration).
    """
    shifted = None
    for candidate in candidates(Problem.of(X, params, shift), engine):
        if candidate.folds_shift:
            result = candidate.accumulate(X, sample_weight, params, shift)
        else:
            if shifted is None:
                shifted = kernels.shifted(X, shift)
            result = candidate.accumulate(shifted, sample_weight, params, None)
        if result is not None:
            return result
    raise RuntimeError("every E-step engine declined the chunk")  # "generic" never does
