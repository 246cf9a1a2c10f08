"""What the arrays of every fitted mixture satisfy, checked (model files: save and load).

A fit gives weights on the simplex, finite means, triangular precision
Cholesky factors ``C`` with positive diagonals, precisions equal to
``C C^T`` and covariances whose inverse they are, all in one float dtype. A
model file whose arrays break any of these would load and predict wrong
numbers silently (weights ``[1, 1, 1]`` shift every log-density by log 3;
covariances that disagree with the factors make ``sample`` draw with another
spread than ``predict`` uses), so :func:`check_fitted_arrays` refuses them.
Tolerances allow for the rounding of the dtype and of the conditioning of
the covariances, so that any model a fit can produce passes.
"""

from __future__ import annotations

import numpy as np

from .covariance import CovarianceModel
from .covariance.full import DensePrecisionAlgebra

#: the fitted arrays, by the names model files use
ARRAY_NAMES = ("weights", "means", "covariances", "precisions", "precisions_cholesky")
#: dtypes a fit produces
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: means beyond this magnitude make squared distances overflow float64
MAX_MEAN_MAGNITUDE = 1e150
#: how far a weights_init may be from summing to one (see ``check_weights_init``)
#: and so the weights of a model fitted with max_iter=0
_WEIGHT_SUM_SLACK = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-8}
#: the least tolerance of the consistency checks: smaller disagreements
#: (1e-6 of a variance) change no prediction or sample noticeably
_CONSISTENCY_FLOOR = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-6}


class InvalidModel(ValueError):
    """The arrays of a model are not those of a fitted mixture; the message says why."""


def check_fitted_arrays(arrays: dict, covariance: CovarianceModel, n_components: int, n_features: int,
                        noise_weight: float = 0.0) -> None:
    """Refuse arrays that no fit produces.

    Parameters
    ----------
    arrays : dict of str to ndarray
        ``weights`` (K,), ``means`` (K, D), and ``covariances``,
        ``precisions``, ``precisions_cholesky`` in ``covariance``'s layout
        (see :meth:`CovarianceModel.parameter_shape`).
    covariance : CovarianceModel
    n_components, n_features : int
        K and D.
    noise_weight : float, default=0.0
        A noise component's weight (:mod:`gaussmix.noise`): the weights then sum to ``1 - noise_weight``.

    Raises
    ------
    InvalidModel
        Naming the first array that breaks a property, and the property.
    """
    expected = expected_shapes(covariance, n_components, n_features)
    dtype = _check_dtypes_and_shapes(arrays, expected)
    for name in ARRAY_NAMES:
        if not np.isfinite(arrays[name]).all():
            raise InvalidModel(f"array {name!r} holds NaN or inf")
    _check_weights(arrays["weights"], dtype, 1.0 - noise_weight)
    _check_means(arrays["means"])
    # Squares and products of the factors must not overflow: a fit's never do, and an
    # overflowed check would compare inf with inf and pass.
    for name in ("precisions_cholesky", "precisions", "covariances"):
        largest = float(np.max(np.abs(arrays[name].astype(np.float64)), initial=0.0))
        if largest * largest * n_features > np.finfo(np.float64).max:
            raise InvalidModel(f"array {name!r} holds {largest:.3g}: too large for any fitted model")
    if isinstance(covariance, DensePrecisionAlgebra):
        stack = (-1, n_features, n_features)  # tied: one matrix
        factors, precisions, covariances = (
            np.reshape(arrays[name], stack) for name in ("precisions_cholesky", "precisions", "covariances")
        )
        _check_triangular_factors(factors)
        _check_dense_precisions(factors, precisions, dtype)
        _check_dense_covariances(factors, covariances, dtype)
    else:
        _check_elementwise(arrays["precisions_cholesky"], arrays["precisions"], arrays["covariances"], dtype)


