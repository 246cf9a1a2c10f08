"""Bootstrap likelihood-ratio test for the number of components (mclust's ``mclustBootstrapLRT``).

For each K, the statistic ``2 (log L_{K+1} - log L_K)`` has no usable
asymptotic distribution (the null hypothesis sits on the boundary of the
parameter space), so it is compared with its *parametric bootstrap*
distribution (McLachlan 1987): samples of the data's size are drawn from the
fitted K-component mixture, and K and K + 1 components are refitted on each,
starting from the parameters fitted to the data, as mclust does. The p-value
is ``(1 + #{bootstrap >= observed}) / (B + 1)``.

Replicates run in parallel with joblib (``n_jobs``) or on a Dask cluster
(``client=``, a ``dask.distributed.Client``); each replicate has its own
seed, drawn up front, so the result does not depend on how they are spread.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _validation as checks
from .degeneracy import DegenerateFitWarning
from .estimator import GaussianMixture
from .params import MixtureParams
from .selection import SELECT_MAX_ITER, SELECT_TOL, SMALL_DATA_ENTRIES, display_name, select
from ._threads import one_thread

#: fresh samples drawn for one replicate whose refit fails (a collapsed component) before giving up;
#: mclust redraws without limit
MAX_REDRAWS = 20
#: the settings of the observed fits that only make sense there (the refits start from them)
_START_SETTINGS = ("init_params", "n_init", "weights_init", "means_init", "precisions_init", "random_state",
                   "warm_start", "callback", "verbose")


@dataclass(frozen=True)
class LRTStep:
    """The test of K against K + 1 components.

    Attributes
    ----------
    n_components : int
        K, the null hypothesis.
    statistic : float
        Observed ``2 (log L_{K+1} - log L_K)`` on the data.
    bootstrap : ndarray of shape (B,)
        The statistic on each bootstrap sample drawn from the fitted K-component mixture.
    p_value : float
        ``(1 + #{bootstrap >= statistic}) / (B + 1)``.
    redraws : int
        Samples drawn again because a refit on them failed (not in ``bootstrap``).
    """

    n_components: int
    statistic: float
    bootstrap: np.ndarray
    p_value: float
    redraws: int = 0


class BootstrapLRTResult:
    """Sequential bootstrap likelihood-ratio tests, K = 1 .. max_components - 1.

    Attributes
    ----------
    covariance_type : str
    n_bootstrap : int
    steps : tuple of LRTStep
    models_ : dict
        K -> the :class:`GaussianMixture` fitted to the data (K = 1 .. max_components).
    """

    def __init__(self, covariance_type: str, n_bootstrap: int, steps: list[LRTStep], models: dict) -> None:
        self.covariance_type = covariance_type
        self.n_bootstrap = int(n_bootstrap)
        self.steps = tuple(steps)
        self.models_ = dict(models)

    @property
    def n_components(self) -> np.ndarray:
        """K of each test, shape (max_components - 1,)."""
        return np.array([step.n_components for step in self.steps])

    @property
    def statistics(self) -> np.ndarray:
        """Observed statistics, shape (max_components - 1,)."""
        return np.array([step.statistic for step in self.steps])

    @property
    def p_values(self) -> np.ndarray:
        """Bootstrap p-values, shape (max_components - 1,)."""
        return np.array([step.p_value for step in self.steps])

    @property
    def bootstrap(self) -> np.ndarray:
        """Bootstrap statistics, shape (n_bootstrap, max_components - 1): one column per test."""
        return np.stack([step.bootstrap for step in self.steps], axis=1)

    def to_dict(self) -> dict:
        """Plain-Python (JSON-serialisable) form."""
        return {
            "covariance_type": self.covariance_type,
            "n_bootstrap": self.n_bootstrap,
            "tests": [
                {"n_components": step.n_components, "statistic": step.statistic, "p_value": step.p_value,
                 "redraws": step.redraws, "bootstrap": step.bootstrap.tolist()}
                for step in self.steps
            ],
        }

    def table(self) -> str:
        """The tests as text: K vs K + 1, observed statistic, p-value."""
        lines = [f"Bootstrap sequential LRT for the number of components ({display_name(self.covariance_type)}, "
                 f"{self.n_bootstrap} bootstrap samples)",
                 f"{'test':>10}{'statistic':>14}{'p-value':>10}"]
        for step in self.steps:
            test = f"{step.n_components} vs {step.n_components + 1}"
            lines.append(f"{test:>10}{step.statistic:>14.4f}{step.p_value:>10.4f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<BootstrapLRTResult>\n{self.table()}"


def bootstrap_lrt(
    X: Any,
    covariance_type: str,
    max_components: int,
    n_bootstrap: int = 999,
    random_state: Any = None,
    n_jobs: Optional[int] = None,
    *,
    client: Any = None,
    **fit_params: Any,
) -> BootstrapLRTResult:
    """Test K against K + 1 components by a parametric bootstrap of the likelihood ratio.

    mclust's ``mclustBootstrapLRT(X, modelName, maxG = max_components - 1, nboot = n_bootstrap)``
    (mclust's ``maxG`` is the largest K tested against K + 1, here the
    largest K fitted). Every test is run; none stops the sequence early.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    covariance_type : str
        One structure (any name :class:`GaussianMixture` accepts).
    max_components : int
        Mixtures of 1 .. max_components components are fitted; K = 1 ..
        max_components - 1 is tested against K + 1. At least 2.
    n_bootstrap : int, default=999
        B, bootstrap samples per test.
    random_state : int, RandomState instance or None
        Seeds the fits to the data (as :func:`gaussmix.select`) and then one
        seed per bootstrap sample.
    n_jobs : int or None, default=None
        Processes (joblib) for the fits to the data and the replicates; None: one.
    client : dask.distributed.Client, optional
        Run the replicates on this Dask cluster instead (in batches); ``n_jobs``
        then applies to the fits to the data only.
    **fit_params
        Settings of every fit (``tol``, ``max_iter``, ``reg_covar``,
        ``equal_weights``, ...), as :func:`gaussmix.select` takes them (``tol``
        1e-5 and ``max_iter`` 500 unless given). The fits to the data keep the
        best of :func:`gaussmix.select`'s starts; the refits on each sample
        start from those fits, as in mclust.

    Returns
    -------
    BootstrapLRTResult

    Raises
    ------
    ValueError
        For ``max_components`` below 2, ``n_bootstrap`` below 1, a noise
        component in ``fit_params``, a fit to the data that fails, or a replicate whose refits fail on
        :data:`MAX_REDRAWS` samples in a row.
    """
    checks.check_param("max_components", max_components, numbers.Integral, 2)
    checks.check_param("n_bootstrap", n_bootstrap, numbers.Integral, 1)
    if not isinstance(covariance_type, str):
        raise TypeError(f"covariance_type must be one structure's name, got {covariance_type!r}")
    if fit_params.get("noise") or fit_params.get("noise_init") is not None:
        raise ValueError("bootstrap_lrt does not take a noise component (noise=True) yet: its samples are "
                         "drawn from Gaussian mixtures; leave noise and noise_init out")
    settings = {"tol": SELECT_TOL, "max_iter": SELECT_MAX_ITER, **fit_params}
    rng = check_random_state(random_state)
    fitted = select(X, range(1, int(max_components) + 1), covariance_type,
                    random_state=random_state if isinstance(random_state, numbers.Integral) else rng,
                    n_jobs=n_jobs, **settings)
    failed = [row for row in fitted.rows if not row.ok]
    if failed:
        raise ValueError(
            f"the fit of {failed[0].n_components} component(s) ({covariance_type}) to the data failed "
            f"({failed[0].error}); test fewer components (max_components) or raise reg_covar"
        )
    models = {row.n_components: fitted.estimators_[(row.n_components, row.covariance_type)] for row in fitted.rows}
    loglik = {row.n_components: row.log_likelihood for row in fitted.rows}
    refit = {key: value for key, value in settings.items() if key not in _START_SETTINGS}
    n_samples = int(np.shape(X)[0])
    steps = []
    for K in range(1, int(max_components)):
        seeds = rng.randint(np.iinfo(np.int32).max, size=int(n_bootstrap))
        task = _Replicates(models[K]._fitted_params(np.float64), _start(models[K]), _start(models[K + 1]),
                           covariance_type, n_samples, refit)
        values, redraws = _run(task, seeds, n_jobs, client)
        statistic = 2 * (loglik[K + 1] - loglik[K])
        p_value = (1 + int(np.sum(values >= statistic))) / (int(n_bootstrap) + 1)
        steps.append(LRTStep(K, float(statistic), values, float(p_value), redraws))
    return BootstrapLRTResult(covariance_type, int(n_bootstrap), steps, models)


def _start(model: GaussianMixture) -> dict:
    """A fitted model's parameters as ``*_init`` arrays (host NumPy)."""
    return {"weights_init": np.asarray(model.weights_), "means_init": np.asarray(model.means_),
            "precisions_init": np.asarray(model.precisions_)}


@dataclass(frozen=True)
class _Replicates:
    """What a worker needs to run replicates of one test: both fitted starts and the settings."""

    generator: MixtureParams
    null: dict
    alternative: dict
    covariance_type: str
    n_samples: int
    settings: dict

    def __call__(self, seeds: np.ndarray) -> tuple[np.ndarray, int]:
        """The statistic of each seed's replicate, shape (len(seeds),), and the redraws they needed."""
        values, redraws = np.empty(len(seeds)), 0
        small = self.n_samples * self.generator.n_features < SMALL_DATA_ENTRIES
        with warnings.catch_warnings(), (one_thread() if small else contextlib.nullcontext()):
            # Non-convergence of a refit is part of the bootstrap distribution, as in mclust (warn = FALSE).
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", DegenerateFitWarning)
            for index, seed in enumerate(seeds):
                values[index], extra = self._one(int(seed))
                redraws += extra
        return values, redraws

    def _one(self, seed: int) -> tuple[float, int]:
        rng = np.random.RandomState(seed)
        for attempt in range(MAX_REDRAWS):
            sample, _ = self.generator.sample(self.n_samples, rng)
            try:
                null = self._model(self.null).fit(sample)
                alternative = self._model(self.alternative).fit(sample)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                continue  # mclust draws again when a refit fails
            statistic = 2 * self.n_samples * (alternative.lower_bound_ - null.lower_bound_)
            if math.isfinite(statistic):
                return statistic, attempt
        raise ValueError(
            f"the refits of {self.null['means_init'].shape[0]} and {self.alternative['means_init'].shape[0]} "
            f"components failed on {MAX_REDRAWS} bootstrap samples in a row: raise reg_covar"
        )

    def _model(self, start: dict) -> GaussianMixture:
        K = start["means_init"].shape[0]
        arrays = dict(start)
        if self.settings.get("equal_weights"):
            del arrays["weights_init"]  # equal weights are 1/K already, and refuse given ones
        return GaussianMixture(K, covariance_type=self.covariance_type, n_init=1, **arrays, **self.settings)


def _run(task: _Replicates, seeds: np.ndarray, n_jobs: Optional[int], client: Any) -> tuple[np.ndarray, int]:
    """``task`` over ``seeds`` in batches: in this process, on joblib workers, or on a Dask cluster."""
    if client is not None:
        batches = np.array_split(seeds, min(len(seeds), 4 * max(1, _dask_workers(client))))
        # One copy of the task on the cluster, not one per batch.
        [shared] = client.scatter([task], broadcast=True)
        results = client.gather(client.map(_call, [shared] * len(batches), batches, pure=False))
    elif n_jobs in (None, 1):
        results = [task(seeds)]
    else:
        batches = np.array_split(seeds, min(len(seeds), 4 * max(1, effective_n_jobs(n_jobs))))
        results = Parallel(n_jobs=n_jobs)(delayed(task)(batch) for batch in batches)
    return np.concatenate([values for values, _ in results]), sum(redraws for _, redraws in results)


def _call(task: _Replicates, seeds: np.ndarray) -> tuple[np.ndarray, int]:
    return task(seeds)


def _dask_workers(client: Any) -> int:
    """How many threads the Dask cluster of ``client`` has (1 if it does not say)."""
    try:
        return int(sum(client.nthreads().values()))
    except (AttributeError, TypeError):
        raise TypeError(
            f"client must be a dask.distributed.Client, got {type(client).__name__}: "
            "pass n_jobs for local processes instead"
        ) from None
