"""EDDA: one Gaussian per class, one covariance structure shared by the classes (mclust's EDDA).

The class labels are the responsibilities, so the fit is an M-step from
one-hot labels: no EM, no start. Structures whose M-step iterates (EVE,
VVE, EEV, VEV, EVV, ...) repeat it on the same statistics until it settles.
The BIC is mclust's: the log-likelihood of the mixture of the class
Gaussians weighted by the class proportions, and a parameter count without
those proportions (the classes are given). It agrees with mclust's EDDA
table to the digits printed there (tests/test_classifier.py). AIC and the
ICLs are :func:`gaussmix.select`'s criteria on the same mixture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.special

from .covariance import get_covariance_model
from .em import m_step
from .init import assignment_stats
from .params import MixtureParams

#: repeated M-steps of the iterative structures, and the relative change of the covariances that ends them
MAX_MSTEPS = 500
MSTEP_TOL = 1e-10


@dataclass(frozen=True)
class EddaFit:
    """One structure's fit.

    Attributes
    ----------
    params : MixtureParams
        C components (one per class, in label order) in the user's coordinates;
        ``params.weights`` are the weighted class proportions.
    log_likelihood : float
        mclust's: ``sum_n w_n log sum_c pi_c N(x_n | mu_c, Sigma_c)``, the rows' log-density
        under the mixture of the classes with their proportions ``pi`` (labels not used).
    n_parameters : int
        Means and covariance parameters (no proportions).
    bic : float
        ``-2 log_likelihood + n_parameters log(sum w)``; lower is better (mclust's BIC negated).
    aic : float
        ``-2 log_likelihood + 2 n_parameters``.
    icl : float
        ``bic - 2 sum_n w_n log max_c z_nc``, with ``z`` the responsibilities of the
        classes' mixture (mclust's ICL negated, as :func:`gaussmix.select`'s).
    icl_entropy : float
        ``bic + 2 sum_n w_n entropy(z_n)`` (the soft ICL).
    """

    covariance_type: str
    params: MixtureParams
    log_likelihood: float
    n_parameters: int
    bic: float
    aic: float
    icl: float
    icl_entropy: float

    def criterion(self, name: str) -> float:
        """The value of criterion ``name`` (one of :data:`gaussmix.selection.CRITERIA`); lower is better."""
        return float(getattr(self, name))


def fit_edda(X: np.ndarray, labels: np.ndarray, n_classes: int, covariance_type: str,
             sample_weight: Optional[np.ndarray] = None, reg_covar: float = 1e-6) -> EddaFit:
    """Fit one Gaussian per class with the structure ``covariance_type`` shared by the classes.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    labels : ndarray of int of shape (n_samples,)
        Class indices in ``0..n_classes-1``; every class has positive weight.
    n_classes : int
    covariance_type : str
        Any registered structure.
    sample_weight : ndarray of shape (n_samples,), optional
        Frequency weights.
    reg_covar : float, default=1e-6
        Added to the covariance diagonals, as in :class:`~gaussmix.GaussianMixture`.

    Returns
    -------
    EddaFit

    Raises
    ------
    CollapsedComponentError
        When a class's covariance is singular under this structure.
    """
    covariance = get_covariance_model(covariance_type)
    weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
    # Statistics about the weighted mean, as EM's, so the scatter loses no digits to the offset.
    origin = (weights @ X) / np.sum(weights)
    # Not initial_stats: its repair of thin starting clusters would change a small class's own scatter,
    # and differently for weights and repeated rows; here the labels are the truth, not a start.
    stats = assignment_stats(X - origin, sample_weight, labels, n_classes, covariance.full_scatter)
    params = m_step(stats, covariance, reg_covar, origin=origin)
    for _ in range(MAX_MSTEPS):
        # the previous covariances start the iterative structures' next M-step; the others repeat exactly
        following = m_step(stats, covariance, reg_covar, previous=params, origin=origin)
        change = np.max(np.abs(following.dense_covariances() - params.dense_covariances()))
        params = following
        if change <= MSTEP_TOL * np.max(np.abs(params.dense_covariances())):
            break
    params = params.translated(origin)
    weighted = params.log_weighted_prob(X)
    log_density = scipy.special.logsumexp(weighted, axis=1)
    # The classes' mixture's responsibilities: what the classification criteria (ICL) weigh.
    resp = np.exp(weighted - log_density[:, None])
    log_likelihood = float(weights @ log_density)
    n_parameters = covariance.n_parameters(n_classes, X.shape[1]) - (n_classes - 1)
    bic = -2.0 * log_likelihood + n_parameters * math.log(float(np.sum(weights)))
    hard = float(weights @ -np.log(resp.max(axis=1)))
    entropy = float(weights @ scipy.special.entr(resp).sum(axis=1))
    return EddaFit(covariance_type, params, log_likelihood, n_parameters, bic,
                   aic=-2.0 * log_likelihood + 2.0 * n_parameters, icl=bic + 2.0 * hard, icl_entropy=bic + 2.0 * entropy)
