"""Expanded log-densities in any array namespace: what the portable engine multiplies.

For each precision layout a :class:`Form` holds, on the rows' device, the
coefficients that turn a block of rows into every component's weighted
log-density with matrix products, and turns the summed moments back into
:class:`~gaussmix.stats.SuffStats` scatters:

- ``diag``: ``log pi_k N(x | k) = [x^2, x] @ [-P_k / 2, P_k mu_k]^T + c_k``;
- ``spherical``: the same with ``[|x|^2, x]``;
- ``tied``: with the shared whitening ``y = x C``, ``[|y|^2, y] @ [-1/2, C^T mu_k]^T + c_k``,
  and the pooled scatter ``sum_n w_n x x^T - sum_k N_k m_k m_k^T``.

Expansions cancel digits as a mean's distance from the frame's origin, in its
component's standard deviations, demands. Whether they keep enough is decided on
host copies of the parameters with the NumPy engines' rules
(:func:`~gaussmix.estep._features.rounding_scale`,
:func:`~gaussmix.estep._kernels.expansion_is_accurate`), once per parameters
(:func:`plan`): a fit then reads the device once an iteration, not once a chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..backends import asarray_like, get_namespace, to_numpy
from . import _kernels as kernels
from ._features import SquaredNorm, Squares, rounding_scale, summing_dtype

#: the layouts a :class:`Form` expands
LAYOUTS = ("diag", "spherical", "tied")


@dataclass(frozen=True)
class Form:
    """One layout's expanded log-densities, on the rows' device.

    Attributes
    ----------
    layout : str
        ``"diag"``, ``"spherical"`` or ``"tied"``.
    coefficients : array of shape (W, K)
        ``features(x) @ coefficients + offsets`` are the weighted log-densities (n, K).
    offsets : array of shape (K,)
    whitening : array of shape (D, D) or None
        ``tied``: the shared factor ``C``; the features are those of ``x C``.
    moments_dtype : dtype of the namespace
        Of the products that sum the moments (float64 where the rows' dtype would
        lose too many digits in ``M2 - N m m^T``).
    """

    layout: str
    coefficients: Any
    offsets: Any
    whitening: Optional[Any]
    moments_dtype: Any

    def features(self, block: Any) -> Any:
        """``[q(x), x]`` (or ``[|y|^2, y]``) of a block of rows (b, D): shape (b, W)."""
        xp = get_namespace(block)
        if self.whitening is not None:
            block = block @ self.whitening
        if self.layout == "diag":
            squares = block * block
        else:
            squares = xp.sum(block * block, axis=1, keepdims=True)
        return xp.concat([squares, block], axis=1)

    def second_moments(self, resp: Any, block: Any, features: Any) -> Any:
        """What the scatter needs from a block, in :attr:`moments_dtype`.

        Parameters
        ----------
        resp : array of shape (b, K)
            Weighted responsibilities.
        block : array of shape (b, D)
            The rows.
        features : array of shape (b, W)

        Returns
        -------
        array of shape (K, W - D) or, ``tied``, (D, D): ``sum_n r_nk q(x_n)`` or
        ``sum_n w_n x_n x_n^T`` (the responsibilities of a row sum to its weight).
        """
        xp = get_namespace(block)
        if self.whitening is None:
            squares = features[:, : features.shape[1] - block.shape[1]]
            return xp.astype(resp, self.moments_dtype).T @ xp.astype(squares, self.moments_dtype)
        rows = xp.astype(block, self.moments_dtype)
        weights = xp.astype(xp.sum(resp, axis=1), self.moments_dtype)
        return (rows * weights[:, None]).T @ rows

    def scatter(self, second: Any, resp_weight: Any, means: Any) -> Any:
        """Scatters about ``means`` (K, D) in the :class:`SuffStats` layout: (K, D),
        (K, 1) traces, or the pooled (1, D, D)."""
        xp = get_namespace(second)
        if self.layout == "tied":
            within = second - (means * resp_weight[:, None]).T @ means
            return (0.5 * (within + within.T))[None, :, :]
        if self.layout == "diag":
            moved = resp_weight[:, None] * means * means
        else:
            moved = resp_weight[:, None] * xp.sum(means * means, axis=1, keepdims=True)
        # rounding may leave a tiny negative where a component has almost no spread
        return xp.clip(second - moved, min=0.0)


def plan(params: Any, X: Any) -> Optional[Form]:
    """The :class:`Form` of ``params`` for rows like ``X`` (about the frame's origin),
    or None where the expansion would lose too many digits.

    Decided once per parameters and rows' dtype (kept on ``params``): the decision
    reads the parameters back to the host.
    """
    key = f"_array_form_{X.dtype}"
    cache = params.__dict__  # frozen dataclass: its fields stay, a derived value may be kept
    if key not in cache:
        cache[key] = _plan(params, X)
    return cache[key]


def _plan(params: Any, X: Any) -> Optional[Form]:
    xp = get_namespace(X)
    layout = params.covariance.layout
    n_features = int(X.shape[1])
    dtype = np.dtype(np.float32) if X.dtype == xp.float32 else np.dtype(np.float64)
    eps = float(np.finfo(dtype).eps)
    factors = to_numpy(params.precisions_cholesky).astype(np.float64)
    means = to_numpy(params.means).astype(np.float64)
    log_weights = to_numpy(params.log_weights()).astype(np.float64)
    constant = kernels.gaussian_constant(n_features)
    if layout == "tied":
        whitened_means = means @ factors
        if not kernels.expansion_is_accurate(whitened_means.astype(dtype)):
            return None
        from .pooled import sums_dtype  # (a NumPy engine's module: imported only here)

        moments = sums_dtype(dtype, factors, means)
        coefficients = np.concatenate([np.full((1, means.shape[0]), -0.5), whitened_means.T], axis=0)
        offsets = -0.5 * np.sum(whitened_means**2, axis=1) + np.log(np.diagonal(factors)).sum()
        whitening = asarray_like(factors, X)
    else:
        model = params.covariance
        precisions = model.feature_precisions(factors, n_features)
        features = SquaredNorm(n_features) if layout == "spherical" else Squares(n_features)
        lost = eps * float(np.max(rounding_scale(features, precisions, means, 1.0 / np.sqrt(precisions))))
        if not lost <= kernels.EXPANSION_TOLERANCE * (1 + n_features):
            return None
        moments = summing_dtype(dtype, lost, n_features)
        linear = features.times(precisions, means)
        coefficients = np.concatenate([features.quadratic_coefficients(precisions), linear], axis=1).T
        offsets = -0.5 * np.sum(linear * means, axis=1) + model.log_det_precision_cholesky(factors, n_features)
        whitening = None
    offsets = offsets + log_weights + constant
    return Form(
        layout, asarray_like(coefficients, X), asarray_like(offsets, X), whitening,
        xp.float64 if moments == np.float64 else X.dtype,
    )
