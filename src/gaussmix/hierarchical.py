"""Model-based agglomerative hierarchical clustering: mclust's default EM start.

Following Fraley (1998), groups are merged greedily so that the classification
likelihood of a Gaussian model drops least at each merge. Two criteria serve
in turn, on at most ``max_rows`` rows (a random subset beyond that, as mclust
does for large data):

1. **EII** (equal spherical clusters), which is Ward's criterion, reduces the
   rows to at most ``n_groups`` small groups. scipy's Ward linkage does it in
   compiled code; groups this small cannot yet support a covariance, which is
   why a covariance-free criterion comes first.
2. **VVV** (unconstrained clusters) merges those groups down to K: the cost of
   a group of weight ``n_g`` and scatter ``W_g`` is
   ``n_g log det((W_g + n_g T) / n_g)``, and the pair whose merge raises the
   summed cost least is merged. ``T = tau diag(variances of the features)``
   regularises groups too small for a covariance (mclust's ``alpha`` and
   ``beta`` play that part) and keeps the criterion independent of the units.

Both run on the variables as given (mclust's ``hcUse = "VARS"``): whitening
the rows by the principal components of the *whole* data (``"SVD"``) squeezes
the directions that separate the clusters, and Ward's stage then builds
groups straddling two clusters. The remaining rows (outside the subset) join
the group under which they are most probable, as in mclust's E-step after
its hierarchical start.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

#: rows the agglomeration works on (a random subset beyond it)
MAX_ROWS = 2000
#: groups Ward's stage hands to the VVV stage
N_GROUPS = 200
#: ``tau``: regularisation of the VVV stage, relative to each feature's variance
REGULARISATION = 1e-3
#: rows classified at once when labelling the rows outside the subset
_CHUNK_ROWS = 65536


def hierarchical_labels(
    X: np.ndarray,
    sample_weight: Optional[np.ndarray],
    n_components: int,
    random_state: np.random.RandomState,
    max_rows: int = MAX_ROWS,
    n_groups: int = N_GROUPS,
) -> np.ndarray:
    """Cluster labels from model-based agglomerative hierarchical clustering.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    sample_weight : ndarray of shape (n,) or None
        Frequency weights; rows of weight zero take no part in the merges.
        Ward's stage counts rows, the VVV stage weighs them.
    n_components : int
    random_state : numpy.random.RandomState
        Draws the subset when more than ``max_rows`` rows have positive weight
        (otherwise the result is deterministic).
    max_rows, n_groups : int

    Returns
    -------
    labels : ndarray of int, shape (n,), values in ``range(n_components)``
    """
    X = np.asarray(X, dtype=np.float64)
    weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    candidates = np.flatnonzero(weights > 0)
    if candidates.size > max_rows:
        candidates = np.sort(random_state.choice(candidates, size=max_rows, replace=False))
    Z = X[candidates]
    variances = np.average((Z - np.average(Z, axis=0, weights=weights[candidates])) ** 2, axis=0, weights=weights[candidates])
    # Constant features get the regularisation of the others (or 1 when all are constant).
    variances = np.where(variances > 0, variances, variances.max() if variances.max() > 0 else 1.0)
    regulariser = np.diag(REGULARISATION * variances)
    group_of_row = _ward_groups(Z, min(n_groups, candidates.size), n_components)
    group_labels = _merge_vvv(Z, weights[candidates], group_of_row, n_components, regulariser)
    subset_labels = group_labels[group_of_row]
    labels = np.empty(X.shape[0], dtype=np.intp)
    outside = np.ones(X.shape[0], dtype=bool)
    outside[candidates] = False
    if outside.any():
        labels[outside] = _classify(X[outside], Z, weights[candidates], subset_labels, n_components, regulariser)
    labels[candidates] = subset_labels
    return labels


def _ward_groups(Z: np.ndarray, n_groups: int, n_components: int) -> np.ndarray:
    """Group index (0-based) of each row after Ward's merges down to ``n_groups`` groups."""
    n_rows = Z.shape[0]
    if n_rows <= n_groups:
        return np.arange(n_rows)
    tree = linkage(Z, method="ward")
    groups = fcluster(tree, t=max(n_groups, n_components), criterion="maxclust")
    return np.unique(groups, return_inverse=True)[1]


