"""Expectation-Maximisation as a reduction of sufficient statistics.

``accumulate`` is the E-step on one chunk, ``m_step`` turns summed statistics
into parameters and ``run_em`` iterates the two over any data source. Nothing
here knows where the rows live: in-memory, out-of-core and distributed fits
differ only in how the per-chunk statistics are summed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import numbers
import operator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import numpy as np

from . import estep
from . import noise as uniform_noise
from ._math import logsumexp_rows
from ._threads import map_chunks, one_blas_thread_for_matrices
from .backends import asarray_like, get_namespace
from .covariance import CovarianceModel
from .exceptions import CollapsedComponentError
from .params import MixtureParams
from .stats import WEIGHT_FLOOR, SuffStats

if TYPE_CHECKING:  # constraints.py holds scikit-learn's parameter check too: keep it out of this import
    from .constraints import Constraints
    from .priors import ResolvedPrior


@dataclass(frozen=True)
class EMConfig:
    """Settings of one EM run.

    Attributes
    ----------
    covariance : CovarianceModel
    reg_covar : float
        Added to the covariance diagonals after each M-step.
    tol : float
        Convergence threshold on the change of the mean per-sample log-likelihood.
    max_iter : int
    origin : array of shape (D,) or None
        The source's frame is centred on it (see :func:`m_step`).
    constraints : Constraints or None
        Equal or frozen parameters (see :mod:`gaussmix.constraints`).
    prior : ResolvedPrior or None
        The conjugate prior of MAP EM (see :mod:`gaussmix.priors`): every
        M-step is its posterior mode, and the objective EM climbs (and
        stops on) is the mean log-posterior instead of the mean log-likelihood.
    """

    covariance: CovarianceModel
    reg_covar: float
    tol: float
    max_iter: int
    #: where the frame's zero is in the user's coordinates (see :func:`m_step`)
    origin: Any = None
    #: stop (``FitResult.precision_lost``) where the mean log-likelihood falls by more than
    #: the rounding of the data's dtype allows: the caller finishes the fit in float64
    stop_on_decrease: bool = False
    #: equal or frozen parameters every M-step keeps (see :func:`m_step`); None: none
    constraints: Optional["Constraints"] = None
    #: the conjugate prior of MAP EM (see :func:`m_step`); None: maximum likelihood
    prior: Optional["ResolvedPrior"] = None


@dataclass(frozen=True)
class IterationEvent:
    """What a progress callback receives after each EM iteration.

    ``init_index`` and ``n_init`` say which restart the iteration belongs to;
    ``run_em`` knows nothing of restarts, so the estimator fills them in.
    """

    n_iter: int
    max_iter: int
    lower_bound: float
    change: float
    init_index: int = 0
    n_init: int = 1


def resumed_callback(callback: Callable[[IterationEvent], None], done: int, max_iter: int) -> Callable[[IterationEvent], None]:
    """``callback`` for a run that resumes another after ``done`` iterations: its events
    numbered on from there, out of the whole run's ``max_iter``."""
    return lambda event: callback(dataclasses.replace(event, n_iter=event.n_iter + done, max_iter=max_iter))


@dataclass
class FitResult:
    """Outcome of one EM run.

    ``lower_bound`` is the mean log-likelihood computed in the last E-step (of
    the parameters *before* the last M-step, as in scikit-learn); ``params``
    are the parameters after that M-step. With a prior it is the mean
    log-posterior (log-likelihood plus log prior density, per unit of weight).
    """

    params: MixtureParams
    lower_bound: float
    n_iter: int
    converged: bool
    lower_bounds: list[float] = field(default_factory=list)
    #: EM stopped because the log-likelihood fell by more than rounding (``stop_on_decrease``):
    #: ``params`` are those of the last iteration before the fall
    precision_lost: bool = False
    #: of ``n_iter``, those done in the data's own dtype before a fall finished the run in float64
    float32_iterations: int = 0


class NonFiniteLikelihoodError(ValueError):
    """The log-likelihood became NaN or infinite during EM."""


