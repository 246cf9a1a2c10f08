"""``GaussianMixtureOutlierDetector``: low mixture density as scikit-learn's outlier API.

A row is an outlier when its log-density under a mixture fitted to the
training rows falls below ``offset_``. With a float ``contamination`` the
offset is that quantile of the training rows' log-densities, so the share of
training rows flagged is ``contamination``; with ``"auto"`` it is fixed by
the fitted model alone (:data:`AUTO_TAIL`), and the share flagged measures
the contamination instead of presetting it.
"""

from __future__ import annotations

import numbers
from numbers import Real
from typing import Any, Optional

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _validation as checks
from .backends import to_numpy
from .estimator import GaussianMixture
from .data import is_out_of_core

#: ``contamination="auto"``: the log-density below which the fitted mixture itself puts this much mass
AUTO_TAIL = 0.01
#: rows drawn from the fitted mixture to estimate that level (fixed seed: the offset depends on the model only)
AUTO_DRAWS = 50_000
#: the GaussianMixture settings the detector passes on (its own constructor's parameters)
MIXTURE_PARAMS = (
    "covariance_type", "tol", "reg_covar", "max_iter", "n_init", "init_params", "weights_init",
    "means_init", "precisions_init", "random_state", "verbose", "verbose_interval", "chunk_size",
)


