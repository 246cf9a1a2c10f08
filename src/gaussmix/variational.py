"""The variational maths of a Bayesian Gaussian mixture, on summed statistics.

scikit-learn's ``BayesianGaussianMixture`` (Bishop 2006, ch. 10.2; Blei & Jordan
2006 for the Dirichlet process) computed from :class:`~gaussmix.stats.SuffStats`
instead of from the (n, K) responsibilities: its M-step needs only ``N_k``, the
weighted means and the scatters, and the one term of its lower bound that reads
the responsibilities, their entropy, follows from the same statistics and the
E-step's summed log-likelihood (see :func:`responsibility_entropy`). Every
formula, including scikit-learn's conventions (``N_k + 10 eps``, ``reg_covar``
added to the scatter divided by ``N_k``, the tied structure's averaged degrees
of freedom), follows ``sklearn/mixture/_bayesian_mixture.py``.

Parameter layouts are scikit-learn's (see :mod:`gaussmix.covariance.base`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
from scipy.special import betaln, digamma, gammaln

from .backends import asarray_like
from .covariance import get_covariance_model
from .covariance.full import dense_precision_cholesky
from .exceptions import CollapsedComponentError
from .params import MixtureParams
from .stats import SuffStats

#: scikit-learn's message when a covariance cannot be factorised
PRECISION_ERROR = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton "
    "or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)


@dataclass(frozen=True)
class Priors:
    """The resolved priors of a fit (scikit-learn's ``*_prior_`` attributes).

    Attributes
    ----------
    prior_type : {"dirichlet_process", "dirichlet_distribution"}
    weight_concentration : float
    mean_precision : float
    mean : ndarray of shape (D,)
    degrees_of_freedom : float
    covariance : ndarray of shape (D, D) (full, tied), (D,) (diag), or float (spherical)
    """

    prior_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: Any


@dataclass(frozen=True)
class Posterior:
    """The variational posterior: scikit-learn's fitted parameters of one iteration.

    Attributes
    ----------
    weight_concentration : ndarray of shape (K,), or a pair of them
        Dirichlet parameters, or (for the Dirichlet process) the two Beta
        parameters of each stick.
    mean_precision : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    degrees_of_freedom : ndarray of shape (K,), or float (tied)
    covariances : ndarray
        ``W_k^-1 / nu_k`` in the covariance type's layout.
    precisions_cholesky : ndarray
        Upper-triangular factors of ``inv(covariances)``, same layout.
    """

    weight_concentration: Union[np.ndarray, tuple[np.ndarray, np.ndarray]]
    mean_precision: np.ndarray
    means: np.ndarray
    degrees_of_freedom: Any
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    def as_tuple(self) -> tuple:
        """scikit-learn's ``_get_parameters()`` order."""
        return (
            self.weight_concentration, self.mean_precision, self.means,
            self.degrees_of_freedom, self.covariances, self.precisions_cholesky,
        )


@dataclass(frozen=True)
class VariationalParams(MixtureParams):
    """:class:`MixtureParams` whose E-step adds per-component terms other than ``log pi_k``.

    The variational E-step's log-responsibilities are a Gaussian log-density in
    ``means`` and ``covariances`` plus a per-component term (expected log-weight
    and log-determinant, :func:`estep_log_terms`): so the covariance structures'
    E-step kernels run it unchanged, with ``log_terms`` in place of ``log pi_k``.

    Attributes
    ----------
    log_terms : ndarray of shape (K,)
        Shifting every term by one constant changes no responsibility. For the
        E-step of a fit (:func:`estep_params`) they are normalised, in float64:
        their exponentials sum to one and are ``weights``, which the kernels'
        thresholds read as mixture weights. For scoring rows
        (:func:`inference_params`) they are left as they are, so that the
        log-densities are scikit-learn's.
    """

    log_terms: Any = None

    def log_weights(self, dtype: Any = None) -> Any:
        return self.log_terms if dtype is None else self.log_terms.astype(dtype)

    def converted_like(self, like: Any) -> "VariationalParams":
        converted = super().converted_like(like)
        return dataclasses.replace(converted, log_terms=asarray_like(self.log_terms, like))


def expected_log_weights(posterior: Posterior, prior_type: str) -> np.ndarray:
    """``E[log pi_k]`` under the posterior, shape (K,) (scikit-learn's ``_estimate_log_weights``)."""
    concentration = posterior.weight_concentration
    if prior_type == "dirichlet_process":
        digamma_sum = digamma(concentration[0] + concentration[1])
        digamma_a = digamma(concentration[0])
        digamma_b = digamma(concentration[1])
        return digamma_a - digamma_sum + np.hstack((0, np.cumsum(digamma_b - digamma_sum)[:-1]))
    return digamma(concentration) - digamma(np.sum(concentration))


def mixture_weights(posterior: Posterior, prior_type: str) -> np.ndarray:
    """Expected mixture weights, shape (K,) (scikit-learn's ``weights_``)."""
    concentration = posterior.weight_concentration
    if prior_type == "dirichlet_process":
        total = concentration[0] + concentration[1]
        remaining = concentration[1] / total
        weights = concentration[0] / total * np.hstack((1, np.cumprod(remaining[:-1])))
        return weights / np.sum(weights)
    return concentration / np.sum(concentration)


def log_det_cholesky(factors: np.ndarray, covariance_type: str, n_features: int) -> Any:
    """``log det C_k``: shape (K,), or a float for tied."""
    if covariance_type == "full":
        return np.sum(np.log(np.diagonal(factors, axis1=1, axis2=2)), axis=1)
    if covariance_type == "tied":
        return np.sum(np.log(np.diag(factors)))
    if covariance_type == "diag":
        return np.sum(np.log(factors), axis=1)
    return n_features * np.log(factors)


def estep_log_terms(posterior: Posterior, prior_type: str, n_features: int) -> np.ndarray:
    """What the E-step adds to ``log N(x | means_k, covariances_k)``, shape (K,).

    ``E[log pi_k] + (E[log det Lambda_k] - D log nu_k - D / beta_k) / 2``:
    scikit-learn's ``_estimate_log_prob`` minus the Gaussian log-density, plus
    its ``_estimate_log_weights``.
    """
    dof = posterior.degrees_of_freedom
    log_lambda = n_features * np.log(2.0) + np.sum(
        digamma(0.5 * (dof - np.arange(0, n_features)[:, np.newaxis])), 0
    )
    terms = -0.5 * n_features * np.log(dof) + 0.5 * (log_lambda - n_features / posterior.mean_precision)
    return expected_log_weights(posterior, prior_type) + terms


def estep_params(posterior: Posterior, prior_type: str, covariance_type: str, dtype: Any) -> VariationalParams:
    """The posterior as parameters the covariance structures' E-step kernels run on.

    ``dtype``: the rows' (float32 rows keep float32 parameters, as in EM).
    """
    n_features = posterior.means.shape[1]
    terms = np.asarray(estep_log_terms(posterior, prior_type, n_features), dtype=np.float64)
    shift = float(np.max(terms) + np.log(np.sum(np.exp(terms - np.max(terms)))))
    log_terms = terms - shift
    return VariationalParams(
        weights=np.exp(log_terms).astype(dtype),
        means=posterior.means.astype(dtype),
        covariances=posterior.covariances.astype(dtype),
        precisions_cholesky=posterior.precisions_cholesky.astype(dtype),
        covariance=get_covariance_model(covariance_type),
        log_terms=log_terms,
    )


def inference_params(posterior: Posterior, prior_type: str, covariance_type: str) -> VariationalParams:
    """The posterior as parameters whose ``log_weighted_prob`` is scikit-learn's ``_estimate_weighted_log_prob``.

    For ``predict``, ``predict_proba``, ``score_samples`` and ``score``; NumPy
    arrays as fitted (float64 from float64 rows).
    """
    n_features = posterior.means.shape[1]
    return VariationalParams(
        weights=mixture_weights(posterior, prior_type),
        means=posterior.means,
        covariances=posterior.covariances,
        precisions_cholesky=posterior.precisions_cholesky,
        covariance=get_covariance_model(covariance_type),
        log_terms=np.asarray(estep_log_terms(posterior, prior_type, n_features), dtype=np.float64),
    )


def precision_cholesky(covariances: np.ndarray, covariance_type: str, float32: bool = False) -> np.ndarray:
    """Upper-triangular ``C`` with ``C C^T = inv(covariance)``, batched over components.

    Raises scikit-learn's ValueError where a covariance is not positive definite.
    """
    message = PRECISION_ERROR
    if float32:
        message += " The numerical accuracy can also be improved by passing float64 data instead of float32."
    if covariance_type in ("full", "tied"):
        try:
            return dense_precision_cholesky(covariances)
        except CollapsedComponentError:
            raise ValueError(message) from None
    if np.any(covariances <= 0.0):
        raise ValueError(message)
    return 1.0 / np.sqrt(covariances)


def _scatter(stats: SuffStats, covariance_type: str) -> np.ndarray:
    """The statistics' scatter in the layout the covariance type's M-step reads.

    full (K, D, D); tied: the pooled (D, D); diag (K, D); spherical: traces (K,).
    """
    scatter = np.asarray(stats.scatter, dtype=np.float64)
    if covariance_type == "full":
        return scatter
    if covariance_type == "tied":
        if scatter.ndim != 3:
            raise ValueError("the tied M-step needs full (K, D, D) or pooled (1, D, D) scatters")
        return np.sum(scatter, axis=0)
    if covariance_type == "diag":
        return np.diagonal(scatter, axis1=1, axis2=2) if scatter.ndim == 3 else scatter
    if scatter.ndim == 3:
        return np.trace(scatter, axis1=1, axis2=2)
    return np.sum(scatter, axis=1)


def m_step(
    stats: SuffStats, priors: Priors, covariance_type: str, reg_covar: float, eps: float, float32: bool = False
) -> Posterior:
    """The variational M-step on summed statistics (scikit-learn's ``_m_step``).

    Parameters
    ----------
    stats : SuffStats
        Summed over every chunk; any scatter layout that holds what
        ``covariance_type`` needs (:func:`_scatter`).
    priors : Priors
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        As scikit-learn: added to each scatter divided by ``N_k``, so ``N_k reg_covar``
        to the Wishart scale.
    eps : float
        The machine epsilon of the rows' dtype: ``N_k + 10 eps`` as scikit-learn.
    float32 : bool
        Whether the rows are float32 (only the error message says so).

    Returns
    -------
    Posterior
    """
    resp_weight = np.asarray(stats.resp_weight, dtype=np.float64)
    n_components, n_features = stats.means.shape
    nk = resp_weight + 10 * eps
    # scikit-learn's means are resp^T X / (N_k + 10 eps): the weighted means, scaled
    xk = np.asarray(stats.means, dtype=np.float64) * (resp_weight / nk)[:, None]
    scatter = _scatter(stats, covariance_type)

    if priors.prior_type == "dirichlet_process":
        concentration = (
            1.0 + nk,
            priors.weight_concentration + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0)),
        )
    else:
        concentration = priors.weight_concentration + nk

    beta0, m0 = priors.mean_precision, priors.mean
    mean_precision = beta0 + nk
    means = (beta0 * m0 + nk[:, np.newaxis] * xk) / mean_precision[:, np.newaxis]
    diff = xk - m0
    # N_k beta_0 / beta_k: the weight of the means' spread about the prior mean
    spread = nk * beta0 / mean_precision

    if covariance_type == "full":
        dof = priors.degrees_of_freedom + nk
        covariances = (
            priors.covariance
            + scatter
            + (nk * reg_covar)[:, None, None] * np.eye(n_features)
            + spread[:, None, None] * (diff[:, :, None] * diff[:, None, :])
        )
        covariances = covariances / dof[:, None, None]
    elif covariance_type == "tied":
        total = nk.sum()
        dof = priors.degrees_of_freedom + total / n_components
        covariances = (
            priors.covariance
            + (scatter + total * reg_covar * np.eye(n_features)) / n_components
            + beta0 / n_components * np.dot((nk / mean_precision) * diff.T, diff)
        )
        covariances = covariances / dof
    elif covariance_type == "diag":
        dof = priors.degrees_of_freedom + nk
        covariances = priors.covariance + scatter + (nk * reg_covar)[:, None] + spread[:, None] * np.square(diff)
        covariances = covariances / dof[:, None]
    else:
        dof = priors.degrees_of_freedom + nk
        covariances = priors.covariance + scatter / n_features + nk * reg_covar + spread * np.mean(np.square(diff), 1)
        covariances = covariances / dof
    factors = precision_cholesky(covariances, covariance_type, float32)
    return Posterior(concentration, mean_precision, means, dof, covariances, factors)


