"""A self-contained HTML report of a fitted mixture, and compact HTML summaries for notebooks.

The report is ONE file a reader opens without Python or a network: styles
inline, figures inline as SVG (matplotlib's svg backend, text drawn as paths so
no font is fetched), no scripts. It holds what the reader must know to trust it
(data file, rows, columns, dropped rows, gaussmix version, settings), the
selection table and BIC curves when the model came from :func:`gaussmix.select`,
the fitted parameters (weights, means, standard deviations, correlations, each
component's size and mean uncertainty), the data coloured by component with
ellipses, and the convergence trace.

Every number shown carries its full value in a ``data-value`` attribute, so
that tests (and scripts) read the model back from the page exactly.
"""

from __future__ import annotations

import html
import io
import re
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

#: rows drawn in the scatter plots at most (an SVG holds one element per point)
MAX_PLOTTED_ROWS = 5000
#: simple-valued estimator settings listed in the report
SETTINGS = ("n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init", "init_params",
            "random_state")

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 72em;
       color: #1d1d1f; background: #ffffff; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d0d0; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; } th.name, td.name { text-align: left; }
td.chosen { background: #c8f0c8; font-weight: bold; outline: 2px solid #2a8a2a; }
td.degenerate { background: #fde2c8; color: #8a4a00; }
td.failed { color: #999; font-style: italic; }
.key, .note { color: #555; font-size: .9em; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .9em; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .2em 1.2em; }
dl.facts dt { font-weight: bold; } dl.facts dd { margin: 0; }
.correlations { display: flex; flex-wrap: wrap; gap: 0 1.5em; } caption { color: #555; }
"""
#: the notebook summaries' style: scoped to their own element, never the notebook's page
_SUMMARY_STYLE = """
.gaussmix-summary table { border-collapse: collapse; margin: .4em 0; font-size: .9em; }
.gaussmix-summary th, .gaussmix-summary td { border: 1px solid #d0d0d0; padding: .2em .5em; text-align: right; }
.gaussmix-summary td.chosen { background: #c8f0c8; font-weight: bold; }
.gaussmix-summary td.degenerate { background: #fde2c8; color: #8a4a00; }
.gaussmix-summary td.failed { color: #999; font-style: italic; }
.gaussmix-summary .key { color: #555; font-size: .85em; }
"""


# ------------------------------------------------------------------ small pieces
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float, digits: int = 4) -> str:
    """A number cell: ``digits`` significant figures shown, the full value in ``data-value``."""
    value = float(value)
    return f'<td class="num" data-value="{value!r}">{value:.{digits}g}</td>'


def feature_names(model: Any) -> list[str]:
    """The model's feature names, or x0, x1, ... ."""
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else [f"x{j}" for j in range(model.means_.shape[1])]


def svg_of(figure: Any) -> str:
    """A matplotlib figure as an inline ``<svg>`` element (no XML prologue, DOCTYPE or metadata).

    The DOCTYPE names a DTD by URL and the metadata RDF vocabularies: neither is
    needed inline, and a page that mentions no URL is easy to check for requests.
    """
    buffer = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # layout warnings of crowded pair grids
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def _figure(svg: str, caption: str, name: str) -> str:
    return f'<figure class="plot" data-figure="{_e(name)}">{svg}<figcaption>{_e(caption)}</figcaption></figure>'


# ------------------------------------------------------------------ selection
def selection_table_html(selection: dict) -> str:
    """The selection grid (covariance types down, K across) as an HTML table.

    The chosen cell has class ``chosen`` and a star, degenerate cells class
    ``degenerate`` and ``!``, failed fits ``failed``; types show both names
    (``tied (EEE)``).

    Parameters
    ----------
    selection : dict
        :meth:`gaussmix.SelectionResult.to_dict` output (also stored in model files by ``gaussmix fit``).
    """
    from .selection import display_name

    criterion = selection["criterion"]
    rows = selection["rows"]
    best = selection["best"]
    types = list(dict.fromkeys(row["covariance_type"] for row in rows))
    ks = list(dict.fromkeys(row["n_components"] for row in rows))
    cells = {(row["covariance_type"], row["n_components"]): row for row in rows}
    head = "".join(f"<th>K={k}</th>" for k in ks)
    lines = [f'<table class="selection" data-criterion="{_e(criterion)}">',
             f'<thead><tr><th class="name">covariance</th>{head}</tr></thead><tbody>']
    for name in types:
        line = f'<tr><th class="name" data-type="{_e(name)}">{_e(display_name(name))}</th>'
        for k in ks:
            row = cells.get((name, k))
            if row is None:
                line += "<td></td>"
            elif row.get("error") is not None or row.get(criterion) is None:
                line += f'<td class="failed" title="{_e(row.get("error") or "")}">failed</td>'
            else:
                chosen = row["n_components"] == best["n_components"] and name == best["covariance_type"]
                value = float(row[criterion])
                kind = "chosen" if chosen else "degenerate" if row.get("degenerate") else "ok"
                mark = "*" if chosen else "!" if row.get("degenerate") else ""
                line += (f'<td class="{kind}" data-k="{k}" data-type="{_e(name)}" data-value="{value!r}">'
                         f"{value:.2f}{mark}</td>")
        lines.append(line + "</tr>")
    lines.append("</tbody></table>")
    key = ["* chosen (lowest; lower is better, as in scikit-learn)"]
    if any(row.get("degenerate") for row in rows):
        allowed = selection.get("allow_degenerate")
        key.append("! degenerate: a covariance held up by reg_covar alone"
                   + (" (allowed to compete)" if allowed else " (never chosen while a sound fit exists)"))
    if any(row.get("error") is not None for row in rows):
        key.append("failed: the fit did not succeed (hover for the reason)")
    lines.append(f'<p class="key">{criterion.upper()}. ' + "; ".join(_e(part) for part in key) + "</p>")
    return "\n".join(lines)


def selection_summary_html(result: Any) -> str:
    """The compact notebook view of a :class:`~gaussmix.SelectionResult`: best fit and the grid."""
    best = result.best
    value = best.criterion(result.criterion)
    return (
        f'<div class="gaussmix-summary"><style>{_SUMMARY_STYLE}</style>'
        f"<p><b>SelectionResult</b> of {len(result.rows)} fits; best by {_e(result.criterion.upper())}: "
        f"K={best.n_components}, {_e(best.label)}, {_e(result.criterion)}={value:.2f}</p>"
        f"{selection_table_html(result.to_dict())}</div>"
    )


# ------------------------------------------------------------------ the model
def component_table_html(model: Any, X: Optional[np.ndarray] = None) -> str:
    """Weights, sizes, mean uncertainties, means and standard deviations, one row per component.

    Parameters
    ----------
    model : GaussianMixture
        Fitted.
    X : ndarray of shape (n, D), optional
        Rows whose hard assignments give each component's size and the mean of
        their uncertainties (``1 - max responsibility``).
    """
    names = feature_names(model)
    params = model._fitted_params(np.float64)
    dense = np.asarray(params.dense_covariances())
    deviations = np.sqrt(np.einsum("kii->ki", dense))
    weights, means = np.asarray(params.weights), np.asarray(params.means)
    sizes = uncertainty = None
    if X is not None and len(X):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            labels = np.asarray(model.predict(X))
            row_uncertainty = np.asarray(model.uncertainty(X), dtype=np.float64)
        # noise rows (label -1) are counted in the noise's own row below
        sizes = np.bincount(labels[labels >= 0], minlength=model.n_components)
        uncertainty = [float(row_uncertainty[labels == k].mean()) if sizes[k] else float("nan")
                       for k in range(model.n_components)]
    head = '<th class="name">component</th><th>weight</th>'
    if sizes is not None:
        head += "<th>rows</th><th>mean uncertainty</th>"
    head += "".join(f"<th>mean {_e(n)}</th>" for n in names) + "".join(f"<th>sd {_e(n)}</th>" for n in names)
    lines = [f'<table class="components"><thead><tr>{head}</tr></thead><tbody>']
    for k in range(model.n_components):
        cells = f'<td class="name">{k}</td>' + _number(weights[k]).replace('class="num"', 'class="num weight"')
        if sizes is not None:
            cells += f'<td class="num size" data-value="{int(sizes[k])}">{int(sizes[k])}</td>'
            cells += _number(uncertainty[k], 3).replace('class="num"', 'class="num uncertainty"')
        cells += "".join(_number(v, 5).replace('class="num"', 'class="num mean"') for v in means[k])
        cells += "".join(_number(v, 4).replace('class="num"', 'class="num sd"') for v in deviations[k])
        lines.append(f'<tr data-component="{k}">{cells}</tr>')
    noise = params.noise
    if noise is not None:
        cells = '<td class="name">noise</td>' + _number(noise.weight).replace('class="num"', 'class="num weight"')
        if sizes is not None:
            n_noise = int(np.count_nonzero(labels == -1))
            cells += f'<td class="num size" data-value="{n_noise}">{n_noise}</td><td></td>'
        cells += f'<td colspan="{2 * len(names)}">uniform density over a volume of {noise.volume:.6g}</td>'
        lines.append(f'<tr data-component="noise">{cells}</tr>')
    lines.append("</tbody></table>")
    if sizes is not None:
        lines.append('<p class="note">rows: the rows each component claims most; uncertainty of a row: '
                     "1 &minus; its largest responsibility (0: certain, at most 1 &minus; 1/K).</p>")
    return "\n".join(lines)


def correlation_tables_html(model: Any) -> str:
    """Each component's correlation matrix (its covariance scaled by the standard deviations)."""
    names = feature_names(model)
    dense = np.asarray(model._fitted_params(np.float64).dense_covariances())
    if len(names) == 1:
        return '<p class="note">One feature: no correlations.</p>'
    parts = []
    for k, covariance in enumerate(dense):
        scale = 1.0 / np.sqrt(np.diag(covariance))
        correlation = covariance * scale[:, None] * scale[None, :]
        head = '<th class="name"></th>' + "".join(f"<th>{_e(n)}</th>" for n in names)
        body = "".join(
            f'<tr><th class="name">{_e(name)}</th>'
            + "".join(_number(v, 3).replace('class="num"', 'class="num correlation"') for v in row) + "</tr>"
            for name, row in zip(names, correlation)
        )
        parts.append(f'<table class="correlation" data-component="{k}"><caption>component {k}</caption>'
                     f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return '<div class="correlations">' + "\n".join(parts) + "</div>"


def model_summary_html(model: Any) -> str:
    """The compact notebook view of a fitted GaussianMixture: structure, fit and a component table."""
    from .selection import display_name

    converged = "converged" if model.converged_ else "did NOT converge"
    degenerate = " &mdash; <b>degenerate</b> (a covariance held up by reg_covar alone)" if getattr(
        model, "degenerate_", False) else ""
    return (
        f'<div class="gaussmix-summary"><style>{_SUMMARY_STYLE}</style>'
        f"<p><b>GaussianMixture</b>: K={model.n_components}, covariance {_e(display_name(model.covariance_type))}, "
        f"{model.means_.shape[1]} feature(s); {converged} after {model.n_iter_} iteration(s), "
        f"mean log-likelihood {float(model.lower_bound_):.6g}{degenerate}</p>"
        f"{component_table_html(model)}</div>"
    )


# ------------------------------------------------------------------ figures
def _plotted_rows(X: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if X is None or len(X) <= MAX_PLOTTED_ROWS:
        return X
    # An even sample: every row would make the SVG megabytes long and slow to open.
    return X[np.random.RandomState(0).choice(len(X), MAX_PLOTTED_ROWS, replace=False)]


def cluster_figure_svg(model: Any, X: Optional[np.ndarray]) -> str:
    """The data coloured by component with 1- and 2-sigma ellipses (a pair grid for D > 2), as SVG."""
    from matplotlib.figure import Figure

    from . import plotting

    names = feature_names(model)
    n_features = model.means_.shape[1]
    rows = _plotted_rows(X)
    if n_features > 2:
        size = 2.6 * min(n_features, plotting.MAX_PAIR_FEATURES)
        figure = Figure(figsize=(size, size), layout="constrained")
        plotting.draw_pairs(figure, model, rows, names)
    else:
        figure = Figure(figsize=(7, 5.5), layout="constrained")
        ax = figure.subplots()
        if n_features == 1:
            plotting._draw_one_dimension(ax, model, rows, names[0])
        else:
            plotting.draw_clusters(ax, model, rows, names=names)
    return svg_of(figure)


def criterion_figure_svg(selection: dict) -> str:
    """The criterion against K, one curve per covariance type, as SVG."""
    from matplotlib.figure import Figure

    from .plotting import draw_criterion

    figure = Figure(figsize=(9, 4.8), layout="constrained")
    draw_criterion(figure.subplots(), selection)
    return svg_of(figure)


def convergence_figure_svg(model: Any) -> str:
    """Mean log-likelihood per EM iteration, one line per restart, as SVG."""
    from matplotlib.figure import Figure

    from .plotting import draw_convergence

    figure = Figure(figsize=(7, 3.8), layout="constrained")
    draw_convergence(figure.subplots(), getattr(model, "lower_bounds_per_init_", [model.lower_bounds_]))
    return svg_of(figure)


# ------------------------------------------------------------------ the report
def _facts_html(model: Any, X: Optional[np.ndarray], source: dict, selection: Optional[dict]) -> str:
    from . import __version__
    from .selection import display_name

    names = feature_names(model)
    n_rows = None if X is None else int(len(X))
    facts = [
        ("data file", source.get("data") or ("(an array in memory)" if X is not None else "(no data given)")),
        ("rows used", "none" if n_rows is None else str(n_rows)),
        ("dropped rows", str(source.get("dropped", 0)) + " (missing or infinite values)"),
        ("columns used", ", ".join(source.get("columns") or names)),
        ("model", f"K={model.n_components}, covariance {display_name(model.covariance_type)}"),
        ("fit", f"{'converged' if model.converged_ else 'did NOT converge'} after {model.n_iter_} iteration(s); "
                f"mean log-likelihood {float(model.lower_bound_):.6g}"),
        ("gaussmix version", __version__),
    ]
    if source.get("model_file"):
        facts.insert(0, ("model file", source["model_file"]))
    settings = {name: getattr(model, name) for name in SETTINGS if hasattr(model, name)}
    if selection:
        settings.update({f"selection {key}": value for key, value in selection.get("settings", {}).items()})
        settings["selection criterion"] = selection["criterion"]
    settings_text = ", ".join(f"{key}={value!r}" for key, value in settings.items()
                              if isinstance(value, (int, float, str, bool, type(None))))
    facts.append(("settings", settings_text))
    items = "".join(f'<dt>{_e(term)}</dt><dd data-fact="{_e(term)}">{_e(value)}</dd>' for term, value in facts)
    return f'<dl class="facts">{items}</dl>'


def render_report(model: Any, X: Optional[Any] = None, *, selection: Optional[dict] = None,
                  source: Optional[dict] = None, title: Optional[str] = None) -> str:
    """The report as one HTML document (a str).

    Parameters
    ----------
    model : GaussianMixture
        Fitted.
    X : array-like of shape (n, D), optional
        The data: scattered by component, and used for sizes and uncertainties.
        Rows with NaN or infinite values are left out and counted as dropped.
    selection : dict, optional
        :meth:`gaussmix.SelectionResult.to_dict` output: adds the selection table and criterion curves.
    source : dict, optional
        What the reader must know about where things came from: ``data`` (file
        name), ``columns`` (its columns used, when the model has no feature names),
        ``dropped`` (rows dropped before ``X``), ``model_file``.
    title : str, optional

    Raises
    ------
    sklearn.exceptions.NotFittedError
        For an unfitted model.
    ValueError
        If ``X`` is not 2-D with the model's number of features.
    ImportError
        Without matplotlib (``pip install gaussmix[plot]``).
    """
    from sklearn.utils.validation import check_is_fitted

    from .plotting import _matplotlib

    check_is_fitted(model, ["weights_", "means_", "precisions_cholesky_"])
    _matplotlib()
    source = dict(source or {})
    rows = _checked_rows(model, X, source)
    title = title or f"Gaussian mixture: K={model.n_components}, {model.covariance_type}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # no request may leave the page: forbid every fetch, allow only inline styles and images
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        'img-src data:">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        '<section id="facts"><h2>What this report is about</h2>', _facts_html(model, rows, source, selection),
        "</section>",
    ]
    if selection:
        parts += ['<section id="selection"><h2>Model selection</h2>', selection_table_html(selection),
                  _figure(criterion_figure_svg(selection),
                          f"{selection['criterion'].upper()} against the number of components, one line per "
                          "covariance type; the chosen model is circled.", "criterion"),
                  "</section>"]
    parts += ['<section id="model"><h2>The fitted model</h2>', component_table_html(model, rows),
              "<h3>Correlations within each component</h3>", correlation_tables_html(model), "</section>"]
    shown = min(model.means_.shape[1], 4)
    caption = ("Each row coloured by its most probable component (faded where uncertain), the components' "
               "means (X) and 1- and 2-sigma ellipses")
    if model.means_.shape[1] > shown:
        caption += f"; the first {shown} of {model.means_.shape[1]} features"
    if rows is not None and len(rows) > MAX_PLOTTED_ROWS:
        caption += f"; {MAX_PLOTTED_ROWS} of {len(rows)} rows drawn at random"
    parts += ['<section id="figures"><h2>The data and the components</h2>',
              _figure(cluster_figure_svg(model, rows), caption + ".", "clusters"),
              '<h2 id="convergence">Convergence</h2>',
              _figure(convergence_figure_svg(model),
                      "Mean log-likelihood of the training data after each EM iteration, per restart.",
                      "convergence"),
              "</section>", "</body></html>"]
    return "\n".join(parts)


def _checked_rows(model: Any, X: Optional[Any], source: dict) -> Optional[np.ndarray]:
    """``X`` as a float array with the non-finite rows dropped (and counted in ``source['dropped']``)."""
    if X is None:
        return None
    rows = np.asarray(X, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != model.means_.shape[1]:
        raise ValueError(
            f"X has shape {rows.shape}, but the model has {model.means_.shape[1]} feature(s): "
            "give the rows (n, D) the model was fitted on"
        )
    finite = np.all(np.isfinite(rows), axis=1)
    if not finite.all():
        source["dropped"] = int(source.get("dropped", 0)) + int((~finite).sum())
        rows = rows[finite]
    return rows.astype(model.means_.dtype, copy=False)


def write_report(path: Any, model: Any, X: Optional[Any] = None, *, selection: Optional[dict] = None,
                 source: Optional[dict] = None, title: Optional[str] = None) -> Path:
    """Write :func:`render_report`'s document to ``path`` (atomically); return the path.

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.html`` or ``.htm`` (a report is one HTML file).
    """
    from .io import atomic_write

    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"{path}: a report is one HTML file; give a path ending in .html")
    document = render_report(model, X, selection=selection, source=source, title=title)
    with atomic_write(target, "w", encoding="utf-8") as handle:
        handle.write(document)
    return target

