"""The generic engine: any covariance structure, any array namespace (NumPy, torch, ...).

It evaluates the log-densities through the structure's own
:meth:`~gaussmix.covariance.CovarianceModel.log_gaussian`, which materialises
(rows, K, D) temporaries, in blocks of :func:`gaussmix.sources.auto_chunk_rows`
rows. Every other engine is tested against it.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from ..backends import get_namespace
from ..stats import SuffStats, stats_from_responsibilities
from ._config import get_config
from .engine import Engine, Problem


class GenericEngine(Engine):
    """Responsibilities from :func:`gaussmix.em.responsibilities`, statistics from
    :func:`gaussmix.stats.stats_from_responsibilities`."""

    name = "generic"
    folds_shift = False

    def can_run(self, problem: Problem) -> bool:
        return True

    def accumulate(
        self, X: Any, sample_weight: Optional[Any], params: Any, shift: Optional[Any] = None
    ) -> tuple[SuffStats, Any]:
        from ..em import responsibilities, sum_scalars  # em imports this package: import late
        from ..sources import auto_chunk_rows

        rows = get_config().block_rows or auto_chunk_rows(params.n_components, X.shape[1], X.dtype.itemsize)
        if X.shape[0] > rows:
            # Keep the (rows, K, D) temporaries within budget: blocks, merged.
            parts = [
                self.accumulate(
                    X[start:start + rows], None if sample_weight is None else sample_weight[start:start + rows], params
                )
                for start in range(0, X.shape[0], rows)
            ]
            stats = functools.reduce(SuffStats.merge, (part for part, _ in parts))
            return stats, sum_scalars([loglik for _, loglik in parts])
        xp = get_namespace(X)
        resp, log_density = responsibilities(X, params)
        if sample_weight is None:
            weighted_resp, total, loglik = resp, X.shape[0], xp.sum(log_density)
        else:
            weighted_resp = resp * sample_weight[:, None]
            total, loglik = xp.sum(sample_weight), xp.sum(sample_weight * log_density)
        # total and loglik stay 0-d arrays on X's device: no wait for the device per chunk.
        stats = stats_from_responsibilities(X, weighted_resp, params.covariance.full_scatter, total)
        return stats, loglik


ENGINE = GenericEngine()