def _quadratic_sums(stats: SuffStats, params: MixtureParams, covariance_type: str) -> np.ndarray:
    """``sum_n w_n r_nk (x_n - mu_k)^T P_k (x_n - mu_k)`` per component, shape (K,).

    From the centred statistics: ``tr(P_k S_k) + N_k |(m_k - mu_k) C_k|^2`` (for
    tied the traces are of the pooled scatter, in the first entry).
    """
    resp_weight = np.asarray(stats.resp_weight, dtype=np.float64)
    factors = np.asarray(params.precisions_cholesky, dtype=np.float64)
    delta = np.asarray(stats.means, dtype=np.float64) - np.asarray(params.means, dtype=np.float64)
    scatter = _scatter(stats, covariance_type)
    if covariance_type == "full":
        whitened = np.einsum("kd,kde->ke", delta, factors)
        traces = np.einsum("kij,kij->k", scatter @ factors, factors)
        return traces + resp_weight * np.sum(whitened * whitened, axis=1)
    if covariance_type == "tied":
        whitened = delta @ factors
        quadratic = resp_weight * np.sum(whitened * whitened, axis=1)
        quadratic[0] += np.sum((scatter @ factors) * factors)
        return quadratic
    precisions = factors * factors
    if covariance_type == "diag":
        return np.sum(precisions * (scatter + resp_weight[:, None] * delta * delta), axis=1)
    return precisions * (scatter + resp_weight * np.sum(delta * delta, axis=1))


