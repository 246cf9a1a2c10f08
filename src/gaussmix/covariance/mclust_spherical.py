"""EII: one spherical covariance ``lambda I`` shared by all components.

VII (a volume per component) is :class:`~.spherical.SphericalCovariance`.
"""

from __future__ import annotations

from typing import Any, Optional

from ..backends import get_namespace
from ..stats import SuffStats
from ._eigen import counts_and_scatter
from .spherical import SphericalCovariance


class EqualSphericalCovariance(SphericalCovariance):
    """``Sigma_k = lambda I``, stored like ``spherical`` as (K,) equal variances."""

    name = "EII"
    aliases = ()

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return 1

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        counts, scatter = counts_and_scatter(stats, reg_covar)
        variances = _diagonals(xp, scatter)
        variance = xp.sum(variances) / (stats.n_features * xp.sum(counts))
        return xp.zeros_like(counts) + variance


def _diagonals(xp: Any, scatter: Any) -> Any:
    """(K, D) diagonals of a (K, D, D) or (K, D) scatter."""
    return xp.linalg.diagonal(scatter) if scatter.ndim == 3 else scatter
