"""The gaussmix command line, driven through click's CliRunner."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner

import gaussmix
from gaussmix._progress import GridProgress
from gaussmix.cli import cli, parse_components, parse_covariance
from gaussmix.em import IterationEvent
from gaussmix.selection import SelectionRow

from .conftest import PACKAGE_DATA, make_blobs

# The tests compare with the library on plain arrays; the CLI itself matches columns by name.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

FAITHFUL = PACKAGE_DATA / "faithful.csv"
FAST = ["-k", "1-2", "-c", "full,diag", "--n-init", "1", "--tol", "1e-3"]


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def write_csv(path, header, values):
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in values]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def blobs_csv(tmp_path_factory):
    X, _ = make_blobs(n_samples=90, n_features=2, n_components=2, seed=3)
    return write_csv(tmp_path_factory.mktemp("data") / "blobs.csv", ["a", "b"], X), X


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, blobs_csv):
    path = tmp_path_factory.mktemp("model") / "model.gmm"
    result = run("fit", blobs_csv[0], *FAST, "--out", path, "--quiet")
    assert result.exit_code == 0, result.output
    return path


def test_fit_on_old_faithful_finds_tied_three_and_saves_everything(tmp_path):
    out, plot = tmp_path / "model.gmm", tmp_path / "fit.png"
    result = run("fit", FAITHFUL, "-k", "2-3", "-c", "tied,full", "--out", out, "--plot", plot, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    best = report["selection"]["best"]
    assert (best["n_components"], best["covariance_type"]) == (3, "tied")
    assert abs(best["bic"] - 2314.386) < 0.2  # mclust: EEE, 3 -> -2314.386 in its sign
    assert report["model"]["feature_names"] == ["eruptions", "waiting"]
    model = gaussmix.load(out)
    assert list(model.feature_names_in_) == ["eruptions", "waiting"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_table_for_people(blobs_csv):
    result = run("fit", blobs_csv[0], *FAST)
    assert result.exit_code == 0, result.output
    assert "BIC (lower is better)" in result.stdout
    assert "chosen: K=" in result.stdout and "mclust's sign" in result.stdout
    assert "covariance" in result.stdout and "mean" in result.stdout
    assert "fitting" not in result.stderr  # no progress bar when not on a terminal


def test_predict_matches_the_library_and_matches_columns_by_name(tmp_path, blobs_csv, model_file):
    path, X = blobs_csv
    model = gaussmix.load(model_file)
    result = run("predict", model_file, path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.split()
    assert lines[0] == "label"
    assert np.array_equal(np.array(lines[1:], dtype=int), model.predict(X))
    # columns found by name, in any order, with extra columns ignored
    swapped = write_csv(tmp_path / "swapped.csv", ["extra", "b", "a"], np.column_stack([X[:, 0] * 0, X[:, 1], X[:, 0]]))
    out = tmp_path / "resp.csv"
    result = run("predict", model_file, swapped, "--proba", "--out", out)
    assert result.exit_code == 0, result.output
    resp = np.loadtxt(out, delimiter=",", skiprows=1)
    assert np.allclose(resp, model.predict_proba(X), rtol=1e-8, atol=1e-12)
    assert np.allclose(resp.sum(axis=1), 1)


def test_score_rows_and_mean(tmp_path, blobs_csv, model_file):
    path, X = blobs_csv
    out = tmp_path / "scores.csv"
    result = run("score", model_file, path, "--out", out)
    assert result.exit_code == 0, result.output
    scores = np.loadtxt(out, delimiter=",", skiprows=1)
    expected = gaussmix.load(model_file).score_samples(X)
    assert np.allclose(scores, expected, rtol=1e-9)
    assert f"mean log-density: {np.mean(expected):.6g}" in result.stdout
    data = json.loads(run("score", model_file, path, "--json").stdout)
    assert data["mean"] == pytest.approx(np.mean(expected))


def test_sample_is_reproducible_and_named(tmp_path, model_file):
    first = run("sample", model_file, "-n", 50, "--seed", 1)
    second = run("sample", model_file, "-n", 50, "--seed", 1)
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    lines = first.stdout.strip().split("\n")
    assert lines[0] == "a,b,component" and len(lines) == 51
    out = tmp_path / "s.npy"
    assert run("sample", model_file, "-n", 7, "--out", out).exit_code == 0
    assert np.load(out).shape == (7, 2)


def test_info_and_plot(tmp_path, blobs_csv, model_file):
    result = run("info", model_file)
    assert result.exit_code == 0, result.output
    assert "covariance:" in result.stdout and "features:    2 (a, b)" in result.stdout
    assert json.loads(run("info", model_file, "--json").stdout)["schema_version"] == 1
    out = tmp_path / "fig.png"
    result = run("plot", model_file, blobs_csv[0], "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert run("plot", model_file, "--out", tmp_path / "no-data.svg").exit_code == 0


def test_float32_fit_keeps_float32(tmp_path, blobs_csv):
    out = tmp_path / "m32.gmm"
    result = run("fit", blobs_csv[0], *FAST, "--dtype", "float32", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert gaussmix.load(out).means_.dtype == np.float32
    assert "dtype:       float32" in run("info", out).stdout


def test_tsv_npy_and_drop_missing(tmp_path, blobs_csv):
    _, X = blobs_csv
    tsv = tmp_path / "d.tsv"
    tsv.write_text("a\tb\n" + "\n".join(f"{x}\t{y}" for x, y in X) + "\n")
    npy = tmp_path / "d.npy"
    np.save(npy, X)
    reports = [json.loads(run("fit", path, *FAST, "--json").stdout) for path in (tsv, npy)]
    assert reports[0]["selection"] == reports[1]["selection"]
    assert reports[1]["model"]["feature_names"] == ["x0", "x1"]
    gappy = write_csv(tmp_path / "gappy.csv", ["a", "b"], X.tolist())
    text = gappy.read_text().split("\n")
    text[3] = "1.0,"          # empty cell
    text[6] = "nan,2"
    gappy.write_text("\n".join(text))
    result = run("fit", gappy, *FAST, "--drop-missing")
    assert result.exit_code == 0, result.output
    assert "dropped 2 row(s)" in result.stderr


def test_parquet(tmp_path, blobs_csv):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    _, X = blobs_csv
    path = tmp_path / "d.parquet"
    parquet.write_table(pyarrow.table({"a": X[:, 0], "b": X[:, 1], "name": ["x"] * len(X)}), path)
    assert run("fit", path, *FAST, "--columns", "a,b", "--json").exit_code == 0
    assert "column 'name' is not numeric" in run("fit", path, *FAST).stderr


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, blobs_csv, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1 not really")
    result = run("fit", path)
    assert result.exit_code != 0
    assert result.stderr.strip() == "gaussmix: error: reading Parquet needs pyarrow: pip install pyarrow"


def test_plot_without_matplotlib_names_the_extra(tmp_path, model_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = run("plot", model_file, "--out", tmp_path / "f.png")
    assert result.exit_code != 0
    assert "pip install gaussmix[plot]" in result.stderr


# ------------------------------------------------------------------ bad input
def _bad_inputs(tmp):
    X, _ = make_blobs(n_samples=30, n_features=2, seed=0)
    good = write_csv(tmp / "good.csv", ["a", "b"], X)
    empty = tmp / "empty.csv"
    empty.write_text("")
    header_only = tmp / "header.csv"
    header_only.write_text("a,b\n")
    text = write_csv(tmp / "text.csv", ["a", "b"], [[1, "x"], [2, "y"], [3, "z"]])
    nan = write_csv(tmp / "nan.csv", ["a", "b"], [[1, 2], [np.nan, 1], [3, np.inf], [4, 5]] * 3)
    few = write_csv(tmp / "few.csv", ["a", "b"], X[:3])
    three = tmp / "three.npy"
    np.save(three, np.ones((10, 3)))
    model = tmp / "m.gmm"
    gaussmix.save(gaussmix.GaussianMixture(2, random_state=0).fit(X), model)
    broken = tmp / "broken.gmm"
    broken.write_bytes(model.read_bytes()[:200])
    return [
        (["fit", tmp / "missing.csv"], "missing.csv: no such file"),
        (["fit", empty], "empty.csv: is empty"),
        (["fit", header_only], "header.csv: has no data rows"),
        (["fit", text], "column 'b' is not numeric (line 2: 'x')"),
        (["fit", good, "--columns", "a,nope"], "unknown column(s) 'nope'; its columns are: a, b"),
        (["fit", nan], "6 row(s) hold missing (NaN/empty) or infinite values, at line(s) 3, 4, 7, 8, 11, 12"),
        (["fit", few, "-k", "1-5"], "has 3 rows; K = 5 components need at least 5 rows"),
        (["fit", model], "is a gaussmix model file, not data"),
        (["predict", model, three], "the model expects 2 feature(s) but the data has 3 column(s)"),
        (["predict", good, good], "good.csv: not a gaussmix model file"),
        (["predict", broken, good], "broken.gmm: not a gaussmix model file, or truncated/corrupted"),
        (["fit", good, "--covariance", "fulll"], "unknown covariance type 'fulll'; valid: all,"),
        (["fit", good, "--dtype", "float16"], "'float16' is not one of 'float64', 'float32'"),
        (["fit", good, "--components", "x-3"], "use a number, a range like 1-9"),
        (["fit", good, "--components", "0-3"], "ranges go from 1 upwards"),
        (["fit", good, "--criterion", "bci"], "'bci' is not one of 'bic', 'aic', 'icl'"),
        (["fit", good, "--n-init", "0"], "0 is not in the range x>=1"),
        (["fit", good, "--init", "magic"], "'magic' is not one of"),
        (["sample", model, "-n", "-5"], "-5 is not in the range x>=1"),
        (["plot", model, "--out", tmp / "f.xyz"], "cannot write a .xyz image"),
        (["fit", good, "--out", tmp / "nodir" / "m.gmm", *FAST], "directory"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ]


def test_every_bad_input_is_one_line_on_stderr(tmp_path):
    for args, message in _bad_inputs(tmp_path):
        result = run(*args)
        assert result.exit_code != 0, (args, result.output)
        assert isinstance(result.exception, SystemExit), (args, result.exception)
        lines = result.stderr.strip().split("\n")
        assert len(lines) == 1 and lines[0].startswith("gaussmix: error: "), (args, result.stderr)
        assert message in lines[0], (args, lines[0])
        assert "Traceback" not in result.output


def test_drop_missing_hint_and_failed_cells(tmp_path):
    # two distinct points, each repeated along one line: K = 1 is well conditioned, larger K collapse without reg_covar
    X = np.repeat(np.eye(2), 10, axis=0)
    path = write_csv(tmp_path / "two.csv", ["a", "b"], X + 1e-3 * np.arange(20)[:, None])
    result = run("fit", path, "-k", "1-4", "-c", "full", "--reg-covar", "0", "--n-init", "1")
    assert result.exit_code == 0, result.output
    assert "failed" in result.stdout and "collapsed" in result.stderr


def test_failed_output_leaves_no_partial_file(tmp_path, model_file, monkeypatch):
    out = tmp_path / "samples.csv"
    out.write_text("old\n")
    import gaussmix._tabular as tabular

    def broken_writer(stream, *args):
        stream.write("partial")
        raise OSError("disk full")

    monkeypatch.setattr(tabular, "_write_delimited", broken_writer)
    result = run("sample", model_file, "-n", 5, "--out", out)
    assert result.exit_code != 0 and "disk full" in result.stderr
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.csv"]


# ------------------------------------------------------------------ parsing and progress
@pytest.mark.parametrize("text, expected", [
    ("3", [3]), ("1-4", [1, 2, 3, 4]), ("1,3,5", [1, 3, 5]), ("2-4,8", [2, 3, 4, 8]), ("4,1-2", [1, 2, 4]),
])
def test_parse_components(text, expected):
    assert parse_components(text) == expected


def test_parse_covariance_accepts_names_aliases_and_all():
    assert parse_covariance("all") == ["all"]  # select() expands it (E and V on one feature)
    assert parse_covariance("full, EEE") == ["full", "EEE"]
    with pytest.raises(click.BadParameter):
        parse_covariance("nope")


def test_progress_bar_advances_to_the_end_and_stays_silent_when_disabled():
    stream = io.StringIO()
    progress = GridProgress(2, 2, 10, enabled=True, delay=0.0, file=stream)
    with progress:
        for cell in range(2):
            for restart in range(2):
                for n_iter in range(1, 4):
                    progress.on_iteration(IterationEvent(n_iter, 10, -1.0, 0.1, restart, 2))
                    assert progress.position <= progress.total
                    assert f"fit {cell + 1}/2, restart {restart + 1}/2, iteration {n_iter}," in progress.status
            progress.on_cell(SelectionRow(1, "full", -1.0, 5, 1.0, 1.0, 1.0, True))
    assert progress.position == progress.total == 40
    silent = io.StringIO()
    with GridProgress(1, 1, 5, enabled=False, delay=0.0, file=silent) as quiet:
        quiet.on_iteration(IterationEvent(1, 5, -1.0, 0.1))
    assert silent.getvalue() == ""


def test_python_dash_m_entry_point_and_lazy_matplotlib():
    # runpy is what ``python -m gaussmix`` does; matplotlib must wait until a plot is drawn.
    code = (
        "import sys, runpy; import gaussmix.cli, gaussmix.plotting; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported early'; "
        "sys.argv = ['gaussmix', 'fit', '--help']; runpy.run_module('gaussmix', run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Examples:" in result.stdout and "--components" in result.stdout


def test_fit_accepts_mclust_names_and_starts_robustly_by_default(blobs_csv):
    result = run("fit", blobs_csv[0], "-k", "1-2", "-c", "EII,EVE,VEV", "--tol", "1e-3", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["selection"]["rows"]
    assert {row["covariance_type"] for row in rows} == {"EII", "EVE", "VEV"}
    # without --init, select() picks its own robust starts; naming one kind is honoured too
    hierarchical = run("fit", blobs_csv[0], "-k", "2", "-c", "EVE", "--init", "hierarchical", "--json")
    assert hierarchical.exit_code == 0, hierarchical.output


def test_covariance_all_means_the_fourteen_mclust_structures():
    from gaussmix.selection import _check_covariance_types as grid

    structures = {gaussmix.get_covariance_model(name) for name in grid(parse_covariance("all"), 2)}
    assert structures == {gaussmix.get_covariance_model(name) for name in gaussmix.MCLUST_COVARIANCE_TYPES}


def test_fit_screen_iter_is_selects(blobs_csv):
    path, X = blobs_csv
    result = run("fit", path, "-k", "2-3", "-c", "full,EEE", "--screen-iter", "2", "--seed", "0", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["selection"]["rows"]
    expected = gaussmix.select(X, [2, 3], ["full", "EEE"], random_state=0, screen_iter=2)
    assert [row["bic"] for row in rows] == pytest.approx([row.bic for row in expected.rows], rel=1e-12)
    bad = run("fit", path, "--screen-iter", "0")
    assert bad.exit_code != 0 and "0 is not in the range x>=1" in bad.stderr
