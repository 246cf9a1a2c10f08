"""One pipeline for every fit: source -> validate -> frame -> start -> EM x n_init.

In memory, streamed from out-of-core data, on Dask blocks or online
(``partial_fit``), a fit takes the same steps; only the source differs:

1. **validate** the rows (:func:`gaussmix.rows.validate_rows` in memory, one
   validating pass over a stream, :func:`gaussmix.streaming.summarise`);
2. **frame**: fix the origin EM runs about, the rows' weighted mean, so that
   float32 data far from zero keep their digits in the statistics
   (:func:`frame_rows`, :func:`frame_stream`, :func:`start_online`);
3. **start** (:mod:`gaussmix.starts`);
4. **EM** from ``n_init`` starts, keeping the best (:func:`run_starts`); a
   float32 run whose likelihood falls beyond rounding finishes in float64.
   An online fit takes one stepwise-EM step per batch instead (:func:`online_step`).

The functions read the estimator's parameters and set its fitted attributes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time
import warnings
from typing import Any, Callable, Optional

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _validation as checks
from . import estep
from . import missing as incomplete
from . import priors
from . import noise_start
from ._threads import one_thread_for_small_fit
from .backends import backend_for, get_namespace, to_numpy
from .covariance import CovarianceModel
from .estep._kernels import is_numpy, mean_row
from .data import chunking, is_out_of_core
from .data.arrays import ArraySource
from .degeneracy import DegenerateFitWarning, degenerate_components
from .degeneracy import describe as describe_degenerate
from .compiled_em import run_em as run_em_compiled_where_possible
from .em import (
    EMConfig, FitResult, IterationEvent, NonFiniteLikelihoodError, accumulate_source, m_step, resumed_callback, run_em,
)
from .exceptions import CollapsedComponentError
from .online import OnlineState, check_batch_reach, per_unit_weight, step_size, stepwise_update
from .params import MixtureParams
from .problem import Problem
from .rows import validate_rows
from .starts import check_init_arrays, check_row_counts, start_from_rows, start_from_stream
from .streaming import DataSummary, summarise


@dataclasses.dataclass(frozen=True)
class Framed:
    """Validated rows in the frame EM runs in, and how to start there.

    Attributes
    ----------
    source : data source
        Yields the rows minus ``origin``, in chunks.
    origin : array of shape (D,)
    start : callable
        ``start(random_state) -> MixtureParams``, in the frame.
    float64_twin : callable or None
        For float32 rows in memory: ``() -> (source, origin)``, the same rows in
        float64, made only when a run loses precision.
    prior : ResolvedPrior or None
        The conjugate prior's hyperparameters in this frame (:mod:`gaussmix.priors`).
    n_rows : int
        The training rows' total weight (weights have mean one): ``N_k`` is
        ``weights_`` times it (the degenerate-fit rule of prior fits needs it).
    """

    source: Any
    origin: Any
    start: Callable[[np.random.RandomState], MixtureParams]
    float64_twin: Optional[Callable[[], tuple[Any, Any]]] = None
    prior: Optional[priors.ResolvedPrior] = None
    n_rows: int = 0

    def counts(self, params: MixtureParams) -> Optional[np.ndarray]:
        """The effective row counts ``N_k`` (K,) of a prior fit's ``params``; None without a prior."""
        if self.prior is None:
            return None
        return np.asarray(to_numpy(params.weights), dtype=np.float64) * float(self.n_rows)


def fit(model: Any, X: Any, sample_weight: Any, *, streamed: Optional[bool] = None) -> None:
    """Fit the estimator ``model`` on ``X`` (shape (n, D)) with ``sample_weight`` (shape (n,), or None).

    ``streamed`` None streams out-of-core data only; True streams ``X``
    through the estimator's ``_open_source`` whatever it is (Dask).
    """
    covariance = model._check_hyperparameters()
    with estep.config_context(engine=model.engine):
        _fit_checked(model, covariance, X, sample_weight, streamed)


