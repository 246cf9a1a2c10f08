"""Marginals and conditionals of a mixture fitted in torch equal those of the NumPy fit."""

from __future__ import annotations

import numpy as np
import pytest

from gaussmix import GaussianMixture

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV"])
def test_torch_marginal_and_condition_equal_numpy(covariance_type):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    X[:200] += 4
    on_host = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    in_torch = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(torch.from_numpy(X))
    rows = X[:5]
    for numpy_model, torch_model in [
        (on_host.marginal([0, 2]), in_torch.marginal([0, 2])),
        (on_host.condition([1], [0.5]), in_torch.condition([1], [0.5])),
    ]:
        kept = rows[:, [0, 2]]
        assert isinstance(torch_model.means_, torch.Tensor)
        np.testing.assert_allclose(torch_model.means_.numpy(), numpy_model.means_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(torch_model.score_samples(torch.from_numpy(kept)).numpy(),
                                   numpy_model.score_samples(kept), rtol=1e-7)
