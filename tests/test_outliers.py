"""GaussianMixtureOutlierDetector: mixture log-density as scikit-learn's outlier API."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import gaussmix
from gaussmix import GaussianMixtureOutlierDetector
from gaussmix.outliers import AUTO_TAIL, weighted_quantile

from .conftest import random_start_weight_check


def _expected_failures(estimator):
    if estimator.n_components == 1:
        return {}
    return random_start_weight_check()


@parametrize_with_checks(
    [GaussianMixtureOutlierDetector(),
     GaussianMixtureOutlierDetector(n_components=2, covariance_type="VEV", contamination=0.1)],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def planted(n=5000, rate=0.02, seed=0):
    """Three Gaussian clusters in 3-D and ``rate`` of rows uniform in a box far wider than them."""
    rng = np.random.default_rng(seed)
    n_out = int(round(rate * n))
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 2.0], [0.0, 7.0, -3.0]])
    labels = rng.integers(0, 3, size=n - n_out)
    inliers = centres[labels] + rng.normal(size=(n - n_out, 3)) * np.array([1.0, 0.6, 0.8])
    outliers = rng.uniform(-25, 30, size=(n_out, 3))
    X = np.vstack([inliers, outliers])
    truth = np.r_[np.zeros(n - n_out, bool), np.ones(n_out, bool)]
    order = rng.permutation(n)
    return X[order], truth[order]


def recall_precision(flagged, truth):
    hits = np.sum(flagged & truth)
    return hits / truth.sum(), hits / max(flagged.sum(), 1)


@pytest.mark.parametrize("covariance_type", ["full", "VVI", "EEE", "VEV"])
def test_planted_outliers_found_at_the_planted_rate(covariance_type):
    X, truth = planted()
    detector = GaussianMixtureOutlierDetector(3, covariance_type=covariance_type, contamination=0.02,
                                              n_init=2, random_state=0)
    flagged = detector.fit_predict(X) == -1
    recall, precision = recall_precision(flagged, truth)
    assert recall >= 0.9 and precision >= 0.9, (recall, precision)


def test_k_chosen_by_bic_finds_the_planted_outliers():
    X, truth = planted()
    detector = GaussianMixtureOutlierDetector(range(1, 6), covariance_type=["full", "VII"],
                                              contamination=0.02, random_state=0).fit(X)
    assert detector.selection_ is not None
    assert detector.mixture_.n_components >= 3
    recall, precision = recall_precision(detector.predict(X) == -1, truth)
    assert recall >= 0.9 and precision >= 0.9, (recall, precision)


@pytest.mark.parametrize("contamination", [0.01, 0.02, 0.1, 0.5])
def test_offset_is_the_contamination_quantile_of_the_training_scores(contamination):
    X, _ = planted(n=777)
    detector = GaussianMixtureOutlierDetector(2, contamination=contamination, random_state=0).fit(X)
    scores = detector.mixture_.score_samples(X)
    assert detector.offset_ == pytest.approx(np.quantile(scores, contamination), rel=0, abs=1e-12)
    np.testing.assert_allclose(detector.score_samples(X), scores, rtol=0, atol=0)
    np.testing.assert_allclose(detector.decision_function(X), scores - detector.offset_, rtol=0, atol=0)
    assert np.sum(detector.predict(X) == -1) == int(np.ceil(contamination * (len(X) - 1)))


def test_auto_offset_flags_about_its_tail_on_clean_data_and_the_outliers_on_dirty():
    rng = np.random.default_rng(1)
    clean = rng.normal(size=(20000, 2)) @ np.array([[2.0, 0.5], [0.0, 1.0]])
    detector = GaussianMixtureOutlierDetector(contamination="auto", random_state=0).fit(clean)
    share = np.mean(detector.predict(clean) == -1)
    assert 0.2 * AUTO_TAIL <= share <= 3 * AUTO_TAIL
    # The offset depends on the fitted model only: refitting on the same rows gives the same.
    assert detector.get_params()["contamination"] == "auto"
    assert GaussianMixtureOutlierDetector(contamination="auto", random_state=5).fit(clean).offset_ == \
        pytest.approx(detector.offset_, rel=1e-6)
    X, truth = planted()
    detector = GaussianMixtureOutlierDetector(3, contamination="auto", n_init=2, random_state=0).fit(X)
    recall, _ = recall_precision(detector.predict(X) == -1, truth)
    assert recall >= 0.9


def test_weighted_quantile_is_the_quantile_of_repeated_rows():
    rng = np.random.default_rng(0)
    values = rng.normal(size=60)
    weights = rng.integers(0, 4, size=60)
    for q in (0.0, 0.013, 0.1, 0.37, 0.5, 1.0):
        assert weighted_quantile(values, q, weights) == pytest.approx(np.quantile(np.repeat(values, weights), q))
        assert weighted_quantile(values, q, np.ones(60)) == pytest.approx(np.quantile(values, q))


def test_sample_weight_equals_repeated_rows():
    X, _ = planted(n=600)
    weights = np.random.default_rng(2).integers(0, 3, size=len(X))
    weighted = GaussianMixtureOutlierDetector(contamination=0.05).fit(X, sample_weight=weights)
    repeated = GaussianMixtureOutlierDetector(contamination=0.05).fit(np.repeat(X, weights, axis=0))
    assert weighted.offset_ == pytest.approx(repeated.offset_, rel=1e-9)
    np.testing.assert_array_equal(weighted.predict(X), repeated.predict(X))


def test_pipeline():
    X, truth = planted()
    pipeline = make_pipeline(StandardScaler(), GaussianMixtureOutlierDetector(3, contamination=0.02,
                                                                             n_init=2, random_state=0))
    flagged = pipeline.fit(X).predict(X) == -1
    recall, precision = recall_precision(flagged, truth)
    assert recall >= 0.9 and precision >= 0.9
    assert pipeline.decision_function(X).shape == (len(X),)


def test_out_of_core_scoring_and_fit(tmp_path):
    X, _ = planted(n=3000)
    path = tmp_path / "rows.npy"
    np.save(path, X)
    detector = GaussianMixtureOutlierDetector(3, contamination=0.02, random_state=0).fit(X)
    for source in (str(path), np.load(path, mmap_mode="r")):
        np.testing.assert_allclose(detector.score_samples(source), detector.score_samples(X), rtol=1e-12)
        np.testing.assert_array_equal(detector.predict(source), detector.predict(X))
    streamed = GaussianMixtureOutlierDetector(1, contamination=0.02, chunk_size=500).fit(str(path))
    in_memory = GaussianMixtureOutlierDetector(1, contamination=0.02).fit(X)
    assert streamed.offset_ == pytest.approx(in_memory.offset_, rel=1e-6)
    with pytest.raises(ValueError, match="needs the rows in memory"):
        GaussianMixtureOutlierDetector(range(1, 3)).fit(str(path))


def test_user_errors_say_what_to_do():
    X, _ = planted(n=300)
    with pytest.raises(ValueError, match="contamination"):
        GaussianMixtureOutlierDetector(contamination=0.7).fit(X)
    with pytest.raises(ValueError, match="give one int n_components"):
        GaussianMixtureOutlierDetector(range(1, 3), means_init=X[:2]).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixtureOutlierDetector([]).fit(X)


def test_exported():
    assert gaussmix.GaussianMixtureOutlierDetector is GaussianMixtureOutlierDetector
