"""Initialisers: starting responsibilities for EM, found through a registry.

Every initialiser gives each row a starting responsibility (hard labels or soft
weights); the starting parameters are then one M-step away, computed with the
same statistics code as EM itself. Hard-label starts (k-means, k-means++,
random_from_data) assign *every* row to its nearest centre, so every
covariance structure starts from a within-cluster scatter, never from a
covariance built on K single rows.

=================  ==============================================================
module             what
=================  ==============================================================
``kmeans``         ``"kmeans"`` (on a sample of the rows) and ``"k-means++"``
``random_starts``  ``"random"`` and ``"random_from_data"``
``hierarchical``   ``"hierarchical"``: mclust's model-based agglomerative start
``_registry``      :func:`register_initializer`, :func:`get_initializer`
``_nearest``       :func:`nearest_centre_labels`, how centre-based starts label rows
``_statistics``    the statistics of a start (:func:`initial_stats`)
``_compiled``      their compiled helpers (numba, imported on first use)
=================  ==============================================================

To add an initialiser: write ``gaussmix/init/<name>.py`` with a function of the
:data:`Initializer` signature decorated by ``@register_initializer("<name>")``
(``from ._registry import register_initializer``). Every public module of this
package is imported here, so the file is all it takes.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._nearest import MAX_COMPILED_NEAREST_WORK, nearest_centre_labels
from ._registry import Initializer, available_initializers, get_initializer, register_initializer
from ._statistics import (
    LABELLED_CHUNK_BYTES,
    MAX_COMPILED_LABELLED_FEATURES,
    assignment_stats,
    initial_stats,
    repair_thin_components,
)
from .hierarchical import HierarchicalTree, draws_subset, hierarchical_labels
from .kmeans import KMEANS_MAX_ROWS, KMEANS_MIN_ROWS, KMEANS_ROWS_PER_CLUSTER, kmeans_sample_rows

# The public modules are the initialisers': importing one registers its starts.
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "HierarchicalTree",
    "Initializer",
    "KMEANS_MAX_ROWS",
    "KMEANS_MIN_ROWS",
    "KMEANS_ROWS_PER_CLUSTER",
    "LABELLED_CHUNK_BYTES",
    "MAX_COMPILED_LABELLED_FEATURES",
    "MAX_COMPILED_NEAREST_WORK",
    "assignment_stats",
    "available_initializers",
    "draws_subset",
    "get_initializer",
    "hierarchical_labels",
    "initial_stats",
    "kmeans_sample_rows",
    "nearest_centre_labels",
    "register_initializer",
    "repair_thin_components",
]
