"""Shared pieces of the eigen-decomposed covariance structures (mclust's 14).

Every structure writes ``Sigma_k = lambda_k D_k A_k D_k^T``: volume
``lambda_k = det(Sigma_k)^(1/D)``, orientation ``D_k`` (orthogonal) and shape
``A_k`` (diagonal, determinant one). An M-step minimises, over the allowed
``Sigma_k``,

    f = sum_k  N_k log det Sigma_k + tr(W_k Sigma_k^-1)

with ``W_k`` the (regularised) scatter of component k. The helpers below hold
what several structures share: the regularised scatter, the volume/shape split,
and the alternating and Jacobi-rotation iterations of the structures
without a closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .._numba import compiled
from ..backends import get_namespace
from ..stats import WEIGHT_FLOOR, SuffStats
from .full import _eye


@dataclass(frozen=True)
class InnerIteration:
    """Convergence control of an iterative M-step.

    Attributes
    ----------
    tol : float
        Stop when the objective ``f`` changes by less than ``tol * |f|``.
    max_iter : int
        At most this many updates in an M-step started from scratch.
    warm_max_iter : int
        At most this many in an M-step warm-started from the previous
        parameters (inside EM). Each update already raises the expected
        log-likelihood, so a partial M-step keeps EM monotone and its fixed
        points unchanged (generalised EM); EM's next iteration resumes where this
        one stopped, which is several times faster than converging every M-step.
    """

    tol: float = 1e-11
    max_iter: int = 500
    warm_max_iter: int = 20

    def limit(self, warm: bool) -> int:
        """The iteration limit of a warm-started (``warm``) or cold M-step."""
        return self.warm_max_iter if warm else self.max_iter

    def converged(self, old: Optional[float], new: float, like: Any) -> bool:
        """Whether the objective went from ``old`` to ``new`` by less than the tolerance.

        The tolerance is at least 100 machine epsilons of ``like``'s dtype: float32
        cannot resolve 1e-11, and would otherwise always run ``max_iter`` updates.
        """
        if old is None:
            return False
        eps = float(get_namespace(like).finfo(like.dtype).eps)
        return abs(old - new) <= max(self.tol, 100 * eps) * abs(new)


def counts_and_scatter(stats: SuffStats, reg_covar: float) -> tuple[Any, Any]:
    """Component weights ``N_k`` (K,) and regularised scatter ``W_k + reg N_k I``.

    Regularising the scatter (rather than the covariance after the M-step)
    keeps every structure's constraint exact; for VVV, EEE, VVI and VII it gives
    scikit-learn's ``covariance + reg_covar I`` exactly. The scatter keeps the
    layout of ``stats.scatter``: (K, D, D), or (K, D) diagonals.
    """
    xp = get_namespace(stats.scatter)
    # The floor keeps an emptied component's weight positive (as em.m_step).
    counts = stats.resp_weight + WEIGHT_FLOOR
    if stats.full_scatter:
        eye = _eye(xp, stats.n_features, stats.scatter)
        return counts, stats.scatter + (reg_covar * counts)[:, None, None] * eye[None, :, :]
    return counts, stats.scatter + (reg_covar * counts)[:, None]


def positive_floor(xp: Any, values: Any) -> Any:
    """``values`` floored at the dtype's smallest normal number (logs stay finite)."""
    tiny = xp.asarray(float(xp.finfo(values.dtype).tiny), dtype=values.dtype, device=getattr(values, "device", None))
    return xp.maximum(values, tiny)


def split_volume(values: Any) -> tuple[Any, Any]:
    """Split positive diagonals (..., D) into volume (geometric mean) and shape (det one).

    Returns
    -------
    volume : array of shape (...)
    shape : array of shape (..., D), ``values / volume``
    """
    xp = get_namespace(values)
    volume = xp.exp(xp.mean(xp.log(positive_floor(xp, values)), axis=-1))
    return volume, values / volume[..., None]


def dense_volumes(covariances: Any) -> Any:
    """``det(Sigma_k)^(1/D)`` of a (K, D, D) stack, shape (K,)."""
    xp = get_namespace(covariances)
    _, log_det = xp.linalg.slogdet(covariances)
    return xp.exp(log_det / covariances.shape[-1])


