"""The whole EM loop in one compiled call, for in-memory float64 data of a few features (needs numba).

Model selection fits 126 small models; on a few hundred rows each EM
iteration is a handful of tiny matrix operations whose NumPy dispatch, not
arithmetic, is the cost. This loop keeps every parameter as a dense (K, D, D)
stack and runs E-step, statistics, M-step and convergence test of
:func:`gaussmix.em.run_em` without returning to Python. Each M-step is the
one of its structure's class (:mod:`gaussmix.covariance`), named by a code
(:data:`M_STEPS`); the inner iterations of VEI, VEV, EVE and VVE are
:mod:`gaussmix.covariance._numba_mstep`'s. Importing this module imports numba:
do it lazily (:mod:`gaussmix.compiled_em` does).
"""

from __future__ import annotations

import math

import numpy as np

from ..stats import WEIGHT_FLOOR
from .._jit import _njit, numba  # noqa: F401  (gaussmix._numba.compiled reads numba)
from ..estep._compiled_vector import _LOWEST_EXPONENT, _exp_of_row_of, _logs_of, _power_of_two_of
from ._numba_mstep import EQUAL_VOLUME, VARIABLE_VOLUME, common_orientation_loop, volume_and_shape_loop

#: the compiled M-steps, by mclust name (the scikit-learn four are VVV, EEE, VVI and VII)
M_STEPS = ("VVV", "EEE", "VVI", "VII", "EII", "EEI", "VEI", "EVI", "EEV", "VEV", "EVV", "VEE", "EVE", "VVE")
VVV, EEE, VVI, VII, EII, EEI, VEI, EVI, EEV, VEV, EVV, VEE, EVE, VVE = range(len(M_STEPS))

#: ``status`` of :func:`em_loop`: finished, or stopped before the step that Python must redo
#: (a factorisation failed, the likelihood is not finite, a variance vanished)
FINISHED, HANDED_BACK = 0, 1

_LOG_2PI = math.log(2.0 * math.pi)
#: exp of anything below this is 0: the vectorised exp assembles 2^n from bits, normal numbers only
_LOWEST = float(_LOWEST_EXPONENT[np.dtype(np.float64)])


@_njit(error_model="numpy")
def _factorise(covariances, axis_aligned, factors, log_dets):
    """Lower Cholesky factors of (K, D, D) covariances into ``factors``; False if one fails.

    ``log_dets[k]`` receives ``sum_i log L_ii`` (half the log-determinant).
    Axis-aligned structures need only the square roots of the diagonals.
    """
    n_components, n_features = covariances.shape[0], covariances.shape[1]
    for k in range(n_components):
        total = 0.0
        for i in range(n_features):
            for j in range(i + 1):
                if axis_aligned and j < i:
                    factors[k, i, j] = 0.0
                    continue
                value = covariances[k, i, j]
                for m in range(j):
                    value -= factors[k, i, m] * factors[k, j, m]
                if i == j:
                    if not value > 0.0:
                        return False
                    factors[k, i, i] = math.sqrt(value)
                    total += math.log(factors[k, i, i])
                else:
                    factors[k, i, j] = value / factors[k, j, j]
        log_dets[k] = total
    return True


@_njit(error_model="numpy", fastmath={"contract"})
def _e_step(columns, weights_of_rows, means, factors, log_dets, log_weights, axis_aligned, resp, scratch):
    """Weighted responsibilities ``w_n g_nk`` into ``resp`` (K, n); returns ``sum_n w_n log p(x_n)``.

    ``columns`` are the rows transposed, (D, n): every inner loop runs along the
    rows, which compiles to vector code. ``scratch`` is (D + 4, n) working space.
    """
    n_features, n_samples = columns.shape
    n_components = means.shape[0]
    whitened = scratch[:n_features]
    row_max, totals, power_bits, exponents = scratch[n_features], scratch[n_features + 1], scratch[n_features + 2], scratch[n_features + 3]
    constant = -0.5 * n_features * _LOG_2PI
    for k in range(n_components):
        log_prob = resp[k]
        log_prob[:] = 0.0
        for i in range(n_features):
            row = whitened[i]
            mean = means[k, i]
            for n in range(n_samples):
                row[n] = columns[i, n] - mean
            if not axis_aligned:
                for m in range(i):
                    factor = factors[k, i, m]
                    earlier = whitened[m]
                    for n in range(n_samples):
                        row[n] -= factor * earlier[n]
            inverse = 1.0 / factors[k, i, i]
            for n in range(n_samples):
                value = row[n] * inverse
                row[n] = value
                log_prob[n] += value * value
        offset = log_weights[k] + constant - log_dets[k]
        for n in range(n_samples):
            log_prob[n] = offset - 0.5 * log_prob[n]
    row_max[:] = resp[0]
    for k in range(1, n_components):
        log_prob = resp[k]
        for n in range(n_samples):
            row_max[n] = max(row_max[n], log_prob[n])
    totals[:] = 0.0
    for k in range(n_components):
        log_prob = resp[k]
        # exp(log_prob - row_max), vectorised (the fused kernel's exp, within 1 ulp of NumPy's)
        _exp_of_row_of(log_prob, 1.0, 0.0, row_max, _LOWEST, power_bits)
        _power_of_two_of(power_bits)
        for n in range(n_samples):
            log_prob[n] *= power_bits[n]
            totals[n] += log_prob[n]
    logs = power_bits
    _logs_of(totals, logs, exponents)
    loglik = 0.0
    for n in range(n_samples):
        loglik += weights_of_rows[n] * (row_max[n] + logs[n])
        totals[n] = weights_of_rows[n] / totals[n]
    for k in range(n_components):
        log_prob = resp[k]
        for n in range(n_samples):
            log_prob[n] *= totals[n]
    return loglik


