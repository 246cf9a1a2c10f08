"""Compiled inner iterations of the mclust M-steps without a closed form; needs numba.

The same updates as :func:`gaussmix.covariance._eigen.fit_common_orientation`
(EVE, VVE: Jacobi sweeps of plane rotations of the orientation, each round
followed by the exact scales given the orientation) and
:func:`gaussmix.covariance._eigen.alternate_volume_and_shape` (VEI, VEV), each
in one compiled loop: on the small matrices of small data each NumPy call costs
more in dispatch than in arithmetic, and the loops make about ten of them per
update, up to 20 updates per EM iteration. Importing this module imports
numba: do it lazily.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import _njit, numba  # noqa: F401  (gaussmix._numba.compiled reads numba)

# error_model="numpy": a zero divisor (a component with no spread) gives inf or NaN, as in
# the NumPy loop, and the collapse check names it, instead of raising ZeroDivisionError.

#: ``mode`` of :func:`common_orientation_loop`: how the scales follow from the summaries
EQUAL_VOLUME, VARIABLE_VOLUME = 0, 1


@_njit(error_model="numpy")
def _scales_in_frame(summaries, counts, mode, tiny):
    n_components, n_features = summaries.shape
    scales = np.empty_like(summaries)
    if mode == VARIABLE_VOLUME:
        for k in range(n_components):
            for j in range(n_features):
                scales[k, j] = summaries[k, j] / counts[k]
        return scales
    # Equal volume: each component's shape, times the volume sum_k lambda_k / sum_k N_k.
    total_volume = 0.0
    volumes = np.empty(n_components)
    for k in range(n_components):
        log_sum = 0.0
        for j in range(n_features):
            log_sum += np.log(max(summaries[k, j], tiny))
        volumes[k] = np.exp(log_sum / n_features)
        total_volume += volumes[k]
    common = total_volume / np.sum(counts)
    for k in range(n_components):
        for j in range(n_features):
            scales[k, j] = common * (summaries[k, j] / volumes[k])
    return scales


@_njit(error_model="numpy")
def _objective(summaries, scales, counts, tiny):
    value = 0.0
    for k in range(summaries.shape[0]):
        log_sum = 0.0
        for j in range(summaries.shape[1]):
            scale = max(scales[k, j], tiny)
            log_sum += np.log(scale)
            value += summaries[k, j] / scale
        value += counts[k] * log_sum
    return value


@_njit(error_model="numpy")
def _round_angles(rotated, scales, first, second, tiny):
    """:func:`gaussmix.covariance._eigen.pair_half_angles` with relative inverse scales."""
    n_components = scales.shape[0]
    smallest = max(scales.min(), tiny)
    angles = np.zeros(first.shape[0])
    for pair in range(first.shape[0]):
        p, q = first[pair], second[pair]
        u = 0.0
        v = 0.0
        for k in range(n_components):
            # min(s) / s: the inverses up to one common factor (see _eigen.relative_inverse)
            spread = smallest / max(scales[k, p], tiny) - smallest / max(scales[k, q], tiny)
            u += spread * (rotated[k, p, p] - rotated[k, q, q])
            v += spread * rotated[k, p, q]
        u *= 0.5
        if u != 0.0 or v != 0.0:
            angles[pair] = 0.5 * math.atan2(-v, -u)
    return angles


@_njit(error_model="numpy")
def _rotate_round(rotated, orientation, angles, first, second):
    """``R_k <- G^T R_k G`` and ``D <- D G`` for the round's disjoint plane rotations ``G``."""
    n_components, n_features = rotated.shape[0], rotated.shape[1]
    rotation = np.eye(n_features, dtype=rotated.dtype)
    for pair in range(first.shape[0]):
        p, q = first[pair], second[pair]
        if p == q:  # padding of a round with D odd
            continue
        cosine, sine = math.cos(angles[pair]), math.sin(angles[pair])
        rotation[p, p] = cosine
        rotation[q, q] = cosine
        rotation[p, q] = -sine
        rotation[q, p] = sine
    for k in range(n_components):
        rotated[k] = rotation.T @ (rotated[k] @ rotation)
    return orientation @ rotation


@_njit(error_model="numpy")
def _rotated_scatter(scatter, orientation):
    rotated = np.empty_like(scatter)
    for k in range(scatter.shape[0]):
        rotated[k] = orientation.T @ (scatter[k] @ orientation)
    return rotated


