"""Gaussian mixtures on Dask arrays and DataFrames (``pip install 'gaussmix[dask]'``).

:class:`GaussianMixture` and :class:`BayesianGaussianMixture`, each its
in-memory estimator with Dask blocks as its stream.

The rows stay on the workers: ``fit`` persists the blocks once, and every pass
(validation and mean, starting statistics, each EM iteration) maps the same
per-chunk functions the out-of-core fit uses (:func:`gaussmix.em.accumulate`
for the E-step) over the blocks and tree-reduces their small, mergeable
results with ``dask.delayed``; only the M-step runs on the client. Works with
any scheduler, the distributed one (``dask.distributed.Client``) included;
a worker lost mid-fit costs a recomputation of its blocks, not a different
result, because the tree and the order of every merge are fixed by the blocks.

``import gaussmix`` does not import this module (nor Dask).
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Optional

import numpy as np

try:  # refuse early, with the install hint, where Dask is missing
    import dask  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("gaussmix.dask needs Dask: pip install 'gaussmix[dask]'") from error

from . import _validation as checks
from . import bayesian as _bayesian
from . import fitting
from . import missing as incomplete
from .data import chunking
from .data.dask import as_dask_rows, open_blocks
from . import estimator as _estimator
from .em import responsibilities
from .imputation import DrawKey, PatternCache, impute_chunk
from .params import MixtureParams


# Each per-chunk function takes rows with NaN on their observed entries: they reach it only
# where the model marginalises them (_apply_to_block refuses NaN otherwise).
def _labels(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    if incomplete.has_missing(X):
        return np.argmax(incomplete.log_weighted_incomplete(X, params), axis=1)
    return np.argmax(params.log_weighted_prob(X), axis=1)


def _posterior(X: np.ndarray, params: MixtureParams) -> tuple[np.ndarray, np.ndarray]:
    if incomplete.has_missing(X):
        return incomplete.posterior_incomplete(X, params)
    return responsibilities(X, params)


def _probabilities(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    return _posterior(X, params)[0]


def _log_density(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    return _posterior(X, params)[1]


def _apply_to_block(
    X: np.ndarray, function: Callable[[np.ndarray, MixtureParams], np.ndarray], params: MixtureParams,
    chunk_rows: int, marginalize: bool = False, block_info: Optional[dict] = None,
) -> np.ndarray:
    """``function`` over one block, chunk by chunk, after a NaN/inf check naming global rows.

    ``marginalize`` (``missing="marginalize"``): NaN entries are missing values;
    only infinite entries and rows with every entry missing are refused.
    """
    first_row = 0 if not block_info else block_info[0]["array-location"][0][0]
    entries = checks.NonFiniteEntries.of(X, first_row, nan_is_missing=marginalize)
    if entries is not None:
        raise entries.error("X", checks.MARGINALIZE_HINT if marginalize else checks.MISSING_HINT)
    pieces = [function(X[start:start + chunk_rows], params) for start in range(0, max(X.shape[0], 1), chunk_rows)]
    return np.concatenate(pieces, axis=0)


def _impute_block(
    X: np.ndarray, params: MixtureParams, chunk_rows: int, draws: Optional[DrawKey], block_info: Optional[dict] = None,
) -> np.ndarray:
    """One block with its gaps filled (see :func:`gaussmix.imputation.impute_chunk`), chunk by chunk:
    (rows, D), or (n_draws, rows, D) with ``draws``."""
    first_row = 0 if not block_info else block_info[0]["array-location"][0][0]
    entries = checks.NonFiniteEntries.of(X, first_row, nan_is_missing=True)
    if entries is not None:
        raise entries.error("X", checks.MARGINALIZE_HINT)
    cache = PatternCache(params)
    pieces = [impute_chunk(X[start:start + chunk_rows], params, cache, draws, first_row + start)
              for start in range(0, max(X.shape[0], 1), chunk_rows)]
    return np.concatenate(pieces, axis=0 if draws is None else 1)


class _LazyInference:
    """``predict``, ``predict_proba``, ``score_samples`` (lazy Dask arrays) and ``score`` of a Dask estimator.

    Each maps the fitted parameters' own scoring (``_fitted_params``: their
    ``log_weighted_prob``) over the blocks of ``X``, chunk by chunk.
    """

    def _lazy_rows(self, X: Any) -> tuple[Any, MixtureParams]:
        _estimator.check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        X = as_dask_rows(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X, self._fitted_params(X.dtype)

    def _map_rows(self, X: Any, function: Callable[[np.ndarray, MixtureParams], np.ndarray], labels: bool = False,
                  **shape: Any) -> Any:
        """``function(chunk, params)`` over the blocks of ``X``, lazily; ``labels``: it returns integers."""
        X, params = self._lazy_rows(X)
        chunk_rows = chunking.stream_rows(int(X.shape[1]), X.dtype, self.n_components, self.chunk_size)
        # the rows' dtype, or wider where the parameters are (the Bayesian mixture's stay float64)
        dtype = np.intp if labels else np.result_type(X.dtype, params.means.dtype)
        marginalize = getattr(self, "missing", "error") == "marginalize"
        return X.map_blocks(_apply_to_block, function, params, chunk_rows, marginalize, dtype=dtype, **shape)

    def predict(self, X: Any) -> Any:
        """Most probable component of each row: a lazy Dask array of shape (n_samples,)."""
        return self._map_rows(X, _labels, labels=True, drop_axis=1)

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities: a lazy Dask array of shape (n_samples, K)."""
        X = as_dask_rows(X)
        return self._map_rows(X, _probabilities, chunks=(X.chunks[0], (self.n_components,)))

    def score_samples(self, X: Any) -> Any:
        """Log-density of each row: a lazy Dask array of shape (n_samples,)."""
        return self._map_rows(X, _log_density, drop_axis=1)

    def _log_likelihood(self, X: Any) -> tuple[float, float]:
        log_density = self.score_samples(X)
        return float(log_density.astype(np.float64).sum().compute()), float(log_density.shape[0])

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-density of the rows of ``X`` (computed)."""
        total, n = self._log_likelihood(X)
        return total / n


class GaussianMixture(_LazyInference, _estimator.GaussianMixture):
    """:class:`gaussmix.GaussianMixture` fitted on a Dask cluster.

    Same parameters, attributes and results (equal to the in-memory fit from
    the same start, up to rounding); ``fit`` takes a Dask array or DataFrame
    (other arrays are wrapped with ``dask.array.asarray``) and optional Dask
    ``sample_weight``. The initialiser runs on the client on a weighted
    reservoir sample of at most 32768 rows drawn on the workers.
    ``predict``, ``predict_proba`` and ``score_samples`` return lazy Dask
    arrays; ``score``, ``bic`` and ``aic`` compute.

    With ``missing="marginalize"``, blocks holding NaN go through the
    incomplete-row E-step (:mod:`gaussmix.missing`) on the workers and their
    statistics are tree-reduced like any others; inference evaluates such
    rows on their observed entries. Rows with every entry missing are
    refused, named by their global row numbers (at ``fit``, or when a lazy
    result is computed).
    """

    _open_source = staticmethod(open_blocks)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "GaussianMixture":
        """Estimate the parameters with EM over the blocks of ``X`` (see the class docstring)."""
        fitting.fit(self, X, sample_weight, streamed=True)
        return self

    def impute(self, X: Any, n_draws: Optional[int] = None, random_state: Any = None, out: Any = None) -> Any:
        """The rows of ``X`` with their NaN entries filled: a lazy Dask array.

        As :meth:`gaussmix.GaussianMixture.impute`, block by block on the
        workers: shape (n_samples, n_features), or (n_draws, n_samples,
        n_features) with ``n_draws`` (chunked like ``X`` along the rows).
        The same ``random_state`` gives the same draws as the in-memory
        estimator, bit for bit, whatever the blocks. Write the result with
        ``dask.array.to_zarr``, ``to_npy_stack`` or ``store``.

        Raises
        ------
        ValueError
            If ``out`` is given; when computed, for rows with every entry
            missing or infinite entries (named by their rows in ``X``).
        """
        if out is not None:
            raise ValueError("the Dask estimator's impute returns a lazy Dask array; write it with "
                             "dask.array.to_zarr, to_npy_stack or store instead of passing out=")
        if n_draws is not None:
            checks.check_param("n_draws", n_draws, numbers.Integral, 1)
        X, params = self._lazy_rows(X)
        draws = None if n_draws is None else DrawKey.of(random_state, int(n_draws))
        chunk_rows = chunking.stream_rows(int(X.shape[1]), X.dtype, self.n_components, self.chunk_size)
        if draws is None:
            return X.map_blocks(_impute_block, params, chunk_rows, None, dtype=X.dtype)
        return X.map_blocks(_impute_block, params, chunk_rows, draws, new_axis=0,
                            chunks=((draws.n_draws,), *X.chunks), dtype=X.dtype)


class BayesianGaussianMixture(_LazyInference, _bayesian.BayesianGaussianMixture):
    """:class:`gaussmix.BayesianGaussianMixture` fitted on a Dask cluster.

    Same parameters, attributes and results: equal to the in-memory fit from
    the same start, up to rounding, and from the same ``random_state`` where the
    data hold at most 32768 rows of positive weight (the initialiser then sees
    them all; beyond, it runs on the client on a weighted reservoir sample drawn
    on the workers). ``init_params="random"`` draws each chunk's
    responsibilities from a generator of its own (seeded by ``random_state`` and
    the chunk's first row), not scikit-learn's draws. ``fit`` takes a Dask array
    or DataFrame (other arrays are wrapped with ``dask.array.asarray``) and
    optional Dask ``sample_weight``; ``predict``, ``predict_proba`` and
    ``score_samples`` return lazy Dask arrays, ``score`` computes.
    """

    _open_source = staticmethod(open_blocks)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "BayesianGaussianMixture":
        """Estimate the variational posterior over the blocks of ``X`` (see the class docstring)."""
        self._validate_params()
        self._fit_stream(fitting.open_source(self, X, sample_weight))
        return self
