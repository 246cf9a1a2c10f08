"""Dense structures with constraints across components: VEE, EVE, VVE, EEV, VEV, EVV.

``Sigma_k = lambda_k D_k A_k D_k^T`` stored like ``full`` as (K, D, D)
matrices. EEE is :class:`~.tied.TiedCovariance` and VVV is
:class:`~.full.FullCovariance`. EEV and EVV have closed forms; VEE, EVE, VVE
and VEV iterate inside the M-step (:class:`~._eigen.InnerIteration`),
warm-started from the previous covariances so that every EM step still never
lowers the log-likelihood.
"""

from __future__ import annotations

from typing import Any, Optional

from ..backends import get_namespace
from ..exceptions import CollapsedComponentError
from ..stats import SuffStats
from ._eigen import (
    InnerIteration,
    alternate_volume_and_shape,
    counts_and_scatter,
    dense_volumes,
    descending_eigh,
    fit_common_orientation,
    positive_floor,
    relative_inverse,
    rotate_back,
    shared_orientation,
    split_volume,
    starting_volumes,
)
from .base import PriorTerms
from .full import FullCovariance


def _n_rotation(n_features: int) -> int:
    """Free parameters of one orientation matrix."""
    return n_features * (n_features - 1) // 2


class _IterativeDense(FullCovariance):
    """A dense structure whose M-step iterates under its own convergence control."""

    independent_components = False

    aliases = ()

    def __init__(self, control: InnerIteration = InnerIteration()) -> None:
        self.control = control


class VolumeEllipsoidalCovariance(_IterativeDense):
    """VEE: ``Sigma_k = lambda_k C``, a volume per component and one common ``C`` (det 1).

    Alternates ``C`` given the volumes (``sum_k W_k / lambda_k`` scaled to det 1)
    and the volumes given ``C`` (``tr(W_k C^-1) / (D N_k)``).
    """

    name = "VEE"
    compiled_m_step = "VEE"

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components + (n_features - 1) + _n_rotation(n_features)

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        counts, scatter = counts_and_scatter(stats, reg_covar)
        n_features = stats.n_features
        volumes = starting_volumes(previous, xp.linalg.diagonal(scatter), counts, dense_volumes)
        value = None
        for _ in range(self.control.limit(previous is not None)):
            # sum_k W_k / lambda_k up to a factor (C is scaled to det 1): volumes floored
            # at the dtype's smallest normal number would overflow the plain quotient
            pooled = xp.sum(scatter * relative_inverse(volumes)[:, None, None], axis=0)
            volume = dense_volumes(pooled[None, :, :])[0]
            if not bool(volume > 0):
                raise CollapsedComponentError(
                    list(range(stats.n_components)),
                    "(VEE: the pooled scatter is singular, so the data lie in a lower-dimensional set.)",
                )
            common = pooled / volume
            traces = xp.sum(xp.linalg.diagonal(scatter @ xp.linalg.inv(common)[None, :, :]), axis=-1)
            volumes = positive_floor(xp, traces / (n_features * counts))
            # At the optimal volumes tr(W_k Sigma_k^-1) = D N_k, a constant.
            new_value = float(n_features * xp.sum(counts * xp.log(volumes)))
            if self.control.converged(value, new_value, scatter):
                break
            value = new_value
        symmetric = 0.5 * (common + xp.matrix_transpose(common))
        return volumes[:, None, None] * symmetric[None, :, :]


class _CommonOrientation(_IterativeDense):
    """EVE and VVE: one orientation ``D`` shared by all components, found by Jacobi sweeps."""

    #: the compiled loop's rule for the scales (see _numba_mstep)
    _compiled_mode: int
    # A block of D A_k D^T has no common eigenbasis: marginals and conditionals are unconstrained.
    marginal_structure = conditional_structure = "full"

    def _scales_in_frame(self, summaries: Any, counts: Any) -> Any:
        """``lambda_k A_k`` (K, D) minimising ``f`` given ``diag(D^T W_k D)`` (K, D)."""
        raise NotImplementedError

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        counts, scatter = counts_and_scatter(stats, reg_covar)
        if previous is not None:
            orientation = shared_orientation(previous)
        else:
            # Start from the principal axes of the average within-component covariance.
            orientation = shared_orientation(scatter / counts[:, None, None])
        orientation, scales = fit_common_orientation(
            scatter, counts, orientation, lambda summaries: self._scales_in_frame(summaries, counts), self.control,
            previous is not None, compiled_mode=self._compiled_mode,
        )
        return rotate_back(orientation, scales)


