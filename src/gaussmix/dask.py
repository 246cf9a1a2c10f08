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

from typing import Any, Callable, Optional

import numpy as np

try:  # refuse early, with the install hint, where Dask is missing
    import dask  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("gaussmix.dask needs Dask: pip install 'gaussmix[dask]'") from error

from . import _validation as checks
from . import bayesian as _bayesian
from . import fitting
from .data import chunking
from .data.dask import as_dask_rows, open_blocks
from . import estimator as _estimator
from .em import responsibilities
from .params import MixtureParams

def _labels(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    return np.argmax(params.log_weighted_prob(X), axis=1)


def _probabilities(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    return responsibilities(X, params)[0]


def _log_density(X: np.ndarray, params: MixtureParams) -> np.ndarray:
    return responsibilities(X, params)[1]


def _apply_to_block(
    X: np.ndarray, function: Callable[[np.ndarray, MixtureParams], np.ndarray], params: MixtureParams,
    chunk_rows: int, block_info: Optional[dict] = None,
) -> np.ndarray:
    """``function`` over one block, chunk by chunk, after a NaN/inf check naming global rows."""
    first_row = 0 if not block_info else block_info[0]["array-location"][0][0]
    checks.check_all_finite(X, "X", first_row, nan_hint=checks.MISSING_HINT)
    pieces = [function(X[start:start + chunk_rows], params) for start in range(0, max(X.shape[0], 1), chunk_rows)]
    return np.concatenate(pieces, axis=0)


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
        return X.map_blocks(_apply_to_block, function, params, chunk_rows, dtype=dtype, **shape)

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
    """

    _open_source = staticmethod(open_blocks)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "GaussianMixture":
        """Estimate the parameters with EM over the blocks of ``X`` (see the class docstring)."""
        fitting.fit(self, X, sample_weight, streamed=True)
        return self


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
