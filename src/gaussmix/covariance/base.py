"""The interface every covariance structure implements.

A covariance model is a stateless strategy: it knows the shapes of its
parameters and how to estimate them from :class:`~gaussmix.stats.SuffStats`,
how to evaluate Gaussian log-densities through the precision Cholesky factor,
and how many free parameters it has. The parameter arrays themselves live in
:class:`~gaussmix.params.MixtureParams`, in scikit-learn's layout:

=========  ========================  =================  ===================
name       mclust names              ``covariances_``   ``precisions_cholesky_``
=========  ========================  =================  ===================
full       VVV, VEE, EVE, VVE,       (K, D, D)          (K, D, D)
           EEV, VEV, EVV
tied       EEE                       (D, D)             (D, D)
diag       VVI, EEI, VEI, EVI        (K, D)             (K, D)
spherical  VII, EII                  (K,)               (K,)
=========  ========================  =================  ===================

mclust writes every structure as ``Sigma_k = lambda_k D_k A_k D_k^T`` (volume,
orientation, shape; Celeux & Govaert, 1995); its 14 names say which of the
three are Equal across components, Variable, or the Identity. The mclust
structures use the layout of the scikit-learn type they constrain (for EEI and
EII the (K, ...) arrays hold K equal rows), so the evaluation code of
``full`` / ``diag`` / ``spherical`` serves them unchanged; only the M-step
(:meth:`CovarianceModel.estimate`) and the parameter count differ.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional

import numpy as np

from ..backends import backend_for, get_namespace
from ..exceptions import CollapsedComponentError
from ..stats import SuffStats


@dataclass(frozen=True)
class PriorTerms:
    """How mclust's conjugate prior (Fraley & Raftery 2007) enters one structure's M-step.

    The maximum a posteriori M-step of every structure mclust gives a prior is
    its maximum-likelihood :meth:`CovarianceModel.estimate` on *posterior*
    statistics: component k's scatter gains the prior's scale (and the
    shrinkage term of its mean, :mod:`gaussmix.priors`) and its weight ``N_k``
    a pseudo-count. The terms are those of mclust 6's EM (``mclust.f``'s
    ``me*p``), read from its output; see ``benchmarks/mclust_prior_reference.R``.

    Attributes
    ----------
    scale : {"matrix", "diagonal", "trace"}
        What the scatter gains of the prior's scale matrix ``Lambda`` (D, D):
        ``Lambda`` itself (dense structures); its mean variance
        ``tr(Lambda) / D`` on every diagonal entry (diagonal structures); or
        that mean variance as the whole trace (spherical ones). The last two
        are mclust's scalar scale.
    pooled : bool
        The scale is added once for the whole mixture (the structures whose
        M-step pools the scatters: EII, EEI, EEE), not to each component.
    count : callable
        ``count(dof, K, D)``: the pseudo-count added to every ``N_k``.
    """

    scale: str
    pooled: bool
    count: Callable[[float, int, int], float]


class CovarianceModel(ABC):
    """One covariance structure of a Gaussian mixture."""

    #: public name, as scikit-learn spells it
    name: ClassVar[str]
    #: other accepted names (e.g. mclust's)
    aliases: ClassVar[tuple[str, ...]] = ()
    #: whether the M-step needs full (K, D, D) scatter matrices or only diagonals
    full_scatter: ClassVar[bool]
    #: registered names of the structures a marginal / a conditional of this one satisfies;
    #: None: this structure itself (see :mod:`gaussmix.conditioning`)
    marginal_structure: ClassVar[Optional[str]] = None
    conditional_structure: ClassVar[Optional[str]] = None
    #: whether each component's covariance is estimated from its own statistics alone (VVV,
    #: VVI, VII): only then can some components' covariances be frozen and the others fitted
    independent_components: ClassVar[bool] = False
    #: the M-step's twin in the compiled EM loop (``gaussmix.covariance._numba_em.M_STEPS``),
    #: read from the class's own namespace only, so that a subclass with another M-step does
    #: not inherit it; None: EM runs in Python (see :mod:`gaussmix.compiled_em`)
    compiled_m_step: ClassVar[Optional[str]] = None
    #: how the precisions are stored, for the E-step engines (:mod:`gaussmix.estep`):
    #: "full", "tied", "diag" or "spherical" (the scikit-learn layouts above), or None
    #: for a layout only the generic engine evaluates
    layout: ClassVar[Optional[str]] = None
    #: how mclust's conjugate prior enters the M-step (:class:`PriorTerms`), read from the
    #: class's own namespace only, as ``compiled_m_step``; None: no prior (mclust has none
    #: for VEE, EVE, VVE and EVV)
    conjugate_prior: ClassVar[Optional[PriorTerms]] = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- shapes and counting -------------------------------------------------
    @abstractmethod
    def parameter_shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of ``covariances_`` (and of precisions) for K components, D features."""

    @abstractmethod
    def n_covariance_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free parameters in the covariances."""

    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Free parameters of the whole mixture: weights, means and covariances."""
        return (
            (n_components - 1)
            + n_components * n_features
            + self.n_covariance_parameters(n_components, n_features)
        )

    # -- estimation ----------------------------------------------------------
    @abstractmethod
    def estimate(self, stats: SuffStats, reg_covar: float, previous: Optional[Any] = None) -> Any:
        """Maximum-likelihood covariances from summed statistics.

        Parameters
        ----------
        stats : SuffStats
        reg_covar : float
            Regularisation: the scatter of component k gains ``reg_covar N_k I``
            (for full/tied/diag/spherical: ``reg_covar`` on the covariance diagonals).
        previous : array, optional
            The previous covariances in this model's layout. Structures whose
            M-step iterates (EVE, VVE, VEE, VEV, VEI) start from them, so that an
            EM step never lowers the log-likelihood; the others ignore them.

        Returns
        -------
        array of shape :meth:`parameter_shape`
        """

    @abstractmethod
    def precision_cholesky(self, covariances: Any, *, reg_covar: float = 0.0) -> Any:
        """Factor ``C`` with ``C C^T = inv(covariance)``, triangular where dense.

        ``reg_covar``: what the M-step added to every variance (see
        :meth:`_raise_if_collapsed`).

        Raises
        ------
        CollapsedComponentError
            If a covariance is not positive definite.
        """

    @abstractmethod
    def precisions(self, precisions_cholesky: Any) -> Any:
        """Precision matrices (or diagonals) from their Cholesky factors."""

    @abstractmethod
    def covariances_from_precisions(self, precisions: Any) -> Any:
        """Covariances from precisions (both in this model's layout)."""

    @abstractmethod
    def precision_cholesky_from_precisions(self, precisions: Any) -> Any:
        """Cholesky factors of user-given precisions (validated beforehand)."""

    # -- evaluation ----------------------------------------------------------
    @abstractmethod
    def mahalanobis(self, X: Any, means: Any, precisions_cholesky: Any) -> Any:
        """Squared Mahalanobis distances of shape (n, K) of rows to each mean."""

    @abstractmethod
    def log_det_precision_cholesky(self, precisions_cholesky: Any, n_features: int) -> Any:
        """``log det C_k`` per component, shape (K,) (broadcastable)."""

    def log_gaussian(self, X: Any, means: Any, precisions_cholesky: Any) -> Any:
        """Log-density of each row under each component, shape (n, K)."""
        n_features = X.shape[1]
        with np.errstate(over="ignore"):  # a distance past the dtype's range is a density of zero
            maha = self.mahalanobis(X, means, precisions_cholesky)
        log_det = self.log_det_precision_cholesky(precisions_cholesky, n_features)
        return -0.5 * (n_features * math.log(2 * math.pi) + maha) + log_det

    # -- dense views ---------------------------------------------------------
    @abstractmethod
    def dense(self, covariances: Any, n_components: int, n_features: int) -> Any:
        """Covariances as a dense (K, D, D) stack (for sampling, plots, conditioning)."""

    # -- helpers shared by the subclasses -------------------------------------
    @staticmethod
    def _centre(X: Any, means: Any) -> tuple[Any, Any]:
        """Shift rows and means by the mean of the means.

        Evaluating ``(x - mu) C`` as ``x C - mu C`` cancels badly when the data
        sit far from the origin (float32 at an offset of 1e4); after this
        shift both terms are of the order of the data's spread. Where one mean
        lies far from the others, the shared frame cannot hold them all: see
        :func:`held_by_frame`.
        """
        xp = get_namespace(X, means)
        origin = xp.mean(means, axis=0)
        return X - origin, means - origin

    @staticmethod
    def _raise_if_collapsed(variances: Any, reg_covar: float = 0.0) -> None:
        """Raise :class:`CollapsedComponentError` for components with a vanishing variance.

        ``variances`` has shape (K, D) (per-feature variances of each component;
        (1, D) for a shared covariance). A variance is treated as collapsed when
        it is not finite or not above ``10 eps`` times the largest variance of
        that feature among the components: below that, rounding and not data
        decide its value (a component sitting on repeated rows). Except where it
        holds at least half of ``reg_covar``, the regularisation the M-step added
        to it: the user's floor then decides it, not rounding (in float32 the
        bound is 1.2e-6 of the largest variance, and a component on one row,
        whose variance is reg_covar, stopped fits that float64 and scikit-learn
        carry on; an emptied component's covariance is ``reg_covar`` alone).
        """
        xp = get_namespace(variances)
        eps = float(xp.finfo(variances.dtype).eps)
        finite = xp.isfinite(variances)
        largest = xp.max(xp.where(finite, variances, xp.zeros_like(variances)), axis=0, keepdims=True)
        vanishing = ~(variances > 10 * eps * largest)
        if reg_covar > 0:
            vanishing = vanishing & ~(variances > 0.5 * reg_covar)
        bad = xp.any(vanishing | ~finite | ~(variances > 0), axis=1)
        if bool(xp.any(bad)):
            indices = [int(i) for i in backend_for(xp).to_numpy(xp.nonzero(bad)[0])]
            raise CollapsedComponentError(indices)


