"""Gaussian mixture regression: a mixture of the joint ``[x, y]``, conditioned on ``x``.

``p(y | x)`` of a Gaussian mixture over ``[x, y]`` is again a Gaussian mixture
(:mod:`gaussmix.conditioning`), whose components are local linear regressions
weighted by how well each explains ``x`` (Ghahramani & Jordan 1994; Calinon's
GMR). It can be multimodal: ``predict`` gives its mean, which for two branches
(``y = +-sqrt(x)``) lies between them where no data are; ``sample_y`` draws
from the whole conditional and shows both.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._derived import feature_names, resolve_features
from .conditioning import ConditionalMixtures, Conditioner
from .estimator import GaussianMixture
from .noise import refuse as refuse_noise

#: the GaussianMixture settings a regressor passes on (its own constructor's parameters)
MIXTURE_PARAMS = (
    "n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init", "init_params",
    "weights_init", "means_init", "precisions_init", "random_state", "warm_start", "verbose",
    "verbose_interval", "callback", "chunk_size",
)


class GaussianMixtureRegressor(RegressorMixin, BaseEstimator):
    """Regression by a Gaussian mixture fitted to ``[X, y]`` and conditioned on ``X``.

    ``fit`` fits a :class:`~gaussmix.GaussianMixture` with these settings to the
    rows ``[x, y]``; ``predict`` returns ``E[y | x]``, ``predict(X,
    return_std=True)`` also the conditional standard deviation,
    :meth:`predict_cov` the conditional covariance and :meth:`sample_y` draws
    from ``p(y | x)``. Every method is vectorised over rows.

    With one component and ``"full"`` covariances this is ordinary least
    squares with a Gaussian noise model; more components give a piecewise,
    smoothly blended, heteroscedastic and possibly multimodal regression.

    Parameters
    ----------
    n_components, covariance_type, tol, reg_covar, max_iter, n_init, init_params, weights_init, \
