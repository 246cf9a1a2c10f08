"""The noise component (mclust's): a uniform density beside the Gaussians, its weight fitted by EM."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.utils._param_validation import InvalidParameterError

from gaussmix import GaussianMixture, bootstrap_lrt


def _planted(seed=0, n_features=5, n_outliers=50):
    """Two Gaussian clusters and uniform outliers over a box wider than them; the outliers' mask."""
    rng = np.random.RandomState(seed)
    X = np.concatenate([rng.normal(size=(300, n_features)), rng.normal(size=(200, n_features)) * 0.5 + 5])
    outliers = rng.uniform(X.min(axis=0) - 3, X.max(axis=0) + 3, size=(n_outliers, n_features))
    return np.concatenate([X, outliers]), np.r_[np.zeros(len(X), bool), np.ones(n_outliers, bool)]


@pytest.fixture(scope="module")
def planted():
    return _planted()


def _fit(X, sample_weight=None, **params):
    settings = dict(n_components=2, random_state=0, tol=1e-8, max_iter=2000, noise=True)
    settings.update(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(**settings).fit(X, sample_weight=sample_weight)


def _hypvol(X):
    """mclust's hypvol, written out: the smaller of the two bounding boxes' volumes."""
    coordinates = np.prod(np.ptp(X, axis=0))
    _, directions = np.linalg.eigh(np.cov(X.T))
    return min(coordinates, np.prod(np.ptp(X @ directions, axis=0)))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "EEI", "VEV", "EVE"])
def test_planted_outliers_are_caught(planted, covariance_type):
    X, outlier = planted
    model = _fit(X, covariance_type=covariance_type)
    noise = model.predict(X) == -1
    assert noise[outlier].mean() >= 0.9
    assert noise[~outlier].mean() <= 0.01
    assert model.noise_weight_ == pytest.approx(outlier.mean(), abs=0.02)
    # EM with a noise component never lowers the log-likelihood
    assert np.all(np.diff(model.lower_bounds_) > -1e-12)


@pytest.mark.parametrize("engine", ["generic", "expanded", "whitened"])
def test_every_e_step_engine_gives_the_same_fit(planted, engine):
    X, _ = planted
    reference = _fit(X, engine="auto")
    other = _fit(X, engine=engine)
    np.testing.assert_allclose(other.means_, reference.means_, rtol=0, atol=1e-7)
    assert other.noise_weight_ == pytest.approx(reference.noise_weight_, abs=1e-9)
    assert other.lower_bound_ == pytest.approx(reference.lower_bound_, abs=1e-10)


def test_em_never_lowers_the_likelihood_with_weights(faithful):
    weights = np.random.RandomState(1).randint(1, 4, size=faithful.shape[0]).astype(float)
    for covariance_type in ("full", "tied", "VVE", "EEV"):
        model = _fit(faithful, weights, n_components=3, covariance_type=covariance_type, init_params="k-means++")
        assert np.all(np.diff(model.lower_bounds_) > -1e-12), covariance_type


def test_fitted_mixture_is_a_density_with_the_noise_term(faithful):
    model = _fit(faithful, n_components=3, covariance_type="full")
    assert model.weights_.sum() + model.noise_weight_ == pytest.approx(1.0, abs=1e-12)
    assert model.noise_volume_ == pytest.approx(_hypvol(faithful), rel=1e-12)
    gaussians = [np.log(w) + multivariate_normal(m, c).logpdf(faithful)
                 for w, m, c in zip(model.weights_, model.means_, model.covariances_)]
    noise = np.full(faithful.shape[0], np.log(model.noise_weight_ / model.noise_volume_))
    columns = np.stack(gaussians + [noise], axis=1)
    expected = logsumexp(columns, axis=1)
    np.testing.assert_allclose(model.score_samples(faithful), expected, rtol=1e-12)
    resp = model.predict_proba(faithful)
    assert resp.shape == (faithful.shape[0], 4)
    np.testing.assert_allclose(resp, np.exp(columns - expected[:, None]), rtol=1e-10, atol=1e-14)
    labels = model.predict(faithful)
    np.testing.assert_array_equal(labels, np.where(resp.argmax(axis=1) == 3, -1, resp.argmax(axis=1)))
    np.testing.assert_allclose(model.uncertainty(faithful), 1 - resp.max(axis=1))
    # mclust's count: the Gaussians' parameters, the noise weight and the volume
    n_parameters = 3 * 3 + 3 * 2 + 2 + 2  # covariances, means, K - 1 weights; noise weight, volume
    loglik = expected.sum()
    assert model.bic(faithful) == pytest.approx(-2 * loglik + n_parameters * math.log(faithful.shape[0]))
    assert model.aic(faithful) == pytest.approx(-2 * loglik + 2 * n_parameters)