def _fit_checked(model: Any, covariance: CovarianceModel, X: Any, sample_weight: Any, streamed: Optional[bool]) -> None:
    """:func:`fit` once the estimator's parameters are checked, under its E-step engine."""
    model._online = None
    problem = Problem.of(model, covariance)
    random_state = check_random_state(model.random_state)
    if streamed or (streamed is None and is_out_of_core(X)):
        _refuse_noise(problem, "out-of-core data, chunk sources and Dask arrays")
        framed = frame_stream(model, open_source(model, X, sample_weight), problem, random_state)
        run_starts(model, framed, problem, random_state)
        return
    X = validate_rows(model, X, reset=True, missing=model.missing)
    # Small data: threads' wake-ups cost more than the arithmetic (see gaussmix._threads).
    with backend_for(get_namespace(X)).computation_context(), one_thread_for_small_fit(X, problem.n_components):
        run_starts(model, frame_rows(model, X, sample_weight, problem), problem, random_state)


def open_source(model: Any, X: Any, sample_weight: Any) -> Any:
    """Out-of-core ``X`` as the estimator's kind of stream, in chunks of :func:`gaussmix.data.chunking.stream_rows`."""
    rows_per_chunk = functools.partial(chunking.stream_rows, n_components=model.n_components, chunk_size=model.chunk_size)
    return model._open_source(X, sample_weight, rows_per_chunk)


def frame_rows(model: Any, X: Any, sample_weight: Any, problem: Problem) -> Framed:
    """Validated rows ``X`` of shape (n, D) in memory (or on a device), framed about their weighted mean."""
    xp = get_namespace(X)
    n_samples, n_features = X.shape
    # Scaled to mean one: a constant factor on every weight changes nothing.
    weights = checks.check_sample_weight(sample_weight, n_samples, X, unit_mean=True)
    check_row_counts(problem.n_components, n_samples, None if weights is None else int(xp.count_nonzero(weights)))
    user_init = check_init_arrays(model, problem.covariance, n_features, to_numpy(X[:0]).dtype)
    K, chunk_size = problem.n_components, problem.chunk_size
    init_rows = X
    if model.missing == "marginalize" and incomplete.has_missing(X):
        # Missing entries integrated out (gaussmix.missing); the frame is centred on the
        # observed column means, which also fill the gaps for the initialisers only.
        origin, init_rows = incomplete.observed_frame(X, weights)
        source = incomplete.IncompleteArraySource(X, weights, chunking.source_rows(X, K, chunk_size), origin)
    else:
        # EM runs on X - origin: translation-invariant maths, but float32 keeps its digits
        # (where the origin is summed in float64: see mean_row).
        if is_numpy(X, weights):
            origin = mean_row(X, weights)
        else:
            origin = xp.mean(X, axis=0) if weights is None else (weights @ X) / xp.sum(weights)
        # EM hands whole chunks to worker threads; the start works in cache-sized ones.
        source = ArraySource(X, weights, chunking.source_rows(X, K, chunk_size), origin)
    if problem.noise is not None:
        if model.missing == "marginalize" and incomplete.has_missing(X):
            _refuse_noise(problem, 'rows with missing entries (missing="marginalize")')
        # The volume and the rows that start as noise: once per fit, whatever the number of starts.
        noise = noise_start.prepare(X, weights, problem.noise, K)

    def moments() -> priors.Moments:
        if isinstance(source, incomplete.IncompleteArraySource):
            raise priors.missing_values_error()
        return priors.moments_of_rows(X, weights, origin, chunking.chunk_rows(X, 1, chunk_size))

    prior = _resolve_prior(problem, n_features, origin, moments)

    def start(random_state: np.random.RandomState) -> MixtureParams:
        chunk_rows = chunking.chunk_rows(X, K, chunk_size)
        if problem.noise is not None:
            return noise_start.start_from_rows(X, weights, origin, problem, user_init, random_state, chunk_rows, noise,
                                               prior)
        return start_from_rows(init_rows, weights, origin, problem, user_init, random_state, chunk_rows, prior)

    def float64_twin() -> tuple[Any, np.ndarray]:
        # The same kind of source (complete or incomplete rows) over a float64 copy.
        X64, origin64 = X.astype(np.float64), origin.astype(np.float64)
        weights64 = None if weights is None else weights.astype(np.float64)
        return type(source)(X64, weights64, chunking.source_rows(X64, K, chunk_size), origin64), origin64

    # float32 EM whose likelihood falls beyond rounding finishes in float64 (a copy made then).
    float32 = isinstance(X, np.ndarray) and X.dtype == np.float32
    return Framed(source, origin, start, float64_twin if float32 else None, prior, n_samples)


