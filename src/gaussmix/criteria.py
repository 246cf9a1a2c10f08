"""Information criteria of a fitted mixture on rows: BIC, AIC, ICL."""

from __future__ import annotations

import math
from typing import Any

from .backends import get_namespace


class CriteriaMixin:
    """``bic``, ``aic``, ``icl`` and ``icl_entropy`` of :class:`gaussmix.GaussianMixture`, and the free parameters they count."""

    def _n_parameters(self) -> int:
        """Free parameters of the fitted mixture: equal or frozen ones (``equal_weights``, ``fixed``) not counted."""
        params = self._fitted_params()
        return params.n_parameters(self._constraints(params.covariance))

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on ``X`` (lower is better)."""
        loglik, n = self._log_likelihood(X)
        return -2 * loglik + self._n_parameters() * math.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion on ``X`` (lower is better)."""
        loglik, _ = self._log_likelihood(X)
        return -2 * loglik + 2 * self._n_parameters()

    def icl(self, X: Any) -> float:
        """Integrated completed likelihood on ``X``, as mclust's ``icl`` (lower is better).

        ``BIC - 2 * sum_n log z_n,map(n)``: the BIC penalised by how far each
        row's most probable component is from certain (Biernacki, Celeux &
        Govaert 2000, with the hard classification mclust uses). mclust reports
        the same value with the opposite sign. :meth:`icl_entropy` is the
        soft variant.
        """
        resp = self.predict_proba(X)
        xp = get_namespace(resp)
        return self.bic(X) - 2 * float(xp.sum(xp.log(xp.max(resp, axis=1))))

    def icl_entropy(self, X: Any) -> float:
        """The soft ICL on ``X``: ``BIC + 2 * sum_n sum_k -z_nk log z_nk`` (lower is better).

        Penalised by the entropy of the responsibilities ``z`` rather than by
        the hard classification of :meth:`icl`; never below :meth:`icl`'s
        ``BIC`` and never above it by more than ``2 n log K``.
        """
        resp = self.predict_proba(X)
        xp = get_namespace(resp)
        # -z log z with 0 log 0 = 0 (log of 1 where z is 0), computed where the responsibilities live
        entropy = -float(xp.sum(resp * xp.log(xp.where(resp > 0, resp, xp.ones_like(resp)))))
        return self.bic(X) + 2 * entropy
