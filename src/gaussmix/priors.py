"""mclust's conjugate prior: maximum a posteriori (MAP) EM (Fraley & Raftery, 2007).

``GaussianMixture(prior="default")``, or ``prior=Prior(...)`` with chosen
hyperparameters, regularises every M-step with the prior mclust's
``priorControl()`` defines: each mean ``mu_k | Sigma_k ~ N(mean, Sigma_k /
shrinkage)``, and an inverse-Wishart (dense structures) or inverse-gamma
(diagonal and spherical ones) prior with ``dof`` degrees of freedom and scale
``scale`` on the covariances. EM then climbs the log-posterior, log-likelihood
plus log prior density, instead of the log-likelihood, and a component can no
longer collapse onto a few rows: its covariance is held up by the prior's scale.

A prior is only another M-step. The E-step is unchanged; the M-step is each
structure's maximum-likelihood estimate on *posterior* statistics: the
shrunk means ``(N_k ybar_k + shrinkage mean) / (N_k + shrinkage)``, every
scatter plus the prior's scale and the shrinkage term ``shrinkage N_k / (N_k +
shrinkage) (ybar_k - mean)(ybar_k - mean)^T``, every ``N_k`` plus a pseudo-count.
Each covariance class says how its structure takes them
(:class:`gaussmix.covariance.base.PriorTerms`, read from mclust 6's M-steps);
mclust has no prior for VEE, EVE, VVE and EVV, and neither has gaussmix.

Defaults (mclust's ``defaultPrior``) for K components and D features:
shrinkage 0.01; mean the data's column means; dof ``D + 2``; scale the data's
covariance (its diagonal where there are no more rows than features) times
``K^(-2/D)``. The diagonal and spherical structures take that scale's mean
variance ``tr(scale) / D`` (mclust's scalar scale).

Where gaussmix deliberately differs from mclust 6.0.0's EM (``me``, which
``mclustBIC`` and ``Mclust`` run; README.md has the numbers):

- EII with K > 1: mclust ignores the scale; gaussmix uses it, as mclust's own
  EII at K = 1, its VII and its one-dimensional ``E`` do.
- EEI with K > 1: mclust leaves the means unshrunk although the scatter gains
  their shrinkage term; gaussmix shrinks them, as in every other structure.
- ``dof`` is honoured (mclust's ``defaultPrior`` always takes ``D + 2``).

The pseudo-counts are mclust's EM's, structure by structure (its stand-alone
``mstep()`` uses others for EEI, EVI and EEV); VEI's, EVI's, EEI's and VEV's
with K > 1 are not those of the one-component model, which is the
unconstrained family's (mclust's ``mvn``), as in mclust.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .backends import asarray_like, get_namespace, to_numpy
from .covariance import CovarianceModel, canonical_covariance_types, get_covariance_model
from .covariance.base import PriorTerms
from .stats import SuffStats, stats_from_responsibilities

#: the value of ``GaussianMixture(prior=...)`` that means mclust's ``priorControl()``
DEFAULT = "default"
#: mclust's default shrinkage of the means towards the prior mean
DEFAULT_SHRINKAGE = 0.01


@dataclass(frozen=True, eq=False)
class Prior:
    """Hyperparameters of the conjugate prior (mclust's ``priorControl()``).

    Every one left None is computed from the training data as mclust's
    ``defaultPrior`` does (see :mod:`gaussmix.priors`).

    Parameters
    ----------
    shrinkage : float, default=0.01
        ``kappa >= 0``: how many rows' worth the prior mean counts in each
        component's mean. 0 leaves the means unshrunk.
    mean : array-like of shape (D,), default=None
        Where the means shrink to; None: the data's column means.
    dof : float, default=None
        Degrees of freedom ``nu > 0`` of the covariances' prior; None: ``D + 2``.
    scale : float or array-like of shape (D, D), default=None
        The covariances' prior scale: a symmetric positive semi-definite
        matrix, or a number ``s >= 0`` for ``s I``. None: the data's
        covariance times ``K^(-2/D)``. Diagonal and spherical structures use
        its mean variance ``tr(scale) / D``.

    Raises
    ------
    ValueError
        For a value out of range, of the wrong shape, not finite, or a
        ``mean`` given with ``shrinkage=0`` (it would have no effect).
    """

    shrinkage: float = DEFAULT_SHRINKAGE
    mean: Optional[Any] = None
    dof: Optional[float] = None
    scale: Optional[Any] = None

    def __post_init__(self) -> None:
        shrinkage = _real("shrinkage", self.shrinkage, allow_zero=True)
        object.__setattr__(self, "shrinkage", shrinkage)
        if self.mean is not None:
            mean = _finite_array("mean", self.mean)
            if mean.ndim != 1 or mean.size == 0:
                raise ValueError(f"Prior(mean=...) must be one value per feature, shape (D,); got shape {mean.shape}")
            if shrinkage == 0:
                raise ValueError("Prior(mean=...) is where the means shrink to, but shrinkage=0 shrinks none: "
                                 "give shrinkage > 0, or leave mean out")
            object.__setattr__(self, "mean", mean)
        if self.dof is not None:
            object.__setattr__(self, "dof", _real("dof", self.dof, allow_zero=False))
        if self.scale is not None:
            object.__setattr__(self, "scale", _scale(self.scale))

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Prior):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(repr(self.to_json()))

    def to_json(self) -> dict:
        """The hyperparameters as JSON values (arrays as nested lists; None where computed from the data)."""
        def listed(value: Any) -> Any:
            return value.tolist() if isinstance(value, np.ndarray) else value

        return {"shrinkage": self.shrinkage, "mean": listed(self.mean), "dof": self.dof, "scale": listed(self.scale)}

    @classmethod
    def from_json(cls, value: Any) -> "Prior":
        """The :class:`Prior` of :meth:`to_json`'s output.

        Raises
        ------
        ValueError
            For anything but a JSON object with these four keys and valid values.
        """
        keys = ("shrinkage", "mean", "dof", "scale")
        if not isinstance(value, dict) or set(value) != set(keys):
            raise ValueError(f"a prior is a JSON object with the keys {list(keys)}; got {value!r:.80}")
        return cls(**value)


def _real(name: str, value: Any, allow_zero: bool) -> float:
    """``value`` as a float, refused unless it is a finite real number above (or at) zero."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"Prior({name}=...) must be a number; got {value!r}")
    number = float(value)
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"Prior({name}=...) must be a finite number {bound}; got {number!r}")
    return number


