"""gaussmix: Gaussian mixture models fitted by Expectation-Maximisation.

``import gaussmix`` loads numpy, scipy and scikit-learn only: torch, dask and
matplotlib are imported by the modules that need them, when they are used.
"""

from .bootstrap import BootstrapLRTResult, bootstrap_lrt
from .covariance import MCLUST_COVARIANCE_TYPES, available_covariance_types, get_covariance_model
from .conditioning import ConditionalMixtures
from .estimator import GaussianMixture
from .exceptions import CollapsedComponentError
from .io import ModelFileError, load, save
from .params import MixtureParams
from .regression import GaussianMixtureRegressor
from .selection import SelectionResult, SelectionRow, select
from .stats import SuffStats

__version__ = "0.1.0"

__all__ = [
    "MCLUST_COVARIANCE_TYPES",
    "BootstrapLRTResult",
    "CollapsedComponentError",
    "ConditionalMixtures",
    "GaussianMixture",
    "GaussianMixtureRegressor",
    "MixtureParams",
    "ModelFileError",
    "SelectionResult",
    "SelectionRow",
    "SuffStats",
    "__version__",
    "available_covariance_types",
    "bootstrap_lrt",
    "get_covariance_model",
    "load",
    "save",
    "select",
]