def responsibilities(X: Any, params: MixtureParams) -> tuple[Any, Any]:
    """Posterior responsibilities and per-row log-density of one chunk.

    Returns
    -------
    resp : array of shape (n, K)
    log_density : array of shape (n,)
        ``log p(x_n)`` under the mixture.
    """
    xp = get_namespace(X)
    weighted = params.log_weighted_prob(X)
    log_density = logsumexp_rows(weighted)
    return xp.exp(weighted - log_density[:, None]), log_density


def accumulate(X: Any, sample_weight: Optional[Any], params: MixtureParams,
               shift: Optional[Any] = None) -> tuple[SuffStats, float]:
    """E-step on one chunk ``X - shift``: ``(stats, loglik)``.

    See :func:`gaussmix.estep.accumulate` (shapes and meaning): the configured
    engine runs it (see :func:`gaussmix.estep.config_context`); with a noise
    component, through :func:`gaussmix.noise.accumulate`. ``loglik`` is a
    NumPy float, or a 0-d array on X's device (left there so the EM loop reads
    back one scalar per iteration).
    """
    if params.noise is not None:
        return uniform_noise.accumulate(X, sample_weight, params, shift)
    return estep.accumulate(X, sample_weight, params, shift)


def accumulate_source(source: Any, params: MixtureParams) -> tuple[SuffStats, Any]:
    """E-step over every chunk of ``source``, statistics merged in chunk order.

    NumPy chunks are processed by a few threads at a time (see
    :func:`gaussmix._threads.map_chunks`); statistics are folded as they
    arrive, so memory stays bounded by a few chunks whatever the number of chunks.
    A source with a ``map_reduce(function, merge)`` method (Dask blocks, see
    :mod:`gaussmix.dask`) maps ``function(X, w, first_row)`` over its chunks
    and merges the results its own way (a tree reduction on the workers),
    with the source's own ``accumulate`` where it has one, as for chunks.
    """
    map_reduce = getattr(source, "map_reduce", None)
    if map_reduce is not None:
        # the engine settings travel with the function: Dask's workers do not share this context;
        # a source with an E-step of its own (NaN marginalised) sends that one
        chunk_estep = getattr(source, "accumulate", accumulate)
        function = functools.partial(_accumulate_chunk, params=params, chunk_estep=chunk_estep)
        return map_reduce(estep.carrying_config(function), _merge_accumulated)
    stats: Optional[SuffStats] = None
    logliks = []
    work, chunks = _estep_over_chunks(source, params)
    # (worker threads do not inherit the engine settings' context)
    for part, loglik in map_chunks(estep.carrying_config(work), chunks):
        stats = part if stats is None else stats.merge(part)
        logliks.append(loglik)
    if stats is None:
        raise ValueError("the data source yielded no chunks: it holds no rows")
    return stats, sum_scalars(logliks)


def _estep_over_chunks(source: Any, params: MixtureParams) -> tuple[Callable[[Any], Any], Iterator[Any]]:
    """What runs on each chunk, and the chunks.

    A source with an ``accumulate(X, w, params)`` method runs it on its
    (shifted) chunks instead of the E-step engines (rows with
    missing entries: :class:`gaussmix.missing.IncompleteArraySource`). A
    source that can give its chunks as stored, with its ``origin`` apart
    (``unshifted_chunks``), gives them so: the engines then subtract the
    origin as they go (see :func:`gaussmix.estep.accumulate`) instead of every
    chunk being copied first.
    """
    own_estep = getattr(source, "accumulate", None)
    if own_estep is not None:
        # Rows that need an E-step of their own (NaN marginalised: gaussmix.missing), shifted chunks.
        return (lambda chunk: own_estep(chunk[0], chunk[1], params)), source.chunks()
    unshifted = getattr(source, "unshifted_chunks", None)
    origin = getattr(source, "origin", None)
    if unshifted is None or origin is None:
        return (lambda chunk: accumulate(chunk[0], chunk[1], params)), source.chunks()
    return (lambda chunk: accumulate(chunk[0], chunk[1], params, origin)), unshifted()


