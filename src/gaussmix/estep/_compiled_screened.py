"""Compiled part of the screened E-step for dense precisions (needs numba).

float32 expanded log-densities (one float32 product, see
:mod:`gaussmix.estep.screened`) are accurate to about eps32 times the
terms they cancel: enough to tell which (row, component) pairs can matter,
not to compute them. For one block of rows this kernel lists the pairs whose
approximate responsibility, relative to its component's largest in the block,
is within a gap of :data:`gaussmix.estep._sparse_moments.TRUNCATION_THRESHOLD`
(and a margin for the float32 error), computes their log-densities exactly in
float64 (``|(x - mu_k) C_k|^2``, gathered per component and whitened by one
matrix product each), their responsibilities, and their sums about the current
means. The other pairs are not computed: what they could add is bounded, per
component, by ``exp(threshold + slack)`` per row.

Importing this module imports numba: do it lazily.
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import _njit, numba
from ._compiled_vector import _LOWEST_EXPONENT, _exp_of_row_of, _log_density_sums, _power_of_two_of

#: e^x below the smallest normal float64 counts as 0 (as in the responsibilities kernel)
_LOWEST = float(_LOWEST_EXPONENT[np.dtype(np.float64)])


def _list_candidates(
    approx, approx_offsets, floors, use_floors, gap, row_max, thresholds, counts, starts, pair_rows,
):  # pragma: no cover - compiled
    """Per component k, the rows j of the block (``approx`` (K, m) + ``approx_offsets``) with
    ``a_kj - max_i a_ij >= max_j (a_kj - max_i a_ij) - gap`` (with ``use_floors``, the
    larger of that largest and ``floors[k]``), into ``pair_rows[k, :counts[k]]``;
    ``thresholds[k]`` gets the right-hand side and ``starts[k]`` the number of pairs of
    the components before k (where k's pairs start in a buffer of them all). Returns the
    number of pairs."""
    n_components, n_rows = approx.shape
    for j in range(n_rows):
        row_max[j] = approx[0, j] + approx_offsets[0]
    for k in range(1, n_components):
        for j in range(n_rows):
            value = approx[k, j] + approx_offsets[k]
            current = row_max[j]
            # "+ 0": an unconditional store (a masked one is much slower on AMD cores)
            row_max[j] = value if value > current else current + np.float32(0.0)
    n_pairs = 0
    for k in range(n_components):
        # A component that is some row's largest has 0 for its own largest: list against
        # -gap while finding it, and again in the other case (with the floors, a component
        # absent from the block lists few rows, not all near its own best).
        threshold = -gap
        largest = np.float32(-np.inf)
        listed = 0
        for j in range(n_rows):
            value = approx[k, j] + approx_offsets[k] - row_max[j]
            largest = max(largest, value)
            # branch-free listing: every row is written, the count moves on for candidates only
            pair_rows[k, listed] = j
            listed += value >= threshold
        if largest < 0:
            threshold = (largest if not use_floors or largest > floors[k] else floors[k]) - gap
            listed = 0
            for j in range(n_rows):
                pair_rows[k, listed] = j
                listed += approx[k, j] + approx_offsets[k] - row_max[j] >= threshold
        thresholds[k] = threshold
        counts[k] = listed
        starts[k] = n_pairs
        n_pairs += listed
    return n_pairs


def _pair_rows_view(buffer, first, listed, n_features):  # pragma: no cover - compiled
    """The (``listed``, D) rows of ``buffer`` from pair ``first`` on."""
    return buffer[first * n_features:(first + listed) * n_features].reshape((listed, n_features))


def _centred_candidates(buffer, starts, counts, k, n_features):  # pragma: no cover - compiled
    """Component k's centred candidate rows, (``counts[k]``, D), in the buffer of them all."""
    return _pair_rows_view(buffer, starts[k], counts[k], n_features)


def _gather_centred(rows, pair_rows, n_pairs, centre, out):  # pragma: no cover - compiled
    """``out[i] = rows[pair_rows[i]] - centre`` in float64, for i < ``n_pairs``."""
    n_features = rows.shape[1]
    for i in range(n_pairs):
        j = pair_rows[i]
        for a in range(n_features):
            out[i, a] = np.float64(rows[j, a]) - centre[a]


def _screened_block(
    approx, approx_offsets, floors, rows, weights, centres, factors, offsets, origin, gap, slack, max_pairs,
    row_max, thresholds, counts, starts, pair_rows, pair_values, best, total, row_best, powers, logs, centred_buffer,
    product_buffer, square, resp_weight, sums, scatter, totals, dropped,
):  # pragma: no cover - compiled
    """One block of m rows: see the module docstring. Returns False (and changes no sum)
    where more than ``max_pairs`` pairs are candidates.

    ``approx`` (K, m) float32 with ``approx_offsets`` (K,): the float32 log-densities, up
    to a constant per row; ``floors`` (K,) float32 the lowest a component's largest
    log-responsibility counts as in a block crowded otherwise (see
    :func:`_list_candidates` and :data:`gaussmix.estep._sparse_moments.ABSENT_SHARE`).
    ``rows`` (m, D) as stored, ``weights`` (m,), ``centres`` (K, D) the current means
    and ``origin`` (D,) the point that ``dropped`` measures from, in the rows' frame
    (float64). ``factors`` (K, D, D) upper precision Cholesky factors, ``offsets`` (K,)
    ``log pi_k + log det C_k - D/2 log(2 pi)``. The sums (float64) gain:
    ``resp_weight`` (K,), ``sums`` (K, D) of ``r (x - mu_k)``, ``scatter`` (K, D, D) of
    ``r (x - mu_k)(x - mu_k)^T``, ``totals`` [sum w, sum w log p(x)] and ``dropped``
    (2, K) the bound on the left-out responsibilities and on their ``sum r |x - origin|^2``.
    The rest are scratch."""
    n_components, n_rows = approx.shape
    n_features = rows.shape[1]
    listing = (gap, row_max, thresholds, counts, starts, pair_rows)
    n_pairs = _list_candidates(approx, approx_offsets, floors, False, *listing)
    if n_pairs > max_pairs:  # crowded: again with the floors (components absent from the block)
        n_pairs = _list_candidates(approx, approx_offsets, floors, True, *listing)
    if n_pairs > max_pairs:
        return False
    # exact log-densities of the candidates: one (m_k, D) @ (D, D) whitening per component;
    # the centred rows are kept for the sums (gathering them again cost as much as the sums)
    for k in range(n_components):
        listed = counts[k]
        if listed == 0:
            continue
        centred = _centred_candidates(centred_buffer, starts, counts, k, n_features)
        whitened = _pair_rows_view(product_buffer, 0, listed, n_features)
        _gather_centred(rows, pair_rows[k], listed, centres[k], centred)
        np.dot(centred, factors[k], whitened)
        for i in range(listed):
            distance = 0.0
            for a in range(n_features):
                distance += whitened[i, a] * whitened[i, a]
            pair_values[k, i] = -0.5 * distance + offsets[k]
    # responsibilities over each row's candidates (its largest is always among them)
    for j in range(n_rows):
        best[j] = -np.inf
        total[j] = 0.0
    for k in range(n_components):
        for i in range(counts[k]):
            j = pair_rows[k, i]
            best[j] = max(best[j], pair_values[k, i])
    for k in range(n_components):
        listed = counts[k]
        values = pair_values[k, :listed]
        for i in range(listed):
            row_best[i] = best[pair_rows[k, i]]
        # the vectorised exp of the responsibilities kernel (libm's is scalar)
        _exp_of_row_of(values, 1.0, 0.0, row_best[:listed], _LOWEST, powers[:listed])
        _power_of_two_of(powers[:listed])
        for i in range(listed):
            value = values[i] * powers[i]
            values[i] = value
            total[pair_rows[k, i]] += value
    # the weights' and log-likelihood's sums of the responsibilities kernel (its vectorised log)
    block_weight, block_loglik = _log_density_sums(total[:n_rows], best[:n_rows], weights, 0, logs[:n_rows], powers)
    totals[1] += block_loglik
    block_norms = 0.0
    for j in range(n_rows):
        w = weights[j]
        total[j] = w / total[j]
        norm = 0.0
        for a in range(n_features):
            difference = np.float64(rows[j, a]) - origin[a]
            norm += difference * difference
        block_norms += w * norm
    totals[0] += block_weight
    # sums about the current means: r (x - mu) and one (D, m_k) @ (m_k, D) product each
    for k in range(n_components):
        bound = math.exp(np.float64(thresholds[k]) + slack)
        dropped[0, k] += bound * block_weight
        dropped[1, k] += bound * block_norms
        listed = counts[k]
        if listed == 0:
            continue
        centred = _centred_candidates(centred_buffer, starts, counts, k, n_features)
        weighted = _pair_rows_view(product_buffer, 0, listed, n_features)
        weight = 0.0
        for i in range(listed):
            r = pair_values[k, i] * total[pair_rows[k, i]]
            weight += r
            for a in range(n_features):
                weighted[i, a] = r * centred[i, a]
        resp_weight[k] += weight
        for i in range(listed):
            for a in range(n_features):
                sums[k, a] += weighted[i, a]
        np.dot(weighted.T, centred, square)
        for a in range(n_features):
            for b in range(n_features):
                scatter[k, a, b] += square[a, b]
    return True


if numba is not None:
    # reassoc: the sums may be vectorised (a fixed order, so still deterministic)
    _OPTIONS = dict(nogil=True, fastmath={"contract", "reassoc"})
    _list_candidates, _pair_rows_view, _centred_candidates, _gather_centred = (
        _njit(**_OPTIONS)(f) for f in (_list_candidates, _pair_rows_view, _centred_candidates, _gather_centred)
    )
    _compiled_screened_block = _njit(error_model="numpy", **_OPTIONS)(_screened_block)
else:
    _compiled_screened_block = None


class ScreenedSums:
    """The float64 sums of one chunk's screened E-step, block by block.

    Parameters
    ----------
    n_components, n_features : int
    block_rows : int
        The most rows one :meth:`add_block` call takes (its scratch is allocated once).
    max_pairs : int
        The most candidate pairs of a block it takes.

    Attributes
    ----------
    resp_weight : ndarray of shape (K,)
    sums : ndarray of shape (K, D)
        ``sum r (x - mu_k)``, about the current means.
    scatter : ndarray of shape (K, D, D)
        ``sum r (x - mu_k)(x - mu_k)^T``.
    total_weight, loglik : float
    dropped : ndarray of shape (2, K)
        Bounds on the left-out responsibilities and on their ``sum r |x - origin|^2``.
    """

    def __init__(self, n_components: int, n_features: int, block_rows: int, max_pairs: int) -> None:
        self.resp_weight = np.zeros(n_components)
        self.sums = np.zeros((n_components, n_features))
        self.scatter = np.zeros((n_components, n_features, n_features))
        self.dropped = np.zeros((2, n_components))
        self._totals = np.zeros(2)
        self._scratch = (
            np.empty(block_rows, dtype=np.float32),  # row_max
            np.empty(n_components, dtype=np.float32),  # thresholds
            np.empty(n_components, dtype=np.intp),  # counts
            np.empty(n_components, dtype=np.intp),  # starts
            np.empty((n_components, block_rows), dtype=np.intp),  # pair_rows
            np.empty((n_components, block_rows)),  # pair_values
            np.empty(block_rows),  # best
            np.empty(block_rows),  # total
            np.empty(block_rows),  # each pair's row's best
            np.empty(block_rows),  # powers of two of the exp, or the log's exponents
            np.empty(block_rows),  # the log of each row's total
            np.empty(max_pairs * n_features),  # centred rows of every candidate
            np.empty(block_rows * n_features),  # their product
            np.empty((n_features, n_features)),  # one component's scatter
        )

    @property
    def total_weight(self) -> float:
        return float(self._totals[0])

    @property
    def loglik(self) -> float:
        return float(self._totals[1])

    def add_block(
        self, approx: np.ndarray, approx_offsets: np.ndarray, floors: np.ndarray, rows: np.ndarray,
        weights: np.ndarray, centres: np.ndarray, factors: np.ndarray, offsets: np.ndarray, origin: np.ndarray,
        gap: float, slack: float, max_pairs: int,
    ) -> bool:
        """Add one block of m rows; False (nothing added) where more than ``max_pairs``
        (row, component) pairs are candidates. See :func:`_screened_block` for the arguments."""
        return bool(_compiled_screened_block(
            approx, approx_offsets, floors, rows, weights, centres, factors, offsets, origin,
            np.float32(gap), float(slack), int(max_pairs), *self._scratch,
            self.resp_weight, self.sums, self.scatter, self._totals, self.dropped,
        ))
