"""Random starts: random responsibilities, or random rows as centres."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ._nearest import nearest_centre_labels
from ._registry import register_initializer


def _selection_probabilities(sample_weight: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    return weights / weights.sum()


@register_initializer("random_from_data")
def _random_from_data(X, sample_weight, n_components, random_state):
    probabilities = _selection_probabilities(sample_weight)
    if probabilities is not None and np.count_nonzero(probabilities) < n_components:
        raise ValueError(
            f"init_params='random_from_data' needs at least n_components={n_components} rows "
            "with positive sample_weight"
        )
    indices = random_state.choice(X.shape[0], size=n_components, replace=False, p=probabilities)
    return nearest_centre_labels(X, X[indices])


@register_initializer("random")
def _random(X, sample_weight, n_components, random_state):
    resp = random_state.uniform(size=(X.shape[0], n_components)).astype(X.dtype)
    return resp / resp.sum(axis=1, keepdims=True)
