"""GaussianMixtureRegressor: Gaussian mixture regression as a scikit-learn regressor."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import gaussmix
from gaussmix import GaussianMixture, GaussianMixtureRegressor

from .conftest import PACKAGE_DATA, random_start_weight_check


def _expected_failures(estimator):
    if estimator.n_components == 1:
        return {}
    # With one component EM's start does not matter and this check passes (first estimator above).
    return random_start_weight_check()


@parametrize_with_checks(
    [GaussianMixtureRegressor(), GaussianMixtureRegressor(n_components=2, covariance_type="VEV")],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def linear_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 3.0 + 0.3 * rng.normal(size=n)
    return X, y


def two_branches(n=2000, seed=0):
    """y = +-sqrt(x) + noise: p(y | x) has two modes, its mean is near 0."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 4.0, size=n)
    y = rng.choice([-1.0, 1.0], size=n) * np.sqrt(x) + 0.05 * rng.normal(size=n)
    return x[:, None], y


def test_one_full_component_is_least_squares():
    X, y = linear_data()
    reg = GaussianMixtureRegressor(reg_covar=0.0).fit(X, y)
    ols = LinearRegression().fit(X, y)
    np.testing.assert_allclose(reg.predict(X), ols.predict(X), rtol=0, atol=1e-9)
    _, std = reg.predict(X, return_std=True)
    # maximum-likelihood residual variance, the same for every row
    residual = np.mean((y - ols.predict(X)) ** 2)
    np.testing.assert_allclose(std, np.sqrt(residual), rtol=1e-9)
    assert reg.score(X, y) == pytest.approx(ols.score(X, y), abs=1e-12)


def test_against_gmr():
    gmr = pytest.importorskip("gmr")
    rng = np.random.default_rng(2)
    X = rng.uniform(-3, 3, size=(600, 2))
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1], np.cos(X[:, 1])]) + 0.1 * rng.normal(size=(600, 2))
    reg = GaussianMixtureRegressor(n_components=4, random_state=0).fit(X, Y)
    gm = reg.mixture_
    reference = gmr.GMM(n_components=4, priors=gm.weights_, means=gm.means_, covariances=gm.covariances_)
    rows = rng.uniform(-3, 3, size=(50, 2))
    np.testing.assert_allclose(reg.predict(rows), reference.predict(np.array([0, 1]), rows), rtol=0, atol=1e-10)
    # and the whole conditional of one row
    conditional = reference.condition(np.array([0, 1]), rows[7])
    batch = reg.conditional(rows)
    np.testing.assert_allclose(batch.weights[7], conditional.priors, atol=1e-10)
    np.testing.assert_allclose(batch.means[7], conditional.means, atol=1e-10)
    np.testing.assert_allclose(batch.dense_covariances(), conditional.covariances, atol=1e-10)


def test_multimodal_conditional_sample_shows_both_branches_mean_lies_between():
    x, y = two_branches()
    reg = GaussianMixtureRegressor(n_components=8, random_state=0, n_init=2).fit(x, y)
    where = np.array([[1.0], [2.5], [3.5]])
    branch = np.sqrt(where[:, 0])
    draws = reg.sample_y(where, n_samples=4000, random_state=0)
    assert draws.shape == (3, 4000)
    upper = np.mean(np.abs(draws - branch[:, None]) < 0.3, axis=1)
    lower = np.mean(np.abs(draws + branch[:, None]) < 0.3, axis=1)
    assert np.all(upper > 0.3) and np.all(lower > 0.3), (upper, lower)
    # the mean lies between the branches, where there are no data (documented in predict)
    mean, std = reg.predict(where, return_std=True)
    assert np.all(np.abs(mean) < 0.25 * branch)
    assert np.all(np.mean(np.abs(draws - mean[:, None]) < 0.3, axis=1) < 0.05)
    # the standard deviation spans the two modes
    np.testing.assert_allclose(std, branch, rtol=0.15)


