"""Fitted estimators derived from another one's parameters: marginals and conditionals.

:mod:`gaussmix.conditioning` does the maths on :class:`~gaussmix.params.MixtureParams`
with feature indices; this module is the estimator's side of it: features
named by index or by name (checked, with errors that say what to do), given
values checked, and the resulting parameters wrapped as a fitted
:class:`~gaussmix.estimator.GaussianMixture` that keeps the feature names.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from .backends import asarray_like, get_namespace
from .conditioning import ConditionalMixtures, Conditioner, marginal
from .noise import refuse as refuse_noise
from .params import MixtureParams

if TYPE_CHECKING:
    from .estimator import GaussianMixture


def feature_names(model: Any) -> Optional[list[str]]:
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(n) for n in names]


def resolve_features(features: Any, n_features: int, names: Optional[Sequence[str]], what: str) -> list[int]:
    """Feature indices from an index, a name, or a sequence of them.

    Parameters
    ----------
    features : int, str or sequence of int / str
        Negative indices count from the end, as in NumPy.
    n_features : int
    names : sequence of str or None
        The model's feature names (None: it was fitted without names).
    what : str
        The operation, for messages (``"marginal"``, ``"condition"``).

    Returns
    -------
    list of int
        Distinct indices in ``0..n_features-1``, in the order given.

    Raises
    ------
    ValueError
        For an unknown name, an index out of range, a repeated or an empty selection.
    TypeError
        For something that is neither an index nor a name.
    """
    if isinstance(features, (str, numbers.Integral)):
        features = [features]
    try:
        items = list(features)
    except TypeError:
        raise TypeError(f"{what}: features must be indices or names, or a list of them; got {features!r}") from None
    if not items:
        raise ValueError(f"{what}: no features given; name at least one (by index or name)")
    indices = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise TypeError(f"{what}: feature {item!r} is a bool; give indices or names")
        if isinstance(item, numbers.Integral):
            index = int(item)
            if not -n_features <= index < n_features:
                raise ValueError(
                    f"{what}: feature index {index} is out of range for a model of {n_features} feature(s); "
                    f"use 0..{n_features - 1} (or -{n_features}..-1)"
                )
            indices.append(index % n_features)
        elif isinstance(item, str):
            if names is None:
                raise ValueError(
                    f"{what}: feature {item!r} named, but the model was fitted without feature names "
                    f"(fit it on a DataFrame to have them); use indices 0..{n_features - 1}"
                )
            if item not in names:
                raise ValueError(f"{what}: unknown feature {item!r}; the model's features are: {', '.join(names)}")
            indices.append(names.index(item))
        else:
            raise TypeError(f"{what}: feature {item!r} is neither an index nor a name")
    if len(set(indices)) != len(indices):
        repeated = sorted({items[i] for i, d in enumerate(indices) if indices.count(d) > 1}, key=str)
        raise ValueError(f"{what}: feature(s) {repeated} given more than once; name each feature once")
    return indices


def given_values(features: Any, values: Any, n_given: int) -> np.ndarray:
    """The given values as a float64 array of shape (G,) or (n, G), checked.

    Raises
    ------
    ValueError
        For values of the wrong shape or not finite.
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"condition: the given values {values!r} are not numbers") from None
    if array.ndim == 0 and n_given == 1:
        array = array.reshape(1)
    if array.ndim not in (1, 2) or array.shape[-1] != n_given:
        raise ValueError(
            f"condition: {n_given} feature(s) given ({features!r}) but values of shape {array.shape}; "
            f"give shape ({n_given},) for one case or (n, {n_given}) for n cases, one column per given feature"
        )
    if array.ndim == 2 and array.shape[0] == 0:
        raise ValueError("condition: values has no rows; give at least one case")
    if not np.all(np.isfinite(array)):
        raise ValueError("condition: the given values contain NaN or infinity; give finite values")
    return array


def split_mapping(features: Any, values: Any) -> tuple[Any, Any]:
    """``{"a": 1, "b": 2}`` (values None) -> ``(["a", "b"], [1, 2])``; columns of n values stack."""
    if not isinstance(features, Mapping):
        if values is None:
            raise TypeError("condition: give the values of the given features: condition(features, values)")
        return features, values
    if values is not None:
        raise TypeError("condition: a mapping of features to values carries the values; pass no second argument")
    columns = [np.asarray(v, dtype=np.float64) for v in features.values()]
    if columns and all(c.ndim == 1 for c in columns):
        return list(features), np.column_stack(columns)
    return list(features), np.asarray(columns, dtype=np.float64)


