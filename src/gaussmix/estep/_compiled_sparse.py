"""Compiled sparse moments of a block of rows (needs numba).

:func:`sparse_block_moments` sums a block's moments over its non-negligible
responsibilities only, and tallies what it leaves out, in one pass: the
compiled side of :mod:`gaussmix.estep._sparse_moments`. Importing this module
imports numba: do it lazily.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .._jit import _njit, numba


_SMALLEST_SUBNORMAL = float(np.nextafter(0.0, 1.0))


def _tally(
    resp, norms, relative_threshold, largest, floors, use_floors, max_kept, thresholds, left_out, mask, indices, starts,
):  # pragma: no cover - compiled
    """Per component, ``thresholds[k]`` <- ``relative_threshold`` times ``largest[k]``, its
    largest responsibility in the block (or ``floors[k]`` where ``use_floors`` and larger),
    ``left_out[:, k]`` <- the sum of those below it and their sum weighted by ``norms``, and
    the rows of those that reach it listed in order in ``indices[starts[k]:starts[k + 1]]``.
    Returns how many reach it, or, once more than ``max_kept`` do, stops there and returns
    that count. ``mask`` (the rows rounded up to a multiple of 8, the rest 0) and
    ``indices`` (``max_kept`` plus the rows plus 8) are scratch."""
    n_components, n_rows = resp.shape
    # Thresholds relative to each component's largest: a component with only tiny
    # responsibilities here keeps its largest ones, so that what is left out stays
    # negligible against what is kept (else the chunk's bound fails). A NaN largest
    # keeps nothing, and the chunk's bound then fails on the NaN it leaves out.
    for k in range(n_components):
        reference = np.float64(largest[k])
        if use_floors and floors[k] > reference:
            reference = floors[k]
        threshold = relative_threshold * reference
        thresholds[k] = threshold if not threshold <= 0.0 else _SMALLEST_SUBNORMAL  # zeros are never kept
    # One vector pass a component marks the kept ones and sums the others; the list
    # then reads the marks eight at a time, and most such words are 0. (A second pass
    # over the responsibilities would cost twice the pass that finds them.)
    words = mask.view(np.uint64)
    listed = 0
    for k in range(n_components):
        threshold = thresholds[k]
        weight = 0.0
        weighted = 0.0
        row = resp[k]
        for j in range(n_rows):
            r = np.float64(row[j])
            large = r >= threshold
            mask[j] = large
            left = 0.0 if large else r  # selects, not branches: vector code
            weight += left
            weighted += left * norms[j]
        left_out[0, k] = weight
        left_out[1, k] = weighted
        starts[k] = listed
        for w in range(words.shape[0]):
            if words[w] != 0:
                for j in range(8 * w, 8 * w + 8):
                    indices[listed] = j
                    listed += mask[j]
        if listed > max_kept:
            return listed
    starts[n_components] = listed
    return listed


def _add_four_features(f0, f1, f2, f3, r0, r1, r2, r3, out):  # pragma: no cover - compiled
    """``out += r0 f0 + r1 f1 + r2 f2 + r3 f3`` (float64 feature rows)."""
    for a in range(out.shape[0]):
        out[a] += (r0 * f0[a] + r1 * f1[a]) + (r2 * f2[a] + r3 * f3[a])


def _add_four_squares(x0, x1, x2, x3, r0, r1, r2, r3, origin, squares, centred):  # pragma: no cover - compiled
    """With ``c = x - origin`` (in float64): ``squares += sum r c^2``, ``centred += sum r c``."""
    for a in range(origin.shape[0]):
        shift = origin[a]
        c0, c1 = np.float64(x0[a]) - shift, np.float64(x1[a]) - shift
        c2, c3 = np.float64(x2[a]) - shift, np.float64(x3[a]) - shift
        w0, w1, w2, w3 = r0 * c0, r1 * c1, r2 * c2, r3 * c3
        centred[a] += (w0 + w1) + (w2 + w3)
        squares[a] += (w0 * c0 + w1 * c1) + (w2 * c2 + w3 * c3)


def _add_four_centred(x0, x1, x2, x3, r0, r1, r2, r3, origin, centred):  # pragma: no cover - compiled
    """With ``c = x - origin`` (in float64): ``centred += sum r c``."""
    for a in range(origin.shape[0]):
        shift = origin[a]
        centred[a] += (r0 * (np.float64(x0[a]) - shift) + r1 * (np.float64(x1[a]) - shift)) + (
            r2 * (np.float64(x2[a]) - shift) + r3 * (np.float64(x3[a]) - shift)
        )


def _sparse_block_moments(
    resp, largest, features, rows, origin, n_squares, relative_threshold, floors, max_kept, norms, thresholds,
    left_out, mask, indices, starts, moments, dropped,
):  # pragma: no cover - compiled
    """``moments[k] += r_nk f(x_n)`` over the responsibilities ``resp`` (K, b) that reach
    ``relative_threshold`` times their component's largest in the block, ``largest[k]``
    (and are not 0) only, if at most ``max_kept`` do (else, where ``floors`` (K,) are
    given, those that reach ``relative_threshold`` times the larger of that largest and
    ``floors[k]``, if at most ``max_kept`` do: components absent from a crowded block);
    ``dropped[0, k]`` and ``dropped[1, k]`` gain the others and their sum weighted by
    ``|x_n - origin|^2``. Returns whether the block was summed (else nothing changed).

    ``f(x) = [q(x), x - origin]``: ``q(x)`` holds the squares of ``x - origin``
    (``n_squares`` = D) or its squared norm (``n_squares`` = 1). The block's ``features``
    (b, W) hold them in float64; or, where ``features`` has no rows, they are built from
    the block's ``rows`` (b, D) as they are needed, in float64 whatever the rows' dtype
    (cheaper than building every row's). ``norms`` (b,), ``thresholds`` (K,),
    ``left_out`` (2, K), ``mask``, ``indices`` and ``starts`` (K + 1) are scratch (see
    :func:`_tally`). Products and sums are in float64.
    """
    n_components, n_rows = resp.shape
    n_features = rows.shape[1]
    from_rows = features.shape[0] == 0
    by_square = n_squares == n_features and n_features > 1
    for j in range(n_rows):
        norm = 0.0
        if from_rows:
            for a in range(n_features):
                value = np.float64(rows[j, a]) - origin[a]
                norm += value * value
        else:
            for a in range(n_squares):
                norm += features[j, a]
        norms[j] = norm
    kept = _tally(
        resp, norms, relative_threshold, largest, floors, False, max_kept, thresholds, left_out, mask, indices, starts
    )
    if kept > max_kept and floors.shape[0] > 0:
        kept = _tally(
            resp, norms, relative_threshold, largest, floors, True, max_kept, thresholds, left_out, mask, indices,
            starts,
        )
    if kept > max_kept:
        return False
    for k in range(n_components):
        dropped[0, k] += left_out[0, k]
        dropped[1, k] += left_out[1, k]
    # 2. Their moments, four rows at a time (one load and store of a component's moments
    # per four rows; a last group is padded with weight-0 copies of its first row). The
    # helpers take one-dimensional views: indexed into ``moments`` and ``rows`` directly,
    # the loop stayed scalar (the compiler could not rule out that they overlap).
    for k in range(n_components):
        squares = moments[k, :n_squares]
        centred = moments[k, n_squares:]
        for t in range(starts[k], starts[k + 1], 4):
            stop = starts[k + 1]
            j0 = indices[t]
            j1 = indices[t + 1] if t + 1 < stop else j0
            j2 = indices[t + 2] if t + 2 < stop else j0
            j3 = indices[t + 3] if t + 3 < stop else j0
            r0 = np.float64(resp[k, j0])
            r1 = np.float64(resp[k, j1]) if t + 1 < stop else 0.0
            r2 = np.float64(resp[k, j2]) if t + 2 < stop else 0.0
            r3 = np.float64(resp[k, j3]) if t + 3 < stop else 0.0
            if not from_rows:
                _add_four_features(features[j0], features[j1], features[j2], features[j3], r0, r1, r2, r3, moments[k])
            elif by_square:
                _add_four_squares(rows[j0], rows[j1], rows[j2], rows[j3], r0, r1, r2, r3, origin, squares, centred)
            else:
                _add_four_centred(rows[j0], rows[j1], rows[j2], rows[j3], r0, r1, r2, r3, origin, centred)
                squares[0] += (r0 * norms[j0] + r1 * norms[j1]) + (r2 * norms[j2] + r3 * norms[j3])
    return True


if numba is not None:
    # reassoc: the norms and left-out sums may be vectorised (a fixed order, so deterministic)
    _tally, _add_four_features, _add_four_squares, _add_four_centred, _compiled_sparse_block_moments = (
        _njit(nogil=True, fastmath={"contract", "reassoc"})(function)
        for function in (_tally, _add_four_features, _add_four_squares, _add_four_centred, _sparse_block_moments)
    )
else:
    _compiled_sparse_block_moments = None


def sparse_block_moments(
    resp: np.ndarray, rows: np.ndarray, origin: np.ndarray, n_squares: int, relative_threshold: float,
    max_kept: int, moments: np.ndarray, dropped: np.ndarray, features: Optional[np.ndarray] = None,
    floors: Optional[np.ndarray] = None,
) -> bool:
    """Moments of a block over its non-negligible responsibilities only, in one compiled pass.

    Parameters
    ----------
    resp : ndarray of shape (K, b)
        Weighted responsibilities, C-contiguous.
    rows : ndarray of shape (b, D)
        The block's rows, float32 or float64.
    origin : ndarray of shape (D,)
        The moments are those of ``f(x) = [q(x), x - origin]``, in float64.
    n_squares : int
        Columns of ``q(x)``: D for the squares of ``x - origin``, 1 for its squared norm.
    relative_threshold : float
        Responsibilities below it times their component's largest in the block are
        left out (and zeros).
    max_kept : int
        The most responsibilities kept for which the block is summed this way (else
        it is left alone and False returned).
    moments : ndarray of shape (K, n_squares + D), float64
        ``sum r f`` over the kept responsibilities is added to it.
    dropped : ndarray of shape (2, K), float64
        Gains, per component, the left-out responsibilities and their sum weighted
        by ``|x - origin|^2``.
    features : ndarray of shape (b, n_squares + D), float64, optional
        ``f(x)`` of the block's rows where they are already built (read instead of
        built again from ``rows``).
    floors : ndarray of shape (K,), optional
        The least a component's largest responsibility counts as where the block is
        crowded otherwise (see :data:`gaussmix.estep._sparse_moments.ABSENT_SHARE`).

    Returns
    -------
    bool
        Whether the block was summed.
    """
    n_components, n_rows = resp.shape
    if features is None:
        features = np.empty((0, n_squares + rows.shape[1]))
    norms = np.empty(n_rows)
    thresholds = np.empty(n_components)
    left_out = np.empty((2, n_components))
    mask = np.zeros(-(-n_rows // 8) * 8, dtype=np.uint8)  # whole 8-byte words, the rest 0
    indices = np.empty(max_kept + n_rows + 8, dtype=np.intp)
    starts = np.empty(n_components + 1, dtype=np.intp)
    floors = np.empty(0) if floors is None else np.asarray(floors, dtype=np.float64)
    # NumPy's max is vectorised; a compiled one is not (a float max is not associative
    # to the compiler)
    largest = resp.max(axis=1)
    return bool(_compiled_sparse_block_moments(
        resp, largest, features, rows, np.asarray(origin, dtype=np.float64), n_squares, float(relative_threshold),
        floors, int(max_kept), norms, thresholds, left_out, mask, indices, starts, moments, dropped,
    ))
