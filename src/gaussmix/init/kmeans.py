"""k-means starts: Lloyd's k-means on a sample of the rows, and k-means++ seeding."""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.cluster import KMeans, kmeans_plusplus

from ._nearest import nearest_centre_labels
from ._registry import register_initializer


#: k-means runs on a uniform sample of ``KMEANS_ROWS_PER_CLUSTER`` rows per
#: cluster (at least ``KMEANS_MIN_ROWS``, at most ``KMEANS_MAX_ROWS``) and then
#: labels every row by its nearest centre: Lloyd's iterations over 10^6 rows
#: would otherwise cost more than the EM they start. 256 rows a cluster place its
#: centre within ~sigma/16; more rows cost time without a better fit
#: (see BENCHMARKS.md, "Measurements behind the code's thresholds").
KMEANS_ROWS_PER_CLUSTER = 256
KMEANS_MIN_ROWS = 2**14
KMEANS_MAX_ROWS = 2**16


def kmeans_sample_rows(n_components: int) -> int:
    """Rows k-means is run on, at most (see :data:`KMEANS_ROWS_PER_CLUSTER`)."""
    return min(KMEANS_MAX_ROWS, max(KMEANS_MIN_ROWS, KMEANS_ROWS_PER_CLUSTER * n_components))


def _sample_without_replacement(random_state: np.random.RandomState, n: int, size: int) -> np.ndarray:
    """``size`` distinct indices below ``n``, drawn from ``random_state``.

    ``RandomState.choice(replace=False)`` permutes all ``n`` (at small D as
    long as several EM iterations); a Generator seeded from it draws only ``size``.
    """
    generator = np.random.default_rng(random_state.randint(2**31))
    return generator.choice(n, size=size, replace=False)


@register_initializer("kmeans")
def _kmeans(X, sample_weight, n_components, random_state):
    model = KMeans(n_clusters=n_components, n_init=1, random_state=random_state)
    sample_rows = kmeans_sample_rows(n_components)
    if X.shape[0] <= sample_rows:
        return model.fit(X, sample_weight=sample_weight).labels_
    rows = np.sort(_sample_without_replacement(random_state, X.shape[0], sample_rows))
    weights = None if sample_weight is None else sample_weight[rows]
    if weights is not None and np.count_nonzero(weights) < n_components:
        # Too few weighted rows in the sample: cluster all of them instead.
        return model.fit(X, sample_weight=sample_weight).labels_
    model.fit(X[rows], sample_weight=weights)
    return nearest_centre_labels(X, model.cluster_centers_.astype(X.dtype, copy=False))


@register_initializer("k-means++")
def _kmeans_plusplus(X, sample_weight, n_components, random_state):
    # Our arguments are validated already; scikit-learn's validation of them costs more
    # than the seeding on small data (every start of a selection grid).
    with sklearn.config_context(skip_parameter_validation=True):
        centres, _ = kmeans_plusplus(X, n_components, random_state=random_state, sample_weight=sample_weight)
    return nearest_centre_labels(X, centres)