def test_multi_output_shapes_and_covariance():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    Y = np.column_stack([X[:, 0] + 0.2 * rng.normal(size=400), X[:, 0] - X[:, 1] + 0.2 * rng.normal(size=400)])
    reg = GaussianMixtureRegressor(n_components=3, random_state=0).fit(X, Y)
    mean, std = reg.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5, 2)
    cov = reg.predict_cov(X[:5])
    assert cov.shape == (5, 2, 2)
    np.testing.assert_allclose(cov, np.swapaxes(cov, 1, 2))
    np.testing.assert_allclose(np.diagonal(cov, axis1=1, axis2=2), std**2, rtol=1e-10)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    assert reg.sample_y(X[:5], n_samples=7).shape == (5, 2, 7)
    # a 1-D y gives 1-D predictions; predict_cov stays (n, 1, 1)
    reg1 = GaussianMixtureRegressor(n_components=2, random_state=0).fit(X, Y[:, 0])
    assert reg1.predict(X[:4]).shape == (4,)
    assert reg1.predict_cov(X[:4]).shape == (4, 1, 1)
    assert reg1.sample_y(X[:4], n_samples=3).shape == (4, 3)


def test_rows_are_independent_of_the_batch():
    X, y = two_branches(400)
    reg = GaussianMixtureRegressor(n_components=4, random_state=0).fit(X, y)
    whole = reg.predict(X[:30], return_std=True)
    for i in (0, 13, 29):
        one = reg.predict(X[i:i + 1], return_std=True)
        np.testing.assert_allclose([one[0][0], one[1][0]], [whole[0][i], whole[1][i]], rtol=1e-13)


def test_integer_sample_weight_equals_repeated_rows():
    X, y = linear_data(60)
    counts = np.random.default_rng(0).integers(0, 4, size=60)
    weighted = GaussianMixtureRegressor().fit(X, y, sample_weight=counts)
    repeated = GaussianMixtureRegressor().fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-9)


def test_pipeline_cross_val_score_and_grid_search():
    x, y = two_branches(600)
    y = np.abs(y) + 0.1 * x[:, 0]  # one branch: a regression with a good score
    pipeline = make_pipeline(StandardScaler(), GaussianMixtureRegressor(n_components=3, random_state=0))
    scores = cross_val_score(pipeline, x, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and np.all(scores > 0.8)
    search = GridSearchCV(
        GaussianMixtureRegressor(random_state=0), {"n_components": [1, 3, 5]}, cv=KFold(3, shuffle=True, random_state=0)
    ).fit(x, y)
    assert search.best_params_["n_components"] in (3, 5)  # sqrt is not linear: one component is worst
    assert search.predict(x[:3]).shape == (3,)


def test_from_mixture_equals_fit_and_marginalises_unused_features():
    X, y = linear_data()
    joint = np.column_stack([X, y])
    gm = GaussianMixture(2, random_state=0).fit(joint)
    reg = GaussianMixtureRegressor(2, random_state=0).fit(X, y)
    built = GaussianMixtureRegressor.from_mixture(gm, targets=3)
    np.testing.assert_allclose(built.predict(X), reg.predict(X), rtol=1e-12)
    assert built.get_params()["n_components"] == 2 and built.n_features_in_ == 3
    # a list of one target: 2-D predictions
    assert GaussianMixtureRegressor.from_mixture(gm, targets=[3]).predict(X[:4]).shape == (4, 1)
    # inputs: a subset; the other features are marginalised out
    partial = GaussianMixtureRegressor.from_mixture(gm, targets=3, inputs=[2, 0])
    via_marginal = GaussianMixtureRegressor.from_mixture(gm.marginal([2, 0, 3]), targets=2)
    np.testing.assert_allclose(partial.predict(X[:, [2, 0]]), via_marginal.predict(X[:, [2, 0]]), rtol=1e-12)


def test_from_mixture_by_name_and_from_selection():
    pd = pytest.importorskip("pandas")
    faithful = pd.read_csv(PACKAGE_DATA / "faithful.csv")
    result = gaussmix.select(faithful, n_components=[1, 2, 3], covariance_types=["full", "VVI"], random_state=0)
    reg = result.regressor("eruptions")
    assert list(reg.feature_names_in_) == ["waiting"]
    prediction = reg.predict(pd.DataFrame({"waiting": [50.0, 85.0]}))
    assert prediction.shape == (2,)
    assert 1.5 < prediction[0] < 2.5 and 4 < prediction[1] < 5  # short and long eruptions
    reference = GaussianMixtureRegressor.from_mixture(result.best_estimator_, targets=["eruptions"], inputs=["waiting"])
    np.testing.assert_allclose(reference.predict(pd.DataFrame({"waiting": [50.0, 85.0]}))[:, 0], prediction)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"targets": [0, 1, 2, 3]}, ValueError, "no input would be left"),
        ({"targets": 3, "inputs": [3, 0]}, ValueError, "both inputs and targets"),
        ({"targets": 9}, ValueError, "out of range"),
        ({"targets": "y"}, ValueError, "without feature names"),
    ],
)
def test_from_mixture_errors(kwargs, error, message):
    X, y = linear_data(50)
    gm = GaussianMixture(1).fit(np.column_stack([X, y]))
    with pytest.raises(error, match=message):
        GaussianMixtureRegressor.from_mixture(gm, **kwargs)


