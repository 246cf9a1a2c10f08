"""What a fit needs from the estimator's parameters, read once per fit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from .constraints import Constraints
from .covariance import CovarianceModel
from .priors import Prior, check_prior

if TYPE_CHECKING:  # noise_start builds starts, which read this class
    from .noise_start import NoiseOptions


@dataclass(frozen=True)
class Problem:
    """One fit's settings, the estimator's parameters resolved.

    Attributes
    ----------
    covariance : CovarianceModel
        The structure of ``covariance_type``.
    n_components : int
        K.
    reg_covar : float
    constraints : Constraints or None
        ``equal_weights`` and ``fixed`` as masks over the K components (None: no constraint).
    init_params : str or callable
    chunk_size : int or None
        The estimator's override of :mod:`gaussmix.data.chunking`.
    prior : Prior or None
        The conjugate prior's hyperparameters as given (:mod:`gaussmix.priors`;
        resolved against the data when the fit frames them); None: maximum likelihood.
    noise : NoiseOptions or None
        The noise component's options (:mod:`gaussmix.noise_start`); None: no noise component.
    """

    covariance: CovarianceModel
    n_components: int
    reg_covar: float
    constraints: Optional[Constraints]
    init_params: Any
    chunk_size: Optional[int]
    prior: Optional[Prior] = None
    noise: Optional["NoiseOptions"] = None

    @classmethod
    def of(cls, model: Any, covariance: CovarianceModel) -> "Problem":
        """The settings of the estimator ``model`` (parameters already validated) for ``covariance``."""
        return cls(covariance, int(model.n_components), float(model.reg_covar), model._constraints(covariance),
                   model.init_params, model.chunk_size, check_prior(getattr(model, "prior", None)),
                   model._noise_options(covariance))

    @property
    def start_constraints(self) -> Optional[Constraints]:
        """What the M-step that makes a start keeps: equal weights only (frozen parts *are* the start)."""
        return None if self.constraints is None else self.constraints.at_start()