class GaussianMixtureOutlierDetector(OutlierMixin, BaseEstimator):
    """Outlier detection by the log-density of a Gaussian mixture.

    ``fit`` fits a :class:`~gaussmix.GaussianMixture` (or chooses one by BIC,
    see ``n_components``) and sets ``offset_``; ``score_samples`` is the
    log-density ``log p(x)`` (low: abnormal), ``decision_function`` is
    ``score_samples - offset_`` (negative: outlier) and ``predict`` gives -1
    for outliers and +1 for inliers, as scikit-learn's ``IsolationForest``
    and ``LocalOutlierFactor``.

    Parameters
    ----------
    n_components : int or iterable of int, default=1
        An int fits that many components. A range or list of ints (e.g.
        ``range(1, 10)``) chooses K, together with the structure when
        ``covariance_type`` names several, by BIC with :func:`gaussmix.select`
        (its defaults: hierarchical and k-means++ starts, ``tol=1e-5``,
        ``max_iter=500`` unless given here; degenerate fits never chosen).
    covariance_type : str or list of str, default="full"
        Any of the 18 structures (:class:`~gaussmix.GaussianMixture`). A list,
        or ``"all"``, chooses among them by BIC as above.
    contamination : "auto" or float in (0, 0.5], default=0.1
        A float: the share of training rows (by weight) taken as outliers;
        ``offset_`` is that quantile of their log-densities. ``"auto"``: the
        offset is the log-density below which the fitted mixture itself puts
        probability :data:`AUTO_TAIL` (0.01), estimated from
        :data:`AUTO_DRAWS` rows drawn from it with a fixed seed. As
        scikit-learn's ``"auto"`` (a fixed offset of -0.5 for IsolationForest,
        -1.5 for LocalOutlierFactor) it does not depend on the training rows'
        scores, so the share flagged is what the data show: about 1% on
        data the model describes, more where there are outliers. The
        default 0.1 is scikit-learn's ``EllipticEnvelope``'s (the
        one-Gaussian detector): scikit-learn's checks ask a default detector
        to flag some training rows, which ``"auto"`` rightly does not on data
        the mixture describes well.
    tol, reg_covar, max_iter, n_init, init_params, weights_init, means_init, precisions_init, \
random_state, verbose, verbose_interval, chunk_size
        As for :class:`~gaussmix.GaussianMixture`. With a selected K,
        ``tol``/``max_iter`` left at their defaults take :func:`gaussmix.select`'s
        and ``n_init``/``init_params`` at their defaults take its starts; the
        ``*_init`` arrays then are not allowed.

    Attributes
    ----------
    mixture_ : GaussianMixture
        The fitted (or chosen) mixture.
    selection_ : SelectionResult or None
        The BIC table when K or the structure was chosen.
    offset_ : float
        The log-density threshold: rows below it are outliers.
    n_iter_ : int
        EM iterations of the mixture's best start.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When X had string column names.

    Notes
    -----
    ``sample_weight`` are frequency weights, as everywhere in gaussmix: the
    mixture is fitted with them and ``offset_`` is the quantile of the rows
    repeated as often as their weights say (:func:`weighted_quantile`; with
    unit weights exactly ``numpy.quantile``'s default, linear interpolation).
    Weights summing to less than about ``1 / contamination`` leave too few
    "rows" for that quantile: it is then the lowest score.

    ``score_samples``, ``decision_function`` and ``predict`` also take a
    ``.npy`` path, a ``numpy.memmap`` or another chunk source, scored chunk
    by chunk as :meth:`GaussianMixture.score_samples` does; so does ``fit``
    when K and the structure are given.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussmix import GaussianMixtureOutlierDetector
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(size=(490, 2)), rng.uniform(-10, 10, size=(10, 2))])
    >>> detector = GaussianMixtureOutlierDetector(contamination=0.02, random_state=0).fit(X)
    >>> labels = detector.predict(X)            # -1 for the 2% least likely rows
    """

    _parameter_constraints: dict = {
        # ints, ranges and lists: checked in fit, where select's own checks apply
        "n_components": "no_validation",
        "covariance_type": "no_validation",
        "contamination": [StrOptions({"auto"}), Interval(Real, 0.0, 0.5, closed="right")],
        # the settings it shares with GaussianMixture, constrained alike
        **{name: GaussianMixture._parameter_constraints[name] for name in (
            "tol", "reg_covar", "max_iter", "n_init", "init_params", "weights_init", "means_init",
            "precisions_init", "random_state", "verbose", "verbose_interval", "chunk_size")},
    }

    def __init__(
        self,
        n_components: Any = 1,
        *,
        covariance_type: Any = "full",
        contamination: Any = 0.1,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: Optional[int] = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.contamination = contamination
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size

    # ------------------------------------------------------------ fitting
    def _selects(self) -> bool:
        """Whether ``fit`` chooses K or the structure by BIC instead of fitting one model."""
        fixed_k = isinstance(self.n_components, numbers.Integral)
        fixed_type = isinstance(self.covariance_type, str) and self.covariance_type != "all"
        return not (fixed_k and fixed_type)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "GaussianMixtureOutlierDetector":
        """Fit the mixture and set ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a .npy path / memmap
            The training rows (out-of-core sources only with a fixed K and structure).
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights, for the fit and the quantile.

        Returns
        -------
        self
        """
        self._validate_params()
        if is_out_of_core(X):
            if self._selects():
                raise ValueError(
                    "choosing K or the covariance structure needs the rows in memory; pass an array, "
                    "or give one int n_components and one covariance_type to fit a .npy file or memmap"
                )
            self.mixture_ = GaussianMixture(self.n_components, **self._mixture_settings())
            self.mixture_.fit(X, sample_weight=sample_weight)
            self.selection_ = None
            self.n_features_in_ = self.mixture_.n_features_in_
            scores = to_numpy(self.mixture_.score_samples(X))
            weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        else:
            X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
            weights = checks.check_sample_weight(sample_weight, X.shape[0], X)
            weights = None if weights is None else np.asarray(weights, dtype=np.float64)
            self.mixture_, self.selection_ = self._fit_mixture(X, weights)
            scores = to_numpy(self.mixture_.score_samples(X))
        self.offset_ = self._offset(scores, weights)
        self.n_iter_ = self.mixture_.n_iter_
        return self

    def _mixture_settings(self) -> dict:
        return {name: getattr(self, name) for name in MIXTURE_PARAMS}

    def _fit_mixture(self, X: np.ndarray, weights: Optional[np.ndarray]) -> tuple[GaussianMixture, Any]:
        if not self._selects():
            mixture = GaussianMixture(self.n_components, **self._mixture_settings())
            return mixture.fit(X, sample_weight=weights), None
        from .selection import select  # selection imports the estimator; import it when used

        result = select(X, self.n_components, self.covariance_type, sample_weight=weights,
                        **self._select_settings())
        return result.best_estimator_, result

    def _select_settings(self) -> dict:
        """The settings given here that differ from GaussianMixture's defaults, for select."""
        defaults = GaussianMixture().get_params()
        own = ("covariance_type", "n_init", "random_state")  # select's grid and start arguments
        settings = {name: value for name, value in self._mixture_settings().items()
                    if name not in own and not _same(value, defaults.get(name))}
        for name in ("weights_init", "means_init", "precisions_init"):
            if settings.pop(name, None) is not None:
                raise ValueError(f"{name} fixes the components' start, which needs one K and one structure: "
                                 "give one int n_components and one covariance_type, or leave it None")
        n_init = None if self.n_init == 1 else self.n_init
        return dict(settings, n_init=n_init, random_state=self.random_state)

    def _offset(self, scores: np.ndarray, weights: Optional[np.ndarray]) -> float:
        if self.contamination == "auto":
            return auto_offset(self.mixture_)
        return weighted_quantile(scores, float(self.contamination), weights)

    # ------------------------------------------------------------ scoring
    def score_samples(self, X: Any) -> Any:
        """Log-density ``log p(x)`` of each row (lower: more abnormal).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a .npy path / memmap

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "offset_")
        if not is_out_of_core(X):
            X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return to_numpy(self.mixture_.score_samples(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, shape (n_samples,)."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """-1 for outliers (decision function below 0), +1 for inliers; shape (n_samples,)."""
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """``fit(X, sample_weight=sample_weight).predict(X)``; shape (n_samples,)."""
        return self.fit(X, sample_weight=sample_weight).predict(X)


def weighted_quantile(values: Any, q: float, sample_weight: Optional[Any] = None) -> float:
    """Quantile ``q`` of ``values`` with frequency weights: ``numpy.quantile`` of the repeated rows.

    A row of weight ``w`` counts as ``w`` rows. Integer weights give exactly
    ``numpy.quantile(numpy.repeat(values, w), q)`` (linear interpolation);
    other weights extend that continuously; unit weights (or ``None``) give
    ``numpy.quantile(values, q)``.

    Parameters
    ----------
    values : array-like of shape (n,)
    q : float in [0, 1]
    sample_weight : array-like of shape (n,), optional
        Non-negative, not all zero.

    Returns
    -------
    float
    """
    values = np.asarray(values, dtype=np.float64)
    if sample_weight is None:
        return float(np.quantile(values, q))
    weights = np.asarray(sample_weight, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    # Row j stands for the repeated positions [ends[j] - w_j, ends[j]); zero weights stand for none.
    ends = np.cumsum(weights)
    position = q * max(ends[-1] - 1.0, 0.0)
    below = np.floor(position)

    def at(index: float) -> float:
        return values[min(int(np.searchsorted(ends, index, side="right")), len(values) - 1)]

    low = at(below)
    return float(low + (position - below) * (at(below + 1.0) - low))


def auto_offset(mixture: GaussianMixture) -> float:
    """The log-density below which ``mixture`` puts probability :data:`AUTO_TAIL` (Monte-Carlo estimate).

    Parameters
    ----------
    mixture : GaussianMixture
        Fitted.

    Returns
    -------
    float
    """
    draws, _ = mixture._fitted_params().sample(AUTO_DRAWS, np.random.RandomState(0))
    return float(np.quantile(to_numpy(mixture.score_samples(draws)), AUTO_TAIL))


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # arrays compare element-wise
        return False


# ------------------------------------------------- thresholds kept in model files
#: the key of a model file's ``extra`` holding its training rows' log-density quantiles
TRAINING_QUANTILES_KEY = "training_log_density"
#: up to this many rows the stored quantiles hold every breakpoint of numpy's linear
#: quantile below the median (so thresholds are exact); beyond, a grid of this many steps
EXACT_QUANTILE_STEPS = 4000


def training_quantiles(scores: Any) -> dict:
    """The lower half of the quantile function of training log-densities, for a model file.

    ``numpy.quantile`` (linear) is piecewise linear in the level with breaks
    at ``k / (n - 1)``: for ``n - 1 <= EXACT_QUANTILE_STEPS`` every break up
    to 0.5 is kept, so :func:`threshold_from` is exact; larger data keep a
    grid of ``EXACT_QUANTILE_STEPS`` levels on [0, 0.5].

    Parameters
    ----------
    scores : array-like of shape (n_samples,)

    Returns
    -------
    dict
        ``{"levels": [...], "quantiles": [...], "n_rows": n}``, JSON-serialisable.
    """
    scores = np.asarray(scores, dtype=np.float64)
    steps = max(len(scores) - 1, 1)
    if steps <= EXACT_QUANTILE_STEPS:
        levels = np.r_[np.arange(steps // 2 + 1) / steps, 0.5]
    else:
        levels = np.linspace(0.0, 0.5, EXACT_QUANTILE_STEPS + 1)
    levels = np.unique(levels)
    return {"levels": levels.tolist(), "quantiles": np.quantile(scores, levels).tolist(),
            "n_rows": int(len(scores))}


def threshold_from(stored: dict, contamination: float) -> float:
    """The training log-density quantile at ``contamination`` from :func:`training_quantiles`' dict."""
    return float(np.interp(contamination, stored["levels"], stored["quantiles"]))