def _resolve_prior(problem: Problem, n_features: int, origin: Any,
                   moments: Callable[[], priors.Moments]) -> Optional[priors.ResolvedPrior]:
    """The fit's prior in the frame centred on ``origin``; ``moments()`` gives the data's where needed."""
    if problem.prior is None:
        return None
    return priors.resolve(problem.prior, problem.covariance, problem.n_components, n_features, origin, moments)


def frame_stream(model: Any, stream: Any, problem: Problem, random_state: np.random.RandomState) -> Framed:
    """A stream framed about its weighted mean: one validating pass (and sample), the start one more.

    ``stream`` has ``dtype``, ``n_features``, ``n_samples`` (or None),
    ``centred(origin, n_rows, weight_scale)`` and either ``chunks()`` or ``map_reduce``.
    """
    dtype, n_features = stream.dtype, stream.n_features
    user_init = check_init_arrays(model, problem.covariance, n_features, dtype)
    needs_sample = not _warm(model) and "means" not in user_init
    marginalize = model.missing == "marginalize"
    summary = summarise_stream(model, stream, problem.n_components,
                               seed=random_state.randint(2**31 - 1) if needs_sample else None, marginalize=marginalize)
    origin = summary.mean.astype(dtype)
    # Weights of mean one, as in memory: a constant factor on every weight changes nothing.
    centred = stream.centred(origin, summary.n_rows, summary.n_rows / summary.total_weight)

    # A default prior's mean and scale: one more pass, and only where it needs them.
    prior = _resolve_prior(problem, n_features, origin, lambda: priors.moments_of_stream(centred))

    def start(random_state: np.random.RandomState) -> MixtureParams:
        return start_from_stream(centred, summary, origin, problem, user_init, random_state, prior)

    # Rows with NaN (missing="marginalize"): the same chunks (or Dask blocks) through the incomplete E-step.
    return Framed(incomplete.incomplete_stream(centred) if summary.n_missing else centred, origin, start,
                  prior=prior, n_rows=summary.n_rows)


def summarise_stream(model: Any, stream: Any, n_components: int, *, seed: Optional[int],
                     marginalize: bool = False) -> DataSummary:
    """The first pass over ``stream`` (:func:`gaussmix.streaming.summarise`) and the checks of what it found.

    Records ``n_features_in_`` on the estimator ``model`` (and forgets the
    feature names of an earlier fit). ``seed`` None draws no sample.

    Raises
    ------
    ValueError
        For NaN or infinite rows (named), fewer rows than the source declares,
        fewer than 2 rows, fewer rows (or rows of positive weight) than
        ``n_components``, or weights summing to zero.
    """
    summary = summarise(stream, seed=seed, marginalize=marginalize)
    declared = stream.n_samples
    if declared is not None and declared != summary.n_rows:
        raise ValueError(f"the data source says n_samples = {declared} but yielded {summary.n_rows} rows")
    if summary.n_rows < 2:
        raise ValueError(f"the data source yielded {summary.n_rows} row(s); a fit needs at least 2")
    check_row_counts(n_components, summary.n_rows, summary.n_positive)
    if summary.total_weight <= 0:
        raise ValueError("sample_weight sums to zero: at least one row needs a positive weight")
    model.n_features_in_ = stream.n_features
    if hasattr(model, "feature_names_in_"):
        del model.feature_names_in_
    return summary


def _warm(model: Any) -> bool:
    return bool(model.warm_start and hasattr(model, "converged_"))


def _refuse_noise(problem: Problem, what: str) -> None:
    """Refuse a noise component (``noise=True``) on data it does not support yet.

    Raises
    ------
    ValueError
        If ``problem`` has a noise component; the message names ``what``.
    """
    if problem.noise is not None:
        raise ValueError(
            f"a noise component (noise=True or noise_init) is not supported for {what} yet: fit a NumPy "
            "array of complete rows in memory, or set noise=False"
        )