def descending_eigh(matrices: Any) -> tuple[Any, Any]:
    """Eigenvalues (K, D) in decreasing order and matching eigenvectors (K, D, D) as columns."""
    xp = get_namespace(matrices)
    values, vectors = xp.linalg.eigh(matrices)
    return xp.flip(values, axis=-1), xp.flip(vectors, axis=-1)


def rotate_back(orientations: Any, diagonals: Any) -> Any:
    """``D_k diag(d_k) D_k^T`` for orientations (D, D) or (K, D, D) and diagonals (K, D)."""
    xp = get_namespace(orientations, diagonals)
    if orientations.ndim == 2:
        orientations = orientations[None, :, :]
    dense = (orientations * diagonals[:, None, :]) @ xp.matrix_transpose(orientations)
    # Exact symmetry, so that Cholesky factors do not see rounding asymmetry.
    return 0.5 * (dense + xp.matrix_transpose(dense))


def diagonal_objective(summaries: Any, scales: Any, counts: Any) -> float:
    """``f`` when ``Sigma_k`` is diagonal in the frame where ``W_k`` has diagonal ``summaries``.

    ``sum_k N_k sum_j log s_kj + sum_j w_kj / s_kj`` for scales ``s`` (K, D).
    """
    xp = get_namespace(summaries, scales)
    scales = positive_floor(xp, scales)
    return float(xp.sum(counts * xp.sum(xp.log(scales), axis=1)) + xp.sum(summaries / scales))


def alternate_volume_and_shape(
    summaries: Any, counts: Any, volumes: Any, control: InnerIteration, warm: bool, compiled: bool = True
) -> tuple[Any, Any]:
    """Volumes ``lambda_k`` and one common shape ``A`` for ``Sigma_k = lambda_k A`` in a fixed frame.

    Celeux & Govaert's (1995) alternation for VEI (``summaries`` = scatter
    diagonals) and VEV (``summaries`` = scatter eigenvalues, decreasing): the
    shape given the volumes, then the volumes given the shape; each update is
    an exact conditional minimiser of ``f``, so ``f`` never increases.

    Parameters
    ----------
    summaries : array of shape (K, D)
    counts : array of shape (K,)
    volumes : array of shape (K,)
        Starting volumes (the previous parameters' for a warm start).
    control : InnerIteration
    warm : bool
        Whether ``volumes`` come from the previous parameters.
    compiled : bool, default=True
        Let NumPy arrays take the compiled loop (:mod:`gaussmix.covariance._numba_mstep`)
        where numba is installed.

    Returns
    -------
    volumes : array of shape (K,)
    shape : array of shape (D,)
    """
    xp = get_namespace(summaries)
    compiled = _compiled_mstep() if compiled and _all_numpy(summaries, volumes) else None
    if compiled is not None:
        eps, tiny = np.finfo(summaries.dtype).eps, np.finfo(summaries.dtype).tiny
        return compiled.volume_and_shape_loop(
            summaries, counts.astype(summaries.dtype, copy=False), volumes.astype(summaries.dtype, copy=False),
            control.limit(warm), max(control.tol, 100 * float(eps)), summaries.dtype.type(tiny),
        )
    n_features = summaries.shape[1]
    value = None
    for _ in range(control.limit(warm)):
        # The shape is scaled to det 1: the quotient up to a factor, which cannot overflow
        _, shape = split_volume(xp.sum(summaries * relative_inverse(volumes)[:, None], axis=0))
        volumes = positive_floor(xp, xp.sum(summaries / shape[None, :], axis=1) / (n_features * counts))
        new_value = diagonal_objective(summaries, volumes[:, None] * shape[None, :], counts)
        if control.converged(value, new_value, summaries):
            break
        value = new_value
    return volumes, shape