@_njit(error_model="numpy", fastmath={"contract", "reassoc"})
def _statistics(columns, resp, full, counts, means, scatter, scratch):
    """``N_k`` (K,), weighted means (K, D) (zero where ``N_k`` is) and scatters about them (K, D, D).

    Only the diagonals when not ``full``; about the new means (two passes), so
    nothing cancels. ``scratch`` is (2 D, n) working space.
    """
    n_features, n_samples = columns.shape
    n_components = resp.shape[0]
    centred, weighted = scratch[:n_features], scratch[n_features:2 * n_features]
    scatter[:] = 0.0
    for k in range(n_components):
        r = resp[k]
        count = 0.0
        for n in range(n_samples):
            count += r[n]
        counts[k] = count
        for i in range(n_features):
            total = 0.0
            row = columns[i]
            for n in range(n_samples):
                total += r[n] * row[n]
            means[k, i] = total / count if count > 0 else 0.0
        for i in range(n_features):
            mean = means[k, i]
            for n in range(n_samples):
                value = columns[i, n] - mean
                centred[i, n] = value
                weighted[i, n] = r[n] * value
        for i in range(n_features):
            for j in range(i + 1):
                if not full and j < i:
                    continue
                total = 0.0
                for n in range(n_samples):
                    total += weighted[i, n] * centred[j, n]
                scatter[k, i, j] = total
                scatter[k, j, i] = total


