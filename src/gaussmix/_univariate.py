"""Distribution function and quantiles of a one-feature Gaussian mixture.

``F(x) = sum_k pi_k Phi((x - mu_k) / sigma_k)`` as mclust's ``cdfMclust``, and
its inverse as ``quantileMclust``, solved for all probabilities at once. The
arithmetic runs on the host in float64 whatever the model's dtype or device:
these are a handful of values, and mclust's numbers are float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from .noise import refuse as refuse_noise

#: bisection stops once the bracket is this narrow relative to max(1, |x|)
QUANTILE_XTOL = 1e-12
#: bisection steps cap: from a bracket of 1e6 standard deviations to 1e-12 takes about 60
_MAX_BISECTIONS = 200


def mixture_cdf(x: np.ndarray, weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """``sum_k weights[k] * Phi((x - means[k]) / sds[k])`` of every value of ``x``.

    Parameters
    ----------
    x : ndarray of float64, any shape
    weights, means, sds : ndarray of float64, shape (K,)

    Returns
    -------
    ndarray of float64, the shape of ``x``
    """
    z = (x[..., None] - means) / sds
    return ndtr(z) @ weights


def _upper_tail(x: np.ndarray, weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """``1 - F(x)`` summed from the components' upper tails (no cancellation near F = 1)."""
    return ndtr((means - x[..., None]) / sds) @ weights


