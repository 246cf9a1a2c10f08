"""``GaussianMixtureClassifier``: a Gaussian mixture per class (mclust's MclustDA and EDDA).

Bayes' rule on class-conditional mixture densities: ``p(c | x)`` is
proportional to ``prior_c p(x | c)``. In ``"mclustda"`` mode each class's
density is a mixture whose K and structure :func:`gaussmix.select` chooses by
a criterion (BIC, as mclust, or AIC, ICL) on that class's rows; in ``"edda"``
mode it is one Gaussian per class, with one structure shared by the classes
and chosen by the same criterion of the classes' joint fit (:mod:`gaussmix.edda`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Optional

import numpy as np
import scipy.special
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _validation as checks
from .covariance import get_covariance_model
from .degeneracy import DegenerateFitWarning, degenerate_components
from .edda import EddaFit, fit_edda
from .estimator import GaussianMixture
from .exceptions import CollapsedComponentError
from .selection import CRITERIA, SELECT_MAX_ITER, SELECT_TOL, _check_covariance_types, select

MODES = ("mclustda", "edda")


class GaussianMixtureClassifier(ClassifierMixin, BaseEstimator):
    """Classification by a Gaussian mixture density per class (mclust's ``MclustDA``).

    Parameters
    ----------
    mode : {"mclustda", "edda"}, default="mclustda"
        ``"mclustda"``: each class's K (from ``n_components``) and structure
        (from ``covariance_types``) are chosen by ``criterion`` on its own rows with
        :func:`gaussmix.select`. ``"edda"``: one Gaussian per class, the
        structure shared by the classes and chosen by ``criterion`` of the
        classes' joint fit (one M-step from the labels; ``n_components`` unused).
    n_components : int or iterable of int, default=(1, 2, 3, 4, 5)
        The values of K tried per class (mclust's default ``G = 1:5``); or a
        dict ``class -> int or iterable`` to try other values per class (as
        mclust's ``G`` list; ``cvMclustDA`` refits the full fit's choices so).
    covariance_types : str or iterable of str, default="all"
        Structures tried (``"all"``: mclust's 14; on one feature its two,
        E and V); or a dict ``class -> names``, as ``n_components``. In
        edda mode one name or list for all classes.
    criterion : {"bic", "aic", "icl", "icl_entropy"}, default="bic"
        What chooses each class's model (mclustda) or the shared structure
        (edda); lower is better, as in :func:`gaussmix.select`. ``"bic"`` is
        mclust's choice; ``"aic"`` penalises parameters less (more components,
        freer structures); ``"icl"`` (mclust's, hard classification) and
        ``"icl_entropy"`` (soft) add the classification entropy, so they shun
        components that overlap. In edda mode the ICLs are those of the mixture
        of the class Gaussians weighted by the class proportions.
    priors : array-like of shape (n_classes,), default=None
        Class prior probabilities, in the order of ``classes_``; ``None``:
        the (weighted) class proportions of the training rows.
    n_init : int, default=None
    init_params : str, default=None
    tol : float, default=1e-5
    max_iter : int, default=500
    allow_degenerate : bool, default=False
    random_state : int, RandomState instance or None, default=None
    n_jobs : int, default=None
        Passed to :func:`gaussmix.select` for every class (mclustda mode):
        by default a hierarchical start and three k-means++ starts per cell,
        degenerate fits never chosen.
    reg_covar : float, default=1e-6
        Added to the covariance diagonals (both modes).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    class_prior_ : ndarray of shape (n_classes,)
        The priors used by ``predict``.
    mixtures_ : list of GaussianMixture
        The density of each class, in the order of ``classes_``; in edda mode
        one-component ``"full"`` mixtures holding the class's Gaussian.
    selections_ : list of SelectionResult or None
        Each class's table of criteria (mclustda mode).
    covariance_type_ : str or None
        The shared structure (edda mode).
    edda_fits_ : dict or None
        ``structure -> EddaFit`` for every structure tried (edda mode);
        ``edda_fits_[s].bic`` is the table mclust prints, negated (also
        ``.aic``, ``.icl``, ``.icl_entropy``).
    n_iter_ : ndarray of int, shape (n_classes,)
        EM iterations of each class's chosen fit (1 in edda mode: one M-step).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When X had string column names.

    Notes
    -----
    ``sample_weight`` are frequency weights: each class's fit uses its rows'
    weights and the default priors are the classes' weight shares; a class
    whose weights are all 0 is left out of ``classes_``.

    A class whose rows hold a constant column (a single row, say) has no
    Gaussian density; in mclustda mode it gets one Gaussian held up by
    ``reg_covar`` with a :class:`~gaussmix.degeneracy.DegenerateFitWarning`
    (it then claims only rows on its constant value), as scikit-learn's QDA
    goes on with a warning. EDDA's shared structures need no such rule.
    mclust's ``cvMclustDA`` keeps each class's (K, structure) of the full fit
    in every fold; scikit-learn's ``cross_val_score`` refits this estimator,
    which chooses them again per fold.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from gaussmix import GaussianMixtureClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = GaussianMixtureClassifier(mode="edda").fit(X, y)
    >>> clf.covariance_type_
    'VEV'
    """

    _parameter_constraints: dict = {
        "mode": [StrOptions(set(MODES))],
        "criterion": [StrOptions(set(CRITERIA))],
        "n_components": "no_validation",  # an int or iterable: select's checks
        "covariance_types": "no_validation",
        "priors": ["array-like", None],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "init_params": [str, None],
        "tol": [Interval(numbers.Real, 0.0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "allow_degenerate": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "reg_covar": [Interval(numbers.Real, 0.0, None, closed="left")],
    }

    def __init__(
        self,
        mode: str = "mclustda",
        *,
        n_components: Any = (1, 2, 3, 4, 5),
        covariance_types: Any = "all",
        criterion: str = "bic",
        priors: Any = None,
        n_init: Optional[int] = None,
        init_params: Optional[str] = None,
        tol: float = SELECT_TOL,
        max_iter: int = SELECT_MAX_ITER,
        allow_degenerate: bool = False,
        random_state: Any = None,
        n_jobs: Optional[int] = None,
        reg_covar: float = 1e-6,
    ) -> None:
        self.mode = mode
        self.n_components = n_components
        self.covariance_types = covariance_types
        self.criterion = criterion
        self.priors = priors
        self.n_init = n_init
        self.init_params = init_params
        self.tol = tol
        self.max_iter = max_iter
        self.allow_degenerate = allow_degenerate
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.reg_covar = reg_covar

    # ------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "GaussianMixtureClassifier":
        """Fit each class's density and the class priors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        weights = checks.check_sample_weight(sample_weight, X.shape[0], X)
        weights = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
        # A class whose rows all have weight 0 is as absent as its rows.
        present = weights > 0
        self.classes_, labels = np.unique(y[present], return_inverse=True)
        X, weights = X[present], weights[present]
        if len(self.classes_) < 2:
            raise ValueError(f"y has {len(self.classes_)} class(es) with positive weight; a classifier needs "
                             "at least 2: give rows of at least two classes")
        totals = np.bincount(labels, weights=weights, minlength=len(self.classes_))
        self.class_prior_ = self._check_priors(totals / totals.sum())
        if self.mode == "edda":
            self._fit_edda(X, labels, weights)
        else:
            self._fit_per_class(X, labels, weights)
        self.n_iter_ = np.array([mixture.n_iter_ for mixture in self.mixtures_])
        return self

    def _check_priors(self, proportions: np.ndarray) -> np.ndarray:
        if self.priors is None:
            return proportions
        priors = np.asarray(self.priors, dtype=np.float64)
        if priors.shape != proportions.shape or not np.all(np.isfinite(priors)) or np.any(priors < 0):
            raise ValueError(f"priors must be {len(proportions)} non-negative numbers, one per class in the "
                             f"order of classes_ ({', '.join(map(_label, self.classes_))}); got {self.priors!r}")
        if not math.isclose(priors.sum(), 1.0, rel_tol=1e-9):
            warnings.warn(f"priors sum to {priors.sum():g}, not 1; they are rescaled to sum to 1", UserWarning)
        return priors / priors.sum()

    def _fit_per_class(self, X: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> None:
        settings = dict(tol=self.tol, max_iter=self.max_iter, reg_covar=self.reg_covar)
        if self.init_params is not None:
            settings["init_params"] = self.init_params
        self.mixtures_, self.selections_ = [], []
        for index, name in enumerate(self.classes_):
            rows = labels == index
            if _no_spread(X[rows]):
                # No mixture describes such a class (select refuses it); as scikit-learn's QDA, go on with
                # a density held up by reg_covar, and say so.
                warnings.warn(f"class {_label(name)}: its {int(rows.sum())} row(s) have a constant column, so its "
                              "density is one Gaussian held up by reg_covar alone (degenerate); give the class "
                              "more varied rows for a real fit", DegenerateFitWarning)
                self.mixtures_.append(_one_gaussian(fit_edda(X[rows], np.zeros(int(rows.sum()), dtype=int), 1,
                                                             "full", weights[rows], float(self.reg_covar)).params,
                                                    0, float(self.reg_covar)))
                self.selections_.append(None)
                continue
            ks = _for_class(self.n_components, "n_components", name)
            types = _for_class(self.covariance_types, "covariance_types", name)
            try:
                result = select(X[rows], ks, types, criterion=self.criterion, n_init=self.n_init,
                                random_state=self.random_state,
                                n_jobs=self.n_jobs, sample_weight=weights[rows],
                                allow_degenerate=self.allow_degenerate, **settings)
            except ValueError as failure:
                raise ValueError(f"class {_label(name)}: {failure}") from failure
            self.mixtures_.append(result.best_estimator_)
            self.selections_.append(result)
        self.covariance_type_ = None
        self.edda_fits_ = None

    def _fit_edda(self, X: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> None:
        if isinstance(self.covariance_types, dict):
            raise ValueError("in edda mode the classes share one structure: give covariance_types as a name or "
                             "a list of names, not a dict per class")
        fits: dict[str, EddaFit] = {}
        failures = []
        for name in _check_covariance_types(self.covariance_types, X.shape[1]):
            try:
                fits[name] = fit_edda(X, labels, len(self.classes_), name, weights, float(self.reg_covar))
            except (CollapsedComponentError, ValueError, FloatingPointError, np.linalg.LinAlgError) as failure:
                failures.append(f"{name}: {failure}")
        if not fits:
            raise ValueError("every covariance structure failed for one Gaussian per class (" + "; ".join(failures)
                             + "); raise reg_covar or check the data for constant columns within a class")
        sound = {name: fit for name, fit in fits.items()
                 if self.allow_degenerate or not np.any(degenerate_components(fit.params, float(self.reg_covar)))}
        best = min((sound or fits).values(), key=lambda fit: (fit.criterion(self.criterion), fit.n_parameters))
        self.edda_fits_ = fits
        self.covariance_type_ = best.covariance_type
        self.mixtures_ = [_one_gaussian(best.params, k, float(self.reg_covar)) for k in range(len(self.classes_))]
        self.selections_ = None

    # ------------------------------------------------------------ predicting
    def _joint_log_likelihood(self, X: Any) -> np.ndarray:
        """``log prior_c + log p(x | c)``, shape (n_samples, n_classes)."""
        check_is_fitted(self, "mixtures_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        densities = np.column_stack([mixture.score_samples(X) for mixture in self.mixtures_])
        with np.errstate(divide="ignore"):  # a prior of 0 rules its class out
            return densities + np.log(self.class_prior_)[None, :]

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log p(c | x)``, shape (n_samples, n_classes)."""
        joint = self._joint_log_likelihood(X)
        return joint - scipy.special.logsumexp(joint, axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``p(c | x)``, shape (n_samples, n_classes); rows sum to 1."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, shape (n_samples,)."""
        joint = self._joint_log_likelihood(X)  # first: it checks that the estimator is fitted
        return self.classes_[np.argmax(joint, axis=1)]

    def decision_function(self, X: Any) -> np.ndarray:
        """``log p(c | x)``, shape (n_samples, n_classes); for two classes the log-odds
        ``log p(c_1 | x) - log p(c_0 | x)``, shape (n_samples,), as scikit-learn's classifiers."""
        log_proba = self.predict_log_proba(X)
        if len(self.classes_) == 2:
            return log_proba[:, 1] - log_proba[:, 0]
        return log_proba


def _for_class(value: Any, parameter: str, name: Any) -> Any:
    """``value``, or its entry for class ``name`` when it is a dict (mclust's per-class G and modelNames)."""
    if not isinstance(value, dict):
        return value
    if name not in value:
        raise ValueError(f"{parameter} is a dict without an entry for class {_label(name)}; give one for every "
                         f"class ({', '.join(map(_label, value))} given)")
    return value[name]


def _label(name: Any) -> str:
    """A class label as the user wrote it: ``2``, ``'setosa'`` (not ``np.int64(2)``)."""
    return repr(name.item() if isinstance(name, np.generic) else name)


def _no_spread(X: np.ndarray) -> bool:
    """Whether the rows ``X`` (shape (n, D)) hold a constant column (one row included)."""
    return bool(np.any(np.ptp(X, axis=0) == 0))


def _one_gaussian(params: Any, k: int, reg_covar: float) -> GaussianMixture:
    """Component ``k`` of ``params`` as a fitted one-component ``"full"`` GaussianMixture."""
    full = get_covariance_model("full")
    covariances = params.dense_covariances()[k:k + 1]
    model = GaussianMixture(1, covariance_type="full", reg_covar=reg_covar)
    model.weights_ = np.ones(1)
    model.means_ = params.means[k:k + 1]
    model.covariances_ = covariances
    model.precisions_cholesky_ = full.precision_cholesky(covariances, reg_covar=reg_covar)
    model.precisions_ = full.precisions(model.precisions_cholesky_)
    model.converged_, model.n_iter_ = True, 1
    model.lower_bound_, model.lower_bounds_, model.lower_bounds_per_init_ = -math.inf, [], []
    model.n_features_in_ = int(params.means.shape[1])
    model.degenerate_components_ = degenerate_components(model._fitted_params(), reg_covar)
    model.degenerate_ = bool(np.any(model.degenerate_components_))
    return model