def test_sample_y_checks_n_samples():
    X, y = linear_data(50)
    reg = GaussianMixtureRegressor().fit(X, y)
    with pytest.raises(ValueError, match="positive integer"):
        reg.sample_y(X, n_samples=0)
    np.testing.assert_array_equal(reg.sample_y(X, 3, random_state=1), reg.sample_y(X, 3, random_state=1))


def test_cli_predict_target_prints_conditional_means(tmp_path):
    pd = pytest.importorskip("pandas")
    from click.testing import CliRunner

    from gaussmix.cli import cli

    faithful = pd.read_csv(PACKAGE_DATA / "faithful.csv")
    model = GaussianMixture(2, random_state=0).fit(faithful)
    gaussmix.save(model, tmp_path / "m.gmm")
    faithful.head(5).to_csv(tmp_path / "new.csv", index=False)
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "m.gmm"), str(tmp_path / "new.csv"),
                                      "--target", "eruptions"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "eruptions"
    expected = GaussianMixtureRegressor.from_mixture(model, "eruptions").predict(faithful[["waiting"]].head(5))
    np.testing.assert_allclose([float(v) for v in lines[1:]], expected, rtol=1e-8)
    # the data need only the inputs
    faithful[["waiting"]].head(5).to_csv(tmp_path / "inputs.csv", index=False)
    again = CliRunner().invoke(cli, ["predict", str(tmp_path / "m.gmm"), str(tmp_path / "inputs.csv"),
                                     "--target", "eruptions"])
    assert again.output == result.output
    wrong = CliRunner().invoke(cli, ["predict", str(tmp_path / "m.gmm"), str(tmp_path / "new.csv"), "--target", "x"])
    assert wrong.exit_code != 0 and "unknown feature 'x'" in wrong.output


def test_regression_plot_data_and_figure(tmp_path):
    from gaussmix.plotting import plot_regression, regression_data

    x, y = two_branches(500)
    reg = GaussianMixtureRegressor(n_components=4, random_state=0).fit(x, y)
    data = regression_data(reg, x, n_points=50)
    mean, std = reg.predict(data["grid"][:, None], return_std=True)
    np.testing.assert_allclose(data["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(data["upper"] - data["lower"], 4 * std, rtol=1e-12)
    assert data["grid"].min() < x.min() and data["grid"].max() > x.max()
    # a two-feature mixture: input 0, target 1, names as labels
    pd = pytest.importorskip("pandas")
    faithful = pd.read_csv(PACKAGE_DATA / "faithful.csv")
    gm = GaussianMixture(2, random_state=0).fit(faithful)
    by_mixture = regression_data(gm, n_points=20)
    assert (by_mixture["xlabel"], by_mixture["ylabel"]) == ("eruptions", "waiting")
    swapped = regression_data(gm, target="eruptions", input="waiting", n_points=20)
    assert swapped["xlabel"] == "waiting"
    with pytest.raises(ValueError, match="say which to plot"):
        regression_data(GaussianMixture(1).fit(np.random.default_rng(0).normal(size=(20, 3))))
    with pytest.raises(ValueError, match="one: build one"):
        regression_data(GaussianMixtureRegressor().fit(*linear_data(40)))
    pytest.importorskip("matplotlib")
    figure = plot_regression(reg, x, y, path=tmp_path / "reg.png")
    assert (tmp_path / "reg.png").stat().st_size > 1000
    assert len(figure.axes) == 1 and figure.axes[0].get_xlabel() == "x0"
