"""The ``gaussmix`` command line: fit / predict / score / sample / plot / info.

A thin layer over :func:`gaussmix.select`, :mod:`gaussmix.io` and
:mod:`gaussmix.plotting`. Every mistake a user can make ends in a one-line
``gaussmix: error: ...`` on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

import click
import numpy as np

from . import __version__
from ._progress import GridProgress
from ._tabular import Table, has_column_names, read_table, write_table
from ._validation import check_data_for_mixture
from .covariance import available_covariance_types, get_covariance_model
from .estimator import GaussianMixture
from .exceptions import RepeatedRowsWarning
from .init import available_initializers
from .io import load, load_metadata, save
from .outliers import TRAINING_QUANTILES_KEY, threshold_from, training_quantiles
from .degeneracy import DegenerateFitWarning
from .selection import CRITERIA, SELECT_MAX_ITER, SELECT_TOL, SelectionResult, select
from .selection import _check_covariance_types as selection_types
from .selection import _starts as selection_starts

#: exit status for errors in the data or model files (click uses 2 for usage errors)
EXIT_BAD_INPUT = 1


class GaussmixGroup(click.Group):
    """A click group whose errors are one line on stderr, never a traceback."""

    def main(self, args: Optional[Sequence[str]] = None, prog_name: Optional[str] = None,
             complete_var: Optional[str] = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            with _warnings_as_lines():
                return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            with _warnings_as_lines():
                result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else "gaussmix"
            _fail(f"{error.format_message()} (see '{command} --help')", error.exit_code)
        except click.ClickException as error:
            _fail(error.format_message(), error.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except BrokenPipeError:
            # The reader (e.g. ``| head``) has gone: nothing left to say to it.
            sys.stderr.close()
            sys.exit(1)
        except (ValueError, OSError, ImportError) as error:
            # User-caused problems (bad data, bad model file, missing optional dependency).
            _fail(str(error), EXIT_BAD_INPUT)
        sys.exit(result if isinstance(result, int) else 0)


@contextlib.contextmanager
def _warnings_as_lines() -> Any:
    """Show each warning as one ``gaussmix: warning: ...`` line on stderr.

    Python's own form names a file and line of gaussmix's source, which says
    nothing to someone at a shell.
    """
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        # once per command, even when one process runs several (the demo, tests)
        warnings.filterwarnings("default", category=UserWarning, module=r"gaussmix\.")
        yield


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    click.echo(f"gaussmix: warning: {' '.join(str(message).split())}", err=True)


def _fail(message: str, status: int) -> None:
    click.echo(f"gaussmix: error: {' '.join(str(message).split())}", err=True)
    sys.exit(status)


# --------------------------------------------------------------- option parsing
def parse_components(text: str) -> list[int]:
    """``"1-9"``, ``"3"``, ``"1,2,5"`` or ``"2-4,8"`` -> sorted unique component counts."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        low, sep, high = part.partition("-")
        try:
            bounds = (int(low), int(high)) if sep else (int(part), int(part))
        except ValueError:
            raise click.BadParameter(f"{text!r}: use a number, a range like 1-9, or a list like 1,3,5") from None
        if bounds[0] < 1 or bounds[1] < bounds[0]:
            raise click.BadParameter(f"{text!r}: ranges go from 1 upwards, low-high with low <= high")
        values.extend(range(bounds[0], bounds[1] + 1))
    return sorted(set(values))


def parse_covariance(text: str) -> list[str]:
    """Comma-separated registered names/aliases (scikit-learn's or mclust's), ``all`` among them.

    ``all`` may be mixed with names (``full,all``): :func:`gaussmix.select`
    expands it and keeps one name per structure, in the order given (on one
    feature, mclust's two univariate models E and V).
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("give at least one covariance type, or all")
    for name in names:
        if name == "all":
            continue
        try:
            get_covariance_model(name)
        except ValueError:
            raise click.BadParameter(
                f"unknown covariance type {name!r}; valid: all, " + ", ".join(available_covariance_types())
            ) from None
    return names


def parse_columns(text: Optional[str]) -> Optional[list[str]]:
    """Comma-separated column names (or .npy indices); an empty list is a usage error."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("--columns is empty: give column names separated by commas, e.g. --columns a,b")
    return names


def _callback(parser):
    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        return None if value is None else parser(value)

    return convert


# --------------------------------------------------------------- shared helpers
quiet_option = click.option("--quiet", "-q", is_flag=True, help="Print nothing but the results (no progress, no notes).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON object for programs instead of tables.")
columns_option = click.option(
    "--columns", callback=_callback(parse_columns),
    help="Comma-separated column names to use (indices for .npy). Default: all (fit) or the model's.",
)
drop_missing_option = click.option(
    "--drop-missing", is_flag=True, help="Drop rows with empty, NaN or infinite values instead of failing."
)
missing_option = click.option(
    "--missing", type=click.Choice(["error", "marginalize"]), default="error", show_default=True,
    help="marginalize: keep empty cells and NaN as missing values and fit on each row's observed values "
         "(exact EM); the saved model then predicts and scores incomplete rows too.",
)


