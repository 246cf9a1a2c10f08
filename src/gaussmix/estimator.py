"""``GaussianMixture``: a drop-in for scikit-learn's estimator of the same name."""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import time
import warnings
from typing import Any, Callable, Optional

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _device
from . import _validation as checks
from .backends import backend_for, get_namespace, to_numpy
from .covariance import CovarianceModel, get_covariance_model
from .em import EMConfig, FitResult, IterationEvent, m_step, responsibilities, run_em
from .init import get_initializer, initial_stats, nearest_centre_labels
from .params import MixtureParams
from .sources import ArraySource, auto_chunk_rows


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture model fitted by Expectation-Maximisation.

    The constructor takes scikit-learn's ``GaussianMixture`` parameters with the
    same meaning and defaults, so replacing the import is all a user does. On
    top of them, ``fit`` accepts ``sample_weight`` (frequency weights).

    ``X`` may be a torch tensor (CPU or CUDA): EM then runs in torch on the
    tensor's device, the fitted attributes are tensors there, and inference
    returns tensors there. Only the initialisation runs on the host, on at most
    ``2**17`` rows (a random sample beyond that).

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : str, default="full"
        ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"`` (the same as the
        mclust names ``"VVV"``, ``"EEE"``, ``"VVI"``, ``"VII"``), or any other of
        mclust's 14 structures (``gaussmix.MCLUST_COVARIANCE_TYPES``).
    tol : float, default=1e-3
        Convergence threshold on the change of the mean per-sample log-likelihood.
    reg_covar : float, default=1e-6
        Non-negative value added to the covariance diagonals.
    max_iter : int, default=100
        EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the best lower bound is kept.
    init_params : {"kmeans", "k-means++", "hierarchical", "random", "random_from_data"}, default="kmeans"
        How starting responsibilities are chosen. ``"hierarchical"`` is mclust's
        start: model-based agglomerative clustering (:mod:`gaussmix.hierarchical`).
    weights_init : array of shape (K,), default=None
    means_init : array of shape (K, D), default=None
    precisions_init : array, default=None
        In the covariance type's layout: (K, D, D) full, (D, D) tied, (K, D)
        diag, (K,) spherical; an mclust structure uses the layout of the type
        it constrains (see :mod:`gaussmix.covariance.base`).
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start the next ``fit`` from the current solution (``n_init`` is then 1).
    verbose : int, default=0
        1 prints each initialisation, 2 also every ``verbose_interval`` iterations.
    verbose_interval : int, default=10
    callback : callable, default=None
        Called as ``callback(event)`` with an :class:`gaussmix.em.IterationEvent`
        after every EM iteration (for progress bars); not in scikit-learn.
    chunk_size : int, default=None
        Rows per E-step chunk; ``None`` chooses it so the temporaries stay
        within a few MiB on the host, or within a share of the free memory of
        a CUDA device. Not in scikit-learn.
    device : str or torch.device, default=None
        ``None`` keeps the rows where they are (NumPy stays NumPy, a tensor
        stays on its device). ``"cuda"``, ``"cuda:1"``, ``"cpu"`` or a
        ``torch.device`` moves the input of ``fit``, ``predict`` & co. to that
        torch device (needs ``pip install gaussmix[torch]``). NumPy input moved
        to CUDA is converted to float32; pass a float64 tensor to fit in
        float64 on the GPU. Not in scikit-learn.

    Attributes
    ----------
    weights_ : array of shape (K,)
    means_ : array of shape (K, D)
    covariances_, precisions_, precisions_cholesky_ : array
        In the covariance type's layout. NumPy arrays, or tensors on the
        device the fit ran on.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood of the training data at the best initialisation's last E-step.
    lower_bounds_ : list of float
        That value after each iteration of the best initialisation.
    lower_bounds_per_init_ : list of list of float
        The same trace for every initialisation of the last ``fit``, in order
        (for convergence plots); not in scikit-learn.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        callback: Optional[Callable[[IterationEvent], None]] = None,
        chunk_size: Optional[int] = None,
        device: Any = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.callback = callback
        self.chunk_size = chunk_size
        self.device = device

    # ------------------------------------------------------------------ checks
    def _check_hyperparameters(self) -> CovarianceModel:
        checks.check_param("n_components", self.n_components, numbers.Integral, 1)
        checks.check_param("tol", self.tol, numbers.Real, 0)
        checks.check_param("reg_covar", self.reg_covar, numbers.Real, 0)
        checks.check_param("max_iter", self.max_iter, numbers.Integral, 0)
        checks.check_param("n_init", self.n_init, numbers.Integral, 1)
        checks.check_param("verbose", self.verbose, numbers.Integral, 0)
        checks.check_param("verbose_interval", self.verbose_interval, numbers.Integral, 1)
        if self.chunk_size is not None:
            checks.check_param("chunk_size", self.chunk_size, numbers.Integral, 1)
        if self.callback is not None and not callable(self.callback):
            raise ValueError(f"callback must be callable or None; got {self.callback!r}")
        get_initializer(self.init_params)
        return get_covariance_model(self.covariance_type)

    def _validate_X(self, X: Any, *, reset: bool) -> Any:
        """Checked rows, in the namespace and on the device EM / inference will run on."""
        device = _device.resolve_device(self.device)
        if _device.is_device_array(X):
            if device is not None:
                X = _device.move_rows(X, device)
            X = checks.check_array_api_rows(
                X,
                expected_features=None if reset else self.n_features_in_,
                ensure_min_samples=2 if reset else 1,
                estimator=type(self).__name__,
            )
            if reset:
                self.n_features_in_ = int(X.shape[1])
                self.__dict__.pop("feature_names_in_", None)
        else:
            X = validate_data(
                self,
                X,
                reset=reset,
                dtype=[np.float64, np.float32],
                ensure_all_finite=False,
                ensure_min_samples=2 if reset else 1,
            )
            if device is not None:
                X = _device.move_rows(X, device)
        checks.check_all_finite(X)
        return X

    def _chunk_rows(self, X: Any) -> int:
        if self.chunk_size is not None:
            return int(self.chunk_size)
        budget = backend_for(get_namespace(X)).chunk_budget_bytes(X)
        return auto_chunk_rows(self.n_components, X.shape[1], X.dtype.itemsize, budget)

    # --------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "GaussianMixture":
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights: a row of weight 2 counts as two rows.

        Returns
        -------
        self
        """
        self.fit_predict(X, y, sample_weight=sample_weight)
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit the model and return the label of each row, shape (n_samples,)."""
        covariance = self._check_hyperparameters()
        # predict() gets the input as given: with the validated ndarray, a model fitted
        # on a DataFrame would warn that X lacks its feature names.
        X_input = X
        X = self._validate_X(X, reset=True)
        with backend_for(get_namespace(X)).computation_context():
            self._fit(X, covariance, sample_weight)
        return self.predict(X_input)

    def _fit(self, X: Any, covariance: CovarianceModel, sample_weight: Any) -> None:
        xp = get_namespace(X)
        n_samples, n_features = X.shape
        if n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}: use fewer components or more data"
            )
        weights = checks.check_sample_weight(sample_weight, n_samples, X)
        n_positive = None if weights is None else int(xp.count_nonzero(weights))
        if n_positive is not None and n_positive < self.n_components:
            raise ValueError(
                f"only {n_positive} row(s) have a positive sample_weight, fewer "
                f"than n_components = {self.n_components}"
            )
        user_init = self._check_init_arrays(covariance, n_features, to_numpy(X[:0]).dtype)
        # EM runs on X - origin: translation-invariant maths, but float32 keeps its digits.
        origin = xp.mean(X, axis=0) if weights is None else (weights @ X) / xp.sum(weights)
        source = ArraySource(X, weights, self._chunk_rows(X), origin)
        config = EMConfig(covariance, float(self.reg_covar), float(self.tol), int(self.max_iter))

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        random_state = check_random_state(self.random_state)
        best: Optional[FitResult] = None
        traces: list[list[float]] = []
        for init_index in range(n_init):
            self._say(1, f"Initialization {init_index}")
            if do_init:
                start = self._initial_params(X, weights, covariance, user_init, random_state, source.chunk_rows, origin)
                previous = -math.inf
            else:
                start = self._fitted_params(like=X).translated(-origin)
                previous = self.lower_bound_
            if self.max_iter == 0:
                result = FitResult(start, -math.inf, 0, False, [])
            else:
                began = time.perf_counter()
                result = run_em(
                    source, start, config, previous_lower_bound=previous,
                    callback=self._iteration_callback(began, init_index, n_init),
                )
                state = "converged" if result.converged else "did not converge"
                self._say(1, f"Initialization {state}. time lapse {time.perf_counter() - began:.5f}s\t lower bound {result.lower_bound:.5f}")
            traces.append(list(result.lower_bounds))
            if best is None or result.lower_bound > best.lower_bound:
                best = result
        assert best is not None
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self._set_fitted(best, origin)
        self.lower_bounds_per_init_ = traces

    def _check_init_arrays(self, covariance: CovarianceModel, n_features: int, dtype: np.dtype) -> dict:
        K = self.n_components
        init = {}
        if self.weights_init is not None:
            init["weights"] = checks.check_weights_init(self.weights_init, K, dtype)
        if self.means_init is not None:
            init["means"] = checks.check_means_init(self.means_init, K, n_features, dtype)
        if self.precisions_init is not None:
            init["precisions"] = checks.check_precisions_init(
                self.precisions_init, covariance, K, n_features, dtype
            )
        return init

    def _initial_params(self, X, weights, covariance, user_init, random_state, chunk_rows, origin) -> MixtureParams:
        """Starting parameters in the frame centred on ``origin``.

        Initialisers are NumPy / scikit-learn code: device rows are copied to
        the host for them (a sample of them, beyond ``_device.INIT_HOST_ROWS``)
        and the starting parameters are moved back to the rows' device.
        """
        if _device.is_device_array(X):
            host_X, host_weights = _device.host_rows_for_init(X, weights, random_state)
            host_chunk_rows = self.chunk_size or auto_chunk_rows(
                self.n_components, host_X.shape[1], host_X.dtype.itemsize
            )
            start = self._initial_params(
                host_X, host_weights, covariance, user_init, random_state, host_chunk_rows, to_numpy(origin)
            )
            return start.converted_like(X)
        if "means" in user_init:
            # Start the covariances from the rows nearest each given mean.
            assignment = nearest_centre_labels(X, user_init["means"])
        else:
            assignment = get_initializer(self.init_params)(X, weights, self.n_components, random_state)
        stats = initial_stats(X, weights, assignment, self.n_components, covariance.full_scatter, chunk_rows, origin)
        params = m_step(stats, covariance, float(self.reg_covar))
        if not user_init:
            return params
        covariances, precisions_cholesky = params.covariances, params.precisions_cholesky
        if "precisions" in user_init:
            precisions = user_init["precisions"]
            precisions_cholesky = covariance.precision_cholesky_from_precisions(precisions)
            covariances = covariance.covariances_from_precisions(precisions)
        return MixtureParams(
            user_init.get("weights", params.weights),
            user_init["means"] - origin if "means" in user_init else params.means,
            covariances,
            precisions_cholesky,
            covariance,
        )

    def _iteration_callback(self, began: float, init_index: int, n_init: int) -> Callable[[IterationEvent], None]:
        last = [began]

        def report(event: IterationEvent) -> None:
            event = dataclasses.replace(event, init_index=init_index, n_init=n_init)
            if self.verbose >= 2 and event.n_iter % self.verbose_interval == 0:
                now = time.perf_counter()
                print(f"  Iteration {event.n_iter}\t time lapse {now - last[0]:.5f}s\t ll change {event.change:.5f}")
                last[0] = now
            if self.callback is not None:
                self.callback(event)

        return report

    def _say(self, level: int, message: str) -> None:
        if self.verbose >= level:
            print(message, file=sys.stdout)

    def _set_fitted(self, result: FitResult, origin: Any) -> None:
        params = result.params.translated(origin)
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = params.covariance.precisions(params.precisions_cholesky)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.lower_bounds_ = list(result.lower_bounds)

    def _fitted_params(self, dtype: Any = None, *, like: Any = None) -> MixtureParams:
        """The fitted attributes as :class:`MixtureParams` (read afresh, as users may set them).

        With ``dtype``, as host NumPy arrays of that dtype; with ``like``, in its
        namespace, device and dtype (parameters are small: they go where the
        rows are, never the other way round).
        """
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        covariance = get_covariance_model(self.covariance_type)
        params = MixtureParams(
            self.weights_, self.means_, self.covariances_, self.precisions_cholesky_, covariance
        )
        if dtype is not None:
            like = np.empty(0, dtype=dtype)
        return params if like is None else params.converted_like(like)

    # ------------------------------------------------------------- inference
    def _per_chunk(self, X: Any, function: Callable[[Any, MixtureParams], Any]) -> Any:
        """``function(chunk, params)`` over row chunks, concatenated; in X's namespace and device."""
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        X = self._validate_X(X, reset=False)
        xp = get_namespace(X)
        params = self._fitted_params(like=X)
        rows = self._chunk_rows(X)
        with backend_for(xp).computation_context():
            pieces = [function(X[start:start + rows], params) for start in range(0, X.shape[0], rows)]
        return xp.concat(pieces, axis=0)

    def score_samples(self, X: Any) -> Any:
        """Log-density ``log p(x)`` of each row, shape (n_samples,)."""
        return self._per_chunk(X, lambda chunk, params: responsibilities(chunk, params)[1])

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-density of the rows of ``X``."""
        log_density = self.score_samples(X)
        return float(get_namespace(log_density).mean(log_density))

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities ``p(z = k | x)``, shape (n_samples, K)."""
        return self._per_chunk(X, lambda chunk, params: responsibilities(chunk, params)[0])

    def predict(self, X: Any) -> Any:
        """Most probable component of each row, shape (n_samples,)."""
        return self._per_chunk(
            X, lambda chunk, params: get_namespace(chunk).argmax(params.log_weighted_prob(chunk), axis=1)
        )

    def sample(self, n_samples: int = 1) -> tuple[Any, Any]:
        """Draw rows from the fitted mixture.

        Returns
        -------
        X : array of shape (n_samples, D)
            On the device of the fitted attributes.
        y : array of shape (n_samples,)
            The component each row was drawn from.
        """
        params = self._fitted_params()
        checks.check_param("n_samples", n_samples, numbers.Integral, 1)
        return params.sample(int(n_samples), check_random_state(self.random_state))

    # ------------------------------------------------------------- criteria
    def _n_parameters(self) -> int:
        return self._fitted_params().n_parameters()

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on ``X`` (lower is better)."""
        n = int(X.shape[0]) if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion on ``X`` (lower is better)."""
        n = int(X.shape[0]) if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + 2 * self._n_parameters()

    def icl(self, X: Any) -> float:
        """Integrated completed likelihood on ``X`` (lower is better).

        ``BIC + 2 * sum_n sum_k -z_nk log z_nk``: the BIC penalised by the
        entropy of the responsibilities ``z``, so that overlapping components
        cost more (Biernacki, Celeux & Govaert 2000). mclust's ``icl`` uses the
        hard-assignment variant ``-2 sum_n log z_n,map(n)`` and the opposite
        sign (higher is better), so its values differ.
        """
        resp = self.predict_proba(X)
        xp = get_namespace(resp)
        # -z log z with 0 log 0 = 0 (log of 1 where z is 0), computed where the responsibilities live
        entropy = -float(xp.sum(resp * xp.log(xp.where(resp > 0, resp, xp.ones_like(resp)))))
        return self.bic(X) + 2 * entropy