def run_starts(model: Any, framed: Framed, problem: Problem, random_state: np.random.RandomState) -> None:
    """Run EM from ``n_init`` starts (or the fitted state, when warm), keep the best, set the fitted attributes.

    With ``screen_iter``, starts after the first run that many iterations
    and only the most promising goes on (:func:`_continue_screened`).
    """
    source, origin, float64_twin = framed.source, framed.origin, framed.float64_twin
    max_iter = int(model.max_iter)
    config = EMConfig(
        problem.covariance, problem.reg_covar, float(model.tol), max_iter, origin,
        stop_on_decrease=float64_twin is not None, constraints=problem.constraints, prior=framed.prior,
    )
    twin: list = []  # made once, on the first fall
    do_init = not _warm(model)
    n_init = model.n_init if do_init else 1
    screen = model.screen_iter
    # float32 runs may finish in float64 (finish_in_float64): not screened, to keep that simple
    screening = screen is not None and n_init > 1 and float64_twin is None and screen < max_iter
    best: Optional[FitResult] = None
    best_sound, best_index = False, 0
    screened: list[tuple[bool, float, int, FitResult]] = []
    traces: list[list[float]] = []
    failure: Optional[Exception] = None
    for init_index in range(n_init):
        _say(model, 1, f"Initialization {init_index}")
        limit = screen if screening and init_index > 0 else max_iter
        try:
            if do_init:
                params = framed.start(random_state)
                previous = -math.inf
            else:
                params = model._fitted_params(like=origin).translated(-origin)
                _check_warm_noise(params, problem)
                previous = model.lower_bound_
            if max_iter == 0:
                result = FitResult(params, -math.inf, 0, False, [])
            else:
                began = time.perf_counter()
                callback = _iteration_callback(model, began, init_index, n_init)
                result = run_em_compiled_where_possible(
                    source, params, dataclasses.replace(config, max_iter=limit),
                    previous_lower_bound=previous, callback=callback,
                )
                if result.precision_lost:
                    twin = twin or [float64_twin()]
                    result = finish_in_float64(result, config, *twin[0], callback)
                state = "converged" if result.converged else "did not converge"
                _say(model, 1, f"Initialization {state}. time lapse {time.perf_counter() - began:.5f}s\t "
                               f"lower bound {result.lower_bound:.5f}")
        except _START_FAILURES as error:
            # Of several starts, one whose component collapsed is dropped; the fit fails
            # only when every start does (with the first start's error).
            if n_init == 1:
                raise
            failure = failure or error
            traces.append([])
            continue
        traces.append(list(result.lower_bounds))
        if limit < max_iter and not result.converged:
            # judged once every screened start has run (see _continue_screened)
            screened.append((not _degenerate(result, problem, framed), result.lower_bound, init_index, result))
            continue
        # The degeneracy rule decides only where the likelihood alone would not: judged lazily.
        if best is not None and best_sound and result.lower_bound <= best.lower_bound:
            continue
        sound = n_init == 1 or not _degenerate(result, problem, framed)
        if best is None or (sound, result.lower_bound) > (best_sound, best.lower_bound):
            best, best_sound, best_index = result, sound, init_index
    if screened:
        try:
            lead = _continue_screened(model, screened, source, config, traces, problem, framed)
        except _START_FAILURES as error:
            failure, lead = failure or error, None
        if lead is not None:
            result, sound, init_index = lead
            if best is None or (sound, result.lower_bound) > (best_sound, best.lower_bound):
                best, best_sound, best_index = result, sound, init_index
    if best is None:
        raise failure
    float64_iterations = best.n_iter - best.float32_iterations if best.precision_lost else 0
    if not best.converged and max_iter > 0:
        warnings.warn(
            "Best performing initialization did not converge. Try different init "
            "parameters, or increase max_iter, tol, or check for degenerate data.",
            ConvergenceWarning,
        )
    set_fitted(model, best, origin, framed.counts(best.params))
    model.lower_bounds_per_init_ = traces
    model.best_init_ = best_index
    model.float64_iterations_ = float64_iterations
    if model.degenerate_:
        warnings.warn(describe_degenerate(model.degenerate_components_), DegenerateFitWarning)


