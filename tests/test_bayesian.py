"""BayesianGaussianMixture against scikit-learn's, and scikit-learn's own tests re-written for it."""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import BayesianGaussianMixture as SklearnBGM
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from gaussmix import BayesianGaussianMixture
from gaussmix import variational
from gaussmix.em import accumulate_source
from gaussmix.sources import ArraySource

from .conftest import COVARIANCE_TYPES, make_blobs

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
RTOL = 1e-7


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=300, n_features=3, n_components=3, seed=1)[0]


def quiet_fit(estimator, X, **fit_params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, **fit_params)


def lower_bounds(estimator):
    # scikit-learn's tied lower bounds are arrays of shape (1,): compare values
    return np.array([float(np.ravel(value)[0]) for value in estimator.lower_bounds_])


def assert_same_fit(ours, theirs, rtol=RTOL):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    if ours.weight_concentration_prior_type == "dirichlet_process":
        for a, b in zip(ours.weight_concentration_, theirs.weight_concentration_):
            assert_allclose(a, b, rtol=rtol)
    else:
        assert_allclose(ours.weight_concentration_, theirs.weight_concentration_, rtol=rtol)
    for name in ("mean_precision_", "means_", "degrees_of_freedom_", "covariances_", "precisions_",
                 "precisions_cholesky_", "weights_"):
        assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=rtol, atol=1e-12, err_msg=name)
    if ours.n_iter_:
        assert_allclose(ours.lower_bound_, float(np.ravel(theirs.lower_bound_)[0]), rtol=rtol)
        assert_allclose(lower_bounds(ours), lower_bounds(theirs), rtol=rtol)


# ------------------------------------------------------------------ against scikit-learn
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_start_and_fit_equal_sklearn(data, covariance_type, prior_type):
    settings = dict(
        n_components=4, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
        init_params="kmeans", random_state=0,
    )
    # max_iter=0 returns the start: the same k-means responsibilities, the same first M-step
    assert_same_fit(
        BayesianGaussianMixture(max_iter=0, **settings).fit(data), SklearnBGM(max_iter=0, **settings).fit(data)
    )
    ours = quiet_fit(BayesianGaussianMixture(max_iter=40, **settings), data)
    theirs = quiet_fit(SklearnBGM(max_iter=40, **settings), data)
    assert ours.n_iter_ > 3
    assert_same_fit(ours, theirs)
    assert_array_equal(ours.predict(data), theirs.predict(data))
    assert_allclose(ours.score_samples(data), theirs.score_samples(data), rtol=RTOL)
    assert_allclose(ours.predict_proba(data), theirs.predict_proba(data), rtol=RTOL, atol=1e-12)
    assert_allclose(ours.score(data), theirs.score(data), rtol=RTOL)


@pytest.mark.parametrize("init_params", ["random", "random_from_data", "k-means++"])
def test_other_starts_and_restarts_equal_sklearn(data, init_params):
    settings = dict(n_components=4, init_params=init_params, random_state=3, n_init=2, max_iter=25,
                    covariance_type="diag")
    assert_same_fit(quiet_fit(BayesianGaussianMixture(**settings), data), quiet_fit(SklearnBGM(**settings), data))


def test_warm_start_continues_as_sklearn(data):
    settings = dict(n_components=3, max_iter=2, random_state=0, warm_start=True)
    ours, theirs = BayesianGaussianMixture(**settings), SklearnBGM(**settings)
    for _ in range(3):
        quiet_fit(ours, data)
        quiet_fit(theirs, data)
    assert_same_fit(ours, theirs)


def test_given_priors_equal_sklearn(data):
    settings = dict(
        n_components=3, random_state=0, weight_concentration_prior=0.5, mean_precision_prior=0.1,
        mean_prior=np.ones(3), degrees_of_freedom_prior=5.5, covariance_prior=2 * np.eye(3), max_iter=30,
    )
    assert_same_fit(quiet_fit(BayesianGaussianMixture(**settings), data), quiet_fit(SklearnBGM(**settings), data))


def test_sample_equals_sklearn(data):
    for covariance_type in COVARIANCE_TYPES:
        settings = dict(n_components=3, covariance_type=covariance_type, random_state=0)
        ours = quiet_fit(BayesianGaussianMixture(**settings), data)
        theirs = quiet_fit(SklearnBGM(**settings), data)
        X, y = ours.sample(50)
        X_theirs, y_theirs = theirs.sample(50)
        assert X.shape == (50, 3) and y.dtype == y_theirs.dtype
        assert_array_equal(y, y_theirs)
        assert_allclose(X, X_theirs, rtol=1e-6)


