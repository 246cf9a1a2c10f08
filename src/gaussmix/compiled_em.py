"""EM's whole loop compiled, where the problem allows it; :func:`gaussmix.em.run_em` elsewhere.

Model selection fits 126 models, most of them on data of a few hundred rows,
where an EM iteration's arithmetic takes microseconds and its NumPy dispatch
(E-step, statistics, M-step, factorisation, checks) a few hundred. For
in-memory float64 rows of a structure whose M-step is compiled
(``CovarianceModel.compiled_m_step``), :func:`run_em` runs every iteration
in :func:`gaussmix.covariance._numba_em.em_loop`: the same updates, stopping
rule and failure checks as :func:`gaussmix.em.run_em`, whose result it
returns. Anything else (torch, Dask, files, float32, constraints, a prior, a noise component,
rows with missing entries, an E-step engine chosen by name, numba absent or turned off by
``GAUSSMIX_NUMBA=0``) runs :func:`gaussmix.em.run_em` itself.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional

import numpy as np

from .covariance import CovarianceModel
from .covariance._eigen import InnerIteration
from ._numba import compiled
from .estep._config import get_config
from .em import EMConfig, FitResult, IterationEvent, check_reg_covar_fits_total, resumed_callback
from .em import run_em as run_em_in_python
from .params import MixtureParams
from .sources import ArraySource

#: rows x components above which the compiled loop does not run: it is one thread, and from
#: about there the engines' products on several threads are faster than its per-row loops
#: (BENCHMARKS.md, "Measurements behind the code's thresholds")
MAX_COMPILED_ENTRIES = 2**15
#: features above which the per-row triangular solves (D^2 a row and component) are not tried
MAX_COMPILED_FEATURES = 16


def run_em(
    source: Any,
    params: MixtureParams,
    config: EMConfig,
    *,
    previous_lower_bound: float = -math.inf,
    callback: Optional[Callable[[IterationEvent], None]] = None,
) -> FitResult:
    """:func:`gaussmix.em.run_em`, compiled whole where :func:`compiled_m_step_of` and the data allow.

    Parameters and result as :func:`gaussmix.em.run_em`; ``callback`` receives
    the same events, but those of a compiled run all when it ends.
    """
    code = _compiled_code(source, params, config)
    if code is None:
        return run_em_in_python(source, params, config, previous_lower_bound=previous_lower_bound, callback=callback)
    from .covariance import _numba_em

    model = params.covariance
    n_components, n_features = params.n_components, params.n_features
    rows = np.ascontiguousarray(source.X)
    origin = np.zeros(n_features) if source.origin is None else np.asarray(source.origin, dtype=np.float64)
    if source.origin is not None:
        rows = rows - origin
    row_weights = np.ones(rows.shape[0]) if source.sample_weight is None else np.asarray(source.sample_weight, np.float64)
    check_reg_covar_fits_total(config.reg_covar, float(np.sum(row_weights)), float(np.finfo(np.float64).max), rows.dtype)
    control = getattr(model, "control", InnerIteration())
    dense = np.array(model.dense(params.covariances, n_components, n_features), dtype=np.float64)
    weights, means, covariances, lower_bounds, converged, status = _numba_em.em_loop(
        rows, row_weights, origin, np.asarray(params.weights, np.float64), np.asarray(params.means, np.float64),
        dense, code, model.layout != "tied", float(config.reg_covar), float(config.tol), int(config.max_iter),
        float(previous_lower_bound), control.limit(True), max(control.tol, 100 * float(np.finfo(np.float64).eps)),
    )
    done = list(map(float, lower_bounds))
    if callback is not None:
        # The loop ran without returning to Python: its iterations are reported as it ends.
        for n_iter, (before, after) in enumerate(zip([previous_lower_bound, *done], done), start=1):
            callback(IterationEvent(n_iter, config.max_iter, after, after - before))
    layout = _FROM_DENSE[model.layout]
    reached = MixtureParams.from_covariances(
        weights, means, layout(covariances), model, reg_covar=float(config.reg_covar)
    )
    if status == _numba_em.FINISHED:
        return FitResult(reached, done[-1] if done else previous_lower_bound, len(done), bool(converged), done)
    # The next iteration failed in the compiled loop: Python's redoes it, raising its own error.
    rest = run_em_in_python(
        source, reached, dataclasses.replace(config, max_iter=config.max_iter - len(done)),
        previous_lower_bound=done[-1] if done else previous_lower_bound,
        callback=None if callback is None else resumed_callback(callback, len(done), config.max_iter),
    )
    return dataclasses.replace(rest, n_iter=len(done) + rest.n_iter, lower_bounds=done + list(rest.lower_bounds))


def compiled_m_step_of(model: CovarianceModel) -> Optional[str]:
    """The compiled M-step's name (:data:`gaussmix.covariance._numba_em.M_STEPS`) of ``model``, or None.

    Only a class's own ``compiled_m_step`` counts: a subclass that changes
    the M-step without naming its compiled twin must not inherit its parent's.
    """
    return vars(type(model)).get("compiled_m_step")


def _compiled_code(source: Any, params: MixtureParams, config: EMConfig) -> Optional[int]:
    """The M-step code of the compiled loop for this problem, or None where Python's loop runs."""
    name = compiled_m_step_of(params.covariance)
    if (
        name is None
        or params.covariance.layout not in _FROM_DENSE
        or config.constraints is not None
        or config.prior is not None  # MAP EM: the loop's M-steps and objective are maximum likelihood's
        or params.noise is not None
        or config.stop_on_decrease
        or type(params) is not MixtureParams
        or type(source) is not ArraySource
        or type(source.X) is not np.ndarray
        or source.X.dtype != np.float64
        or source.X.ndim != 2
        or not (source.sample_weight is None or type(source.sample_weight) is np.ndarray)
        or type(params.means) is not np.ndarray
        or source.X.shape[0] * params.n_components > MAX_COMPILED_ENTRIES
        or params.n_features > MAX_COMPILED_FEATURES
        or get_config().engine != "auto"  # a chosen E-step engine runs in Python's loop
        or get_config().block_rows is not None
        or compiled("gaussmix.covariance._numba_em") is None
    ):
        return None
    from .covariance._numba_em import M_STEPS

    return M_STEPS.index(name)


def _diagonals(covariances: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.diagonal(covariances, axis1=1, axis2=2))


#: the compiled loop's dense (K, D, D) covariances in each precision layout (``CovarianceModel.layout``).
#: A tied structure's one covariance is pooled over every row: only its factorisation can fail,
#: so the loop checks the other layouts' variances for collapse only (as their classes do).
_FROM_DENSE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "full": lambda covariances: covariances,
    "tied": lambda covariances: covariances[0].copy(),
    "diag": _diagonals,
    "spherical": lambda covariances: covariances[:, 0, 0].copy(),
}
