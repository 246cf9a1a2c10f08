"""Plots of fitted mixtures: clusters, ellipses, density contours, pair plots, BIC curves, convergence, regression.

Each plot has a pure ``*_data`` function (numpy only, tested numerically) and
a drawing function. matplotlib is imported only inside the drawing functions;
``import gaussmix`` never loads it.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .estimator import GaussianMixture
from .io import atomic_write

#: features shown in a pair plot when the data have more
MAX_PAIR_FEATURES = 4
SIGMA_LEVELS = (1.0, 2.0)


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install gaussmix[plot]") from None
    return matplotlib


# ---------------------------------------------------------------- pure data
def ellipse_axes(covariance: np.ndarray, n_sigma: float = 1.0) -> tuple[np.ndarray, float]:
    """Half-axis lengths and orientation of the ``n_sigma`` ellipse of a 2x2 covariance.

    Returns
    -------
    half_lengths : ndarray of shape (2,)
        ``n_sigma * sqrt(eigenvalue)``, largest first.
    angle : float
        Angle in degrees of the major axis from the x axis.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = np.clip(eigenvalues[order], 0, None), eigenvectors[:, order]
    angle = math.degrees(math.atan2(eigenvectors[1, 0], eigenvectors[0, 0]))
    return n_sigma * np.sqrt(eigenvalues), angle


def ellipse_points(mean: np.ndarray, covariance: np.ndarray, n_sigma: float = 1.0, n_points: int = 100) -> np.ndarray:
    """Points of shape (n_points, 2) on the ellipse ``(x - mean)^T Sigma^-1 (x - mean) = n_sigma^2``."""
    half_lengths, angle = ellipse_axes(covariance, n_sigma)
    t = np.linspace(0, 2 * np.pi, n_points)
    theta = math.radians(angle)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    circle = np.column_stack([half_lengths[0] * np.cos(t), half_lengths[1] * np.sin(t)])
    return np.asarray(mean, dtype=np.float64) + circle @ rotation.T


#: RGBA of the rows a noise component claims (gaussmix.noise)
NOISE_COLOUR = (0.6, 0.6, 0.6, 1.0)


def project(model: GaussianMixture, dims: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mixture's marginal on features ``dims``: weights (K,), means (K, d), covariances (K, d, d)."""
    dims = list(dims)
    dense = np.asarray(model._fitted_params().dense_covariances(), dtype=np.float64)
    return (
        np.asarray(model.weights_, dtype=np.float64),
        np.asarray(model.means_, dtype=np.float64)[:, dims],
        dense[:, dims][:, :, dims],
    )


def marginal_log_density(points: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    """Log-density of a Gaussian mixture at ``points`` of shape (n, d); returns shape (n,)."""
    d = means.shape[1]
    terms = []
    for weight, mean, covariance in zip(weights, means, covariances):
        factor = np.linalg.cholesky(covariance)
        whitened = np.linalg.solve(factor, (points - mean).T)
        log_det = 2 * np.sum(np.log(np.diag(factor)))
        terms.append(math.log(weight) - 0.5 * (d * math.log(2 * math.pi) + log_det + np.sum(whitened**2, axis=0)))
    stacked = np.stack(terms, axis=1)
    top = stacked.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(stacked - top).sum(axis=1, keepdims=True)))[:, 0]


def plot_limits(means: np.ndarray, covariances: np.ndarray, X: Optional[np.ndarray] = None,
                margin: float = 0.05) -> np.ndarray:
    """Axis limits of shape (d, 2) covering the data (if any) and every 2-sigma ellipse, plus a margin."""
    spread = 2.0 * np.sqrt(np.einsum("kii->ki", covariances))
    low, high = (means - spread).min(axis=0), (means + spread).max(axis=0)
    if X is not None and len(X):
        low, high = np.minimum(low, X.min(axis=0)), np.maximum(high, X.max(axis=0))
    pad = margin * np.where(high > low, high - low, 1.0)
    return np.column_stack([low - pad, high + pad])


