"""The degenerate-fit rule (gaussmix.degeneracy): one rule for every structure, scale-free."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gaussmix import CollapsedComponentError, GaussianMixture, select
from gaussmix.covariance import canonical_covariance_types
from gaussmix.degeneracy import DegenerateFitWarning

STRUCTURES = canonical_covariance_types()


def _blobs_and_repeated_row(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two 3-D clusters of 60 rows and 4 copies of one far row; the three centres."""
    rng = np.random.RandomState(seed)
    X = np.vstack([rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + 6, np.tile([[20.0, -5.0, 3.0]], (4, 1))])
    return X, np.array([[0.0, 0, 0], [6, 6, 6], [20, -5, 3]])


def _fit_quietly(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(**params).fit(X)


@pytest.mark.parametrize("covariance_type", STRUCTURES)
def test_a_component_on_copies_of_one_row_is_degenerate_where_its_volume_is_free(covariance_type):
    X, means = _blobs_and_repeated_row()
    model = _fit_quietly(X, n_components=3, covariance_type=covariance_type, means_init=means, random_state=0)
    # Variable volume (mclust's V.., scikit-learn's full/diag/spherical): the component on the
    # copies shrinks onto them and is held up by reg_covar. With equal volumes its covariance is
    # the shared one, the likelihood stays bounded and the fit is sound.
    mclust = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}.get(covariance_type, covariance_type)
    expected = [False, False, mclust.startswith("V")]
    assert model.degenerate_components_.tolist() == expected
    assert model.degenerate_ is expected[2]


@pytest.mark.parametrize("covariance_type", STRUCTURES)
def test_ordinary_fits_are_not_degenerate_and_do_not_warn(covariance_type):
    X, _ = _blobs_and_repeated_row()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateFitWarning)
        model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X[:120])
    assert not model.degenerate_ and not model.degenerate_components_.any()


@pytest.mark.parametrize("covariance_type", STRUCTURES)
def test_repeated_points_without_regularisation_never_pass_silently(covariance_type):
    # Three distinct points, three copies each, reg_covar=0: every component has no spread.
    X = np.tile(np.array([[1.0, 2.0], [3.0, 1.0], [0.0, 5.0]]), (3, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = GaussianMixture(3, covariance_type=covariance_type, reg_covar=0, random_state=0).fit(X)
        except CollapsedComponentError:
            return
    assert model.degenerate_
    assert any(issubclass(w.category, DegenerateFitWarning) for w in caught)


@pytest.mark.parametrize("covariance_type", ["full", "VVE", "diag", "spherical"])
def test_the_rule_does_not_depend_on_units_or_offsets(covariance_type):
    X, means = _blobs_and_repeated_row(seed=1)
    reference = _fit_quietly(X, n_components=3, covariance_type=covariance_type, means_init=means, random_state=0)
    cases = [(1e-4, 0.0), (1e5, 0.0), (1.0, 1e6)]
    if covariance_type in ("full", "diag"):  # the structures that per-feature units leave as they are
        cases.append((np.array([1e-3, 1.0, 1e3]), -50.0))
    for scale, offset in cases:
        moved = X * scale + offset
        # reg_covar scales with the data so that the fits are the same fits in other units
        model = _fit_quietly(moved, n_components=3, covariance_type=covariance_type,
                             means_init=means * scale + offset, reg_covar=1e-6 * np.min(scale) ** 2,
                             random_state=0)
        assert model.degenerate_components_.tolist() == reference.degenerate_components_.tolist()


def test_a_constant_column_makes_every_component_degenerate():
    X, _ = _blobs_and_repeated_row()
    X = np.column_stack([X[:120], np.full(120, 7.0)])
    model = _fit_quietly(X, n_components=2, covariance_type="full", random_state=0)
    assert model.degenerate_components_.all()


def test_rank_deficient_data_warn_with_their_own_warning():
    X = np.random.RandomState(0).rand(15, 30)  # 15 rows cannot determine a 30-D covariance
    with pytest.warns(DegenerateFitWarning, match="component\\(s\\) 0 .* degenerate"):
        GaussianMixture(1, random_state=0).fit(X)


def test_select_never_chooses_a_degenerate_cell_unless_allowed():
    X, _ = _blobs_and_repeated_row()
    grid = dict(n_components=[2, 3], covariance_types=["spherical"], random_state=0, init_params="k-means++",
                means_init=None)
    del grid["means_init"]
    allowed = select(X, allow_degenerate=True, **grid)
    default = select(X, **grid)
    degenerate = [row for row in default.rows if row.degenerate]
    assert degenerate, "the 3-component fit should sit on the copies"
    assert not default.best.degenerate
    assert allowed.best.degenerate and allowed.best.bic < default.best.bic
    assert "!" in default.table() and "degenerate" in default.table()


def test_a_grid_of_only_degenerate_cells_chooses_loudly():
    X, means = _blobs_and_repeated_row()
    with pytest.warns(DegenerateFitWarning, match="every successful fit of the selection grid is degenerate"):
        result = select(X, n_components=[3], covariance_types=["full"], init_params="k-means++", random_state=0)
    assert result.best_is_degenerate


def test_a_loaded_model_is_judged_by_the_same_rule(tmp_path):
    from gaussmix import load, save

    X, means = _blobs_and_repeated_row()
    model = _fit_quietly(X, n_components=3, covariance_type="VVE", means_init=means, random_state=0)
    save(model, tmp_path / "model.gmm")
    loaded = load(tmp_path / "model.gmm")
    assert loaded.degenerate_components_.tolist() == model.degenerate_components_.tolist() == [False, False, True]


def test_command_line_marks_degenerate_cells_and_allow_degenerate_lets_them_win(tmp_path):
    click_testing = pytest.importorskip("click.testing")
    import json

    from gaussmix.cli import cli

    X, _ = _blobs_and_repeated_row()
    path = tmp_path / "data.csv"
    np.savetxt(path, X, delimiter=",", header="a,b,c", comments="")
    runner = click_testing.CliRunner()
    arguments = ["fit", str(path), "-k", "2,3", "-c", "spherical", "--init", "k-means++"]
    text = runner.invoke(cli, arguments)
    assert text.exit_code == 0, text.output
    assert "!" in text.stdout and "degenerate" in text.stdout and "chosen: K=2" in text.stdout
    chosen = [json.loads(runner.invoke(cli, arguments + extra + ["--json"]).stdout)["selection"]["best"]
              for extra in ([], ["--allow-degenerate"])]
    assert (chosen[0]["n_components"], chosen[0]["degenerate"]) == (2, False)
    assert (chosen[1]["n_components"], chosen[1]["degenerate"]) == (3, True)
