"""Stepwise (online) EM: Cappé & Moulines (2009), Liang & Klein (2009).

The running statistics are an average over the batches seen, normalised to
unit total weight. A new batch's statistics ``s_hat`` (its E-step under the
current parameters, divided by the batch's total weight) enter as

    s <- (1 - eta_t) s + eta_t s_hat,     eta_t = (t + 2) ** (-alpha),

and the parameters are one M-step away from ``s``. Scaling every weight of a
set of centred statistics scales its raw moments, and :meth:`SuffStats.merge`
adds raw moments exactly, so the convex combination above is a merge of two
scaled statistics: the centred representation (and its float32 accuracy) is
kept, and no second implementation of the M-step is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import MixtureParams
from .stats import SuffStats


def step_size(step: int, learning_decay: float) -> float:
    """``eta_t = (t + 2) ** (-alpha)`` for the ``t``-th update after the first batch (t = 0, 1, ...)."""
    return float((step + 2) ** (-learning_decay))


def scaled(stats: SuffStats, factor: float) -> SuffStats:
    """The statistics of the same rows with every weight multiplied by ``factor``."""
    return SuffStats(stats.resp_weight * factor, stats.means, stats.scatter * factor, stats.total_weight * factor)


def per_unit_weight(stats: SuffStats) -> SuffStats:
    """``stats`` normalised to a total weight of one (the batch average)."""
    return scaled(stats, 1.0 / stats.total_weight)


def stepwise_update(running: SuffStats, batch: SuffStats, eta: float) -> SuffStats:
    """``(1 - eta) running + eta batch``, both taken per unit weight."""
    return scaled(per_unit_weight(running), 1.0 - eta).merge(scaled(per_unit_weight(batch), eta))


@dataclass(frozen=True)
class OnlineState:
    """What ``partial_fit`` carries from one batch to the next.

    Attributes
    ----------
    stats : SuffStats
        Running statistics, per unit weight, in the frame centred on ``origin``.
    params : MixtureParams
        Current parameters in that frame.
    origin : ndarray of shape (D,)
        The first batch's weighted mean, fixed for the whole stream.
    n_batches : int
        Batches seen, the first included.
    """

    stats: SuffStats
    params: MixtureParams
    origin: object
    n_batches: int


def check_batch_reach(X: np.ndarray, params: MixtureParams, origin: np.ndarray) -> None:
    """Refuse a batch whose rows lie too far beyond the model for its statistics to hold.

    A component that takes a row ``d`` beyond its spread gains a scatter of
    ``d^2`` in that direction; past ``sigma^2 / eps`` (with ``sigma^2`` the
    largest variance of that feature among the components) what it held before
    is rounded away for good: the running statistics keep that component
    degenerate for many batches (a batch at 1e150 left EVE models raising on
    every later batch, and diag ones with a component lost to it).

    Parameters
    ----------
    X : ndarray of shape (n, D)
        The batch, as given.
    params : MixtureParams
        The current parameters, in the frame centred on ``origin``.
    origin : ndarray of shape (D,)

    Raises
    ------
    ValueError
        Naming the first row too far, and what to do.
    """
    if X.shape[0] == 0:
        return
    means = np.asarray(params.means, dtype=np.float64)
    variances = np.diagonal(np.asarray(params.dense_covariances(), dtype=np.float64), axis1=1, axis2=2)
    eps = float(np.finfo(np.asarray(origin).dtype).eps)
    # per feature: how far the model reaches from the origin, and how far beyond it a row may go
    reach = np.max(np.abs(means), axis=0)
    allowed = np.sqrt(np.max(variances, axis=0) / eps)
    centred = np.abs(X.astype(np.float64) - np.asarray(origin, dtype=np.float64))
    beyond = np.any(centred - reach > allowed, axis=1)
    if np.any(beyond):
        row = int(np.flatnonzero(beyond)[0])
        raise ValueError(
            f"partial_fit: {int(np.count_nonzero(beyond))} rows of this batch (the first is row {row}) lie "
            "farther beyond the model's components than the precision of its statistics can hold "
            "(1/sqrt(eps) times a feature's largest standard deviation); the model is left unchanged. "
            "Remove or rescale these rows, or fit() the model anew on data that include them."
        )