def density_grid(model: GaussianMixture, dims: Sequence[int], limits: np.ndarray, n: int = 120):
    """The marginal log-density on an n x n grid over ``limits`` (shape (2, 2)) of features ``dims``.

    Returns
    -------
    xx, yy : ndarray of shape (n, n)
    log_density : ndarray of shape (n, n)
    """
    xx, yy = np.meshgrid(np.linspace(*limits[0], n), np.linspace(*limits[1], n))
    weights, means, covariances = project(model, dims)
    values = marginal_log_density(np.column_stack([xx.ravel(), yy.ravel()]), weights, means, covariances)
    return xx, yy, values.reshape(xx.shape)


def point_alpha(responsibilities: np.ndarray, floor: float = 0.15) -> np.ndarray:
    """Opacity of each point from its largest responsibility: 1/K (ambiguous) -> floor, 1 -> 1."""
    K = responsibilities.shape[1]
    top = responsibilities.max(axis=1)
    if K == 1:
        return np.ones_like(top)
    certainty = (top - 1.0 / K) / (1.0 - 1.0 / K)
    return floor + (1 - floor) * np.clip(certainty, 0, 1)


def criterion_curves(selection: dict) -> tuple[dict, tuple[int, str, float]]:
    """Per covariance type, the component counts and criterion values of successful fits.

    Parameters
    ----------
    selection : dict
        :meth:`gaussmix.SelectionResult.to_dict` output.

    Returns
    -------
    curves : dict
        ``covariance_type -> (ks, values)`` (arrays, failed fits left out).
    best : tuple
        ``(n_components, covariance_type, value)`` of the chosen fit.
    """
    criterion = selection["criterion"]
    curves: dict[str, tuple[list, list]] = {}
    for row in selection["rows"]:
        ks, values = curves.setdefault(row["covariance_type"], ([], []))
        if row.get(criterion) is not None:
            ks.append(row["n_components"])
            values.append(row[criterion])
    best = selection["best"]
    arrays = {name: (np.asarray(ks), np.asarray(values)) for name, (ks, values) in curves.items()}
    return arrays, (best["n_components"], best["covariance_type"], best[criterion])


def criterion_ylim(curves: dict, best_value: float, quantile: float = 0.5) -> tuple[float, float]:
    """A y-range that shows the differences near the optimum.

    Poor fits (e.g. spherical or K=1, hundreds of units above the rest) would
    squash the interesting part of the plot; the range spans from the best
    value up to the ``quantile`` of the values' distance from it, at least a
    few units.
    """
    values = np.concatenate([v for _, v in curves.values() if len(v)]) if curves else np.array([best_value])
    span = np.quantile(values - best_value, quantile) if len(values) > 1 else 1.0
    span = max(float(span), 4.0)
    return best_value - 0.08 * span, best_value + span