def _finite_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a read-only float64 array, refused if not numeric or not finite."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"Prior({name}=...) must be numbers; got {value!r:.80}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Prior({name}=...) holds NaN or infinite values")
    array.setflags(write=False)
    return array


def _scale(value: Any) -> Any:
    """A scale as given: a number ``>= 0``, or a symmetric positive semi-definite (D, D) array."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return _real("scale", value, allow_zero=True)
    matrix = _finite_array("scale", value)
    if matrix.ndim == 0:
        return _real("scale", float(matrix), allow_zero=True)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(f"Prior(scale=...) must be a number or a square (D, D) matrix; got shape {matrix.shape}")
    size = float(np.max(np.abs(matrix)))
    if not np.allclose(matrix, matrix.T, rtol=0.0, atol=1e-12 * size):
        raise ValueError("Prior(scale=...) must be a symmetric matrix")
    if np.linalg.eigvalsh(matrix)[0] < -1e-12 * size:
        raise ValueError("Prior(scale=...) must be positive semi-definite (it has a negative eigenvalue): "
                         "it plays the part of a scatter matrix")
    return matrix


def check_prior(value: Any) -> Optional[Prior]:
    """``GaussianMixture(prior=...)`` as a :class:`Prior`, or None for none.

    Raises
    ------
    ValueError
        For anything but None, ``"default"`` or a :class:`Prior`.
    """
    if value is None or isinstance(value, Prior):
        return value
    if isinstance(value, str) and value == DEFAULT:
        return Prior()
    raise ValueError(f"prior must be None, {DEFAULT!r} (mclust's priorControl()) or a gaussmix.Prior; got {value!r:.80}")


def terms_of(covariance: CovarianceModel) -> Optional[PriorTerms]:
    """How the prior enters ``covariance``'s M-step, or None where it has no prior.

    Only the class's own declaration counts (as for ``compiled_m_step``): a
    subclass whose M-step differs does not inherit its parent's.
    """
    return vars(type(covariance)).get("conjugate_prior")


def structures_with_prior() -> list[str]:
    """The registered structures (one name each) that take a prior."""
    return [name for name in canonical_covariance_types() if terms_of(get_covariance_model(name)) is not None]


def check_supported(covariance: CovarianceModel) -> PriorTerms:
    """The :class:`PriorTerms` of ``covariance``.

    Raises
    ------
    ValueError
        Where the structure has no conjugate prior, naming those that have.
    """
    terms = terms_of(covariance)
    if terms is None:
        raise ValueError(
            f"covariance_type={covariance.name!r} has no conjugate prior (mclust has none for VEE, EVE, VVE "
            f"and EVV either): use one of {', '.join(structures_with_prior())}, or prior=None"
        )
    return terms


@dataclass(frozen=True)
class Moments:
    """The data's weighted column means (D,) and covariance (D, D) in the frame EM runs in, and its row count."""

    mean: np.ndarray
    covariance: np.ndarray
    n_rows: int


