"""Fitted parameters of a Gaussian mixture, independent of any estimator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ._math import log_weights
from .backends import asarray_like, backend_for, get_namespace
from .covariance import CovarianceModel


@dataclass(frozen=True)
class MixtureParams:
    """Weights, means and covariances of a K-component mixture in D dimensions.

    Attributes
    ----------
    weights : array of shape (K,)
        Mixing proportions on the simplex.
    means : array of shape (K, D)
    covariances : array
        In ``covariance``'s layout (see :mod:`gaussmix.covariance.base`).
    precisions_cholesky : array
        Factors ``C`` with ``C C^T = inv(Sigma)``, same layout.
    covariance : CovarianceModel
        The structure that interprets the two arrays above.
    noise : UniformNoise or None
        A noise component beside the K Gaussians (:mod:`gaussmix.noise`):
        ``weights`` then sum to ``1 - noise.weight``.
    """

    weights: Any
    means: Any
    covariances: Any
    precisions_cholesky: Any
    covariance: CovarianceModel
    noise: Any = None

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    @classmethod
    def from_covariances(
        cls, weights: Any, means: Any, covariances: Any, covariance: CovarianceModel, *, reg_covar: float = 0.0,
    ) -> "MixtureParams":
        """Build parameters, factorising the covariances (raises if one collapsed; ``reg_covar``:
        what the M-step added to the variances, see ``CovarianceModel._raise_if_collapsed``)."""
        factor = covariance.precision_cholesky(covariances, reg_covar=reg_covar)
        return cls(weights, means, covariances, factor, covariance)

    def translated(self, offset: Any) -> "MixtureParams":
        """The same mixture moved by ``offset`` (shape (D,)): means (and a noise component's box) plus offset."""
        # replace, not the constructor: a subclass (variational parameters) keeps its own fields
        noise = None if self.noise is None else self.noise.translated(offset)
        return dataclasses.replace(self, means=self.means + offset, noise=noise)

    def converted_like(self, like: Any) -> "MixtureParams":
        """The same mixture with its arrays in the namespace, device and dtype of ``like``."""
        arrays = (self.weights, self.means, self.covariances, self.precisions_cholesky)
        weights, means, covariances, factors = (asarray_like(a, like) for a in arrays)
        return dataclasses.replace(self, weights=weights, means=means, covariances=covariances, precisions_cholesky=factors)

    def log_weights(self, dtype: Any = None) -> Any:
        """``log pi_k`` as every E-step adds it to the log-densities, shape (K,).

        The logarithms of ``weights`` here; variational fits
        (:class:`gaussmix.variational.VariationalParams`) add other per-component
        terms instead (expected log-weights and log-determinants). ``dtype`` (NumPy
        weights only): the weights are cast to it before their logarithm is taken.
        """
        return log_weights(self.weights if dtype is None else self.weights.astype(dtype))

    def log_weighted_prob(self, X: Any) -> Any:
        """``log pi_k + log N(x_n | mu_k, Sigma_k)``, shape (n, K): the Gaussians only (a noise
        component's column: :func:`gaussmix.noise.log_weighted_columns`)."""
        return self.covariance.log_gaussian(X, self.means, self.precisions_cholesky) + self.log_weights()[None, :]

    def n_parameters(self, constraints: Any = None) -> int:
        """Number of free parameters of the mixture.

        ``constraints`` (a :class:`gaussmix.constraints.Constraints`): equal or
        frozen parameters are not free, and are not counted. A noise component
        adds mclust's two (:data:`gaussmix.noise.N_NOISE_PARAMETERS`).
        """
        count = self.covariance.n_parameters(self.n_components, self.n_features)
        if constraints is not None:
            count -= constraints.n_fixed_parameters(self.covariance, self.n_components, self.n_features)
        if self.noise is not None:
            from .noise import N_NOISE_PARAMETERS  # noise builds on this class

            count += N_NOISE_PARAMETERS
        return count

    def dense_covariances(self) -> Any:
        """Covariances as a dense (K, D, D) stack."""
        return self.covariance.dense(self.covariances, self.n_components, self.n_features)

    def marginal(self, dims: Any) -> "MixtureParams":
        """The marginal mixture over features ``dims`` (sequence of int, in that order).

        See :func:`gaussmix.conditioning.marginal` (which structure it has, errors).
        """
        from .conditioning import marginal  # conditioning builds on this class

        return marginal(self, dims)

    def condition(self, dims: Any, values: Any) -> Any:
        """The mixture over the other features given ``x_dims = values``.

        Parameters
        ----------
        dims : sequence of int
            G given features (not all D).
        values : array of shape (G,) or (n, G)

        Returns
        -------
        MixtureParams
            For one row of values: K components over the other features.
        ConditionalMixtures
            For n rows: the n conditional mixtures as arrays (see
            :class:`gaussmix.conditioning.ConditionalMixtures`).
        """
        from .conditioning import Conditioner, condition

        if getattr(values, "ndim", 1) == 2:
            return Conditioner(self, dims)(values)
        return condition(self, dims, values)

    def sample(self, n_samples: int, rng: Any) -> tuple[Any, Any]:
        """Draw ``n_samples`` rows: a component from the weights, then a Gaussian draw.

        With a noise component, its rows (label -1) are drawn uniformly in its
        box (:attr:`gaussmix.noise.UniformNoise.region`) and come last.

        Parameters
        ----------
        n_samples : int
        rng : numpy.random.RandomState
            Draws the component counts; the Gaussian draws come from the
            backend (on the parameters' device, seeded from ``rng``).

        Returns
        -------
        X : array of shape (n_samples, D)
            Rows grouped by component, as scikit-learn returns them; same
            namespace and device as the parameters.
        labels : array of shape (n_samples,)
        """
        import numpy as np

        xp = get_namespace(self.means)
        backend = backend_for(xp)
        weights = backend.to_numpy(self.weights).astype(np.float64)
        if self.noise is not None:
            weights = np.append(weights, self.noise.weight)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        factors, _ = backend.cholesky_lower(self.dense_covariances())
        pieces, labels = [], []
        device = getattr(self.means, "device", None)
        for k, count in enumerate(counts[:self.n_components]):
            draws = backend.standard_normal(rng, (int(count), self.n_features), self.means)
            pieces.append(self.means[k][None, :] + draws @ xp.matrix_transpose(factors[k]))
            labels.append(xp.full((int(count),), k, dtype=xp.int64, device=device))
        if self.noise is not None:
            from .noise import NOISE_LABEL

            count = int(counts[-1])
            pieces.append(asarray_like(self.noise.sample(count, rng), self.means))
            labels.append(xp.full((count,), NOISE_LABEL, dtype=xp.int64, device=device))
        return xp.concat(pieces, axis=0), xp.concat(labels, axis=0)
