"""``BayesianGaussianMixture``: scikit-learn's variational mixture as a reduction.

A drop-in for :class:`sklearn.mixture.BayesianGaussianMixture`: the same
constructor, fitted attributes, methods, warnings and errors, and the same
numbers (the maths is scikit-learn's, :mod:`gaussmix.variational`). The
E-step runs the covariance structures' chunked kernels, the statistics of the
chunks are merged, and the variational M-step reads their sum: memory stays
bounded by a chunk, not by N x K responsibilities. ``fit`` also takes
``sample_weight`` (frequency weights), and the out-of-core data
:class:`~gaussmix.GaussianMixture` takes, through the same sources
(:mod:`gaussmix.data`), first pass (:func:`gaussmix.fitting.summarise_stream`)
and scoring code (:class:`~gaussmix.scoring.ScoringMixin`); Dask arrays through
:class:`gaussmix.dask.BayesianGaussianMixture`.
"""

from __future__ import annotations

import copy
import time
import warnings
from numbers import Integral
from typing import Any, Callable, Optional

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as _SklearnBayesianGaussianMixture
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _validation as checks
from . import fitting
from . import variational
from . import variational_start as starting
from ._threads import one_blas_thread_for_matrices, one_thread_for_small_fit
from .covariance import get_covariance_model
from .em import accumulate_source
from .data import chunking, is_out_of_core
from .data.arrays import ArraySource
from .data.stream import open_stream
from .scoring import ScoringMixin
from .stats import SuffStats
from .streaming import weighted_covariance
from .variational import Posterior, Priors, VariationalParams