def moments_of_rows(X: Any, weights: Optional[Any], origin: Any, chunk_rows: int) -> Moments:
    """:class:`Moments` of in-memory rows ``X`` (n, D) (NumPy or a device array) minus ``origin`` (D,).

    Frequency weights of mean one (as the estimator scales them): the covariance divides by their sum less one.
    """
    shift = asarray_like(np.asarray(to_numpy(origin), dtype=np.float64), X[:1])
    stats = None
    for start in range(0, X.shape[0], chunk_rows):
        rows = X[start:start + chunk_rows] - shift
        part = _moment_stats(rows, None if weights is None else weights[start:start + chunk_rows])
        stats = part if stats is None else stats.merge(part)
    return _moments(stats, int(X.shape[0]))


def moments_of_stream(centred: Any) -> Moments:
    """:class:`Moments` of a framed stream (chunks already minus the origin): one pass.

    Raises
    ------
    ValueError
        For chunks with NaN (missing values have no covariance to default to).
    """
    from .streaming import reduce_chunks  # streaming imports the initialisers: loaded for streams only

    def chunk(X: Any, weights: Optional[Any], first_row: int) -> tuple[SuffStats, int]:
        if np.isnan(X).any():
            raise ValueError(_MISSING_VALUES)
        return _moment_stats(X, weights), X.shape[0]

    stats, n_rows = reduce_chunks(centred, chunk, lambda a, b: (a[0].merge(b[0]), a[1] + b[1]))
    return _moments(stats, n_rows)


#: why a default prior needs complete rows
_MISSING_VALUES = ("the default prior's mean and scale are the data's column means and covariance, which rows with "
                   "missing values do not give: pass Prior(mean=..., scale=...) with both given")


def _moment_stats(rows: Any, weights: Optional[Any]) -> SuffStats:
    """One component's statistics of ``rows`` (n, D): every row wholly in it."""
    xp = get_namespace(rows)
    column = xp.ones_like(rows[:, :1]) if weights is None else xp.astype(xp.reshape(weights, (-1, 1)), rows.dtype)
    total = float(rows.shape[0]) if weights is None else xp.sum(column)
    return stats_from_responsibilities(rows, column, True, total)


def _moments(stats: SuffStats, n_rows: int) -> Moments:
    mean = np.asarray(to_numpy(stats.means), dtype=np.float64)[0]
    scatter = np.asarray(to_numpy(stats.scatter), dtype=np.float64)[0]
    total = stats.total_weight
    total = float(total if isinstance(total, numbers.Real) else to_numpy(total))  # a device scalar for weighted rows
    return Moments(mean, scatter / max(total - 1.0, np.finfo(np.float64).tiny), n_rows)


