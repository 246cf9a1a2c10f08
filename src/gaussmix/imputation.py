"""Filling the missing entries of rows from a mixture, a row's result independent of its chunk.

For a row with observed entries ``o`` and missing entries ``m``, each
component k gives the conditional Gaussian ``N(mu_km + B_k (x_o - mu_ko),
S_k)`` (``B_k = Sigma_kmo Sigma_koo^-1``, ``S_k`` the Schur complement) and
the weight ``p(k | x_o)``. :func:`impute_chunk` fills the gaps of one chunk
with the mixture's conditional mean ``sum_k p(k | x_o) E[x_m | x_o, k]``, or
draws from ``p(x_m | x_o)`` (multiple imputation): a component from the
row's weights, then ``E[x_m | x_o, k] + L_k z`` (``L_k L_k^T = S_k``).

Out-of-core data and Dask blocks are imputed chunk by chunk, so a row's
result must not depend on which chunk holds it, nor on the rows beside it:

- **random numbers by row**: draw ``s`` of global row ``r`` reads the
  ``(r n_draws + s)``-th run of ``D + 1`` outputs of one PCG64 stream
  (:class:`DrawKey`), which a chunk reaches with ``advance`` (PCG64 jumps
  ahead in O(log n) steps). The first output picks the component, the
  others become standard normals by the inverse normal CDF (exactly one
  output per number, which NumPy's ziggurat does not guarantee);
- **arithmetic by row**: every per-row quantity is a chain of element-wise
  operations and of sums taken in a fixed order (:func:`_row_products`), never a
  matrix product over the chunk's rows, whose blocking (and rounding) varies
  with their number.

So imputing in memory, streamed in chunks of any size, or on Dask blocks
gives the same array, bit for bit. What depends on the pattern only
(conditioning, Cholesky factors) is computed once per pattern and chunk
(:class:`PatternCache` keeps it across chunks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .backends import backend_for, get_namespace, to_numpy
from .conditioning import Conditioner
from .missing import mask_patterns
from .params import MixtureParams


@dataclass(frozen=True)
class DrawKey:
    """The random numbers of multiple imputation, addressed by global row.

    Attributes
    ----------
    entropy : tuple of int
        Seeds one PCG64 stream (through ``numpy.random.SeedSequence``).
    n_draws : int
    """

    entropy: tuple[int, ...]
    n_draws: int

    @classmethod
    def of(cls, random_state: Any, n_draws: int) -> "DrawKey":
        """The key of ``random_state`` (int, RandomState or None: fresh entropy), drawn from it once."""
        from sklearn.utils import check_random_state

        rng = check_random_state(random_state)
        return cls(tuple(int(v) for v in rng.randint(0, 2**32, size=4, dtype=np.int64)), int(n_draws))

    def uniforms_and_normals(self, first_row: int, n_rows: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        """For rows ``first_row ..`` of a chunk: uniforms on [0, 1) (n_rows, n_draws) that pick
        components and standard normals (n_rows, n_draws, D), float64."""
        per_row = self.n_draws * (n_features + 1)
        bit_generator = np.random.PCG64(np.random.SeedSequence(list(self.entropy)))
        bit_generator.advance(first_row * per_row)
        raw = bit_generator.random_raw(n_rows * per_row).reshape(n_rows, self.n_draws, n_features + 1)
        uniforms = (raw[:, :, 0] >> np.uint64(11)).astype(np.float64) * 2.0**-53
        # 52 bits and a half step: strictly inside (0, 1), so that no normal is infinite
        centred = ((raw[:, :, 1:] >> np.uint64(12)).astype(np.float64) + 0.5) * 2.0**-52
        from scipy.special import ndtri

        return uniforms, ndtri(centred)


@dataclass
class PatternCache:
    """What imputing needs of one missingness pattern, kept across the chunks of one call.

    Bounded: beyond ``capacity`` patterns it starts again (data with more
    patterns than that pay their conditioning once per chunk).
    """

    params: MixtureParams
    capacity: int = 4096
    _prepared: dict = field(default_factory=dict)

    def __getitem__(self, pattern: np.ndarray) -> "_Prepared":
        key = pattern.tobytes()
        prepared = self._prepared.get(key)
        if prepared is None:
            if len(self._prepared) >= self.capacity:
                self._prepared.clear()
            prepared = self._prepared[key] = _Prepared.of(self.params, pattern)
        return prepared


@dataclass(frozen=True)
class _Prepared:
    """One pattern's conditioning, dense and per component.

    Attributes
    ----------
    observed, missing : ndarray of int
        Feature indices (G,), (F,).
    given_means : array (K, G)
    whitening : array (K, G, G)
        ``U_k`` with ``U_k U_k^T = Sigma_koo^-1``: ``(x_o - mu_ko) U_k`` is whitened.
    log_norm : array (K,)
        ``log pi_k + log det U_k - G/2 log(2 pi)``.
    free_means : array (K, F)
    coefficients : array (K or 1, G, F) or None
        ``B_k^T``; None where ``B_k = 0`` (diagonal structures).
    factors : array (K, F, F)
        Lower Cholesky factors of the conditional covariances ``S_k``.
    """

    observed: np.ndarray
    missing: np.ndarray
    given_means: Any
    whitening: Any
    log_norm: Any
    free_means: Any
    coefficients: Optional[Any]
    factors: Any

    @classmethod
    def of(cls, params: MixtureParams, pattern: np.ndarray) -> "_Prepared":
        observed, missing = np.flatnonzero(~pattern), np.flatnonzero(pattern)
        conditioner = Conditioner(params, observed.tolist(), missing.tolist())
        given = conditioner.given_params
        xp = get_namespace(params.means)
        K, G, F = params.n_components, observed.size, missing.size
        whitening = given.covariance.dense(given.precisions_cholesky, K, G)
        log_det = given.covariance.log_det_precision_cholesky(given.precisions_cholesky, G)
        log_norm = given.log_weights() + log_det - 0.5 * G * float(np.log(2 * np.pi))
        coefficients = conditioner.coefficients
        if coefficients is not None:
            coefficients = xp.matrix_transpose(coefficients)
        dense = conditioner.covariance.dense(conditioner.covariances, K, F)
        factors, _ = backend_for(xp).cholesky_lower(dense)
        return cls(observed, missing, conditioner.given_means, whitening, log_norm, conditioner.free_means,
                   coefficients, factors)


def _row_products(rows: Any, matrices: Any) -> Any:
    """``rows @ matrices`` row by row: ``sum_g rows[..., g] matrices[..., g, :]``, g in order.

    rows (..., n, G), matrices (..., G, J) -> (..., n, J). Element-wise
    operations only, so each row's result is the same whatever rows surround it.
    """
    result = rows[..., :, 0:1] * matrices[..., None, 0, :]
    for g in range(1, rows.shape[-1]):
        result = result + rows[..., :, g:g + 1] * matrices[..., None, g, :]
    return result


def _responsibilities(xp: Any, values: Any, prepared: _Prepared) -> tuple[Any, Any]:
    """``p(k | x_o)`` (n, K) of the pattern's rows ``values`` (n, G), and their offsets
    ``x_o - mu_ko`` (K, n, G), row by row."""
    offsets = values[None, :, :] - prepared.given_means[:, None, :]
    whitened = _row_products(offsets, prepared.whitening)  # (K, n, G)
    distance = whitened[:, :, 0] ** 2
    for g in range(1, whitened.shape[2]):
        distance = distance + whitened[:, :, g] ** 2
    log_prob = prepared.log_norm[:, None] - 0.5 * distance  # (K, n)
    largest = log_prob[0]
    for k in range(1, log_prob.shape[0]):
        largest = xp.maximum(largest, log_prob[k])
    largest = xp.where(xp.isfinite(largest), largest, xp.zeros_like(largest))
    exponentials = xp.exp(log_prob - largest[None, :])
    total = exponentials[0]
    for k in range(1, exponentials.shape[0]):
        total = total + exponentials[k]
    return xp.permute_dims(exponentials / total[None, :], (1, 0)), offsets


def _conditional_means(prepared: _Prepared, offsets: Any) -> Any:
    """``E[x_m | x_o, k]`` (K, n, F) from the offsets (K, n, G)."""
    if prepared.coefficients is None:
        xp = get_namespace(offsets)
        K, n, F = offsets.shape[0], offsets.shape[1], prepared.free_means.shape[1]
        return xp.broadcast_to(prepared.free_means[:, None, :], (K, n, F))
    return prepared.free_means[:, None, :] + _row_products(offsets, prepared.coefficients)


def impute_chunk(X: Any, params: MixtureParams, cache: Optional[PatternCache] = None,
                 draws: Optional[DrawKey] = None, first_row: int = 0) -> Any:
    """The rows ``X`` (n, D) with their NaN entries filled from ``params``.

    Parameters
    ----------
    X : array of shape (n, D)
        NumPy or torch, in ``params``' dtype; no row entirely NaN, no inf.
    params : MixtureParams
    cache : PatternCache, optional
        Conditioning kept from earlier chunks (of the same ``params``).
    draws : DrawKey, optional
        None: conditional means. Else ``draws.n_draws`` draws from ``p(x_m | x_o)``.
    first_row : int
        Global number of ``X``'s first row: where its random numbers are.

    Returns
    -------
    array of shape (n, D), or (n_draws, n, D) with ``draws``
        In X's namespace, dtype and device; observed entries as given.
    """
    xp = get_namespace(X)
    cache = PatternCache(params) if cache is None else cache
    n, n_features = X.shape
    mask = np.asarray(to_numpy(xp.isnan(X)))
    if draws is None:
        result = xp.asarray(X, copy=True)
    else:
        result = xp.stack([X] * draws.n_draws)
        uniforms, normals = draws.uniforms_and_normals(first_row, n, n_features)
    backend = backend_for(xp)
    for pattern in mask_patterns(mask):
        if pattern.missing.size == 0:
            continue
        prepared = cache[mask[pattern.rows[0]]]
        rows = backend.asarray(pattern.rows, xp.zeros(0, dtype=xp.int64, device=_device(X)))
        values = xp.take(xp.take(X, rows, axis=0), backend.asarray(prepared.observed, rows), axis=1)
        weights, offsets = _responsibilities(xp, values, prepared)  # (n_p, K), (K, n_p, G)
        means = _conditional_means(prepared, offsets)  # (K, n_p, F)
        where = (rows[:, None], backend.asarray(prepared.missing, rows)[None, :])
        if draws is None:
            filled = weights[:, 0:1] * means[0]
            for k in range(1, means.shape[0]):
                filled = filled + weights[:, k:k + 1] * means[k]
            result[where] = filled
            continue
        for s in range(draws.n_draws):
            noise = normals[pattern.rows[:, None], s, prepared.missing[None, :]]  # (n_p, F)
            result[(s, *where)] = _draw(xp, weights, means, prepared.factors, uniforms[pattern.rows, s], noise)
    return result


def _draw(xp: Any, weights: Any, means: Any, factors: Any, uniforms: np.ndarray, noise: np.ndarray) -> Any:
    """One draw per row (n,) from its conditional mixture: the component is the first whose
    cumulative weight (``weights`` (n, K)) exceeds the row's uniform, then ``means[k]`` (K, n, F)
    plus ``L_k z`` (``factors`` (K, F, F) lower, ``noise`` (n, F) standard normals)."""
    backend = backend_for(xp)
    cumulative = np.cumsum(np.asarray(to_numpy(weights), dtype=np.float64), axis=1)
    cumulative /= cumulative[:, -1:]
    chosen = np.minimum(np.sum(uniforms[:, None] >= cumulative, axis=1), cumulative.shape[1] - 1)
    chosen = backend.asarray(chosen, xp.zeros(0, dtype=xp.int64, device=_device(means)))
    noise = backend.asarray(noise, means)
    factor = xp.take(factors, chosen, axis=0)  # (n, F, F)
    centre = means[chosen, xp.arange(chosen.shape[0], device=_device(means))]  # (n, F)
    shift = noise[:, 0:1] * factor[:, :, 0]
    for j in range(1, noise.shape[1]):
        shift = shift + noise[:, j:j + 1] * factor[:, :, j]
    return centre + shift


def _device(X: Any) -> Any:
    return getattr(X, "device", None)