def _continue_screened(model: Any, screened: list, source: Any, config: EMConfig, traces: list,
                       problem: Problem, framed: Framed) -> tuple[FitResult, bool, int]:
    """The best screened start run on to convergence, as ``(result, sound, init_index)``.

    ``screened`` holds ``(sound, lower_bound, init_index, result)`` of the
    starts cut at ``screen_iter`` iterations; the best (sound first) resumes
    where it stopped, so it ends where running it alone would. Its trace in
    ``traces`` grows to the whole run.
    """
    _, _, init_index, result = max(screened, key=lambda entry: entry[:2])
    callback = _iteration_callback(model, time.perf_counter(), init_index, model.n_init)
    more = run_em_compiled_where_possible(
        source, result.params, dataclasses.replace(config, max_iter=config.max_iter - result.n_iter),
        previous_lower_bound=result.lower_bound,
        callback=None if callback is None else resumed_callback(callback, result.n_iter, config.max_iter),
    )
    whole = FitResult(more.params, more.lower_bound, result.n_iter + more.n_iter, more.converged,
                      [*result.lower_bounds, *more.lower_bounds])
    traces[init_index] = list(whole.lower_bounds)
    return whole, not _degenerate(whole, problem, framed), init_index


def _check_warm_noise(params: MixtureParams, problem: Problem) -> None:
    """Refuse a warm start whose fitted model has a noise component where the settings have none, or the reverse."""
    if (params.noise is None) != (problem.noise is None):
        has = "has no" if params.noise is None else "has a"
        raise ValueError(
            f"warm_start continues the fitted model, which {has} noise component, with settings that "
            f"{'add' if params.noise is None else 'drop'} one: set warm_start=False to fit afresh"
        )


#: what ends one start of several without ending the fit
_START_FAILURES = (CollapsedComponentError, NonFiniteLikelihoodError, FloatingPointError, np.linalg.LinAlgError)


def _degenerate(result: FitResult, problem: Problem, framed: Framed) -> bool:
    """Whether a start's fit is degenerate: a sound start is kept before any degenerate one."""
    # The rule does not depend on where the frame's origin is: the framed parameters serve.
    return bool(np.any(degenerate_components(result.params, problem.reg_covar, framed.counts(result.params))))


def finish_in_float64(result: FitResult, config: EMConfig, source64: Any, origin64: Any,
                      callback: Callable[[IterationEvent], None]) -> FitResult:
    """Continue a float32 run that lost precision in float64, and hand back float32 parameters.

    ``result.n_iter`` iterations ran in float32; the whole run keeps ``max_iter``.
    """
    remaining = config.max_iter - result.n_iter
    if remaining <= 0:
        return dataclasses.replace(result, float32_iterations=result.n_iter)
    float32 = result.params.means
    config64 = dataclasses.replace(config, max_iter=remaining, origin=origin64, stop_on_decrease=False)
    more = run_em(source64, result.params.converted_like(origin64), config64,
                  previous_lower_bound=result.lower_bound, callback=callback)
    return FitResult(more.params.converted_like(float32), more.lower_bound, result.n_iter + more.n_iter,
                     more.converged, [*result.lower_bounds, *more.lower_bounds], precision_lost=True,
                     float32_iterations=result.n_iter)


def set_fitted(model: Any, result: FitResult, origin: Any, counts: Optional[np.ndarray] = None) -> None:
    """The fitted attributes of ``model`` from ``result``, whose parameters are centred on ``origin`` (D,).

    ``counts``: the effective row counts (K,) of a prior fit (``effective_counts_``), else None.
    """
    model._set_parameters(result.params.translated(origin), counts)
    model.converged_ = result.converged
    model.n_iter_ = result.n_iter
    model.lower_bound_ = result.lower_bound
    model.lower_bounds_ = list(result.lower_bounds)


def _iteration_callback(model: Any, began: float, init_index: int, n_init: int) -> Optional[Callable[[IterationEvent], None]]:
    if model.verbose < 2 and model.callback is None:
        return None  # nobody listens
    last = [began]

    def report(event: IterationEvent) -> None:
        event = dataclasses.replace(event, init_index=init_index, n_init=n_init)
        if model.verbose >= 2 and event.n_iter % model.verbose_interval == 0:
            now = time.perf_counter()
            print(f"  Iteration {event.n_iter}\t time lapse {now - last[0]:.5f}s\t ll change {event.change:.5f}")
            last[0] = now
        if model.callback is not None:
            model.callback(event)

    return report


def _say(model: Any, level: int, message: str) -> None:
    if model.verbose >= level:
        print(message, file=sys.stdout)


