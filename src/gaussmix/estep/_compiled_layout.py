"""Compiled one-pass rewrites of a block of rows (needs numba).

The tiled transpose of a float32 product
(:func:`gaussmix.estep._kernels.per_component_product`) and the features of the expanded engines (:mod:`gaussmix.estep._features`):
centred squares, centred norms and outer products, each in one pass where NumPy
takes two or three. Importing this module imports numba: do it lazily.
"""

from __future__ import annotations

from .._jit import _njit, numba


#: a tile of :func:`_transpose_into`: (rows, columns) of its input
_TRANSPOSE_TILE = (32, 16)


def _transpose_into(values, out):  # pragma: no cover - compiled
    """``out`` (m, n) <- ``values.T`` for ``values`` (n, m), tile by tile: each tile's
    reads and writes stay within a few cache lines (NumPy's transposing copy runs
    along whole rows, about half as fast)."""
    n_rows, n_columns = values.shape
    tile_rows, tile_columns = _TRANSPOSE_TILE
    full_rows = n_rows - n_rows % tile_rows
    full_columns = n_columns - n_columns % tile_columns
    for i0 in range(0, full_rows, tile_rows):
        for c0 in range(0, full_columns, tile_columns):
            for c in range(c0, c0 + tile_columns):
                for i in range(i0, i0 + tile_rows):
                    out[c, i] = values[i, c]
        for c in range(full_columns, n_columns):
            for i in range(i0, i0 + tile_rows):
                out[c, i] = values[i, c]
    for i in range(full_rows, n_rows):
        for c in range(n_columns):
            out[c, i] = values[i, c]


def _outer_products(centred, out):  # pragma: no cover - compiled
    """``out[t] = centred[a] * centred[c]`` for the pairs a <= c in row-major order:
    (D, b) rows -> (D (D + 1) / 2, b) products, in one call instead of D NumPy calls."""
    n_features, n_samples = centred.shape
    t = 0
    for a in range(n_features):
        for c in range(a, n_features):
            for j in range(n_samples):
                out[t, j] = centred[a, j] * centred[c, j]
            t += 1


def _centred_squares(X, origin, out):  # pragma: no cover - compiled
    """``out`` (b, 2D) <- ``[(x - origin)^2, x - origin]``, one pass over the rows."""
    n_samples, n_features = X.shape
    for i in range(n_samples):
        for a in range(n_features):
            value = X[i, a] - origin[a]
            out[i, n_features + a] = value
            out[i, a] = value * value


def _centred_norms(X, origin, out):  # pragma: no cover - compiled
    """``out`` (b, D + 1) <- ``[|x - origin|^2, x - origin]``, one pass over the rows."""
    n_samples, n_features = X.shape
    for i in range(n_samples):
        norm = 0.0
        for a in range(n_features):
            value = X[i, a] - origin[a]
            out[i, 1 + a] = value
            norm += value * value
        out[i, 0] = norm


if numba is None:
    outer_products = centred_squares = centred_norms = transpose_into = None
else:
    outer_products, centred_squares, transpose_into = (
        _njit(nogil=True)(function) for function in (_outer_products, _centred_squares, _transpose_into)
    )
    # reassoc: the norm's sum may be vectorised (a fixed order, so still deterministic)
    centred_norms = _njit(nogil=True, fastmath={"reassoc"})(_centred_norms)
