"""Where the rows live: host (NumPy) or a device array (torch, CPU or CUDA).

The estimator runs EM in the namespace of the rows it is given; this module
holds the few decisions around that: recognising device arrays, honouring the
``device=`` option (which needs torch, imported only here and only when asked),
and the host copy of (a sample of) the rows that the initialisers need.
Which arrays are device arrays follows the backend registry
(:data:`gaussmix.backends.BACKENDS`); the ``device=`` option is torch's.
"""

from __future__ import annotations

import importlib
from typing import Any, Optional

import array_api_compat
import numpy as np

from . import backend_for, get_namespace, to_numpy

#: rows the host-side initialisation (k-means & co.) sees at most; beyond it,
#: a uniform random sample of this many rows is copied to the host
INIT_HOST_ROWS = 2**17


def is_device_array(X: Any) -> bool:
    """Whether ``X`` is an array of a non-NumPy library gaussmix has a backend for."""
    if isinstance(X, np.ndarray) or not array_api_compat.is_array_api_obj(X):
        return False
    try:
        return backend_for(get_namespace(X)).__name__ != "gaussmix.backends.numpy_backend"
    except (KeyError, TypeError):
        return False


def resolve_device(device: Any) -> Optional[Any]:
    """Check the estimator's ``device`` option; None stays None (rows stay where they are).

    Raises
    ------
    ImportError
        If a device is asked for and torch is not installed.
    ValueError
        If torch does not know the device, or CUDA is asked for and missing.
    """
    if device is None:
        return None
    try:
        torch_backend = importlib.import_module("gaussmix.backends.torch_backend")
    except ImportError:
        raise ImportError(
            f"device={device!r} needs PyTorch, which is not installed: "
            "pip install 'gaussmix[torch]' (or leave device=None to fit NumPy input with NumPy)"
        ) from None
    return torch_backend.resolve_device(device)


def move_rows(X: Any, device: Any) -> Any:
    """Rows ``X`` (validated NumPy array or tensor) as a tensor on ``device``.

    NumPy input moved to CUDA becomes float32 (see
    :func:`gaussmix.backends.torch_backend.move_to_device`).
    """
    from . import torch_backend

    return torch_backend.move_to_device(X, device)


def host_rows_for_init(
    X: Any, sample_weight: Optional[Any], random_state: np.random.RandomState, max_rows: Optional[int] = None
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Host copies of the rows (and weights) the initialisers run on.

    All rows when there are at most ``max_rows`` (default :data:`INIT_HOST_ROWS`;
    then the start is the one NumPy input would get, and ``random_state`` is
    not consumed); otherwise a uniform sample of ``max_rows`` rows, drawn with
    ``random_state``.
    """
    max_rows = INIT_HOST_ROWS if max_rows is None else max_rows
    n_samples = int(X.shape[0])
    if n_samples > max_rows:
        chosen = np.sort(random_state.choice(n_samples, size=max_rows, replace=False))
        index = get_namespace(X).asarray(chosen, device=array_api_compat.device(X))
        X = X[index]
        sample_weight = None if sample_weight is None else sample_weight[index]
    return to_numpy(X), None if sample_weight is None else to_numpy(sample_weight)
