"""Checks on user input that turn mistakes into messages saying what to do."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import array_api_compat
import numpy as np
from sklearn.exceptions import DataConversionWarning

from .backends import asarray_like, get_namespace, to_numpy
from .exceptions import RepeatedRowsWarning

#: rows per block when summing the cross-products of the columns (bounds the float64 copy)
_GRAM_BLOCK_ROWS = 65536
#: largest relative singular value taken as an exact linear dependence whatever the rounding
_MAX_DEPENDENCE_TOLERANCE = 1e-3


#: rows a message names before "..."
SHOWN_ROWS = 5
#: what a NaN error of GaussianMixture's input adds: the other way out (gaussmix.missing)
MISSING_HINT = ('or pass missing="marginalize" to GaussianMixture to fit and predict on the observed entries '
                "of incomplete rows")
#: what a NaN error adds under missing="marginalize" (rows with nothing observed)
MARGINALIZE_HINT = ('under missing="marginalize" NaN entries are missing values, but a row with every entry '
                    "missing carries no information: drop those rows")


@dataclass(frozen=True)
class NonFiniteEntries:
    """The NaN and infinite entries of some rows: how many, and where.

    Records of separate chunks merge (in any order) into the record of their
    union, so a pass over a chunked file reports every bad row of the file, as
    the check of an in-memory array does.

    Attributes
    ----------
    counts : tuple of int
        NaN values, infinite values.
    n_rows : tuple of int
        Rows holding a NaN, rows holding an infinity.
    rows : tuple of tuple of int
        The first :data:`SHOWN_ROWS` global row numbers of each kind, ascending.
    """

    counts: tuple[int, int]
    n_rows: tuple[int, int]
    rows: tuple[tuple[int, ...], tuple[int, ...]]

    @classmethod
    def of(cls, X: Any, first_row: int = 0, nan_is_missing: bool = False) -> Optional["NonFiniteEntries"]:
        """The record of ``X`` (rows numbered from ``first_row``), or None if all is finite.

        ``X`` of shape (n,) or (n, D) may live on a device: only a failed check
        copies it to the host. ``nan_is_missing`` (``missing="marginalize"``):
        NaN are missing values, and only rows (n, D) with every entry NaN count.
        """
        xp = get_namespace(X)
        # A sum is finite when every entry is (no N-sized mask for the common case);
        # a sum that overflows only sends finite data to the exact check below.
        if bool(xp.isfinite(xp.sum(X))) or bool(xp.all(xp.isfinite(X))):
            return None
        X = to_numpy(X)
        masks = (np.isnan(X), np.isinf(X))
        if nan_is_missing and X.ndim == 2:
            masks = (masks[0] & masks[0].all(axis=1, keepdims=True), masks[1])
            if not (masks[0].any() or masks[1].any()):
                return None
        bad_rows = [np.flatnonzero(mask.any(axis=1) if mask.ndim == 2 else mask) for mask in masks]
        return cls(
            tuple(int(mask.sum()) for mask in masks),
            tuple(int(rows.size) for rows in bad_rows),
            tuple(tuple(int(r) + first_row for r in rows[:SHOWN_ROWS]) for rows in bad_rows),
        )

    def merge(self, other: "NonFiniteEntries") -> "NonFiniteEntries":
        return NonFiniteEntries(
            tuple(a + b for a, b in zip(self.counts, other.counts)),
            tuple(a + b for a, b in zip(self.n_rows, other.n_rows)),
            tuple(tuple(sorted(a + b)[:SHOWN_ROWS]) for a, b in zip(self.rows, other.rows)),
        )

    def error(self, name: str = "X", nan_hint: Optional[str] = None) -> ValueError:
        """The error to raise: counts and rows of each kind, and what to do.

        ``nan_hint`` (a clause) is added when NaN values were found: another way out for them.
        """
        problems = []
        for label, count, n_rows, rows in zip(("NaN", "infinite (inf)"), self.counts, self.n_rows, self.rows):
            if count:
                shown = ", ".join(str(r) for r in rows) + (", ..." if n_rows > len(rows) else "")
                problems.append(f"{count} {label} value(s) in row(s) {shown} (0-based)")
        return ValueError(
            f"Input {name} contains " + " and ".join(problems)
            + ". Remove or impute those rows before calling gaussmix"
            + (f", {nan_hint}." if nan_hint and self.counts[0] else ".")
        )


def merge_non_finite(
    first: Optional[NonFiniteEntries], second: Optional[NonFiniteEntries]
) -> Optional[NonFiniteEntries]:
    """The union of two records, either of which may be None (nothing found)."""
    if first is None or second is None:
        return first if second is None else second
    return first.merge(second)


def _row_list(rows: np.ndarray, limit: int = SHOWN_ROWS, first_row: int = 0) -> str:
    shown = ", ".join(str(int(r) + first_row) for r in rows[:limit])
    return shown + (", ..." if rows.size > limit else "")


def check_all_finite(X: Any, name: str = "X", first_row: int = 0, nan_hint: Optional[str] = None) -> None:
    """Raise a ValueError counting the NaN and infinite entries of ``X`` and naming their rows.

    ``first_row`` is the global number of ``X``'s first row when ``X`` is one
    chunk of a larger source, so the message names rows of the whole data.
    ``nan_hint``: a clause the message adds when NaN values were found.
    ``X`` may live on a device: only a failed check copies it to the host, to
    word the message.
    """
    entries = NonFiniteEntries.of(X, first_row)
    if entries is not None:
        raise entries.error(name, nan_hint)


def check_sample_weight(sample_weight: Any, n_samples: int, like: Any, *, unit_mean: bool = False) -> Optional[Any]:
    """Validate frequency weights: shape (n,), finite, non-negative, not all zero.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,), number or None
    n_samples : int
    like : array
        The validated rows: the weights are returned in its namespace, device and dtype.
    unit_mean : bool, default=False
        Return the weights scaled to mean one (see :func:`unit_mean_weights`),
        scaled before they take ``like``'s dtype, so that float32 neither
        underflows nor overflows them.

    Returns
    -------
    weights : array of shape (n_samples,) or None
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight)
    if not array_api_compat.is_array_api_obj(sample_weight):
        sample_weight = np.asarray(sample_weight)
    shape = tuple(sample_weight.shape)
    if len(shape) != 1 or shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), one weight per row of X; "
            f"got shape {shape}"
        )
    if not get_namespace(sample_weight).isdtype(sample_weight.dtype, ("real floating", "integral")):
        raise ValueError(f"sample_weight must be real numbers; got dtype {sample_weight.dtype}")
    if unit_mean:
        sample_weight = _checked_unit_mean(sample_weight)
    weights = asarray_like(sample_weight, like)
    check_chunk_weights(weights, first_row=0)
    if not bool(get_namespace(weights).sum(weights) > 0):
        raise ValueError("sample_weight sums to zero: at least one row needs a positive weight")
    return weights