def _note(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(message, err=True)


def _show_progress(quiet: bool, as_json: bool) -> bool:
    """A bar only for people at a terminal: not when quiet, JSON or piped."""
    return not quiet and not as_json and sys.stdout.isatty() and sys.stderr.isatty()


def _read_for_model(model: GaussianMixture, data: str, columns: Optional[list[str]], drop_missing: bool,
                    quiet: bool, keep_missing: bool = False) -> Table:
    """Read the columns of ``data`` that ``model`` was fitted on (by name where both have names).

    ``keep_missing``: empty cells and NaN stay NaN (for a model that marginalises them).
    """
    names = getattr(model, "feature_names_in_", None)
    if columns is None and names is not None and has_column_names(data):
        columns = [str(n) for n in names]
    table = read_table(data, columns, dtype=model.means_.dtype, drop_missing=drop_missing, keep_missing=keep_missing)
    expected = model.means_.shape[1]
    if table.values.shape[1] != expected:
        raise click.ClickException(
            f"{data}: the model expects {expected} feature(s) but the data has {table.values.shape[1]} "
            "column(s); choose them with --columns"
        )
    if table.n_dropped:
        _note(f"dropped {table.n_dropped} row(s) with {_dropped_for(keep_missing)}", quiet)
    return table


def _dropped_for(keep_missing: bool) -> str:
    """Why ``--drop-missing`` dropped rows."""
    return "an infinite value or no value at all" if keep_missing else "missing or infinite values"


def _marginalises(model: GaussianMixture) -> bool:
    """Whether ``model`` evaluates incomplete rows on their observed values (``missing="marginalize"``)."""
    return getattr(model, "missing", "error") == "marginalize"


def check_output_path(path: Optional[str], option: str) -> None:
    """Fail before any work when ``path`` (the value of ``option``) cannot be written.

    Outputs are written only after the work (a fit can take many minutes), so
    a typo in a directory name is caught here instead of losing the work.

    Raises
    ------
    click.ClickException
        Naming the target, what is wrong with it and what to do.
    """
    if path is None:
        return
    target = Path(path)
    if str(path).endswith(("/", os.sep)) or target.is_dir():
        raise click.ClickException(f"{option} {path}: is a directory; give a file name in it, e.g. {target / 'out'}")
    directory = target.parent
    if directory.exists() and not directory.is_dir():
        raise click.ClickException(f"{option} {path}: {directory} is not a directory; choose another path")
    if not directory.is_dir():
        raise click.ClickException(
            f"{option} {path}: directory {directory} does not exist; create it (mkdir -p {directory}) "
            "or choose another path"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise click.ClickException(
            f"{option} {path}: directory {directory} is not writable; choose a path in a directory you can write to"
        )


def _check_fit_outputs(out: Optional[str], plot_path: Optional[str]) -> None:
    """Every output of ``fit`` can be written (and drawn) before the fit starts."""
    check_output_path(out, "--out")
    check_output_path(plot_path, "--plot")
    if out and plot_path and Path(out).resolve() == Path(plot_path).resolve():
        raise click.ClickException(f"--out and --plot both name {out}; give them different files")
    if plot_path:
        from .plotting import check_image_path

        check_image_path(plot_path)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _check_enough_rows(data: str, n_rows: int, components: Sequence[int]) -> None:
    """A fit needs two rows, and K components need K rows: say which limit ``data`` misses."""
    largest = max(components)
    needed = max(2, largest)
    if n_rows >= needed:
        return
    if n_rows < 2:
        for_k = f" ({needed} for K = {largest} components)" if needed > 2 else ""
        message = f"has {_plural(n_rows, 'row')}; a fit needs at least 2 rows{for_k}: give more data"
    else:
        message = (
            f"has {_plural(n_rows, 'row')}; K = {largest} components need at least {largest} rows: "
            f"use --components up to {n_rows}, or more data"
        )
    raise click.ClickException(f"{data}: {message}")


def _quietly(function: Any, *args: Any) -> Any:
    # The CLI matches columns by name itself; scikit-learn's feature-name check would only warn.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return function(*args)


def _emit_json(payload: dict) -> None:
    click.echo(json.dumps(payload, indent=2))


def _has_noise(model: GaussianMixture) -> bool:
    return getattr(model, "noise_weight_", None) is not None


def _model_summary(model: GaussianMixture, names: Sequence[str]) -> dict:
    noise = {"noise_weight": float(model.noise_weight_), "noise_volume": float(model.noise_volume_)} \
        if _has_noise(model) else {}
    return {
        "n_components": int(model.n_components),
        "covariance_type": model.covariance_type,
        "feature_names": list(names),
        "weights": model.weights_.tolist(),
        "means": model.means_.tolist(),
        "covariances": model.covariances_.tolist(),
        "converged": bool(model.converged_),
        "n_iter": int(model.n_iter_),
        **noise,
    }


def _feature_names(model: GaussianMixture) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else [f"x{j}" for j in range(model.means_.shape[1])]


def _describe_model(model: GaussianMixture) -> str:
    names = _feature_names(model)
    dense = model._fitted_params().dense_covariances()
    width = max(11, *(len(n) + 2 for n in names))
    label_width = max(len("covariance"), *(len(n) for n in names)) + 2
    lines = []
    for k in range(model.n_components):
        lines.append(f"component {k}: weight {model.weights_[k]:.4f}")
        lines.append("  " + " " * label_width + "".join(f"{n:>{width}}" for n in names))
        lines.append("  " + f"{'mean':<{label_width}}" + "".join(f"{v:>{width}.5g}" for v in model.means_[k]))
        lines.append("  covariance")
        for name, row in zip(names, dense[k]):
            lines.append("  " + f"  {name:<{label_width - 2}}" + "".join(f"{v:>{width}.5g}" for v in row))
    if _has_noise(model):
        lines.append(f"noise: weight {model.noise_weight_:.4f}, uniform over a volume of {model.noise_volume_:.6g} "
                     "(predict labels its rows -1)")
    return "\n".join(lines)


# --------------------------------------------------------------- commands
@click.group(cls=GaussmixGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gaussmix")
def cli() -> None:
    """Gaussian mixture models from the command line.

    \b
    Fit and choose a model by BIC, save it, plot it:
        gaussmix fit faithful.csv --components 1-9 --covariance all --out model.gmm --plot fit.png
    Use it:
        gaussmix predict model.gmm new.csv --proba --out resp.csv
        gaussmix score model.gmm new.csv          # per-row log-density (anomaly scores)
        gaussmix impute model.gmm gappy.csv --out filled.csv   # fill empty cells (fit --missing marginalize)
        gaussmix condition model.gmm --given waiting=80
        gaussmix predict model.gmm new.csv --target eruptions
        gaussmix sample model.gmm -n 1000 --seed 0 --out samples.csv
        gaussmix plot model.gmm faithful.csv --out fig.png
        gaussmix info model.gmm
        gaussmix report model.gmm faithful.csv --out report.html   # one HTML file to share
        gaussmix export model.gmm --onnx model.onnx   # serve it with onnxruntime

    Data: CSV/TSV with a header row (choose columns by name), .npy, Parquet (needs pyarrow).
    """


@cli.command()
@click.argument("data")
@click.option("--components", "-k", default="1-9", show_default=True, callback=_callback(parse_components),
              help="Component counts to try: 3, 1-9, 1,2,5 or 2-4,8.")
@click.option("--covariance", "-c", default="all", show_default=True, callback=_callback(parse_covariance),
              help="Comma-separated covariance types (full, tied, diag, spherical, mclust names such as EEE) or all.")
@click.option("--criterion", type=click.Choice(CRITERIA), default="bic", show_default=True,
              help="Selection criterion; lower is better (scikit-learn's sign; mclust reports -BIC).")
@click.option("--n-init", type=click.IntRange(min=1), default=None,
              help="k-means++ restarts per fit besides the hierarchical start (default 3), or restarts of --init.")
@click.option("--screen-iter", type=click.IntRange(min=1), default=None,
              help="Run the k-means++ restarts this many EM iterations and only the best of them on (emEM); "
                   "default: every restart to convergence.")
@click.option("--init", "init_params", type=click.Choice(available_initializers()), default=None,
              help="Start every restart this way. Default: the best of mclust's hierarchical start and k-means++ ones.")
@click.option("--max-iter", type=click.IntRange(min=1), default=SELECT_MAX_ITER, show_default=True,
              help="EM iterations per start (gaussmix.select's default too).")
@click.option("--tol", type=click.FloatRange(min=0), default=SELECT_TOL, show_default=True,
              help="Convergence threshold on the mean log-likelihood per row (gaussmix.select's default too).")
@click.option("--allow-degenerate", is_flag=True,
              help="Let degenerate fits (a covariance held up by --reg-covar alone; mclust's NA cells) be chosen.")
@click.option("--reg-covar", type=click.FloatRange(min=0), default=1e-6, show_default=True)
@click.option("--prior", type=click.Choice(["none", "default"]), default="none", show_default=True,
              help="default: MAP EM with mclust's conjugate prior (priorControl()); VEE, EVE, VVE and EVV, "
                   "which have none, leave the grid.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same for every fit).")
@click.option("--jobs", "-j", type=int, default=1, show_default=True, help="Fits run in parallel (-1: all cores).")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@columns_option
@drop_missing_option
@missing_option
@click.option("--noise", is_flag=True,
              help="Add a noise component (mclust's): a uniform density over the data's region for outliers "
                   "and clutter; predict labels its rows -1.")
@click.option("--noise-volume", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The volume of the noise's region (needs --noise). Default: mclust's hypvol of the rows.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Save the chosen model here (e.g. model.gmm).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Draw the chosen model here (e.g. fit.png).")
@json_option
@quiet_option
def fit(data, components, covariance, criterion, n_init, screen_iter, init_params, max_iter, tol, allow_degenerate,
        reg_covar, prior, seed, jobs, dtype, columns, drop_missing, missing, noise, noise_volume, out, plot_path,
        as_json, quiet):
    """Fit every (K, covariance) pair, choose the best by BIC, print, save and plot it.

    \b
    Examples:
        gaussmix fit faithful.csv
        gaussmix fit faithful.csv -k 1-6 -c full,tied --out model.gmm --plot fit.png
        gaussmix fit iris.csv --columns sepal_length,petal_length -c all --json
        gaussmix fit survey.csv --missing marginalize --out model.gmm   # empty cells: missing values
        gaussmix fit iris.csv --prior default   # mclust's mclustBIC(X, prior = priorControl())
        gaussmix fit points.csv --noise --out model.gmm   # outliers and clutter: label -1
    """
    _check_fit_outputs(out, plot_path)
    if noise_volume is not None and not noise:
        raise click.UsageError("--noise-volume is the noise component's volume: add --noise")
    if noise and missing == "marginalize":
        raise click.UsageError("--noise does not take --missing marginalize yet: drop incomplete rows "
                               "(--drop-missing) or leave --noise out")
    keep_missing = missing == "marginalize"
    table = read_table(data, columns, dtype=np.dtype(dtype), drop_missing=drop_missing, keep_missing=keep_missing)
    if table.n_dropped:
        _note(f"dropped {table.n_dropped} row(s) with {_dropped_for(keep_missing)}", quiet)
    n_rows = table.values.shape[0]
    _check_enough_rows(data, n_rows, components)
    incomplete_rows = np.isnan(table.values).any(axis=1)
    # The checks of the columns see the gaps filled with the column means, as the initialisers do.
    check_data_for_mixture(_filled(table.values) if incomplete_rows.any() else table.values,
                           feature_names=table.columns)
    settings = dict(max_iter=max_iter, tol=tol, reg_covar=reg_covar)
    if keep_missing:
        settings["missing"] = missing
    if init_params is not None:
        settings["init_params"] = init_params
    if screen_iter is not None:
        settings["screen_iter"] = screen_iter
    if prior != "none":
        settings["prior"] = prior
    if noise:
        settings["noise"] = True
        if noise_volume is not None:
            settings["noise_volume"] = noise_volume
    restarts_per_cell = sum(start["n_init"] for start in selection_starts(settings, n_init))
    n_types = len(selection_types(covariance, table.values.shape[1], prior != "none"))
    progress = GridProgress(len(components) * n_types, restarts_per_cell, max_iter,
                            enabled=_show_progress(quiet, as_json))
    with progress, warnings.catch_warnings():
        # An all-degenerate grid is said below, in words for this command line; repeated
        # rows were said above with the column names.
        warnings.simplefilter("ignore", DegenerateFitWarning)
        warnings.simplefilter("ignore", RepeatedRowsWarning)
        result = select(
            table.values, components, covariance, criterion=criterion, n_init=n_init, random_state=seed,
            n_jobs=jobs, progress=progress.on_cell, callback=progress.on_iteration if jobs == 1 else None,
            allow_degenerate=allow_degenerate, **settings,
        )
    model = result.best_estimator_
    names = table.columns or [f"x{j}" for j in range(table.values.shape[1])]
    if table.columns is not None:
        model.feature_names_in_ = np.asarray(table.columns, dtype=object)
    if out:
        # The training rows' log-density quantiles let `score --contamination` judge new rows by them.
        quantiles = training_quantiles(_quietly(model.score_samples, table.values))
        save(model, out, extra={"selection": result.to_dict(), "data": str(data), TRAINING_QUANTILES_KEY: quantiles})
    if plot_path:
        from .plotting import plot_model

        # the plot draws complete rows (a point needs every coordinate)
        plot_model(model, table.values[~incomplete_rows], selection=result.to_dict(), path=plot_path)
    if as_json:
        _emit_json({"selection": result.to_dict(), "model": _model_summary(model, names),
                    "model_file": out, "plot": plot_path})
        return
    gaps = f" ({int(incomplete_rows.sum())} with missing values, marginalised)" if incomplete_rows.any() else ""
    click.echo(f"{data}: {n_rows} rows{gaps}, features {', '.join(names)}")
    click.echo(f"each fit: tol {tol:g}, max_iter {max_iter}, reg_covar {reg_covar:g}, "
               f"{restarts_per_cell} start(s) per cell" + ("" if prior == "none" else f", {prior} prior (MAP EM)"))
    click.echo(result.table())
    _echo_failures(result, quiet)
    best = result.best
    click.echo(
        f"\nchosen: K={best.n_components}, covariance {best.label}, "
        f"{criterion.upper()} {best.criterion(criterion):.2f} (lowest; lower is better, as in scikit-learn; "
        f"mclust's sign: {-best.bic:.2f})"
    )
    click.echo(_describe_model(model))
    if result.best_is_degenerate and not allow_degenerate:
        click.echo("WARNING: every fit is degenerate (a covariance held up by --reg-covar alone); the chosen "
                   "one is not a sound model. Try fewer components or check the data for repeated rows and "
                   "constant or duplicated columns.", err=True)
    if not best.converged:
        _note("note: the chosen fit did not converge; raise --max-iter or --tol", quiet)
    if out:
        _note(f"model saved to {out}", quiet)
    if plot_path:
        _note(f"plot saved to {plot_path}", quiet)


def _filled(values: np.ndarray) -> np.ndarray:
    """``values`` with each NaN replaced by its column's observed mean."""
    from .missing import column_means, filled_with

    return filled_with(values, column_means(values))


def _echo_failures(result: SelectionResult, quiet: bool) -> None:
    failed = [row for row in result.rows if not row.ok]
    if failed and not quiet:
        click.echo(f"{len(failed)} fit(s) failed:", err=True)
        for row in failed:
            click.echo(f"  K={row.n_components} {row.covariance_type}: {row.error}", err=True)


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("data")
@click.option("--proba", is_flag=True, help="Write responsibilities p(component | row) instead of labels.")
@click.option("--uncertainty", is_flag=True,
              help="Add a column 1 - max responsibility per row (mclust's uncertainty; 0 = certain).")
@click.option("--target", "targets", multiple=True,
              help="Predict this feature (repeat, or comma-separate, for several) from the others: "
                   "the conditional mean E[target | other features] of each row.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write here (.csv, .tsv, .npy) instead of stdout.")
@columns_option
@drop_missing_option
@json_option
@quiet_option
def predict(model_path, data, proba, uncertainty, targets, out, columns, drop_missing, as_json, quiet):
    """Hard labels (most probable component) or responsibilities of each row;
    with --target, the conditional mean of the target feature(s) given the others.
    A model fitted with --missing marginalize takes incomplete rows (on their observed values).

    \b
    Examples:
        gaussmix predict model.gmm new.csv > labels.csv
        gaussmix predict model.gmm new.csv --proba --out resp.csv
        gaussmix predict model.gmm new.csv --uncertainty   # label,uncertainty
        gaussmix predict model.gmm new.csv --target eruptions
    """
    check_output_path(out, "--out")
    model = load(model_path)
    if targets:
        if proba or uncertainty:
            raise click.UsageError("--proba/--uncertainty and --target do not go together: "
                                   "--target predicts feature values")
        _predict_targets(model, data, targets, out, columns, drop_missing, as_json, quiet)
        return
    table = _read_for_model(model, data, columns, drop_missing, quiet, keep_missing=_marginalises(model))
    if proba:
        values = _quietly(model.predict_proba, table.values)
        header = [f"p{k}" for k in range(model.n_components)] + (["noise"] if _has_noise(model) else [])
    else:
        values = _quietly(model.predict, table.values)[:, None]
        header = ["label"]
    row_uncertainty = _quietly(model.uncertainty, table.values) if uncertainty else None
    if as_json:
        key = "responsibilities" if proba else "labels"
        payload = {key: values.tolist() if proba else values[:, 0].tolist()}
        if uncertainty:
            payload["uncertainty"] = row_uncertainty.tolist()
        _emit_json({**payload, "rows": table.row_numbers.tolist()})
        return
    if uncertainty:  # labels become floats here; written as %g they still read 0, 1, ...
        values = np.column_stack([values, row_uncertainty])
        header = [*header, "uncertainty"]
    if table.n_dropped:  # keep the output aligned with the input's rows
        values = np.column_stack([table.row_numbers, values])
        header = ["row", *header]
    write_table(out, header, values, stream=sys.stdout)
    if out:
        _note(f"{len(values)} row(s) written to {out}", quiet)


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("data")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write per-row log-densities here instead of stdout.")
@click.option("--contamination", type=click.FloatRange(0, 0.5, min_open=True), default=None,
              help="Mark outliers: an `outlier` column (1: log-density below the threshold), the threshold "
                   "being this quantile of the training rows' log-densities (stored by `gaussmix fit "
                   "--out`), or of these rows' own where the model file has none.")
@columns_option
@drop_missing_option
@json_option
@quiet_option
def score(model_path, data, out, contamination, columns, drop_missing, as_json, quiet):
    """Per-row log-density log p(x) (low values: anomalies) and its mean.

    The mean (and the outlier threshold) go to stdout when the rows go to
    --out, else to stderr. A model fitted with --missing marginalize scores
    incomplete rows on their observed values.

    \b
    Examples:
        gaussmix score model.gmm new.csv --out scores.csv
        gaussmix score model.gmm new.csv --json
        gaussmix score model.gmm new.csv --contamination 0.01
    """
    check_output_path(out, "--out")
    model = load(model_path)
    table = _read_for_model(model, data, columns, drop_missing, quiet, keep_missing=_marginalises(model))
    log_density = _quietly(model.score_samples, table.values)
    mean = float(np.mean(log_density))
    threshold, source = (None, None) if contamination is None else _outlier_threshold(
        model_path, log_density, contamination)
    if as_json:
        payload = {"log_density": log_density.tolist(), "mean": mean, "rows": table.row_numbers.tolist()}
        if threshold is not None:
            payload.update(outlier=(log_density < threshold).tolist(), threshold=threshold,
                           threshold_source=source, contamination=contamination)
        _emit_json(payload)
        return
    values, header = log_density[:, None], ["log_density"]
    if threshold is not None:
        values, header = np.column_stack([log_density, log_density < threshold]), [*header, "outlier"]
    if table.n_dropped:
        values, header = np.column_stack([table.row_numbers, values]), ["row", *header]
    write_table(out, header, values, stream=sys.stdout)
    summary = f"mean log-density: {mean:.6g} over {len(log_density)} row(s)"
    if threshold is not None:
        flagged = int(np.sum(log_density < threshold))
        summary += (f"\noutlier threshold: log-density {threshold:.6g} (the {contamination:g} quantile of "
                    f"{source}); {flagged} row(s) below it marked outlier")
    if out:
        click.echo(summary)
    else:
        _note(summary, quiet)


def _outlier_threshold(model_path: str, log_density: np.ndarray, contamination: float) -> tuple[float, str]:
    """The log-density below which a row is an outlier, and what it is the quantile of.

    The training rows' quantile (stored by ``fit --out``) judges new rows by
    what the model was fitted on, whatever else is in the file; files without
    it (saved from Python, or older) fall back to the scored rows' own quantile.
    """
    stored = load_metadata(model_path).get("extra", {}).get(TRAINING_QUANTILES_KEY)
    if stored:
        try:
            return threshold_from(stored, contamination), f"the {int(stored['n_rows'])} training rows' log-densities"
        except (KeyError, TypeError, ValueError):
            raise click.ClickException(f"{model_path}: its stored training log-densities are malformed; "
                                       "refit and save it with `gaussmix fit --out`") from None
    click.echo(f"note: {model_path} holds no training log-densities (fit it with `gaussmix fit --out` to "
               "store them); the threshold is the quantile of these rows' own", err=True)
    return float(np.quantile(log_density, contamination)), "these rows' log-densities"


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("data")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write here (.csv, .tsv, .npy) instead of stdout.")
@click.option("--draws", type=click.IntRange(min=1), default=None,
              help="Multiple imputation: this many draws from p(missing | observed) per row, stacked with a "
                   "leading 'draw' column. Default: one filling with the conditional means.")
@click.option("--seed", type=int, default=None, help="Random seed for reproducible draws.")
@columns_option
@drop_missing_option
@json_option
@quiet_option
def impute(model_path, data, out, draws, seed, columns, drop_missing, as_json, quiet):
    """Fill the empty or NaN cells of DATA from a saved model.

    Each gap gets E[missing | observed] under the mixture (the components'
    conditional means weighted by how well each explains the row's observed
    values), or with --draws N, N draws from that conditional distribution.
    Observed values are written unchanged.

    \b
    Examples:
        gaussmix impute model.gmm data.csv --out filled.csv
        gaussmix impute model.gmm data.csv --draws 5 --seed 0 --out draws.csv
    """
    check_output_path(out, "--out")
    model = load(model_path)
    table = _read_for_model(model, data, columns, drop_missing, quiet, keep_missing=True)
    n_missing = int(np.isnan(table.values).sum())
    filled = _quietly(lambda X: model.impute(X, n_draws=draws, random_state=seed), table.values)
    names = _feature_names(model)
    if as_json:
        payload = {"feature_names": names, "rows": table.row_numbers.tolist(), "n_missing": n_missing}
        _emit_json({**payload, ("draws" if draws else "values"): filled.tolist()})
        return
    if draws is None:
        values, header = filled, names
        if table.n_dropped:  # keep the output aligned with the input's rows
            values, header = np.column_stack([table.row_numbers, filled]), ["row", *names]
    else:
        n_rows = filled.shape[1]
        draw_numbers = np.repeat(np.arange(draws), n_rows)
        values = np.column_stack([draw_numbers, np.tile(table.row_numbers, draws), filled.reshape(-1, filled.shape[2])])
        header = ["draw", "row", *names]
    write_table(out, header, values, stream=sys.stdout)
    if out:
        _note(f"{n_missing} missing value(s) filled in {len(values)} row(s) written to {out}", quiet)


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.option("-n", "--n-samples", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=int, default=None, help="Random seed for reproducible draws.")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write here (.csv, .tsv, .npy) instead of stdout.")
@json_option
@quiet_option
def sample(model_path, n_samples, seed, out, as_json, quiet):
    """Draw rows from the mixture (with the component each came from).

    \b
    Examples:
        gaussmix sample model.gmm -n 1000 --seed 0 --out samples.csv
    """
    check_output_path(out, "--out")
    model = load(model_path)
    model.set_params(random_state=seed)
    X, labels = model.sample(n_samples)
    names = _feature_names(model)
    if as_json:
        _emit_json({"feature_names": names, "samples": X.tolist(), "components": labels.tolist()})
        return
    if out and Path(out).suffix.lower() == ".npy":
        write_table(out, names, X)
    else:
        write_table(out, [*names, "component"], np.column_stack([X, labels]).astype(X.dtype),
                    stream=sys.stdout)
    if out:
        _note(f"{n_samples} row(s) written to {out}", quiet)


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("data", required=False)
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Image file (.png, .svg, .pdf).")
@columns_option
@drop_missing_option
@quiet_option
def plot(model_path, data, out, columns, drop_missing, quiet):
    """Draw a saved model (with its data if given) without refitting.

    Clusters with 1- and 2-sigma ellipses and density contours (a pair-plot grid
    for more than 2 features), the BIC curve per covariance type when the model
    file holds its selection table, and the convergence trace per restart.

    \b
    Examples:
        gaussmix plot model.gmm faithful.csv --out fig.png
        gaussmix plot model.gmm --out fig.svg
    """
    from .plotting import check_image_path, plot_model

    check_output_path(out, "--out")
    check_image_path(out)
    model = load(model_path)
    values = None
    if data is not None:
        values = _read_for_model(model, data, columns, drop_missing, quiet).values
    selection = load_metadata(model_path)["extra"].get("selection")
    plot_model(model, values, selection=selection, path=out)
    _note(f"plot saved to {out}", quiet)


@cli.command()
@click.argument("model_path", metavar="MODEL")
@json_option
def info(model_path, as_json):
    """What a model file holds: structure, features, fit, selection.

    \b
    Examples:
        gaussmix info model.gmm
        gaussmix info model.gmm --json
    """
    metadata = load_metadata(model_path)
    model = load(model_path)
    if as_json:
        _emit_json({**metadata, "weights": model.weights_.tolist(), "means": model.means_.tolist()})
        return
    fit_info = metadata["fit"]
    selection = metadata["extra"].get("selection")
    lines = [
        f"{model_path}: gaussmix model file (schema {metadata['schema_version']}, "
        f"written by gaussmix {metadata['gaussmix_version']})",
        f"  components:  {metadata['n_components']}",
        f"  covariance:  {metadata['covariance_type']}",
        f"  features:    {metadata['n_features']} ({', '.join(_feature_names(model))})",
        f"  dtype:       {metadata['dtype']}",
        *(["  missing:     marginalize (incomplete rows fitted, scored and imputed on their observed values)"]
          if metadata["params"].get("missing") == "marginalize" else []),
        f"  converged:   {fit_info['converged']} after {fit_info['n_iter']} iteration(s), "
        f"mean log-likelihood {_number(fit_info['lower_bound'])}",
        f"  restarts:    {len(fit_info['lower_bounds_per_init'])}",
    ]
    if selection:
        lines.append(f"  selection:   {len(selection['rows'])} fits, chosen by {selection['criterion'].upper()} "
                     f"{selection['best'][selection['criterion']]:.2f} (lower is better)")
    if "data" in metadata["extra"]:
        lines.append(f"  fitted on:   {metadata['extra']['data']}")
    click.echo("\n".join(lines))
    click.echo(_describe_model(model))


def _names_in(texts: Sequence[str]) -> list[str]:
    """Repeated and comma-separated option values as one list of stripped names."""
    return [name.strip() for text in texts for name in text.split(",") if name.strip()]


def _resolve_cli_feature(model: GaussianMixture, name: str, option: str) -> int:
    """A feature of ``model`` by name (``x0``, ``x1``, ... or an index where the model has no names)."""
    names = _feature_names(model)
    if name in names:
        return names.index(name)
    if getattr(model, "feature_names_in_", None) is None and name.isdigit() and int(name) < len(names):
        return int(name)
    raise click.BadParameter(f"unknown feature {name!r}; the model's features are: {', '.join(names)}",
                             param_hint=option)


def _predict_targets(model: GaussianMixture, data: str, targets: Sequence[str], out: Optional[str],
                     columns: Optional[list[str]], drop_missing: bool, as_json: bool, quiet: bool) -> None:
    """``predict --target``: conditional means of the targets given the model's other features."""
    from .regression import GaussianMixtureRegressor

    target_dims = [_resolve_cli_feature(model, name, "--target") for name in _names_in(targets)]
    if len(set(target_dims)) != len(target_dims):
        raise click.BadParameter("a feature is named twice", param_hint="--target")
    names = _feature_names(model)
    if len(target_dims) == len(names):
        raise click.BadParameter(
            f"every feature of the model is a target; leave at least one of {', '.join(names)} as input",
            param_hint="--target",
        )
    regressor = GaussianMixtureRegressor.from_mixture(model, targets=target_dims)
    inputs = [names[d] for d in regressor.input_features_]
    if columns is None and getattr(model, "feature_names_in_", None) is not None and has_column_names(data):
        columns = inputs
    table = read_table(data, columns, dtype=np.float64, drop_missing=drop_missing)
    if table.values.shape[1] != len(inputs):
        raise click.ClickException(
            f"{data}: predicting {', '.join(names[d] for d in target_dims)} needs the {len(inputs)} input "
            f"feature(s) {', '.join(inputs)} but the data has {table.values.shape[1]} column(s); choose them with --columns"
        )
    if table.n_dropped:
        _note(f"dropped {table.n_dropped} row(s) with missing or infinite values", quiet)
    means = _quietly(regressor.predict, table.values)
    header = [names[d] for d in target_dims]
    if as_json:
        _emit_json({"targets": header, "inputs": inputs, "means": means.tolist(), "rows": table.row_numbers.tolist()})
        return
    values = means
    if table.n_dropped:
        values, header = np.column_stack([table.row_numbers, means]), ["row", *header]
    write_table(out, header, values, stream=sys.stdout)
    if out:
        _note(f"{len(values)} row(s) written to {out}", quiet)


def parse_given(model: GaussianMixture, texts: Sequence[str]) -> tuple[list[int], list[float]]:
    """``--given waiting=80`` (repeated or comma-separated) -> feature indices and values."""
    dims, values = [], []
    for item in _names_in(texts):
        name, sep, text = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: write feature=value, e.g. --given waiting=80", param_hint="--given")
        dim = _resolve_cli_feature(model, name.strip(), "--given")
        try:
            value = float(text)
        except ValueError:
            raise click.BadParameter(f"{item!r}: {text.strip()!r} is not a number", param_hint="--given") from None
        if not np.isfinite(value):
            raise click.BadParameter(f"{item!r}: give a finite value", param_hint="--given")
        if dim in dims:
            raise click.BadParameter(f"{name.strip()!r} is given twice", param_hint="--given")
        dims.append(dim)
        values.append(value)
    return dims, values


def _describe_conditional(conditional: GaussianMixture, given: str) -> str:
    """Weights, means and standard deviations of a conditional mixture, and of the whole."""
    names = _feature_names(conditional)
    params = conditional._fitted_params()
    deviations = np.sqrt(np.diagonal(params.dense_covariances(), axis1=1, axis2=2))
    batch_mean = conditional.weights_ @ conditional.means_
    spread = conditional.weights_ @ (deviations**2 + (conditional.means_ - batch_mean) ** 2)
    width = max(12, *(len(n) + 2 for n in names))
    lines = [f"p({', '.join(names)} | {given}): {conditional.n_components} component(s), "
             f"covariance {conditional.covariance_type!r}",
             f"{'':<16}{'weight':>10}" + "".join(f"{n:>{width}}" for n in names)]
    for k in range(conditional.n_components):
        lines.append(f"{f'component {k}':<16}{conditional.weights_[k]:>10.4f}")
        lines.append(f"{'  mean':<26}" + "".join(f"{v:>{width}.5g}" for v in conditional.means_[k]))
        lines.append(f"{'  std':<26}" + "".join(f"{v:>{width}.5g}" for v in deviations[k]))
    lines.append(f"{'mixture':<16}{1:>10.4f}")
    lines.append(f"{'  mean':<26}" + "".join(f"{v:>{width}.5g}" for v in batch_mean))
    lines.append(f"{'  std':<26}" + "".join(f"{v:>{width}.5g}" for v in np.sqrt(spread)))
    return "\n".join(lines)


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.option("--given", "given", multiple=True, required=True,
              help="feature=value to condition on (repeat, or comma-separate, for several).")
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Also save the conditional mixture here (.gmm).")
@json_option
@quiet_option
def condition(model_path, given, out, as_json, quiet):
    """The mixture of the other features given some feature values.

    Prints each component's weight (re-weighted by how well it explains the
    given values), means and standard deviations, and the mean and standard
    deviation of the whole conditional mixture (which can be multimodal:
    its mean may lie between its components).

    \b
    Examples:
        gaussmix condition model.gmm --given waiting=80
        gaussmix condition model.gmm --given waiting=80 --out eruptions.gmm
    """
    check_output_path(out, "--out")
    model = load(model_path)
    dims, values = parse_given(model, given)
    if len(dims) == model.n_features_in_:
        raise click.BadParameter(
            "every feature of the model is given: nothing is left to describe; give fewer features "
            "(gaussmix score gives the density of whole rows)", param_hint="--given",
        )
    conditional = model.condition(dims, values)
    if out:
        save(conditional, out)
    names = _feature_names(model)
    given_text = ", ".join(f"{names[d]}={v:g}" for d, v in zip(dims, values))
    if as_json:
        deviations = np.sqrt(np.diagonal(conditional._fitted_params().dense_covariances(), axis1=1, axis2=2))
        _emit_json({
            "given": {names[d]: v for d, v in zip(dims, values)},
            **_model_summary(conditional, _feature_names(conditional)),
            "stds": deviations.tolist(),
        })
    else:
        click.echo(_describe_conditional(conditional, given_text))
    if out:
        _note(f"conditional mixture saved to {out}", quiet)


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), help="Write an ONNX model here (e.g. model.onnx).")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None,
              help="Float type of the ONNX graph  [default: the model's]")
@quiet_option
def export(model_path, onnx_path, dtype, quiet):
    """Write a saved model in a format other programs serve (ONNX).

    The ONNX graph takes rows X and gives label, probabilities and
    score_samples (per-row log-density), as predict, predict --proba and score.

    \b
    Examples:
        gaussmix export model.gmm --onnx model.onnx
        gaussmix export model.gmm --onnx model32.onnx --dtype float32
    """
    if onnx_path is None:
        raise click.UsageError("nothing to export to: give --onnx FILE")
    check_output_path(onnx_path, "--onnx")
    from .onnx_export import to_onnx

    to_onnx(load(model_path), onnx_path, dtype=dtype)
    _note(f"ONNX model saved to {onnx_path}", quiet)


@cli.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("data", required=False)
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="HTML file to write (report.html).")
@columns_option
@drop_missing_option
@quiet_option
def report(model_path, data, out, columns, drop_missing, quiet):
    """Write one self-contained HTML file describing a saved model (and its data if given).

    The selection table and BIC curves (when the model file holds them), the
    weights, means, standard deviations and correlations, the data coloured by
    component with ellipses, the convergence trace, and where it all came from.
    It opens in any browser without a network.

    \b
    Examples:
        gaussmix report model.gmm faithful.csv --out report.html
        gaussmix report model.gmm --out report.html
    """
    from .plotting import _matplotlib
    from .report import write_report

    check_output_path(out, "--out")
    if Path(out).suffix.lower() not in (".html", ".htm"):
        raise click.BadParameter(f"{out}: a report is one HTML file; give a name ending in .html", param_hint="--out")
    _matplotlib()
    model = load(model_path)
    extra = load_metadata(model_path)["extra"]
    source = {"model_file": str(model_path)}
    values = None
    if data is not None:
        table = _read_for_model(model, data, columns, drop_missing, quiet)
        values, source["data"], source["dropped"] = table.values, str(data), table.n_dropped
        source["columns"] = table.columns
    write_report(out, model, values, selection=extra.get("selection"), source=source)
    _note(f"report saved to {out}", quiet)

def _number(value: Optional[float]) -> str:
    # A model derived from another (condition, marginal) or never iterated has no lower bound.
    return "none (not fitted to data of its own)" if value is None else f"{value:.6g}"


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="gaussmix")


if __name__ == "__main__":
    main()
