"""Checks on user input that turn mistakes into messages saying what to do."""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np


def _row_list(rows: np.ndarray, limit: int = 5, first_row: int = 0) -> str:
    shown = ", ".join(str(int(r) + first_row) for r in rows[:limit])
    return shown + (", ..." if rows.size > limit else "")


def check_all_finite(X: np.ndarray, name: str = "X", first_row: int = 0) -> None:
    """Raise a ValueError counting the NaN and infinite entries of ``X`` and naming their rows.

    ``first_row`` is the global number of ``X``'s first row when ``X`` is one
    chunk of a larger source, so the message names rows of the whole data.
    """
    # A sum is finite when every entry is (no N-sized mask for the common case);
    # a sum that overflows only sends finite data to the exact check below.
    if np.isfinite(np.sum(X)) or np.isfinite(X).all():
        return
    problems = []
    for label, mask in (("NaN", np.isnan(X)), ("infinite (inf)", np.isinf(X))):
        count = int(mask.sum())
        if count:
            rows = np.flatnonzero(mask.any(axis=1) if mask.ndim == 2 else mask)
            problems.append(f"{count} {label} value(s) in row(s) {_row_list(rows, first_row=first_row)} (0-based)")
    raise ValueError(
        f"Input {name} contains " + " and ".join(problems)
        + ". Remove or impute those rows before calling gaussmix."
    )


def check_sample_weight(sample_weight: Any, n_samples: int, dtype: np.dtype) -> Optional[np.ndarray]:
    """Validate frequency weights: shape (n,), finite, non-negative, not all zero."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight)
    weights = np.asarray(sample_weight)
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), one weight per row of X; "
            f"got shape {weights.shape}"
        )
    if not np.issubdtype(weights.dtype, np.number) or np.issubdtype(weights.dtype, np.complexfloating):
        raise ValueError(f"sample_weight must be real numbers; got dtype {weights.dtype}")
    weights = weights.astype(dtype, copy=False)
    check_chunk_weights(weights, first_row=0)
    if not weights.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one row needs a positive weight")
    return weights


def check_chunk_weights(weights: np.ndarray, first_row: int) -> None:
    """Finite, non-negative weights of one chunk whose first row is ``first_row``."""
    check_all_finite(weights, "sample_weight", first_row)
    negative = np.flatnonzero(weights < 0)
    if negative.size:
        raise ValueError(
            f"sample_weight must be non-negative; {negative.size} negative value(s) at "
            f"row(s) {_row_list(negative, first_row=first_row)}"
        )


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
