"""Rows checked for a fit or an inference: shape, dtype, finiteness, device."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from sklearn.utils.validation import validate_data

from .backends import device as _device
from . import _validation as checks
from . import missing as incomplete


def validate_rows(model: Any, X: Any, *, reset: bool, missing: Optional[str] = None) -> Any:
    """Checked rows of shape (n, D), in the namespace and on the device EM / inference will run on.

    ``reset`` (a fit) records ``n_features_in_`` (and ``feature_names_in_``) on the
    estimator ``model``; otherwise the rows are checked against them.

    ``missing``: None refuses NaN; ``"error"`` too, with a message naming the
    ``missing`` option; ``"marginalize"`` lets rows with NaN through, NumPy or
    tensors (checked by :func:`gaussmix.missing.check_incomplete_rows`).
    """
    device = _device.resolve_device(model.device)
    if _device.is_device_array(X):
        if device is not None:
            X = _device.move_rows(X, device)
        X = checks.check_array_api_rows(
            X,
            expected_features=None if reset else model.n_features_in_,
            ensure_min_samples=2 if reset else 1,
            estimator=type(model).__name__,
        )
        if reset:
            model.n_features_in_ = int(X.shape[1])
            model.__dict__.pop("feature_names_in_", None)
    else:
        X = validate_data(
            model,
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
    checks.check_all_finite(X, nan_hint=nan_hint(missing))
    return X


def nan_hint(missing: Optional[str]) -> Optional[str]:
    """What the NaN error adds for the ``missing`` setting in force (None: nothing)."""
    if missing == "error":
        return checks.MISSING_HINT
    return None