# ---------------------------------------------------------------- drawing
def draw_clusters(ax: Any, model: GaussianMixture, X: Optional[np.ndarray] = None, dims: Sequence[int] = (0, 1),
                  names: Optional[Sequence[str]] = None, contours: bool = True, limits: Optional[np.ndarray] = None) -> None:
    """Points coloured by label (alpha = responsibility), means, 1/2-sigma ellipses and density contours."""
    dims = list(dims)
    weights, means, covariances = project(model, dims)
    colours = _colours(model.n_components)
    data = None if X is None else np.asarray(X, dtype=np.float64)[:, dims]
    if limits is None:
        limits = plot_limits(means, covariances, data)
    if contours:
        xx, yy, log_density = density_grid(model, dims, limits)
        levels = np.quantile(log_density, np.linspace(0.55, 0.995, 8))
        ax.contour(xx, yy, log_density, levels=np.unique(levels), colors="0.55", linewidths=0.6,
                   linestyles="solid", zorder=1)
    if X is not None:
        with warnings.catch_warnings():
            # X is a plain array here; the model may carry feature names from a table.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            resp = model.predict_proba(np.asarray(X, dtype=model.means_.dtype))
        labels = resp.argmax(axis=1)
        # a noise component's rows (its column is last) in grey
        palette = np.vstack([colours, NOISE_COLOUR]) if resp.shape[1] > model.n_components else colours
        point_colours = palette[labels].copy()
        point_colours[:, 3] = point_alpha(resp)
        ax.scatter(data[:, 0], data[:, 1], c=point_colours, s=12, edgecolors="none", zorder=2)
    for k in range(model.n_components):
        for n_sigma, style in zip(SIGMA_LEVELS, ("-", "--")):
            outline = ellipse_points(means[k], covariances[k], n_sigma)
            ax.plot(outline[:, 0], outline[:, 1], style, color=colours[k][:3], linewidth=1.4, zorder=3)
        ax.plot(*means[k], marker="X", markersize=9, color=colours[k][:3], markeredgecolor="black", zorder=4)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    if names is not None:
        ax.set_xlabel(names[dims[0]])
        ax.set_ylabel(names[dims[1]])


def draw_pairs(figure: Any, model: GaussianMixture, X: Optional[np.ndarray] = None,
               names: Optional[Sequence[str]] = None, features: Optional[Sequence[int]] = None) -> None:
    """A grid of pairwise cluster plots (histograms of the data on the diagonal)."""
    features = list(features if features is not None else range(min(model.means_.shape[1], MAX_PAIR_FEATURES)))
    names = list(names) if names is not None else [f"x{j}" for j in range(model.means_.shape[1])]
    d = len(features)
    axes = figure.subplots(d, d, squeeze=False)
    _, means, covariances = project(model, features)
    limits = plot_limits(means, covariances, None if X is None else np.asarray(X, dtype=np.float64)[:, features])
    for i, row_feature in enumerate(features):
        for j, column_feature in enumerate(features):
            ax = axes[i, j]
            if i == j:
                _draw_marginal(ax, model, X, row_feature, limits[i])
                ax.set_yticks([])
            else:
                draw_clusters(ax, model, X, dims=(column_feature, row_feature), contours=False,
                              limits=limits[[j, i]])
            if i == d - 1:
                ax.set_xlabel(names[column_feature])
            else:
                ax.set_xticklabels([])
            # The first scatter panel of each row carries its y scale (row 0's is at column 1).
            first_scatter = 1 if i == 0 else 0
            if j == first_scatter:
                ax.set_ylabel(names[row_feature])
            elif i != j:
                ax.set_yticklabels([])


