"""Peak memory of a torch E-step pass does not grow with the number of rows.

Measured on the CPU build of torch, where there is no ``max_memory_allocated``
and ``tracemalloc`` does not see torch's allocations: each measurement runs in
a fresh interpreter and reads the process's high-water mark of resident memory
(``resource.getrusage(...).ru_maxrss``, which counts every page torch's allocator
touched) before and after one E-step pass over the rows, as a fit runs it
(:func:`gaussmix.em.accumulate_source` over the fit's chunks). The rows and a
warm-up pass on two components (libraries loaded) are in the baseline, so the
difference is the E-step's own peak, its bounded temporaries included.

glibc's malloc raises its mmap threshold as large blocks are freed, after which
blocks of a few MiB come from the heap and fragment it: resident memory then
creeps up with the number of chunks although what is live does not. The
interpreter runs with a fixed threshold (``MALLOC_MMAP_THRESHOLD_``), so that
freed blocks are given back and the high-water mark follows live memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")
resource = pytest.importorskip("resource")  # (POSIX)

N_COMPONENTS, N_FEATURES, N_ROWS = 256, 64, 10_000

_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import torch
    from gaussmix import get_covariance_model
    from gaussmix.data import chunking
    from gaussmix.data.arrays import ArraySource
    from gaussmix.em import accumulate_source
    from gaussmix.params import MixtureParams

    n_rows, n_components, n_features = map(int, sys.argv[1:4])
    torch.set_num_threads(1)
    rng = np.random.RandomState(0)
    means = rng.normal(scale=3.0, size=(n_components, n_features))
    weights = np.full(n_components, 1.0 / n_components)
    X = torch.randn(n_rows, n_features, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def parameters(covariance_type):
        model = get_covariance_model(covariance_type)
        shape = model.parameter_shape(n_components, n_features)
        covariances = np.eye(n_features) if covariance_type == "tied" else np.ones(shape)
        return MixtureParams.from_covariances(weights, means, covariances, model).converted_like(X)

    def e_step(rows, params):
        source = ArraySource(rows, None, chunking.source_rows(rows, n_components))
        return float(accumulate_source(source, params)[1])

    every = [parameters(name) for name in sys.argv[4:]]
    for params in every:  # warm-up on two components: libraries loaded, not the E-step's temporaries
        e_step(X[:300], MixtureParams(*(a[:2] for a in (params.weights, params.means)), *(
            (a if a.ndim == 2 and params.covariance.name == "tied" else a[:2])
            for a in (params.covariances, params.precisions_cholesky)), params.covariance))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for params in every:
        e_step(X, params)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak": after - before}))
    """
)


def _e_step_peak_bytes(n_rows, covariance_types):
    """Peak resident memory that E-step passes over ``n_rows`` rows add, in bytes: the
    highest of one pass per structure."""
    arguments = [str(n_rows), str(N_COMPONENTS), str(N_FEATURES), *covariance_types]
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *arguments], capture_output=True, text=True, timeout=300,
        env={**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**16)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])["peak"] * 1024  # Linux: KiB


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss units and accounting: Linux")
def test_torch_e_step_peak_memory_is_independent_of_the_number_of_rows():
    from gaussmix.data.chunking import MIN_CHUNK_ROWS

    structures = ["diag", "spherical", "tied", "VEI"]
    small = _e_step_peak_bytes(N_ROWS, structures)
    large = _e_step_peak_bytes(4 * N_ROWS, structures)
    # What four times the rows add: noise, not 3 N K D (3.9 GB here)
    assert large - small < 16 * 2**20, (small, large)
    # No (rows, K, D) temporary even of the smallest chunk the policy makes (the generic
    # engine's blocks hold several: about 100 MB here)
    assert large < MIN_CHUNK_ROWS * N_COMPONENTS * N_FEATURES * 8, (small, large)