def expected_shapes(covariance: CovarianceModel, n_components: int, n_features: int) -> dict:
    """Shapes of the fitted arrays, by name, for K components and D features."""
    layout = tuple(covariance.parameter_shape(n_components, n_features))
    return {
        "weights": (n_components,),
        "means": (n_components, n_features),
        "covariances": layout,
        "precisions": layout,
        "precisions_cholesky": layout,
    }


def _check_dtypes_and_shapes(arrays: dict, expected: dict) -> np.dtype:
    """The arrays' common dtype, float32 or float64, after checking every shape."""
    for name, shape in expected.items():
        array = arrays[name]
        if array.dtype not in FLOAT_DTYPES:
            raise InvalidModel(f"array {name!r} has dtype {array.dtype}, not float32 or float64")
        if tuple(array.shape) != tuple(shape):
            raise InvalidModel(f"array {name!r} has shape {array.shape}, expected {tuple(shape)}")
    dtypes = {str(arrays[name].dtype) for name in expected}
    if len(dtypes) > 1:
        raise InvalidModel(f"the arrays mix dtypes {sorted(dtypes)}; a fit gives them one dtype")
    return arrays["means"].dtype


def _check_weights(weights: np.ndarray, dtype: np.dtype, total_weight: float = 1.0) -> None:
    """Non-negative weights summing to ``total_weight`` (one, or what a noise component leaves),
    to the rounding of K additions in ``dtype``."""
    if (weights < 0).any():
        raise InvalidModel(f"array 'weights' holds negative values (smallest {weights.min():.6g})")
    total = float(np.sum(weights, dtype=np.float64))
    tolerance = _WEIGHT_SUM_SLACK[dtype] + 4 * weights.size * float(np.finfo(dtype).eps)
    if abs(total - total_weight) > tolerance:
        expected = "1" if total_weight == 1.0 else f"{total_weight!r} (1 less the noise weight)"
        raise InvalidModel(f"array 'weights' sums to {total!r}, not {expected} (tolerance {tolerance:.1e})")


def _check_means(means: np.ndarray) -> None:
    largest = float(np.max(np.abs(means), initial=0.0))
    if largest > MAX_MEAN_MAGNITUDE:
        raise InvalidModel(
            f"array 'means' holds values of magnitude {largest:.3g}; beyond {MAX_MEAN_MAGNITUDE:.0e} "
            "squared distances overflow"
        )


def _check_triangular_factors(factors: np.ndarray) -> None:
    """Each (D, D) factor upper (from a fit) or lower (from precisions_init) triangular,
    with a positive diagonal.

    Parameters
    ----------
    factors : ndarray of shape (M, D, D)
    """
    upper = ~np.any(np.tril(factors, -1) != 0, axis=(1, 2))
    lower = ~np.any(np.triu(factors, 1) != 0, axis=(1, 2))
    for index in np.flatnonzero(~(upper | lower)):
        raise InvalidModel(f"precision Cholesky factor {index} is not triangular")
    diagonals = np.diagonal(factors, axis1=1, axis2=2)
    for index in np.flatnonzero(~np.all(diagonals > 0, axis=1)):
        raise InvalidModel(f"precision Cholesky factor {index} has a diagonal entry <= 0")


def _check_dense_precisions(factors: np.ndarray, precisions: np.ndarray, dtype: np.dtype) -> None:
    """``precisions == C C^T`` to the rounding of that product in ``dtype``.

    Parameters
    ----------
    factors, precisions : ndarray of shape (M, D, D)
    """
    factors64 = factors.astype(np.float64)
    products = factors64 @ np.swapaxes(factors64, 1, 2)
    # |fl(C C^T) - C C^T|_ij <= D eps |c_i| |c_j| (rows c_i of C)
    norms = np.linalg.norm(factors64, axis=2)
    bound = 8 * factors.shape[-1] * float(np.finfo(dtype).eps) * norms[:, :, None] * norms[:, None, :]
    for index in np.flatnonzero(np.any(np.abs(precisions - products) > bound, axis=(1, 2))):
        raise InvalidModel(f"precision matrix {index} differs from the product of its Cholesky factors")


