"""Model selection: fit a grid of (n_components, covariance_type) and rank it by BIC, AIC or ICL.

All criteria follow scikit-learn's sign: **lower is better**. mclust reports
``BIC_mclust = 2 log L - p log n`` (higher is better), which is exactly
``-bic`` here; negate a value (``-row.bic``) to compare with mclust's tables.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np
import scipy.special
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from . import _validation as checks
from . import missing as incomplete
from . import priors
from . import noise_start
from .noise import N_NOISE_PARAMETERS
from .backends.device import INIT_HOST_ROWS, is_device_array
from .backends import get_namespace, to_numpy
from .covariance import canonical_covariance_types, get_covariance_model
from .degeneracy import DegenerateFitWarning
from .estimator import GaussianMixture
from .init import HierarchicalTree, draws_subset, get_initializer
from ._threads import one_thread

CRITERIA = ("bic", "aic", "icl", "icl_entropy")
#: k-means++ starts per cell besides the hierarchical one, unless ``n_init`` says otherwise
ROBUST_KMEANS_STARTS = 3
#: ``tol`` of every cell unless given: mean log-likelihood change per row. On Old Faithful
#: (EEE, 3) and iris (VEV, 2) it stops where mclust's default (relative change 1e-5)
#: does, within 0.01 of its BIC; the estimator's 1e-3 stops Old Faithful 0.35 short.
SELECT_TOL = 1e-5
#: ``max_iter`` of every cell unless given
SELECT_MAX_ITER = 500
#: mclust's names of the four structures scikit-learn names
MCLUST_NAMES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
#: mclust's two univariate models: equal variance (E) and variable variance (V)
UNIVARIATE_TYPES = ("E", "V")
#: data with fewer entries (rows x features) are fitted with one BLAS/OpenMP thread
SMALL_DATA_ENTRIES = 2**20


@dataclass(frozen=True)
class SelectionRow:
    """One cell of the selection grid.

    Criteria are ``None`` when the fit failed; ``error`` then says why.

    Attributes
    ----------
    n_components : int
    covariance_type : str
    log_likelihood : float or None
        Total (weighted) log-likelihood of the data, ``sum_n w_n log p(x_n)``.
    n_parameters : int
        Free parameters of the mixture.
    bic, aic, icl : float or None
        Lower is better. ``icl`` is mclust's (hard classification).
    converged : bool
    error : str or None
        The message of the exception that stopped this fit.
    degenerate : bool
        The fit succeeded but a component's covariance is not determined by
        the data (:mod:`gaussmix.degeneracy`): mclust's NA cells. Such a row
        is chosen only with ``allow_degenerate=True`` or when every row is.
    icl_entropy : float or None
        The soft ICL (entropy of the responsibilities).
    """

    n_components: int
    covariance_type: str
    log_likelihood: Optional[float]
    n_parameters: int
    bic: Optional[float]
    aic: Optional[float]
    icl: Optional[float]
    converged: bool
    error: Optional[str] = None
    degenerate: bool = False
    icl_entropy: Optional[float] = None

    @property
    def ok(self) -> bool:
        """Whether this fit succeeded."""
        return self.error is None

    @property
    def sound(self) -> bool:
        """Whether this fit succeeded and is not degenerate."""
        return self.ok and not self.degenerate

    @property
    def label(self) -> str:
        """The covariance type with its other name: ``"tied (EEE)"``, ``"E (tied)"``."""
        return display_name(self.covariance_type)

    def criterion(self, name: str) -> Optional[float]:
        """The value of criterion ``name`` ("bic", "aic" or "icl")."""
        return getattr(self, _check_criterion(name))

    def to_dict(self) -> dict:
        return asdict(self)


class SelectionResult:
    """Every fit of a selection grid and the best one.

    Attributes
    ----------
    rows : tuple of SelectionRow
        In grid order: covariance types outer, n_components inner.
    criterion : str
        The criterion that chose ``best``.
    best : SelectionRow
        The successful, non-degenerate row with the lowest criterion (ties:
        fewer parameters). Degenerate rows compete only with
        ``allow_degenerate=True``, or when no sound row exists: then
        ``best_is_degenerate`` is True and a :class:`DegenerateFitWarning` says so.
    best_estimator_ : GaussianMixture
        The fitted model of ``best``.
    estimators_ : dict
        ``(n_components, covariance_type) -> GaussianMixture`` for every
        successful fit.
    allow_degenerate : bool
    best_is_degenerate : bool
    settings : dict
        The estimator settings every cell used (``tol``, ``max_iter``, ...).
    """

    def __init__(self, rows: Iterable[SelectionRow], estimators: dict, criterion: str,
                 allow_degenerate: bool = False, settings: Optional[dict] = None) -> None:
        self.rows = tuple(rows)
        self.criterion = criterion
        self.estimators_ = dict(estimators)
        self.allow_degenerate = bool(allow_degenerate)
        self.settings = dict(settings or {})
        succeeded = [row for row in self.rows if row.ok]
        if not succeeded:
            reasons = "; ".join(
                f"K={row.n_components} {row.covariance_type}: {row.error}" for row in self.rows[:3]
            )
            raise ValueError(f"every fit of the selection grid failed ({reasons})")
        candidates = succeeded if allow_degenerate else [row for row in succeeded if row.sound] or succeeded
        self.best = min(candidates, key=lambda row: (row.criterion(criterion), row.n_parameters))
        self.best_is_degenerate = self.best.degenerate
        if self.best_is_degenerate and not allow_degenerate:
            warnings.warn(
                f"every successful fit of the selection grid is degenerate; the best of them "
                f"(K={self.best.n_components}, {self.best.label}) is NOT a sound model: a component's "
                "covariance is held up by reg_covar alone. Use fewer components, other covariance "
                "types, or check the data for repeated rows and constant or duplicated columns.",
                DegenerateFitWarning,
            )
        self.best_estimator_ = self.estimators_[(self.best.n_components, self.best.covariance_type)]

    @property
    def covariance_types(self) -> list[str]:
        """The covariance types of the grid, in order."""
        return list(dict.fromkeys(row.covariance_type for row in self.rows))

    @property
    def n_components(self) -> list[int]:
        """The component counts of the grid, in order."""
        return list(dict.fromkeys(row.n_components for row in self.rows))

    def to_dict(self) -> dict:
        """Plain-Python (JSON-serialisable) form: criterion, settings, best row and all rows."""
        return {
            "criterion": self.criterion,
            "lower_is_better": True,
            "allow_degenerate": self.allow_degenerate,
            "settings": {key: value for key, value in self.settings.items()
                         if isinstance(value, (int, float, str, bool, type(None)))},
            "best": self.best.to_dict(),
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_pandas(self) -> Any:
        """The rows as a ``pandas.DataFrame`` (needs pandas)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("SelectionResult.to_pandas needs pandas: pip install pandas") from None
        return pandas.DataFrame([row.to_dict() for row in self.rows])

    def table(self, criterion: Optional[str] = None) -> str:
        """A text grid of ``criterion``: K against covariance type.

        Rows are the values of K and columns the covariance types, or the
        transpose when there are more types than values of K (14 mclust
        structures fit a terminal better as rows). Types show both names
        (``tied (EEE)``). The chosen cell is starred, degenerate cells carry
        ``!`` (never chosen while a sound cell exists), failed fits show as
        ``failed``; a key under the grid says so.
        """
        criterion = _check_criterion(criterion or self.criterion)
        types, ks = self.covariance_types, self.n_components
        cells = {(row.n_components, row.covariance_type): row for row in self.rows}
        by_type = len(types) > len(ks)
        texts = {key: _cell_text(row, criterion, row is self.best) for key, row in cells.items()}
        row_keys, column_keys = (types, ks) if by_type else (ks, types)
        row_labels = [display_name(key) if by_type else str(key) for key in row_keys]
        column_labels = [f"K={key}" if by_type else display_name(key) for key in column_keys]
        corner = "covariance" if by_type else "K"
        label_width = max(len(corner), *(len(label) for label in row_labels))
        # Every cell as wide as the widest: criteria of 1e6 and more stay apart.
        width = 2 + max(9, *(len(label) for label in column_labels), *(len(text) for text in texts.values()))
        noise = bool(self.settings.get("noise")) or self.settings.get("noise_init") is not None
        lines = [f"{criterion.upper()} (lower is better)" + ("; every fit with a noise component" if noise else ""),
                 f"{corner:>{label_width}}" + "".join(f"{label:>{width}}" for label in column_labels)]
        for row_key, row_label in zip(row_keys, row_labels):
            line = f"{row_label:>{label_width}}"
            for column_key in column_keys:
                key = (column_key, row_key) if by_type else (row_key, column_key)
                line += f"{texts.get(key, ''):>{width}}"
            lines.append(line)
        lines.append(_table_key(self))
        return "\n".join(lines)

    def __repr__(self) -> str:
        best = self.best
        return (
            f"<SelectionResult of {len(self.rows)} fits; best by {self.criterion}: "
            f"K={best.n_components}, {best.label}, "
            f"{self.criterion}={best.criterion(self.criterion):.2f}>\n{self.table()}"
        )

    def regressor(self, targets: Any, inputs: Any = None) -> Any:
        """The best model as a :class:`~gaussmix.GaussianMixtureRegressor` predicting ``targets``
        from ``inputs`` (default: the other features); see ``GaussianMixtureRegressor.from_mixture``."""
        from .regression import GaussianMixtureRegressor  # regression imports the estimator, as this module does

        return GaussianMixtureRegressor.from_mixture(self.best_estimator_, targets, inputs)

    def _repr_html_(self) -> str:
        from .report import selection_summary_html  # report draws with matplotlib: imported when shown

        return selection_summary_html(self)

    def report(self, path: Any, X: Any = None) -> Any:
        """Write a self-contained HTML report of the selection and its best model to ``path``.

        With ``X`` (the rows of the selection), the data are drawn coloured by
        component and sizes and uncertainties shown. See :mod:`gaussmix.report`.
        """
        from .report import write_report

        return write_report(path, self.best_estimator_, X, selection=self.to_dict())


