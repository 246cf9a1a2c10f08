"""Filling the missing entries of rows from a fitted mixture."""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .backends import device as _device
from . import _validation as checks
from . import missing as incomplete
from .data import is_out_of_core
from .noise import refuse as refuse_noise
from .rows import validate_rows


class ImputeMixin:
    """``impute`` of :class:`gaussmix.GaussianMixture` (see :mod:`gaussmix.missing`)."""

    def impute(self, X: Any, n_draws: Optional[int] = None, random_state: Any = None) -> np.ndarray:
        """Fill the missing (NaN) entries of ``X`` from the fitted mixture.

        Works whatever the ``missing`` setting the model was fitted with. Not
        in scikit-learn.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing entry; no row may be entirely missing.
        n_draws : int, optional
            None: each gap gets ``E[x_m | x_o]`` under the mixture, the
            responsibility-weighted conditional means of the components (one
            imputation; it may lie between modes). An int: multiple
            imputation, that many draws from ``p(x_m | x_o)`` per row (a
            component drawn from the row's responsibilities, then a draw from
            that component's conditional Gaussian).
        random_state : int, RandomState instance or None
            Seeds the draws.

        Returns
        -------
        ndarray of shape (n_samples, n_features), or (n_draws, n_samples, n_features)
            Observed entries unchanged.

        Raises
        ------
        ValueError
            For infinite entries, rows with every entry missing, or input
            that is not a NumPy array (torch tensors are not supported).
        """
        if n_draws is not None:
            checks.check_param("n_draws", n_draws, numbers.Integral, 1)
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        if _device.is_device_array(X) or is_out_of_core(X):
            raise ValueError("impute takes a NumPy array (or array-like) in memory; convert X first")
        X = validate_rows(self, X, reset=False, missing="marginalize")
        params = self._fitted_params(X.dtype)
        refuse_noise(params, "impute")
        return incomplete.impute(X, params, None if n_draws is None else int(n_draws),
                                 random_state)
