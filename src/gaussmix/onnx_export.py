"""Export a fitted :class:`~gaussmix.GaussianMixture` to ONNX, alone or inside a scikit-learn Pipeline.

The graph takes rows ``X`` of shape (n, D) and returns

- ``label`` (int64, shape (n,)): the most probable component, as ``predict``;
- ``probabilities`` (shape (n, K)): the responsibilities, as ``predict_proba``;
- ``score_samples`` (shape (n,)): ``log p(x)``, as ``score_samples``.

Every structure is written in one of two forms: a dense precision Cholesky
factor per component (full, tied and the dense mclust structures) or its
diagonal (diag, spherical and the diagonal mclust structures). Each component's
Mahalanobis term is taken about its own mean, and the log-density is a
log-sum-exp with the largest term subtracted first, so that rows far from every
component give large negative log-densities, not ``-inf`` or NaN.

A float32 graph takes and returns float32 but computes in float64: in float32
the whitening products of an ill-conditioned covariance (VVE, say) lose up to
~5e-6 of a log-density near 1, more than the 1e-6 it is held to; the rows are
converted exactly, so the results are the model's exact values, rounded once.

``onnx`` (and ``skl2onnx`` for pipelines) are imported only when used:
``pip install gaussmix[onnx]``.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .noise import refuse as refuse_noise

#: operator set of the standalone graph (every operator used exists since opset 11)
OPSET = 15
OUTPUT_NAMES = ("label", "probabilities", "score_samples")
#: the operator name gaussmix's estimator has in skl2onnx's registry
SKL2ONNX_ALIAS = "GaussmixGaussianMixture"
_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs onnx: pip install gaussmix[onnx]") from None
    return onnx


# ------------------------------------------------------------ the numbers
def export_dtype(model: Any, dtype: Any = None) -> np.dtype:
    """The float dtype of the graph: ``dtype``, or the fitted means' dtype when None.

    Raises
    ------
    ValueError
        For anything but float32 or float64.
    """
    if dtype is None:
        dtype = getattr(model.means_, "dtype", np.float64)
        dtype = np.float32 if "float32" in str(dtype) else np.float64
    try:
        chosen = np.dtype(dtype)
    except TypeError:
        chosen = None
    if chosen not in _FLOAT_TYPES:
        raise ValueError(f"ONNX export supports dtype float32 or float64, not {dtype!r}")
    return chosen


def mixture_constants(model: Any) -> dict:
    """The graph's constants, in float64 (a float32 model's parameters are exact in it).

    Parameters
    ----------
    model : GaussianMixture
        Fitted, of any covariance structure.

    Returns
    -------
    dict
        ``means`` (K, D); ``factors``: (K, D, D) dense precision Cholesky factors
        ``C_k`` (``(x - mu_k) C_k`` is whitened) or (K, D) per-feature inverse
        standard deviations (``diagonal`` says which); ``offsets`` (K,):
        ``log pi_k + log det C_k - D/2 log(2 pi)``, ``-inf`` for a zero weight.
    """
    params = model._fitted_params(np.float64)
    refuse_noise(params, "ONNX export")
    n_components, n_features = params.n_components, params.n_features
    covariance = params.covariance
    if hasattr(covariance, "feature_precisions"):
        # diag, spherical and mclust's diagonal structures: one inverse deviation per feature
        factors = np.sqrt(covariance.feature_precisions(params.precisions_cholesky, n_features))
        factors = np.broadcast_to(factors, (n_components, n_features))
        log_det = np.sum(np.log(factors), axis=1)
        diagonal = True
    else:
        # full, tied ((D, D): one factor shared) and mclust's dense structures
        factors = np.broadcast_to(params.precisions_cholesky, (n_components, n_features, n_features))
        log_det = np.linalg.slogdet(factors)[1]
        diagonal = False
    weights = np.asarray(params.weights, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_weights = np.where(weights > 0, np.log(np.where(weights > 0, weights, 1.0)), -np.inf)
    offsets = log_weights + log_det - 0.5 * n_features * math.log(2 * math.pi)
    return {
        "means": np.ascontiguousarray(params.means, dtype=np.float64),
        "factors": np.ascontiguousarray(factors, dtype=np.float64),
        "offsets": offsets,
        "diagonal": diagonal,
    }


# ------------------------------------------------------------ the graph
class _Builder:
    """Where the nodes go: a standalone graph, or skl2onnx's container (see :class:`_Skl2OnnxBuilder`)."""

    def constant(self, name: str, array: np.ndarray) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def node(self, op: str, inputs: list, name: str, **attributes: Any) -> str:  # pragma: no cover
        raise NotImplementedError

    def output_node(self, op: str, inputs: list, output: str, **attributes: Any) -> None:  # pragma: no cover
        raise NotImplementedError