def rotation_rounds(n_features: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """A round-robin schedule of the column pairs of a (D, D) orientation.

    Each round is a set of disjoint pairs ``(p, q)`` (as two tuples of
    indices); the ``D - 1`` rounds (``D`` rounded up to even) cover every pair
    once. Disjoint plane rotations commute, so a round's rotations are chosen
    and applied together: a few array operations per round, not per pair.
    """
    players = list(range(n_features + n_features % 2))
    rounds = []
    for _ in range(len(players) - 1):
        half = len(players) // 2
        pairs = [(players[i], players[-1 - i]) for i in range(half)]
        # with D odd, the extra player's partner sits the round out
        pairs = [(min(a, b), max(a, b)) for a, b in pairs if max(a, b) < n_features]
        rounds.append((tuple(a for a, _ in pairs), tuple(b for _, b in pairs)))
        players = [players[0], players[-1]] + players[1:-1]
    return tuple(rounds)


def pair_half_angles(rotated: Any, inverse_scales: Any, first: Any, second: Any) -> Any:
    """Angles of the plane rotations minimising ``g(D) = sum_k tr(W_k D M_k D^T)``, one per pair.

    Rotating columns ``p, q`` of ``D`` by ``theta`` changes ``g`` by
    ``u cos 2 theta + v sin 2 theta`` plus a constant, with
    ``u = sum_k (m_kp - m_kq) (R_kpp - R_kqq) / 2`` and
    ``v = sum_k (m_kp - m_kq) R_kpq`` (``R_k = D^T W_k D``): the minimiser is
    ``2 theta = atan2(-v, -u)``; no rotation where ``u = v = 0``.

    Parameters
    ----------
    rotated : array of shape (K, D, D)
        ``D^T W_k D``.
    inverse_scales : array of shape (K, D)
        ``M_k``'s diagonals, up to a common factor (:func:`relative_inverse`).
    first, second : array of shape (P,)
        The pairs' columns ``p`` and ``q``.

    Returns
    -------
    array of shape (P,)
    """
    xp = get_namespace(rotated)
    spread = inverse_scales[:, first] - inverse_scales[:, second]
    u = xp.sum(spread * (rotated[:, first, first] - rotated[:, second, second]), axis=0) * 0.5
    v = xp.sum(spread * rotated[:, first, second], axis=0)
    still = (u == 0) & (v == 0)
    return xp.where(still, xp.zeros_like(u), 0.5 * xp.atan2(-v, -u))


def plane_rotation(angles: Any, first: Any, second: Any, like: Any) -> Any:
    """The (D, D) product of disjoint plane rotations: columns ``p`` and ``q`` turned by ``angles``."""
    xp = get_namespace(like)
    rotation = _eye(xp, like.shape[-1], like)
    cosines, sines = xp.cos(angles), xp.sin(angles)
    rotation[first, first] = cosines
    rotation[second, second] = cosines
    rotation[first, second] = -sines
    rotation[second, first] = sines
    return rotation


def relative_inverse(scales: Any) -> Any:
    """``min(s) / s`` of scales (K, D): their inverses up to one common factor, all in (0, 1].

    The rotation angles (:func:`pair_half_angles`) are unchanged when every
    ``M_k`` is multiplied by the same constant. ``1 / s`` itself overflows where
    a scale sits at the dtype's smallest normal number (reg_covar 0 on data of
    lower rank, float32 on badly scaled columns), and inf - inf is NaN.
    """
    xp = get_namespace(scales)
    floored = positive_floor(xp, scales)
    return xp.min(floored) / floored


def fit_common_orientation(
    scatter: Any,
    counts: Any,
    orientation: Any,
    scales_in_frame: Callable[[Any], Any],
    control: InnerIteration,
    warm: bool,
    compiled_mode: Optional[int] = None,
) -> tuple[Any, Any]:
    """Common orientation and per-component scales for EVE and VVE.

    Jacobi sweeps (as in Flury & Gautschi's common principal components): in
    each round of disjoint column pairs (:func:`rotation_rounds`), every plane
    rotation minimises the orientation's part of ``f`` exactly given the
    scales (:func:`pair_half_angles`), then the scales are set exactly given the
    orientation (``scales_in_frame`` maps ``diag(D^T W_k D)`` (K, D) to
    ``lambda_k A_k`` (K, D)). ``f`` never increases, and a sweep gains orders of
    magnitude more than a majorise-minimise step (Browne & McNicholas, 2014),
    whose slow progress left EM unconverged at ``max_iter`` in ten dimensions.
    Starts from ``orientation`` (the previous parameters' for a warm start);
    an update is one sweep.

    ``compiled_mode`` (:mod:`gaussmix.covariance._numba_mstep`'s
    ``EQUAL_VOLUME`` or ``VARIABLE_VOLUME``, the rule ``scales_in_frame``
    follows) lets NumPy arrays take the compiled loop where numba is installed.

    Returns
    -------
    orientation : array of shape (D, D)
    scales : array of shape (K, D)
    """
    compiled = _compiled_mstep() if compiled_mode is not None and _all_numpy(scatter, orientation) else None
    if compiled is not None:
        eps, tiny = np.finfo(scatter.dtype).eps, np.finfo(scatter.dtype).tiny
        tolerance = max(control.tol, 100 * float(eps))
        return compiled.common_orientation_loop(
            scatter, counts.astype(scatter.dtype, copy=False), orientation, compiled_mode,
            control.limit(warm), tolerance, scatter.dtype.type(tiny),
        )
    xp = get_namespace(scatter, orientation)
    device = getattr(scatter, "device", None)
    rounds = [
        (xp.asarray(first, dtype=xp.int64, device=device), xp.asarray(second, dtype=xp.int64, device=device))
        for first, second in rotation_rounds(scatter.shape[-1])
        if first  # one feature has no pair to turn
    ]
    def rotated_scatter(orientation: Any) -> Any:
        # D^T W_k D afresh after each sweep: rotating it in place would let rounding drift
        return xp.matrix_transpose(orientation)[None, :, :] @ scatter @ orientation[None, :, :]

    rotated = rotated_scatter(orientation)
    summaries = xp.linalg.diagonal(rotated)
    scales = scales_in_frame(summaries)
    value = diagonal_objective(summaries, scales, counts)
    for _ in range(control.limit(warm)):
        for first, second in rounds:
            angles = pair_half_angles(rotated, relative_inverse(scales), first, second)
            rotation = plane_rotation(angles, first, second, scatter)
            rotated = xp.matrix_transpose(rotation)[None, :, :] @ rotated @ rotation[None, :, :]
            orientation = orientation @ rotation
            scales = scales_in_frame(xp.linalg.diagonal(rotated))
        rotated = rotated_scatter(orientation)
        summaries = xp.linalg.diagonal(rotated)
        scales = scales_in_frame(summaries)
        new_value = diagonal_objective(summaries, scales, counts)
        converged = control.converged(value, new_value, scatter)
        value = new_value
        if converged:
            break
    return orientation, scales


def _all_numpy(*arrays: Any) -> bool:
    return all(type(array) is np.ndarray for array in arrays)


def _compiled_mstep() -> Optional[Any]:
    """:mod:`gaussmix.covariance._numba_mstep` where numba is installed and not turned off."""
    return compiled("gaussmix.covariance._numba_mstep")


def shared_orientation(covariances: Any) -> Any:
    """The common eigenvectors (D, D) of a (K, D, D) stack that shares them.

    Eigenvectors of a generic combination ``sum_k c_k Sigma_k``: they
    diagonalise every ``Sigma_k`` unless the combination has a repeated
    eigenvalue, which distinct irrational weights make non-generic.
    """
    xp = get_namespace(covariances)
    n_components = covariances.shape[0]
    golden = 0.6180339887498949
    weights = xp.asarray(
        [1.0 + ((k * golden) % 1.0) for k in range(n_components)],
        dtype=covariances.dtype,
        device=getattr(covariances, "device", None),
    )
    _, vectors = descending_eigh(xp.sum(weights[:, None, None] * covariances, axis=0))
    return vectors


def starting_volumes(previous: Optional[Any], summaries: Any, counts: Any, volumes_of: Callable[[Any], Any]) -> Any:
    """The previous parameters' volumes, or ``tr(W_k) / (D N_k)`` without them."""
    if previous is not None:
        return volumes_of(previous)
    xp = get_namespace(summaries)
    return positive_floor(xp, xp.sum(summaries, axis=1) / (summaries.shape[1] * counts))
