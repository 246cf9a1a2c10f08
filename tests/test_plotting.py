"""Plot data checked against eigen-decompositions and scipy; figures rendered with Agg."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gaussmix import GaussianMixture, select
from gaussmix.plotting import (
    criterion_curves,
    criterion_ylim,
    density_grid,
    ellipse_axes,
    ellipse_points,
    marginal_log_density,
    plot_limits,
    plot_model,
    point_alpha,
    project,
)

from .conftest import make_blobs

pytest.importorskip("matplotlib")


def random_covariance(seed, d=2):
    A = np.random.RandomState(seed).normal(size=(d, d))
    return A @ A.T + 0.1 * np.eye(d)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_sigma", [1.0, 2.0])
def test_ellipse_axes_are_the_eigen_decomposition(seed, n_sigma):
    covariance = random_covariance(seed)
    half_lengths, angle = ellipse_axes(covariance, n_sigma)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    assert np.allclose((half_lengths / n_sigma) ** 2, eigenvalues[::-1])
    direction = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    assert abs(direction @ eigenvectors[:, -1]) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(3))
def test_ellipse_points_lie_at_the_mahalanobis_radius(seed):
    covariance, mean = random_covariance(seed), np.array([3.0, -1.0])
    points = ellipse_points(mean, covariance, n_sigma=2.0)
    diff = points - mean
    mahalanobis = np.einsum("ni,ni->n", diff, np.linalg.solve(covariance, diff.T).T)
    assert np.allclose(mahalanobis, 4.0)
    axis_aligned = ellipse_points([0, 0], np.diag([4.0, 1.0]), 1.0)
    assert np.allclose(np.abs(axis_aligned).max(axis=0), [2.0, 1.0], atol=1e-3)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_projection_is_the_marginal_mixture(covariance_type):
    X, _ = make_blobs(n_samples=150, n_features=3, seed=1)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    weights, means, covariances = project(model, [2, 0])
    points = X[:20][:, [2, 0]]
    dense = model._fitted_params().dense_covariances()
    reference = np.log(sum(
        model.weights_[k] * multivariate_normal(model.means_[k, [2, 0]], dense[k][np.ix_([2, 0], [2, 0])]).pdf(points)
        for k in range(3)
    ))
    assert np.allclose(marginal_log_density(points, weights, means, covariances), reference)
    full = marginal_log_density(X[:20], *project(model, [0, 1, 2]))
    assert np.allclose(full, model.score_samples(X[:20]))


def test_density_grid_integrates_to_one():
    X, _ = make_blobs(n_samples=200, n_features=2, seed=2)
    model = GaussianMixture(2, random_state=0).fit(X)
    limits = plot_limits(*project(model, [0, 1])[1:], X)
    wide = np.column_stack([limits[:, 0] - 20, limits[:, 1] + 20])
    xx, yy, log_density = density_grid(model, [0, 1], wide, n=300)
    mass = np.trapezoid(np.trapezoid(np.exp(log_density), xx[0], axis=1), yy[:, 0])
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_limits_cover_data_and_two_sigma_ellipses():
    X, _ = make_blobs(n_samples=100, n_features=2, seed=3)
    model = GaussianMixture(2, random_state=0).fit(X)
    _, means, covariances = project(model, [0, 1])
    limits = plot_limits(means, covariances, X)
    assert np.all(X.min(axis=0) >= limits[:, 0]) and np.all(X.max(axis=0) <= limits[:, 1])
    for k in range(2):
        outline = ellipse_points(means[k], covariances[k], 2.0)
        assert np.all(outline.min(axis=0) >= limits[:, 0] - 1e-9)
        assert np.all(outline.max(axis=0) <= limits[:, 1] + 1e-9)


def test_point_alpha():
    resp = np.array([[0.5, 0.5], [1.0, 0.0], [0.75, 0.25]])
    assert np.allclose(point_alpha(resp, floor=0.2), [0.2, 1.0, 0.2 + 0.8 * 0.5])
    assert np.allclose(point_alpha(np.ones((3, 1))), 1.0)


def test_criterion_curves_skip_failures_and_range_shows_the_optimum():
    selection = {
        "criterion": "bic",
        "best": {"n_components": 2, "covariance_type": "full", "bic": 100.0},
        "rows": [
            {"n_components": 1, "covariance_type": "full", "bic": 180.0},
            {"n_components": 2, "covariance_type": "full", "bic": 100.0},
            {"n_components": 3, "covariance_type": "full", "bic": None},
            {"n_components": 1, "covariance_type": "spherical", "bic": 5000.0},
            {"n_components": 2, "covariance_type": "spherical", "bic": 104.0},
        ],
    }
    curves, best = criterion_curves(selection)
    assert best == (2, "full", 100.0)
    assert list(curves["full"][0]) == [1, 2] and list(curves["spherical"][1]) == [5000.0, 104.0]
    low, high = criterion_ylim(curves, 100.0)
    assert low < 100.0 < 104.0 < high < 5000.0


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("n_features, with_data", [(1, True), (2, True), (2, False), (3, True)])
def test_figures_render(tmp_path, n_features, with_data):
    X, _ = make_blobs(n_samples=120, n_features=n_features, seed=4)
    result = select(X, [1, 2], ["full", "diag"], random_state=0)
    path = tmp_path / "figure.png"
    figure = plot_model(result.best_estimator_, X if with_data else None, selection=result.to_dict(), path=path)
    assert _is_png(path)
    pair_axes = 1 if n_features < 3 else n_features**2
    assert len(figure.axes) == pair_axes + 2
    if n_features == 2:
        plot_model(result.best_estimator_, X, path=tmp_path / "no-selection.svg")
        assert (tmp_path / "no-selection.svg").read_text().lstrip().startswith("<?xml")
