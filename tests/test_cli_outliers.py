"""``gaussmix score --contamination``: outliers marked by a training log-density quantile."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gaussmix
from gaussmix.cli import cli
from gaussmix.outliers import TRAINING_QUANTILES_KEY, threshold_from, training_quantiles

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def write_csv(path, X):
    np.savetxt(path, X, delimiter=",", header="a,b", comments="")
    return path


def planted(n, seed):
    rng = np.random.default_rng(seed)
    n_out = n // 50
    inliers = np.vstack([rng.normal(size=(n // 2, 2)), rng.normal(size=(n - n // 2 - n_out, 2)) * 0.5 + [5, 0]])
    return np.vstack([inliers, rng.uniform(-15, 20, size=(n_out, 2))])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outliers")
    train = write_csv(folder / "train.csv", planted(1000, 0))
    model = folder / "model.gmm"
    result = run("fit", train, "-k", "2", "-c", "full", "--n-init", "1", "--out", model, "--quiet")
    assert result.exit_code == 0, result.output
    return folder, train, model


def test_threshold_is_the_training_quantile_stored_at_fit(fitted):
    folder, train, model = fitted
    mixture = gaussmix.load(model)
    training_scores = mixture.score_samples(np.loadtxt(train, delimiter=",", skiprows=1))
    new = planted(300, 1)
    out = folder / "scores.csv"
    result = run("score", model, write_csv(folder / "new.csv", new), "--contamination", "0.02", "--out", out)
    assert result.exit_code == 0, result.output
    threshold = np.quantile(training_scores, 0.02)
    assert f"outlier threshold: log-density {threshold:.6g}" in result.stdout
    assert "1000 training rows" in result.stdout
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    assert open(out).readline().strip() == "log_density,outlier"
    scores = mixture.score_samples(new)
    np.testing.assert_allclose(table[:, 0], scores, rtol=1e-9)
    np.testing.assert_array_equal(table[:, 1], scores < threshold)
    # the new rows' 6 planted outliers are the ones marked (one uniform point may fall among the clusters)
    assert table[-6:, 1].sum() >= 5 and table[:, 1].sum() <= 8


def test_json_reports_the_threshold_and_marks(fitted):
    folder, train, model = fitted
    result = run("score", model, train, "--contamination", "0.05", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    scores = np.asarray(report["log_density"])
    assert report["threshold"] == pytest.approx(np.quantile(scores, 0.05), rel=1e-12)
    assert report["outlier"] == (scores < report["threshold"]).tolist()
    assert sum(report["outlier"]) == 50
    assert report["threshold_source"].startswith("the 1000 training rows")


def test_model_without_training_scores_uses_the_scored_rows_own_quantile(tmp_path):
    X = planted(500, 2)
    model = tmp_path / "plain.gmm"
    gaussmix.save(gaussmix.GaussianMixture(2, random_state=0).fit(X), model)
    result = run("score", model, write_csv(tmp_path / "x.csv", X), "--contamination", "0.1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["threshold"] == pytest.approx(np.quantile(report["log_density"], 0.1), rel=1e-12)
    assert sum(report["outlier"]) == 50
    assert "holds no training log-densities" in result.stderr


def test_contamination_outside_its_range_is_a_usage_error(fitted):
    folder, train, model = fitted
    result = run("score", model, train, "--contamination", "0.7")
    assert result.exit_code == 2 and "0.7" in result.output


@pytest.mark.parametrize("n", [2, 3, 10, 4001])
def test_stored_quantiles_are_exact_up_to_their_step_limit(n):
    scores = np.random.default_rng(n).normal(size=n)
    stored = training_quantiles(scores)
    for q in (0.0, 0.001, 0.01, 0.0137, 0.1, 0.33, 0.5):
        assert threshold_from(stored, q) == pytest.approx(np.quantile(scores, q), rel=0, abs=1e-12)


def test_stored_quantiles_of_large_data_are_close():
    scores = np.random.default_rng(0).standard_t(3, size=200_000)
    stored = training_quantiles(scores)
    assert len(stored["levels"]) == 4001 and stored["n_rows"] == 200_000
    for q in (0.001, 0.01, 0.0137, 0.2):
        assert threshold_from(stored, q) == pytest.approx(np.quantile(scores, q), abs=2e-3)
    assert TRAINING_QUANTILES_KEY == "training_log_density"
