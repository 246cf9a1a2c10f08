"""The backend registry: exact library names, and every backend provides the protocol."""

from __future__ import annotations

import importlib
import types

import numpy as np
import pytest

from gaussmix.backends import BACKENDS, backend_for, get_namespace
from gaussmix.backends.protocol import REQUIRED


def test_protocol_lists_the_backend_functions():
    assert set(REQUIRED) == {
        "cholesky_lower", "inverse_lower_triangular", "inverse_positive_definite", "add_at", "logsumexp_rows",
        "standard_normal", "to_numpy", "asarray", "chunk_budget_bytes", "computation_context",
    }


@pytest.mark.parametrize("library", sorted(BACKENDS))
def test_every_registered_backend_defines_the_protocol(library):
    pytest.importorskip(library)
    module = importlib.import_module(BACKENDS[library])
    assert [name for name in REQUIRED if not callable(getattr(module, name, None))] == []


def test_numpy_namespace_gets_the_numpy_backend():
    assert backend_for(get_namespace(np.empty(3))).__name__ == BACKENDS["numpy"]


@pytest.mark.parametrize("name", ["jax.numpy", "array_api_compat.cupy", "numpyish"])
def test_other_namespaces_are_refused_with_the_supported_ones_listed(name):
    # Exact names: a namespace that only contains "numpy" in its name is not NumPy's.
    with pytest.raises(KeyError, match="supported array libraries: numpy, torch"):
        backend_for(types.SimpleNamespace(__name__=name))
