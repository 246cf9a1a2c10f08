"""Covariance structures and the registry that maps public names to them.

The registry is the only place a covariance-type string is interpreted:
everything else dispatches on the :class:`CovarianceModel` instance.
"""

from __future__ import annotations

from .base import CovarianceModel
from ._eigen import InnerIteration
from .diag import DiagCovariance
from .full import FullCovariance
from .mclust_dense import (
    CommonOrientationCovariance,
    EqualVolumeCovariance,
    EqualVolumeShapeCovariance,
    ShapeOrientationCovariance,
    VolumeEllipsoidalCovariance,
    VolumeShapeCovariance,
)
from .mclust_diagonal import EqualDiagonalCovariance, ShapeDiagonalCovariance, VolumeDiagonalCovariance
from .mclust_spherical import EqualSphericalCovariance
from .spherical import SphericalCovariance
from .tied import TiedCovariance

#: mclust's 14 structures ``Sigma_k = lambda_k D_k A_k D_k^T``, in mclust's order
MCLUST_COVARIANCE_TYPES: tuple[str, ...] = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
    "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)

_REGISTRY: dict[str, CovarianceModel] = {}


def register(model: CovarianceModel) -> CovarianceModel:
    """Make ``model`` reachable by its name and aliases."""
    for key in (model.name, *model.aliases):
        if key in _REGISTRY and _REGISTRY[key] is not model:
            raise ValueError(f"covariance name {key!r} is already registered")
        _REGISTRY[key] = model
    return model


for _model in (
    FullCovariance(), TiedCovariance(), DiagCovariance(), SphericalCovariance(),
    EqualSphericalCovariance(), EqualDiagonalCovariance(), VolumeDiagonalCovariance(),
    ShapeDiagonalCovariance(), VolumeEllipsoidalCovariance(), ShapeOrientationCovariance(),
    CommonOrientationCovariance(), EqualVolumeShapeCovariance(), VolumeShapeCovariance(),
    EqualVolumeCovariance(),
):
    register(_model)


def available_covariance_types() -> list[str]:
    """Every accepted covariance-type name (scikit-learn's and mclust's)."""
    return sorted(_REGISTRY)


def canonical_covariance_types() -> list[str]:
    """One name per registered structure (its ``name``, not its aliases), in registration order.

    This is what "every covariance type" means, e.g. for ``gaussmix.select(...,
    covariance_types="all")``: a structure registered later is included without
    any change to the caller.
    """
    distinct = {id(model): model for model in _REGISTRY.values()}
    return [model.name for model in distinct.values()]


def get_covariance_model(name: str) -> CovarianceModel:
    """Look up a covariance structure by name.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown covariance_type {name!r}; valid values are: "
            + ", ".join(repr(n) for n in available_covariance_types())
        ) from None


__all__ = [
    "MCLUST_COVARIANCE_TYPES",
    "CommonOrientationCovariance",
    "CovarianceModel",
    "EqualDiagonalCovariance",
    "EqualSphericalCovariance",
    "EqualVolumeCovariance",
    "EqualVolumeShapeCovariance",
    "InnerIteration",
    "ShapeDiagonalCovariance",
    "ShapeOrientationCovariance",
    "VolumeDiagonalCovariance",
    "VolumeEllipsoidalCovariance",
    "VolumeShapeCovariance",
    "DiagCovariance",
    "FullCovariance",
    "SphericalCovariance",
    "TiedCovariance",
    "available_covariance_types",
    "canonical_covariance_types",
    "get_covariance_model",
    "register",
]
