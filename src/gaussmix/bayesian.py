"""``BayesianGaussianMixture``: scikit-learn's variational mixture as a reduction.

A drop-in for :class:`sklearn.mixture.BayesianGaussianMixture`: the same
constructor, fitted attributes, methods, warnings and errors, and the same
numbers (the maths is scikit-learn's, :mod:`gaussmix.variational`). The
E-step runs the covariance structures' chunked kernels, the statistics of the
chunks are merged, and the variational M-step reads their sum: memory stays
bounded by a chunk, not by N x K responsibilities. ``fit`` also takes
``sample_weight`` (frequency weights).
"""

from __future__ import annotations

import time
import warnings
from numbers import Integral
from typing import Any, Iterator, Optional

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as _SklearnBayesianGaussianMixture
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _validation as checks
from . import variational
from ._threads import one_blas_thread_for_matrices, one_thread_for_small_fit
from .covariance import get_covariance_model
from .em import accumulate_source
from .data import chunking
from .data.arrays import ArraySource
from .stats import SuffStats, stats_from_responsibilities
from .variational import Posterior, Priors


class BayesianGaussianMixture(DensityMixin, BaseEstimator):
    """Variational Bayesian estimation of a Gaussian mixture.

    scikit-learn's :class:`~sklearn.mixture.BayesianGaussianMixture`, with the
    same parameters, attributes and results (see its documentation for each
    of them), fitted as a reduction of per-chunk sufficient statistics. Two
    additions: ``fit(X, sample_weight=...)`` and ``chunk_size``.

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
    def _check_parameters(self, X: np.ndarray, weights: Optional[np.ndarray]) -> Priors:
        """Resolve the priors as scikit-learn does (weighted moments under ``weights``)."""
        n_features = X.shape[1]
        self.weight_concentration_prior_ = (
            1.0 / self.n_components if self.weight_concentration_prior is None else self.weight_concentration_prior
        )
        self.mean_precision_prior_ = 1.0 if self.mean_precision_prior is None else self.mean_precision_prior
        if self.mean_prior is None:
            self.mean_prior_ = X.mean(axis=0) if weights is None else _weighted_mean(X, weights)
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
        self.covariance_prior_ = self._covariance_prior(X, weights)
        return Priors(
            self.weight_concentration_prior_type,
            self.weight_concentration_prior_,
            self.mean_precision_prior_,
            np.asarray(self.mean_prior_, dtype=np.float64),
            self.degrees_of_freedom_prior_,
            self.covariance_prior_,
        )

    def _covariance_prior(self, X: np.ndarray, weights: Optional[np.ndarray]) -> Any:
        n_features = X.shape[1]
        kind = self.covariance_type
        if self.covariance_prior is None:
            if weights is None:
                covariance = np.atleast_2d(np.cov(X.T)) if kind in ("full", "tied") else np.var(X, axis=0, ddof=1)
            else:
                covariance = _weighted_covariance(X, weights, full=kind in ("full", "tied"))
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
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights: a row of weight 2 counts as two
            rows. Unlike a maximum-likelihood fit, their scale matters (the
            prior weighs as much against 10 rows of weight 10 as against 100
            rows). The default priors use the weighted mean and covariance
            (``ddof=1`` counted in weight), so the total weight must exceed one.

        Returns
        -------
        self
        """
        self._validate_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        if X.shape[0] < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]}"
            )
        weights = checks.check_sample_weight(sample_weight, X.shape[0], X)
        if weights is not None and self.covariance_prior is None and not float(np.sum(weights, dtype=np.float64)) > 1:
            raise ValueError(
                f"sample_weight sums to {float(np.sum(weights, dtype=np.float64)):g}: the default covariance_prior "
                "(the weighted covariance of X, ddof=1) needs a total weight above 1; pass larger weights "
                "or a covariance_prior"
            )
        priors = self._check_parameters(X, weights)
        with one_thread_for_small_fit(X, self.n_components):
            self._fit_arrays(X, weights, priors)
        return self

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

    def _fit_arrays(self, X: np.ndarray, weights: Optional[np.ndarray], priors: Priors) -> None:
        """scikit-learn's ``fit_predict`` loop, each E-step a reduction over the chunks."""
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        max_lower_bound = -np.inf
        best_lower_bounds: list[float] = []
        best: Optional[Posterior] = None
        best_n_iter = 0
        self.converged_ = False
        random_state = check_random_state(self.random_state)
        source = ArraySource(X, weights, self._source_rows(X))
        for init in range(n_init):
            self._print_verbose_msg_init_beg(init)
            posterior = self._initial_posterior(X, weights, priors, random_state) if do_init else self._posterior()
            lower_bound = -np.inf if do_init else self.lower_bound_
            current_lower_bounds: list[float] = []
            if self.max_iter == 0:
                best, best_n_iter = posterior, 0
                continue
            converged = False
            for n_iter in range(1, self.max_iter + 1):
                previous = lower_bound
                posterior, lower_bound = self._iteration(source, posterior, priors, X.dtype)
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

    def _iteration(self, source: ArraySource, posterior: Posterior, priors: Priors, dtype: Any) -> tuple[Posterior, float]:
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

    # ------------------------------------------------------------ initialising
    def _initial_posterior(
        self, X: np.ndarray, weights: Optional[np.ndarray], priors: Priors, random_state: np.random.RandomState
    ) -> Posterior:
        """scikit-learn's start (same draws from ``random_state``), summarised chunk by chunk."""
        n_samples, n_components = X.shape[0], self.n_components
        labels: Optional[np.ndarray] = None
        if self.init_params == "kmeans":
            kmeans = KMeans(n_clusters=n_components, n_init=1, random_state=random_state)
            labels = kmeans.fit(X, sample_weight=weights).labels_
        elif self.init_params == "k-means++":
            _, indices = kmeans_plusplus(X, n_components, random_state=random_state, sample_weight=weights)
            labels = _labels_of_rows(indices, n_samples)
        elif self.init_params == "random_from_data":
            labels = _labels_of_rows(_rows_from_data(n_samples, n_components, weights, random_state), n_samples)
        full = get_covariance_model(self.covariance_type).full_scatter
        stats: Optional[SuffStats] = None
        for start, stop, resp in self._initial_resp(X, labels, random_state):
            weighted = resp if weights is None else resp * weights[start:stop, None]
            total = stop - start if weights is None else float(np.sum(weights[start:stop], dtype=np.float64))
            part = stats_from_responsibilities(X[start:stop], weighted, full, total)
            stats = part if stats is None else stats.merge(part)
        return self._m_step(stats, priors, X.dtype)

    def _initial_resp(
        self, X: np.ndarray, labels: Optional[np.ndarray], random_state: np.random.RandomState
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, stop, resp)`` per block: one-hot labels (-1: no component), or
        scikit-learn's random responsibilities, drawn block by block in the same order."""
        rows = self._block_rows(X)
        for start in range(0, X.shape[0], rows):
            stop = min(start + rows, X.shape[0])
            if labels is None:
                resp = random_state.uniform(size=(stop - start, self.n_components)).astype(X.dtype)
                resp /= resp.sum(axis=1)[:, np.newaxis]
            else:
                resp = (labels[start:stop, None] == np.arange(self.n_components)).astype(X.dtype)
            yield start, stop, resp

    # ------------------------------------------------------------- parameters
    def _posterior(self) -> Posterior:
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
    def _weighted_log_prob(self, X: np.ndarray) -> Iterator[np.ndarray]:
        """scikit-learn's ``_estimate_weighted_log_prob``, block by block: arrays (rows, K)."""
        posterior = self._posterior()
        terms = variational.estep_log_terms(posterior, self.weight_concentration_prior_type, X.shape[1])
        model = get_covariance_model(self.covariance_type)
        rows = self._block_rows(X)
        for start in range(0, X.shape[0], rows):
            yield model.log_gaussian(X[start:start + rows], self.means_, self.precisions_cholesky_) + terms

    def score_samples(self, X: Any) -> np.ndarray:
        """Log of the (variational) mixture density of each row, shape (n_samples,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        parts = [_logsumexp_rows(block) for block in self._weighted_log_prob(X)]
        return np.concatenate(parts) if parts else np.empty(0)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples` over the rows."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each row, shape (n_samples,)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return np.concatenate([np.argmax(block, axis=1) for block in self._weighted_log_prob(X)])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Responsibilities of the components for each row, shape (n_samples, n_components)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        parts = []
        for block in self._weighted_log_prob(X):
            with np.errstate(under="ignore"):
                parts.append(np.exp(block - _logsumexp_rows(block)[:, np.newaxis]))
        return np.concatenate(parts)

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


def _weighted_covariance(X: np.ndarray, weights: np.ndarray, full: bool) -> np.ndarray:
    """Frequency-weighted covariance (``ddof=1`` counted in weight: integer weights
    give ``np.cov`` of the repeated rows), (D, D), or its diagonal (D,)."""
    weights = weights.astype(np.float64)
    centred = X.astype(np.float64) - _weighted_mean(X, weights)
    denominator = np.sum(weights) - 1.0
    if full:
        return (centred.T * weights) @ centred / denominator
    return (weights @ (centred * centred)) / denominator


def _labels_of_rows(indices: np.ndarray, n_samples: int) -> np.ndarray:
    """Labels (n,) giving row ``indices[k]`` to component k and no component to the others (-1)."""
    labels = np.full(n_samples, -1, dtype=np.intp)
    labels[np.asarray(indices)] = np.arange(len(indices))
    return labels


def _rows_from_data(
    n_samples: int, n_components: int, weights: Optional[np.ndarray], random_state: np.random.RandomState
) -> np.ndarray:
    """scikit-learn's random_from_data rows; with weights, drawn in proportion to them."""
    if weights is None:
        return random_state.choice(n_samples, size=n_components, replace=False)
    positive = int(np.count_nonzero(weights))
    if positive < n_components:
        raise ValueError(
            f'init_params="random_from_data" needs n_components={n_components} rows of positive weight; '
            f"sample_weight has {positive}: use another init_params or fewer components"
        )
    probabilities = weights.astype(np.float64) / np.sum(weights, dtype=np.float64)
    return random_state.choice(n_samples, size=n_components, replace=False, p=probabilities)


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """``log(sum(exp(a), axis=1))`` of a (rows, K) block, stable."""
    row_max = np.max(a, axis=1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    with np.errstate(under="ignore"):
        return np.log(np.sum(np.exp(a - row_max), axis=1)) + row_max[:, 0]