def test_float32_rows_fit_close_to_sklearn(data):
    X = data.astype(np.float32)
    ours = quiet_fit(BayesianGaussianMixture(n_components=3, random_state=0), X)
    theirs = quiet_fit(SklearnBGM(n_components=3, random_state=0), X)
    assert_allclose(ours.means_, theirs.means_, rtol=1e-4)
    assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-5)


# ------------------------------------------------------------------ the reduction
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_entropy_from_statistics_equals_direct(data, covariance_type):
    fitted = quiet_fit(BayesianGaussianMixture(n_components=4, covariance_type=covariance_type, max_iter=3,
                                               random_state=0), data)
    params = variational.estep_params(fitted._variational_posterior(), fitted.weight_concentration_prior_type, covariance_type,
                                      data.dtype)
    weights = np.random.RandomState(0).uniform(0, 2, size=data.shape[0])
    stats, loglik = accumulate_source(ArraySource(data, weights, 64), params)
    log_terms = params.covariance.log_gaussian(data, params.means, params.precisions_cholesky) + params.log_terms
    log_resp = log_terms - logsumexp(log_terms, axis=1)[:, None]
    direct = -np.sum(weights[:, None] * np.exp(log_resp) * log_resp)
    assert direct > 1
    assert_allclose(variational.responsibility_entropy(stats, loglik, params, covariance_type), direct, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_small_chunks_equal_one_chunk(data, covariance_type):
    settings = dict(n_components=4, covariance_type=covariance_type, random_state=0, max_iter=30)
    whole = quiet_fit(BayesianGaussianMixture(**settings), data)
    chunked = quiet_fit(BayesianGaussianMixture(chunk_size=17, **settings), data)
    assert_same_fit(chunked, whole, rtol=1e-9)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(data, covariance_type, prior_type):
    counts = np.random.RandomState(2).randint(0, 4, size=data.shape[0])
    repeated = np.repeat(data, counts, axis=0)
    settings = dict(n_components=4, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
                    random_state=0, warm_start=True)
    # The same start through warm_start: one iteration on the repeated rows, then both continue
    start = quiet_fit(BayesianGaussianMixture(max_iter=1, **settings), repeated)
    by_weight, by_repeat = copy.deepcopy(start), copy.deepcopy(start)
    by_weight.set_params(max_iter=40)
    by_repeat.set_params(max_iter=40)
    quiet_fit(by_weight, data, sample_weight=counts)
    quiet_fit(by_repeat, repeated)
    assert by_weight.n_iter_ > 2
    assert_same_fit(by_weight, by_repeat, rtol=1e-9)
    for name in ("mean_prior_", "covariance_prior_"):
        assert_allclose(getattr(by_weight, name), getattr(by_repeat, name), rtol=1e-12)


def test_unit_weights_change_nothing(data):
    settings = dict(n_components=3, random_state=0, covariance_type="tied")
    plain = quiet_fit(BayesianGaussianMixture(**settings), data)
    ones = quiet_fit(BayesianGaussianMixture(**settings), data, sample_weight=np.ones(data.shape[0]))
    assert_same_fit(ones, plain, rtol=1e-12)


def test_weights_that_cannot_give_the_default_prior_say_what_to_do(data):
    with pytest.raises(ValueError, match="total weight above 1"):
        BayesianGaussianMixture().fit(data, sample_weight=np.full(data.shape[0], 1e-3))
    with pytest.raises(ValueError, match="non-negative"):
        BayesianGaussianMixture().fit(data, sample_weight=-np.ones(data.shape[0]))


# --------------------------------------------- scikit-learn's test_bayesian_mixture.py, re-written
def test_invalid_parameters_raise_sklearns_errors(data):
    for settings in (dict(covariance_type="bad"), dict(weight_concentration_prior_type="bad"),
                     dict(weight_concentration_prior=0.0), dict(mean_precision_prior=-1.0),
                     dict(degrees_of_freedom_prior=0.0), dict(n_components=0), dict(chunk_size=0)):
        with pytest.raises(InvalidParameterError):
            BayesianGaussianMixture(**settings).fit(data)


def test_weights_prior_initialisation(data):
    assert BayesianGaussianMixture(n_components=4, max_iter=0).fit(data).weight_concentration_prior_ == 0.25
    fitted = BayesianGaussianMixture(weight_concentration_prior=0.7, max_iter=0).fit(data)
    assert fitted.weight_concentration_prior_ == 0.7


def test_mean_prior_initialisation(data):
    fitted = BayesianGaussianMixture(max_iter=0).fit(data)
    assert fitted.mean_precision_prior_ == 1.0
    assert_allclose(fitted.mean_prior_, data.mean(axis=0))
    fitted = BayesianGaussianMixture(mean_precision_prior=0.3, mean_prior=[1, 2, 3], max_iter=0).fit(data)
    assert fitted.mean_precision_prior_ == 0.3
    assert_allclose(fitted.mean_prior_, [1, 2, 3])
    message = "The parameter 'means' should have the shape of (3,), but got (2,)"
    with pytest.raises(ValueError, match=re.escape(message)):
        BayesianGaussianMixture(mean_prior=[1, 2]).fit(data)


def test_precision_prior_initialisation(data):
    message = "The parameter 'degrees_of_freedom_prior' should be greater than 2, but got 1.000."
    with pytest.raises(ValueError, match=re.escape(message)):
        BayesianGaussianMixture(degrees_of_freedom_prior=1.0).fit(data)
    assert BayesianGaussianMixture(max_iter=0).fit(data).degrees_of_freedom_prior_ == 3
    assert BayesianGaussianMixture(degrees_of_freedom_prior=4.5, max_iter=0).fit(data).degrees_of_freedom_prior_ == 4.5
    expected = {
        "full": np.atleast_2d(np.cov(data.T)), "tied": np.atleast_2d(np.cov(data.T)),
        "diag": np.var(data, axis=0, ddof=1), "spherical": np.var(data, axis=0, ddof=1).mean(),
    }
    for covariance_type, prior in expected.items():
        fitted = BayesianGaussianMixture(covariance_type=covariance_type, max_iter=0).fit(data)
        assert_allclose(fitted.covariance_prior_, prior)


@pytest.mark.parametrize(
    "covariance_type, prior, message",
    [
        ("full", np.ones((2, 2)), "The parameter 'full covariance_prior' should have the shape of (3, 3), but got (2, 2)"),
        ("tied", -np.eye(3), "'tied precision' should be symmetric, positive-definite"),
        ("diag", np.ones(2), "The parameter 'diag covariance_prior' should have the shape of (3,), but got (2,)"),
        ("diag", -np.ones(3), "'diag precision' should be positive"),
    ],
)
def test_covariance_prior_errors_are_sklearns(data, covariance_type, prior, message):
    for estimator in (BayesianGaussianMixture, SklearnBGM):
        with pytest.raises(ValueError, match=re.escape(message)):
            estimator(covariance_type=covariance_type, covariance_prior=prior).fit(data)


def test_not_fitted_and_too_few_rows_errors(data):
    with pytest.raises(NotFittedError):
        BayesianGaussianMixture().predict(data)
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        BayesianGaussianMixture(n_components=5).fit(data[:4])
    with pytest.raises(ValueError, match="Invalid value for 'n_samples'"):
        BayesianGaussianMixture(max_iter=0).fit(data).sample(0)


def test_convergence_warning_is_sklearns(data):
    with pytest.warns(ConvergenceWarning, match="Best performing initialization did not converge"):
        BayesianGaussianMixture(n_components=3, max_iter=1, random_state=0).fit(data)


def test_mixture_weights(data):
    fitted = quiet_fit(BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_distribution",
                                               n_components=3, random_state=0), data)
    assert_allclose(fitted.weights_, fitted.weight_concentration_ / np.sum(fitted.weight_concentration_))
    assert_allclose(np.sum(fitted.weights_), 1.0)
    fitted = quiet_fit(BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process",
                                               n_components=3, random_state=0), data)
    a, b = fitted.weight_concentration_
    expected = a / (a + b) * np.hstack((1, np.cumprod(b / (a + b))[:-1]))
    assert_allclose(fitted.weights_, expected / expected.sum())
    assert_allclose(np.sum(fitted.weights_), 1.0)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_lower_bound_is_monotone(data, covariance_type, prior_type):
    fitted = BayesianGaussianMixture(n_components=6, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
                                     warm_start=True, max_iter=1, random_state=0, tol=1e-7)
    previous = -np.inf
    for steps in range(1, 101):
        quiet_fit(fitted, data)
        # every warm-started fit is one E-step and M-step: the bound must not fall
        assert fitted.lower_bound_ >= previous - 1e-12 * abs(previous)
        previous = fitted.lower_bound_
        if fitted.converged_:
            break
    assert steps > 5


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_compare_covariance_types(data, prior_type):
    def start(covariance_type):
        return BayesianGaussianMixture(n_components=6, covariance_type=covariance_type, max_iter=0, random_state=0,
                                       weight_concentration_prior_type=prior_type).fit(data)

    full = start("full")
    full_covariances = full.covariances_ * full.degrees_of_freedom_[:, None, None]
    tied = start("tied")
    assert_allclose(tied.covariances_ * tied.degrees_of_freedom_, np.mean(full_covariances, 0))
    diag = start("diag")
    diag_covariances = diag.covariances_ * diag.degrees_of_freedom_[:, None]
    assert_allclose(diag_covariances, np.array([np.diag(c) for c in full_covariances]))
    spherical = start("spherical")
    assert_allclose(spherical.covariances_ * spherical.degrees_of_freedom_, np.mean(diag_covariances, 1))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_check_covariance_precision(data, covariance_type):
    fitted = quiet_fit(BayesianGaussianMixture(n_components=6, covariance_type=covariance_type, random_state=0,
                                               reg_covar=0), data)
    if covariance_type == "full":
        for covariance, precision in zip(fitted.covariances_, fitted.precisions_):
            assert_allclose(covariance @ precision, np.eye(3), atol=1e-10)
    elif covariance_type == "tied":
        assert_allclose(fitted.covariances_ @ fitted.precisions_, np.eye(3), atol=1e-10)
    else:
        assert_allclose(fitted.covariances_ * fitted.precisions_, 1.0)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_invariant_translation(data, covariance_type, prior_type):
    settings = dict(n_components=3, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
                    random_state=0, reg_covar=0, tol=1e-3)
    fitted = quiet_fit(BayesianGaussianMixture(**settings), data)
    moved = quiet_fit(BayesianGaussianMixture(**settings), data + 100)
    assert_allclose(fitted.means_, moved.means_ - 100, atol=1e-7)
    assert_allclose(fitted.weights_, moved.weights_, rtol=1e-7)
    assert_allclose(fitted.covariances_, moved.covariances_, rtol=1e-6)


