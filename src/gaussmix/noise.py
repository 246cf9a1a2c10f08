"""A noise component: a uniform density beside the K Gaussians (mclust's ``noise``).

The mixture density becomes

    p(x) = sum_k pi_k N(x | mu_k, Sigma_k) + pi_0 / V,    pi_0 + sum_k pi_k = 1,

with ``V`` the volume of the data's region: by default mclust's ``hypvol``, the
smaller of the volumes of the rows' bounding box along the coordinates and
along their principal components (:func:`data_region`), or the user's
``noise_volume``. As in mclust the noise density is ``1/V`` at every point,
inside the region or not (Banfield & Raftery 1993; Dasgupta & Raftery 1998).

EM needs nothing new from the E-step engines. A row's responsibility for
Gaussian k is ``(1 - z_n0)`` times its responsibility among the Gaussians
alone (``z_n0`` its noise responsibility), so the Gaussians' statistics are
the usual ones with each row's weight multiplied by ``1 - z_n0``
(:func:`accumulate`); ``total_weight`` stays the rows' whole weight, and what
the K components do not take, ``total_weight - sum_k N_k``, is the noise's. The
M-step gives it the weight ``pi_0 = (total_weight - sum_k N_k) / total_weight``
and the Gaussians ``N_k / total_weight`` (:func:`m_step`; mclust's ``Vinv``
update). The start is mclust's: the initialiser runs on the rows not marked
as noise, and the noise starts with the marked rows' share of the weight
(:func:`start_from_rows`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import estep
from ._math import logsumexp_rows
from .backends import asarray_like, get_namespace, to_numpy
from .data.chunking import auto_chunk_rows

#: what ``predict`` answers for rows the noise component claims
NOISE_LABEL = -1
#: parameters mclust's BIC counts for the noise component (``nMclustParams(..., noise = TRUE)``
#: in mclust 6.0.0): its proportion and the hypervolume, counted even when the user gives it
N_NOISE_PARAMETERS = 2
#: a box side at most this share of the box's largest side is flat: the rows then lie
#: (nearly) in a subspace, and 1/V would be rounding's, not the data's
FLAT_SIDE = 1e-10


@dataclass(frozen=True)
class Region:
    """A box: the points ``x = u @ axes.T`` with ``lower <= u <= upper``.

    Attributes
    ----------
    axes : ndarray of shape (D, D)
        Orthonormal columns: the identity (the coordinates' box) or the
        principal directions of the rows.
    lower, upper : ndarray of shape (D,)
        The rows' least and largest coordinates along each axis, ``x @ axes``.
    """

    axes: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def log_volume(self) -> float:
        """Sum of the logarithms of the box's sides (``-inf`` for a flat box)."""
        with np.errstate(divide="ignore"):
            return float(np.sum(np.log(self.upper - self.lower)))

    def volume(self) -> float:
        """The box's volume, as mclust's ``hypvol`` computes it: ``exp`` of :attr:`log_volume`.

        Raises
        ------
        ValueError
            If it overflows or underflows float64 (hundreds of features of wide
            or of narrow ranges).
        """
        largest = math.log(float(np.finfo(np.float64).max))
        volume = math.exp(self.log_volume) if self.log_volume < largest else math.inf
        if not 0 < volume < math.inf:
            raise ValueError(
                f"the volume of the data's region is beyond float64's range (its logarithm is "
                f"{self.log_volume:.1f}): rescale the columns, or give the volume yourself with noise_volume="
            )
        return volume

    def is_flat(self) -> bool:
        """Whether a side is at most :data:`FLAT_SIDE` of the longest."""
        sides = self.upper - self.lower
        return bool(np.min(sides) <= FLAT_SIDE * np.max(sides))


def data_region(X: Any, sample_weight: Optional[Any] = None) -> Region:
    """mclust's ``hypvol`` region of the rows: the smaller of two bounding boxes.

    The rows' box along the coordinates, and along the eigenvectors of their
    (weighted) covariance matrix (the principal components' scores, as
    ``princomp``); ties go to the coordinates. One feature: its range.

    Parameters
    ----------
    X : array of shape (n, D)
    sample_weight : array of shape (n,), optional
        Rows of zero weight are left out; the others weigh in the covariance.

    Returns
    -------
    Region

    Raises
    ------
    ValueError
        If the chosen box is flat (a constant column, or rows on a line or plane):
        its volume would be zero or rounding's.
    """
    X = np.asarray(to_numpy(X), dtype=np.float64)
    weights = None if sample_weight is None else np.asarray(to_numpy(sample_weight), dtype=np.float64)
    if weights is not None:
        X, weights = X[weights > 0], weights[weights > 0]
    D = X.shape[1]
    best = Region(np.eye(D), X.min(axis=0), X.max(axis=0))
    if D > 1:
        mean = np.average(X, axis=0, weights=weights)
        centred = X - mean
        scatter = (centred.T * (1.0 if weights is None else weights)) @ centred
        _, directions = np.linalg.eigh(scatter)
        scores = X @ directions
        principal = Region(directions, scores.min(axis=0), scores.max(axis=0))
        if principal.log_volume < best.log_volume:
            best = principal
    if best.is_flat():
        raise ValueError(
            "the noise component's uniform density needs the volume of the data's region, but the rows are "
            "flat: a column is constant or the rows lie on a line or plane, so their volume is zero. Drop "
            "the constant or redundant columns, or give the volume yourself with noise_volume="
        )
    return best


@dataclass(frozen=True)
class UniformNoise:
    """The fitted noise component: its weight, its density ``1/V`` and where :meth:`sample` draws.

    Attributes
    ----------
    weight : float
        ``pi_0``; the Gaussians' weights sum to ``1 - pi_0``.
    volume : float
        ``V``: the noise density is ``1/V`` at every point.
    region : Region
        The box :meth:`sample` draws from (the data's, see :func:`data_region`),
        in the same coordinates as the mixture's means.
    """

    weight: float
    volume: float
    region: Region

    @property
    def log_volume(self) -> float:
        return math.log(self.volume)

    @property
    def log_weighted_density(self) -> float:
        """``log(pi_0 / V)``: ``-inf`` for a zero weight."""
        return math.log(self.weight) - self.log_volume if self.weight > 0 else -math.inf

    def with_weight(self, weight: float) -> "UniformNoise":
        return dataclasses.replace(self, weight=float(weight))

    def translated(self, offset: Any) -> "UniformNoise":
        """The same component for means moved by ``offset`` (shape (D,)): its box moves with them."""
        shift = np.asarray(to_numpy(offset), dtype=np.float64) @ self.region.axes
        region = Region(self.region.axes, self.region.lower + shift, self.region.upper + shift)
        return dataclasses.replace(self, region=region)

    def sample(self, n_samples: int, rng: np.random.RandomState) -> np.ndarray:
        """``n_samples`` rows drawn uniformly in :attr:`region`, shape (n_samples, D), float64."""
        region = self.region
        u = rng.uniform(size=(n_samples, region.lower.shape[0])) * (region.upper - region.lower) + region.lower
        return u @ region.axes.T


def without_noise(params: Any) -> Any:
    """The Gaussian components of ``params`` alone (their weights as they are)."""
    return dataclasses.replace(params, noise=None)


def with_noise(gaussians: Any, noise: UniformNoise) -> Any:
    """``gaussians`` (weights on the simplex) beside ``noise``: their weights scaled by ``1 - noise.weight``."""
    return dataclasses.replace(gaussians, weights=gaussians.weights * (1.0 - noise.weight), noise=noise)


# ---------------------------------------------------------------- EM
def log_gaussian_density(X: Any, params: Any) -> Any:
    """``log sum_k pi_k N(x_n | mu_k, Sigma_k)`` of the rows, shape (n,), in blocks (bounded temporaries)."""
    xp = get_namespace(X)
    gaussians = without_noise(params)
    rows = estep.get_config().block_rows or auto_chunk_rows(params.n_components, X.shape[1], X.dtype.itemsize)
    pieces = [logsumexp_rows(gaussians.log_weighted_prob(X[start:start + rows]))
              for start in range(0, X.shape[0], rows)]
    return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=0)