def draw_criterion(ax: Any, selection: dict) -> None:
    """The criterion against K, one line per covariance type, the chosen model circled."""
    curves, (best_k, best_type, best_value) = criterion_curves(selection)
    low, high = criterion_ylim(curves, best_value)
    colours = _colours(len(curves))
    markers = "osD^vPX*"
    for index, (name, (ks, values)) in enumerate(curves.items()):
        off_scale = len(values) and bool(np.all(values > high))
        # 14 mclust structures outnumber any palette: vary marker and dash too.
        ax.plot(ks, values, marker=markers[index % len(markers)], markersize=3.5, linewidth=1.2,
                color=colours[index][:3], linestyle="-" if index < 10 else "--",
                label=f"{name} (above the range)" if off_scale else name)
    ax.plot([best_k], [best_value], marker="o", markersize=13, markerfacecolor="none", markeredgecolor="black",
            markeredgewidth=1.5, linestyle="none", label=f"chosen: K={best_k} {best_type}")
    criterion = selection["criterion"].upper()
    ax.set_ylim(low, high)
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{criterion} (lower is better)")
    ax.set_title(f"{criterion} by covariance type")
    all_ks = sorted({int(k) for ks, _ in curves.values() for k in ks})
    if all_ks:
        ax.set_xticks(all_ks)
    if len(curves) > 5:  # a long legend goes beside the axes, not over the curves
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    else:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def draw_convergence(ax: Any, traces: Sequence[Sequence[float]]) -> None:
    """Mean log-likelihood per EM iteration, one line per restart (the kept one thicker)."""
    best = int(np.argmax([trace[-1] if len(trace) else -np.inf for trace in traces])) if traces else -1
    for index, trace in enumerate(traces):
        if not len(trace):
            continue
        iterations = np.arange(1, len(trace) + 1)
        ax.plot(iterations, trace, linewidth=2.2 if index == best else 1.0,
                label=f"restart {index + 1}" + (" (kept)" if index == best else ""))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("mean log-likelihood")
    ax.set_title("convergence")
    finals = [trace[-1] for trace in traces if len(trace)]
    starts = [trace[min(1, len(trace) - 1)] for trace in traces if len(trace)]
    if finals:
        # Skip the first iteration's value (far below) so the approach to the optimum shows.
        low, high = min(starts + finals), max(finals)
        pad = 0.05 * max(high - low, 1e-3)
        ax.set_ylim(low - pad, high + pad)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def plot_model(model: GaussianMixture, X: Optional[np.ndarray] = None, *, selection: Optional[dict] = None,
               path: Optional[Any] = None, names: Optional[Sequence[str]] = None,
               features: Optional[Sequence[int]] = None) -> Any:
    """One figure: clusters (or a pair-plot grid for D > 2) above the criterion curve and convergence.

    Parameters
    ----------
    model : GaussianMixture
    X : ndarray of shape (n, D), optional
        Data to scatter.
    selection : dict, optional
        ``SelectionResult.to_dict()``; without it the criterion panel is left out.
    path : str or path-like, optional
        Where to save the figure (format from the suffix), written atomically.
    names : sequence of str, optional
        Feature names (default: the model's, else x0, x1, ...).
    features : sequence of int, optional
        Features of the pair plot (default: the first four).

    Returns
    -------
    matplotlib.figure.Figure
    """
    _matplotlib()
    from matplotlib.figure import Figure

    if names is None:
        fitted = getattr(model, "feature_names_in_", None)
        names = [str(n) for n in fitted] if fitted is not None else [f"x{j}" for j in range(model.means_.shape[1])]
    n_features = model.means_.shape[1]
    figure = Figure(figsize=(11, 11 if n_features > 2 else 10), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[1.8, 1])
    if n_features == 1:
        _draw_one_dimension(top.subplots(), model, X, names[0])
    elif n_features == 2:
        draw_clusters(top.subplots(), model, X, names=names)
    else:
        draw_pairs(top, model, X, names, features)
    top.suptitle(f"K={model.n_components}, covariance {model.covariance_type!r}")
    panels = bottom.subplots(1, 2 if selection else 1, squeeze=False,
                             width_ratios=[1.6, 1] if selection else None)[0]
    if selection:
        draw_criterion(panels[0], selection)
    draw_convergence(panels[-1], getattr(model, "lower_bounds_per_init_", [model.lower_bounds_]))
    if path is not None:
        _save_figure(figure, path)
    return figure


def _draw_marginal(ax: Any, model: GaussianMixture, X: Optional[np.ndarray], feature: int,
                   limits: Optional[np.ndarray] = None) -> None:
    """Histogram of one feature (if data) under the mixture's marginal density of it."""
    weights, means, covariances = project(model, [feature])
    column = None if X is None else np.asarray(X, dtype=np.float64)[:, [feature]]
    if limits is None:
        limits = plot_limits(means, covariances, column)[0]
    grid = np.linspace(*limits, 400)[:, None]
    if column is not None:
        ax.hist(column[:, 0], bins=40, range=tuple(limits), density=True, color="0.75")
    ax.plot(grid[:, 0], np.exp(marginal_log_density(grid, weights, means, covariances)), color="black")
    ax.set_xlim(*limits)


