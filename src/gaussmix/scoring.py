"""Scoring and prediction over row chunks: in memory, on a device, or streamed from out-of-core data."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from sklearn.utils.validation import check_is_fitted

from . import fitting
from . import missing as incomplete
from . import noise as uniform_noise
from .backends import backend_for, get_namespace
from .data import chunking, is_out_of_core
from .data.stream import StreamSource, finite_chunks
from .em import responsibilities
from .params import MixtureParams
from .rows import validate_rows


class ScoringMixin:
    """``score_samples``, ``score``, ``predict``, ``predict_proba`` and ``uncertainty`` of :class:`gaussmix.GaussianMixture`.

    Each evaluates the fitted parameters on one chunk of rows at a time
    (:mod:`gaussmix.data.chunking`), so the temporaries stay bounded."""

    def _per_chunk(self, X: Any, function: Callable[[Any, MixtureParams], Any]) -> Any:
        """``function(chunk, params)`` over row chunks, concatenated; in X's namespace and device."""
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        if is_out_of_core(X):
            stream, params = self._open_for_inference(X)
            chunks = finite_chunks(stream, nan_is_missing=self.missing == "marginalize")
            return np.concatenate([function(chunk, params) for chunk, _ in chunks], axis=0)
        X = validate_rows(self, X, reset=False, missing=self.missing)
        xp = get_namespace(X)
        params = self._fitted_params(like=X)
        rows = chunking.chunk_rows(X, self.n_components, self.chunk_size)
        with backend_for(xp).computation_context():
            pieces = [function(X[start:start + rows], params) for start in range(0, X.shape[0], rows)]
        return xp.concat(pieces, axis=0)

    def _open_for_inference(self, X: Any) -> tuple[StreamSource, MixtureParams]:
        """Out-of-core ``X`` as a checked stream, and the fitted parameters in its precision."""
        stream = fitting.open_source(self, X, None)
        if stream.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {stream.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return stream, self._fitted_params(stream.dtype)

    def _log_likelihood(self, X: Any) -> tuple[float, float]:
        """``(sum_n w_n log p(x_n), sum_n w_n)``; unit weights except a chunk source's own."""
        if not is_out_of_core(X):
            n = int(X.shape[0]) if hasattr(X, "shape") else len(X)
            return self.score(X) * n, float(n)
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        stream, params = self._open_for_inference(X)
        totals, weights = [], []
        for chunk, chunk_weights in finite_chunks(stream, nan_is_missing=self.missing == "marginalize"):
            log_density = self._posterior(chunk, params)[1].astype(np.float64)
            if chunk_weights is None:
                totals.append(float(np.sum(log_density)))
                weights.append(float(chunk.shape[0]))
            else:
                totals.append(float(chunk_weights.astype(np.float64) @ log_density))
                weights.append(float(np.sum(chunk_weights, dtype=np.float64)))
        return math.fsum(totals), math.fsum(weights)

    def _posterior(self, chunk: Any, params: MixtureParams) -> tuple[Any, Any]:
        """Responsibilities and log-densities of a chunk; rows with NaN on their observed
        features where ``missing="marginalize"``; the noise column last where the model has one."""
        if params.noise is not None:
            if incomplete.has_missing(chunk):
                raise ValueError("a model with a noise component cannot evaluate rows with missing entries (NaN) yet")
            return uniform_noise.posterior(chunk, params)
        if self.missing == "marginalize" and incomplete.has_missing(chunk):
            return incomplete.posterior_incomplete(chunk, params)
        return responsibilities(chunk, params)

    def score_samples(self, X: Any) -> Any:
        """Log-density ``log p(x)`` of each row, shape (n_samples,).

        With ``missing="marginalize"``, ``log p(x_o)`` of each row's observed entries.
        With a noise component the density includes ``noise_weight_ / noise_volume_``,
        at every row (inside the data's region or not, as mclust).
        """
        return self._per_chunk(X, lambda chunk, params: self._posterior(chunk, params)[1])

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-density of the rows of ``X`` (weighted by a chunk source's weights)."""
        if is_out_of_core(X):
            total, weight = self._log_likelihood(X)
            return total / weight
        log_density = self.score_samples(X)
        return float(get_namespace(log_density).mean(log_density))

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities ``p(z = k | x)`` (``p(z = k | x_o)`` of rows with missing entries), shape (n_samples, K).

        With a noise component, shape (n_samples, K + 1): the noise's column last (mclust's ``z``).
        """
        return self._per_chunk(X, lambda chunk, params: self._posterior(chunk, params)[0])

    def predict(self, X: Any) -> Any:
        """Most probable component of each row (given its observed entries), shape (n_samples,).

        With a noise component, -1 (:data:`gaussmix.noise.NOISE_LABEL`) for rows the
        noise claims (mclust's classification 0).
        """
        def most_probable(chunk: Any, params: MixtureParams) -> Any:
            if params.noise is not None:
                return uniform_noise.labels(chunk, params)
            if self.missing == "marginalize" and incomplete.has_missing(chunk):
                return get_namespace(chunk).argmax(incomplete.log_weighted_incomplete(chunk, params), axis=1)
            return get_namespace(chunk).argmax(params.log_weighted_prob(chunk), axis=1)

        return self._per_chunk(X, most_probable)

    def uncertainty(self, X: Any) -> Any:
        """How unsure the most probable component of each row is: ``1 - max_k p(z = k | x)``.

        mclust's ``uncertainty``: 0 for a row its component claims outright,
        at most ``1 - 1/K`` for one every component claims equally (the noise
        counts as a component where the model has one). Not in scikit-learn.

        Parameters
        ----------
        X : array-like of shape (n_samples, D), tensor or out-of-core source
            The same inputs as :meth:`predict_proba`.

        Returns
        -------
        array of shape (n_samples,)
            In X's namespace and on its device (NumPy for an out-of-core source).
        """
        def one_minus_largest(chunk: Any, params: MixtureParams) -> Any:
            return 1 - get_namespace(chunk).max(self._posterior(chunk, params)[0], axis=1)

        return self._per_chunk(X, one_minus_largest)
