"""Marginals and conditionals of fitted mixtures (gaussmix.conditioning, GaussianMixture.marginal/condition)."""

from __future__ import annotations

import numpy as np
import pytest

import gaussmix
from gaussmix import GaussianMixture
from gaussmix.conditioning import ConditionalMixtures

#: scikit-learn's four names and mclust's fourteen
STRUCTURES = ("full", "tied", "diag", "spherical") + gaussmix.MCLUST_COVARIANCE_TYPES

#: the covariance type of a marginal and of a conditional, by structure
PRESERVED = {
    "full": "full", "tied": "tied", "diag": "diag", "spherical": "spherical",
    "EII": "EII", "VII": "VII", "EEI": "EEI", "VEI": "VEI", "EVI": "diag", "VVI": "VVI",
    "EEE": "EEE", "VEE": "VEE", "EVE": "full", "VVE": "full", "EEV": "full", "VEV": "full",
    "EVV": "full", "VVV": "VVV",
}


def correlated_blobs(n=240, seed=0):
    """Three correlated clusters in 4-D."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [4, 1, -2, 3], [-3, 4, 2, -1]], dtype=float)
    mixing = rng.normal(size=(4, 4)) * 0.5 + np.eye(4)
    labels = rng.integers(0, 3, size=n)
    return centres[labels] + rng.normal(size=(n, 4)) @ mixing


@pytest.fixture(scope="module")
def data():
    return correlated_blobs()


@pytest.fixture(scope="module")
def fitted(data):
    return {name: GaussianMixture(3, covariance_type=name, random_state=0).fit(data) for name in STRUCTURES}


def gaussian_conditional(mean, covariance, given, free, values):
    """The textbook conditional of one Gaussian, by explicit inverses."""
    S = covariance
    gain = S[np.ix_(free, given)] @ np.linalg.inv(S[np.ix_(given, given)])
    return mean[free] + gain @ (values - mean[given]), S[np.ix_(free, free)] - gain @ S[np.ix_(given, free)]


def test_one_component_conditional_is_the_gaussian_conditional(data):
    gm = GaussianMixture(1, random_state=0).fit(data)
    values = np.array([1.5, -0.5])
    conditional = gm.condition([3, 1], values)
    mean, covariance = gaussian_conditional(gm.means_[0], gm.covariances_[0], [3, 1], [0, 2], values)
    np.testing.assert_allclose(conditional.weights_, [1.0])
    np.testing.assert_allclose(conditional.means_[0], mean, rtol=1e-12)
    np.testing.assert_allclose(conditional.covariances_[0], covariance, rtol=1e-12)
    assert conditional.covariance_type == "full"
    assert conditional.n_features_in_ == 2


@pytest.mark.parametrize("name", STRUCTURES)
def test_conditional_times_marginal_is_the_joint_density(fitted, data, name):
    gm = fitted[name]
    rows = np.random.default_rng(1).normal(size=(7, 4)) * 2 + data.mean(axis=0)
    given, free = [3, 1], [0, 2]
    joint = gm.score_samples(rows)
    # one mixture per case
    for row, expected in zip(rows, joint):
        conditional = gm.condition(given, row[given])
        total = conditional.score_samples(row[None, free])[0] + gm.marginal(given).score_samples(row[None, given])[0]
        assert total == pytest.approx(expected, abs=1e-10)
    # the batch: log p(x_F | x_G) + log p(x_G)
    batch = gm.condition(given, rows[:, given])
    np.testing.assert_allclose(batch.log_prob(rows[:, free]) + batch.given_log_density, joint, atol=1e-10)
    np.testing.assert_allclose(batch.given_log_density, gm.marginal(given).score_samples(rows[:, given]), atol=1e-12)


@pytest.mark.parametrize("name", STRUCTURES)
def test_covariance_type_is_the_preserved_structure(fitted, name):
    gm = fitted[name]
    assert gm.marginal([2, 0]).covariance_type == PRESERVED[name]
    assert gm.condition([1], [0.5]).covariance_type == PRESERVED[name]
    # and the structure's own constraint holds on the result's arrays
    for derived in (gm.marginal([0, 2, 3]), gm.condition([1], [0.5])):
        _assert_structure(derived, PRESERVED[name])


def _assert_structure(model, name):
    covariances = model.covariances_
    if name in ("EEI", "EII"):
        np.testing.assert_allclose(covariances, np.broadcast_to(covariances[0], covariances.shape), rtol=1e-12)
    elif name == "VEI":  # lambda_k A: rows proportional
        ratios = covariances / covariances[0]
        np.testing.assert_allclose(ratios, np.broadcast_to(ratios[:, :1], ratios.shape), rtol=1e-10)
    elif name == "VEE":  # lambda_k C: matrices proportional
        ratios = covariances / covariances[0]
        np.testing.assert_allclose(ratios, np.broadcast_to(ratios[:, :1, :1], ratios.shape), rtol=1e-8)
    elif name in ("tied", "EEE"):
        assert covariances.ndim == 2


@pytest.mark.parametrize("name", STRUCTURES)
def test_marginal_of_a_marginal_is_the_marginal_of_the_union(fitted, name):
    gm = fitted[name]
    twice = gm.marginal([3, 1, 0]).marginal([2, 0])
    once = gm.marginal([0, 3])
    for attribute in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(twice, attribute), getattr(once, attribute), rtol=1e-13)
    assert twice.covariance_type == once.covariance_type


@pytest.mark.parametrize("name", ["full", "tied", "diag", "VEE", "EVE", "EEI"])
def test_condition_then_marginal_commutes_with_marginal_then_condition(fitted, name):
    gm = fitted[name]
    # given feature 1 = 0.7, keep feature 3 of the rest (0, 2, 3)
    left = gm.condition([1], [0.7]).marginal([2])
    right = gm.marginal([1, 3]).condition([0], [0.7])
    for attribute in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(left, attribute), getattr(right, attribute), rtol=1e-10)


def test_weights_are_reweighted_by_the_marginal_density_of_the_given_values(fitted):
    gm = fitted["full"]
    values = gm.means_[2, [0, 1]]  # at component 2's centre
    conditional = gm.condition([0, 1], values)
    marginal = gm.marginal([0, 1])
    expected = marginal.predict_proba(values[None, :])[0]
    np.testing.assert_allclose(conditional.weights_, expected, rtol=1e-10)
    assert np.argmax(conditional.weights_) == 2


def test_batch_matches_one_case_at_a_time(fitted, data):
    gm = fitted["VEV"]
    values = data[:5][:, [2]]
    batch = gm.condition([2], values)
    assert isinstance(batch, ConditionalMixtures)
    assert batch.weights.shape == (5, 3) and batch.means.shape == (5, 3, 3) and len(batch) == 5
    for i in range(5):
        single = gm.condition([2], values[i])
        np.testing.assert_allclose(batch.weights[i], single.weights_, rtol=1e-12)
        np.testing.assert_allclose(batch.means[i], single.means_, rtol=1e-12)
        np.testing.assert_allclose(batch.covariances, single.covariances_, rtol=1e-12)


def test_batch_moments(fitted, data):
    gm = fitted["full"]
    batch = gm.condition([0], data[:4, [0]])
    covariance = batch.covariance_matrix()
    assert covariance.shape == (4, 3, 3)
    np.testing.assert_allclose(np.diagonal(covariance, axis1=1, axis2=2), batch.variance(), rtol=1e-12)
    # law of total covariance, one case by hand
    w, m, S = batch.weights[1], batch.means[1], batch.dense_covariances()
    mean = w @ m
    expected = sum(w[k] * (S[k] + np.outer(m[k] - mean, m[k] - mean)) for k in range(3))
    np.testing.assert_allclose(batch.mean()[1], mean, rtol=1e-12)
    np.testing.assert_allclose(covariance[1], expected, rtol=1e-12)
    draws = batch.sample(20000, random_state=0)
    assert draws.shape == (4, 20000, 3)
    np.testing.assert_allclose(draws.mean(axis=1), batch.mean(), atol=4 * np.max(batch.std()) / np.sqrt(20000) * 3)
    np.testing.assert_allclose(draws.std(axis=1), batch.std(), rtol=0.05)


def test_against_gmr_full_covariance(fitted, data):
    gmr = pytest.importorskip("gmr")
    gm = fitted["full"]
    reference = gmr.GMM(n_components=3, priors=gm.weights_, means=gm.means_, covariances=gm.covariances_)
    for values in (np.array([0.3, 1.2]), np.array([4.0, -1.0])):
        expected = reference.condition(np.array([1, 3]), values)
        ours = gm.condition([1, 3], values)
        np.testing.assert_allclose(ours.weights_, expected.priors, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ours.means_, expected.means, rtol=0, atol=1e-10)
        np.testing.assert_allclose(ours.covariances_, expected.covariances, rtol=0, atol=1e-10)
    rows = data[:6]
    batch = gm.condition([1, 3], rows[:, [1, 3]])
    np.testing.assert_allclose(batch.mean(), reference.predict(np.array([1, 3]), rows[:, [1, 3]]), atol=1e-10)


def test_feature_names_and_mapping(data):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(data, columns=["a", "b", "c", "d"])
    gm = GaussianMixture(2, random_state=0).fit(frame)
    conditional = gm.condition({"d": 1.0, "b": -0.5})
    assert list(conditional.feature_names_in_) == ["a", "c"]
    by_index = gm.condition([3, 1], [1.0, -0.5])
    np.testing.assert_allclose(conditional.means_, by_index.means_)
    # predictions on a DataFrame with the kept columns, without a feature-name warning
    conditional.predict(frame[["a", "c"]])
    marginal = gm.marginal(["c", "a"])
    assert list(marginal.feature_names_in_) == ["c", "a"]
    np.testing.assert_allclose(marginal.means_, gm.means_[:, [2, 0]])
    batch = gm.condition({"d": data[:3, 3]})
    assert batch.feature_names == ("a", "b", "c") and batch.mean().shape == (3, 3)


def test_derived_models_save_load_sample_predict(fitted, data, tmp_path):
    gm = fitted["VVE"]
    for derived in (gm.condition([0], [1.0]), gm.marginal([1, 2])):
        path = tmp_path / "derived.gmm"
        gaussmix.save(derived, path)
        loaded = gaussmix.load(path)
        rows = data[:10][:, [1, 2]] if derived.n_features_in_ == 2 else data[:10][:, 1:]
        np.testing.assert_array_equal(loaded.score_samples(rows), derived.score_samples(rows))
        np.testing.assert_array_equal(loaded.predict(rows), derived.predict(rows))
        assert loaded.covariance_type == derived.covariance_type == "full"
        X, labels = derived.sample(50)
        assert X.shape == (50, derived.n_features_in_) and labels.shape == (50,)


def test_far_given_values_keep_finite_weights(fitted):
    gm = fitted["full"]
    conditional = gm.condition([0], [1e3])
    assert np.all(conditional.weights_ > 0) and np.isclose(conditional.weights_.sum(), 1)
    assert np.all(np.isfinite(conditional.score_samples(np.zeros((2, 3)))))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda gm: gm.marginal(7), "out of range"),
        (lambda gm: gm.marginal([]), "no features given"),
        (lambda gm: gm.marginal([1, 1]), "more than once"),
        (lambda gm: gm.marginal("a"), "without feature names"),
        (lambda gm: gm.condition([0, 1, 2, 3], [0, 0, 0, 0]), "cannot condition on all 4 features"),
        (lambda gm: gm.condition([0, 1], [0.0]), r"values of shape \(1,\)"),
        (lambda gm: gm.condition([0], [[0.0, 1.0]]), r"values of shape \(1, 2\)"),
        (lambda gm: gm.condition([0], [np.nan]), "NaN"),
        (lambda gm: gm.condition(-5, [0.0]), "out of range"),
    ],
)
def test_user_errors_say_what_to_do(fitted, call, message):
    with pytest.raises(ValueError, match=message):
        call(fitted["full"])


def test_values_are_required(fitted):
    with pytest.raises(TypeError, match="give the values"):
        fitted["full"].condition([0])
    with pytest.raises(TypeError, match="bool"):
        fitted["full"].marginal([True])


def test_mixture_params_methods(fitted):
    params = fitted["tied"]._fitted_params()
    assert params.marginal([1]).n_features == 1
    one = params.condition([1], np.array([0.2]))
    many = params.condition([1], np.array([[0.2], [0.4]]))
    np.testing.assert_allclose(many.params(0).means, one.means)
    # tied: the conditional covariance is shared by the components
    assert one.covariances.shape == (3, 3)


# ------------------------------------------------------------------ command line
def _cli(*args):
    from click.testing import CliRunner

    from gaussmix.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def faithful_model(tmp_path_factory):
    pd = pytest.importorskip("pandas")
    from .conftest import PACKAGE_DATA

    path = tmp_path_factory.mktemp("cond") / "faithful.gmm"
    model = GaussianMixture(2, random_state=0).fit(pd.read_csv(PACKAGE_DATA / "faithful.csv"))
    gaussmix.save(model, path)
    return model, path


def test_cli_condition_prints_the_conditional_mixture(faithful_model, tmp_path):
    model, path = faithful_model
    result = _cli("condition", path, "--given", "waiting=80", "--out", tmp_path / "c.gmm", "-q")
    assert result.exit_code == 0, result.output
    expected = model.condition({"waiting": 80.0})
    assert "p(eruptions | waiting=80)" in result.output
    for k in range(2):
        assert f"{expected.means_[k, 0]:.5g}" in result.output
        assert f"{np.sqrt(expected.covariances_[k, 0, 0]):.5g}" in result.output
    saved = gaussmix.load(tmp_path / "c.gmm")
    np.testing.assert_allclose(saved.means_, expected.means_)
    as_json = _cli("condition", path, "--given", "waiting=80", "--json")
    import json

    payload = json.loads(as_json.output)
    assert payload["given"] == {"waiting": 80.0} and payload["feature_names"] == ["eruptions"]
    np.testing.assert_allclose(payload["weights"], expected.weights_)
    np.testing.assert_allclose(np.array(payload["stds"])[:, 0], np.sqrt(expected.covariances_[:, 0, 0]))


@pytest.mark.parametrize(
    "given, message",
    [
        ("waiting", "write feature=value"),
        ("speed=3", "unknown feature 'speed'"),
        ("waiting=fast", "is not a number"),
        ("waiting=80,eruptions=3", "every feature of the model is given"),
    ],
)
def test_cli_condition_errors(faithful_model, given, message):
    _, path = faithful_model
    result = _cli("condition", path, "--given", given)
    assert result.exit_code != 0
    assert message in result.output