def _draw_one_dimension(ax: Any, model: GaussianMixture, X: Optional[np.ndarray], name: str) -> None:
    _draw_marginal(ax, model, X, 0)
    ax.set_xlabel(name)
    ax.set_ylabel("density")


def _colours(n: int) -> np.ndarray:
    from matplotlib import colormaps

    palette = colormaps["tab10" if n <= 10 else "tab20"]
    return np.array([palette(k % palette.N) for k in range(n)])


def check_image_path(path: Any) -> str:
    """The image format of ``path`` (from its suffix, default png), if matplotlib can write it.

    Raises
    ------
    ImportError
        Without matplotlib.
    ValueError
        For a suffix matplotlib cannot write; the message lists those it can.
    """
    _matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(path).suffix.lower().lstrip(".") or "png"
    supported = FigureCanvasBase.get_supported_filetypes()
    if suffix not in supported:
        raise ValueError(f"cannot write a .{suffix} image; use one of: " + ", ".join(f".{s}" for s in sorted(supported)))
    return suffix


def _save_figure(figure: Any, path: Any) -> None:
    suffix = check_image_path(path)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format=suffix, dpi=110)


# ---------------------------------------------------------------- regression
def _one_input_regressor(estimator: Any, target: Any, input: Any) -> tuple[Any, int]:
    """A one-input :class:`~gaussmix.GaussianMixtureRegressor` from ``estimator``, and the output column to show."""
    from .regression import GaussianMixtureRegressor

    if isinstance(estimator, GaussianMixture):
        n_features = estimator.means_.shape[1]
        if (target is None or input is None) and n_features != 2:
            raise ValueError(f"the mixture has {n_features} features: say which to plot, e.g. target='y', input='x'")
        estimator = GaussianMixtureRegressor.from_mixture(
            estimator, [1 if target is None else target], None if input is None else [input]
        )
        target = None
    if not isinstance(estimator, GaussianMixtureRegressor):
        raise TypeError(f"plot_regression needs a GaussianMixtureRegressor or a GaussianMixture, got {type(estimator).__name__}")
    if estimator.n_features_in_ != 1:
        raise ValueError(
            f"the regressor has {estimator.n_features_in_} inputs; the plot shows one: build one with "
            "GaussianMixtureRegressor.from_mixture(mixture, targets=..., inputs=[one feature])"
        )
    names = _names_of(estimator, estimator.target_features_)
    if target is None:
        column = 0
    elif isinstance(target, str):
        if target not in names:
            raise ValueError(f"unknown target {target!r}; the regressor's targets are: {', '.join(names)}")
        column = names.index(target)
    else:
        column = int(target)
        if not 0 <= column < len(names):
            raise ValueError(f"target {column} is out of range for {len(names)} output(s); use 0..{len(names) - 1}")
    return estimator, column


def _names_of(regressor: Any, dims: Sequence[int]) -> list[str]:
    """Names of the mixture's features ``dims`` (x0, x1, ... without names)."""
    names = getattr(regressor.mixture_, "feature_names_in_", None)
    return [f"x{d}" if names is None else str(names[d]) for d in dims]