def _density(x: np.ndarray, weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    z = (x[..., None] - means) / sds
    return (np.exp(-0.5 * z * z) / (np.sqrt(2 * np.pi) * sds)) @ weights


def mixture_quantile(p: np.ndarray, weights: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """The ``x`` with ``F(x) = p`` for every value of ``p``; ``-inf`` at 0 and ``inf`` at 1.

    The root lies between the smallest and the largest component quantile
    ``mu_k + sigma_k Phi^-1(p)`` (``F`` is their weighted average of ``Phi_k``,
    each ``p`` at its own quantile), the bracket mclust's ``quantileMclust``
    gives ``uniroot``. Bisection halves every bracket at once until it is
    narrower than ``QUANTILE_XTOL * max(1, |x|)``, then one Newton step,
    kept only when it stays inside the bracket, takes the root to about
    machine precision. For ``p > 1/2`` it solves ``1 - F(x) = 1 - p`` instead:
    ``1 - p`` is exact there, and ``1 - F`` summed from the upper tails keeps
    the digits that ``F`` itself rounds away near 1.

    Parameters
    ----------
    p : ndarray of float64, any shape
        Probabilities in [0, 1] (the caller checks them).
    weights, means, sds : ndarray of float64, shape (K,)

    Returns
    -------
    ndarray of float64, the shape of ``p``
    """
    p = np.asarray(p, dtype=np.float64)
    result = np.where(p <= 0, -np.inf, np.inf)
    inside = (p > 0) & (p < 1)
    if not np.any(inside):
        return result
    target = p[inside]
    upper = target > 0.5
    # g(x) increases with x and is 0 at the root, in whichever tail keeps more digits
    goal = np.where(upper, 1.0 - target, target)

    def g(x: np.ndarray) -> np.ndarray:
        lower_part = mixture_cdf(x, weights, means, sds) - goal
        upper_part = goal - _upper_tail(x, weights, means, sds)
        return np.where(upper, upper_part, lower_part)

    component_quantiles = means + sds * ndtri(target)[:, None]  # (n, K)
    low, high = component_quantiles.min(axis=1), component_quantiles.max(axis=1)
    for _ in range(_MAX_BISECTIONS):
        middle = 0.5 * (low + high)
        if np.all(high - low <= QUANTILE_XTOL * np.maximum(1.0, np.abs(middle))):
            break
        below = g(middle) < 0
        low = np.where(below, middle, low)
        high = np.where(below, high, middle)
    root = 0.5 * (low + high)
    slope = _density(root, weights, means, sds)
    with np.errstate(divide="ignore", invalid="ignore"):
        newton = root - g(root) / slope
    keep = np.isfinite(newton) & (newton >= low) & (newton <= high)
    result[inside] = np.where(keep, newton, root)
    return result


def as_float_values(values: Any, name: str) -> np.ndarray:
    """``values`` (a number, sequence, NumPy array or tensor) as a float64 host array.

    Raises
    ------
    ValueError
        If they are not numbers.
    """
    if hasattr(values, "detach"):  # a torch tensor, possibly on a GPU
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers (a number or an array of them), got {values!r:.80}") from None
    return array


class UnivariateMixin:
    """``cdf`` and ``quantile`` of a fitted one-feature :class:`gaussmix.GaussianMixture`."""

    def _univariate(self, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights, means and standard deviations (each shape (K,), float64 on the host) of a 1-D mixture.

        Raises
        ------
        ValueError
            If the model has more than one feature.
        """
        params = self._fitted_params(np.float64)
        refuse_noise(params, method)
        if params.n_features != 1:
            raise ValueError(
                f"{method} needs a mixture of one feature, but this model has {params.n_features} features: "
                "fit a GaussianMixture on the one column you want the distribution of (a marginal of a "
                "multi-feature model is not available yet)"
            )
        # every structure is a variance per component in 1-D; the dense stack spells it out
        variances = params.dense_covariances()[:, 0, 0]
        return params.weights, params.means[:, 0], np.sqrt(variances)

    def cdf(self, x: Any) -> Any:
        """Distribution function ``F(x) = sum_k pi_k Phi((x - mu_k) / sigma_k)`` of a 1-D mixture.

        mclust's ``cdfMclust``, at the values given (mclust sorts them; this
        keeps their order and shape). Not in scikit-learn.

        Parameters
        ----------
        x : float or array-like of any shape
            Values of the one feature; ``-inf`` and ``inf`` give 0 and 1.

        Returns
        -------
        float or ndarray of float64 of the shape of ``x``
            A float for a scalar ``x``.

        Raises
        ------
        ValueError
            If the model has more than one feature, or ``x`` holds NaN or
            something other than numbers.
        """
        weights, means, sds = self._univariate("cdf")
        values = as_float_values(x, "x")
        if np.any(np.isnan(values)):
            raise ValueError(f"x holds {int(np.sum(np.isnan(values)))} NaN value(s): drop or fill them first")
        result = mixture_cdf(values, weights, means, sds)
        return float(result) if result.ndim == 0 else result

    def quantile(self, p: Any) -> Any:
        """Quantiles of a 1-D mixture: the ``x`` with ``cdf(x) = p``, for every ``p``.

        mclust's ``quantileMclust``: ``-inf`` at ``p = 0`` and ``inf`` at
        ``p = 1`` (where ``quantileMclust`` stops with an error for more than
        one component). Solved for all ``p`` at once by bisection between the
        smallest and largest component quantiles to ``1e-12 * max(1, |x|)``,
        then a Newton step, so the result is about as exact as ``cdf``
        allows; ``quantileMclust`` stops ``uniroot`` at about 1.5e-8. Not in
        scikit-learn.

        Parameters
        ----------
        p : float or array-like of any shape
            Probabilities in [0, 1].

        Returns
        -------
        float or ndarray of float64 of the shape of ``p``
            A float for a scalar ``p``.

        Raises
        ------
        ValueError
            If the model has more than one feature, or a ``p`` is NaN or
            outside [0, 1].
        """
        weights, means, sds = self._univariate("quantile")
        values = as_float_values(p, "p")
        bad = ~((values >= 0) & (values <= 1))  # NaN included
        if np.any(bad):
            raise ValueError(
                f"p must be probabilities in [0, 1]; {int(np.sum(bad))} value(s) are not "
                f"(first: {float(values[bad].flat[0])!r}): for percentages, divide by 100"
            )
        result = mixture_quantile(values, weights, means, sds)
        return float(result) if result.ndim == 0 else result
