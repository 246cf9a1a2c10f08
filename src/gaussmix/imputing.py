"""Filling the missing entries of rows from a fitted mixture: in memory, or streamed from out-of-core data."""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np
from sklearn.utils.validation import check_is_fitted

from . import _validation as checks
from .backends import backend_for, get_namespace, to_numpy
from .data import chunking, is_out_of_core
from .data.output import RowOutput
from .data.stream import finite_chunks
from .imputation import DrawKey, PatternCache, impute_chunk
from .noise import refuse as refuse_noise
from .rows import validate_rows


class ImputeMixin:
    """``impute`` of :class:`gaussmix.GaussianMixture` (see :mod:`gaussmix.imputation`)."""

    def impute(self, X: Any, n_draws: Optional[int] = None, random_state: Any = None, out: Any = None) -> Any:
        """Fill the missing (NaN) entries of ``X`` from the fitted mixture.

        Works whatever the ``missing`` setting the model was fitted with. Not
        in scikit-learn.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or out-of-core data
            NaN marks a missing entry; no row may be entirely missing. Besides
            arrays: a ``.npy`` path, a ``numpy.memmap``, an h5py dataset, a
            Zarr array or a chunk source, read one chunk at a time (Dask
            arrays: :meth:`gaussmix.dask.GaussianMixture.impute`).
        n_draws : int, optional
            None: each gap gets ``E[x_m | x_o]`` under the mixture, the
            responsibility-weighted conditional means of the components (one
            imputation; it may lie between modes). An int: multiple
            imputation, that many draws from ``p(x_m | x_o)`` per row (a
            component drawn from the row's responsibilities, then a draw from
            that component's conditional Gaussian).
        random_state : int, RandomState instance or None
            Seeds the draws. The draws of a row depend on the seed and on the
            row's position only: the same seed gives the same array, bit for
            bit, in memory, from a file in chunks of any size, or on Dask
            blocks (see :mod:`gaussmix.imputation`).
        out : None, str or path-like, or array, optional
            Where the result goes. None: a new array (NumPy, or a tensor on
            X's device), also for out-of-core ``X`` (it is as large as ``X``).
            A path: a ``.npy`` file written chunk by chunk through a memory
            map, returned opened read-only. An array of the result's shape
            (``numpy.memmap``, h5py dataset, Zarr array, NumPy array):
            filled chunk by chunk and returned. With out-of-core ``X`` and
            ``out`` a path or an array on disk, only one chunk of rows is in
            memory at a time; a source that fails a check part-way leaves
            ``out`` partly written.

        Returns
        -------
        array of shape (n_samples, n_features), or (n_draws, n_samples, n_features)
            Observed entries unchanged; X's dtype (float32 stays float32, else
            float64). ``out`` where given (a read-only ``numpy.memmap`` of the
            written file for a path).

        Raises
        ------
        ValueError
            For infinite entries, rows with every entry missing (named by
            their row numbers), or an ``out`` of another shape.
        """
        if n_draws is not None:
            checks.check_param("n_draws", n_draws, numbers.Integral, 1)
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        draws = None if n_draws is None else DrawKey.of(random_state, int(n_draws))
        if is_out_of_core(X):
            return self._impute_stream(X, draws, out)
        X = validate_rows(self, X, reset=False, missing="marginalize")
        params = self._fitted_params(like=X)
        refuse_noise(params, "impute")
        n_samples, n_features = X.shape
        shape = (n_samples, n_features) if draws is None else (draws.n_draws, n_samples, n_features)
        output = RowOutput.open(out, shape, to_numpy(X[:0]).dtype, _row_axis(draws), like=X)
        rows = chunking.chunk_rows(X, self.n_components, self.chunk_size)
        cache = PatternCache(params)
        with backend_for(get_namespace(X)).computation_context():
            for start in range(0, n_samples, rows):
                output.write(start, impute_chunk(X[start:start + rows], params, cache, draws, start))
        return output.result()

    def _impute_stream(self, X: Any, draws: Optional[DrawKey], out: Any) -> Any:
        """:meth:`impute` of out-of-core ``X``, one streamed chunk at a time."""
        stream, params = self._open_for_inference(X)
        refuse_noise(params, "impute")
        cache = PatternCache(params)
        if out is None:  # the rows need not be counted first
            pieces = [impute_chunk(chunk, params, cache, draws, first_row)
                      for first_row, chunk in _numbered(finite_chunks(stream, nan_is_missing=True))]
            return np.concatenate(pieces, axis=_row_axis(draws))
        n_samples = stream.n_samples
        if n_samples is None:  # a chunk source that does not say: one counting pass
            n_samples = sum(chunk.shape[0] for chunk, _ in stream.unshifted_chunks())
        shape = (n_samples, stream.n_features) if draws is None else (draws.n_draws, n_samples, stream.n_features)
        output = RowOutput.open(out, shape, stream.dtype, _row_axis(draws))
        for first_row, chunk in _numbered(finite_chunks(stream, nan_is_missing=True)):
            if first_row + chunk.shape[0] > n_samples:
                raise ValueError(f"the data source yielded more than the {n_samples} rows it declared")
            output.write(first_row, impute_chunk(chunk, params, cache, draws, first_row))
        return output.result()


def _row_axis(draws: Optional[DrawKey]) -> int:
    return 0 if draws is None else 1


def _numbered(chunks: Any) -> Any:
    """``(first_row, chunk)`` of each ``(chunk, weights)``."""
    first_row = 0
    for chunk, _ in chunks:
        yield first_row, chunk
        first_row += chunk.shape[0]