@dataclass(frozen=True)
class ResolvedPrior:
    """A :class:`Prior`'s hyperparameters for one fit: given or computed, in the frame EM runs in.

    Attributes
    ----------
    shrinkage : float
    mean : ndarray of shape (D,)
        The prior mean less the frame's origin.
    dof : float
    scale : ndarray of shape (D, D)
    terms : PriorTerms
        How the fit's covariance structure takes the prior.
    n_components : int
    """

    shrinkage: float
    mean: np.ndarray
    dof: float
    scale: np.ndarray
    terms: PriorTerms
    n_components: int

    @property
    def count(self) -> float:
        """The pseudo-count every component's ``N_k`` gains."""
        return float(self.terms.count(self.dof, self.n_components, self.mean.shape[0]))

    def pseudo_scatter(self) -> np.ndarray:
        """What every component's scatter gains of the scale, shape (D, D) (see :class:`PriorTerms`)."""
        D = self.mean.shape[0]
        if self.terms.scale == "matrix":
            matrix = self.scale
        else:
            # mclust's scalar scale of the diagonal and spherical structures: the mean variance
            variance = float(np.trace(self.scale)) / D
            matrix = np.eye(D) * (variance if self.terms.scale == "diagonal" else variance / D)
        # a pooled structure's one covariance takes the scale once: a K-th from each component
        return matrix / self.n_components if self.terms.pooled else matrix

    def posterior(self, stats: SuffStats, frozen_means: Optional[Any] = None) -> tuple[Any, SuffStats]:
        """The MAP M-step's means and the statistics its covariance estimate takes.

        Parameters
        ----------
        stats : SuffStats
            The E-step's statistics (for frozen means, already taken about them: ``SuffStats.about``).
        frozen_means : bool array of shape (K,), optional
            Components whose mean is frozen: their scatter gains the whole
            ``shrinkage (mu_k - mean)(mu_k - mean)^T`` (the mean is not estimated).

        Returns
        -------
        means : array of shape (K, D)
            ``(N_k ybar_k + shrinkage mean) / (N_k + shrinkage)``; the prior mean for an emptied component.
        posterior : SuffStats
            Scatters plus the scale and the shrinkage terms, ``N_k`` plus the pseudo-count.
        """
        xp = get_namespace(stats.means)
        weight, like = stats.resp_weight, stats.means
        centre = xp.reshape(asarray_like(self.mean, like), (1, -1))
        deviation = stats.means - centre
        kappa = self.shrinkage
        if kappa > 0:
            means = (weight[:, None] * stats.means + kappa * centre) / (weight + kappa)[:, None]
            # the shrinkage term: what the mean's prior adds to the scatter about the shrunk mean
            shrink = kappa * weight / (weight + kappa)
        else:
            means, shrink = stats.means, xp.zeros_like(weight)
        if frozen_means is not None:
            shrink = xp.where(frozen_means, xp.full_like(weight, kappa), shrink)
        pseudo = asarray_like(self.pseudo_scatter(), like)
        return means, stats.with_scatter_added(shrink, deviation, pseudo, weight + self.count)

    def log_density(self, params: Any) -> float:
        """The log prior density of ``params`` (frame coordinates), up to a constant of the hyperparameters.

        ``-1/2 sum_k [c log det Sigma_k + tr(P Sigma_k^-1) + shrinkage (mu_k - mean)^T Sigma_k^-1 (mu_k - mean)]``
        with ``c`` the pseudo-count and ``P`` the pseudo-scatter: the function
        whose sum with the expected complete-data log-likelihood the MAP
        M-step maximises, so that EM never lowers log-likelihood plus it.
        """
        xp = get_namespace(params.means)
        covariance = params.covariance
        K, D = params.n_components, params.n_features
        like = params.means
        log_det = xp.zeros_like(params.weights) - 2 * covariance.log_det_precision_cholesky(params.precisions_cholesky, D)
        precisions = covariance.dense(covariance.precisions(params.precisions_cholesky), K, D)
        pseudo = asarray_like(self.pseudo_scatter(), like)
        traces = xp.sum(xp.sum(precisions * pseudo[None, :, :], axis=2), axis=1)
        total = xp.sum(self.count * log_det + traces)
        if self.shrinkage > 0:
            centre = xp.reshape(asarray_like(self.mean, like), (1, -1))
            distances = covariance.mahalanobis(centre, params.means, params.precisions_cholesky)[0]
            total = total + self.shrinkage * xp.sum(distances)
        return -0.5 * float(total)


def resolve(prior: Prior, covariance: CovarianceModel, n_components: int, n_features: int, origin: Any,
            moments: Callable[[], Moments]) -> ResolvedPrior:
    """The hyperparameters of ``prior`` for a fit of ``n_components`` in the frame centred on ``origin`` (D,).

    ``moments()`` is called only where the data decide a hyperparameter (mean or scale left None).

    Raises
    ------
    ValueError
        If the structure has no prior, or a given mean or scale has another number of features.
    """
    terms = check_supported(covariance)
    D, K = int(n_features), int(n_components)
    origin = np.asarray(to_numpy(origin), dtype=np.float64)
    data = moments() if prior.mean is None or prior.scale is None else None
    if prior.mean is None:
        mean = data.mean
    else:
        if prior.mean.shape != (D,):
            raise ValueError(f"Prior(mean=...) has {prior.mean.size} values, but the data have {D} features")
        mean = prior.mean - origin
    if prior.scale is None:
        # mclust's defaultPrior: var(data) (its diagonal without more rows than features) / K^(2/D)
        spread = data.covariance if data.n_rows > D else np.diag(np.diag(data.covariance))
        scale = spread * float(K) ** (-2.0 / D)
    elif isinstance(prior.scale, float):
        scale = prior.scale * np.eye(D)
    else:
        if prior.scale.shape != (D, D):
            raise ValueError(f"Prior(scale=...) has shape {prior.scale.shape}, but the data have {D} features: "
                             f"give a ({D}, {D}) matrix or a number")
        scale = np.array(prior.scale)
    dof = float(D + 2) if prior.dof is None else prior.dof
    return ResolvedPrior(float(prior.shrinkage), np.asarray(mean, dtype=np.float64), dof, scale, terms, K)


def missing_values_error() -> ValueError:
    """The error of a default prior on rows with missing values."""
    return ValueError(_MISSING_VALUES)
