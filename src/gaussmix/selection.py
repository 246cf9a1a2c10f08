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
from .covariance import canonical_covariance_types, get_covariance_model
from .estimator import GaussianMixture
from .hierarchical import HierarchicalTree, draws_subset
from ._threads import one_thread

CRITERIA = ("bic", "aic", "icl")
#: k-means++ starts per cell besides the hierarchical one, unless ``n_init`` says otherwise
ROBUST_KMEANS_STARTS = 3
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
        Lower is better.
    converged : bool
    error : str or None
        The message of the exception that stopped this fit.
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

    @property
    def ok(self) -> bool:
        """Whether this fit succeeded."""
        return self.error is None

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
        The successful row with the lowest criterion (ties: fewer parameters).
    best_estimator_ : GaussianMixture
        The fitted model of ``best``.
    estimators_ : dict
        ``(n_components, covariance_type) -> GaussianMixture`` for every
        successful fit.
    """

    def __init__(self, rows: Iterable[SelectionRow], estimators: dict, criterion: str) -> None:
        self.rows = tuple(rows)
        self.criterion = criterion
        self.estimators_ = dict(estimators)
        succeeded = [row for row in self.rows if row.ok]
        if not succeeded:
            reasons = "; ".join(
                f"K={row.n_components} {row.covariance_type}: {row.error}" for row in self.rows[:3]
            )
            raise ValueError(f"every fit of the selection grid failed ({reasons})")
        self.best = min(succeeded, key=lambda row: (row.criterion(criterion), row.n_parameters))
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
        """Plain-Python (JSON-serialisable) form: criterion, best row and all rows."""
        return {
            "criterion": self.criterion,
            "lower_is_better": True,
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
        structures fit a terminal better as rows). Failed fits show as
        ``failed``; the chosen cell is starred.
        """
        criterion = _check_criterion(criterion or self.criterion)
        types, ks = self.covariance_types, self.n_components
        cells = {(row.n_components, row.covariance_type): row for row in self.rows}
        by_type = len(types) > len(ks)
        row_keys, column_keys = (types, ks) if by_type else (ks, types)
        corner = "covariance" if by_type else "K"
        label_width = max(len(corner), *(len(str(key)) for key in row_keys))
        width = max(10, *(len(str(key)) + 1 for key in column_keys))
        heading = f"{corner:>{label_width}}" + "".join(
            f"{('K=' + str(key)) if by_type else key:>{width}}" for key in column_keys)
        lines = [f"{criterion.upper()} (lower is better)", heading]
        for row_key in row_keys:
            line = f"{row_key:>{label_width}}"
            for column_key in column_keys:
                row = cells.get((column_key, row_key) if by_type else (row_key, column_key))
                if row is None:
                    text = ""
                elif not row.ok:
                    text = "failed"
                else:
                    text = f"{row.criterion(criterion):.2f}" + ("*" if row is self.best else " ")
                line += f"{text:>{width}}"
            lines.append(line)
        return "\n".join(lines)

    def __repr__(self) -> str:
        best = self.best
        return (
            f"<SelectionResult of {len(self.rows)} fits; best by {self.criterion}: "
            f"K={best.n_components}, covariance_type={best.covariance_type!r}, "
            f"{self.criterion}={best.criterion(self.criterion):.2f}>\n{self.table()}"
        )


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
        name per registered structure (:func:`gaussmix.covariance.canonical_covariance_types`).
    criterion : {"bic", "aic", "icl"}, default="bic"
        Lower is better (scikit-learn's sign). mclust's BIC is ``-bic``.
    n_init : int, optional
        Starts per cell. By default (no ``init_params`` given) each cell keeps
        the best of a hierarchical start (mclust's, ``init_params="hierarchical"``)
        and ``n_init`` k-means++ starts (default 3): k-means alone often ends
        in a poor optimum on elongated clusters and then picks a wrong K. With
        ``init_params`` given, ``n_init`` starts of that kind (default 1).
    random_state : int, RandomState instance or None
        Every cell gets the same seed (an int) so that results do not depend
        on ``n_jobs``; a RandomState draws one seed per cell.
    n_jobs : int or None, default=None
        Cells fitted in parallel by joblib (``None``: one at a time, -1: all cores).
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights: the log-likelihood is ``sum_n w_n log p(x_n)`` and
        the criteria use ``n = sum_n w_n``.
    progress : callable, optional
        Called with each :class:`SelectionRow` as its fit finishes.
    **estimator_params
        Passed to every :class:`GaussianMixture` (``tol``, ``max_iter``,
        ``reg_covar``, ``init_params``, ``callback``, ``verbose``...).
        ``callback`` and ``verbose`` report from worker processes only when
        ``n_jobs`` is None or 1.

    Returns
    -------
    SelectionResult

    Notes
    -----
    A fit that fails in one cell (a collapsed component, fewer rows than
    components) is recorded in that row's ``error``; ``select`` raises only
    if every cell fails.

    As in mclust, the hierarchical start's merge tree is built once per call
    and cut at every K (:class:`gaussmix.hierarchical.HierarchicalTree`);
    each cell's start is the one ``init_params="hierarchical"`` gives alone.
    """
    criterion = _check_criterion(criterion)
    for reserved in ("n_components", "covariance_type"):
        if reserved in estimator_params:
            raise TypeError(f"select() sets {reserved} itself; pass it as the grid argument instead")
    ks = _check_n_components(n_components)
    types = _check_covariance_types(covariance_types)
    if n_init is not None:
        checks.check_param("n_init", n_init, numbers.Integral, 1)
    starts = _starts(estimator_params, n_init)
    # Validate X once here so that a bad X is one error, not one per cell.
    array = check_array(X, dtype=[np.float64, np.float32], ensure_all_finite=False, ensure_min_samples=2)
    checks.check_all_finite(array)
    weights = checks.check_sample_weight(sample_weight, array.shape[0], array)
    checks.check_data_for_mixture(array, sample_weight=weights, stacklevel=3)

    grid = [(k, covariance_type) for covariance_type in types for k in ks]
    seeds = _cell_seeds(random_state, len(grid))
    starts = _with_shared_tree(starts, array, weights, seeds)
    jobs = (
        delayed(_fit_cell)(X, weights, k, covariance_type, [dict(start, random_state=seed) for start in starts])
        for (k, covariance_type), seed in zip(grid, seeds)
    )
    rows, estimators = [], {}
    for row, model in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
        rows.append(row)
        if model is not None:
            estimators[(row.n_components, row.covariance_type)] = model
        if progress is not None:
            progress(row)
    return SelectionResult(rows, estimators, criterion)


def information_criteria(model: GaussianMixture, X: Any, sample_weight: Optional[np.ndarray] = None) -> dict:
    """Log-likelihood, parameter count, BIC, AIC and ICL of a fitted model on ``X``.

    With frequency weights ``w``: ``log L = sum w_n log p(x_n)``, ``n = sum w_n``
    and the entropy term is weighted too. Without weights the values equal
    ``model.bic(X)``, ``model.aic(X)`` and ``model.icl(X)``.
    """
    log_density = model.score_samples(X)
    entropy_per_row = scipy.special.entr(model.predict_proba(X)).sum(axis=1)
    if sample_weight is None:
        n, log_likelihood, entropy = log_density.shape[0], float(np.sum(log_density)), float(np.sum(entropy_per_row))
    else:
        n = float(np.sum(sample_weight))
        log_likelihood = float(np.dot(sample_weight, log_density))
        entropy = float(np.dot(sample_weight, entropy_per_row))
    n_parameters = model._n_parameters()
    bic = -2 * log_likelihood + n_parameters * math.log(n)
    return {
        "log_likelihood": log_likelihood,
        "n_parameters": n_parameters,
        "bic": bic,
        "aic": -2 * log_likelihood + 2 * n_parameters,
        "icl": bic + 2 * entropy,
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
    drawn beyond ``hierarchical.MAX_ROWS`` rows, so it is shared whenever every
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


def _fit_cell(X: Any, weights: Optional[np.ndarray], k: int, covariance_type: str, starts: list[dict]):
    """Fit one cell from each kind of start; keep the highest log-likelihood.

    A start that fails (e.g. a collapsed component) is skipped; the row records
    an error only when every start fails.
    """
    n_parameters = get_covariance_model(covariance_type).n_parameters(k, np.shape(X)[1])
    # On small data the BLAS and OpenMP threads' start-up and spinning cost far more than the
    # products (25x slower on a busy 2-core machine for Old Faithful); the grid's
    # parallelism comes from n_jobs instead.
    small = np.size(X) < SMALL_DATA_ENTRIES
    best, best_values, error = None, None, None
    for params in starts:
        model = GaussianMixture(n_components=k, covariance_type=covariance_type, **params)
        try:
            with warnings.catch_warnings(), (one_thread() if small else contextlib.nullcontext()):
                # Non-convergence is recorded in the row instead.
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, sample_weight=weights)
            values = information_criteria(model, X, weights)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as failure:
            error = error or failure
            continue
        if isinstance(model.init_params, HierarchicalTree):
            # The cut of the shared tree is exactly this start; the model need not carry the tree.
            model.init_params = "hierarchical"
        if best_values is None or values["log_likelihood"] > best_values["log_likelihood"]:
            best, best_values = model, values
    if best is None:
        row = SelectionRow(k, covariance_type, None, n_parameters, None, None, None, False, str(error))
        return row, None
    return SelectionRow(k, covariance_type, converged=bool(best.converged_), **best_values), best


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


def _check_covariance_types(covariance_types: Any) -> list[str]:
    if isinstance(covariance_types, str):
        covariance_types = canonical_covariance_types() if covariance_types == "all" else [covariance_types]
    names = list(covariance_types)
    if not names:
        raise ValueError("covariance_types is empty: give at least one name, or 'all'")
    # Two spellings of one structure ("full", "VVV") are one column.
    unique: dict[int, str] = {}
    for name in names:
        unique.setdefault(id(get_covariance_model(name)), name)
    return list(unique.values())


def _cell_seeds(random_state: Any, n_cells: int) -> list:
    if isinstance(random_state, np.random.RandomState):
        return [int(seed) for seed in random_state.randint(np.iinfo(np.int32).max, size=n_cells)]
    if random_state is not None and not isinstance(random_state, numbers.Integral):
        check_random_state(random_state)  # raises the usual error for anything else
    return [random_state] * n_cells