def _checked_unit_mean(sample_weight: Any) -> Any:
    """Checked weights of shape (n,) scaled to mean one, in their own floating precision."""
    xp = get_namespace(sample_weight)
    if array_api_compat.is_numpy_array(sample_weight) or not xp.isdtype(sample_weight.dtype, "real floating"):
        sample_weight = xp.astype(sample_weight, xp.float64)
    elif _is_half(xp, sample_weight.dtype):
        sample_weight = xp.astype(sample_weight, xp.float32)
    check_chunk_weights(sample_weight, first_row=0)
    if not bool(xp.max(sample_weight) > 0):
        raise ValueError("sample_weight sums to zero: at least one row needs a positive weight")
    return unit_mean_weights(sample_weight)


def unit_mean_weights(weights: Any) -> Any:
    """Frequency weights of shape (n,) scaled to mean one.

    Only the weights' ratios say anything (multiplying all of them by a
    constant must change no fit), but the M-step's floor
    (:data:`~gaussmix.stats.WEIGHT_FLOOR`, 10 eps of a row) and the initialisers
    see absolute weights: scaled to mean one, the floor is relative to the
    total weight, and unit weights are returned unchanged to the bit.

    Parameters
    ----------
    weights : array of shape (n,)
        Finite, non-negative, with a positive maximum.

    Returns
    -------
    array of shape (n,)
    """
    xp = get_namespace(weights)
    # Dividing by the largest first keeps the sum at least one and at most n,
    # so neither 1e-300 nor 1e300 weights overflow or underflow it.
    relative = weights / xp.max(weights)
    return relative * (weights.shape[0] / xp.sum(relative))


