"""A noise component in model files, in ``select``'s grid and on the command line."""

from __future__ import annotations

import json
import math
import warnings
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from gaussmix import GaussianMixture, get_covariance_model, load, save, select
from gaussmix.cli import cli
from gaussmix.io import ModelFileError, load_metadata

from .conftest import PACKAGE_DATA

FAITHFUL = PACKAGE_DATA / "faithful.csv"


@pytest.fixture(scope="module")
def noise_model(faithful):
    mask = np.zeros(faithful.shape[0], bool)
    mask[::10] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(3, covariance_type="VEV", noise_init=mask, random_state=0, tol=1e-6,
                               max_iter=500).fit(faithful)


def _rewritten(path, target, change):
    """A copy of the model file ``path`` at ``target`` with ``change(metadata)`` applied."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as copy:
        for name in source.namelist():
            raw = source.read(name)
            if name == "metadata.json":
                metadata = json.loads(raw)
                change(metadata)
                raw = json.dumps(metadata).encode()
            copy.writestr(name, raw)
    return target


def test_model_file_keeps_the_noise_component_exactly(tmp_path, faithful, noise_model):
    path = tmp_path / "noise.gmm"
    save(noise_model, path)
    loaded = load(path)
    assert load_metadata(path)["schema_version"] == 2
    # fitted with noise_init alone (not saved): the file says noise=True, so a refit has the component
    assert loaded.noise is True
    for name in ("noise_weight_", "noise_volume_", "noise_axes_", "noise_bounds_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(noise_model, name))
    for method in ("predict", "predict_proba", "score_samples"):
        np.testing.assert_array_equal(getattr(loaded, method)(faithful), getattr(noise_model, method)(faithful))
    assert loaded.bic(faithful) == noise_model.bic(faithful)
    np.testing.assert_array_equal(loaded.sample(50)[0], noise_model.sample(50)[0])


def test_model_file_without_noise_stays_schema_one(tmp_path, faithful):
    path = tmp_path / "plain.gmm"
    save(GaussianMixture(2, random_state=0).fit(faithful), path)
    metadata = load_metadata(path)
    assert metadata["schema_version"] == 1 and "noise" not in metadata
    assert not hasattr(load(path), "noise_weight_")


@pytest.mark.parametrize("change, message", [
    (lambda m: m["noise"].update(weight=1.5), r"noise.weight is 1.5, not a number in \[0, 1\)"),
    (lambda m: m["noise"].update(volume=-2.0), "noise.volume is -2.0"),
    (lambda m: m["noise"].update(axes=[[1.0, 1.0], [0.0, 1.0]]), "not orthonormal"),
    (lambda m: m["noise"].update(bounds=[[1.0, 1.0], [0.0, 0.0]]), "lower row exceeds"),
    (lambda m: m["noise"].pop("axes"), "not an object with the entries"),
    (lambda m: m.update(schema_version=1), "a noise component in a file of schema version 1"),
    # the weights and the noise weight must sum to one
    (lambda m: m["noise"].update(weight=m["noise"]["weight"] / 2), "not .* \\(1 less the noise weight\\)"),
])
def test_tampered_noise_entries_are_refused(tmp_path, noise_model, change, message):
    path = tmp_path / "noise.gmm"
    save(noise_model, path)
    target = _rewritten(path, tmp_path / "tampered.gmm", change)
    with pytest.raises(ModelFileError, match=message):
        load(target)


def test_select_fits_every_cell_with_the_noise_and_counts_it(faithful):
    mask = np.zeros(faithful.shape[0], bool)
    mask[::10] = True
    result = select(faithful, range(1, 4), ["EEE", "VVV"], noise_init=mask, random_state=0)
    for row in result.rows:
        gaussians = get_covariance_model(row.covariance_type).n_parameters(row.n_components, 2)
        assert row.n_parameters == gaussians + 2
        model = result.estimators_[(row.n_components, row.covariance_type)]
        assert 0 < model.noise_weight_ < 1
    assert "with a noise component" in result.table()
    # the shared hierarchical start is cut from the rows not marked as noise: a cell's fit is the
    # one init_params="hierarchical" gives alone
    cell = next(row for row in result.rows if (row.n_components, row.covariance_type) == (2, "EEE"))
    alone = GaussianMixture(2, covariance_type="EEE", noise_init=mask, init_params="hierarchical",
                            tol=1e-5, max_iter=500).fit(faithful)
    assert cell.bic <= alone.bic(faithful) + 1e-9


def test_select_default_noise_start_and_a_failing_option(faithful):
    result = select(faithful, [2], ["EEE"], noise=True, random_state=0)
    assert result.best.n_parameters == get_covariance_model("EEE").n_parameters(2, 2) + 2
    with pytest.raises(ValueError, match="every fit of the selection grid failed"):
        select(faithful, [2], ["EEE"], noise_init=np.zeros(3, bool))


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_command_line_fits_saves_and_predicts_with_noise(tmp_path):
    model_path = tmp_path / "model.gmm"
    result = _run("fit", FAITHFUL, "-k", "2-3", "-c", "EEE", "--noise", "--out", model_path)
    assert result.exit_code == 0, result.output
    assert "every fit with a noise component" in result.output and "noise: weight" in result.output
    proba = _run("predict", model_path, FAITHFUL, "--proba")
    assert proba.exit_code == 0 and proba.output.splitlines()[0].endswith(",noise")
    labels = _run("predict", model_path, FAITHFUL)
    assert "-1" in labels.output.splitlines()[1:]
    summary = json.loads(_run("fit", FAITHFUL, "-k", "2", "-c", "EEE", "--noise", "--noise-volume", "500",
                              "--json").output)
    assert summary["model"]["noise_volume"] == 500.0
    assert 0 < summary["model"]["noise_weight"] < 1


def test_command_line_noise_volume_needs_noise():
    result = _run("fit", FAITHFUL, "-k", "2", "--noise-volume", "10")
    assert result.exit_code != 0 and "add --noise" in result.output


def test_plot_draws_noise_rows_in_grey_and_the_report_lists_the_noise(tmp_path, faithful, noise_model):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from gaussmix.plotting import NOISE_COLOUR, plot_model
    from gaussmix.report import component_table_html

    figure = plot_model(noise_model, faithful)
    scatter = figure.axes[0].collections[-1]
    grey = np.all(np.isclose(scatter.get_facecolors()[:, :3], NOISE_COLOUR[:3]), axis=1)
    assert grey.sum() == np.count_nonzero(noise_model.predict(faithful) == -1) > 0
    html = component_table_html(noise_model, faithful)
    assert 'data-component="noise"' in html and f'data-value="{grey.sum()}"' in html
