"""CLI defects a new user met (issue 20, item 6): each test failed before its fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gaussmix
import gaussmix.cli as cli_module
from gaussmix._validation import check_data_for_mixture
from gaussmix.cli import cli, parse_covariance
from gaussmix.exceptions import RepeatedRowsWarning

from .conftest import make_blobs

FAST = ["-k", "1-2", "-c", "full", "--n-init", "1", "--tol", "1e-3"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(result):
    """The single ``gaussmix: error:`` line of a failed run."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("gaussmix: error: "), result.stderr
    return lines[0]


def write_csv(path, header, values, delimiter=","):
    lines = [delimiter.join(header)] + [delimiter.join(str(v) for v in row) for row in values]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def blobs_csv(tmp_path):
    X, _ = make_blobs(n_samples=60, n_features=2, n_components=2, seed=1)
    return write_csv(tmp_path / "blobs.csv", ["a", "b"], X)


@pytest.fixture
def no_fit(monkeypatch):
    """Make any fit fail loudly: the checks under test must stop the command first."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the fit ran before the output paths were checked")

    monkeypatch.setattr(cli_module, "select", forbidden)


# ------------------------------------------------------------------ outputs checked before the fit
@pytest.mark.parametrize("option", ["--out", "--plot"])
def test_output_in_a_missing_directory_fails_before_the_fit(tmp_path, blobs_csv, no_fit, option):
    target = tmp_path / "nodir" / "result.png"
    line = one_error_line(run("fit", blobs_csv, *FAST, option, target))
    assert f"{option} {target}: directory {target.parent} does not exist" in line
    assert "mkdir -p" in line


def test_output_under_a_file_or_at_a_directory_fails_before_the_fit(tmp_path, blobs_csv, no_fit):
    under_file = blobs_csv / "model.gmm"  # a path below a plain file (like /dev/null/x)
    line = one_error_line(run("fit", blobs_csv, *FAST, "--out", under_file))
    assert f"--out {under_file}: {blobs_csv} is not a directory" in line
    line = one_error_line(run("fit", blobs_csv, *FAST, "--plot", f"{tmp_path}/figures/"))
    assert f"--plot {tmp_path}/figures/: is a directory; give a file name in it" in line
    assert "is a directory" in one_error_line(run("fit", blobs_csv, *FAST, "--plot", tmp_path))  # click's check


def test_unwritable_output_directory_fails_before_the_fit(tmp_path, blobs_csv, no_fit, monkeypatch):
    # Root may write anywhere, so the permission is simulated for the target's directory only.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = cli_module.os.access
    monkeypatch.setattr(cli_module.os, "access", lambda path, mode: str(path) != str(locked) and real_access(path, mode))
    line = one_error_line(run("fit", blobs_csv, *FAST, "--out", locked / "m.gmm"))
    assert f"--out {locked / 'm.gmm'}: directory {locked} is not writable" in line


def test_plot_format_and_same_file_are_checked_before_the_fit(tmp_path, blobs_csv, no_fit):
    line = one_error_line(run("fit", blobs_csv, *FAST, "--plot", tmp_path / "fit.xyz"))
    assert "cannot write a .xyz image" in line
    same = tmp_path / "same.png"
    line = one_error_line(run("fit", blobs_csv, *FAST, "--out", same, "--plot", same))
    assert "--out and --plot both name" in line


def test_other_commands_check_out_before_working(tmp_path, blobs_csv, monkeypatch):
    model = tmp_path / "m.gmm"
    X, _ = make_blobs(n_samples=60, n_features=2, n_components=2, seed=1)
    gaussmix.save(gaussmix.GaussianMixture(2, random_state=0).fit(X), model)

    def forbidden(path):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(cli_module, "load", forbidden)
    missing = tmp_path / "nodir" / "x.csv"
    for args in (["predict", model, blobs_csv], ["score", model, blobs_csv], ["sample", model],
                 ["plot", model]):
        line = one_error_line(run(*args, "--out", missing))
        assert f"--out {missing}: directory {missing.parent} does not exist" in line, args


# ------------------------------------------------------------------ -c full,all
def test_all_mixed_with_names_is_their_union_by_structure():
    from gaussmix.selection import _check_covariance_types as grid

    def types(text, n_features=2):
        return grid(parse_covariance(text), n_features)

    everything = types("all")
    assert everything == gaussmix.covariance.canonical_covariance_types()
    assert types("full,all") == everything  # "full" is all's own name for VVV
    mixed = types("EEE,all")
    assert mixed[0] == "EEE" and "tied" not in mixed  # tied is EEE: one fit, by the name given
    assert len(mixed) == len(everything)
    assert types("full,VVV,diag") == ["full", "diag"]
    assert types("full,all", n_features=1) == ["full", "E"]  # one feature: mclust's E and V


def test_cli_accepts_full_comma_all(blobs_csv):
    result = run("fit", blobs_csv, "-k", "1", "-c", "full,all", "--n-init", "1", "--tol", "1e-3", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["selection"]["rows"]
    assert len(rows) == len(gaussmix.MCLUST_COVARIANCE_TYPES)


# ------------------------------------------------------------------ too few rows
def test_one_row_says_a_fit_needs_two(tmp_path):
    one = write_csv(tmp_path / "one.csv", ["a", "b"], [[1.0, 2.0]])
    line = one_error_line(run("fit", one, "-k", "1", "-c", "full"))
    assert line.endswith("one.csv: has 1 row; a fit needs at least 2 rows: give more data")
    line = one_error_line(run("fit", one, "-k", "1-4", "-c", "full"))
    assert "has 1 row; a fit needs at least 2 rows (4 for K = 4 components)" in line


def test_too_few_rows_for_k_names_what_k_needs(tmp_path):
    three = write_csv(tmp_path / "three.csv", ["a", "b"], [[1.0, 2.0], [2.0, 1.0], [0.0, 3.0]])
    line = one_error_line(run("fit", three, "-k", "2-5", "-c", "full"))
    assert "has 3 rows; K = 5 components need at least 5 rows: use --components up to 3" in line


# ------------------------------------------------------------------ --columns ""
@pytest.mark.parametrize("value", ["", " , "])
def test_empty_columns_is_a_clear_usage_error(blobs_csv, value):
    line = one_error_line(run("fit", blobs_csv, *FAST, "--columns", value))
    assert "--columns is empty: give column names separated by commas" in line


# ------------------------------------------------------------------ unwritable numba cache
def _copy_without_writable_pycache(destination):
    """A copy of the gaussmix package whose ``__pycache__`` directories cannot be created."""
    package = destination / "gaussmix"
    shutil.copytree(Path(gaussmix.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    for directory in [package, *(p for p in package.rglob("*") if p.is_dir())]:
        (directory / "__pycache__").write_text("")  # a file where the directory would go
    return destination


def test_unwritable_numba_cache_falls_back_with_one_warning_line(tmp_path, blobs_csv):
    pytest.importorskip("numba")
    root = _copy_without_writable_pycache(tmp_path / "readonly")
    # Paths under a plain file cannot be created, even by root: no cache directory anywhere.
    environment = {key: value for key, value in os.environ.items() if key != "GAUSSMIX_NUMBA"}
    environment.update(NUMBA_CACHE_DIR="/dev/null/numba", HOME="/dev/null", XDG_CACHE_HOME="/dev/null/cache",
                       PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, "-m", "gaussmix", "fit", str(blobs_csv), *FAST, "--json"],
                            capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["model"]["feature_names"] == ["a", "b"]
    lines = result.stderr.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("gaussmix: warning: numba found no writable cache"), lines
    assert "set NUMBA_CACHE_DIR" in lines[0]


# ------------------------------------------------------------------ separators
def test_semicolon_and_tab_separated_csv_are_read_as_such(tmp_path):
    X, _ = make_blobs(n_samples=60, n_features=2, n_components=2, seed=1)
    reports = []
    for name, delimiter in (("comma.csv", ","), ("semicolon.csv", ";"), ("tabs.csv", "\t")):
        path = write_csv(tmp_path / name, ["a", "b"], X, delimiter=delimiter)
        result = run("fit", path, *FAST, "--json")
        assert result.exit_code == 0, (name, result.output)
        reports.append(json.loads(result.stdout))
    assert reports[1] == reports[0] == reports[2]
    assert reports[1]["model"]["feature_names"] == ["a", "b"]


def test_decimal_commas_are_named(tmp_path):
    path = tmp_path / "european.csv"
    path.write_text("a;b\n1,5;2,25\n2,5;3,0\n0,5;1,75\n")
    line = one_error_line(run("fit", path, "-k", "1", "-c", "full"))
    assert "column 'a' is not numeric (line 2: '1,5')" in line
    assert "decimal comma" in line and "'.' as the decimal mark" in line


def test_unclear_separators_are_refused_with_a_hint(tmp_path):
    uneven = tmp_path / "uneven.csv"
    uneven.write_text("a;b\n1;2\n3;4;5\n")
    line = one_error_line(run("fit", uneven, "-k", "1"))
    assert "the file looks ';'-separated" in line and "do not split into the same number of fields" in line
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("a;b\tc\n1;2\t3\n4;5\t6\n")
    line = one_error_line(run("fit", mixed, "-k", "1"))
    assert "holds no ',' but both tab and ';', so its separator is unclear" in line


def test_one_column_with_a_semicolon_in_its_name_still_reads(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("length;mm\n" + "\n".join(str(v) for v in np.linspace(0, 1, 20)) + "\n")
    result = run("fit", path, "-k", "1", "-c", "full", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["feature_names"] == ["length;mm"]


# ------------------------------------------------------------------ data no mixture can describe
def _with_column(X, column):
    return np.column_stack([X, column])


@pytest.fixture
def X():
    return make_blobs(n_samples=80, n_features=3, n_components=2, seed=2)[0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_constant_column_is_refused_by_name(X, dtype):
    data = _with_column(X, np.full(len(X), 7.5)).astype(dtype)
    with pytest.raises(ValueError, match=r"column 'k' is constant .* drop it"):
        check_data_for_mixture(data, feature_names=["a", "b", "c", "k"])
    with pytest.raises(ValueError, match=r"column 3 is constant .*\(columns numbered from 0\)"):
        gaussmix.select(data, [1, 2], ["full"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_duplicated_and_linearly_copied_columns_are_refused_by_name(X, dtype):
    names = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="column 'd' duplicates column 'b': drop one of them"):
        check_data_for_mixture(_with_column(X, X[:, 1]).astype(dtype), feature_names=names)
    # a copy computed in the data's own precision, about a large offset
    copied = _with_column(X + 500, 2 * (X[:, 1] + 500) + 1).astype(dtype)
    with pytest.raises(ValueError, match=r"column 'd' is a linear copy of column 'b' \('d' = 2 \* 'b' \+ 1\)"):
        check_data_for_mixture(copied, feature_names=names)
    summed = _with_column(X, X[:, 0] - 3 * X[:, 2]).astype(dtype)
    with pytest.raises(ValueError, match="columns 'a', 'c', 'd' are linearly dependent: the data span only 3 of"):
        check_data_for_mixture(summed, feature_names=names)
    with pytest.raises(ValueError, match="duplicates"):
        gaussmix.select(_with_column(X, X[:, 1]).astype(dtype), [1], ["full"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ordinary_and_strongly_correlated_data_pass(X, dtype):
    rng = np.random.default_rng(0)
    close = X[:, 0] + 1e-3 * rng.standard_normal(len(X))  # correlated, but not a copy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_data_for_mixture(_with_column(X, close).astype(dtype), feature_names=["a", "b", "c", "d"])
        check_data_for_mixture(X[:3].astype(dtype))  # fewer rows than features + 1: nothing to say
        check_data_for_mixture(np.repeat(X[:20], 3, axis=0).astype(dtype))  # 3 copies, 3 features: allowed


def test_rows_repeated_more_often_than_features_warn(X):
    data = np.vstack([X, np.repeat(X[:1], 4, axis=0), np.repeat(X[1:2], 6, axis=0)])
    with pytest.warns(RepeatedRowsWarning, match=r"2 distinct rows are repeated more than 3 times \(12 of the 90 rows; "
                                                 r"the most: 7 copies\).*may be flagged degenerate"):
        check_data_for_mixture(data)
    with pytest.warns(RepeatedRowsWarning, match="12 of the 90 rows"):
        gaussmix.select(data, [1], ["full"])


def test_weights_count_as_copies_and_zero_weights_as_absent(X):
    weights = np.ones(len(X))
    weights[0] = 5.0  # five copies of row 0, in units of the mean weight (5 / 1.05 > 3)
    with pytest.warns(RepeatedRowsWarning, match="counting copies in units of the mean weight"):
        check_data_for_mixture(X, sample_weight=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_data_for_mixture(X, sample_weight=weights * 0 + 5.0)  # scaling every weight changes nothing
        # a constant column and copies among zero-weight rows only are not the data's
        data = np.vstack([X, np.repeat(X[:1], 10, axis=0)])
        check_data_for_mixture(data, sample_weight=np.r_[np.ones(len(X)), np.zeros(10)])
        gaussmix.select(data, [1], ["full"], sample_weight=np.r_[np.ones(len(X)), np.zeros(10)])


def test_cli_refuses_a_constant_column_and_warns_about_copies(tmp_path, X, no_fit):
    constant = write_csv(tmp_path / "constant.csv", ["a", "b", "c", "k"], _with_column(X, np.ones(len(X))))
    line = one_error_line(run("fit", constant, *FAST))
    assert "column 'k' is constant" in line and "drop it" in line
    duplicated = write_csv(tmp_path / "dup.csv", ["a", "b", "c", "b2"], _with_column(X, X[:, 1]))
    assert "column 'b2' duplicates column 'b'" in one_error_line(run("fit", duplicated, *FAST))


def test_cli_prints_one_warning_line_for_repeated_rows(tmp_path, X):
    data = np.vstack([X, np.repeat(X[:1], 8, axis=0)])
    path = write_csv(tmp_path / "copies.csv", ["a", "b", "c"], data)
    result = run("fit", path, *FAST, "--json")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warned == [line for line in result.stderr.splitlines() if "repeated" in line]
    assert len(warned) == 1 and warned[0].startswith("gaussmix: warning: 1 distinct row is repeated more than 3 times")


# ------------------------------------------------------------------ info on a derived model
def test_info_on_a_conditioned_model_says_it_has_no_lower_bound(tmp_path, blobs_csv):
    model, conditioned = tmp_path / "m.gmm", tmp_path / "c.gmm"
    assert run("fit", blobs_csv, "-k", "2", "-c", "full", "--out", model, "-q").exit_code == 0
    header = open(blobs_csv).readline().strip().split(",")
    assert run("condition", model, "--given", f"{header[0]}=0.5", "--out", conditioned).exit_code == 0
    result = run("info", conditioned)
    assert result.exit_code == 0, result.output
    assert "none (not fitted to data of its own)" in result.stdout