def regression_data(estimator: Any, X: Optional[Any] = None, *, target: Any = None, input: Any = None,
                    n_points: int = 200, n_sigma: float = 2.0) -> dict:
    """Conditional mean and ``+-n_sigma`` band of a one-input regression on a grid.

    Parameters
    ----------
    estimator : GaussianMixtureRegressor or GaussianMixture
        A regressor with one input, or a fitted mixture (then ``target`` and
        ``input`` name its features; for two features they default to 1 and 0).
    X : array-like of shape (n,) or (n, 1), optional
        Input values that set the grid's range; default: the input's mixture
        marginal, its means +- 3 standard deviations.
    target : int or str, optional
        For a multi-output regressor, which output (default the first); for a
        mixture, which feature.
    input : int or str, optional
        For a mixture: the input feature.
    n_points : int
    n_sigma : float

    Returns
    -------
    dict
        ``grid``, ``mean``, ``lower``, ``upper`` (arrays of shape (n_points,)),
        ``xlabel`` and ``ylabel`` (feature names).
    """
    regressor, column = _one_input_regressor(estimator, target, input)
    if X is not None:
        values = np.asarray(X, dtype=np.float64).reshape(-1)
        low, high = float(values.min()), float(values.max())
        pad = 0.05 * (high - low or 1.0)
        low, high = low - pad, high + pad
    else:
        marginal = regressor.mixture_.marginal(regressor.input_features_)
        means = np.asarray(marginal.means_, dtype=np.float64)[:, 0]
        deviations = np.sqrt(np.asarray(marginal._fitted_params().dense_covariances(), dtype=np.float64)[:, 0, 0])
        low, high = float(np.min(means - 3 * deviations)), float(np.max(means + 3 * deviations))
    grid = np.linspace(low, high, n_points)
    from .conditioning import Conditioner

    # the grid has no column names: condition the parameters directly, not through predict's name check
    params = regressor.mixture_._fitted_params(np.float64)
    conditional = Conditioner(params, regressor.input_features_, regressor.target_features_)(grid[:, None])
    mean, std = conditional.mean()[:, column], conditional.std()[:, column]
    return {
        "grid": grid, "mean": mean, "lower": mean - n_sigma * std, "upper": mean + n_sigma * std,
        "xlabel": _names_of(regressor, regressor.input_features_)[0],
        "ylabel": _names_of(regressor, regressor.target_features_)[column],
    }


def plot_regression(estimator: Any, X: Optional[Any] = None, y: Optional[Any] = None, *, target: Any = None,
                    input: Any = None, n_sigma: float = 2.0, n_points: int = 200, ax: Any = None,
                    path: Optional[Any] = None) -> Any:
    """The conditional mean ``E[y | x]`` and a ``+-n_sigma`` band of a one-input regression, with the data.

    The band is the conditional mixture's standard deviation (within and
    between components); where ``p(y | x)`` is multimodal the mean may run
    between the branches of the data, and the band covers both.

    Parameters
    ----------
    estimator : GaussianMixtureRegressor or GaussianMixture
        See :func:`regression_data`.
    X : array-like of shape (n,) or (n, 1), optional
        Inputs of the data to scatter (they also set the grid's range).
    y : array-like of shape (n,), optional
        Their targets.
    target, input, n_sigma, n_points
        See :func:`regression_data`.
    ax : matplotlib Axes, optional
        Draw here; default: a new figure.
    path : str or path-like, optional
        Save the figure here (format from the suffix), written atomically.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _matplotlib()
    from matplotlib.figure import Figure

    data = regression_data(estimator, X, target=target, input=input, n_points=n_points, n_sigma=n_sigma)
    if ax is None:
        figure = Figure(figsize=(7, 4.5), layout="constrained")
        ax = figure.subplots()
    else:
        figure = ax.figure
    if X is not None and y is not None:
        ax.scatter(np.asarray(X, dtype=np.float64).reshape(-1), np.asarray(y, dtype=np.float64).reshape(-1),
                   s=6, color="0.6", label="data")
    ax.fill_between(data["grid"], data["lower"], data["upper"], color="C0", alpha=0.25, label=f"±{n_sigma:g}σ")
    ax.plot(data["grid"], data["mean"], color="C0", label="E[y | x]")
    ax.set_xlabel(data["xlabel"])
    ax.set_ylabel(data["ylabel"])
    ax.legend(fontsize=8)
    if path is not None:
        _save_figure(figure, path)
    return figure
