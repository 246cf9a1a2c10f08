"""``GaussianMixture``: a drop-in for scikit-learn's estimator of the same name."""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import time
import warnings
from numbers import Integral, Real
from typing import Any, Callable, Optional

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _device
from . import estep
from . import constraints as constraining
from . import _validation as checks
from .backends import backend_for, get_namespace, to_numpy
from .covariance import CovarianceModel, get_covariance_model
from .estep._kernels import is_numpy, mean_row
from .degeneracy import DegenerateFitWarning, degenerate_components
from .degeneracy import describe as describe_degenerate
from .em import EMConfig, FitResult, IterationEvent, accumulate_source, m_step, responsibilities, run_em
from .init import get_initializer, initial_stats, nearest_centre_labels
from . import missing as incomplete
from .online import OnlineState, check_batch_reach, per_unit_weight, step_size, stepwise_update
from .params import MixtureParams
from ._threads import n_worker_threads, one_thread_for_small_fit
from .sources import (
    ArraySource,
    StreamSource,
    auto_chunk_rows,
    auto_source_rows,
    is_out_of_core,
    open_chunk_source,
    source_dtype,
)
from .streaming import nearest_centre_start, sampled_start, summarise


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
        A callable ``(X, sample_weight, n_components, random_state) -> labels``
        also serves (``select`` passes a :class:`~gaussmix.hierarchical.HierarchicalTree`
        built once for its whole grid).
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
    learning_decay : float, default=0.7
        Exponent alpha in (0.5, 1] of the step sizes ``(t + 2) ** -alpha`` of
        :meth:`partial_fit`: smaller values forget old batches faster (track
        drift), 1 weighs all batches equally. Not in scikit-learn.
    device : str or torch.device, default=None
        ``None`` keeps the rows where they are (NumPy stays NumPy, a tensor
        stays on its device). ``"cuda"``, ``"cuda:1"``, ``"cpu"`` or a
        ``torch.device`` moves the input of ``fit``, ``predict`` & co. to that
        torch device (needs ``pip install gaussmix[torch]``). NumPy input moved
        to CUDA is converted to float32; pass a float64 tensor to fit in
        float64 on the GPU. Not in scikit-learn.
    missing : {"error", "marginalize"}, default="error"
        What NaN entries of ``X`` mean. ``"error"``: they are refused.
        ``"marginalize"``: they are missing values (missing at random),
        integrated out exactly: ``fit`` runs the EM of Ghahramani & Jordan
        (1994) on each row's observed entries (every covariance structure,
        sample weights, chunks), ``predict``, ``predict_proba``,
        ``score_samples``, ``score``, ``bic`` & co. evaluate each row on its
        observed features, and :meth:`impute` fills the gaps. A row with
        every entry missing is an error naming it; drop such rows. The
        initialisers see incomplete rows filled with the column means.
        NumPy arrays in memory only (not out-of-core sources, Dask or torch,
        nor ``partial_fit``); data without NaN fit exactly as with ``"error"``.
        See :mod:`gaussmix.missing`. Not in scikit-learn.
    equal_weights : bool, default=False
        Keep every weight at ``1/K`` through EM (mclust's ``equalPro``). The
        K - 1 weights are then not free parameters: BIC and AIC do not count
        them. Cannot be combined with ``weights_init`` or frozen weights. Not
        in scikit-learn.
    fixed : str, set of str or dict, default=None
        Parameters EM leaves at their starting values (the ``*_init`` arrays
        where given, otherwise the initialiser's start), among ``"weights"``,
        ``"means"`` and ``"covariances"``: ``fixed={"means", "covariances"}``
        freezes them for every component; a dict of per-component boolean
        masks freezes some components only, e.g.
        ``fixed={"means": [True, False, True]}`` (``True`` / ``False`` there
        mean all / none). Free weights share what frozen ones leave in
        proportion to their responsibilities; a free covariance is estimated
        about its component's (possibly frozen) mean. Per-component covariance
        masks need a structure whose components have their own covariances
        (``"full"`` / VVV, ``"diag"`` / VVI, ``"spherical"`` / VII); in the
        others (``"tied"`` / EEE, EII, EEI, VEV, ...) the components share
        covariance parameters and freeze all together. BIC and AIC count only
        the parameters left free (a frozen mean: D fewer; frozen covariances:
        the structure's count for them). Not in scikit-learn.
    engine : str, default="auto"
        Which E-step engine computes the statistics (see :mod:`gaussmix.estep`):
        ``"auto"`` takes the fastest that suits each chunk, or one of
        ``"fused"``, ``"screened"``, ``"sparse"``, ``"expanded"``,
        ``"whitened"``, ``"pooled"``, ``"generic"``. All give the same fit up to
        rounding. Where the named engine cannot run a chunk (another covariance
        structure or array namespace, numba absent or ``GAUSSMIX_NUMBA=0``) or
        declines it (it would lose too many digits), the automatic choice among
        the engines after it runs instead. Not in scikit-learn.

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
    degenerate_components_ : ndarray of bool, shape (K,)
        Components whose covariance the data do not determine (held up by
        ``reg_covar`` alone; :mod:`gaussmix.degeneracy` states the rule).
        ``fit`` warns with :class:`~gaussmix.degeneracy.DegenerateFitWarning`
        when any is; :func:`gaussmix.select` never chooses such a fit while a
        sound one exists. Not in scikit-learn.
    degenerate_ : bool
        Whether any component is degenerate.
    float64_iterations_ : int
        Iterations of the kept run done in float64: float32 EM whose
        log-likelihood fell by more than float32's rounding (EM never lowers
        it in exact arithmetic) finishes in float64 from the last parameters
        before the fall, and the fitted attributes are cast back to float32.
        0 for float64 data and float32 fits that kept their precision.
        Not in scikit-learn.
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
        learning_decay: float = 0.7,
        device: Any = None,
        missing: str = "error",
        equal_weights: bool = False,
        fixed: Any = None,
        engine: str = "auto",
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
        self.learning_decay = learning_decay
        self.device = device
        self.missing = missing
        self.equal_weights = equal_weights
        self.fixed = fixed
        self.engine = engine

    # ------------------------------------------------------------------ checks
    #: What ``_validate_params`` accepts, with scikit-learn's constraints for the
    #: parameters the two estimators share (so the same values fail the same way,
    #: as ``InvalidParameterError``); NaN fails every interval.
    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        # registry names, aliases and structures registered later: get_covariance_model checks them
        "covariance_type": "no_validation",
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        # names and initialiser callables (select passes a tree): get_initializer checks them
        "init_params": "no_validation",
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "callback": [callable, None],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "learning_decay": [Interval(Real, 0.5, 1, closed="right")],
        # None, a name or a torch.device (torch is optional): _device.resolve_device checks it
        "device": "no_validation",
        "missing": [StrOptions(set(incomplete.MISSING_OPTIONS))],
        "equal_weights": ["boolean"],
        # names or per-component masks; their lengths are checked against K in _constraints
        "fixed": [constraining.FixedParameters(), None],
        "engine": [StrOptions({"auto", *estep.available_engines()})],
    }

    def _check_hyperparameters(self) -> CovarianceModel:
        """Validate the constructor parameters; return the covariance structure.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            (a ValueError and TypeError) For a value of the wrong type or out of range.
        ValueError
            For an unknown ``covariance_type``, ``init_params`` or ``device``.
        """
        self._validate_params()
        _device.resolve_device(self.device)
        get_initializer(self.init_params)
        covariance = get_covariance_model(self.covariance_type)
        self._constraints(covariance)
        return covariance

    def _constraints(self, covariance: CovarianceModel) -> Optional[constraining.Constraints]:
        """``equal_weights`` and ``fixed`` as masks over the K components (None: no constraint).

        Raises
        ------
        ValueError
            For a mask of the wrong length, per-component covariance masks on a
            shared-covariance structure, or equal weights with given or frozen weights.
        """
        return constraining.resolve(
            self.fixed, bool(self.equal_weights), covariance, int(self.n_components), weights_init=self.weights_init
        )

    def _start_constraints(self, covariance: CovarianceModel) -> Optional[constraining.Constraints]:
        """What the M-step that makes a start keeps: equal weights only (frozen parts *are* the start)."""
        constraints = self._constraints(covariance)
        return None if constraints is None else constraints.at_start()

    def _validate_X(self, X: Any, *, reset: bool, missing: Optional[str] = None) -> Any:
        """Checked rows, in the namespace and on the device EM / inference will run on.

        ``missing``: None refuses NaN; ``"error"`` too, with a message naming the
        ``missing`` option; ``"marginalize"`` lets NumPy rows with NaN through
        (checked by :func:`gaussmix.missing.check_incomplete_rows`).
        """
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
        if missing == "marginalize" and incomplete.has_missing(X):
            incomplete.check_incomplete_rows(X)
            return X
        checks.check_all_finite(X, nan_hint=self._nan_hint(missing))
        return X

    @staticmethod
    def _nan_hint(missing: Optional[str]) -> Optional[str]:
        """What the NaN error adds for the ``missing`` setting in force (None: nothing)."""
        if missing == "error":
            return checks.MISSING_HINT
        if missing == "marginalize":
            return 'or pass them as a NumPy array: missing="marginalize" takes NumPy arrays in memory only'
        return None

    def _chunk_rows(self, X: Any) -> int:
        if self.chunk_size is not None:
            return int(self.chunk_size)
        budget = backend_for(get_namespace(X)).chunk_budget_bytes(X)
        return auto_chunk_rows(self.n_components, X.shape[1], X.dtype.itemsize, budget)

    def _rows_per_chunk(self, n_features: int, dtype: np.dtype) -> int:
        """Host chunk rows for out-of-core sources (NumPy dtypes only)."""
        if self.chunk_size is not None:
            return int(self.chunk_size)
        itemsize = 4 if np.dtype(dtype) == np.float32 else 8
        return auto_chunk_rows(self.n_components, n_features, itemsize)

    def _source_rows(self, X: Any) -> int:
        """Rows per chunk of an EM pass: several cache-sized blocks per thread on the host."""
        if self.chunk_size is not None:
            return int(self.chunk_size)
        if not isinstance(X, np.ndarray):  # device arrays: one memory-sized chunk at a time
            return self._chunk_rows(X)
        return auto_source_rows(X.shape[0], self.n_components, X.shape[1], X.dtype.itemsize, n_worker_threads())

    # --------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "GaussianMixture":
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or out-of-core data
            Besides arrays: a ``numpy.memmap``, the path of a ``.npy`` file
            (read through memory maps, one chunk at a time), an h5py dataset,
            a Zarr array, or a chunk source (see :mod:`gaussmix.sources`).
            Those are streamed chunk by chunk on every EM iteration and never
            loaded whole; the initialiser runs on a weighted reservoir sample
            of at most 32768 rows (see :mod:`gaussmix.streaming`).
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights: a row of weight 2 counts as two rows.
            Only their ratios matter: multiplying every weight by a constant
            changes nothing. A chunk source yields its weights with its chunks instead.

        Returns
        -------
        self
        """
        covariance = self._check_hyperparameters()
        self._online = None
        with estep.config_context(engine=self.engine):
            if is_out_of_core(X):
                self._fit_streamed(self._open_stream(X, sample_weight), covariance)
            else:
                self._fit_in_memory(X, sample_weight, covariance)
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit the model and return the label of each row, shape (n_samples,)."""
        return self.fit(X, y, sample_weight=sample_weight).predict(X)

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "GaussianMixture":
        """One step of stepwise (online) EM on a batch of rows.

        The running statistics ``s`` are the average of the batches' E-step
        statistics, each batch normalised to unit total weight, updated as
        ``s <- (1 - eta_t) s + eta_t s_hat(batch)`` with
        ``eta_t = (t + 2) ** -learning_decay`` (Cappé & Moulines 2009); the
        parameters are then one M-step away from ``s``. Every batch counts as one
        step whatever its size or total weight, so keep batch sizes similar.

        - **First batch** (or the first after ``fit``): it initialises the model
          as ``fit`` would (``init_params`` or the ``*_init`` arrays; needs at
          least ``n_components`` rows), or, when the model was already fitted,
          starts from the fitted parameters. Its statistics under those
          parameters become ``s`` (t = 0). Its weighted mean becomes the origin
          of the centred frame the statistics live in, fixed for the whole
          stream: float32 data that later drift far from it lose digits. A
          later batch with rows beyond the components by more than
          ``1/sqrt(eps)`` of a feature's largest standard deviation raises
          ``ValueError`` and leaves the model as it was: the component taking
          them would lose everything it held to rounding.
        - **Later batches** may have any number of rows, fewer than
          ``n_components`` included (components a batch does not reach keep
          their old statistics, scaled by ``1 - eta_t``), in the first batch's
          number of features and precision.

        ``fit`` discards the online state. ``lower_bound_`` is the mean
        log-likelihood of the last batch under the parameters before its step;
        ``n_iter_`` counts the batches; ``converged_`` stays False.

        Parameters
        ----------
        X : array-like of shape (n_batch, n_features)
        y : ignored
        sample_weight : array-like of shape (n_batch,), default=None

        Returns
        -------
        self
        """
        covariance = self._check_hyperparameters()
        state = getattr(self, "_online", None)
        with estep.config_context(engine=self.engine):
            if state is None:
                state = self._start_online(X, sample_weight, covariance)
            else:
                X = np.asarray(self._validate_X(X, reset=False), dtype=state.origin.dtype)
                weights = checks.check_sample_weight(sample_weight, X.shape[0], X, unit_mean=True)
                check_batch_reach(X, state.params, state.origin)
                with one_thread_for_small_fit(X, self.n_components):
                    state = self._online_step(state, X, weights, covariance)
        self._online = state
        self._set_fitted(FitResult(state.params, self.lower_bound_, state.n_batches, False, [self.lower_bound_]), state.origin)
        return self

    def _online_step(self, state: OnlineState, X: np.ndarray, weights: Any, covariance: CovarianceModel) -> OnlineState:
        """One stepwise-EM update of ``state`` with the validated batch ``X`` of shape (n_batch, D)."""
        batch_stats, loglik = accumulate_source(ArraySource(X, weights, self._chunk_rows(X), state.origin), state.params)
        eta = step_size(state.n_batches - 1, float(self.learning_decay))
        stats = stepwise_update(state.stats, batch_stats, eta)
        params = m_step(
            stats, covariance, float(self.reg_covar), previous=state.params, origin=state.origin,
            constraints=self._constraints(covariance),
        )
        self.lower_bound_ = loglik / batch_stats.total_weight
        return OnlineState(stats, params, state.origin, state.n_batches + 1)

    def _start_online(self, X: Any, sample_weight: Any, covariance: CovarianceModel) -> OnlineState:
        fitted = hasattr(self, "means_")
        X = self._validate_X(X, reset=not fitted)
        with one_thread_for_small_fit(X, self.n_components):
            return self._start_online_from(X, sample_weight, covariance, fitted)

    def _start_online_from(self, X: Any, sample_weight: Any, covariance: CovarianceModel, fitted: bool) -> OnlineState:
        weights = checks.check_sample_weight(sample_weight, X.shape[0], X, unit_mean=True)
        origin = np.average(X, axis=0, weights=weights).astype(X.dtype)
        source = ArraySource(X, weights, self._chunk_rows(X), origin)
        if fitted:
            start = self._fitted_params(X.dtype).translated(-origin)
        else:
            self._check_row_counts(X.shape[0], None if weights is None else np.count_nonzero(weights))
            user_init = self._check_init_arrays(covariance, X.shape[1], X.dtype)
            random_state = check_random_state(self.random_state)
            start = self._initial_params(X, weights, covariance, user_init, random_state, source.chunk_rows, origin)
        stats, loglik = accumulate_source(source, start)
        self.lower_bound_ = loglik / stats.total_weight
        stats = per_unit_weight(stats)
        params = m_step(
            stats, covariance, float(self.reg_covar), previous=start, origin=origin,
            constraints=self._constraints(covariance),
        )
        return OnlineState(stats, params, origin, 1)

    def _fit_in_memory(self, X: Any, sample_weight: Any, covariance: CovarianceModel) -> None:
        X = self._validate_X(X, reset=True, missing=self.missing)
        # Small data: threads' wake-ups cost more than the arithmetic (see gaussmix._threads).
        with backend_for(get_namespace(X)).computation_context(), one_thread_for_small_fit(X, self.n_components):
            self._fit_arrays(X, covariance, sample_weight)

    def _fit_arrays(self, X: Any, covariance: CovarianceModel, sample_weight: Any) -> None:
        """EM on validated rows, in their namespace and on their device."""
        xp = get_namespace(X)
        n_samples, n_features = X.shape
        # Scaled to mean one: a constant factor on every weight changes nothing.
        weights = checks.check_sample_weight(sample_weight, n_samples, X, unit_mean=True)
        self._check_row_counts(n_samples, None if weights is None else int(xp.count_nonzero(weights)))
        user_init = self._check_init_arrays(covariance, n_features, to_numpy(X[:0]).dtype)
        init_rows = X
        if self.missing == "marginalize" and incomplete.has_missing(X):
            # Missing entries integrated out (gaussmix.missing); the frame is centred on the
            # observed column means, which also fill the gaps for the initialisers only.
            origin = incomplete.column_means(X, weights)
            init_rows = incomplete.filled_with(X, origin)
            source = incomplete.IncompleteArraySource(X, weights, self._source_rows(X), origin)
        else:
            # EM runs on X - origin: translation-invariant maths, but float32 keeps its digits
            # (where the origin is summed in float64: see mean_row).
            if is_numpy(X, weights):
                origin = mean_row(X, weights)
            else:
                origin = xp.mean(X, axis=0) if weights is None else (weights @ X) / xp.sum(weights)
            # EM hands whole chunks to worker threads; the start works in cache-sized ones.
            source = ArraySource(X, weights, self._source_rows(X), origin)

        def start(random_state: np.random.RandomState) -> MixtureParams:
            return self._initial_params(
                init_rows, weights, covariance, user_init, random_state, self._chunk_rows(X), origin
            )

        def float64_twin() -> tuple[Any, np.ndarray]:
            # The same kind of source (complete or incomplete rows) over a float64 copy.
            X64, origin64 = X.astype(np.float64), origin.astype(np.float64)
            weights64 = None if weights is None else weights.astype(np.float64)
            return type(source)(X64, weights64, self._source_rows(X64), origin64), origin64

        # float32 EM whose likelihood falls beyond rounding finishes in float64 (a copy made then).
        float32 = isinstance(X, np.ndarray) and X.dtype == np.float32
        self._fit_from_start(source, origin, covariance, start, check_random_state(self.random_state),
                             float64_twin if float32 else None)

    def _open_stream(self, X: Any, sample_weight: Any) -> StreamSource:
        """Out-of-core ``X`` as a stream of converted, shape-checked chunks."""
        source = open_chunk_source(X, sample_weight, self._rows_per_chunk)
        return StreamSource(source, source_dtype(source), int(source.n_features))

    def _fit_streamed(self, stream: Any, covariance: CovarianceModel) -> None:
        """Fit on a stream: one validating pass, one start pass, then one pass per iteration.

        ``stream`` has ``dtype``, ``n_features``, ``n_samples`` (or None),
        ``centred(origin, n_rows)`` and either ``chunks()`` or ``map_reduce``.
        """
        dtype, n_features = stream.dtype, stream.n_features
        user_init = self._check_init_arrays(covariance, n_features, dtype)
        random_state = check_random_state(self.random_state)
        needs_sample = not self._warm() and "means" not in user_init
        summary = summarise(stream, seed=random_state.randint(2**31 - 1) if needs_sample else None)
        declared = stream.n_samples
        if declared is not None and declared != summary.n_rows:
            raise ValueError(f"the data source says n_samples = {declared} but yielded {summary.n_rows} rows")
        if summary.n_rows < 2:
            raise ValueError(f"the data source yielded {summary.n_rows} row(s); a fit needs at least 2")
        self._check_row_counts(summary.n_rows, summary.n_positive)
        if summary.total_weight <= 0:
            raise ValueError("sample_weight sums to zero: at least one row needs a positive weight")
        self.n_features_in_ = n_features
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        origin = summary.mean.astype(dtype)
        # Weights of mean one, as in memory: a constant factor on every weight changes nothing.
        centred = stream.centred(origin, summary.n_rows, summary.n_rows / summary.total_weight)
        K, full_scatter = self.n_components, covariance.full_scatter

        def start(random_state: np.random.RandomState) -> MixtureParams:
            if "means" in user_init:
                stats = nearest_centre_start(centred, user_init["means"] - origin, K, full_scatter, summary.n_rows)
            else:
                initializer = get_initializer(self.init_params)
                stats = sampled_start(centred, summary, origin, initializer, K, full_scatter, random_state)
            params = m_step(stats, covariance, float(self.reg_covar), origin=origin,
                        constraints=self._start_constraints(covariance))
            return self._with_user_init(params, user_init, covariance, origin)

        self._fit_from_start(centred, origin, covariance, start, random_state)

    def _check_row_counts(self, n_samples: int, n_positive: Optional[int]) -> None:
        if n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}: use fewer components or more data"
            )
        if n_positive is not None and n_positive < self.n_components:
            raise ValueError(
                f"only {n_positive} row(s) have a positive sample_weight, fewer "
                f"than n_components = {self.n_components}"
            )

    def _warm(self) -> bool:
        return bool(self.warm_start and hasattr(self, "converged_"))

    def _fit_from_start(
        self,
        source: Any,
        origin: np.ndarray,
        covariance: CovarianceModel,
        start: Callable[[np.random.RandomState], MixtureParams],
        random_state: np.random.RandomState,
        float64_twin: Optional[Callable[[], tuple[Any, Any]]] = None,
    ) -> None:
        """Run EM from ``n_init`` starts (or the fitted state, when warm) and keep the best.

        ``source`` yields rows in the frame centred on ``origin``; ``start``
        returns starting parameters in that frame. ``float64_twin``, for float32
        data, gives the same rows in float64 (a source and its origin): a run
        whose likelihood falls by more than float32's rounding continues there.
        """
        config = EMConfig(
            covariance, float(self.reg_covar), float(self.tol), int(self.max_iter), origin,
            stop_on_decrease=float64_twin is not None, constraints=self._constraints(covariance),
        )
        twin: list = []  # made once, on the first fall
        do_init = not self._warm()
        n_init = self.n_init if do_init else 1
        best: Optional[FitResult] = None
        traces: list[list[float]] = []
        for init_index in range(n_init):
            self._say(1, f"Initialization {init_index}")
            if do_init:
                params = start(random_state)
                previous = -math.inf
            else:
                params = self._fitted_params(like=origin).translated(-origin)
                previous = self.lower_bound_
            if self.max_iter == 0:
                result = FitResult(params, -math.inf, 0, False, [])
            else:
                began = time.perf_counter()
                callback = self._iteration_callback(began, init_index, n_init)
                result = run_em(source, params, config, previous_lower_bound=previous, callback=callback)
                if result.precision_lost:
                    twin = twin or [float64_twin()]
                    result = _finish_in_float64(result, config, *twin[0], callback)
                state = "converged" if result.converged else "did not converge"
                self._say(1, f"Initialization {state}. time lapse {time.perf_counter() - began:.5f}s\t lower bound {result.lower_bound:.5f}")
            traces.append(list(result.lower_bounds))
            if best is None or result.lower_bound > best.lower_bound:
                best = result
                float64_iterations = result.n_iter - result.float32_iterations if result.precision_lost else 0
        assert best is not None
        if not best.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self._set_fitted(best, origin)
        self.lower_bounds_per_init_ = traces
        self.float64_iterations_ = float64_iterations
        if self.degenerate_:
            warnings.warn(describe_degenerate(self.degenerate_components_), DegenerateFitWarning)

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
        params = m_step(stats, covariance, float(self.reg_covar), origin=origin,
                        constraints=self._start_constraints(covariance))
        return self._with_user_init(params, user_init, covariance, origin)

    @staticmethod
    def _with_user_init(params: MixtureParams, user_init: dict, covariance: CovarianceModel, origin: np.ndarray) -> MixtureParams:
        """``params`` with the user's weights, means and precisions put in (frame centred on ``origin``)."""
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
        self._set_parameters(result.params.translated(origin))
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.lower_bounds_ = list(result.lower_bounds)

    def _set_parameters(self, params: MixtureParams) -> None:
        """The parameter attributes from ``params`` (user's coordinates), judged by the degenerate-fit rule."""
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = params.covariance.precisions(params.precisions_cholesky)
        self.degenerate_components_ = degenerate_components(params, float(self.reg_covar))
        self.degenerate_ = bool(np.any(self.degenerate_components_))

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
        if is_out_of_core(X):
            stream, params = self._open_for_inference(X)
            return np.concatenate([function(chunk, params) for chunk, _ in _finite_chunks(stream)], axis=0)
        X = self._validate_X(X, reset=False, missing=self.missing)
        xp = get_namespace(X)
        params = self._fitted_params(like=X)
        rows = self._chunk_rows(X)
        with backend_for(xp).computation_context():
            pieces = [function(X[start:start + rows], params) for start in range(0, X.shape[0], rows)]
        return xp.concat(pieces, axis=0)

    def _open_for_inference(self, X: Any) -> tuple[StreamSource, MixtureParams]:
        """Out-of-core ``X`` as a checked stream, and the fitted parameters in its precision."""
        stream = self._open_stream(X, None)
        if stream.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {stream.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return stream, self._fitted_params(stream.dtype)

    def _log_likelihood(self, X: Any) -> tuple[float, float]:
        """``(sum_n w_n log p(x_n), sum_n w_n)``; unit weights except a chunk source's own."""
        if not is_out_of_core(X):
            n = int(X.shape[0]) if hasattr(X, "shape") else len(X)
            return self.score(X) * n, float(n)
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        stream, params = self._open_for_inference(X)
        totals, weights = [], []
        for chunk, chunk_weights in _finite_chunks(stream):
            log_density = responsibilities(chunk, params)[1].astype(np.float64)
            if chunk_weights is None:
                totals.append(float(np.sum(log_density)))
                weights.append(float(chunk.shape[0]))
            else:
                totals.append(float(chunk_weights.astype(np.float64) @ log_density))
                weights.append(float(np.sum(chunk_weights, dtype=np.float64)))
        return math.fsum(totals), math.fsum(weights)

    def _posterior(self, chunk: Any, params: MixtureParams) -> tuple[Any, Any]:
        """Responsibilities and log-densities of a chunk; rows with NaN on their observed
        features where ``missing="marginalize"``."""
        if self.missing == "marginalize" and incomplete.has_missing(chunk):
            return incomplete.posterior_incomplete(chunk, params)
        return responsibilities(chunk, params)

    def score_samples(self, X: Any) -> Any:
        """Log-density ``log p(x)`` of each row, shape (n_samples,).

        With ``missing="marginalize"``, ``log p(x_o)`` of each row's observed entries.
        """
        return self._per_chunk(X, lambda chunk, params: self._posterior(chunk, params)[1])

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-density of the rows of ``X`` (weighted by a chunk source's weights)."""
        if is_out_of_core(X):
            total, weight = self._log_likelihood(X)
            return total / weight
        log_density = self.score_samples(X)
        return float(get_namespace(log_density).mean(log_density))

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities ``p(z = k | x)`` (``p(z = k | x_o)`` of rows with missing entries), shape (n_samples, K)."""
        return self._per_chunk(X, lambda chunk, params: self._posterior(chunk, params)[0])

    def predict(self, X: Any) -> Any:
        """Most probable component of each row (given its observed entries), shape (n_samples,)."""
        def most_probable(chunk: Any, params: MixtureParams) -> Any:
            if self.missing == "marginalize" and incomplete.has_missing(chunk):
                return np.argmax(incomplete.log_weighted_incomplete(chunk, params), axis=1)
            return get_namespace(chunk).argmax(params.log_weighted_prob(chunk), axis=1)

        return self._per_chunk(X, most_probable)

    def impute(self, X: Any, n_draws: Optional[int] = None, random_state: Any = None) -> np.ndarray:
        """Fill the missing (NaN) entries of ``X`` from the fitted mixture.

        Works whatever the ``missing`` setting the model was fitted with. Not
        in scikit-learn.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing entry; no row may be entirely missing.
        n_draws : int, optional
            None: each gap gets ``E[x_m | x_o]`` under the mixture, the
            responsibility-weighted conditional means of the components (one
            imputation; it may lie between modes). An int: multiple
            imputation, that many draws from ``p(x_m | x_o)`` per row (a
            component drawn from the row's responsibilities, then a draw from
            that component's conditional Gaussian).
        random_state : int, RandomState instance or None
            Seeds the draws.

        Returns
        -------
        ndarray of shape (n_samples, n_features), or (n_draws, n_samples, n_features)
            Observed entries unchanged.

        Raises
        ------
        ValueError
            For infinite entries, rows with every entry missing, or input
            that is not a NumPy array (torch tensors are not supported).
        """
        if n_draws is not None:
            checks.check_param("n_draws", n_draws, numbers.Integral, 1)
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        if _device.is_device_array(X) or is_out_of_core(X):
            raise ValueError("impute takes a NumPy array (or array-like) in memory; convert X first")
        X = self._validate_X(X, reset=False, missing="marginalize")
        return incomplete.impute(X, self._fitted_params(X.dtype), None if n_draws is None else int(n_draws),
                                 random_state)

    def uncertainty(self, X: Any) -> Any:
        """How unsure the most probable component of each row is: ``1 - max_k p(z = k | x)``.

        mclust's ``uncertainty``: 0 for a row its component claims outright,
        at most ``1 - 1/K`` for one every component claims equally. Not in
        scikit-learn.

        Parameters
        ----------
        X : array-like of shape (n_samples, D), tensor or out-of-core source
            The same inputs as :meth:`predict_proba`.

        Returns
        -------
        array of shape (n_samples,)
            In X's namespace and on its device (NumPy for an out-of-core source).
        """
        def one_minus_largest(chunk: Any, params: MixtureParams) -> Any:
            return 1 - get_namespace(chunk).max(self._posterior(chunk, params)[0], axis=1)

        return self._per_chunk(X, one_minus_largest)

    def _univariate(self, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights, means and standard deviations (each shape (K,), float64 on the host) of a 1-D mixture.

        Raises
        ------
        ValueError
            If the model has more than one feature.
        """
        params = self._fitted_params(np.float64)
        if params.n_features != 1:
            raise ValueError(
                f"{method} needs a mixture of one feature, but this model has {params.n_features} features: "
                "fit a GaussianMixture on the one column you want the distribution of (a marginal of a "
                "multi-feature model is not available yet)"
            )
        # every structure is a variance per component in 1-D; the dense stack spells it out
        variances = params.dense_covariances()[:, 0, 0]
        return params.weights, params.means[:, 0], np.sqrt(variances)

    def cdf(self, x: Any) -> Any:
        """Distribution function ``F(x) = sum_k pi_k Phi((x - mu_k) / sigma_k)`` of a 1-D mixture.

        mclust's ``cdfMclust``, at the values given (mclust sorts them; this
        keeps their order and shape). Not in scikit-learn.

        Parameters
        ----------
        x : float or array-like of any shape
            Values of the one feature; ``-inf`` and ``inf`` give 0 and 1.

        Returns
        -------
        float or ndarray of float64 of the shape of ``x``
            A float for a scalar ``x``.

        Raises
        ------
        ValueError
            If the model has more than one feature, or ``x`` holds NaN or
            something other than numbers.
        """
        from ._univariate import as_float_values, mixture_cdf

        weights, means, sds = self._univariate("cdf")
        values = as_float_values(x, "x")
        if np.any(np.isnan(values)):
            raise ValueError(f"x holds {int(np.sum(np.isnan(values)))} NaN value(s): drop or fill them first")
        result = mixture_cdf(values, weights, means, sds)
        return float(result) if result.ndim == 0 else result

    def quantile(self, p: Any) -> Any:
        """Quantiles of a 1-D mixture: the ``x`` with ``cdf(x) = p``, for every ``p``.

        mclust's ``quantileMclust``: ``-inf`` at ``p = 0`` and ``inf`` at
        ``p = 1`` (where ``quantileMclust`` stops with an error for more than
        one component). Solved for all ``p`` at once by bisection between the
        smallest and largest component quantiles to ``1e-12 * max(1, |x|)``,
        then a Newton step, so the result is about as exact as ``cdf``
        allows; ``quantileMclust`` stops ``uniroot`` at about 1.5e-8. Not in
        scikit-learn.

        Parameters
        ----------
        p : float or array-like of any shape
            Probabilities in [0, 1].

        Returns
        -------
        float or ndarray of float64 of the shape of ``p``
            A float for a scalar ``p``.

        Raises
        ------
        ValueError
            If the model has more than one feature, or a ``p`` is NaN or
            outside [0, 1].
        """
        from ._univariate import as_float_values, mixture_quantile

        weights, means, sds = self._univariate("quantile")
        values = as_float_values(p, "p")
        bad = ~((values >= 0) & (values <= 1))  # NaN included
        if np.any(bad):
            raise ValueError(
                f"p must be probabilities in [0, 1]; {int(np.sum(bad))} value(s) are not "
                f"(first: {float(values[bad].flat[0])!r}): for percentages, divide by 100"
            )
        result = mixture_quantile(values, weights, means, sds)
        return float(result) if result.ndim == 0 else result

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

    # --------------------------------------------------- marginals, conditionals
    def marginal(self, features: Any) -> "GaussianMixture":
        """The fitted mixture's marginal over some features, as a fitted ``GaussianMixture``.

        Parameters
        ----------
        features : int, str or sequence of int / str
            The d features to keep, by index or (for models fitted on a
            DataFrame) by name, in the order wanted.

        Returns
        -------
        GaussianMixture
            Fitted, K components over d features (``means_`` of shape (K, d)),
            same weights; its feature names are the kept ones. Its covariance
            type is the structure the marginal satisfies: the same one except
            EVI (-> diag) and EVE, VVE, EEV, VEV, EVV (-> full); see
            :mod:`gaussmix.conditioning`. ``predict``, ``score_samples``,
            ``sample`` and :func:`gaussmix.save` work on it; ``lower_bound_``
            is ``-inf`` (it was fitted to no data of its own).

        Raises
        ------
        ValueError
            For an unknown name, an index out of range, a repeated feature.
        """
        from ._derived import marginal_mixture

        return marginal_mixture(self, features)

    def condition(self, features: Any, values: Any = None) -> Any:
        """The mixture over the other features given the values of ``features``.

        ``p(x_F | x_G = g) = sum_k w_k(g) N(x_F | mu_kF + B_k (g - mu_kG), S_k)``
        with ``w_k(g)`` proportional to ``pi_k N(g | mu_kG, Sigma_kGG)``: the
        components are re-weighted by how well each explains the given values.

        Parameters
        ----------
        features : int, str, sequence of int / str, or mapping
            The G given features, by index or name. A mapping
            ``{feature: value}`` carries the values too (then omit ``values``).
        values : array-like of shape (G,) or (n, G)
            The given values, one column per given feature in the order of
            ``features`` (a scalar for one feature). With n rows, the n
            conditionals are computed together (a few matrix products, no loop
            over the rows).

        Returns
        -------
        GaussianMixture
            For values of shape (G,): a fitted mixture with K components over
            the D - G other features (in their original order, names kept).
            Its covariance type: the same structure except EVI (-> diag) and
            EVE, VVE, EEV, VEV, EVV (-> full) (see :mod:`gaussmix.conditioning`);
            for diag/spherical structures the given features simply drop out.
        ConditionalMixtures
            For values of shape (n, G): weights (n, K), means (n, K, D - G)
            and the shared covariances as arrays, with ``mean()`` (n, D - G),
            ``std()``, ``covariance_matrix()`` (n, D - G, D - G), ``sample``,
            ``log_prob`` and ``params(i)``. For a fitted mixture of case i, call
            ``condition(features, values[i])``.

        Raises
        ------
        ValueError
            For an unknown name, an index out of range, a repeated feature,
            values of the wrong shape or not finite, or all features given.
        """
        from ._derived import conditional_mixture

        return conditional_mixture(self, features, values)

    # ------------------------------------------------------------- criteria
    def _n_parameters(self) -> int:
        """Free parameters of the fitted mixture: equal or frozen ones (``equal_weights``, ``fixed``) not counted."""
        params = self._fitted_params()
        return params.n_parameters(self._constraints(params.covariance))

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on ``X`` (lower is better)."""
        loglik, n = self._log_likelihood(X)
        return -2 * loglik + self._n_parameters() * math.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion on ``X`` (lower is better)."""
        loglik, _ = self._log_likelihood(X)
        return -2 * loglik + 2 * self._n_parameters()

    def icl(self, X: Any) -> float:
        """Integrated completed likelihood on ``X``, as mclust's ``icl`` (lower is better).

        ``BIC - 2 * sum_n log z_n,map(n)``: the BIC penalised by how far each
        row's most probable component is from certain (Biernacki, Celeux &
        Govaert 2000, with the hard classification mclust uses). mclust reports
        the same value with the opposite sign. :meth:`icl_entropy` is the
        soft variant.
        """
        resp = self.predict_proba(X)
        xp = get_namespace(resp)
        return self.bic(X) - 2 * float(xp.sum(xp.log(xp.max(resp, axis=1))))

    def icl_entropy(self, X: Any) -> float:
        """The soft ICL on ``X``: ``BIC + 2 * sum_n sum_k -z_nk log z_nk`` (lower is better).

        Penalised by the entropy of the responsibilities ``z`` rather than by
        the hard classification of :meth:`icl`; never below :meth:`icl`'s
        ``BIC`` and never above it by more than ``2 n log K``.
        """
        resp = self.predict_proba(X)
        xp = get_namespace(resp)
        # -z log z with 0 log 0 = 0 (log of 1 where z is 0), computed where the responsibilities live
        entropy = -float(xp.sum(resp * xp.log(xp.where(resp > 0, resp, xp.ones_like(resp)))))
        return self.bic(X) + 2 * entropy


    # ------------------------------------------------------------- showing
    def report(self, X: Any, path: Any) -> Any:
        """Write a self-contained HTML report of this fitted model and the rows ``X`` to ``path``.

        ``X`` (array of shape (n, D), or None) is drawn coloured by component and
        gives each component's size and mean uncertainty. See :mod:`gaussmix.report`;
        needs matplotlib. Returns the path written (a ``pathlib.Path``).
        """
        from .report import write_report

        return write_report(path, self, X)

    def _is_fitted(self) -> bool:
        return all(hasattr(self, name) for name in ("weights_", "means_", "precisions_cholesky_", "n_iter_"))

    @property
    def _repr_html_(self) -> Any:
        # Fitted: the parameters. Unfitted: scikit-learn's estimator diagram (which may be turned off).
        if not self._is_fitted():
            return super()._repr_html_
        from .report import model_summary_html

        return lambda: model_summary_html(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        if not self._is_fitted():
            return super()._repr_mimebundle_(**kwargs)
        from .report import model_summary_html

        return {"text/plain": repr(self), "text/html": model_summary_html(self)}

def _finish_in_float64(result: FitResult, config: EMConfig, source64: Any, origin64: Any,
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


def _finite_chunks(stream: StreamSource):
    """The finite chunks of ``stream``; after the last, an error naming every NaN/inf row, if any.

    The whole source is read before the error (as the in-memory check lists
    every bad row); chunks holding bad rows are not handed out.
    """
    first_row, bad = 0, None
    for chunk, weights in stream.chunks():
        entries = checks.NonFiniteEntries.of(chunk, first_row)
        if entries is None:
            if bad is None:
                yield chunk, weights
        else:
            bad = entries if bad is None else bad.merge(entries)
        first_row += chunk.shape[0]
    if bad is not None:
        raise bad.error("X", checks.MISSING_HINT)
