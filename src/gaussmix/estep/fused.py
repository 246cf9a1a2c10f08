"""The fused engine: full covariances in few dimensions, one compiled pass per block.

At small D no matrix product is big enough to pay for a BLAS call; the
compiled kernel (:func:`gaussmix.estep._compiled_fused.full_accumulate`) whitens
against every component, takes the logsumexp, the responsibilities and the
statistics in one pass over each block of rows. Needs numba.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _kernels as kernels
from ._dense import log_det_and_offsets
from .engine import Engine, Problem

#: the automatic choice takes the fused kernel up to this many features whatever K, and
#: beyond them where K <= D / 2 and K D <= :data:`MAX_FUSED_WORK`: its work grows as K D^2
#: at vector (not BLAS) speed, the expanded and whitening products' at BLAS speed
#: (see BENCHMARKS.md, "Measurements behind the code's thresholds")
MAX_FUSED_FEATURES = 4
MAX_FUSED_WORK = 128


class FusedEngine(Engine):
    name = "fused"

    def can_run(self, problem: Problem) -> bool:
        return problem.layout == "full" and problem.numpy and problem.compiled

    def preferred(self, problem: Problem) -> bool:
        n_features, n_components = problem.n_features, problem.n_components
        few_components = 2 * n_components <= n_features and n_components * n_features <= MAX_FUSED_WORK
        return self.can_run(problem) and (n_features <= MAX_FUSED_FEATURES or few_components)

    def accumulate(self, X: Any, sample_weight: Optional[Any], params: Any, shift: Optional[Any] = None) -> Any:
        _, _, offsets = log_det_and_offsets(params)
        compiled = kernels._compiled_kernels("fused")
        return compiled.full_accumulate(X, sample_weight, params.means, params.precisions_cholesky, offsets, shift)


ENGINE = FusedEngine()