class _StandaloneBuilder(_Builder):
    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []

    def constant(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list, name: str, **attributes: Any) -> str:
        self.output_node(op, inputs, name, **attributes)
        return name

    def output_node(self, op: str, inputs: list, output: str, **attributes: Any) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=f"{op}_{output}", **attributes))


def build_mixture_graph(builder: _Builder, X: str, dtype: np.dtype, constants: dict,
                        outputs: tuple[str, str, str]) -> None:
    """Add the nodes that score rows ``X`` (n, D) of ``dtype`` under the mixture of ``constants``.

    ``outputs`` names the label (n,), probabilities (n, K) and score_samples (n,)
    tensors; the float ones are of ``dtype``, computed in float64 (see the module's notes).
    """
    from onnx import TensorProto

    means, factors, offsets = constants["means"], constants["factors"], constants["offsets"]
    n_components, n_features = means.shape
    label, probabilities, score = outputs
    narrow = np.dtype(dtype) == np.float32
    if narrow:
        X = builder.node("Cast", [X], "gm_rows_float64", to=TensorProto.DOUBLE)
    # (n, 1, D) - (K, D): every row about every component's own mean, (n, K, D)
    rows = builder.node("Reshape", [X, builder.constant("gm_row_shape", np.array([-1, 1, n_features], np.int64))],
                        "gm_rows")
    diff = builder.node("Sub", [rows, builder.constant("gm_means", means)], "gm_diff")
    if constants["diagonal"]:
        whitened = builder.node("Mul", [diff, builder.constant("gm_factors", factors)], "gm_whitened")
        squares = builder.node("Mul", [whitened, whitened], "gm_squares")
    else:
        # batched (K, n, D) @ (K, D, D): component k's rows through its own factor
        by_component = builder.node("Transpose", [diff], "gm_by_component", perm=[1, 0, 2])
        whitened = builder.node("MatMul", [by_component, builder.constant("gm_factors", factors)], "gm_whitened")
        squares_k = builder.node("Mul", [whitened, whitened], "gm_squares_k")
        squares = builder.node("Transpose", [squares_k], "gm_squares", perm=[1, 0, 2])
    # Sums over D and K as products with ones: ReduceSum changed signature between opsets.
    mahalanobis = builder.node("MatMul", [squares, builder.constant("gm_ones_d", np.ones(n_features))],
                               "gm_mahalanobis")
    half = builder.node("Mul", [mahalanobis, builder.constant("gm_minus_half", np.array(-0.5))], "gm_half")
    log_prob = builder.node("Add", [half, builder.constant("gm_offsets", offsets)], "gm_log_prob")
    # log-sum-exp about each row's largest term: exp never overflows and far rows stay finite.
    best = builder.node("ArgMax", [log_prob], "gm_best", axis=1, keepdims=1)
    largest = builder.node("GatherElements", [log_prob, best], "gm_largest", axis=1)
    shifted = builder.node("Sub", [log_prob, largest], "gm_shifted")
    exps = builder.node("Exp", [shifted], "gm_exps")
    total = builder.node("MatMul", [exps, builder.constant("gm_ones_k", np.ones((n_components, 1)))],
                         "gm_total")
    log_total = builder.node("Log", [total], "gm_log_total")
    log_density = builder.node("Add", [largest, log_total], "gm_log_density")
    log_resp = builder.node("Sub", [shifted, log_total], "gm_log_resp")
    flat = builder.constant("gm_flat", np.array([-1], np.int64))
    if narrow:
        responsibilities = builder.node("Exp", [log_resp], "gm_responsibilities")
        builder.output_node("Cast", [responsibilities], probabilities, to=TensorProto.FLOAT)
        flat_density = builder.node("Reshape", [log_density, flat], "gm_flat_density")
        builder.output_node("Cast", [flat_density], score, to=TensorProto.FLOAT)
    else:
        builder.output_node("Exp", [log_resp], probabilities)
        builder.output_node("Reshape", [log_density, flat], score)
    builder.output_node("Reshape", [best, flat], label)


