"""The noise component's options and start: its volume, and which rows start as noise.

``GaussianMixture(noise=True)`` or ``noise_init=`` adds the component of
:mod:`gaussmix.noise`. :func:`resolve` checks the three options without the
data; :func:`prepare` turns them into a :class:`NoiseSetup` for the rows of
one fit (the volume ``V`` and the rows that start as noise), and
:func:`start_from_rows` builds the start as mclust does: the initialiser runs
on the other rows, and the noise starts with the marked rows' share of the
weight.

Without ``noise_init`` the rows that start as noise are those where the
uniform density ``1/V`` exceeds the density of one Gaussian fitted to all
rows (their mean and covariance): the rows a single normal explains worse
than the background does (at least the one it explains worst).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from . import noise as uniform_noise
from .backends import device as _device
from .params import MixtureParams
from .problem import Problem
from .starts import check_row_counts, start_from_rows as start_gaussians

if TYPE_CHECKING:
    from .priors import ResolvedPrior


@dataclass(frozen=True)
class NoiseOptions:
    """The estimator's noise options, checked without the data.

    Attributes
    ----------
    volume : float or None
        ``noise_volume``: None for mclust's ``hypvol`` of the training rows.
    init : ndarray or None
        ``noise_init`` as given (a boolean mask or row indices); checked
        against the rows by :func:`initial_noise_rows`.
    """

    volume: Optional[float] = None
    init: Optional[np.ndarray] = None


@dataclass(frozen=True)
class NoiseSetup:
    """One fit's noise component before EM: its volume, box and starting rows.

    Attributes
    ----------
    volume : float
        ``V``.
    region : Region
        The data's box (where :meth:`gaussmix.noise.UniformNoise.sample` draws), user coordinates.
    initial : ndarray of bool, shape (n,)
        Rows that start as noise.
    """

    volume: float
    region: uniform_noise.Region
    initial: np.ndarray


def resolve(noise: Any, noise_init: Any, noise_volume: Any, fixed_weights: bool = False) -> Optional[NoiseOptions]:
    """The noise options of ``GaussianMixture(noise=..., noise_init=..., noise_volume=...)``, or None.

    A noise component is added for ``noise=True`` or a ``noise_init``.

    Raises
    ------
    ValueError
        For ``noise_volume`` without a noise component, a volume that is not a
        finite positive number, a ``noise_init`` that is not a one-dimensional
        boolean mask or list of row indices, or frozen weights (``fixed``).
    """
    if not noise and noise_init is None:
        if noise_volume is not None:
            raise ValueError(
                f"noise_volume={noise_volume!r} is the volume of a noise component, but there is none: "
                "set noise=True (or give noise_init) to add one, or drop noise_volume"
            )
        return None
    volume = None
    if noise_volume is not None:
        if isinstance(noise_volume, bool) or not isinstance(noise_volume, numbers.Real) or \
                not (math.isfinite(noise_volume) and noise_volume > 0):
            raise ValueError(
                f"noise_volume must be a finite positive number (the volume of the data's region, "
                f"whose inverse is the noise density); got {noise_volume!r}. Leave it None for mclust's hypvol"
            )
        volume = float(noise_volume)
    if fixed_weights:
        raise ValueError(
            "fixed={'weights'} keeps the weights at their start, but the noise component's weight is "
            "estimated and the Gaussians share what it leaves: do not freeze weights with noise=True "
            "(equal_weights=True, mclust's equalPro with noise, is allowed)"
        )
    return NoiseOptions(volume, None if noise_init is None else _as_rows(noise_init))


def _as_rows(noise_init: Any) -> np.ndarray:
    """``noise_init`` as a 1-D boolean or integer array (checked against n later)."""
    rows = np.asarray(noise_init)
    if rows.ndim != 1 or not (rows.dtype == bool or np.issubdtype(rows.dtype, np.integer)):
        raise ValueError(
            "noise_init must be a boolean mask with one entry per row of X (True: the row starts as "
            f"noise) or a list of row indices; got an array of shape {rows.shape} and dtype {rows.dtype}"
        )
    return rows


def prepare(X: Any, sample_weight: Optional[Any], options: NoiseOptions, n_components: int) -> NoiseSetup:
    """The noise component of a fit on the rows ``X`` (NumPy, shape (n, D)) before EM.

    Raises
    ------
    ValueError
        For rows whose region is flat (without a ``noise_volume``), a bad
        ``noise_init`` (see :func:`initial_noise_rows`), or fewer rows left
        to the Gaussians than components.
    """
    if _device.is_device_array(X):
        raise ValueError(
            "a noise component (noise=True) needs the rows as a NumPy array: torch tensors are not "
            "supported yet; pass X.cpu().numpy()"
        )
    X = np.asarray(X)
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if options.volume is None:
        region = uniform_noise.data_region(X, weights)
        volume = region.volume()
    else:
        region = _region_unchecked(X, weights)
        volume = options.volume
    if options.init is None:
        initial = default_noise_rows(X, weights, math.log(volume))
    else:
        initial = initial_noise_rows(options.init, X.shape[0])
    kept = ~initial
    if options.init is None and np.count_nonzero(kept) < n_components:
        raise ValueError(
            f"the default noise start marks {np.count_nonzero(initial)} of {X.shape[0]} rows as noise: the "
            f"uniform density 1/V = {1 / volume:.3g} exceeds the density of one Gaussian fitted to the rows "
            "nearly everywhere, so V is small for these data. Give a larger noise_volume, or the rows that "
            "start as noise with noise_init="
        )
    check_row_counts(n_components, int(np.count_nonzero(kept)),
                     None if weights is None else int(np.count_nonzero(weights[kept])))
    return NoiseSetup(volume, region, initial)


def _region_unchecked(X: np.ndarray, weights: Optional[np.ndarray]) -> uniform_noise.Region:
    """The box :func:`gaussmix.noise.data_region` gives, flat or not (the user gave the volume)."""
    try:
        return uniform_noise.data_region(X, weights)
    except ValueError:
        rows = X if weights is None else X[weights > 0]
        return uniform_noise.Region(np.eye(X.shape[1]), rows.min(axis=0).astype(np.float64),
                                    rows.max(axis=0).astype(np.float64))


def initial_noise_rows(noise_init: np.ndarray, n_samples: int) -> np.ndarray:
    """``noise_init`` (a mask or row indices) as a boolean mask of shape (n_samples,).

    Raises
    ------
    ValueError
        For a mask of another length, indices outside ``[0, n_samples)``, or
        a mask marking no row or every row.
    """
    if noise_init.dtype == bool:
        if noise_init.shape[0] != n_samples:
            raise ValueError(
                f"noise_init has {noise_init.shape[0]} entries but X has {n_samples} rows: give one "
                "boolean per row (True: the row starts as noise), or the indices of the noise rows"
            )
        mask = noise_init.copy()
    else:
        if noise_init.size and (noise_init.min() < 0 or noise_init.max() >= n_samples):
            raise ValueError(
                f"noise_init holds row indices outside [0, {n_samples}) (from {noise_init.min()} to "
                f"{noise_init.max()}): give indices of rows of X, counted from 0"
            )
        mask = np.zeros(n_samples, dtype=bool)
        mask[noise_init] = True
    if not mask.any():
        raise ValueError(
            "noise_init marks no row as noise, so the noise component would start, and stay, at weight "
            "zero: mark at least one row, or leave noise_init=None for the default start"
        )
    if mask.all():
        raise ValueError("noise_init marks every row as noise: leave some rows to the Gaussian components")
    return mask


def default_noise_rows(X: np.ndarray, weights: Optional[np.ndarray], log_volume: float) -> np.ndarray:
    """The rows where ``1/V`` exceeds the density of one Gaussian fitted to every row, shape (n,).

    At least one row: the one that Gaussian explains worst. Rows of zero weight
    do not count in the Gaussian and are never marked.
    """
    X = np.asarray(X, dtype=np.float64)
    row_weights = np.ones(X.shape[0]) if weights is None else weights
    positive = row_weights > 0
    mean = np.average(X[positive], axis=0, weights=row_weights[positive])
    centred = X - mean
    # the maximum-likelihood covariance (divisor sum w): the Gaussian fitted to the rows
    used = centred[positive]
    covariance = (used.T * row_weights[positive]) @ used / np.sum(row_weights[positive])
    try:
        factor = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the rows lie on a line or plane (their covariance is singular), so no Gaussian fitted to "
            "them tells which rows start as noise: give noise_init=, or drop the redundant columns"
        ) from None
    whitened = np.linalg.solve(factor, centred.T)
    log_density = -0.5 * (np.sum(whitened**2, axis=0) + X.shape[1] * math.log(2 * math.pi)) \
        - np.sum(np.log(np.diagonal(factor)))
    log_density = np.where(positive, log_density, np.inf)
    initial = log_density < -log_volume
    if not initial.any():
        initial[np.argmin(log_density)] = True
    return initial


def start_from_rows(
    X: Any, weights: Optional[Any], origin: Any, problem: Problem, user_init: dict,
    random_state: np.random.RandomState, chunk_rows: int, setup: NoiseSetup,
    prior: Optional["ResolvedPrior"] = None,
) -> MixtureParams:
    """mclust's start with a noise component, in the frame centred on ``origin`` (shape (D,)).

    The Gaussians start from the rows not marked as noise
    (:func:`gaussmix.starts.start_from_rows`: the initialiser, or the user's
    arrays, on those rows only); the noise starts with the marked rows' share
    of the weight, and the Gaussians' weights (or ``weights_init``) are scaled
    to share the rest. With a ``prior``, the Gaussians' start is its MAP step
    (mclust's ``me`` with both a prior and ``Vinv``).
    """
    kept = ~setup.initial
    kept_weights = None if weights is None else weights[kept]
    gaussians = start_gaussians(X[kept], kept_weights, origin, problem, user_init, random_state, chunk_rows, prior)
    if weights is None:
        share = float(np.count_nonzero(setup.initial)) / X.shape[0]
    else:
        share = float(np.sum(weights[setup.initial], dtype=np.float64) / np.sum(weights, dtype=np.float64))
    region = setup.region
    noise = uniform_noise.UniformNoise(share, setup.volume, region).translated(-np.asarray(origin, np.float64))
    return uniform_noise.with_noise(gaussians, noise)