def select(
    X: Any,
    n_components: Union[int, Iterable[int]] = range(1, 10),
    covariance_types: Union[str, Iterable[str]] = "all",
    criterion: str = "bic",
    n_init: Optional[int] = None,
    random_state: Any = None,
    n_jobs: Optional[int] = None,
    sample_weight: Any = None,
    *,
    allow_degenerate: bool = False,
    progress: Optional[Callable[[SelectionRow], None]] = None,
    **estimator_params: Any,
) -> SelectionResult:
    """Fit every (n_components, covariance_type) pair and pick the best by a criterion.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int or iterable of int, default=range(1, 10)
    covariance_types : str or iterable of str, default="all"
        Names or aliases from the covariance registry; ``"all"`` means one
        name per registered structure (:func:`gaussmix.covariance.canonical_covariance_types`),
        and may be given among other names. On one feature the structures
        reduce to mclust's two univariate models, ``"E"`` (equal variances:
        tied, EII, EEE, ...) and ``"V"`` (variable: full, diag, VII, ...);
        ``"all"`` fits those two, and names that coincide are fitted once.
    criterion : {"bic", "aic", "icl", "icl_entropy"}, default="bic"
        Lower is better (scikit-learn's sign). mclust's BIC and ICL are ``-bic``
        and ``-icl``; ``icl_entropy`` is the soft ICL.
    n_init : int, optional
        Starts per cell. By default (no ``init_params`` given) each cell keeps
        the best of a hierarchical start (mclust's, ``init_params="hierarchical"``)
        and ``n_init`` k-means++ starts (default 3): k-means alone often ends
        in a poor optimum on elongated clusters and then picks a wrong K. With
        ``init_params`` given, ``n_init`` starts of that kind (default 1).
        ``screen_iter`` (a :class:`GaussianMixture` parameter, passed on)
        runs the k-means++ starts that many iterations and only the best of
        them on to convergence, beside the hierarchical start: about two
        full runs per cell instead of four, at the risk of a lower
        likelihood in cells where a start that was behind early would have
        ended ahead (see BENCHMARKS.md, "Model selection").
    random_state : int, RandomState instance or None
        Every cell gets the same seed (an int) so that results do not depend
        on ``n_jobs``; a RandomState draws one seed per cell.
    n_jobs : int or None, default=None
        Cells fitted in parallel by joblib (``None``: one at a time, -1: all cores).
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights: the log-likelihood is ``sum_n w_n log p(x_n)`` and
        the criteria use ``n = sum_n w_n``.
    allow_degenerate : bool, default=False
        Let degenerate fits (:mod:`gaussmix.degeneracy`: a covariance held up
        by ``reg_covar`` alone, mclust's NA cells) compete for ``best``. By
        default they are marked in the table and chosen only when no sound
        fit exists, with a warning.
    progress : callable, optional
        Called with each :class:`SelectionRow` as its fit finishes.
    **estimator_params
        Passed to every :class:`GaussianMixture` (``tol``, ``max_iter``,
        ``reg_covar``, ``init_params``, ``callback``, ``verbose``,
        ``missing``...). With ``missing="marginalize"``, rows with NaN
        entries are fitted on their observed entries and every criterion uses
        the observed-data log-likelihood; the degenerate-fit rule applies as ever.
        ``tol`` defaults to :data:`SELECT_TOL` (1e-5) and ``max_iter`` to
        :data:`SELECT_MAX_ITER` (500), the command line's defaults too.
        ``prior="default"`` (or a :class:`~gaussmix.Prior`) fits every cell by
        MAP EM: mclust's ``mclustBIC(X, prior = priorControl())``; ``"all"``
        then leaves out VEE, EVE, VVE and EVV, which have no prior (as in
        mclust), and naming one of them is an error.
        ``callback`` and ``verbose`` report from worker processes only when
        ``n_jobs`` is None or 1. ``noise=True`` (or ``noise_init``,
        ``noise_volume``) fits every cell with a noise component
        (:mod:`gaussmix.noise`): mclust's BIC table with noise, each cell
        counting the noise's two parameters; the starts are drawn from the
        rows that do not start as noise. mclust's noise-only row (K = 0) is
        not fitted.

    Returns
    -------
    SelectionResult

    Notes
    -----
    A fit that fails in one cell (a collapsed component, fewer rows than
    components) is recorded in that row's ``error``; ``select`` raises only
    if every cell fails. Of a cell's starts, the best sound (non-degenerate)
    fit is kept, a degenerate one only when every start is.

    As in mclust, the hierarchical start's merge tree is built once per call
    and cut at every K (:class:`gaussmix.init.HierarchicalTree`);
    each cell's start is the one ``init_params="hierarchical"`` gives alone.
    """
    criterion = _check_criterion(criterion)
    for reserved in ("n_components", "covariance_type"):
        if reserved in estimator_params:
            raise TypeError(f"select() sets {reserved} itself; pass it as the grid argument instead")
    ks = _check_n_components(n_components)
    if n_init is not None:
        checks.check_param("n_init", n_init, numbers.Integral, 1)
    estimator_params = {"tol": SELECT_TOL, "max_iter": SELECT_MAX_ITER, **estimator_params}
    # one error now rather than one per cell
    with_prior = priors.check_prior(estimator_params.get("prior")) is not None
    starts = _starts(estimator_params, n_init)
    # Validate X once here so that a bad X is one error, not one per cell: device rows (torch)
    # on a host copy, which the shared hierarchical tree reads too; the cells fit X where it is.
    device = is_device_array(X)
    array = check_array(to_numpy(X) if device else X, dtype=[np.float64, np.float32], ensure_all_finite=False,
                        ensure_min_samples=2)
    marginalize = estimator_params.get("missing") == "marginalize" and incomplete.has_missing(array)
    if marginalize:
        incomplete.check_incomplete_rows(array)
    else:
        checks.check_all_finite(array, nan_hint=checks.MISSING_HINT)
    if device and sample_weight is not None and is_device_array(sample_weight):
        sample_weight = to_numpy(sample_weight)
    weights = checks.check_sample_weight(sample_weight, array.shape[0], array)
    # Incomplete rows: the checks and the shared hierarchical tree see the gaps filled with the
    # column means, as every cell's initialiser does (GaussianMixture, missing="marginalize").
    complete = incomplete.filled_with(array, incomplete.column_means(array, weights)) if marginalize else array
    checks.check_data_for_mixture(complete, sample_weight=weights, stacklevel=3)
    types = _check_covariance_types(covariance_types, array.shape[1], with_prior)

    grid = [(k, covariance_type) for covariance_type in types for k in ks]
    seeds = _cell_seeds(random_state, len(grid))
    # With a noise component every cell's initialiser sees the rows that do not start as noise.
    noise_rows = _initial_noise_rows(estimator_params, complete, weights)
    init_rows, init_weights = complete, weights
    if noise_rows is not None:
        init_rows = complete[~noise_rows]
        init_weights = None if weights is None else weights[~noise_rows]
    # Beyond INIT_HOST_ROWS a device fit starts from a sample of the rows, not from them all.
    if not device or array.shape[0] <= INIT_HOST_ROWS:
        starts = _with_shared_tree(starts, init_rows, init_weights, seeds)
    starts_of = _shared_partitions(starts, init_rows, init_weights, ks, seeds, allow_degenerate)
    jobs = (
        delayed(_fit_cell)(X, weights, k, covariance_type,
                           [_for_one_cell(start, seed) for start in starts_of.get(k, starts)], allow_degenerate)
        for (k, covariance_type), seed in zip(grid, seeds)
    )
    rows, estimators = [], {}
    for row, model in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        rows.append(row)
        if model is not None:
            estimators[(row.n_components, row.covariance_type)] = model
        if progress is not None:
            progress(row)
    settings = {key: value for key, value in estimator_params.items() if key not in ("callback",)}
    return SelectionResult(rows, estimators, criterion, allow_degenerate, dict(settings, n_init=n_init))