def sum_scalars(values: list[Any]) -> Any:
    """Sum per-chunk scalars: exactly rounded for host floats, on the device for 0-d arrays.

    Calling ``float`` on a device scalar waits for the device; summing there
    keeps the loop free of such waits until the one convergence check.
    """
    if all(isinstance(value, numbers.Real) for value in values):  # Python and NumPy scalars
        return math.fsum(values)
    return functools.reduce(operator.add, values)


def _accumulate_chunk(
    X: Any, sample_weight: Optional[Any], first_row: int, params: MixtureParams,
    chunk_estep: Callable[..., tuple[SuffStats, float]] = accumulate,
) -> tuple[SuffStats, float]:
    return chunk_estep(X, sample_weight, params)


def _merge_accumulated(a: tuple[SuffStats, float], b: tuple[SuffStats, float]) -> tuple[SuffStats, float]:
    return a[0].merge(b[0]), a[1] + b[1]


def m_step(
    stats: SuffStats,
    covariance: CovarianceModel,
    reg_covar: float,
    previous: Optional[MixtureParams] = None,
    origin: Any = None,
    constraints: Optional["Constraints"] = None,
    prior: Optional["ResolvedPrior"] = None,
) -> MixtureParams:
    """Parameters maximising the expected complete-data log-likelihood.

    A component whose responsibilities sum to less than
    :data:`~gaussmix.stats.WEIGHT_FLOOR` (10 eps of float64; an emptied one: they
    are ~1e-300 each, in float32 exactly 0) keeps that floor as its weight and, as
    in scikit-learn, the mean ``sum_n r_nk x_n / (N_k + 10 eps)`` in the user's
    coordinates: about the origin. Its exact weighted mean would sit on the
    rows nearest it, where its covariance, reg_covar alone, would give it one
    of them whole at the next E-step (in 16 dimensions a density e^59 times
    its weight of ~1e-18): a one-row component that scikit-learn, and float32
    where the responsibilities underflow, do not make. Other means are exact.

    Parameters
    ----------
    stats : SuffStats
    covariance : CovarianceModel
    reg_covar : float
    previous : MixtureParams, optional
        The parameters of the E-step that produced ``stats``: structures whose
        M-step iterates (EVE, VVE, ...) start from their covariances.
    origin : array of shape (D,), optional
        The user's coordinates of the zero of ``stats``' frame (EM runs on
        ``X - origin``); None: the same frame.
    constraints : Constraints, optional
        The mask of what not to update (:mod:`gaussmix.constraints`): equal
        weights ``1/K``; frozen weights, means or covariances stay those of
        ``previous`` (free weights share what frozen ones leave, in
        proportion to ``N_k``; a covariance is estimated about its component's
        frozen mean). None: every parameter is estimated.
    prior : ResolvedPrior, optional
        The maximum a posteriori step of this conjugate prior instead
        (:mod:`gaussmix.priors`): shrunk means, and the structure's estimate
        on the prior's posterior statistics. Weights are unchanged
        (mclust's prior has none on them); an emptied component's mean is the prior mean.

    With a noise component (``previous.noise``, :mod:`gaussmix.noise`) the
    Gaussians are estimated as above and the noise takes the weight they
    left (:func:`gaussmix.noise.reweighted`).

    Raises
    ------
    CollapsedComponentError
        If a component's covariance is not positive definite.
    ValueError
        If ``constraints`` freeze parameters and ``previous`` is not given.
    """
    if previous is not None and previous.noise is not None:
        gaussians = m_step(stats, covariance, reg_covar, previous=uniform_noise.without_noise(previous), origin=origin,
                           constraints=constraints, prior=prior)
        return uniform_noise.reweighted(gaussians, stats, previous.noise)
    xp = get_namespace(stats.means)
    _check_reg_covar_fits(reg_covar, stats)
    if constraints is not None and constraints.freezes and previous is None:
        raise ValueError("frozen parameters are kept from the previous ones: pass previous= to m_step")
    if constraints is not None and constraints.means is not None:
        # Covariances about the frozen means, not about the weighted ones.
        stats = stats.about(previous.means, _mask_like(constraints.means, stats.means))
    # The floor keeps an emptied component's weight positive (as scikit-learn). Such a
    # component's covariance is reg_covar alone, which the collapse check accepts.
    empty = stats.resp_weight < WEIGHT_FLOOR
    resp_weight = stats.resp_weight + WEIGHT_FLOOR
    weights = resp_weight / xp.sum(resp_weight)
    # N_k / (N_k + floor) of the user's mean, for emptied components only: elsewhere the
    # factor is within floor / N_k of 1, rounding for N_k of a row or more
    kept = xp.where(empty, stats.resp_weight / resp_weight, xp.ones_like(resp_weight))[:, None]
    means = stats.means * kept
    if origin is not None:
        means = means - (1 - kept) * xp.reshape(xp.asarray(origin, dtype=means.dtype), (1, -1))
    if prior is not None:
        # MAP: the prior's means, and the statistics the structure's estimate then takes
        frozen = None if constraints is None or constraints.means is None else _mask_like(constraints.means, means)
        means, stats = prior.posterior(stats, frozen)
    if constraints is not None:
        weights = _constrained_weights(weights, resp_weight, constraints, previous)
        if constraints.means is not None:
            means = xp.where(_mask_like(constraints.means, means)[:, None], previous.means, means)
        if constraints.covariances is not None and bool(constraints.covariances.all()):
            return MixtureParams(weights, means, previous.covariances, previous.precisions_cholesky, covariance)
    same_model = previous is not None and previous.covariance is covariance
    previous_covariances = previous.covariances if same_model else None
    # Per-component LAPACK calls on small matrices: waking BLAS threads costs more than they do.
    with one_blas_thread_for_matrices(stats.means), _numerical_failure_as_collapse(covariance, stats.n_components):
        covariances = covariance.estimate(stats, reg_covar, previous=previous_covariances)
        if constraints is not None and constraints.covariances is not None:
            # Some components only (structures with independent components, see gaussmix.constraints).
            mask = _mask_like(constraints.covariances, covariances)
            mask = xp.reshape(mask, (-1,) + (1,) * (covariances.ndim - 1))
            covariances = xp.where(mask, previous.covariances, covariances)
        return MixtureParams.from_covariances(weights, means, covariances, covariance, reg_covar=reg_covar)