def test_sample_draws_noise_rows_uniformly_in_the_data_box(planted):
    X, _ = planted
    model = _fit(X)
    draws, labels = model.sample(20000)
    noise = draws[labels == -1]
    assert noise.shape[0] / 20000 == pytest.approx(model.noise_weight_, abs=0.01)
    inside = noise @ model.noise_axes_
    assert np.all(inside >= model.noise_bounds_[0]) and np.all(inside <= model.noise_bounds_[1])
    # uniform: every side's coordinates spread as a uniform's (variance width^2 / 12)
    widths = model.noise_bounds_[1] - model.noise_bounds_[0]
    np.testing.assert_allclose(inside.var(axis=0), widths**2 / 12, rtol=0.1)
    assert np.all(labels[: np.count_nonzero(labels >= 0)] >= 0)


def test_given_volume_is_the_density(faithful):
    model = _fit(faithful, n_components=2, noise_volume=1000.0)
    assert model.noise_volume_ == 1000.0
    noise_column = np.log(model.predict_proba(faithful)[:, -1]) + model.score_samples(faithful)
    np.testing.assert_allclose(noise_column, np.log(model.noise_weight_ / 1000.0), rtol=1e-10)


def test_noise_init_as_mask_or_indices_gives_one_fit(faithful):
    mask = np.zeros(faithful.shape[0], bool)
    mask[::9] = True
    by_mask = _fit(faithful, noise_init=mask, noise=False, init_params="hierarchical")
    by_index = _fit(faithful, noise_init=np.flatnonzero(mask), noise=False, init_params="hierarchical")
    assert by_mask.noise_weight_ == by_index.noise_weight_
    np.testing.assert_array_equal(by_mask.means_, by_index.means_)


def test_the_initialiser_sees_the_rows_not_marked_as_noise(faithful):
    mask = np.zeros(faithful.shape[0], bool)
    mask[:40] = True
    seen = []

    def initializer(X, sample_weight, n_components, random_state):
        seen.append(X.copy())
        return np.arange(X.shape[0]) % n_components

    model = _fit(faithful, noise_init=mask, init_params=initializer, max_iter=0)
    np.testing.assert_array_equal(seen[0], faithful[~mask])
    # the noise starts with the marked rows' share, mclust's start
    assert model.noise_weight_ == pytest.approx(40 / faithful.shape[0])


def test_default_start_marks_rows_a_single_gaussian_explains_worse_than_the_background(planted):
    X, _ = planted
    seen = []

    def initializer(rows, sample_weight, n_components, random_state):
        seen.append(rows.shape[0])
        return np.arange(rows.shape[0]) % n_components

    _fit(X, init_params=initializer, max_iter=0)
    density = multivariate_normal(X.mean(axis=0), np.cov(X.T, bias=True)).pdf(X)
    assert seen[0] == np.count_nonzero(density >= 1 / _hypvol(X))


def test_integer_weights_equal_repeated_rows(faithful):
    counts = np.random.RandomState(0).randint(1, 4, size=faithful.shape[0])
    means = faithful[[0, 1, 5]]
    weighted = _fit(faithful, counts.astype(float), n_components=3, means_init=means)
    repeated = _fit(np.repeat(faithful, counts, axis=0), n_components=3, means_init=means)
    assert weighted.noise_volume_ == pytest.approx(repeated.noise_volume_, rel=1e-12)
    assert weighted.noise_weight_ == pytest.approx(repeated.noise_weight_, abs=1e-9)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-8)


def test_equal_weights_share_what_the_noise_leaves(planted):
    X, _ = planted
    model = _fit(X, n_components=3, equal_weights=True)
    np.testing.assert_allclose(model.weights_, np.full(3, (1 - model.noise_weight_) / 3), rtol=1e-14)


def test_float32_fit_follows_float64(planted):
    X, _ = planted
    model64 = _fit(X)
    model32 = _fit(X.astype(np.float32))
    assert model32.weights_.dtype == np.float32
    assert model32.noise_weight_ == pytest.approx(model64.noise_weight_, abs=1e-4)