def _check_dense_covariances(factors: np.ndarray, covariances: np.ndarray, dtype: np.dtype) -> None:
    """``C^T Sigma C == I`` (Sigma the inverse of C C^T) to the rounding a fit allows.

    The rounding grows with the condition number of the correlation matrix
    ``R`` of ``Sigma`` (fits factorise ``R``, see ``dense_precision_cholesky``);
    ``|R|_F |R^-1|_F`` bounds it from above, at the cost of D^2 products.

    Parameters
    ----------
    factors, covariances : ndarray of shape (M, D, D)
    """
    n_features = factors.shape[-1]
    variances = np.diagonal(covariances, axis1=1, axis2=2).astype(np.float64)
    for index in np.flatnonzero(~np.all(variances > 0, axis=1)):
        raise InvalidModel(f"covariance matrix {index} has a variance <= 0")
    factors64, covariances64 = factors.astype(np.float64), covariances.astype(np.float64)
    scales = np.sqrt(variances)
    outer = scales[:, :, None] * scales[:, None, :]
    # A covariance must be positive definite, its correlations within [-1, 1]; the rounding
    # bound below trusts the correlation matrix, so a tampered one must not inflate it.
    correlations = covariances64 / outer
    for index in np.flatnonzero(np.max(np.abs(correlations), axis=(1, 2)) > 1 + 64 * float(np.finfo(dtype).eps)):
        raise InvalidModel(f"covariance matrix {index} is not positive definite (a correlation beyond 1)")
    for index, matrix in enumerate(correlations):
        try:
            np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError:
            raise InvalidModel(f"covariance matrix {index} is not positive definite") from None
    identity = np.swapaxes(factors64, 1, 2) @ covariances64 @ factors64
    error = np.max(np.abs(identity - np.eye(n_features)), axis=(1, 2))
    correlation_norm = np.linalg.norm(correlations, axis=(1, 2))
    # R^-1 = S P S with S the standard deviations and P = C C^T
    inverse_norm = np.linalg.norm((factors64 @ np.swapaxes(factors64, 1, 2)) * outer, axis=(1, 2))
    eps = float(np.finfo(dtype).eps)
    tolerance = np.maximum(_CONSISTENCY_FLOOR[dtype], 64 * n_features * eps * correlation_norm * inverse_norm)
    for index in np.flatnonzero(~(error <= tolerance)):
        raise InvalidModel(
            f"covariance matrix {index} is not the inverse of its precision matrix "
            f"(C^T Sigma C differs from the identity by {error[index]:.3g})"
        )


def _check_elementwise(factors: np.ndarray, precisions: np.ndarray, covariances: np.ndarray, dtype: np.dtype) -> None:
    """Diagonal and spherical layouts: ``C > 0``, ``P == C^2``, ``Sigma == 1 / P``.

    Parameters
    ----------
    factors, precisions, covariances : ndarray of shape (K, D) or (K,)
    """
    if not (factors > 0).all():
        raise InvalidModel("array 'precisions_cholesky' holds values <= 0")
    factors64 = factors.astype(np.float64)
    eps = float(np.finfo(dtype).eps)
    if np.any(np.abs(precisions - factors64**2) > 8 * eps * factors64**2):
        raise InvalidModel("array 'precisions' is not the square of 'precisions_cholesky'")
    # sqrt, reciprocal and square: a few roundings of dtype each
    error = float(np.max(np.abs(covariances.astype(np.float64) * factors64**2 - 1.0), initial=0.0))
    if not error <= max(_CONSISTENCY_FLOOR[dtype], 64 * eps):
        raise InvalidModel(
            f"array 'covariances' is not the inverse of 'precisions' (their product differs from 1 by {error:.3g})"
        )
