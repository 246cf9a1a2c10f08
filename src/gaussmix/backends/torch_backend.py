"""PyTorch implementations of the operations the array API lacks.

Imported lazily by :func:`gaussmix.backends.backend_for` the first time a
torch tensor reaches gaussmix, so ``import gaussmix`` never loads torch.
Everything here stays on the tensors' device: nothing is copied to the host
except by :func:`to_numpy`, which only error messages, the initialisation
and host-side bookkeeping call.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

import numpy as np
import torch

#: share of the free device memory one chunk's widest (n, K, D) temporary may use;
#: the E-step holds about four such temporaries at once, plus the data itself.
CUDA_CHUNK_MEMORY_SHARE = 0.125


def cholesky_lower(matrices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower Cholesky factors of a stack of symmetric matrices, with a status.

    Parameters
    ----------
    matrices : tensor of shape (..., D, D)

    Returns
    -------
    factors : tensor of shape (..., D, D)
        Lower-triangular factors; entries for failed matrices are NaN.
    ok : bool tensor of shape (...)
        Whether each matrix was positive definite.
    """
    # cholesky_ex reports failure in ``info`` instead of raising (and syncing).
    factors, info = torch.linalg.cholesky_ex(matrices)
    ok = info == 0
    factors = torch.where(ok[..., None, None], factors, torch.full_like(factors, float("nan")))
    return factors, ok


def inverse_lower_triangular(factors: torch.Tensor) -> torch.Tensor:
    """Inverse of each lower-triangular matrix in a stack of shape (..., D, D)."""
    identity = torch.eye(factors.shape[-1], dtype=factors.dtype, device=factors.device)
    return torch.linalg.solve_triangular(factors, identity.expand_as(factors), upper=False)


def inverse_positive_definite(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverses (..., M, M) and log-determinants (...) of positive definite ``blocks`` (..., M, M).

    Through Cholesky factors, batched on the device; a block that is not
    positive definite gives NaN (no exception: that would wait for the device).
    """
    factors, info = torch.linalg.cholesky_ex(blocks)
    failed = (info != 0)[..., None, None]
    factors = torch.where(failed, torch.full_like(factors, float("nan")), factors)
    log_det = 2 * torch.sum(torch.log(torch.diagonal(factors, dim1=-2, dim2=-1)), dim=-1)
    return torch.cholesky_inverse(factors), log_det


def add_at(index: torch.Tensor, values: torch.Tensor, size: int) -> torch.Tensor:
    """Sums of ``values`` (m,) by ``index`` (m,): tensor of shape (size,) on their device."""
    return torch.zeros(size, dtype=values.dtype, device=values.device).index_add_(0, index, values)


def logsumexp_rows(a: torch.Tensor) -> torch.Tensor:
    """``log(sum(exp(a), axis=1))`` of a 2-D tensor; rows of only ``-inf`` give ``-inf``."""
    return torch.logsumexp(a, dim=1)


def standard_normal(rng: np.random.RandomState, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Standard normal draws of ``shape`` on the device and with the dtype of ``like``.

    The draws come from a torch generator on that device seeded from ``rng``,
    so sampling is reproducible for a given ``random_state`` without drawing
    on the host and copying.
    """
    generator = torch.Generator(device=like.device)
    generator.manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)


def to_numpy(array: torch.Tensor) -> np.ndarray:
    """Host numpy copy of ``array`` (a view for CPU tensors)."""
    return array.detach().cpu().numpy()


def asarray(values: Any, like: torch.Tensor) -> torch.Tensor:
    """``values`` (a numpy array, list or tensor) as a tensor with ``like``'s dtype and device."""
    if isinstance(values, torch.Tensor):
        return values.to(device=like.device, dtype=like.dtype)
    return torch.as_tensor(np.asarray(values), dtype=like.dtype, device=like.device)


def chunk_budget_bytes(like: torch.Tensor) -> Optional[int]:
    """Bytes one E-step temporary may take on ``like``'s device; None off CUDA.

    On CUDA the chunk is sized from the memory that is free now
    (``torch.cuda.mem_get_info``), so large N fits whatever else the
    process holds; on the CPU the host's cache-sized default applies.
    """
    if like.device.type != "cuda":
        return None
    free_bytes, _ = torch.cuda.mem_get_info(like.device)
    return int(free_bytes * CUDA_CHUNK_MEMORY_SHARE)


@contextlib.contextmanager
def computation_context() -> Iterator[None]:
    """Settings for gaussmix's work inside the block: full-float32 products, no autograd.

    TF32 keeps ~10 mantissa bits; the Mahalanobis products of the E-step lose
    the likelihood's digits with it, and no accuracy measurement has shown it
    safe yet, so float32 matrix products run in full float32. Input that
    requires grad would make every EM step grow an autograd graph: EM has no
    use for one. The user's global settings are restored on exit.
    """
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_float32_matmul_precision(previous)


def resolve_device(device: Any) -> torch.device:
    """``device`` (a string such as ``"cuda"`` / ``"cpu"`` or a ``torch.device``) checked.

    Raises
    ------
    ValueError
        If the name is not a device, or names CUDA where torch sees none.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device={device!r} is not a torch device: use 'cpu', 'cuda', 'cuda:0' or a torch.device ({error})"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA, but torch {torch.__version__} sees no CUDA device: "
            "install a CUDA build of torch on a machine with a GPU, or use device='cpu' or None"
        )
    return resolved


def move_to_device(X: Any, device: torch.device) -> torch.Tensor:
    """Rows ``X`` (numpy array or tensor) as a tensor on ``device``.

    Floating tensors keep their dtype. Host (numpy) input moved to CUDA becomes
    float32, the GPU's fast type; on the CPU it keeps its dtype.
    """
    if isinstance(X, torch.Tensor):
        return X.to(device=device)
    array = np.asarray(X)
    dtype = None
    if device.type == "cuda" and array.dtype.kind == "f":
        dtype = torch.float32
    return torch.as_tensor(array, dtype=dtype, device=device)