@pytest.mark.parametrize("max_iter, n_init", [(1, 1), (5, 1), (30, 1), (10, 4)])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit_predict_equals_fit_then_predict(data, covariance_type, max_iter, n_init):
    settings = dict(n_components=5, covariance_type=covariance_type, max_iter=max_iter, n_init=n_init,
                    random_state=0, reg_covar=0)
    labels = quiet_fit(BayesianGaussianMixture(**settings), data).predict(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert_array_equal(BayesianGaussianMixture(**settings).fit_predict(data), labels)


def test_predict_is_argmax_of_predict_proba(data):
    fitted = quiet_fit(BayesianGaussianMixture(n_components=3, random_state=0), data)
    probabilities = fitted.predict_proba(data)
    assert_allclose(probabilities.sum(axis=1), 1.0)
    assert_array_equal(np.argmax(probabilities, axis=1), fitted.predict(data))


def test_constructor_matches_sklearn():
    ours = BayesianGaussianMixture().get_params()
    theirs = SklearnBGM().get_params()
    assert {key: ours[key] for key in theirs} == theirs
    assert set(ours) - set(theirs) == {"chunk_size"}


@parametrize_with_checks([
    BayesianGaussianMixture(),
    BayesianGaussianMixture(covariance_type="diag", n_init=2, weight_concentration_prior_type="dirichlet_distribution"),
])
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_kernels_follow_float64(covariance_type):
    # K = 8: float32 full rows take the screened E-step (with numba), whose thresholds
    # read exp(log_terms) as mixture weights
    X = make_blobs(n_samples=3000, n_features=3, n_components=4, seed=5)[0]
    settings = dict(n_components=8, covariance_type=covariance_type, random_state=0, max_iter=10, tol=0)
    wide = quiet_fit(BayesianGaussianMixture(**settings), X)
    narrow = quiet_fit(BayesianGaussianMixture(**settings), X.astype(np.float32))
    assert_allclose(lower_bounds(narrow), lower_bounds(wide), rtol=1e-5)
    heavy = wide.weights_ > 0.05
    assert_allclose(narrow.means_[heavy], wide.means_[heavy], rtol=1e-3, atol=1e-3)