#: how far a component's mean may lie from the origin of a frame shared by every
#: component, in its own standard deviations summed over its whitened coordinates,
#: for ``x C - mu C`` in that frame to stay exact: the frame then adds at most about
#: this many units of rounding to a whitened coordinate (float64: 1e-12; float32:
#: 5e-4), and ordinary mixtures (clusters tens of deviations apart) stay within it
FRAME_SPAN = 2.0**12


def held_by_frame(spans: Any) -> Optional[np.ndarray]:
    """Which components a shared frame holds exactly, as a NumPy bool array (K,).

    Parameters
    ----------
    spans : array of shape (K,)
        ``|mu_k - origin|^T |C_k|`` summed over the whitened coordinates: how many
        standard deviations of component k its mean lies from the frame's origin
        (an upper bound). Whitening ``x - origin`` instead of ``x - mu_k`` costs
        about ``eps`` times that in every whitened coordinate of a row near
        ``mu_k``: with one mean at 1e20 (or a component fitted to outliers at
        1e14), the mean of the means is far from every other one as well, and
        their log-densities lost up to 77 nats.

    Returns
    -------
    ndarray of shape (K,), bool, or None
        False for spans over :data:`FRAME_SPAN` (and for NaN ones): compute those
        components about their own means. None for arrays of other namespaces than
        NumPy: deciding would read the device back for every chunk, so every
        component is computed about its own mean there.
    """
    if not isinstance(spans, np.ndarray):
        return None
    return spans <= FRAME_SPAN


def own_frame_columns(xp: Any, held: Any, shared: Callable[[], Any], own: Callable[[int], Any]) -> Any:
    """Squared Mahalanobis distances (n, K): the held components' columns from ``shared()``
    (n, K), computed only if some are held; the others' from ``own(k)`` (n,), about their
    own means.

    Parameters
    ----------
    xp : namespace
    held : ndarray of shape (K,), bool
        See :func:`held_by_frame`.
    shared : callable
        Returns every component's distances in the shared frame, shape (n, K).
    own : callable
        ``own(k)``: component k's distances about its own mean, shape (n,).
    """
    frame = shared() if held.any() else None
    columns = [frame[:, k] if held[k] else own(k) for k in range(held.shape[0])]
    return xp.stack(columns, axis=1)
