"""Model selection with default settings against R mclust's own output.

The numbers come from ``benchmarks/mclust_select_reference.R`` (mclust 6.0.0, Debian's
r-cran-mclust), committed under ``benchmarks/results/mclust/select``; no R is needed here.
mclust's sign is the opposite of gaussmix's (higher is better there).
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from gaussmix import GaussianMixture, select

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "benchmarks" / "results" / "mclust" / "select"
MCLUST_NAME = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}


def _chosen() -> dict:
    with open(REFERENCE / "chosen.csv", newline="") as handle:
        return {row["data"]: row for row in csv.DictReader(handle)}


def _data(name: str) -> np.ndarray:
    path = {"faithful": ROOT.parent / "shared" / "data" / "faithful.csv",
            "iris": ROOT.parent / "shared" / "data" / "iris.csv"}.get(name, ROOT / "benchmarks" / "data" / f"{name}.csv")
    if not path.exists():
        pytest.skip(f"{path} is not here")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    numeric = [j for j, cell in enumerate(rows[1]) if _is_number(cell)]
    return np.array([[float(row[j]) for j in numeric] for row in rows[1:]])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("name", ["faithful", "iris", "diabetes", "acidity"])
def test_default_select_chooses_mclusts_model_with_its_bic(name):
    reference = _chosen()[name]
    X = _data(name)
    result = select(X, random_state=0)
    best = result.best
    mclust_name = MCLUST_NAME.get(best.covariance_type, best.covariance_type)
    assert (mclust_name, best.n_components) == (reference["model"], int(reference["K"]))
    assert abs(-best.bic - float(reference["bic"])) < 0.01
    assert not best.degenerate and not result.best_is_degenerate
    if X.shape[1] == 1:  # mclust's two univariate models, each fitted once
        assert result.covariance_types == ["E", "V"] and len(result.rows) == 18


def test_iris_full_nine_as_the_old_select_chose_it_is_degenerate():
    X = _data("iris")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        allowed = select(X, 9, "full", random_state=0, allow_degenerate=True, tol=1e-3, max_iter=100)
    # The best likelihood of K = 9 sits on components held up by reg_covar: mclust's NA.
    assert allowed.best.degenerate
    assert allowed.best.bic < 561.7285  # why an unguarded BIC preferred it to VEV, 2


def _mclust_model(name: str) -> GaussianMixture:
    """A GaussianMixture holding the parameters mclust fitted (its chosen model)."""
    with open(REFERENCE / f"{name}_params.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    features = [key for key in rows[0] if key not in ("component", "weight") and not key.startswith("sigma_")]
    D, K = len(features), len(rows)
    weights = np.array([float(row["weight"]) for row in rows])
    means = np.array([[float(row[f]) for f in features] for row in rows])
    covariances = np.array([[[float(row[f"sigma_{i + 1}_{j + 1}"]) for j in range(D)] for i in range(D)]
                            for row in rows])
    model = GaussianMixture(K, covariance_type="full")
    model.weights_, model.means_, model.covariances_ = weights, means, covariances
    model.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(covariances))
    model.precisions_ = np.linalg.inv(covariances)
    model.n_features_in_ = D
    return model


@pytest.mark.parametrize("name", ["faithful", "diabetes", "acidity"])
def test_bic_and_icl_of_mclusts_parameters_equal_mclusts(name):
    reference = _chosen()[name]
    X = _data(name)
    model = _mclust_model(name)
    # mclust counts the constrained structure's parameters; the dense model would count more
    n_parameters = {"faithful": 11, "diabetes": 29, "acidity": 4}[name]
    log_likelihood = float(np.sum(model.score_samples(X)))
    # mclust's own E-step at these parameters (its fit's loglik lags one M-step behind them)
    assert log_likelihood == pytest.approx(float(reference["loglik_at_params"]), abs=1e-6)
    resp = model.predict_proba(X)
    bic = -2 * log_likelihood + n_parameters * np.log(len(X))
    assert -bic == pytest.approx(float(reference["bic_at_params"]), abs=1e-6)
    icl_term = model.icl(X) - model.bic(X)  # the classification part alone, independent of the count
    assert -(bic + icl_term) == pytest.approx(float(reference["icl_at_params"]), abs=1e-6)
    assert icl_term == pytest.approx(-2 * np.sum(np.log(resp.max(axis=1))), rel=1e-12)


def test_command_line_and_python_give_the_same_table(tmp_path):
    click_testing = pytest.importorskip("click.testing")
    from gaussmix.cli import cli

    X = _data("acidity")
    path = tmp_path / "acidity.csv"
    np.savetxt(path, X, delimiter=",", header="acidity", comments="")
    outcome = click_testing.CliRunner().invoke(cli, ["fit", str(path), "--json", "-q"])
    assert outcome.exit_code == 0, outcome.output
    printed = json.loads(outcome.stdout)["selection"]
    python = select(X, random_state=0).to_dict()
    assert printed["rows"] == python["rows"] and printed["best"] == python["best"]
    assert printed["settings"]["tol"] == python["settings"]["tol"] == 1e-5
