"""Checks on user input that turn mistakes into messages saying what to do."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Optional

import array_api_compat
import numpy as np

from .backends import asarray_like, get_namespace, to_numpy


#: rows a message names before "..."
SHOWN_ROWS = 5


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
    def of(cls, X: Any, first_row: int = 0) -> Optional["NonFiniteEntries"]:
        """The record of ``X`` (rows numbered from ``first_row``), or None if all is finite.

        ``X`` of shape (n,) or (n, D) may live on a device: only a failed check
        copies it to the host.
        """
        xp = get_namespace(X)
        # A sum is finite when every entry is (no N-sized mask for the common case);
        # a sum that overflows only sends finite data to the exact check below.
        if bool(xp.isfinite(xp.sum(X))) or bool(xp.all(xp.isfinite(X))):
            return None
        X = to_numpy(X)
        masks = (np.isnan(X), np.isinf(X))
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

    def error(self, name: str = "X") -> ValueError:
        """The error to raise: counts and rows of each kind, and what to do."""
        problems = []
        for label, count, n_rows, rows in zip(("NaN", "infinite (inf)"), self.counts, self.n_rows, self.rows):
            if count:
                shown = ", ".join(str(r) for r in rows) + (", ..." if n_rows > len(rows) else "")
                problems.append(f"{count} {label} value(s) in row(s) {shown} (0-based)")
        return ValueError(
            f"Input {name} contains " + " and ".join(problems)
            + ". Remove or impute those rows before calling gaussmix."
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


def check_all_finite(X: Any, name: str = "X", first_row: int = 0) -> None:
    """Raise a ValueError counting the NaN and infinite entries of ``X`` and naming their rows.

    ``first_row`` is the global number of ``X``'s first row when ``X`` is one
    chunk of a larger source, so the message names rows of the whole data.
    ``X`` may live on a device: only a failed check copies it to the host, to
    word the message.
    """
    entries = NonFiniteEntries.of(X, first_row)
    if entries is not None:
        raise entries.error(name)


def check_sample_weight(sample_weight: Any, n_samples: int, like: Any) -> Optional[Any]:
    """Validate frequency weights: shape (n,), finite, non-negative, not all zero.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,), number or None
    n_samples : int
    like : array
        The validated rows: the weights are returned in its namespace, device and dtype.
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
    weights = asarray_like(sample_weight, like)
    check_chunk_weights(weights, first_row=0)
    if not bool(get_namespace(weights).sum(weights) > 0):
        raise ValueError("sample_weight sums to zero: at least one row needs a positive weight")
    return weights


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
