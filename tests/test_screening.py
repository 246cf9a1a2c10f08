"""``screen_iter``: starts after the first screened by a few EM iterations (emEM)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from gaussmix import GaussianMixture, select


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    centres = np.array([[0, 0, 0], [4, 0, 0], [0, 5, 1], [3, 3, 3]])
    return np.vstack([rng.normal(size=(150, 3)) + centre for centre in centres])


def _fit(X, covariance_type, **params):
    settings = dict(n_components=4, covariance_type=covariance_type, n_init=6, init_params="k-means++",
                    random_state=1, tol=1e-7, max_iter=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(**{**settings, **params}).fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "EVE", "tied", "VEI"])
def test_screened_starts_run_screen_iter_and_the_best_goes_on_as_alone(X, covariance_type):
    whole = _fit(X, covariance_type)
    screened = _fit(X, covariance_type, screen_iter=4)
    lengths = [len(trace) for trace in screened.lower_bounds_per_init_]
    # the first start is never screened: its run is the unscreened one
    np.testing.assert_allclose(screened.lower_bounds_per_init_[0], whole.lower_bounds_per_init_[0], rtol=1e-12)
    cut = [i for i in range(1, 6) if lengths[i] == 4]
    went_on = [i for i in range(1, 6) if lengths[i] > 4]
    assert len(went_on) <= 1
    for i in range(1, 6):
        if i not in went_on and i not in cut:  # converged within 4 iterations: competes as it is
            assert lengths[i] == len(whole.lower_bounds_per_init_[i]) < 4
    # the start that went on is the best after 4 iterations, and ends where it would alone
    after_four = {i: screened.lower_bounds_per_init_[i][3] for i in range(1, 6) if lengths[i] >= 4}
    assert went_on == [max(after_four, key=after_four.get)]
    np.testing.assert_allclose(screened.lower_bounds_per_init_[went_on[0]],
                               whole.lower_bounds_per_init_[went_on[0]], rtol=1e-12)
    kept = screened.best_init_
    assert kept in (0, *went_on) or lengths[kept] < 4
    assert screened.lower_bound_ == max(trace[-1] for trace in screened.lower_bounds_per_init_
                                        if len(trace) != 4 or trace is screened.lower_bounds_per_init_[0])
    assert screened.n_iter_ == len(screened.lower_bounds_) == lengths[kept]


def test_the_continued_run_reports_every_iteration_in_order(X):
    events = []
    screened = _fit(X, "full", screen_iter=3, callback=events.append)
    went_on = max(range(1, 6), key=lambda i: len(screened.lower_bounds_per_init_[i]))
    numbers = [event.n_iter for event in events if event.init_index == went_on]
    assert numbers == list(range(1, len(screened.lower_bounds_per_init_[went_on]) + 1))
    assert [event.lower_bound for event in events if event.init_index == went_on] == pytest.approx(
        screened.lower_bounds_per_init_[went_on], rel=1e-15)


def test_screening_changes_nothing_with_one_start_or_a_long_screen(X):
    one = _fit(X, "full", n_init=1)
    np.testing.assert_array_equal(_fit(X, "full", n_init=1, screen_iter=2).means_, one.means_)
    whole = _fit(X, "full")
    np.testing.assert_array_equal(_fit(X, "full", screen_iter=400).means_, whole.means_)


@pytest.mark.parametrize("value", [0, -3, 2.5, "10"])
def test_screen_iter_must_be_a_positive_integer(X, value):
    with pytest.raises(InvalidParameterError, match="screen_iter"):
        GaussianMixture(2, screen_iter=value).fit(X)


def test_select_with_screening_never_falls_below_the_hierarchical_start(X):
    # Each cell's first start is mclust's hierarchical one and is never screened.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        screened = select(X, n_components=[2, 4, 6], covariance_types=["full", "VEV", "EII"], random_state=0,
                          screen_iter=5)
        hierarchical = select(X, n_components=[2, 4, 6], covariance_types=["full", "VEV", "EII"], random_state=0,
                              init_params="hierarchical")
    for ours, mclust_like in zip(screened.rows, hierarchical.rows):
        assert (ours.n_components, ours.covariance_type) == (mclust_like.n_components, mclust_like.covariance_type)
        assert ours.log_likelihood >= mclust_like.log_likelihood - 1e-8 * abs(mclust_like.log_likelihood)