def accumulate(X: Any, sample_weight: Optional[Any], params: Any, shift: Optional[Any] = None) -> tuple[Any, Any]:
    """E-step with a noise component on the chunk ``X - shift``: ``(stats, loglik)``.

    The statistics are the Gaussians' (:func:`gaussmix.estep.accumulate`,
    whichever engine is configured) with each row's weight ``w_n`` times
    ``1 - z_n0``; their ``total_weight`` is ``sum_n w_n``, so the noise's share
    is ``total_weight - sum_k N_k``. ``loglik`` is ``sum_n w_n log p(x_n)``
    with the noise density included.
    """
    xp = get_namespace(X)
    shifted = X if shift is None else X - xp.reshape(asarray_like(shift, X), (1, -1))
    log_gaussian = log_gaussian_density(shifted, params)
    log_noise = xp.full_like(log_gaussian, params.noise.log_weighted_density)
    log_density = xp.logaddexp(log_gaussian, log_noise)
    # 1 - z_n0, computed as a ratio so that it does not cancel where the noise takes little
    gaussian_share = xp.exp(log_gaussian - log_density)
    # the chunk's log-likelihood summed in float64, as the engines sum theirs
    log_density64 = xp.astype(log_density, xp.float64)
    if sample_weight is None:
        weights, total, loglik = gaussian_share, X.shape[0], xp.sum(log_density64)
    else:
        weights = sample_weight * gaussian_share
        total, loglik = xp.sum(sample_weight), xp.sum(xp.astype(sample_weight, xp.float64) * log_density64)
    stats, _ = estep.accumulate(X, weights, without_noise(params), shift)
    if not hasattr(total, "shape") or total.shape == ():
        total = float(total)
    return dataclasses.replace(stats, total_weight=total), _as_scalar(loglik)


