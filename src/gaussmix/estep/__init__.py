"""E-step engines: the ways of computing one chunk's sufficient statistics.

An engine takes a chunk of rows and the current parameters and returns the
chunk's :class:`~gaussmix.stats.SuffStats` and log-likelihood; all engines
return the same statistics up to rounding, and differ in speed and in the
problems (covariance structure, dtype, D, K, array namespace) they can run
(all but ``portable`` and ``generic`` run NumPy arrays only):

=========  =========================================================  ===============
name       what                                                       runs
=========  =========================================================  ===============
fused      one compiled pass per block (numba)                        full
screened   float32 screening, float64 answers (numba)                 full, float32
sparse     expanded products, sparse moments on every block           full, diag, spherical
expanded   two products on ``[q(x), x]`` per block                    full, diag, spherical
whitened   one whitening product for every component                  full
pooled     one shared whitening, the pooled scatter                   tied
portable   expanded products through the array API (torch)            diag, spherical, tied
generic    any structure, any array namespace                         everything
=========  =========================================================  ===============

The automatic choice (``"auto"``) tries them in that order, each where it pays
(:meth:`Engine.preferred`); an engine may decline a chunk that would lose too
many digits, and the next one runs it. ``GaussianMixture(engine=...)`` or
:func:`config_context` names one instead.

Compiled kernels (numba, imported on first use through :func:`gaussmix._numba.compiled`)
are split by job: ``_compiled_vector`` (vectorised exp and log),
``_compiled_responsibilities`` (weighted responsibilities of a block),
``_compiled_fused`` (the fused engine), ``_compiled_screened`` (the screened
engine), ``_compiled_sparse`` (sparse moments), ``_compiled_layout``
(transposes and the expanded engines' features) and ``_compiled_incomplete``
(rows with missing entries). :mod:`~gaussmix.estep.incomplete` is not an
engine: it is the E-step of chunks whose rows miss entries (for
:mod:`gaussmix.missing`), which hands their complete rows to the engines.

To add an engine: write ``gaussmix/estep/<name>.py`` defining ``ENGINE``, an
:class:`Engine`, and add ``<name>`` to :data:`registry.PREFERENCE`.
"""

from __future__ import annotations

from ._config import EStepConfig, carrying_config, config_context, get_config
from .engine import Engine, Problem
from .registry import accumulate, available_engines, get_engine

__all__ = [
    "EStepConfig",
    "Engine",
    "Problem",
    "accumulate",
    "available_engines",
    "carrying_config",
    "config_context",
    "get_config",
    "get_engine",
]