def _mask_like(mask: np.ndarray, like: Any) -> Any:
    """A NumPy boolean mask as a boolean array in the namespace and on the device of ``like``."""
    return asarray_like(mask.astype(np.float64), like) > 0.5


def _constrained_weights(weights: Any, resp_weight: Any, constraints: "Constraints", previous: Any) -> Any:
    """Weights under equal or frozen weights; ``resp_weight`` is ``N_k`` plus the floor, shape (K,)."""
    xp = get_namespace(weights)
    if constraints.equal_weights:
        return xp.full_like(weights, 1.0 / weights.shape[0])
    if constraints.weights is None:
        return weights
    frozen = _mask_like(constraints.weights, weights)
    given = previous.weights
    zero = xp.zeros_like(weights)
    # The free components share what the frozen ones leave, in proportion to N_k.
    left = 1.0 - xp.sum(xp.where(frozen, given, zero))
    free_weight = xp.sum(xp.where(frozen, zero, resp_weight))
    share = resp_weight / xp.where(free_weight > 0, free_weight, xp.ones_like(free_weight))
    return xp.where(frozen, given, left * share)


def _check_reg_covar_fits(reg_covar: float, stats: SuffStats) -> None:
    """Refuse a ``reg_covar`` whose regularised scatters overflow the statistics' dtype.

    The M-step adds ``reg_covar N_k`` to scatters of total weight ``N`` and
    sums them; past the dtype's largest number every structure's linear algebra fails.

    Raises
    ------
    ValueError
        If ``reg_covar * N`` comes within a factor 16 of the dtype's largest number.
    """
    xp = get_namespace(stats.means)
    dtype = stats.means.dtype
    check_reg_covar_fits_total(reg_covar, float(stats.total_weight), float(xp.finfo(dtype).max), dtype)


def check_reg_covar_fits_total(reg_covar: float, total_weight: float, largest: float, dtype: Any) -> None:
    """:func:`_check_reg_covar_fits` for rows of total weight ``total_weight`` in a dtype whose largest number is ``largest``."""
    total = max(total_weight, 1.0)
    if reg_covar * total >= largest / 16:
        raise ValueError(
            f"reg_covar={reg_covar:g} is too large for {dtype} data: the regularised "
            f"scatters (reg_covar times the total weight, {total:g}) overflow. "
            "Use a smaller reg_covar, or pass float64 data."
        )