def check_chunk_weights(weights: Any, first_row: int) -> None:
    """Finite, non-negative weights of one chunk whose first row is ``first_row``."""
    check_all_finite(weights, "sample_weight", first_row)
    xp = get_namespace(weights)
    if bool(xp.any(weights < 0)):
        negative = np.flatnonzero(to_numpy(weights) < 0)
        raise ValueError(
            f"sample_weight must be non-negative; {negative.size} negative value(s) at "
            f"row(s) {_row_list(negative, first_row=first_row)}"
        )


def _is_half(xp: Any, dtype: Any) -> bool:
    """Whether ``dtype`` is a floating type of fewer than 32 bits (float16, bfloat16)."""
    return int(xp.finfo(dtype).bits) < 32


def _half_as_float32(xp: Any, X: Any, estimator: str) -> Any:
    """``X`` (n, D) of a half type as float32, with a warning saying so.

    EM's sums and Cholesky factors need more than half precision's 3 digits
    (the libraries' linear algebra has no half kernels at all): fit, predict
    and score alike compute in float32.
    """
    warnings.warn(
        f"{estimator} got {X.dtype} data and computes in float32: half-precision types "
        "have too few digits for EM. Pass float32 data to avoid the copy.",
        DataConversionWarning,
        stacklevel=4,
    )
    return xp.astype(X, xp.float32)


def check_array_api_rows(X: Any, *, expected_features: Optional[int], ensure_min_samples: int, estimator: str) -> Any:
    """Validate a 2-D array of another library (a torch tensor) where it lives.

    The checks and messages mirror scikit-learn's ``validate_data`` for NumPy
    input; nothing is copied off the device. Integer and boolean input becomes
    float64, as scikit-learn does.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    expected_features : int or None
        ``n_features_in_`` of a fitted estimator; None when fitting.
    ensure_min_samples : int
    estimator : str
        Class name, for the messages.

    Returns
    -------
    X : array of shape (n_samples, n_features), floating
    """
    xp = get_namespace(X)
    if X.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {X.ndim}D array instead. Reshape your data either using "
            "X.reshape(-1, 1) if your data has a single feature or X.reshape(1, -1) if it "
            "contains a single sample."
        )
    if xp.isdtype(X.dtype, "complex floating"):
        raise ValueError(f"Complex data not supported; got dtype {X.dtype}")
    if not xp.isdtype(X.dtype, "real floating"):
        X = xp.astype(X, xp.float64)
    elif _is_half(xp, X.dtype):
        X = _half_as_float32(xp, X, estimator)
    n_samples, n_features = (int(n) for n in X.shape)
    if n_samples < ensure_min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={tuple(X.shape)}) while a minimum of "
            f"{ensure_min_samples} is required by {estimator}."
        )
    if n_features < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is "
            f"required by {estimator}."
        )
    if expected_features is not None and n_features != expected_features:
        raise ValueError(
            f"X has {n_features} features, but {estimator} is expecting {expected_features} "
            "features as input."
        )
    return X


def check_param(name: str, value: Any, kind: type | tuple, low: float, *, low_open: bool = False) -> None:
    """Check a numeric hyper-parameter's type and lower bound."""
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{name} must be {_kind_name(kind)}; got {value!r}")
    if value < low or (low_open and value == low):
        relation = ">" if low_open else ">="
        raise ValueError(f"{name} must be {relation} {low}; got {value!r}")


def _kind_name(kind: type | tuple) -> str:
    return "an integer" if kind is numbers.Integral else "a real number"



def check_weights_init(weights: Any, n_components: int, dtype: np.dtype) -> np.ndarray:
    weights = _as_float_array(weights, "weights_init", (n_components,), dtype)
    if (weights < 0).any() or (weights > 1).any():
        raise ValueError(
            "weights_init must lie in [0, 1]; got min "
            f"{weights.min():.5g}, max {weights.max():.5g}"
        )
    if not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6 if dtype == np.float32 else 1e-8):
        raise ValueError(
            f"weights_init must sum to one; got sum(weights_init) = {weights.sum():.8g}. "
            "Divide it by its sum."
        )
    return weights