class BayesianGaussianMixture(ScoringMixin, DensityMixin, BaseEstimator):
    """Variational Bayesian estimation of a Gaussian mixture.

    scikit-learn's :class:`~sklearn.mixture.BayesianGaussianMixture`, with the
    same parameters, attributes and results (see its documentation for each
    of them), fitted as a reduction of per-chunk sufficient statistics.
    Additions: ``fit(X, sample_weight=...)``, ``chunk_size``, out-of-core
    ``X`` for ``fit`` and the methods that score rows (see :meth:`fit`), and
    ``uncertainty``.

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params, \
weight_concentration_prior_type, weight_concentration_prior, mean_precision_prior, \
mean_prior, degrees_of_freedom_prior, covariance_prior, random_state, warm_start, \
verbose, verbose_interval
        As scikit-learn's, with the same defaults.
    chunk_size : int or None, default=None
        Rows per chunk of the E-step; None sizes the chunks to the cache and
        the threads. Changes no result beyond rounding.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : ndarray
        (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical.
    weight_concentration_ : ndarray of shape (K,), or a pair of them (dirichlet_process)
    mean_precision_ : ndarray of shape (n_components,)
    degrees_of_freedom_ : ndarray of shape (n_components,), or float (tied)
    weight_concentration_prior_, mean_precision_prior_, mean_prior_, \
degrees_of_freedom_prior_, covariance_prior_
        The priors in force (defaults resolved from the data).
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float, one per iteration of the best initialisation
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    """

    #: scikit-learn's constraints, with gaussmix's chunk size
    _parameter_constraints: dict = {
        **_SklearnBayesianGaussianMixture._parameter_constraints,
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    #: how out-of-core data are opened: ``(X, sample_weight, rows_per_chunk) -> stream``
    _open_source = staticmethod(open_stream)
    #: what the shared row checks and scoring code read (not parameters here): NaN
    #: entries are refused, and rows are scored where they are
    missing = None
    device = None

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        chunk_size=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size

    # ------------------------------------------------------------------ priors
    def _check_parameters(
        self, n_features: int, data_mean: Callable[[], np.ndarray], data_covariance: Callable[[], np.ndarray]
    ) -> Priors:
        """Resolve the priors as scikit-learn does.

        ``data_mean()`` (shape (D,)) and ``data_covariance()`` ((D, D) for full
        and tied, the variances (D,) otherwise; ``ddof=1``) are the (weighted)
        moments of the data, computed only where a default prior needs them.
        """
        self.weight_concentration_prior_ = (
            1.0 / self.n_components if self.weight_concentration_prior is None else self.weight_concentration_prior
        )
        self.mean_precision_prior_ = 1.0 if self.mean_precision_prior is None else self.mean_precision_prior
        if self.mean_prior is None:
            self.mean_prior_ = data_mean()
        else:
            self.mean_prior_ = check_array(self.mean_prior, dtype=[np.float64, np.float32], ensure_2d=False)
            _check_shape(self.mean_prior_, (n_features,), "means")
        if self.degrees_of_freedom_prior is None:
            self.degrees_of_freedom_prior_ = n_features
        elif self.degrees_of_freedom_prior > n_features - 1.0:
            self.degrees_of_freedom_prior_ = self.degrees_of_freedom_prior
        else:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' "
                "should be greater than %d, but got %.3f." % (n_features - 1, self.degrees_of_freedom_prior)
            )
        self.covariance_prior_ = self._covariance_prior(n_features, data_covariance)
        return Priors(
            self.weight_concentration_prior_type,
            self.weight_concentration_prior_,
            self.mean_precision_prior_,
            np.asarray(self.mean_prior_, dtype=np.float64),
            self.degrees_of_freedom_prior_,
            self.covariance_prior_,
        )

    def _covariance_prior(self, n_features: int, data_covariance: Callable[[], np.ndarray]) -> Any:
        kind = self.covariance_type
        if self.covariance_prior is None:
            covariance = data_covariance()
            return covariance.mean() if kind == "spherical" else covariance
        if kind in ("full", "tied"):
            prior = check_array(self.covariance_prior, dtype=[np.float64, np.float32], ensure_2d=False)
            _check_shape(prior, (n_features, n_features), "%s covariance_prior" % kind)
            if not (np.allclose(prior, prior.T) and np.all(np.linalg.eigvalsh(prior) > 0.0)):
                raise ValueError("'%s precision' should be symmetric, positive-definite" % kind)
            return prior
        if kind == "diag":
            prior = check_array(self.covariance_prior, dtype=[np.float64, np.float32], ensure_2d=False)
            _check_shape(prior, (n_features,), "%s covariance_prior" % kind)
            if np.any(np.less_equal(prior, 0.0)):
                raise ValueError("'%s precision' should be positive" % kind)
            return prior
        return self.covariance_prior

    # ----------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "BayesianGaussianMixture":
        """Estimate the variational posterior with EM (scikit-learn's ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or out-of-core data
            Besides arrays, what :meth:`gaussmix.GaussianMixture.fit` streams: a
            ``numpy.memmap``, the path of a ``.npy`` file, an h5py dataset, a
            Zarr array or a chunk source (:mod:`gaussmix.sources`), read chunk
            by chunk on every iteration and never loaded whole. A first pass
            checks the rows and draws a reservoir sample of at most 32768 rows
            for the initialiser (:mod:`gaussmix.variational_start`: with no more
            rows of positive weight than that, the start is the in-memory one),
            a second computes the data's covariance where the default
            ``covariance_prior`` needs it. The ``predict`` & co. take the same data.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights: a row of weight 2 counts as two
            rows. Unlike a maximum-likelihood fit, their scale matters (the
            prior weighs as much against 10 rows of weight 10 as against 100
            rows). The default priors use the weighted mean and covariance
            (``ddof=1`` counted in weight), so the total weight must exceed one.
            A chunk source yields its weights with its chunks instead.

        Returns
        -------
        self
        """
        self._validate_params()
        if is_out_of_core(X):
            self._fit_stream(fitting.open_source(self, X, sample_weight))
            return self
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        if X.shape[0] < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]}"
            )
        weights = checks.check_sample_weight(sample_weight, X.shape[0], X)
        if weights is not None:
            self._check_total_weight(float(np.sum(weights, dtype=np.float64)))
        priors = self._check_parameters(
            X.shape[1],
            lambda: X.mean(axis=0) if weights is None else _weighted_mean(X, weights),
            lambda: _covariance_of_rows(X, weights, full=self.covariance_type in ("full", "tied")),
        )
        full = get_covariance_model(self.covariance_type).full_scatter

        def start(random_state: np.random.RandomState) -> Posterior:
            # scikit-learn's draws from random_state, on every row
            labels = starting.start_labels(self.init_params, X, weights, self.n_components, random_state)
            stats = starting.rows_stats(X, weights, labels, self.n_components, full, self._block_rows(X), random_state)
            return self._m_step(stats, priors, X.dtype)

        with one_thread_for_small_fit(X, self.n_components):
            source = ArraySource(X, weights, self._source_rows(X))
            self._run(source, X.dtype, priors, start, check_random_state(self.random_state))
        return self

    def _fit_stream(self, stream: Any) -> None:
        """:meth:`fit` on out-of-core data or Dask blocks opened as ``stream`` (the same loop as in memory)."""
        random_state = check_random_state(self.random_state)
        warm = self.warm_start and hasattr(self, "converged_")
        # The sample's seed from a copy: the initialiser then draws from random_state what
        # it draws in memory, and a sample holding every row gives the in-memory start.
        seed = None if warm else int(copy.deepcopy(random_state).randint(2**31 - 1))
        summary = fitting.summarise_stream(self, stream, self.n_components, seed=seed)
        self._check_total_weight(summary.total_weight)
        # Each later pass is checked to yield the same rows; the weights are counts, left as they are.
        stream = stream.centred(None, summary.n_rows)
        dtype = np.dtype(stream.dtype)
        priors = self._check_parameters(
            stream.n_features,
            lambda: summary.mean,
            lambda: weighted_covariance(stream, full=self.covariance_type in ("full", "tied")),
        )
        full = get_covariance_model(self.covariance_type).full_scatter
        block_rows = chunking.stream_rows(stream.n_features, dtype, self.n_components, self.chunk_size)

        def start(random_state: np.random.RandomState) -> Posterior:
            stats = starting.stream_stats(stream, summary, self.init_params, self.n_components, full, random_state,
                                          block_rows)
            return self._m_step(stats, priors, dtype)

        self._run(stream, dtype, priors, start, random_state)

    def _check_total_weight(self, total: float) -> None:
        """Refuse weights that leave the default covariance prior undefined (``ddof=1`` in weight)."""
        if self.covariance_prior is None and not total > 1:
            raise ValueError(
                f"sample_weight sums to {total:g}: the default covariance_prior "
                "(the weighted covariance of X, ddof=1) needs a total weight above 1; pass larger weights "
                "or a covariance_prior"
            )

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fit, then the most probable component of each row, shape (n_samples,).

        Always equal to ``fit(X).predict(X)``, as scikit-learn's.
        """
        return self.fit(X, y, sample_weight=sample_weight).predict(X)

    def _source_rows(self, X: np.ndarray) -> int:
        return chunking.source_rows(X, self.n_components, self.chunk_size)

    def _block_rows(self, X: np.ndarray) -> int:
        """Rows a block whose (rows, K, D) temporaries stay within the cache budget."""
        return chunking.block_rows(X, self.n_components, self.chunk_size)

    def _run(
        self, source: Any, dtype: Any, priors: Priors, start: Callable[[np.random.RandomState], Posterior],
        random_state: np.random.RandomState,
    ) -> None:
        """scikit-learn's ``fit_predict`` loop, each E-step a reduction over the chunks of ``source``.

        ``start(random_state)`` gives one initialisation's posterior; ``dtype``
        is the rows' (float32 or float64).
        """
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        max_lower_bound = -np.inf
        best_lower_bounds: list[float] = []
        best: Optional[Posterior] = None
        best_n_iter = 0
        self.converged_ = False
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            posterior = start(random_state) if do_init else self._variational_posterior()
            lower_bound = -np.inf if do_init else self.lower_bound_
            current_lower_bounds: list[float] = []
            if self.max_iter == 0:
                best, best_n_iter = posterior, 0
                continue
            converged = False
            for n_iter in range(1, self.max_iter + 1):
                previous = lower_bound
                posterior, lower_bound = self._iteration(source, posterior, priors, dtype)
                current_lower_bounds.append(lower_bound)
                change = lower_bound - previous
                self._print_verbose_msg_iter_end(n_iter, change)
                if abs(change) < self.tol:
                    converged = True
                    break
            self._print_verbose_msg_init_end(lower_bound, converged)
            if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                max_lower_bound = lower_bound
                best, best_n_iter, best_lower_bounds = posterior, n_iter, current_lower_bounds
                self.converged_ = converged
        # Only where iterations ran: max_iter=0 asks for the start, as scikit-learn.
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. "
                "Try different init parameters, or increase max_iter, "
                "tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self._set_parameters(best)
        self.n_iter_ = best_n_iter
        self.lower_bound_ = max_lower_bound
        self.lower_bounds_ = best_lower_bounds

    def _iteration(self, source: Any, posterior: Posterior, priors: Priors, dtype: Any) -> tuple[Posterior, float]:
        """One E-step (summed over the chunks) and M-step; the new posterior and lower bound."""
        params = variational.estep_params(posterior, priors.prior_type, self.covariance_type, dtype)
        stats, loglik = accumulate_source(source, params)
        # the host-side maths of the iteration, on K small matrices: one BLAS thread (see _m_step)
        with one_blas_thread_for_matrices(stats.means):
            entropy = variational.responsibility_entropy(stats, loglik, params, self.covariance_type)
            new = self._m_step(stats, priors, dtype)
            return new, variational.lower_bound(entropy, new, priors, self.covariance_type)

    def _m_step(self, stats: SuffStats, priors: Priors, dtype: Any) -> Posterior:
        # K LAPACK calls on D x D matrices (and batched products of them): waking the BLAS
        # threads costs more than the arithmetic, and on a busy machine far more (their spin-waits)
        with one_blas_thread_for_matrices(stats.means):
            return variational.m_step(
                stats, priors, self.covariance_type, self.reg_covar, float(np.finfo(dtype).eps), dtype == np.float32
            )

    # ------------------------------------------------------------- parameters
    def _variational_posterior(self) -> Posterior:
        """The fitted attributes as a :class:`Posterior` (read afresh: warm starts continue from them)."""
        return Posterior(
            self.weight_concentration_, self.mean_precision_, self.means_,
            self.degrees_of_freedom_, self.covariances_, self.precisions_cholesky_,
        )

    def _set_parameters(self, posterior: Posterior) -> None:
        (
            self.weight_concentration_,
            self.mean_precision_,
            self.means_,
            self.degrees_of_freedom_,
            self.covariances_,
            self.precisions_cholesky_,
        ) = posterior.as_tuple()
        self.weights_ = variational.mixture_weights(posterior, self.weight_concentration_prior_type)
        self.precisions_ = variational.precisions(self.precisions_cholesky_, self.covariance_type)

    # --------------------------------------------------------------- inference
    def _fitted_params(self, dtype: Any = None, *, like: Any = None) -> VariationalParams:
        """The fitted posterior as parameters the shared scoring code reads (:class:`ScoringMixin`).

        Their ``log_weighted_prob`` is scikit-learn's ``_estimate_weighted_log_prob``.
        NumPy arrays as fitted, whatever ``dtype`` the rows have: scikit-learn
        scores float32 rows with its float64 parameters, in float64. Only rows
        of another namespace (``like``: a tensor) get parameters converted to it.
        """
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        params = variational.inference_params(
            self._variational_posterior(), self.weight_concentration_prior_type, self.covariance_type
        )
        if like is not None and not isinstance(like, np.ndarray):
            return params.converted_like(like)
        return params

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw rows from the fitted mixture: scikit-learn's draws, in the same order.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component of each row.
        """
        check_is_fitted(self)
        if n_samples < 1:
            # scikit-learn's message (it prints n_components, not n_samples)
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (self.n_components)
            )
        n_features = self.means_.shape[1]
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        if self.covariance_type == "full":
            pieces = [
                rng.multivariate_normal(mean, covariance, int(count))
                for mean, covariance, count in zip(self.means_, self.covariances_, counts)
            ]
        elif self.covariance_type == "tied":
            pieces = [rng.multivariate_normal(mean, self.covariances_, int(count)) for mean, count in zip(self.means_, counts)]
        else:
            pieces = [
                mean + rng.standard_normal(size=(count, n_features)) * np.sqrt(covariance)
                for mean, covariance, count in zip(self.means_, self.covariances_, counts)
            ]
        labels = np.concatenate([np.full(int(count), k, dtype=np.int64) for k, count in enumerate(counts)])
        return np.asarray(np.vstack(pieces), dtype=np.float64), labels

    # ----------------------------------------------------------------- verbose
    def _print_verbose_msg_init_beg(self, n_init: int) -> None:
        if self.verbose == 1:
            print("Initialization %d" % n_init)
        elif self.verbose >= 2:
            print("Initialization %d" % n_init)
            self._init_prev_time = time.time()
            self._iter_prev_time = self._init_prev_time

    def _print_verbose_msg_iter_end(self, n_iter: int, diff_ll: float) -> None:
        if n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print("  Iteration %d" % n_iter)
            elif self.verbose >= 2:
                now = time.time()
                print("  Iteration %d\t time lapse %.5fs\t ll change %.5f" % (n_iter, now - self._iter_prev_time, diff_ll))
                self._iter_prev_time = now

    def _print_verbose_msg_init_end(self, lower_bound: float, converged: bool) -> None:
        converged_msg = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {converged_msg}.")
        elif self.verbose >= 2:
            elapsed = time.time() - self._init_prev_time
            print(f"Initialization {converged_msg}. time lapse {elapsed:.5f}s\t lower bound {lower_bound:.5f}.")


def _check_shape(param: np.ndarray, param_shape: tuple, name: str) -> None:
    """scikit-learn's shape check of a prior, with its message."""
    if param.shape != param_shape:
        raise ValueError(
            "The parameter '%s' should have the shape of %s, but got %s" % (name, param_shape, param.shape)
        )


def _weighted_mean(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Frequency-weighted column means, shape (D,), in float64."""
    weights = weights.astype(np.float64)
    return (weights @ X.astype(np.float64)) / np.sum(weights)


def _covariance_of_rows(X: np.ndarray, weights: Optional[np.ndarray], full: bool) -> np.ndarray:
    """The rows' covariance as scikit-learn's default prior takes it (``ddof=1``): (D, D), or the variances (D,).

    With frequency weights, ``ddof=1`` counted in weight: integer weights give
    ``np.cov`` of the repeated rows.
    """
    if weights is None:
        return np.atleast_2d(np.cov(X.T)) if full else np.var(X, axis=0, ddof=1)
    weights = weights.astype(np.float64)
    centred = X.astype(np.float64) - _weighted_mean(X, weights)
    denominator = np.sum(weights) - 1.0
    if full:
        return (centred.T * weights) @ centred / denominator
    return (weights @ (centred * centred)) / denominator

