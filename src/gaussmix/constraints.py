"""Equal and frozen mixture parameters: what an M-step keeps, and what the criteria stop counting.

``GaussianMixture(equal_weights=True)`` is mclust's ``equalPro``: every weight
stays ``1/K`` through EM. ``fixed=`` freezes weights, means or covariances at
their starting values (the ``*_init`` arrays, or the initialiser's start),
whole or per component. :func:`resolve` turns the two constructor arguments
into a :class:`Constraints` (boolean masks of shape (K,)), which
:func:`gaussmix.em.m_step` applies and :meth:`Constraints.n_fixed_parameters`
takes off the parameter count of BIC and AIC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from sklearn.utils._param_validation import Options

from .covariance import CovarianceModel

#: the parameter groups ``fixed`` may name
PARAMETER_NAMES = ("weights", "means", "covariances")


@dataclass(frozen=True)
class Constraints:
    """Which parameters an M-step leaves as they were.

    Attributes
    ----------
    equal_weights : bool
        Weights are ``1/K`` (mclust's ``equalPro``).
    weights, means, covariances : ndarray of bool, shape (K,), or None
        Components whose weight, mean or covariance stays at its previous
        value; None where none does.
    """

    equal_weights: bool = False
    weights: Optional[np.ndarray] = None
    means: Optional[np.ndarray] = None
    covariances: Optional[np.ndarray] = None

    @property
    def freezes(self) -> bool:
        """Whether any part stays at the previous parameters (the M-step then needs them)."""
        return any(mask is not None for mask in (self.weights, self.means, self.covariances))

    def at_start(self) -> Optional["Constraints"]:
        """What applies to the M-step that makes a start: equal weights only (the start *is* what is frozen)."""
        return Constraints(equal_weights=True) if self.equal_weights else None

    def n_fixed_parameters(self, covariance: CovarianceModel, n_components: int, n_features: int) -> int:
        """How many of the mixture's free parameters these constraints fix.

        Equal weights fix all K - 1; f frozen weights leave ``max(K - f - 1, 0)``
        free (the free ones share what the frozen ones leave); a frozen mean
        fixes D; frozen covariances fix the structure's count for them.
        """
        K, D = n_components, n_features
        fixed = 0
        if self.equal_weights:
            fixed += K - 1
        elif self.weights is not None:
            fixed += (K - 1) - max(K - int(self.weights.sum()) - 1, 0)
        if self.means is not None:
            fixed += int(self.means.sum()) * D
        if self.covariances is not None:
            if self.covariances.all():
                fixed += covariance.n_covariance_parameters(K, D)
            else:  # only structures with independent components get here (see resolve)
                fixed += int(self.covariances.sum()) * covariance.n_covariance_parameters(1, D)
        return fixed


class FixedParameters(Options):
    """scikit-learn parameter constraint of ``fixed``: names, or a mapping of names to masks.

    Checks what can be checked without the data: known names, and values that
    are booleans or one-dimensional boolean sequences. :func:`resolve` checks
    the masks' lengths against K and the covariance structure.
    """

    def __init__(self) -> None:
        super().__init__(object, set(PARAMETER_NAMES))

    def is_satisfied_by(self, val: Any) -> bool:
        if isinstance(val, str):
            return val in PARAMETER_NAMES
        if isinstance(val, Mapping):
            return all(name in PARAMETER_NAMES and _is_mask(mask) for name, mask in val.items())
        if isinstance(val, (set, frozenset, list, tuple)):
            return all(isinstance(name, str) and name in PARAMETER_NAMES for name in val)
        return False

    def __str__(self) -> str:
        names = ", ".join(repr(name) for name in PARAMETER_NAMES)
        return (f"a name or a set of names among {{{names}}}, or a dict mapping them to True/False "
                "or to a per-component sequence of booleans")


def _is_mask(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (str, bytes, Mapping)):
        return False
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return array.ndim == 1 and (array.dtype == bool or (array.size == 0 and array.dtype == float))


def resolve(fixed: Any, equal_weights: bool, covariance: CovarianceModel, n_components: int,
            *, weights_init: Any = None) -> Optional[Constraints]:
    """The :class:`Constraints` of ``GaussianMixture(fixed=..., equal_weights=...)``, or None for none.

    Parameters
    ----------
    fixed : None, str, collection of str, or mapping
        Already accepted by :class:`FixedParameters`.
    equal_weights : bool
    covariance : CovarianceModel
    n_components : int
        K: the length every per-component mask must have.
    weights_init : array-like or None
        Refused with ``equal_weights`` (the weights would not be 1/K).

    Raises
    ------
    ValueError
        For a mask of the wrong length, per-component covariance masks on a
        structure whose components share covariance parameters, or
        ``equal_weights`` combined with fixed or given weights.
    """
    K = int(n_components)
    masks: dict[str, np.ndarray] = {}
    if fixed is not None:
        items = fixed.items() if isinstance(fixed, Mapping) else ((name, True) for name in
                                                                   ([fixed] if isinstance(fixed, str) else fixed))
        for name, value in items:
            mask = _mask(name, value, K)
            if mask.any():
                masks[name] = mask
    if "covariances" in masks and not masks["covariances"].all() and not covariance.independent_components:
        raise ValueError(
            f"fixed={{'covariances': {masks['covariances'].tolist()}}} freezes some components' covariances, "
            f"but in covariance_type={covariance.name!r} the components share covariance parameters, so "
            "they are frozen all together or not at all: pass fixed={'covariances'} (or True), or use a "
            "structure with a covariance per component ('full' / VVV, 'diag' / VVI, 'spherical' / VII)"
        )
    if equal_weights and "weights" in masks:
        raise ValueError(
            "equal_weights=True already fixes the weights (at 1/K); do not also freeze them with fixed: "
            "drop 'weights' from fixed, or set equal_weights=False to keep the starting weights"
        )
    if equal_weights and weights_init is not None:
        raise ValueError(
            "equal_weights=True keeps every weight at 1/K, so weights_init would be ignored: drop "
            "weights_init, or freeze the given weights with fixed={'weights'} instead"
        )
    if not equal_weights and not masks:
        return None
    return Constraints(bool(equal_weights), masks.get("weights"), masks.get("means"), masks.get("covariances"))


def _mask(name: str, value: Any, n_components: int) -> np.ndarray:
    """A (K,) boolean array of the components whose ``name`` is frozen."""
    if isinstance(value, (bool, np.bool_)):
        return np.full(n_components, bool(value))
    mask = np.asarray(value, dtype=bool)
    if mask.shape != (n_components,):
        raise ValueError(
            f"fixed[{name!r}] has {mask.size} entries, but the mixture has n_components = {n_components}: "
            f"give one boolean per component (True: keep that component's {name} as started), or "
            "True / False for all of them"
        )
    return mask