def as_fitted_mixture(source: Any, params: MixtureParams, names: Optional[Sequence[str]]) -> Any:
    """A fitted estimator of ``source``'s class holding ``params``.

    It keeps ``source``'s settings (the covariance type becomes that of
    ``params``; initial arrays, whose shapes no longer fit, are dropped) and
    ``converged_`` / ``n_iter_`` (they describe the fit the parameters come
    from). It was fitted to no data of its own: ``lower_bound_`` is ``-inf``
    and ``lower_bounds_`` empty.
    """
    covariance_type = source.covariance_type if params.covariance is source._fitted_params().covariance \
        else params.covariance.name
    settings = {**source.get_params(deep=False), "covariance_type": covariance_type,
                "weights_init": None, "means_init": None, "precisions_init": None}
    model = type(source)(**settings)
    xp = get_namespace(params.weights)
    # a weight that underflowed to 0 (given values far from a component) would make log(weight) -inf
    # and warn in every prediction; the smallest normal number changes no result
    tiny = float(xp.finfo(params.weights.dtype).smallest_normal)
    weights = xp.where(params.weights > 0, params.weights, xp.zeros_like(params.weights) + tiny)
    model._set_parameters(MixtureParams(weights / xp.sum(weights), params.means, params.covariances,
                                        params.precisions_cholesky, params.covariance))
    model.converged_ = source.converged_
    model.n_iter_ = source.n_iter_
    model.lower_bound_ = -math.inf
    model.lower_bounds_ = []
    model.lower_bounds_per_init_ = []
    model.n_features_in_ = params.n_features
    if names is not None:
        model.feature_names_in_ = np.asarray(list(names), dtype=object)
    return model


def marginal_mixture(model: Any, features: Any) -> Any:
    """See :meth:`gaussmix.GaussianMixture.marginal`."""
    params = model._fitted_params()
    refuse_noise(params, "marginal")
    names = feature_names(model)
    dims = resolve_features(features, params.n_features, names, "marginal")
    return as_fitted_mixture(model, marginal(params, dims), None if names is None else [names[d] for d in dims])


def conditional_mixture(model: Any, features: Any, values: Any) -> Any:
    """See :meth:`gaussmix.GaussianMixture.condition`."""
    features, values = split_mapping(features, values)
    params = model._fitted_params()
    refuse_noise(params, "condition")
    names = feature_names(model)
    given = resolve_features(features, params.n_features, names, "condition")
    array = given_values(features, values, len(given))
    conditioner = Conditioner(params, given)
    free_names = None if names is None else [names[d] for d in conditioner.free]
    batch = conditioner(asarray_like(np.atleast_2d(array), params.means))
    if array.ndim == 2:
        return dataclasses.replace(batch, feature_names=None if free_names is None else tuple(free_names))
    return as_fitted_mixture(model, batch.params(0), free_names)


__all__ = ["ConditionalMixtures", "conditional_mixture", "marginal_mixture", "resolve_features"]


class DerivedMixin:
    """``marginal`` and ``condition`` of a fitted :class:`gaussmix.GaussianMixture`."""

    def marginal(self, features: Any) -> "GaussianMixture":
        """The fitted mixture's marginal over some features, as a fitted ``GaussianMixture``.

        Parameters
        ----------
        features : int, str or sequence of int / str
            The d features to keep, by index or (for models fitted on a
            DataFrame) by name, in the order wanted.

        Returns
        -------
        GaussianMixture
            Fitted, K components over d features (``means_`` of shape (K, d)),
            same weights; its feature names are the kept ones. Its covariance
            type is the structure the marginal satisfies: the same one except
            EVI (-> diag) and EVE, VVE, EEV, VEV, EVV (-> full); see
            :mod:`gaussmix.conditioning`. ``predict``, ``score_samples``,
            ``sample`` and :func:`gaussmix.save` work on it; ``lower_bound_``
            is ``-inf`` (it was fitted to no data of its own).

        Raises
        ------
        ValueError
            For an unknown name, an index out of range, a repeated feature.
        """
        return marginal_mixture(self, features)

    def condition(self, features: Any, values: Any = None) -> Any:
        """The mixture over the other features given the values of ``features``.

        ``p(x_F | x_G = g) = sum_k w_k(g) N(x_F | mu_kF + B_k (g - mu_kG), S_k)``
        with ``w_k(g)`` proportional to ``pi_k N(g | mu_kG, Sigma_kGG)``: the
        components are re-weighted by how well each explains the given values.

        Parameters
        ----------
        features : int, str, sequence of int / str, or mapping
            The G given features, by index or name. A mapping
            ``{feature: value}`` carries the values too (then omit ``values``).
        values : array-like of shape (G,) or (n, G)
            The given values, one column per given feature in the order of
            ``features`` (a scalar for one feature). With n rows, the n
            conditionals are computed together (a few matrix products, no loop
            over the rows).

        Returns
        -------
        GaussianMixture
            For values of shape (G,): a fitted mixture with K components over
            the D - G other features (in their original order, names kept).
            Its covariance type: the same structure except EVI (-> diag) and
            EVE, VVE, EEV, VEV, EVV (-> full) (see :mod:`gaussmix.conditioning`);
            for diag/spherical structures the given features simply drop out.
        ConditionalMixtures
            For values of shape (n, G): weights (n, K), means (n, K, D - G)
            and the shared covariances as arrays, with ``mean()`` (n, D - G),
            ``std()``, ``covariance_matrix()`` (n, D - G, D - G), ``sample``,
            ``log_prob`` and ``params(i)``. For a fitted mixture of case i, call
            ``condition(features, values[i])``.

        Raises
        ------
        ValueError
            For an unknown name, an index out of range, a repeated feature,
            values of the wrong shape or not finite, or all features given.
        """
        return conditional_mixture(self, features, values)
