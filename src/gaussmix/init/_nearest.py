"""Nearest-centre labels: how centre-based starts label every row."""

from __future__ import annotations

import numpy as np

from .. import _numba

#: bytes of the (rows x K) score block of :func:`nearest_centre_labels`
_NEAREST_BLOCK_BYTES = 2**20


#: K D up to which nearest centres and labelled statistics run in one compiled pass
#: (numba) instead of a matrix product per block / a gather per component: at
#: small K D those are bound by per-call overhead, and cost more than an EM
#: iteration (see BENCHMARKS.md, "Measurements behind the code's thresholds")
MAX_COMPILED_NEAREST_WORK = 64


def nearest_centre_labels(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for every row, shape (n,); ties go to the lower index.

    One matrix product per block of rows: ``argmin_k |c_k|^2 - 2 x.c_k`` (the
    row's own ``|x|^2`` does not change the order), with rows and centres
    shifted to the centres' mean first, so the expansion keeps the digits that
    separate the centres even for data far from the origin; only rows almost
    equidistant from two centres can go either way, which a start does not
    mind. An exact difference per row, centre and feature would cost several
    EM iterations at large K D.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    centres : ndarray of shape (K, D)
    """
    compiled = _numba.compiled("gaussmix.init._compiled")  # None without numba
    if compiled is not None and centres.shape[0] * X.shape[1] <= MAX_COMPILED_NEAREST_WORK:
        return compiled.nearest_centres(X, centres)
    centres = np.asarray(centres, dtype=X.dtype)
    shift = centres.mean(axis=0)
    shifted_centres = centres - shift
    minus_twice = -2 * shifted_centres.T
    centre_norms = np.einsum("kd,kd->k", shifted_centres, shifted_centres)
    labels = np.empty(X.shape[0], dtype=np.intp)
    rows = max(1, _NEAREST_BLOCK_BYTES // (X.dtype.itemsize * max(centres.shape[0], X.shape[1])))
    for start in range(0, X.shape[0], rows):
        scores = (X[start:start + rows] - shift) @ minus_twice
        scores += centre_norms
        labels[start:start + rows] = np.argmin(scores, axis=1)
    return labels
