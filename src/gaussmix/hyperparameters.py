"""The constructor and parameter checks of :class:`gaussmix.GaussianMixture`.

A new estimator parameter is added here (the signature, the attribute and its
constraint) and documented in the estimator's docstring.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Callable, Optional

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from .backends import device as _device
from . import constraints as constraining
from . import estep
from . import missing as incomplete
from . import priors
from . import noise_start
from .covariance import CovarianceModel, get_covariance_model
from .data.stream import open_stream
from .em import IterationEvent
from .init import get_initializer


class MixtureParameters(BaseEstimator):
    """The parameters of :class:`gaussmix.GaussianMixture` (documented there), and their checks."""

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
        screen_iter: Optional[int] = None,
        prior: Any = None,
        noise: bool = False,
        noise_init: Any = None,
        noise_volume: Optional[float] = None,
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
        self.screen_iter = screen_iter
        self.prior = prior
        self.noise = noise
        self.noise_init = noise_init
        self.noise_volume = noise_volume

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
        "screen_iter": [Interval(Integral, 1, None, closed="left"), None],
        # hyperparameters are checked by Prior itself; the structure and D at the fit
        "prior": [StrOptions({priors.DEFAULT}), priors.Prior, None],
        "noise": ["boolean"],
        # a mask or row indices, checked against the rows at fit (gaussmix.noise_start)
        "noise_init": ["array-like", None],
        "noise_volume": [Interval(Real, 0.0, None, closed="neither"), None],
    }

    #: how out-of-core data are opened for a fit: ``(X, sample_weight, rows_per_chunk) -> stream``
    _open_source = staticmethod(open_stream)

    def _check_hyperparameters(self) -> CovarianceModel:
        """Validate the constructor parameters; return the covariance structure.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            (a ValueError and TypeError) For a value of the wrong type or out of range.
        ValueError
            For an unknown ``covariance_type``, ``init_params`` or ``device``, or
            a ``prior`` for a structure that has none.
        """
        self._validate_params()
        _device.resolve_device(self.device)
        get_initializer(self.init_params)
        covariance = get_covariance_model(self.covariance_type)
        self._constraints(covariance)
        if self.prior is not None:
            priors.check_supported(covariance)
        self._noise_options(covariance)
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

    def _noise_options(self, covariance: CovarianceModel) -> Optional[noise_start.NoiseOptions]:
        """``noise``, ``noise_init`` and ``noise_volume`` checked (None: no noise component).

        Raises
        ------
        ValueError
            For a volume without a noise component, a ``noise_init`` that is
            neither a mask nor row indices, or frozen weights with noise.
        """
        constraints = self._constraints(covariance)
        fixed_weights = constraints is not None and constraints.weights is not None
        return noise_start.resolve(self.noise, self.noise_init, self.noise_volume, fixed_weights)
