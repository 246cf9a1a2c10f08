"""Marginals and conditionals of a Gaussian mixture, done per covariance layout.

For a mixture ``sum_k pi_k N(mu_k, Sigma_k)`` over features split into a free
block ``F`` and a given block ``G``:

- the **marginal** over ``F`` keeps the weights and takes the ``F`` blocks of
  the means and covariances;
- the **conditional** given ``x_G`` is again a mixture over ``F``, with weights
  ``pi_k N(x_G | mu_kG, Sigma_kGG)`` renormalised, means
  ``mu_kF + B_k (x_G - mu_kG)`` with ``B_k = Sigma_kFG Sigma_kGG^-1``, and
  covariances the Schur complements ``Sigma_kFF - B_k Sigma_kGF`` (which do not
  depend on ``x_G``).

The maths runs on each layout's own arrays, never on a blindly densified
stack: a diagonal or spherical structure has ``B_k = 0``, so its conditional
is its marginal over ``F`` with re-weighted components; a tied covariance has
one ``B`` and one Schur complement for all components.

Which structure the result has is declared by each covariance class
(``marginal_structure`` / ``conditional_structure``, ``None`` meaning "the
same structure"), so that no covariance-type string is interpreted here:

=====================  ==================  ===================
structure              marginal            conditional
=====================  ==================  ===================
full (VVV)             full                full
tied (EEE)             tied                tied
diag (VVI)             diag                diag
spherical (VII), EII   the same            the same
EEI, VEI               the same            the same
EVI                    diag                diag
VEE                    VEE                 VEE
EVE, VVE, EEV, VEV,    full                full
EVV
=====================  ==================  ===================

(EEI and VEI keep a common diagonal shape and VEE a common ``C`` on any subset
of features, and for VEE ``B_k = C_FG C_GG^-1`` is shared too; EVI's equal
volume, EVE/VVE's common orientation and EEV/VEV/EVV's equal shapes or
volumes do not survive taking a block, so those become the unconstrained
structure of their layout.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ._math import logsumexp_rows
from .backends import backend_for, get_namespace
from .covariance import CovarianceModel, get_covariance_model
from .covariance.diag import DiagCovariance
from .covariance.full import FullCovariance
from .covariance.spherical import SphericalCovariance
from .covariance.tied import TiedCovariance
from .params import MixtureParams


# ------------------------------------------------------------------ layouts
class _Layout:
    """Block algebra on one covariance layout (see :mod:`gaussmix.covariance.base`)."""

    def marginal(self, covariances: Any, dims: Any) -> Any:
        """The ``dims`` block of the covariances, in the same layout."""
        raise NotImplementedError

    def conditional(self, covariances: Any, free: Any, given: Any) -> tuple[Any, Optional[Any]]:
        """Schur complements of the ``given`` block (same layout, over ``free``) and the
        regression matrices ``B`` broadcastable to (K, F, G), or None where ``B = 0``."""
        raise NotImplementedError


def _take(xp: Any, array: Any, dims: Any, axis: int) -> Any:
    return xp.take(array, dims, axis=axis)


def _block(xp: Any, matrices: Any, rows: Any, columns: Any) -> Any:
    """``matrices[..., rows, columns]`` of a (..., D, D) stack."""
    return _take(xp, _take(xp, matrices, rows, matrices.ndim - 2), columns, matrices.ndim - 1)


def _schur(xp: Any, matrices: Any, free: Any, given: Any) -> tuple[Any, Any]:
    """Schur complements and ``B = S_FG S_GG^-1`` of a (..., D, D) stack of covariances."""
    cross = _block(xp, matrices, given, free)  # S_GF, (..., G, F)
    # B^T = S_GG^-1 S_GF: a solve, not an inverse (S_GG may be ill-conditioned)
    coefficients = xp.matrix_transpose(xp.linalg.solve(_block(xp, matrices, given, given), cross))
    complement = _block(xp, matrices, free, free) - coefficients @ cross
    # symmetric in exact arithmetic; rounding is removed so that the Cholesky factor is clean
    return 0.5 * (complement + xp.matrix_transpose(complement)), coefficients


class _PerComponentDense(_Layout):
    """(K, D, D): full and the dense mclust structures."""

    def marginal(self, covariances: Any, dims: Any) -> Any:
        return _block(get_namespace(covariances), covariances, dims, dims)

    def conditional(self, covariances: Any, free: Any, given: Any) -> tuple[Any, Optional[Any]]:
        return _schur(get_namespace(covariances), covariances, free, given)


class _SharedDense(_PerComponentDense):
    """(D, D): tied. One Schur complement and one ``B`` serve every component."""

    def conditional(self, covariances: Any, free: Any, given: Any) -> tuple[Any, Optional[Any]]:
        complement, coefficients = super().conditional(covariances, free, given)
        return complement, coefficients[None, :, :]


class _Diagonal(_Layout):
    """(K, D) variances: independent features, so the given ones just drop out."""

    def marginal(self, covariances: Any, dims: Any) -> Any:
        return _take(get_namespace(covariances), covariances, dims, 1)

    def conditional(self, covariances: Any, free: Any, given: Any) -> tuple[Any, Optional[Any]]:
        return self.marginal(covariances, free), None


class _Spherical(_Layout):
    """(K,) variances: the same variance on any subset of features."""

    def marginal(self, covariances: Any, dims: Any) -> Any:
        return covariances

    def conditional(self, covariances: Any, free: Any, given: Any) -> tuple[Any, Optional[Any]]:
        return covariances, None


#: layout of each family of structures, found along the class's MRO (mclust subclasses included)
_LAYOUTS: dict[type, _Layout] = {
    FullCovariance: _PerComponentDense(),
    TiedCovariance: _SharedDense(),
    DiagCovariance: _Diagonal(),
    SphericalCovariance: _Spherical(),
}


def _layout(covariance: CovarianceModel) -> _Layout:
    for klass in type(covariance).__mro__:
        if klass in _LAYOUTS:
            return _LAYOUTS[klass]
    raise TypeError(
        f"{type(covariance).__name__} has no marginal/conditional algebra: register its layout in "
        "gaussmix.conditioning._LAYOUTS"
    )


def marginal_covariance_model(covariance: CovarianceModel) -> CovarianceModel:
    """The structure a marginal of ``covariance`` satisfies (see the module's table)."""
    name = getattr(covariance, "marginal_structure", None)
    return covariance if name is None else get_covariance_model(name)


def conditional_covariance_model(covariance: CovarianceModel) -> CovarianceModel:
    """The structure a conditional of ``covariance`` satisfies (see the module's table)."""
    name = getattr(covariance, "conditional_structure", None)
    return covariance if name is None else get_covariance_model(name)


def _index(xp: Any, dims: Sequence[int], like: Any) -> Any:
    return xp.asarray(list(dims), dtype=xp.int64, device=getattr(like, "device", None))


def _check_dims(dims: Sequence[int], n_features: int, what: str) -> list[int]:
    """Plain, in-range, distinct indices (the estimator gives friendlier messages for names)."""
    dims = [int(d) for d in dims]
    if not dims:
        raise ValueError(f"{what}: give at least one feature")
    bad = [d for d in dims if not 0 <= d < n_features]
    if bad:
        raise ValueError(f"{what}: feature index {bad[0]} is out of range for {n_features} features (0..{n_features - 1})")
    if len(set(dims)) != len(dims):
        raise ValueError(f"{what}: features {dims} repeat an index; name each feature once")
    return dims


# ------------------------------------------------------------------ marginal
def marginal(params: MixtureParams, dims: Sequence[int]) -> MixtureParams:
    """The mixture's marginal over features ``dims`` (in that order).

    Parameters
    ----------
    params : MixtureParams
        K components over D features.
    dims : sequence of int
        Distinct indices in ``0..D-1``.

    Returns
    -------
    MixtureParams
        K components over ``len(dims)`` features, with the structure of
        :func:`marginal_covariance_model`; the same weights.
    """
    dims = _check_dims(dims, params.n_features, "marginal")
    xp = get_namespace(params.means)
    index = _index(xp, dims, params.means)
    target = marginal_covariance_model(params.covariance)
    covariances = _layout(params.covariance).marginal(params.covariances, index)
    return MixtureParams.from_covariances(params.weights, _take(xp, params.means, index, 1), covariances, target)


# ------------------------------------------------------------------ conditional
@dataclass(frozen=True)
class ConditionalMixtures:
    """Conditional mixtures ``p(x_F | x_G = g_n)`` for a batch of n given rows ``g_n``.

    Every case has the same K components and the same covariances (a Gaussian's
    conditional covariance does not depend on the given values); the weights
    and the means vary by case.

    Attributes
    ----------
    weights : array of shape (n, K)
        ``p(component k | x_G = g_n)``; each row sums to 1.
    means : array of shape (n, K, F)
        Component means given ``g_n``.
    covariances : array
        The conditional covariances, shared by the cases, in ``covariance``'s
        layout for K components and F features.
    precisions_cholesky : array
        Their precision factors, same layout.
    covariance : CovarianceModel
        The structure of the conditional covariances (see the module's table).
    given_log_density : array of shape (n,)
        ``log p(x_G = g_n)`` under the mixture's marginal over the given features,
        so that ``log p(x) = log p(x_F | x_G) + log p(x_G)``.
    feature_names : tuple of str or None
        Names of the F features, where the mixture had names.
    """

    weights: Any
    means: Any
    covariances: Any
    precisions_cholesky: Any
    covariance: CovarianceModel
    given_log_density: Any
    feature_names: Optional[tuple] = None

    def __len__(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[2])

    def params(self, case: int) -> MixtureParams:
        """The conditional mixture of case ``case`` as :class:`MixtureParams`."""
        return MixtureParams(
            self.weights[case], self.means[case], self.covariances, self.precisions_cholesky, self.covariance
        )

    def dense_covariances(self) -> Any:
        """The component covariances as a (K, F, F) stack."""
        return self.covariance.dense(self.covariances, self.n_components, self.n_features)

    def mean(self) -> Any:
        """``E[x_F | g_n]``, shape (n, F): the weighted mean of the component means.

        With several components this is the mean of a possibly multimodal
        distribution: it may lie between the modes, where little mass is.
        """
        xp = get_namespace(self.means)
        return xp.sum(self.weights[:, :, None] * self.means, axis=1)

    def _deviations(self) -> Any:
        return self.means - self.mean()[:, None, :]

    def variance(self) -> Any:
        """``Var[x_F | g_n]`` per feature, shape (n, F): within components plus between them."""
        xp = get_namespace(self.means)
        within = self.weights @ xp.linalg.diagonal(self.dense_covariances())
        between = xp.sum(self.weights[:, :, None] * self._deviations() ** 2, axis=1)
        return within + between

    def std(self) -> Any:
        """Conditional standard deviations, shape (n, F)."""
        return get_namespace(self.means).sqrt(self.variance())

    def covariance_matrix(self) -> Any:
        """``Cov[x_F | g_n]``, shape (n, F, F): ``sum_k w_nk (Sigma_k + d_nk d_nk^T)``, ``d_nk`` the
        component mean minus the mixture mean."""
        xp = get_namespace(self.means)
        n, K, F = len(self), self.n_components, self.n_features
        within = xp.reshape(self.weights @ xp.reshape(self.dense_covariances(), (K, F * F)), (n, F, F))
        deviations = self._deviations()
        between = xp.matrix_transpose(self.weights[:, :, None] * deviations) @ deviations
        return within + between

    def log_prob(self, Y: Any) -> Any:
        """``log p(x_F = y_n | x_G = g_n)`` of row ``y_n`` under case n, shape (n,).

        Parameters
        ----------
        Y : array of shape (n, F)
            One row per case, paired with the cases in order.
        """
        xp = get_namespace(self.means)
        K, F = self.n_components, self.n_features
        factors = self.covariance.dense(self.precisions_cholesky, K, F)  # (K, F, F), C C^T = Sigma^-1
        differences = xp.permute_dims(Y[:, None, :] - self.means, (1, 0, 2))  # (K, n, F)
        whitened = differences @ factors
        mahalanobis = xp.permute_dims(xp.sum(whitened * whitened, axis=2), (1, 0))
        log_det = self.covariance.log_det_precision_cholesky(self.precisions_cholesky, F)
        log_gauss = -0.5 * (F * np.log(2 * np.pi) + mahalanobis) + log_det
        with np.errstate(divide="ignore"):  # a weight that underflowed to 0 adds nothing
            log_weights = xp.log(self.weights)
        return logsumexp_rows(log_gauss + log_weights)

    def sample(self, n_samples: int, random_state: Any = None) -> Any:
        """Draws from each case's conditional mixture, shape (n, n_samples, F).

        A component is drawn per draw from the case's weights, then a Gaussian
        draw around that case's component mean; the loop runs over the K
        components, never over the cases.
        """
        from sklearn.utils import check_random_state

        rng = check_random_state(random_state)
        xp = get_namespace(self.means)
        backend = backend_for(xp)
        weights = np.asarray(backend.to_numpy(self.weights), dtype=np.float64)
        n, K, F = len(self), self.n_components, self.n_features
        cumulative = np.cumsum(weights, axis=1)
        cumulative /= cumulative[:, -1:]
        uniforms = rng.uniform(size=(n, n_samples))
        components = np.minimum(np.sum(uniforms[:, :, None] >= cumulative[:, None, :], axis=2), K - 1)
        noise = np.asarray(backend.to_numpy(backend.standard_normal(rng, (n, n_samples, F), self.means)))
        factors, _ = backend.cholesky_lower(self.dense_covariances())
        factors = np.asarray(backend.to_numpy(factors))
        means = np.asarray(backend.to_numpy(self.means))
        draws = np.empty((n, n_samples, F), dtype=means.dtype)
        cases = np.broadcast_to(np.arange(n)[:, None], (n, n_samples))
        for k in range(K):
            chosen = components == k
            draws[chosen] = means[cases[chosen], k] + noise[chosen] @ factors[k].T
        return backend.asarray(draws, self.means)


class Conditioner:
    """Conditioning of one mixture on one set of given features, prepared once for many rows.

    The Schur complements, their factors and the regression matrices depend only
    on which features are given, not on their values: they are computed here
    once, and :meth:`__call__` applies them to a batch of given rows with a
    few matrix products.

    Parameters
    ----------
    params : MixtureParams
        K components over D features.
    given : sequence of int
        The conditioning features ``G`` (distinct, in ``0..D-1``, not all of them).
    free : sequence of int, optional
        The features ``F`` of the result, in that order (distinct, disjoint from
        ``given``); default: all the others in increasing order. Features in
        neither set are marginalised out.
    """

    def __init__(self, params: MixtureParams, given: Sequence[int], free: Optional[Sequence[int]] = None) -> None:
        n_features = params.n_features
        given = _check_dims(given, n_features, "condition")
        if free is None:
            free = [d for d in range(n_features) if d not in set(given)]
            if not free:
                raise ValueError(
                    f"cannot condition on all {n_features} features: no feature would be left; condition on "
                    "fewer features (score_samples gives the joint density)"
                )
        free = _check_dims(free, n_features, "condition")
        overlap = sorted(set(free) & set(given))
        if overlap:
            raise ValueError(f"features {overlap} are both given and asked for; a feature is one or the other")
        self.given, self.free = given, free
        xp = get_namespace(params.means)
        given_index, free_index = _index(xp, given, params.means), _index(xp, free, params.means)
        self.given_params = marginal(params, given)
        self.given_means = self.given_params.means
        self.free_means = _take(xp, params.means, free_index, 1)
        self.covariance = conditional_covariance_model(params.covariance)
        self.covariances, self.coefficients = _layout(params.covariance).conditional(
            params.covariances, free_index, given_index
        )
        self.precisions_cholesky = self.covariance.precision_cholesky(self.covariances)

    def __call__(self, values: Any) -> ConditionalMixtures:
        """The conditional mixtures given each row of ``values``.

        Parameters
        ----------
        values : array of shape (n, G)
            Values of the given features, in the order of ``given``; in the
            parameters' namespace and dtype.

        Returns
        -------
        ConditionalMixtures
            n cases.
        """
        xp = get_namespace(self.free_means)
        log_weighted = self.given_params.log_weighted_prob(values)  # (n, K)
        log_density = logsumexp_rows(log_weighted)
        weights = xp.exp(log_weighted - log_density[:, None])
        n = values.shape[0]
        K, F = self.free_means.shape
        if self.coefficients is None:
            means = xp.zeros((n, K, F), dtype=self.free_means.dtype, device=getattr(values, "device", None))
            means = means + self.free_means[None, :, :]
        else:
            # (K, n, G) @ (K, G, F): one batched product per component, not a loop over rows
            offsets = xp.permute_dims(values[:, None, :] - self.given_means[None, :, :], (1, 0, 2))
            shifts = offsets @ xp.matrix_transpose(self.coefficients)
            means = self.free_means[None, :, :] + xp.permute_dims(shifts, (1, 0, 2))
        return ConditionalMixtures(
            weights, means, self.covariances, self.precisions_cholesky, self.covariance, log_density
        )


def condition(params: MixtureParams, given: Sequence[int], values: Any) -> MixtureParams:
    """The mixture over the other features given ``x_given = values``.

    Parameters
    ----------
    params : MixtureParams
    given : sequence of int
        G distinct feature indices, not all D.
    values : array of shape (G,)

    Returns
    -------
    MixtureParams
        K components over the ``D - G`` other features (in increasing order),
        with the structure of :func:`conditional_covariance_model`.
    """
    xp = get_namespace(params.means)
    row = xp.reshape(xp.asarray(values, dtype=params.means.dtype), (1, -1))
    return Conditioner(params, given)(row).params(0)
