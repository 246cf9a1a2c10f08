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

from ._registry import register_initializer

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
    return HierarchicalTree(X, sample_weight, random_state, max_rows, n_groups).labels(n_components)


@register_initializer("hierarchical")
def _hierarchical(X, sample_weight, n_components, random_state):
    return hierarchical_labels(X, sample_weight, n_components, random_state)


def draws_subset(sample_weight: Optional[np.ndarray], n_samples: int, max_rows: int = MAX_ROWS) -> bool:
    """Whether the agglomeration of these rows works on a random subset (and so depends on the seed)."""
    n_positive = n_samples if sample_weight is None else int(np.count_nonzero(np.asarray(sample_weight) > 0))
    return n_positive > max_rows


class HierarchicalTree:
    """The merge history of the agglomeration, built once and cut at any number of clusters.

    The greedy merges do not depend on the number of clusters wanted (as in
    mclust, the tree depends only on the data, the weights and the subset), so
    a model-selection grid builds one tree and cuts it at every K; the cut at
    K equals :func:`hierarchical_labels` for K on the same data and seed.

    Parameters
    ----------
    X : ndarray of shape (n, D)
    sample_weight : ndarray of shape (n,) or None
    random_state : numpy.random.RandomState
        Draws the subset when more than ``max_rows`` rows have positive weight.
    max_rows, n_groups : int
    """

    def __init__(
        self,
        X: np.ndarray,
        sample_weight: Optional[np.ndarray],
        random_state: np.random.RandomState,
        max_rows: int = MAX_ROWS,
        n_groups: int = N_GROUPS,
    ) -> None:
        X = np.asarray(X, dtype=np.float64)
        weights = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        candidates = np.flatnonzero(weights > 0)
        if candidates.size > max_rows:
            candidates = np.sort(random_state.choice(candidates, size=max_rows, replace=False))
        Z = X[candidates]
        variances = np.average((Z - np.average(Z, axis=0, weights=weights[candidates])) ** 2, axis=0, weights=weights[candidates])
        # Constant features get the regularisation of the others (or 1 when all are constant).
        variances = np.where(variances > 0, variances, variances.max() if variances.max() > 0 else 1.0)
        self.n_samples = X.shape[0]
        self._X, self._subset, self._subset_weights = X, candidates, weights[candidates]
        self._regulariser = np.diag(REGULARISATION * variances)
        self._n_groups = min(n_groups, candidates.size)
        # Ward's linkage is kept for K above n_groups, where it is cut at K instead.
        self._ward = linkage(Z, method="ward") if candidates.size > self._n_groups else None
        self._group_of_row = self._ward_groups(self._n_groups)
        self._merges = _vvv_merges(Z, self._subset_weights, self._group_of_row, self._regulariser)

    def labels(self, n_components: int) -> np.ndarray:
        """Cluster of every row when the tree is cut at ``n_components``: ints, shape (n,)."""
        Z = self._X[self._subset]
        if n_components > self._n_groups and self._ward is not None:
            group_of_row = self._ward_groups(n_components)
            group_labels = np.arange(int(group_of_row.max()) + 1)
        else:
            group_of_row = self._group_of_row
            group_labels = _cut(self._merges, int(group_of_row.max()) + 1, n_components)
        subset_labels = group_labels[group_of_row]
        labels = np.empty(self.n_samples, dtype=np.intp)
        outside = np.ones(self.n_samples, dtype=bool)
        outside[self._subset] = False
        if outside.any():
            labels[outside] = _classify(
                self._X[outside], Z, self._subset_weights, subset_labels, n_components, self._regulariser
            )
        labels[self._subset] = subset_labels
        return labels

    def __call__(
        self, X: np.ndarray, sample_weight: Optional[np.ndarray], n_components: int, random_state: np.random.RandomState
    ) -> np.ndarray:
        """The initialiser signature (:data:`gaussmix.init.Initializer`): the cut at ``n_components``.

        ``X`` must be the rows the tree was built on; ``sample_weight`` and
        ``random_state`` were used when building it and are ignored here.
        """
        if X.shape[0] != self.n_samples:
            raise ValueError(
                f"this hierarchical tree was built on {self.n_samples} rows, not the {X.shape[0]} given: "
                "build a HierarchicalTree on these rows, or use init_params='hierarchical'"
            )
        return self.labels(n_components)

    def _ward_groups(self, n_groups: int) -> np.ndarray:
        """Group index (0-based) of each subset row after Ward's merges down to ``n_groups`` groups."""
        if self._ward is None:
            return np.arange(self._subset.size)
        groups = fcluster(self._ward, t=n_groups, criterion="maxclust")
        return np.unique(groups, return_inverse=True)[1]


def _cut(merges: np.ndarray, n_groups: int, n_components: int) -> np.ndarray:
    """Label (0-based) of each group after the first ``n_groups - n_components`` merges."""
    label = np.arange(n_groups)  # group -> the group it was merged into
    for a, b in merges[: max(n_groups - n_components, 0)]:
        label[label == b] = a
    return np.unique(label, return_inverse=True)[1]


def _vvv_merges(Z: np.ndarray, weights: np.ndarray, group_of_row: np.ndarray, regulariser: np.ndarray) -> np.ndarray:
    """Pairs of groups (kept, absorbed) merged by the VVV criterion, in order, down to one group.

    Returns
    -------
    merges : ndarray of int, shape (n_groups - 1, 2)
    """
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
    merges = np.empty((max(n_groups - 1, 0), 2), dtype=np.intp)
    for step in range(n_groups - 1):
        a, b = np.unravel_index(np.argmin(rise), rise.shape)
        merges[step] = a, b
        count, mean, scatter_ab = merged(a, np.array([b]))
        counts[a], means[a], scatter[a] = count[0], mean[0], scatter_ab[0]
        own_cost[a] = cost(counts[a : a + 1], scatter[a : a + 1])[0]
        active[b] = False
        rise[b, :] = rise[:, b] = np.inf
        others = np.flatnonzero(active)
        others = others[others != a]
        if others.size:
            count, _, scatter_ab = merged(a, others)
            rises = cost(count, scatter_ab) - own_cost[a] - own_cost[others]
            rise[np.minimum(a, others), np.maximum(a, others)] = rises
    return merges


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