# ------------------------------------------------------------------ online
def partial_fit(model: Any, X: Any, sample_weight: Any) -> None:
    """One stepwise-EM step of ``model`` on the batch ``X`` (shape (n_batch, D)); the first batch starts the fit."""
    covariance = model._check_hyperparameters()
    with estep.config_context(engine=model.engine):
        _partial_fit_checked(model, covariance, X, sample_weight)


def _partial_fit_checked(model: Any, covariance: CovarianceModel, X: Any, sample_weight: Any) -> None:
    """:func:`partial_fit` once the estimator's parameters are checked, under its E-step engine."""
    problem = Problem.of(model, covariance)
    if problem.prior is not None:
        # Stepwise EM keeps statistics per unit of weight: the prior's counts need the number of rows.
        raise ValueError("partial_fit does not take a prior: use fit, or prior=None for online fits")
    _refuse_noise(problem, "partial_fit (online EM)")
    state = getattr(model, "_online", None)
    if state is None:
        fitted = hasattr(model, "means_")
        X = validate_rows(model, X, reset=not fitted, missing=model.missing)
        with one_thread_for_small_fit(X, problem.n_components):
            state = start_online(model, X, sample_weight, problem, fitted)
    else:
        X = np.asarray(validate_rows(model, X, reset=False, missing=model.missing), dtype=state.origin.dtype)
        weights = checks.check_sample_weight(sample_weight, X.shape[0], X, unit_mean=True)
        check_batch_reach(X, state.params, state.origin)
        with one_thread_for_small_fit(X, problem.n_components):
            state = online_step(model, state, X, weights, problem)
    model._online = state
    set_fitted(model, FitResult(state.params, model.lower_bound_, state.n_batches, False, [model.lower_bound_]),
               state.origin)


def start_online(model: Any, X: Any, sample_weight: Any, problem: Problem, fitted: bool) -> OnlineState:
    """The online state after the first batch ``X`` (validated, shape (n, D)): framed, started, one step taken.

    ``fitted``: start from the fitted parameters instead of the initialiser.
    """
    weights = checks.check_sample_weight(sample_weight, X.shape[0], X, unit_mean=True)
    # The frame of the whole stream: later batches are centred on this batch's mean
    # (of the observed entries, which fill the gaps for the initialiser, where NaN are marginalised).
    if model.missing == "marginalize" and incomplete.has_missing(X):
        origin, init_rows = incomplete.observed_frame(X, weights)
    else:
        origin, init_rows = np.average(X, axis=0, weights=weights).astype(X.dtype), X
    chunk_rows = chunking.chunk_rows(X, problem.n_components, problem.chunk_size)
    source = incomplete.array_source(X, weights, chunk_rows, origin, model.missing)
    if fitted:
        start = model._fitted_params(X.dtype).translated(-origin)
    else:
        check_row_counts(problem.n_components, X.shape[0], None if weights is None else np.count_nonzero(weights))
        user_init = check_init_arrays(model, problem.covariance, X.shape[1], X.dtype)
        random_state = check_random_state(model.random_state)
        start = start_from_rows(init_rows, weights, origin, problem, user_init, random_state, chunk_rows)
    stats, loglik = accumulate_source(source, start)
    model.lower_bound_ = loglik / stats.total_weight
    stats = per_unit_weight(stats)
    params = m_step(stats, problem.covariance, problem.reg_covar, previous=start, origin=origin,
                    constraints=problem.constraints)
    return OnlineState(stats, params, origin, 1)


def online_step(model: Any, state: OnlineState, X: np.ndarray, weights: Any, problem: Problem) -> OnlineState:
    """One stepwise-EM update of ``state`` with the validated batch ``X`` of shape (n_batch, D)."""
    chunk_rows = chunking.chunk_rows(X, problem.n_components, problem.chunk_size)
    batch_stats, loglik = accumulate_source(incomplete.array_source(X, weights, chunk_rows, state.origin, model.missing),
                                            state.params)
    eta = step_size(state.n_batches - 1, float(model.learning_decay))
    stats = stepwise_update(state.stats, batch_stats, eta)
    params = m_step(stats, problem.covariance, problem.reg_covar, previous=state.params, origin=state.origin,
                    constraints=problem.constraints)
    model.lower_bound_ = loglik / batch_stats.total_weight
    return OnlineState(stats, params, state.origin, state.n_batches + 1)
