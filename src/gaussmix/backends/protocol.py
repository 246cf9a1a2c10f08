"""What a backend module provides: the :class:`Backend` protocol.

A backend is a module of plain functions, one module per array library
(``numpy_backend``, ``torch_backend``), registered in
:data:`gaussmix.backends.BACKENDS` and returned by
:func:`gaussmix.backends.backend_for`. Everything else gaussmix computes is
written against the array API standard; these are the operations it lacks.
Arrays below are the backend library's own (NumPy arrays, torch tensors), and
stay on their device unless a function says otherwise.

The ``device=`` option's helpers (``resolve_device``, ``move_to_device``) are
torch's only and are not part of the protocol: :mod:`gaussmix.backends.device`
calls them on ``torch_backend`` directly.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional, Protocol

import numpy as np


class Backend(Protocol):
    """The functions every backend module defines (modules satisfy this structurally)."""

    def cholesky_lower(self, matrices: Any) -> tuple[Any, Any]:
        """Lower Cholesky factors of a stack of symmetric matrices, with a status.

        Parameters
        ----------
        matrices : array of shape (..., D, D)

        Returns
        -------
        factors : array of shape (..., D, D)
            Lower-triangular factors; those of matrices that are not positive
            definite are NaN (no exception is raised).
        ok : array of bool, shape (...)
            Whether each matrix was positive definite.
        """

    def inverse_lower_triangular(self, factors: Any) -> Any:
        """Inverse of each lower-triangular matrix of a stack.

        Parameters
        ----------
        factors : array of shape (..., D, D)

        Returns
        -------
        array of shape (..., D, D)
        """

    def inverse_positive_definite(self, blocks: Any) -> tuple[Any, Any]:
        """Inverses and log-determinants of a stack of small positive definite matrices.

        Parameters
        ----------
        blocks : array of shape (..., M, M)

        Returns
        -------
        inverse : array of shape (..., M, M)
        log_det : array of shape (...)
            ``log det`` of each block.

        A block that is not numerically positive definite raises
        ``numpy.linalg.LinAlgError`` on the host; on a device (where raising
        would wait for it) its results are NaN, and so is the log-likelihood
        they enter.
        """

    def add_at(self, index: Any, values: Any, size: int) -> Any:
        """Sums of ``values`` by ``index`` (a scatter-add): array of shape (size,).

        Parameters
        ----------
        index : integer array of shape (m,)
            In ``0..size-1``; repeated indices add up.
        values : array of shape (m,)
        size : int
        """

    def logsumexp_rows(self, a: Any) -> Any:
        """``log(sum(exp(a), axis=1))``, stable for large magnitudes.

        Parameters
        ----------
        a : array of shape (n, K)

        Returns
        -------
        array of shape (n,)
            ``-inf`` for rows of only ``-inf``.
        """

    def standard_normal(self, rng: np.random.RandomState, shape: tuple[int, ...], like: Any) -> Any:
        """Standard normal draws, reproducible for a given ``rng``.

        Parameters
        ----------
        rng : numpy.random.RandomState
        shape : tuple of int
        like : array
            The draws take its dtype and device.

        Returns
        -------
        array of shape ``shape``
        """

    def to_numpy(self, array: Any) -> np.ndarray:
        """Host NumPy copy (or view) of ``array``, of the same shape."""

    def asarray(self, values: Any, like: Any) -> Any:
        """``values`` (array-like, or another library's array) in ``like``'s library,
        dtype and device; same shape as ``values``."""

    def chunk_budget_bytes(self, like: Any) -> Optional[int]:
        """Bytes one E-step temporary may take where ``like`` lives, or None for the host's
        cache-sized default (:mod:`gaussmix.data.chunking`)."""

    def computation_context(self) -> contextlib.AbstractContextManager:
        """A context manager for the settings gaussmix's work needs (entered around
        ``fit`` and scoring); the user's settings are restored on exit."""


#: the names a backend module must define
REQUIRED = tuple(name for name in vars(Backend) if not name.startswith("_"))
