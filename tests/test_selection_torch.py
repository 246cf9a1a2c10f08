"""``gaussmix.select`` on torch tensors: the same grid, criteria and choice as on NumPy rows."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gaussmix  # noqa: E402

from .conftest import make_blobs  # noqa: E402

GRID = dict(n_components=[1, 2, 3], covariance_types=["spherical", "diag", "EEI", "tied", "full", "VEV"])


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_select_on_a_cpu_tensor_matches_numpy(weighted):
    X, _ = make_blobs(400, 3, 3, seed=5)
    X = X + 50.0  # data away from the origin: EM runs in the frame centred on them
    weights = np.random.RandomState(1).uniform(0.2, 2.0, size=len(X)) if weighted else None
    expected = gaussmix.select(X, sample_weight=weights, random_state=0, **GRID)
    result = gaussmix.select(
        torch.from_numpy(X), sample_weight=None if weights is None else torch.from_numpy(weights),
        random_state=0, **GRID,
    )
    assert (result.best.n_components, result.best.covariance_type) == (
        expected.best.n_components, expected.best.covariance_type
    )
    for row, reference in zip(result.rows, expected.rows):
        assert (row.n_components, row.covariance_type, row.ok) == (
            reference.n_components, reference.covariance_type, reference.ok
        )
        if reference.ok:
            assert row.bic == pytest.approx(reference.bic, rel=1e-6), row.label
            assert row.icl == pytest.approx(reference.icl, rel=1e-6), row.label
    for model in result.estimators_.values():
        assert isinstance(model.means_, torch.Tensor) and model.means_.device == torch.device("cpu")
        assert model.covariances_.dtype == torch.float64
    np.testing.assert_allclose(
        result.best_estimator_.means_.numpy(), expected.best_estimator_.means_, rtol=1e-6, atol=1e-8
    )


def test_select_refuses_bad_tensors_as_it_does_arrays():
    X = torch.from_numpy(make_blobs(50, 2, 2, seed=0)[0])
    X[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        gaussmix.select(X, n_components=[1, 2], covariance_types=["diag"])
