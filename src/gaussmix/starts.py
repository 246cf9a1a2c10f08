"""The start of a fit: starting parameters in the data-centred frame.

From the rows themselves (in memory, or a host sample of device rows), from a
stream's reservoir sample (:mod:`gaussmix.streaming`), or from the user's
``weights_init`` / ``means_init`` / ``precisions_init``, which replace what
the initialiser found.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .backends import device as _device
from . import _validation as checks
from .backends import to_numpy
from .covariance import CovarianceModel
from .data import chunking
from .em import m_step
from .init import get_initializer, initial_stats, nearest_centre_labels
from .params import MixtureParams
from .priors import ResolvedPrior
from .problem import Problem
from .streaming import DataSummary, nearest_centre_start, sampled_start


def check_row_counts(n_components: int, n_samples: int, n_positive: Optional[int]) -> None:
    """Refuse fewer rows, or fewer rows of positive weight (``n_positive``, None: not counted), than components."""
    if n_samples < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = {n_components}, "
            f"n_samples = {n_samples}: use fewer components or more data"
        )
    if n_positive is not None and n_positive < n_components:
        raise ValueError(
            f"only {n_positive} row(s) have a positive sample_weight, fewer "
            f"than n_components = {n_components}"
        )


def check_init_arrays(model: Any, covariance: CovarianceModel, n_features: int, dtype: np.dtype) -> dict:
    """The estimator's ``*_init`` arrays, checked and in ``dtype``: keys ``"weights"`` (K,), ``"means"`` (K, D), ``"precisions"``."""
    K = model.n_components
    init = {}
    if model.weights_init is not None:
        init["weights"] = checks.check_weights_init(model.weights_init, K, dtype)
    if model.means_init is not None:
        init["means"] = checks.check_means_init(model.means_init, K, n_features, dtype)
    if model.precisions_init is not None:
        init["precisions"] = checks.check_precisions_init(
            model.precisions_init, covariance, K, n_features, dtype
        )
    return init


def start_from_rows(
    X: Any, weights: Optional[Any], origin: Any, problem: Problem, user_init: dict,
    random_state: np.random.RandomState, chunk_rows: int, prior: Optional[ResolvedPrior] = None,
) -> MixtureParams:
    """Starting parameters in the frame centred on ``origin`` (shape (D,)), from the rows ``X`` (shape (n, D)).

    Initialisers are NumPy / scikit-learn code: device rows are copied to
    the host for them (a sample of them, beyond ``backends.device.INIT_HOST_ROWS``)
    and the starting parameters are moved back to the rows' device. With a
    ``prior``, the M-step that makes the start is its MAP step (as mclust's
    ``me`` starts from a partition).
    """
    if _device.is_device_array(X):
        host_X, host_weights = _device.host_rows_for_init(X, weights, random_state)
        host_chunk_rows = chunking.stream_rows(host_X.shape[1], host_X.dtype, problem.n_components, problem.chunk_size)
        start = start_from_rows(host_X, host_weights, to_numpy(origin), problem, user_init, random_state,
                                host_chunk_rows, prior)
        return start.converted_like(X)
    if "means" in user_init:
        # Start the covariances from the rows nearest each given mean.
        assignment = nearest_centre_labels(X, user_init["means"])
    else:
        assignment = get_initializer(problem.init_params)(X, weights, problem.n_components, random_state)
    covariance = problem.covariance
    stats = initial_stats(X, weights, assignment, problem.n_components, covariance.full_scatter, chunk_rows, origin)
    params = m_step(stats, covariance, problem.reg_covar, origin=origin, constraints=problem.start_constraints,
                    prior=prior)
    return with_user_init(params, user_init, covariance, origin)


def start_from_stream(
    centred: Any, summary: DataSummary, origin: np.ndarray, problem: Problem, user_init: dict,
    random_state: np.random.RandomState, prior: Optional[ResolvedPrior] = None,
) -> MixtureParams:
    """Starting parameters in the frame centred on ``origin`` (shape (D,)) of the stream ``centred``.

    The user's means, where given, start every row at its nearest mean; otherwise the initialiser
    runs on the reservoir sample of ``summary``. Either way one more pass over the stream.
    """
    K, covariance = problem.n_components, problem.covariance
    if "means" in user_init:
        stats = nearest_centre_start(centred, user_init["means"] - origin, K, covariance.full_scatter, summary.n_rows)
    else:
        initializer = get_initializer(problem.init_params)
        stats = sampled_start(centred, summary, origin, initializer, K, covariance.full_scatter, random_state)
    params = m_step(stats, covariance, problem.reg_covar, origin=origin, constraints=problem.start_constraints,
                    prior=prior)
    return with_user_init(params, user_init, covariance, origin)


def with_user_init(params: MixtureParams, user_init: dict, covariance: CovarianceModel, origin: np.ndarray) -> MixtureParams:
    """``params`` with the user's weights, means and precisions put in (frame centred on ``origin``)."""
    if not user_init:
        return params
    covariances, precisions_cholesky = params.covariances, params.precisions_cholesky
    if "precisions" in user_init:
        precisions = user_init["precisions"]
        precisions_cholesky = covariance.precision_cholesky_from_precisions(precisions)
        covariances = covariance.covariances_from_precisions(precisions)
    return MixtureParams(
        user_init.get("weights", params.weights),
        user_init["means"] - origin if "means" in user_init else params.means,
        covariances,
        precisions_cholesky,
        covariance,
    )