def responsibility_entropy(stats: SuffStats, loglik: float, params: VariationalParams, covariance_type: str) -> float:
    """``-sum_n w_n sum_k r_nk log r_nk`` of an E-step, from its statistics.

    With ``l_nk`` the E-step's log-terms (Gaussian log-density plus
    ``params.log_terms``) and ``L_n`` their log-sum-exp (whose weighted sum is
    ``loglik``), ``log r_nk = l_nk - L_n``, so the sum is ``loglik -
    sum_k sum_n w_n r_nk l_nk``; the latter is linear in the weighted moments of
    each component (``N_k``, ``m_k``, ``S_k``). So the kernels need not return
    the (n, K) responsibilities. Its rounding is that of ``loglik``, relative
    to the log-likelihood and not to the (possibly small) entropy.

    Parameters
    ----------
    stats : SuffStats
        Of the E-step run with ``params``.
    loglik : float
        ``sum_n w_n L_n`` of that E-step.
    params : VariationalParams
    covariance_type : str
    """
    n_features = stats.means.shape[1]
    resp_weight = np.asarray(stats.resp_weight, dtype=np.float64)
    factors = np.asarray(params.precisions_cholesky, dtype=np.float64)
    log_det = log_det_cholesky(factors, covariance_type, n_features)
    per_row = params.log_terms + log_det - 0.5 * n_features * math.log(2 * math.pi)
    cross = np.sum(resp_weight * per_row) - 0.5 * np.sum(_quadratic_sums(stats, params, covariance_type))
    return float(loglik) - float(cross)