def _merge_vvv(
    Z: np.ndarray, weights: np.ndarray, group_of_row: np.ndarray, n_components: int, regulariser: np.ndarray
) -> np.ndarray:
    """Merge groups by the VVV criterion until ``n_components`` remain; label per group."""
    n_groups, n_features = int(group_of_row.max()) + 1, Z.shape[1]
    counts = np.bincount(group_of_row, weights=weights, minlength=n_groups)
    means = np.stack([np.bincount(group_of_row, weights=weights * Z[:, j], minlength=n_groups) for j in range(n_features)], axis=1)
    means /= counts[:, None]
    centred = Z - means[group_of_row]
    scatter = np.zeros((n_groups, n_features, n_features))
    np.add.at(scatter, group_of_row, weights[:, None, None] * centred[:, :, None] * centred[:, None, :])
    def cost(count, scatter_):
        return count * np.linalg.slogdet(scatter_ / count[..., None, None] + regulariser)[1]

    def merged(a, b):
        """Weight, mean and scatter of groups a (scalar) and b (array) merged."""
        count = counts[a] + counts[b]
        delta = means[b] - means[a]
        between = (counts[a] * counts[b] / count)[:, None, None] * delta[:, :, None] * delta[:, None, :]
        return count, means[a] + delta * (counts[b] / count)[:, None], scatter[a] + scatter[b] + between

    own_cost = cost(counts, scatter)
    rise = np.full((n_groups, n_groups), np.inf)
    for a in range(n_groups - 1):
        others = np.arange(a + 1, n_groups)
        count, _, scatter_ab = merged(a, others)
        rise[a, others] = cost(count, scatter_ab) - own_cost[a] - own_cost[others]
    active = np.ones(n_groups, dtype=bool)
    label = np.arange(n_groups)  # group -> the group it was merged into
    for _ in range(n_groups - n_components):
        a, b = np.unravel_index(np.argmin(rise), rise.shape)
        count, mean, scatter_ab = merged(a, np.array([b]))
        counts[a], means[a], scatter[a] = count[0], mean[0], scatter_ab[0]
        own_cost[a] = cost(counts[a : a + 1], scatter[a : a + 1])[0]
        active[b] = False
        label[label == b] = a
        rise[b, :] = rise[:, b] = np.inf
        others = np.flatnonzero(active)
        others = others[others != a]
        if others.size:
            count, _, scatter_ab = merged(a, others)
            rises = cost(count, scatter_ab) - own_cost[a] - own_cost[others]
            rise[np.minimum(a, others), np.maximum(a, others)] = rises
    return np.unique(label, return_inverse=True)[1]


def _classify(X_outside, Z, weights, labels, n_components, regulariser) -> np.ndarray:
    """Most probable group of rows outside the subset, under the groups' regularised Gaussians."""
    log_priors, means, factors, log_dets = [], [], [], []
    for k in range(n_components):
        rows, w = Z[labels == k], weights[labels == k]
        mean = np.average(rows, axis=0, weights=w)
        centred = rows - mean
        covariance = (w[:, None] * centred).T @ centred / w.sum() + regulariser
        factor = np.linalg.cholesky(covariance)
        log_priors.append(np.log(w.sum()))
        means.append(mean)
        factors.append(factor)
        log_dets.append(2 * np.log(np.diag(factor)).sum())
    result = np.empty(X_outside.shape[0], dtype=np.intp)
    for start in range(0, X_outside.shape[0], _CHUNK_ROWS):
        rows = X_outside[start : start + _CHUNK_ROWS]
        scores = np.stack(
            [
                log_priors[k] - 0.5 * log_dets[k]
                - 0.5 * np.sum(np.linalg.solve(factors[k], (rows - means[k]).T) ** 2, axis=0)
                for k in range(n_components)
            ],
            axis=1,
        )
        result[start : start + _CHUNK_ROWS] = np.argmax(scores, axis=1)
    return result
