"""Compiled inner iterations of the mclust M-steps without a closed form; needs numba.

The same updates as :func:`gaussmix.covariance._eigen.fit_common_orientation`
(EVE, VVE: exact scales given the orientation, one majorise-minimise step of
the orientation given the scales) and
:func:`gaussmix.covariance._eigen.alternate_volume_and_shape` (VEI, VEV), each
in one compiled loop: on the small matrices of small data each NumPy call costs
more in dispatch than in arithmetic, and the loops make about ten of them per
update, up to 20 updates per EM iteration. Importing this module imports
numba: do it lazily.
"""

from __future__ import annotations

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
def _rotated_diagonals(scatter, orientation):
    n_components, n_features = scatter.shape[0], scatter.shape[1]
    summaries = np.empty((n_components, n_features), dtype=scatter.dtype)
    # The loop's orientations are typed as any layout: the product wants a contiguous one.
    orientation = np.ascontiguousarray(orientation)
    for k in range(n_components):
        rotated = scatter[k] @ orientation
        for j in range(n_features):
            total = 0.0
            for i in range(n_features):
                total += orientation[i, j] * rotated[i, j]
            summaries[k, j] = total
    return summaries


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
def _mm_step(shifted, orientation, scales, spreads, tiny):
    n_components, n_features = scales.shape
    contiguous = np.ascontiguousarray(orientation)  # typed as any layout in the loop
    # min(s) / s: the inverses up to one common factor, which leaves the minimiser as it
    # is; 1 / s overflowed where a scale sat at the floor (see _eigen.relative_inverse).
    smallest = max(scales.min(), tiny)
    beta = 0.0
    gradient = np.zeros_like(orientation)
    for k in range(n_components):
        inverse = np.empty(n_features, dtype=scales.dtype)
        for j in range(n_features):
            inverse[j] = smallest / max(scales[k, j], tiny)
        inverse -= inverse.min()
        beta += spreads[k] * inverse.max()
        product = shifted[k] @ contiguous
        for i in range(n_features):
            for j in range(n_features):
                gradient[i, j] += product[i, j] * inverse[j]
    # beta is a float64 scalar: keep the matrix in the orientation's dtype
    left, _, right = np.linalg.svd((beta * orientation - gradient).astype(orientation.dtype))
    return left @ right


@_njit(error_model="numpy")
def common_orientation_loop(scatter, shifted, spreads, counts, orientation, mode, limit, tolerance, tiny):
    """Orientation (D, D) and scales (K, D) after at most ``limit`` updates; see the module docstring.

    ``tolerance`` is the relative change of the objective that stops the loop
    (``InnerIteration.converged``'s, already at least 100 eps of the dtype).
    """
    summaries = _rotated_diagonals(scatter, orientation)
    scales = _scales_in_frame(summaries, counts, mode, tiny)
    value = _objective(summaries, scales, counts, tiny)
    for _ in range(limit):
        orientation = _mm_step(shifted, orientation, scales, spreads, tiny)
        summaries = _rotated_diagonals(scatter, orientation)
        scales = _scales_in_frame(summaries, counts, mode, tiny)
        new_value = _objective(summaries, scales, counts, tiny)
        converged = abs(value - new_value) <= tolerance * abs(new_value)
        value = new_value
        if converged:
            break
    return orientation, scales


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