def _log_wishart_norm(dof: Any, log_det_precisions_chol: Any, n_features: int) -> Any:
    """Log normalisation of the Wishart distributions (scikit-learn's ``_log_wishart_norm``)."""
    return -(
        dof * log_det_precisions_chol
        + dof * n_features * 0.5 * math.log(2.0)
        + np.sum(gammaln(0.5 * (dof - np.arange(n_features)[:, np.newaxis])), 0)
    )


def lower_bound(entropy: float, posterior: Posterior, priors: Priors, covariance_type: str) -> float:
    """scikit-learn's ``_compute_lower_bound``: the entropy of the E-step's
    responsibilities and the normalisations of the M-step's posterior."""
    n_components, n_features = posterior.means.shape
    log_det_precisions_chol = log_det_cholesky(
        posterior.precisions_cholesky, covariance_type, n_features
    ) - 0.5 * n_features * np.log(posterior.degrees_of_freedom)
    norms = _log_wishart_norm(posterior.degrees_of_freedom, log_det_precisions_chol, n_features)
    # tied: one Wishart shared by the K components, counted K times as scikit-learn does
    log_wishart = n_components * np.sum(norms) if covariance_type == "tied" else np.sum(norms)
    if priors.prior_type == "dirichlet_process":
        log_norm_weight = -np.sum(betaln(posterior.weight_concentration[0], posterior.weight_concentration[1]))
    else:
        concentration = posterior.weight_concentration
        log_norm_weight = gammaln(np.sum(concentration)) - np.sum(gammaln(concentration))
    return float(
        entropy - log_wishart - log_norm_weight - 0.5 * n_features * np.sum(np.log(posterior.mean_precision))
    )


def precisions(factors: np.ndarray, covariance_type: str) -> np.ndarray:
    """Precision matrices (or diagonals) from their Cholesky factors."""
    if covariance_type in ("full", "tied"):
        return factors @ np.swapaxes(factors, -1, -2)
    return factors**2