def to_onnx(model: Any, path: Any = None, dtype: Any = None) -> Any:
    """A fitted GaussianMixture as an ONNX model (saved to ``path`` when given).

    Parameters
    ----------
    model : GaussianMixture
        Fitted; any covariance structure, fitted on NumPy or torch.
    path : str or path-like, optional
        Where to write the ``.onnx`` file (atomically).
    dtype : {None, "float32", "float64"}
        The graph's float type (input ``X`` and outputs); None: the fitted means' dtype.

    Returns
    -------
    onnx.ModelProto
        Input ``X`` of shape (n, D); outputs ``label`` (int64, (n,)),
        ``probabilities`` ((n, K)) and ``score_samples`` ((n,)).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the model is not fitted.
    ValueError
        For a dtype other than float32 or float64.
    ImportError
        Without onnx installed (``pip install gaussmix[onnx]``).
    """
    from sklearn.utils.validation import check_is_fitted

    onnx = _onnx()
    from onnx import TensorProto, helper

    check_is_fitted(model, ["weights_", "means_", "precisions_cholesky_"])
    dtype = export_dtype(model, dtype)
    constants = mixture_constants(model)
    n_components, n_features = constants["means"].shape
    builder = _StandaloneBuilder()
    build_mixture_graph(builder, "X", dtype, constants, OUTPUT_NAMES)
    element = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    graph = helper.make_graph(
        builder.nodes, "gaussmix_gaussian_mixture",
        [helper.make_tensor_value_info("X", element, ["n", n_features])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("probabilities", element, ["n", n_components]),
            helper.make_tensor_value_info("score_samples", element, ["n"]),
        ],
        builder.initializers,
    )
    from . import __version__

    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="gaussmix", producer_version=__version__)
    # ir_version 8 (onnx 1.10+): readable by onnxruntime releases older than the onnx that wrote it
    proto.ir_version = min(proto.ir_version, 8)
    onnx.checker.check_model(proto)
    if path is not None:
        from .io import atomic_write

        with atomic_write(path, "wb") as handle:
            handle.write(proto.SerializeToString())
    return proto


# ------------------------------------------------------------ skl2onnx
class _Skl2OnnxBuilder(_Builder):
    """Adds the nodes to skl2onnx's container, with names unique in its scope."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def constant(self, name: str, array: np.ndarray) -> str:
        from onnx import helper

        array = np.asarray(array)
        unique = self.scope.get_unique_variable_name(name)
        element = helper.np_dtype_to_tensor_dtype(array.dtype)
        self.container.add_initializer(unique, element, list(array.shape), array.ravel().tolist())
        return unique

    def node(self, op: str, inputs: list, name: str, **attributes: Any) -> str:
        unique = self.scope.get_unique_variable_name(name)
        self.output_node(op, inputs, unique, **attributes)
        return unique

    def output_node(self, op: str, inputs: list, output: str, **attributes: Any) -> None:
        self.container.add_node(op, inputs, [output], name=self.scope.get_unique_operator_name(op), **attributes)


def _operator_dtype(operator: Any) -> np.dtype:
    from skl2onnx.common.data_types import DoubleTensorType

    return np.dtype(np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) else np.float32)


def _skl2onnx_parser(scope: Any, model: Any, inputs: list, custom_parsers: Optional[dict] = None) -> list:
    """Declare the three outputs (skl2onnx's default parser knows only classifiers and regressors)."""
    from skl2onnx.common.data_types import Int64TensorType

    operator = scope.declare_local_operator(SKL2ONNX_ALIAS, model)
    operator.inputs = inputs
    float_type = type(inputs[0].type)
    for name, variable_type in zip(OUTPUT_NAMES, (Int64TensorType(), float_type(), float_type())):
        operator.outputs.append(scope.declare_local_variable(name, variable_type))
    return operator.outputs


def _skl2onnx_shapes(operator: Any) -> None:
    """label (n,), probabilities (n, K), score_samples (n,) for an input of (n, D)."""
    from skl2onnx.common.data_types import Int64TensorType

    n_rows = operator.inputs[0].get_first_dimension()
    float_type = type(operator.inputs[0].type)
    label, probabilities, score = operator.outputs
    label.type = Int64TensorType([n_rows])
    probabilities.type = float_type([n_rows, int(operator.raw_operator.n_components)])
    score.type = float_type([n_rows])


def _skl2onnx_converter(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    outputs = tuple(variable.full_name for variable in operator.outputs)
    build_mixture_graph(_Skl2OnnxBuilder(scope, container), operator.inputs[0].full_name, _operator_dtype(operator),
                        mixture_constants(model), outputs)


def register_skl2onnx() -> None:
    """Teach skl2onnx to convert gaussmix's GaussianMixture (also inside a Pipeline).

    After this, ``skl2onnx.to_onnx(pipeline, X[:1])`` converts a pipeline that
    ends in a gaussmix mixture; its outputs are ``label``, ``probabilities``
    and ``score_samples`` as in :func:`to_onnx`. Calling it again is harmless.

    Raises
    ------
    ImportError
        Without skl2onnx installed (``pip install gaussmix[onnx]``).
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError:
        raise ImportError("converting pipelines needs skl2onnx: pip install gaussmix[onnx]") from None
    from .estimator import GaussianMixture

    update_registered_converter(
        GaussianMixture, SKL2ONNX_ALIAS, _skl2onnx_shapes, _skl2onnx_converter, parser=_skl2onnx_parser,
    )
