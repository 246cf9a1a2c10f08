"""The portable engine: expanded products through the array API (torch, on the CPU or CUDA).

The generic engine evaluates every component's differences ``x - mu_k``: a
(rows, K, D) temporary per block. Here a block's log-densities are one
(b, W) @ (W, K) product on the features of :mod:`gaussmix.estep._array_forms`
(W = 2D, D + 1), and its moments two (K, b) @ (b, W) ones, so the widest
temporaries are (b, W) and (b, K): memory grows with neither N nor K D.
It serves the diagonal, spherical and tied layouts (and so the mclust
structures stored like them); dense precisions stay with the generic engine.
Where the expansion would lose too many digits it declines, and the generic
engine runs the chunk.
"""

from __future__ import annotations

from typing import Any, Optional

from .._math import logsumexp_rows
from ..backends import backend_for, get_namespace
from ..stats import SuffStats
from . import _kernels as kernels
from ._array_forms import LAYOUTS, Form, plan
from ._config import get_config
from .engine import Engine, Problem


class PortableEngine(Engine):
    """Diagonal, spherical and tied precisions in any array namespace gaussmix has a backend for."""

    name = "portable"
    folds_shift = False

    def can_run(self, problem: Problem) -> bool:
        return not problem.numpy and problem.layout in LAYOUTS

    def accumulate(
        self, X: Any, sample_weight: Optional[Any], params: Any, shift: Optional[Any] = None
    ) -> Optional[tuple[SuffStats, Any]]:
        form = plan(params, X)
        if form is None:
            return None
        xp = get_namespace(X)
        n_samples, n_features = X.shape
        n_components = params.n_components
        width = int(form.coefficients.shape[0])
        resp_weight = xp.zeros(n_components, dtype=form.moments_dtype, device=X.device)
        row_sums = xp.zeros((n_components, n_features), dtype=form.moments_dtype, device=X.device)
        second = None
        loglik = total = None
        for start, stop in kernels.row_blocks(n_samples, _block_rows(X, width + n_components)):
            block = X[start:stop]
            features = form.features(block)
            log_prob = features @ form.coefficients + form.offsets
            log_density = logsumexp_rows(log_prob)
            resp = xp.exp(log_prob - log_density[:, None])
            if sample_weight is None:
                block_total, block_loglik = stop - start, xp.sum(log_density)
            else:
                weights = sample_weight[start:stop]
                resp = resp * weights[:, None]
                block_total, block_loglik = xp.sum(weights), xp.sum(weights * log_density)
            wide = xp.astype(resp, form.moments_dtype)
            resp_weight = resp_weight + xp.sum(wide, axis=0)
            row_sums = row_sums + wide.T @ xp.astype(block, form.moments_dtype)
            part = form.second_moments(resp, block, features)
            second = part if second is None else second + part
            loglik = block_loglik if loglik is None else loglik + block_loglik
            total = block_total if total is None else total + block_total
        return _stats(form, resp_weight, row_sums, second, total, X.dtype), loglik


def _stats(form: Form, resp_weight: Any, row_sums: Any, second: Any, total: Any, dtype: Any) -> SuffStats:
    """Centred statistics from the summed moments, in the rows' ``dtype``."""
    xp = get_namespace(row_sums)
    positive = resp_weight > 0
    safe = xp.where(positive, resp_weight, xp.ones_like(resp_weight))
    means = xp.where(positive[:, None], row_sums / safe[:, None], xp.zeros_like(row_sums))
    scatter = form.scatter(second, resp_weight, means)
    if form.layout != "tied":
        scatter = xp.where(positive[:, None], scatter, xp.zeros_like(scatter))
    if isinstance(total, int):
        total = float(total)
    return SuffStats(xp.astype(resp_weight, dtype), xp.astype(means, dtype), xp.astype(scatter, dtype), total)


def _block_rows(X: Any, row_width: int) -> int:
    """Rows per block: cache-sized on the host, the whole chunk on a device that sizes its
    chunks from its free memory (the chunk policy bounds them by a wider temporary)."""
    budget = backend_for(get_namespace(X)).chunk_budget_bytes(X)
    if budget is None or get_config().block_rows is not None:
        return kernels.block_rows(row_width, X.dtype.itemsize)
    return max(1, int(X.shape[0]))


ENGINE = PortableEngine()