@_njit(error_model="numpy")
def _descending_eigh(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return values[::-1].copy(), vectors[:, ::-1].copy()


@_njit(error_model="numpy")
def _rotate_back(orientation, diagonal, out):
    """``out = O diag(d) O^T``, exactly symmetric."""
    n_features = diagonal.shape[0]
    for i in range(n_features):
        for j in range(i + 1):
            total = 0.0
            for m in range(n_features):
                total += orientation[i, m] * diagonal[m] * orientation[j, m]
            out[i, j] = total
            out[j, i] = total


@_njit(error_model="numpy")
def _volume(matrix):
    """``det(M)^(1/D)`` from the log of |det| (NumPy's slogdet, as ``_eigen.dense_volumes``)."""
    _, log_det = np.linalg.slogdet(matrix)
    return math.exp(log_det / matrix.shape[0])


@_njit(error_model="numpy")
def _m_step(code, scatter, counts, reg_covar, previous, inner_limit, inner_tol, tiny, out):
    """Covariances (K, D, D) of structure ``code`` into ``out``; False where the M-step itself fails.

    ``scatter`` (K, D, D) is about the new means, ``counts`` are ``N_k`` plus
    the floor, ``previous`` the covariances of the E-step (warm starts of the
    iterative structures). Each branch is its class's ``estimate``.
    """
    n_components, n_features = scatter.shape[0], scatter.shape[1]
    out[:] = 0.0
    total_count = counts.sum()
    if code == EEE:
        pooled = np.zeros((n_features, n_features))
        for k in range(n_components):
            pooled += scatter[k]
        pooled /= total_count
        for i in range(n_features):
            pooled[i, i] += reg_covar
        for k in range(n_components):
            out[k] = pooled
        return True
    if code == EII:
        traces = 0.0
        for k in range(n_components):
            traces += np.trace(scatter[k])
        variance = traces / (n_features * total_count) + reg_covar
        for k in range(n_components):
            for i in range(n_features):
                out[k, i, i] = variance
        return True
    if code == VVV or code == VVI or code == VII:
        for k in range(n_components):
            if code == VVV:
                out[k] = scatter[k] / counts[k]
            elif code == VVI:
                for i in range(n_features):
                    out[k, i, i] = scatter[k, i, i] / counts[k]
            else:
                variance = np.trace(scatter[k]) / (n_features * counts[k])
                for i in range(n_features):
                    out[k, i, i] = variance
            for i in range(n_features):
                out[k, i, i] += reg_covar
        return True
    # mclust's structures minimise over the regularised scatter W_k + reg N_k I (_eigen.counts_and_scatter).
    regularised = scatter.copy()
    for k in range(n_components):
        for i in range(n_features):
            regularised[k, i, i] += reg_covar * counts[k]
    if code == EEI or code == VEI or code == EVI:
        diagonals = np.empty((n_components, n_features))
        for k in range(n_components):
            for i in range(n_features):
                diagonals[k, i] = regularised[k, i, i]
        scales = np.empty((n_components, n_features))
        if code == EEI:
            pooled = diagonals.sum(axis=0) / total_count
            for k in range(n_components):
                scales[k] = pooled
        elif code == VEI:
            volumes = np.empty(n_components)
            for k in range(n_components):
                log_sum = 0.0
                for i in range(n_features):
                    log_sum += math.log(max(previous[k, i, i], tiny))
                volumes[k] = math.exp(log_sum / n_features)
            volumes, shape = volume_and_shape_loop(diagonals, counts, volumes, inner_limit, inner_tol, tiny)
            for k in range(n_components):
                scales[k] = volumes[k] * shape
        else:
            volume_sum = 0.0
            for k in range(n_components):
                log_sum = 0.0
                for i in range(n_features):
                    log_sum += math.log(max(diagonals[k, i], tiny))
                volume = math.exp(log_sum / n_features)
                volume_sum += volume
                scales[k] = diagonals[k] / volume
            scales *= volume_sum / total_count
        for k in range(n_components):
            for i in range(n_features):
                out[k, i, i] = scales[k, i]
        return True
    if code == EEV or code == VEV:
        eigenvalues = np.empty((n_components, n_features))
        orientations = np.empty((n_components, n_features, n_features))
        for k in range(n_components):
            eigenvalues[k], orientations[k] = _descending_eigh(regularised[k])
        if code == EEV:
            common = eigenvalues.sum(axis=0) / total_count
            for k in range(n_components):
                _rotate_back(orientations[k], common, out[k])
            return True
        volumes = np.empty(n_components)
        for k in range(n_components):
            volumes[k] = _volume(previous[k])
        volumes, shape = volume_and_shape_loop(eigenvalues, counts, volumes, inner_limit, inner_tol, tiny)
        for k in range(n_components):
            _rotate_back(orientations[k], volumes[k] * shape, out[k])
        return True
    if code == EVV:
        volumes = np.empty(n_components)
        for k in range(n_components):
            volumes[k] = max(_volume(regularised[k]), tiny)
        volume = volumes.sum() / total_count
        for k in range(n_components):
            # a singular scatter's covariance is left zero: the collapse check names it
            ratio = volume / volumes[k] if volumes[k] > tiny else 0.0
            out[k] = ratio * regularised[k]
        return True
    if code == VEE:
        volumes = np.empty(n_components)
        for k in range(n_components):
            volumes[k] = _volume(previous[k])
        value = np.nan
        common = np.zeros((n_features, n_features))
        for iteration in range(inner_limit):
            smallest = max(volumes.min(), tiny)
            pooled = np.zeros((n_features, n_features))
            for k in range(n_components):
                pooled += regularised[k] * (smallest / max(volumes[k], tiny))
            volume = _volume(pooled)
            if not volume > 0:
                return False
            common = pooled / volume
            inverse = np.linalg.inv(common)
            new_value = 0.0
            for k in range(n_components):
                trace = 0.0
                for i in range(n_features):
                    for j in range(n_features):
                        trace += regularised[k, i, j] * inverse[j, i]
                volumes[k] = max(trace / (n_features * counts[k]), tiny)
                new_value += counts[k] * math.log(volumes[k])
            new_value *= n_features
            if iteration > 0 and abs(value - new_value) <= inner_tol * abs(new_value):
                break
            value = new_value
        for k in range(n_components):
            for i in range(n_features):
                for j in range(n_features):
                    out[k, i, j] = volumes[k] * (0.5 * (common[i, j] + common[j, i]))
        return True
    # EVE and VVE: one orientation, from the previous covariances' common eigenvectors.
    golden = 0.6180339887498949
    combination = np.zeros((n_features, n_features))
    for k in range(n_components):
        combination += (1.0 + ((k * golden) % 1.0)) * previous[k]
    _, orientation = _descending_eigh(combination)
    mode = EQUAL_VOLUME if code == EVE else VARIABLE_VOLUME
    orientation, scales = common_orientation_loop(regularised, counts, orientation, mode, inner_limit, inner_tol, tiny)
    for k in range(n_components):
        _rotate_back(orientation, scales[k], out[k])
    return True


@_njit(error_model="numpy")
def _collapsed(covariances, reg_covar, eps):
    """Whether a variance vanished: ``CovarianceModel._raise_if_collapsed`` on the diagonals."""
    n_components, n_features = covariances.shape[0], covariances.shape[1]
    for i in range(n_features):
        largest = 0.0
        for k in range(n_components):
            value = covariances[k, i, i]
            if np.isfinite(value) and value > largest:
                largest = value
        for k in range(n_components):
            value = covariances[k, i, i]
            vanishing = not value > 10 * eps * largest
            if reg_covar > 0 and value > 0.5 * reg_covar:
                vanishing = False
            if vanishing or not np.isfinite(value) or not value > 0:
                return True
    return False


@_njit(error_model="numpy")
def em_loop(X, weights_of_rows, origin, weights, means, covariances, code, check_collapse, reg_covar, tol,
            max_iter, previous_lower_bound, inner_limit, inner_tol):
    """EM from ``(weights, means, covariances)`` until the mean log-likelihood changes by less than ``tol``.

    Parameters
    ----------
    X : array of shape (n, D)
        Rows in the frame centred on ``origin``.
    weights_of_rows : array of shape (n,)
    origin : array of shape (D,)
        Where an emptied component's mean goes back to (:func:`gaussmix.em.m_step`).
    weights : array of shape (K,)
    means : array of shape (K, D)
    covariances : array of shape (K, D, D)
        Dense, in the frame.
    code : int
        The M-step (:data:`M_STEPS`).
    check_collapse : bool
        Whether a vanishing variance stops the loop (every structure but EEE).

    Returns
    -------
    weights, means, covariances
        After the last M-step; with ``HANDED_BACK``, the ones its E-step used.
    lower_bounds : array of shape (n_iter,)
    converged : bool
    status : int
        ``FINISHED``, or ``HANDED_BACK``: the next iteration failed here (a
        factorisation, a non-finite likelihood or a vanished variance) and
        Python's loop must redo it from the parameters returned, so that the
        error (or, at a knife edge of rounding, the fit) is exactly its own.
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    eps = np.finfo(np.float64).eps
    tiny = np.finfo(np.float64).tiny
    axis_aligned = code == VVI or code == VII or code == EII or code == EEI or code == VEI or code == EVI
    full = not axis_aligned
    weights, means, covariances = weights.copy(), means.copy(), covariances.copy()
    factors = np.zeros((n_components, n_features, n_features))
    log_dets = np.empty(n_components)
    log_weights = np.empty(n_components)
    columns = np.ascontiguousarray(X.T)
    resp = np.empty((n_components, n_samples))
    scratch = np.empty((max(n_features + 4, 2 * n_features), n_samples))
    counts = np.empty(n_components)
    new_means = np.empty((n_components, n_features))
    scatter = np.empty((n_components, n_features, n_features))
    new_covariances = np.empty((n_components, n_features, n_features))
    lower_bounds = np.empty(max_iter)
    total_weight = weights_of_rows.sum()
    lower_bound = previous_lower_bound
    for iteration in range(max_iter):
        if not _factorise(covariances, axis_aligned, factors, log_dets):
            return weights, means, covariances, lower_bounds[:iteration], False, HANDED_BACK
        for k in range(n_components):
            log_weights[k] = math.log(weights[k]) if weights[k] > 0 else -np.inf
        loglik = _e_step(columns, weights_of_rows, means, factors, log_dets, log_weights, axis_aligned, resp, scratch)
        mean_loglik = loglik / total_weight
        if not np.isfinite(mean_loglik):
            return weights, means, covariances, lower_bounds[:iteration], False, HANDED_BACK
        _statistics(columns, resp, full, counts, new_means, scatter, scratch)
        # em.m_step: an emptied component keeps the floor as its weight and goes back to the origin.
        floored = counts + WEIGHT_FLOOR
        for k in range(n_components):
            if counts[k] < WEIGHT_FLOOR:
                kept = counts[k] / floored[k]
                for i in range(n_features):
                    new_means[k, i] = new_means[k, i] * kept - (1.0 - kept) * origin[i]
        if not _m_step(code, scatter, floored, reg_covar, covariances, inner_limit, inner_tol, tiny, new_covariances):
            return weights, means, covariances, lower_bounds[:iteration], False, HANDED_BACK
        if check_collapse and _collapsed(new_covariances, reg_covar, eps):
            return weights, means, covariances, lower_bounds[:iteration], False, HANDED_BACK
        weights = floored / floored.sum()
        means = new_means.copy()
        covariances = new_covariances.copy()
        change = mean_loglik - lower_bound
        lower_bound = mean_loglik
        lower_bounds[iteration] = mean_loglik
        if abs(change) < tol:
            return weights, means, covariances, lower_bounds[:iteration + 1], True, FINISHED
    return weights, means, covariances, lower_bounds[:max_iter], False, FINISHED