means_init, precisions_init, random_state, warm_start, verbose, verbose_interval, callback, chunk_size
        As for :class:`~gaussmix.GaussianMixture` (the joint mixture over the
        ``D + T`` columns ``[X, y]``; the ``*_init`` arrays have D + T features).
        Any of the 18 covariance structures serves; with diagonal or spherical
        ones, x and y are independent within a component, so the prediction
        only blends the components' y-means by their responsibility for x.

    Attributes
    ----------
    mixture_ : GaussianMixture
        The fitted joint mixture over ``[X, y]``.
    input_features_ : list of int
        The mixture's features that are the inputs (``0..D-1`` after ``fit``).
    target_features_ : list of int
        The mixture's features that are the targets, in the order of ``y``'s columns.
    n_features_in_ : int
        D.
    feature_names_in_ : ndarray of str
        When X had string column names.
    n_targets_ : int
        T.
    n_iter_ : int
        EM iterations of the joint mixture's best initialisation.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixtureRegressor
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 4, size=(500, 1))
    >>> y = np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=500)
    >>> reg = GaussianMixtureRegressor(n_components=8, random_state=0).fit(x, y)
    >>> mean, std = reg.predict(x[:3], return_std=True)
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
        callback: Any = None,
        chunk_size: Optional[int] = None,
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

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    # ------------------------------------------------------------ building
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "GaussianMixtureRegressor":
        """Fit the joint mixture to the rows ``[x, y]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, D)
        y : array-like of shape (n_samples,) or (n_samples, T)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        weights = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=np.float64)
        self._single_output = y.ndim == 1
        targets = y.reshape(-1, 1) if y.ndim == 1 else y
        mixture = self.mixture_ if self.warm_start and hasattr(self, "mixture_") else GaussianMixture()
        mixture.set_params(**{name: getattr(self, name) for name in MIXTURE_PARAMS})
        self.mixture_ = mixture.fit(np.hstack([X, targets]), sample_weight=weights)
        self.input_features_ = list(range(X.shape[1]))
        self.target_features_ = list(range(X.shape[1], X.shape[1] + targets.shape[1]))
        self.n_targets_ = targets.shape[1]
        self.n_iter_ = self.mixture_.n_iter_
        return self

    @classmethod
    def from_mixture(cls, mixture: GaussianMixture, targets: Any, inputs: Any = None) -> "GaussianMixtureRegressor":
        """A fitted regressor from an already fitted mixture and a choice of its features.

        Parameters
        ----------
        mixture : GaussianMixture
            Fitted (kept as ``mixture_``, not copied).
        targets : int, str or sequence of int / str
            The output features, by index or name. A single index or name gives
            1-D predictions, a list (even of one) 2-D ones.
        inputs : int, str or sequence of int / str, optional
            The input features, in the order ``predict``'s X has them; default:
            every feature that is not a target, in the mixture's order. Features
            in neither are marginalised out.

        Returns
        -------
        GaussianMixtureRegressor
            Fitted, with the mixture's settings; ``fit`` would refit a joint
            mixture on ``[X, y]`` with them.
        """
        check_is_fitted(mixture, ["weights_", "means_", "precisions_cholesky_"])
        refuse_noise(mixture._fitted_params(), "GaussianMixtureRegressor.from_mixture")
        names = feature_names(mixture)
        n_features = int(mixture.means_.shape[1])
        target_dims = resolve_features(targets, n_features, names, "targets")
        if inputs is None:
            input_dims = [d for d in range(n_features) if d not in set(target_dims)]
            if not input_dims:
                raise ValueError(
                    f"targets {targets!r} are all {n_features} features of the mixture: no input would be left; "
                    "choose fewer targets"
                )
        else:
            input_dims = resolve_features(inputs, n_features, names, "inputs")
            both = sorted(set(input_dims) & set(target_dims))
            if both:
                raise ValueError(f"features {both} are both inputs and targets; a feature is one or the other")
        settings = mixture.get_params(deep=False)
        regressor = cls(**{name: settings[name] for name in MIXTURE_PARAMS if name in settings})
        regressor.set_params(weights_init=None, means_init=None, precisions_init=None)
        regressor.mixture_ = mixture
        regressor.input_features_ = input_dims
        regressor.target_features_ = target_dims
        regressor.n_targets_ = len(target_dims)
        regressor.n_iter_ = mixture.n_iter_
        regressor.n_features_in_ = len(input_dims)
        if names is not None:
            regressor.feature_names_in_ = np.asarray([names[d] for d in input_dims], dtype=object)
        regressor._single_output = isinstance(targets, (str, int, np.integer))
        return regressor

    # ------------------------------------------------------------ inference
    def conditional(self, X: Any) -> ConditionalMixtures:
        """``p(y | x)`` for each row of X, as arrays.

        Parameters
        ----------
        X : array-like of shape (n_samples, D)

        Returns
        -------
        ConditionalMixtures
            n cases: weights (n, K), means (n, K, T), the shared conditional
            covariances, and their moments and samplers.
        """
        check_is_fitted(self, ["mixture_"])
        X = validate_data(self, X, reset=False, dtype=np.float64)
        params = self.mixture_._fitted_params(np.float64)
        return Conditioner(params, self.input_features_, self.target_features_)(X)

    def _shaped(self, values: Any) -> Any:
        """(n, T) -> (n,) where ``y`` was 1-D."""
        return values[:, 0] if self._single_output else values

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """The conditional mean ``E[y | x]`` of each row.

        With several components ``p(y | x)`` may be multimodal, and its mean
        may then lie between the modes, where the data are not; see
        :meth:`sample_y` for draws from the whole distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, D)
        return_std : bool, default=False
            Also return ``sqrt(Var[y | x])``: the spread within the components
            plus the spread of their means (the law of total variance).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, T)
            1-D where ``y`` was 1-D.
        y_std : ndarray of the same shape
            Only with ``return_std=True``.
        """
        conditional = self.conditional(X)
        mean = self._shaped(conditional.mean())
        if not return_std:
            return mean
        return mean, self._shaped(conditional.std())

    def predict_cov(self, X: Any) -> np.ndarray:
        """The conditional covariance ``Cov[y | x]`` of each row.

        Returns
        -------
        ndarray of shape (n_samples, T, T)
            Also for 1-D ``y`` (then T = 1).
        """
        return self.conditional(X).covariance_matrix()

    def sample_y(self, X: Any, n_samples: int = 1, random_state: Any = 0) -> np.ndarray:
        """Draws from ``p(y | x)`` for each row (a component by its weight given x, then a Gaussian).

        Parameters
        ----------
        X : array-like of shape (n_samples_X, D)
        n_samples : int, default=1
            Draws per row.
        random_state : int, RandomState instance or None, default=0
            As :meth:`sklearn.gaussian_process.GaussianProcessRegressor.sample_y`.

        Returns
        -------
        ndarray of shape (n_samples_X, n_samples) where ``y`` was 1-D, else (n_samples_X, T, n_samples)
            The layout of ``GaussianProcessRegressor.sample_y``.
        """
        if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        draws = self.conditional(X).sample(int(n_samples), random_state)  # (n, s, T)
        return draws[:, :, 0] if self._single_output else np.transpose(draws, (0, 2, 1))


def regressor_from_mixture(mixture: GaussianMixture, targets: Any, inputs: Any = None) -> GaussianMixtureRegressor:
    """:meth:`GaussianMixtureRegressor.from_mixture` as a function."""
    return GaussianMixtureRegressor.from_mixture(mixture, targets, inputs)


__all__ = ["GaussianMixtureRegressor", "regressor_from_mixture"]