class ShapeOrientationCovariance(_CommonOrientation):
    """EVE: ``Sigma_k = lambda D A_k D^T``, equal volume and orientation, shapes vary."""

    name = "EVE"
    compiled_m_step = "EVE"
    _compiled_mode = 0  # _numba_mstep.EQUAL_VOLUME

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return 1 + n_components * (n_features - 1) + _n_rotation(n_features)

    def _scales_in_frame(self, summaries: Any, counts: Any) -> Any:
        xp = get_namespace(summaries)
        volumes, shapes = split_volume(summaries)
        return (xp.sum(volumes) / xp.sum(counts)) * shapes


class CommonOrientationCovariance(_CommonOrientation):
    """VVE: ``Sigma_k = lambda_k D A_k D^T``, equal orientation, volumes and shapes vary."""

    name = "VVE"
    compiled_m_step = "VVE"
    _compiled_mode = 1  # _numba_mstep.VARIABLE_VOLUME

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components * n_features + _n_rotation(n_features)

    def _scales_in_frame(self, summaries: Any, counts: Any) -> Any:
        return summaries / counts[:, None]


class EqualVolumeShapeCovariance(FullCovariance):
    """EEV: ``Sigma_k = lambda D_k A D_k^T``, equal volume and shape, orientations vary.

    Closed form: ``D_k`` the eigenvectors of ``W_k`` (decreasing eigenvalues
    ``w_k``), ``lambda A = sum_k w_k / N``.
    """

    independent_components = False

    name = "EEV"
    compiled_m_step = "EEV"
    # mclust's EM (meeevp: one shared volume and shape, dividing by dof + D + 2 + N; VVV's at K = 1)
    conjugate_prior = PriorTerms("matrix", False, lambda dof, K, D: (dof + D + 2) / K)
    # equal shapes / volumes do not survive taking a block (gaussmix.conditioning)
    marginal_structure = conditional_structure = "full"
    aliases = ()

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return 1 + (n_features - 1) + n_components * _n_rotation(n_features)

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        counts, scatter = counts_and_scatter(stats, reg_covar)
        eigenvalues, orientations = descending_eigh(scatter)
        scales = xp.sum(eigenvalues, axis=0) / xp.sum(counts)
        return rotate_back(orientations, xp.zeros_like(eigenvalues) + scales[None, :])


class VolumeShapeCovariance(_IterativeDense):
    """VEV: ``Sigma_k = lambda_k D_k A D_k^T``, equal shape, volumes and orientations vary.

    ``D_k`` are the eigenvectors of ``W_k`` (the optimum for any common shape
    sorted like the eigenvalues); volumes and shape then alternate as in VEI.
    """

    name = "VEV"
    compiled_m_step = "VEV"
    # mclust's EM adds the scale but no count for K > 1 (mevevp: the volumes divide by D N_k);
    # one component is VVV's (mclust fits K = 1 as its unconstrained family, mvnXXX)
    conjugate_prior = PriorTerms("matrix", False, lambda dof, K, D: 0.0 if K > 1 else dof + D + 2)
    # equal shapes / volumes do not survive taking a block (gaussmix.conditioning)
    marginal_structure = conditional_structure = "full"

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return n_components + (n_features - 1) + n_components * _n_rotation(n_features)

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        counts, scatter = counts_and_scatter(stats, reg_covar)
        eigenvalues, orientations = descending_eigh(scatter)
        volumes = starting_volumes(previous, eigenvalues, counts, dense_volumes)
        volumes, shape = alternate_volume_and_shape(eigenvalues, counts, volumes, self.control, previous is not None)
        return rotate_back(orientations, volumes[:, None] * shape[None, :])


class EqualVolumeCovariance(FullCovariance):
    """EVV: ``Sigma_k = lambda C_k`` with ``det C_k = 1``: equal volume, the rest varies (closed form)."""

    independent_components = False

    name = "EVV"
    compiled_m_step = "EVV"
    # equal shapes / volumes do not survive taking a block (gaussmix.conditioning)
    marginal_structure = conditional_structure = "full"
    aliases = ()

    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        return 1 + n_components * (n_features * (n_features + 1) // 2 - 1)

    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        xp = get_namespace(stats.scatter)
        counts, scatter = counts_and_scatter(stats, reg_covar)
        volumes = positive_floor(xp, dense_volumes(scatter))
        volume = xp.sum(volumes) / xp.sum(counts)
        # A singular scatter (a component on repeated rows or in a lower-dimensional set) has
        # volume 0: its covariance is left zero, which the collapse check then reports.
        singular = ~(volumes > positive_floor(xp, xp.zeros_like(volumes)))
        ratios = xp.where(singular, xp.zeros_like(volumes), volume / xp.where(singular, xp.ones_like(volumes), volumes))
        # The ratio first: volume * scatter is of order reg_covar^2 N, which overflows first.
        return ratios[:, None, None] * scatter


__all__ = [
    "CommonOrientationCovariance",
    "EqualVolumeCovariance",
    "EqualVolumeShapeCovariance",
    "ShapeOrientationCovariance",
    "VolumeEllipsoidalCovariance",
    "VolumeShapeCovariance",
]
