"""EII: one spherical covariance ``lambda I`` shared by all components.

VII (a volume per component) is :class:`~.spherical.SphericalCovariance`.
"""

from __future__ import annotations

from typing import Any, Optional

from ..backends import get_namespace
from ..stats import WEIGHT_FLOOR, SuffStats
from .base import PriorTerms
from .spherical import SphericalCovariance


class EqualSphericalCovariance(SphericalCovariance):
    """``Sigma_k = lambda I``, stored like ``spherical`` as (K,) equal variances."""

    independent_components = False

    name = "EII"
    compiled_m_step = "EII"
    #: mclust's univariate "E" (equal variances) is EII on one feature
    aliases = ("E",)
    # each mean's prior, and one inverse gamma (dof + 2) on the shared variance
    conjugate_prior = PriorTerms("trace", True, lambda dof, K, D: 1 + (dof + 2) / (D * K))

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return 1

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        # sum_k tr(W_k + reg N_k I) / (D sum_k N_k), whatever the scatter's layout
        counts = stats.resp_weight + WEIGHT_FLOOR  # the floor of every M-step
        variance = xp.sum(stats.traces()) / (stats.n_features * xp.sum(counts)) + reg_covar
        return xp.zeros_like(counts) + variance