@_njit(error_model="numpy")
def _diagonals(rotated):
    """The diagonals (K, D) of a (K, D, D) stack."""
    n_components, n_features = rotated.shape[0], rotated.shape[1]
    out = np.empty((n_components, n_features), dtype=rotated.dtype)
    for k in range(n_components):
        for j in range(n_features):
            out[k, j] = rotated[k, j, j]
    return out


@_njit(error_model="numpy")
def common_orientation_loop(scatter, counts, orientation, mode, limit, tolerance, tiny):
    """Orientation (D, D) and scales (K, D) after at most ``limit`` sweeps; see the module docstring.

    ``tolerance`` is the relative change of the objective that stops the loop
    (``InnerIteration.converged``'s, already at least 100 eps of the dtype).
    """
    first, second = _rotation_rounds(scatter.shape[1])
    orientation = np.ascontiguousarray(orientation)
    rotated = _rotated_scatter(scatter, orientation)
    summaries = _diagonals(rotated)
    scales = _scales_in_frame(summaries, counts, mode, tiny)
    value = _objective(summaries, scales, counts, tiny)
    for _ in range(limit):
        for round_ in range(first.shape[0]):
            angles = _round_angles(rotated, scales, first[round_], second[round_], tiny)
            orientation = _rotate_round(rotated, orientation, angles, first[round_], second[round_])
            scales = _scales_in_frame(_diagonals(rotated), counts, mode, tiny)
        # D^T W_k D afresh after each sweep: rotating it in place would let rounding drift
        rotated = _rotated_scatter(scatter, orientation)
        summaries = _diagonals(rotated)
        scales = _scales_in_frame(summaries, counts, mode, tiny)
        new_value = _objective(summaries, scales, counts, tiny)
        converged = abs(value - new_value) <= tolerance * abs(new_value)
        value = new_value
        if converged:
            break
    return orientation, scales


@_njit(error_model="numpy")
def _rotation_rounds(n_features):
    """:func:`gaussmix.covariance._eigen.rotation_rounds` as two (rounds, pairs) index arrays.

    With ``D`` odd a round has one pair fewer than the arrays' width: its last
    column then repeats pair 0 with ``p == q``, whose angle is always zero.
    """
    n_players = n_features + n_features % 2
    players = np.arange(n_players)
    width = n_players // 2
    first = np.zeros((n_players - 1, width), dtype=np.int64)
    second = np.zeros((n_players - 1, width), dtype=np.int64)
    for round_ in range(n_players - 1):
        used = 0
        for i in range(width):
            a, b = players[i], players[n_players - 1 - i]
            if max(a, b) < n_features:
                first[round_, used] = min(a, b)
                second[round_, used] = max(a, b)
                used += 1
        for i in range(used, width):
            first[round_, i] = first[round_, 0]
            second[round_, i] = first[round_, 0]
        last = players[n_players - 1]
        for i in range(n_players - 1, 1, -1):
            players[i] = players[i - 1]
        players[1] = last
    return first, second


@_njit(error_model="numpy")
def volume_and_shape_loop(summaries, counts, volumes, limit, tolerance, tiny):
    """Volumes (K,) and one common shape (D,) after at most ``limit`` alternations.

    The updates of :func:`gaussmix.covariance._eigen.alternate_volume_and_shape`,
    stopping where the objective changes by at most ``tolerance`` relatively.
    """
    n_components, n_features = summaries.shape
    volumes = volumes.copy()
    shape = np.ones(n_features, dtype=summaries.dtype)
    scales = np.empty_like(summaries)
    value = np.nan
    for iteration in range(limit):
        pooled = np.zeros(n_features, dtype=summaries.dtype)
        smallest = max(volumes.min(), tiny)  # relative inverses, as _eigen.relative_inverse
        for k in range(n_components):
            for j in range(n_features):
                pooled[j] += summaries[k, j] * (smallest / max(volumes[k], tiny))
        log_sum = 0.0
        for j in range(n_features):
            log_sum += np.log(max(pooled[j], tiny))
        geometric_mean = np.exp(log_sum / n_features)
        for j in range(n_features):
            shape[j] = pooled[j] / geometric_mean
        for k in range(n_components):
            total = 0.0
            for j in range(n_features):
                total += summaries[k, j] / shape[j]
            volumes[k] = max(total / (n_features * counts[k]), tiny)
            for j in range(n_features):
                scales[k, j] = volumes[k] * shape[j]
        new_value = _objective(summaries, scales, counts, tiny)
        if iteration > 0 and abs(value - new_value) <= tolerance * abs(new_value):
            break
        value = new_value
    return volumes, shape
