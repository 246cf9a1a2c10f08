"""What an E-step engine is: a way of computing one chunk's statistics.

Every engine returns the same :class:`~gaussmix.stats.SuffStats` (and the
chunk's log-likelihood) for the same chunk and parameters, up to rounding;
they differ in speed and in the problems they can run. The registry
(:mod:`gaussmix.estep.registry`) tries them in its order of preference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import numpy as np

from . import _kernels as kernels


@dataclass(frozen=True)
class Problem:
    """What an engine may look at to say whether it runs a chunk.

    Attributes
    ----------
    layout : str or None
        The covariance structure's precision layout (``"full"``, ``"tied"``,
        ``"diag"``, ``"spherical"``: :attr:`CovarianceModel.layout`), or None for a
        structure no batched engine knows.
    dtype : numpy dtype or None
        Of the rows; None for other array namespaces than NumPy.
    n_features, n_components : int
    numpy : bool
        Whether the rows, the parameters and the shift are NumPy arrays.
    compiled : bool
        Whether the compiled (numba) kernels run (see :mod:`gaussmix._numba`).
    """

    layout: Optional[str]
    dtype: Optional[np.dtype]
    n_features: int
    n_components: int
    numpy: bool
    compiled: bool

    @classmethod
    def of(cls, X: Any, params: Any, shift: Optional[Any] = None) -> "Problem":
        """The problem of the chunk ``X`` (n, D) under ``params`` (a :class:`MixtureParams`)."""
        numpy = kernels.is_numpy(X, params.precisions_cholesky, shift)
        return cls(
            layout=params.covariance.layout,
            dtype=X.dtype if numpy else None,
            n_features=int(X.shape[1]),
            n_components=int(params.n_components),
            numpy=numpy,
            compiled=kernels._compiled_kernels() is not None,
        )


class Engine:
    """One way of computing an E-step; subclasses set :attr:`name` and implement the methods.

    An engine is stateless (one instance serves every thread). To add one, write
    a module ``gaussmix/estep/<name>.py`` that defines ``ENGINE = YourEngine()``
    and list ``<name>`` in :data:`gaussmix.estep.registry.PREFERENCE`.
    """

    #: what ``engine=`` calls it (the name of its module)
    name: ClassVar[str]
    #: whether :meth:`accumulate` takes the rows as stored and the shift apart; else the
    #: registry hands it the rows ``X - shift`` (a copy) and ``shift=None``
    folds_shift: ClassVar[bool] = True

    def can_run(self, problem: Problem) -> bool:
        """Whether this engine can compute ``problem`` at all (when chosen by name)."""
        raise NotImplementedError

    def preferred(self, problem: Problem) -> bool:
        """Whether the automatic choice takes this engine for ``problem`` (where it comes
        first in the registry): by default wherever it can run."""
        return self.can_run(problem)

    def accumulate(
        self, X: Any, sample_weight: Optional[Any], params: Any, shift: Optional[Any] = None
    ) -> Optional[tuple[Any, Any]]:
        """E-step on one chunk: ``(stats, loglik)``, or None to decline it.

        Parameters
        ----------
        X : array of shape (n, D)
            The rows as stored; the E-step is on ``X - shift``.
        sample_weight : array of shape (n,) or None
            Frequency weights; None means every row counts once.
        params : MixtureParams
            Current parameters, in the frame of ``X - shift``.
        shift : array of shape (D,) or None
            None: no shift. Only engines with :attr:`folds_shift` get one.

        Returns
        -------
        stats : SuffStats
            In the frame of ``X - shift`` and in ``X``'s dtype.
        loglik : scalar
            ``sum_n w_n log p(x_n)``: a NumPy float, or a 0-d array on X's device.

        None in place of both where this chunk would lose too many digits (or
        otherwise does not suit the engine): the next engine in the registry's
        order that the automatic choice takes runs it instead.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<E-step engine {self.name!r}>"