def test_noise_false_is_the_plain_mixture_and_a_refit_forgets_the_noise(faithful):
    plain = GaussianMixture(3, random_state=0).fit(faithful)
    assert not hasattr(plain, "noise_weight_")
    assert plain.predict_proba(faithful).shape == (faithful.shape[0], 3)
    assert plain.weights_.sum() == pytest.approx(1.0)
    model = _fit(faithful, n_components=3)
    model.set_params(noise=False, tol=1e-3, max_iter=100).fit(faithful)
    for name in ("noise_weight_", "noise_volume_", "noise_axes_", "noise_bounds_"):
        assert not hasattr(model, name)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(model, name), getattr(plain, name))
    assert model.bic(faithful) == plain.bic(faithful)


def test_warm_start_continues_a_noise_fit(faithful):
    model = _fit(faithful, n_components=2, max_iter=5)
    before = model.lower_bound_
    model.set_params(warm_start=True, max_iter=500).fit(faithful)
    assert model.lower_bound_ >= before - 1e-12
    with pytest.raises(ValueError, match="warm_start=False"):
        model.set_params(noise=False).fit(faithful)


@pytest.mark.parametrize("params, message", [
    (dict(noise_volume=10.0), "noise_volume=10.0 is the volume of a noise component"),
    (dict(noise=True, noise_init=np.ones((3, 2), bool)), "noise_init must be a boolean mask"),
    (dict(noise=True, noise_init=np.array([0.5, 1.5])), "noise_init must be a boolean mask"),
    (dict(noise=True, fixed={"weights"}), "do not freeze weights"),
])
def test_invalid_options_say_what_to_do(faithful, params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, **params).fit(faithful)


@pytest.mark.parametrize("volume", [0.0, -1.0, float("inf"), "big"])
def test_volume_must_be_positive_and_finite(faithful, volume):
    with pytest.raises((InvalidParameterError, ValueError), match="noise_volume"):
        GaussianMixture(2, noise=True, noise_volume=volume).fit(faithful)


@pytest.mark.parametrize("noise_init, message", [
    (np.zeros(10, bool), "has 10 entries but X has 272 rows"),
    (np.array([3, 272]), r"outside \[0, 272\)"),
    (np.array([-1]), r"outside \[0, 272\)"),
    (np.zeros(272, bool), "marks no row"),
    (np.ones(272, bool), "marks every row"),
    (np.r_[np.ones(271, bool), False], "Expected n_samples >= n_components"),
])
def test_bad_noise_rows_are_refused(faithful, noise_init, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2, noise_init=noise_init).fit(faithful)


def test_flat_rows_need_a_volume(faithful):
    flat = np.column_stack([faithful, np.ones(faithful.shape[0])])
    with pytest.raises(ValueError, match="noise_volume="):
        GaussianMixture(2, noise=True, covariance_type="diag").fit(flat[:, [0, 2]])
    model = _fit(faithful[:, :1], noise_volume=10.0)
    assert model.noise_volume_ == 10.0


def test_unsupported_inputs_are_refused(faithful, tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, faithful)
    with pytest.raises(ValueError, match="out-of-core"):
        GaussianMixture(2, noise=True).fit(str(path))
    with pytest.raises(ValueError, match="partial_fit"):
        GaussianMixture(2, noise=True).partial_fit(faithful)
    holes = faithful.copy()
    holes[0, 0] = np.nan
    with pytest.raises(ValueError, match="missing entries"):
        GaussianMixture(2, noise=True, missing="marginalize").fit(holes)
    with pytest.raises(ValueError, match="noise component"):
        bootstrap_lrt(faithful, "EEE", 2, n_bootstrap=1, noise=True)


def test_gaussian_only_methods_refuse_a_noise_model(faithful):
    model = _fit(faithful, n_components=2, max_iter=5)
    with pytest.raises(ValueError, match="marginal is not available"):
        model.marginal([0])
    with pytest.raises(ValueError, match="condition is not available"):
        model.condition([0], [3.0])
    with pytest.raises(ValueError, match="impute is not available"):
        model.impute(faithful[:3])
    one = _fit(faithful[:, :1], n_components=2, max_iter=5)
    with pytest.raises(ValueError, match="cdf is not available"):
        one.cdf([3.0])


def test_a_volume_beyond_float64_or_too_small_is_refused_with_advice():
    X = np.random.RandomState(0).normal(size=(400, 120)) * 1e4
    with pytest.raises(ValueError, match="beyond float64's range"):
        GaussianMixture(1, noise=True).fit(X)
    # the rows' box is e^1340: a uniform over 1e300 explains every row better than a Gaussian does
    with pytest.raises(ValueError, match="marks 400 of 400 rows as noise.*larger noise_volume"):
        GaussianMixture(1, noise=True, noise_volume=1e300).fit(X)


def test_torch_rows_are_refused(faithful):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="NumPy array"):
        GaussianMixture(2, noise=True).fit(torch.as_tensor(faithful))