@contextlib.contextmanager
def _numerical_failure_as_collapse(covariance: CovarianceModel, n_components: int) -> Iterator[None]:
    """Turn a failed factorisation inside an M-step into a :class:`CollapsedComponentError`.

    The iterative structures (VEE, EVE, VVE, VEV, ...) invert, decompose and
    rotate scatters that are singular when a component lies in a lower-
    dimensional set or the columns' scales differ by many orders; LAPACK then
    fails on matrices it cannot say which component made, so all are named.
    """
    try:
        yield
    except (np.linalg.LinAlgError, ArithmeticError) as error:
        raise CollapsedComponentError(
            list(range(n_components)),
            f"(The {covariance.name} M-step failed: {error}. A component's scatter is singular "
            "or the columns' scales differ by many orders of magnitude: standardise the columns.)",
        ) from error


#: a fall of the mean log-likelihood within this many epsilons of the data's dtype (times
#: 1 + |mean log-likelihood|) is rounding; float32 EM's statistics, summed in float64 from
#: float32 responsibilities, move the mean log-likelihood by a few epsilons when EM has converged
DECREASE_EPSILONS = 64


def rounding_of(mean_loglik: float, params: MixtureParams) -> float:
    """How far the rounding of ``params``' dtype (the data's) can move a mean log-likelihood near ``mean_loglik``."""
    eps = float(get_namespace(params.means).finfo(params.means.dtype).eps)
    return DECREASE_EPSILONS * eps * (1.0 + abs(mean_loglik))


def run_em(
    source: Any,
    params: MixtureParams,
    config: EMConfig,
    *,
    previous_lower_bound: float = -math.inf,
    callback: Optional[Callable[[IterationEvent], None]] = None,
) -> FitResult:
    """Iterate E- and M-steps from ``params`` until the mean log-likelihood settles.

    Parameters
    ----------
    source : data source
        See :mod:`gaussmix.sources`.
    params : MixtureParams
        Starting parameters.
    config : EMConfig
    previous_lower_bound : float
        Lower bound the start is compared with (for warm starts).
    callback : callable, optional
        Called with an :class:`IterationEvent` after every iteration.

    Returns
    -------
    FitResult
    """
    lower_bound = previous_lower_bound
    lower_bounds: list[float] = []
    converged = False
    n_iter = 0
    previous_params = params
    for n_iter in range(1, config.max_iter + 1):
        stats, loglik = accumulate_source(source, params)
        if config.prior is not None:
            # MAP EM climbs the log-posterior: the log-likelihood may fall where the prior gains
            loglik = loglik + config.prior.log_density(params)
        # The one host read-back per iteration (besides the positive-definiteness status).
        mean_loglik = float(loglik / stats.total_weight)
        if not math.isfinite(mean_loglik):
            raise NonFiniteLikelihoodError(
                f"the log-likelihood became {mean_loglik} at iteration {n_iter}: "
                "the data may hold extreme values or a component collapsed; "
                "scale the data or raise reg_covar"
            )
        if config.stop_on_decrease and lower_bounds and mean_loglik < lower_bound - rounding_of(lower_bound, params):
            # EM never lowers the likelihood: only the dtype's rounding can have. The
            # parameters before the fall are handed back to be finished in float64.
            return FitResult(previous_params, lower_bound, n_iter - 1, False, lower_bounds, precision_lost=True)
        previous_params = params
        params = m_step(
            stats, config.covariance, config.reg_covar, previous=params, origin=config.origin,
            constraints=config.constraints, prior=config.prior,
        )
        change = mean_loglik - lower_bound
        lower_bound = mean_loglik
        lower_bounds.append(mean_loglik)
        if callback is not None:
            callback(IterationEvent(n_iter, config.max_iter, mean_loglik, change))
        if abs(change) < config.tol:
            converged = True
            break
    return FitResult(params, lower_bound, n_iter, converged, lower_bounds)