def _initial_noise_rows(estimator_params: dict, X: np.ndarray, weights: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """The rows every cell's fit starts as noise (:mod:`gaussmix.noise_start`), shape (n,); None without noise.

    Computed as each cell computes them (from the weights it scales to mean
    one), so that the starts drawn once here fit every cell's rows. Options or
    rows a cell would refuse give None: each cell then records its error.
    """
    try:
        options = noise_start.resolve(estimator_params.get("noise", False), estimator_params.get("noise_init"),
                                      estimator_params.get("noise_volume"))
        if options is None:
            return None
        unit_weights = checks.check_sample_weight(weights, X.shape[0], X, unit_mean=True)
        return noise_start.prepare(X, unit_weights, options, 1).initial
    except ValueError:
        return None


def display_name(covariance_type: str) -> str:
    """A covariance type with its other scheme's name: ``tied (EEE)``, ``EEE (tied)``, ``E (tied)``."""
    if covariance_type in MCLUST_NAMES:
        return f"{covariance_type} ({MCLUST_NAMES[covariance_type]})"
    other = {mclust: name for name, mclust in MCLUST_NAMES.items()}
    other.update({"E": "tied", "V": "full"})
    return f"{covariance_type} ({other[covariance_type]})" if covariance_type in other else covariance_type


def _cell_text(row: SelectionRow, criterion: str, chosen: bool) -> str:
    if not row.ok:
        return "failed"
    return f"{row.criterion(criterion):.2f}" + ("*" if chosen else "!" if row.degenerate else " ")


def _table_key(result: SelectionResult) -> str:
    parts = ["* chosen"]
    if any(row.degenerate for row in result.rows):
        parts.append("! degenerate: a covariance held up by reg_covar alone" +
                     (" (allowed)" if result.allow_degenerate else " (not chosen)"))
    if any(not row.ok for row in result.rows):
        parts.append("failed: see the rows' errors")
    return "; ".join(parts)


def information_criteria(model: GaussianMixture, X: Any, sample_weight: Optional[np.ndarray] = None) -> dict:
    """Log-likelihood, parameter count, BIC, AIC and both ICLs of a fitted model on ``X``.

    With frequency weights ``w``: ``log L = sum w_n log p(x_n)``, ``n = sum w_n``
    and the classification terms are weighted too. Without weights the values
    equal ``model.bic(X)``, ``model.aic(X)``, ``model.icl(X)`` and ``model.icl_entropy(X)``.
    """
    # One E-step (and one validation of X) for the log-densities and the responsibilities.
    posterior = to_numpy(model._per_chunk(X, lambda chunk, params: _stacked(*model._posterior(chunk, params))))
    log_density, resp = posterior[:, 0], posterior[:, 1:]
    entropy_per_row = scipy.special.entr(resp).sum(axis=1)
    # mclust's icl: log of each row's largest responsibility (its hard classification)
    hard_per_row = -np.log(resp.max(axis=1))
    per_row = np.stack([log_density, entropy_per_row, hard_per_row])
    if sample_weight is None:
        n, (log_likelihood, entropy, hard) = log_density.shape[0], np.sum(per_row, axis=1)
    else:
        n, (log_likelihood, entropy, hard) = float(np.sum(sample_weight)), per_row @ sample_weight
    n_parameters = model._n_parameters()
    bic = -2 * float(log_likelihood) + n_parameters * math.log(n)
    return {
        "log_likelihood": float(log_likelihood),
        "n_parameters": n_parameters,
        "bic": bic,
        "aic": -2 * float(log_likelihood) + 2 * n_parameters,
        "icl": bic + 2 * float(hard),
        "icl_entropy": bic + 2 * float(entropy),
    }


def _starts(estimator_params: dict, n_init: Optional[int]) -> list[dict]:
    """Estimator parameters of each kind of start a cell tries (without ``random_state``)."""
    if "init_params" in estimator_params:
        return [dict(estimator_params, n_init=n_init or 1)]
    return [
        dict(estimator_params, init_params="hierarchical", n_init=1),
        dict(estimator_params, init_params="k-means++", n_init=n_init or ROBUST_KMEANS_STARTS),
    ]


def _with_shared_tree(starts: list[dict], X: np.ndarray, weights: Optional[np.ndarray], seeds: list) -> list[dict]:
    """``starts`` with the hierarchical start replaced by one tree built here for every cell.

    The merge tree depends only on the rows, their weights and the subset
    drawn beyond ``gaussmix.init.hierarchical.MAX_ROWS`` rows, so it is shared whenever every
    cell would have built the same tree: always on data that small, otherwise
    when a single start uses one seed in every cell (an int, or None: then one
    random subset serves the grid, as in mclust). Per-cell seeds drawn from a
    RandomState, restarts (``n_init > 1``) and device fits (which may sample
    the rows for their start) keep building their own trees, as before.
    """
    subset = draws_subset(weights, X.shape[0])
    shared_seed = all(seed == seeds[0] for seed in seeds)
    tree = None
    result = []
    for start in starts:
        shareable = (
            start.get("init_params") == "hierarchical"
            and start.get("device") is None
            and (not subset or (start["n_init"] == 1 and shared_seed))
        )
        if shareable and tree is None:
            try:
                with one_thread() if np.size(X) < SMALL_DATA_ENTRIES else contextlib.nullcontext():
                    tree = HierarchicalTree(X, weights, check_random_state(seeds[0]))
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                # Every cell then meets the failure itself and records it in its row.
                shareable = False
        if shareable:
            start = dict(start, init_params=tree)
        result.append(start)
    return result


def _stacked(resp: Any, log_density: Any) -> Any:
    """``[log p(x), p(z | x)]`` of a chunk as one (n, 1 + K) array."""
    xp = get_namespace(resp)
    return xp.concat([xp.reshape(log_density, (-1, 1)), resp], axis=1)


class SharedPartitions:
    """Starts fixed in advance: the same partitions of the rows for every structure of one K.

    The initialiser signature (:data:`gaussmix.init.Initializer`): the i-th
    call gives the i-th partition (in turn), so that one fit with ``n_init``
    equal to their number starts once from each.

    Parameters
    ----------
    partitions : list of (ndarray of shape (n,), str)
        Labels, and the ``init_params`` that drew them (which the fitted model keeps).
    """

    def __init__(self, partitions: list[tuple[np.ndarray, str]]) -> None:
        self.partitions = partitions
        self._calls = 0

    def __call__(self, X: Any, sample_weight: Any, n_components: int, random_state: Any) -> np.ndarray:
        labels, name = self.partitions[self._calls % len(self.partitions)]
        self._calls += 1
        if X.shape[0] != labels.shape[0] or n_components <= int(labels.max()):
            raise ValueError(f"this {name} partition was drawn for other rows or another n_components")
        return labels

    def name_of(self, index: int) -> str:
        """The ``init_params`` that drew start ``index``."""
        return self.partitions[index][1]


def _for_one_cell(start: dict, seed: Any) -> dict:
    """A cell's own copy of a start: its seed, and shared partitions with a count of calls of its own."""
    shared = start.get("init_params")
    if isinstance(shared, SharedPartitions):
        start = dict(start, init_params=SharedPartitions(shared.partitions))
    return dict(start, random_state=seed)


def _shared_partitions(starts: list[dict], X: np.ndarray, weights: Optional[np.ndarray], ks: list[int],
                       seeds: list, allow_degenerate: bool) -> dict[int, list[dict]]:
    """Each K's distinct starting partitions, drawn once for every covariance structure.

    Applies to the default starts (the shared tree's cut and ``n_init``
    k-means++ draws) when every cell has the same seed, on small data: a
    cell's starts then do not depend on its structure, so the tree is cut
    and k-means++ drawn once per K (from one RandomState per K, as each cell
    drew them), and a partition equal to an earlier one up to its labels'
    names is fitted once, as it would give the same fit. A cell is then one
    fit from all its starts (the estimator keeps the best sound one); with
    ``allow_degenerate``, one fit per start (the best by likelihood is kept
    whatever it is). Returns ``{K: starts}`` (empty where the cells draw their own).
    """
    hierarchical = [start for start in starts if isinstance(start.get("init_params"), HierarchicalTree)]
    others = [start for start in starts if not isinstance(start.get("init_params"), HierarchicalTree)]
    if (
        len(hierarchical) != 1
        or any(start.get("init_params") != "k-means++" or start.get("device") is not None for start in others)
        or any(seed != seeds[0] for seed in seeds)
        or np.size(X) >= SMALL_DATA_ENTRIES
    ):
        return {}
    tree = hierarchical[0]["init_params"]
    seed = seeds[0] if seeds[0] is not None else int(np.random.randint(np.iinfo(np.int32).max))
    result = {}
    for k in ks:
        if k > X.shape[0]:
            continue  # each cell reports that it has too few rows
        random_state = check_random_state(seed)
        drawn = [(tree.labels(k), "hierarchical")]
        for start in others:
            draw = get_initializer("k-means++")
            drawn += [(draw(X, weights, k, random_state), "k-means++") for _ in range(start["n_init"])]
        distinct, seen = [], set()
        for labels, name in drawn:
            key = _canonical_labels(labels).tobytes()
            if key not in seen:
                seen.add(key)
                distinct.append((labels, name))
        if allow_degenerate:
            result[k] = [dict(hierarchical[0], init_params=SharedPartitions([partition]), n_init=1)
                         for partition in distinct]
        else:
            result[k] = [dict(hierarchical[0], init_params=SharedPartitions(distinct), n_init=len(distinct))]
    return result


def _canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Labels renamed in order of first appearance: equal for the same partition."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse]


def _fit_cell(X: Any, weights: Optional[np.ndarray], k: int, covariance_type: str, starts: list[dict],
              allow_degenerate: bool = False):
    """Fit one cell from each of its starts; keep the highest log-likelihood.

    A start that fails (e.g. a collapsed component) is skipped; the row records
    an error only when every start fails. Unless ``allow_degenerate``, a sound
    fit beats any degenerate one whatever their log-likelihoods. The criteria
    are computed for the fit kept.
    """
    n_parameters = get_covariance_model(covariance_type).n_parameters(k, int(X.shape[1]))
    if starts and (starts[0].get("noise") or starts[0].get("noise_init") is not None):
        n_parameters += N_NOISE_PARAMETERS
    # On small data the BLAS and OpenMP threads' start-up and spinning cost far more than the
    # products (see BENCHMARKS.md, "Small problems"); the grid's parallelism comes from n_jobs.
    small = math.prod(X.shape) < SMALL_DATA_ENTRIES
    best, best_key, error = None, None, None
    for params in starts:
        model = GaussianMixture(n_components=k, covariance_type=covariance_type, **params)
        try:
            with warnings.catch_warnings(), (one_thread() if small else contextlib.nullcontext()):
                # Non-convergence and degeneracy are recorded in the row instead.
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", DegenerateFitWarning)
                model.fit(X, sample_weight=weights)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as failure:
            error = error or failure
            continue
        if isinstance(model.init_params, HierarchicalTree):
            # The cut of the shared tree is exactly this start; the model need not carry the tree.
            model.init_params = "hierarchical"
        elif isinstance(model.init_params, SharedPartitions):
            model.init_params = model.init_params.name_of(model.best_init_)
        key = (allow_degenerate or not model.degenerate_, model.lower_bound_)
        if best_key is None or key > best_key:
            best, best_key = model, key
    values = None
    if best is not None:
        try:
            values = information_criteria(best, X, weights)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as failure:
            error = failure
    if values is None:
        row = SelectionRow(k, covariance_type, None, n_parameters, None, None, None, False, str(error))
        return row, None
    row = SelectionRow(k, covariance_type, converged=bool(best.converged_), degenerate=bool(best.degenerate_),
                       **values)
    return row, best


def _check_criterion(criterion: Any) -> str:
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; valid values are: " + ", ".join(map(repr, CRITERIA)))
    return criterion


def _check_n_components(n_components: Any) -> list[int]:
    values = [n_components] if isinstance(n_components, numbers.Integral) else list(n_components)
    if not values:
        raise ValueError("n_components is empty: give at least one number of components")
    for value in values:
        checks.check_param("n_components", value, numbers.Integral, 1)
    return list(dict.fromkeys(int(v) for v in values))


def _check_covariance_types(covariance_types: Any, n_features: Optional[int] = None,
                            with_prior: bool = False) -> list[str]:
    """Distinct structures named by ``covariance_types``, in order (``"all"`` may stand among names).

    On one feature the structures coincide in mclust's two univariate models:
    ``"all"`` is ``["E", "V"]`` and names of one model are one entry. ``with_prior``:
    ``"all"`` is the structures that take a prior, and naming another is an error.
    """
    if isinstance(covariance_types, str):
        covariance_types = [covariance_types]
    names = list(covariance_types)
    if not names:
        raise ValueError("covariance_types is empty: give at least one name, or 'all'")
    univariate = n_features == 1
    everything = list(UNIVARIATE_TYPES) if univariate else canonical_covariance_types()
    if with_prior:
        everything = [name for name in everything if priors.terms_of(get_covariance_model(name)) is not None]
    expanded = [each for name in names for each in (everything if name == "all" else [name])]
    # Two spellings of one structure ("full", "VVV") are one column.
    unique: dict[Any, str] = {}
    for name in expanded:
        model = get_covariance_model(name)
        if with_prior:
            priors.check_supported(model)
        unique.setdefault(_univariate_model(name) if univariate else id(model), name)
    return list(unique.values())


def _univariate_model(name: str) -> str:
    """mclust's univariate model ("E" or "V") that a structure is on one feature."""
    if name in UNIVARIATE_TYPES:
        return name
    # One feature has no shape or orientation: only the volume (E or V) is left.
    mclust = MCLUST_NAMES.get(name, name)
    return mclust[0] if mclust[0] in "EV" else "V"


def _cell_seeds(random_state: Any, n_cells: int) -> list:
    if isinstance(random_state, np.random.RandomState):
        return [int(seed) for seed in random_state.randint(np.iinfo(np.int32).max, size=n_cells)]
    if random_state is not None and not isinstance(random_state, numbers.Integral):
        check_random_state(random_state)  # raises the usual error for anything else
    return [random_state] * n_cells