def _as_scalar(value: Any) -> Any:
    """A NumPy 0-d result as a Python float (as the engines return host log-likelihoods)."""
    return float(value) if isinstance(value, (np.ndarray, np.generic)) else value


def reweighted(gaussians: Any, stats: Any, noise: UniformNoise) -> Any:
    """The M-step's parameters with a noise component, from its Gaussians' and the statistics.

    ``gaussians`` are :func:`gaussmix.em.m_step`'s from ``stats`` (weights on
    the simplex: in proportion to ``N_k``, or equal). The noise takes the
    weight of the rows the Gaussians did not, ``pi_0 = (total_weight - sum_k
    N_k) / total_weight``, and the Gaussians share the rest as they did:
    ``pi_k = N_k / total_weight`` as in mclust, or ``(1 - pi_0) / K``
    (mclust's ``equalPro`` with noise).

    Parameters
    ----------
    gaussians : MixtureParams
    stats : SuffStats
        From an E-step with the noise component (:func:`accumulate`).
    noise : UniformNoise
        The component of that E-step; its weight is replaced.
    """
    total = float(stats.total_weight)
    taken = float(get_namespace(stats.resp_weight).sum(stats.resp_weight))
    noise_weight = min(max((total - taken) / total, 0.0), 1.0)
    return with_noise(gaussians, noise.with_weight(noise_weight))


# ---------------------------------------------------------------- inference
def log_weighted_columns(X: Any, params: Any) -> Any:
    """``[log pi_k N(x_n | k) for each k, log(pi_0 / V)]``, shape (n, K + 1): the noise column last."""
    xp = get_namespace(X)
    gaussians = without_noise(params).log_weighted_prob(X)
    noise = xp.full_like(gaussians[:, :1], params.noise.log_weighted_density)
    return xp.concat([gaussians, noise], axis=1)


def posterior(X: Any, params: Any) -> tuple[Any, Any]:
    """Responsibilities with the noise column last, shape (n, K + 1), and ``log p(x_n)``, shape (n,)."""
    xp = get_namespace(X)
    weighted = log_weighted_columns(X, params)
    log_density = logsumexp_rows(weighted)
    return xp.exp(weighted - log_density[:, None]), log_density


def labels(X: Any, params: Any) -> Any:
    """The most probable component of each row, :data:`NOISE_LABEL` (-1) where it is the noise, shape (n,)."""
    xp = get_namespace(X)
    best = xp.argmax(log_weighted_columns(X, params), axis=1)
    return xp.where(best == params.n_components, xp.full_like(best, NOISE_LABEL), best)


def refuse(params: Any, what: str) -> None:
    """Refuse ``what`` (a method's name) on parameters with a noise component.

    Marginals, conditionals, distribution functions, imputation and exports
    are Gaussian mixtures' maths: a uniform density over the data's region
    has no place in them yet.

    Raises
    ------
    ValueError
        If ``params.noise`` is set; the message names ``what`` and what to do.
    """
    if params.noise is not None:
        raise ValueError(
            f"{what} is not available for a model with a noise component (noise=True): it treats the "
            "model as a Gaussian mixture, and the uniform noise density is not one. Fit a model with "
            "noise=False for it (predict with the noise model to find the noise rows, and leave them out)"
        )
