"""The sparse engine: the expanded products with the sparse moments on every block.

See :mod:`gaussmix.estep._sparse_moments`. The automatic choice reaches the
sparse moments through the ``"expanded"`` engine, where the moments product
is large enough to pay for them; this engine takes them whatever its size
(tests reach them on small problems through it).
"""

from __future__ import annotations

from .engine import Problem
from .expanded import ExpandedEngine


class SparseEngine(ExpandedEngine):
    """The expanded products with the sparse moments tried on every block, whatever
    the size of the moments product. The automatic choice never takes it: the
    ``"expanded"`` engine takes the sparse moments where they pay."""

    name = "sparse"
    always_sparse = True

    def preferred(self, problem: Problem) -> bool:
        return False


ENGINE = SparseEngine()