def check_means_init(means: Any, n_components: int, n_features: int, dtype: np.dtype) -> np.ndarray:
    return _as_float_array(means, "means_init", (n_components, n_features), dtype)


def check_precisions_init(precisions: Any, covariance: Any, n_components: int, n_features: int, dtype: np.dtype) -> np.ndarray:
    """Validate user precisions in ``covariance``'s layout: shape, symmetry, positive definiteness."""
    shape = covariance.parameter_shape(n_components, n_features)
    precisions = _as_float_array(precisions, "precisions_init", shape, dtype)
    matrices = np.asarray(covariance.dense(precisions, n_components, n_features))
    for index, matrix in enumerate(matrices):
        if not np.allclose(matrix, matrix.T, rtol=1e-7, atol=0):
            raise ValueError(f"precisions_init must be symmetric; matrix {index} is not")
        if not np.linalg.eigvalsh(matrix).min() > 0:
            raise ValueError(
                f"precisions_init must be positive definite; matrix {index} is not"
            )
    return precisions


def _as_float_array(values: Any, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array of shape {shape}: {error}") from None
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {array.shape}")
    check_all_finite(array.reshape(array.shape[0] if array.ndim else 1, -1), name)
    return array


def check_data_for_mixture(
    X: Any, feature_names: Optional[Sequence[str]] = None, sample_weight: Optional[Any] = None, stacklevel: int = 2
) -> None:
    """Refuse data no Gaussian mixture can describe; warn about rows repeated often.

    A constant column has no variance to fit, and a column that is an exact
    linear function of others leaves every covariance singular: both make
    the criteria of every fit meaningless, so they raise. A row repeated more
    often than there are features lets a component sit on its copies with no
    spread: that is a :class:`~gaussmix.exceptions.RepeatedRowsWarning`.
    Rows of zero weight are left out; with weights a row's copies are counted
    in units of the mean weight (scaling every weight changes no fit).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite rows (after :func:`check_all_finite`).
    feature_names : sequence of str, optional
        Column names for the messages (default: 0-based column numbers).
    sample_weight : ndarray of shape (n_samples,), optional
        Validated frequency weights.
    stacklevel : int
        Of the warning, as for :func:`warnings.warn`, counted from the caller.

    Raises
    ------
    ValueError
        Naming a constant column, or the columns of an exact linear dependence.
    """
    X = to_numpy(X)
    weights = None if sample_weight is None else np.asarray(to_numpy(sample_weight), dtype=np.float64)
    if weights is not None and not bool(np.all(weights > 0)):
        X, weights = X[weights > 0], weights[weights > 0]
    if X.shape[0] < 2:
        return  # one row is every problem at once; the caller's row count check says so
    labels = [str(j) for j in range(X.shape[1])] if feature_names is None else [repr(str(n)) for n in feature_names]
    try:
        _check_constant_columns(X, labels)
        if X.shape[0] > X.shape[1]:  # fewer rows always span fewer dimensions than columns
            _check_linear_dependence(X, labels)
    except ValueError as error:
        if feature_names is not None:
            raise
        raise ValueError(f"{error} (columns numbered from 0)") from None
    _warn_repeated_rows(X, weights, stacklevel + 1)


def _check_constant_columns(X: np.ndarray, labels: list[str]) -> None:
    constant = np.flatnonzero(np.all(X == X[:1], axis=0))
    if constant.size:
        which = ", ".join(labels[j] for j in constant)
        noun = "column" if constant.size == 1 else "columns"
        raise ValueError(
            f"{noun} {which} {'is' if constant.size == 1 else 'are'} constant (every row holds the same value, "
            f"e.g. {X[0, constant[0]]:.6g}): a Gaussian cannot fit zero variance; drop {'it' if constant.size == 1 else 'them'}"
        )


def _check_linear_dependence(X: np.ndarray, labels: list[str]) -> None:
    """Raise when some columns are an exact linear function of others (to rounding)."""
    correlation, means, norms = _column_correlation(X)
    values, vectors = np.linalg.eigh(correlation)
    # Rounding of the data (relative to each column's spread, not its size) and of
    # the float64 sums sets how small a singular value an exact dependence leaves.
    spread_ratio = float(np.max(np.max(np.abs(X), axis=0) / (norms / np.sqrt(X.shape[0]))))
    tolerance = min(max(10 * np.finfo(X.dtype).eps * spread_ratio, 1e-6), _MAX_DEPENDENCE_TOLERANCE)
    null = vectors[:, values <= tolerance**2 * values[-1]]
    if null.shape[1] == 0:
        return
    involved = np.flatnonzero(np.linalg.norm(null, axis=1) > 0.05)
    if null.shape[1] == 1 and involved.size == 2:
        raise ValueError(_copy_message(X, labels, involved, correlation, means, norms))
    which = ", ".join(labels[j] for j in involved)
    raise ValueError(
        f"columns {which} are linearly dependent: the data span only {X.shape[1] - null.shape[1]} of their "
        f"{X.shape[1]} dimensions, so every covariance would be singular; drop {null.shape[1]} of those columns"
    )


def _column_correlation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlation matrix, means and centred norms of the columns, summed in float64 by blocks."""
    means = X.mean(axis=0, dtype=np.float64)
    gram = np.zeros((X.shape[1], X.shape[1]))
    for start in range(0, X.shape[0], _GRAM_BLOCK_ROWS):
        centred = X[start:start + _GRAM_BLOCK_ROWS].astype(np.float64) - means
        gram += centred.T @ centred
    norms = np.sqrt(np.diag(gram))
    return gram / np.outer(norms, norms), means, norms


def _copy_message(X: np.ndarray, labels: list[str], pair: np.ndarray, correlation: np.ndarray,
                  means: np.ndarray, norms: np.ndarray) -> str:
    first, second = (int(j) for j in pair)
    if np.array_equal(X[:, first], X[:, second]):
        return f"column {labels[second]} duplicates column {labels[first]}: drop one of them"
    slope = correlation[first, second] * norms[second] / norms[first]
    intercept = means[second] - slope * means[first]
    return (
        f"column {labels[second]} is a linear copy of column {labels[first]} "
        f"({labels[second]} = {slope:.6g} * {labels[first]} + {intercept:.6g}): "
        "every covariance would be singular; drop one of them"
    )


#: share of the rows that copies of one row must exceed for RepeatedRowsWarning
REPEATED_ROW_SHARE = 0.05


def _warn_repeated_rows(X: np.ndarray, weights: Optional[np.ndarray], stacklevel: int) -> None:
    """Warn when some row has more copies (in units of the mean weight) than X has features
    and than :data:`REPEATED_ROW_SHARE` of the rows: enough to look like a cluster of its own.
    Fewer copies are ordinary in rounded data (mclust's acidity has rows of 3 copies) and
    their fits, where they do sit on them, are flagged degenerate anyway."""
    n_features = X.shape[1]
    # +0.0 turns -0.0 into 0.0, so that equal rows have equal bytes
    rows = np.ascontiguousarray(X + X.dtype.type(0.0)).view(np.dtype((np.void, X.dtype.itemsize * n_features)))
    _, inverse, counts = np.unique(rows.ravel(), return_inverse=True, return_counts=True)
    copies = counts.astype(np.float64) if weights is None else np.bincount(inverse, weights=weights) / weights.mean()
    often = (copies > n_features) & (copies > REPEATED_ROW_SHARE * np.sum(copies))
    if not often.any():
        return
    repeated, distinct = int(counts[often].sum()), int(often.sum())
    limit = {1: "once", 2: "twice"}.get(n_features, f"{n_features} times")
    units = "" if weights is None else ", counting copies in units of the mean weight"
    warnings.warn(
        RepeatedRowsWarning(
            f"{distinct} distinct row{'s are' if distinct > 1 else ' is'} repeated more than {limit}{units} "
            f"({repeated} of the {X.shape[0]} rows; the most: {copies.max():.4g} copies): with more copies than "
            f"features ({n_features}) a component can sit on one row's copies with no spread, and such fits may "
            "be flagged degenerate"
        ),
        stacklevel=stacklevel,
    )
