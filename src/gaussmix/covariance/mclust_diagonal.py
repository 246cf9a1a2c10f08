"""Diagonal structures with constraints across components: EEI, VEI, EVI.

``Sigma_k = lambda_k A_k`` with diagonal ``A_k`` of determinant one, stored
like ``diag`` as (K, D) variances. VVI (nothing shared) is
:class:`~.diag.DiagCovariance`.
"""

from __future__ import annotations

from typing import Any, Optional

from ..backends import get_namespace
from ..stats import SuffStats
from ._eigen import (
    InnerIteration,
    alternate_volume_and_shape,
    counts_and_scatter,
    split_volume,
    starting_volumes,
)
from .base import PriorTerms
from .diag import DiagCovariance


class EqualDiagonalCovariance(DiagCovariance):
    """EEI: one diagonal covariance shared by all components."""

    independent_components = False

    name = "EEI"
    compiled_m_step = "EEI"
    aliases = ()
    # mclust's EM for K > 1 (meeeip: the shared variances divide by dof + 2 + N); one component
    # is VVI's (mclust fits K = 1 as its unconstrained family, mvnXXI)
    conjugate_prior = PriorTerms("diagonal", True, lambda dof, K, D: (dof + 2) / K if K > 1 else dof + 3)

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_features

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        counts, scatter = counts_and_scatter(stats, reg_covar)
        pooled = xp.sum(scatter, axis=0) / xp.sum(counts)
        return xp.zeros_like(scatter) + pooled[None, :]


class VolumeDiagonalCovariance(DiagCovariance):
    """VEI: ``Sigma_k = lambda_k A``, a volume per component and one common diagonal shape.

    No closed form: the M-step alternates volume and shape updates
    (Celeux & Govaert, 1995), warm-started from the previous volumes.
    """

    independent_components = False

    name = "VEI"
    compiled_m_step = "VEI"
    aliases = ()
    # mclust's EM for K > 1 (meveip: the volumes divide by dof + 3 + D N_k); one component is VVI's
    conjugate_prior = PriorTerms("diagonal", False, lambda dof, K, D: (dof + 3) / D if K > 1 else dof + 3)

    def __init__(self, control: InnerIteration = InnerIteration()) -> None:
        self.control = control

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components + (n_features - 1)

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        counts, scatter = counts_and_scatter(stats, reg_covar)
        volumes = starting_volumes(previous, scatter, counts, lambda variances: split_volume(variances)[0])
        volumes, shape = alternate_volume_and_shape(scatter, counts, volumes, self.control, previous is not None)
        return volumes[:, None] * shape[None, :]


class ShapeDiagonalCovariance(DiagCovariance):
    """EVI: ``Sigma_k = lambda A_k``, one volume and a diagonal shape per component (closed form)."""

    independent_components = False

    name = "EVI"
    compiled_m_step = "EVI"
    # mclust's EM for K > 1 (meevip: EEI's count, the scale added to each component); one
    # component is VVI's
    conjugate_prior = PriorTerms("diagonal", False, lambda dof, K, D: (dof + 2) / K if K > 1 else dof + 3)
    # the shapes of a subset of features no longer have equal volumes (gaussmix.conditioning)
    marginal_structure = conditional_structure = "diag"
    aliases = ()

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return 1 + n_components * (n_features - 1)

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        counts, scatter = counts_and_scatter(stats, reg_covar)
        volumes, shapes = split_volume(scatter)
        volume = xp.sum(volumes) / xp.sum(counts)
        return volume * shapes
