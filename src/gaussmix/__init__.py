"""gaussmix: Gaussian mixture models fitted by Expectation-Maximisation.

``import gaussmix`` loads numpy, scipy and scikit-learn only: torch, dask,
matplotlib and onnx are imported by the modules that need them, when they are used.
"""

from .bayesian import BayesianGaussianMixture
from .bootstrap import BootstrapLRTResult, bootstrap_lrt
from .covariance import MCLUST_COVARIANCE_TYPES, available_covariance_types, get_covariance_model
from .classifier import GaussianMixtureClassifier
from .conditioning import ConditionalMixtures
from .degeneracy import DegenerateFitWarning
from .estimator import GaussianMixture
from .exceptions import CollapsedComponentError
from .io import ModelFileError, load, save
from .onnx_export import register_skl2onnx, to_onnx
from .outliers import GaussianMixtureOutlierDetector
from .params import MixtureParams
from .priors import Prior
from .regression import GaussianMixtureRegressor
from .selection import SelectionResult, SelectionRow, select
from .stats import SuffStats

__version__ = "0.1.0"

__all__ = [
    "MCLUST_COVARIANCE_TYPES",
    "BayesianGaussianMixture",
    "BootstrapLRTResult",
    "CollapsedComponentError",
    "ConditionalMixtures",
    "DegenerateFitWarning",
    "GaussianMixture",
    "GaussianMixtureClassifier",
    "GaussianMixtureOutlierDetector",
    "GaussianMixtureRegressor",
    "MixtureParams",
    "ModelFileError",
    "Prior",
    "SelectionResult",
    "SelectionRow",
    "SuffStats",
    "__version__",
    "available_covariance_types",
    "bootstrap_lrt",
    "get_covariance_model",
    "load",
    "register_skl2onnx",
    "save",
    "select",
    "to_onnx",
]
