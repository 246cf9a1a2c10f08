"""The HTML report and the notebook summaries, checked as a reader sees them: in a headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner

import gaussmix
from gaussmix.cli import cli

from .conftest import PACKAGE_DATA

pytest.importorskip("matplotlib", reason="the report draws with matplotlib: pip install gaussmix[plot]")
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

FAITHFUL = PACKAGE_DATA / "faithful.csv"
BROWSER = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser: install Debian's chromium (apt-get install chromium) to render "
                            "the report; `make test` installs it where it can")
#: chromium's own background traffic (updates, sync, ...) off, and every host name unresolvable
BROWSER_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-domain-reliability", "--disable-features=Translate,OptimizationHints,MediaRouter,SpellCheck",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of the page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def values(self, css_class: str) -> np.ndarray:
        return np.array([float(a["data-value"]) for tag, a in self.tags
                         if css_class in a.get("class", "").split() and "data-value" in a])

    def count(self, tag: str, **attributes: str) -> int:
        return sum(1 for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attributes.items()))


@pytest.fixture(scope="module")
def faithful():
    return np.loadtxt(FAITHFUL, delimiter=",", skiprows=1)


@pytest.fixture(scope="module")
def selection(faithful):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gaussmix.select(faithful, range(1, 5), ["full", "tied", "VEV", "EII"], n_init=1, random_state=0)


def marked_selection(result):
    """The selection's dict with one row (not the chosen one) flagged degenerate, to see the mark."""
    data = result.to_dict()
    best = (data["best"]["n_components"], data["best"]["covariance_type"])
    for row in data["rows"]:
        if (row["n_components"], row["covariance_type"]) != best and row["n_components"] == 4:
            row["degenerate"] = True
            return data, (row["n_components"], row["covariance_type"])
    raise AssertionError("no row to flag")


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, selection, faithful):
    from gaussmix.report import write_report

    data, flagged = marked_selection(selection)
    path = tmp_path_factory.mktemp("report") / "report.html"
    X = np.vstack([faithful, [[np.nan, 1.0]]])  # one row the report must drop and say so
    write_report(path, selection.best_estimator_, X, selection=data, source={"data": "faithful.csv"})
    return path, flagged


def browser(*arguments, timeout=90):
    result = subprocess.run([BROWSER, *BROWSER_FLAGS, *map(str, arguments)], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# ------------------------------------------------------------------ the file itself
def test_the_file_is_self_contained(report_file):
    text = report_file[0].read_text()
    page = Elements(text)
    assert not any(tag in ("script", "link", "iframe", "object", "embed") for tag, _ in page.tags)
    for tag, attributes in page.tags:
        for name in ("src", "href", "xlink:href", "srcset", "action"):
            value = attributes.get(name)
            assert value is None or value.startswith(("#", "data:")), (tag, name, value)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", text) and "@import" not in text
    assert not re.search(r"<!DOCTYPE svg|<\?xml", text)
    assert "@font-face" not in text


def test_the_numbers_are_the_model(report_file, selection, faithful):
    model = selection.best_estimator_
    page = Elements(report_file[0].read_text())
    np.testing.assert_allclose(page.values("weight"), model.weights_, rtol=1e-12)
    np.testing.assert_allclose(page.values("mean").reshape(model.means_.shape), model.means_, rtol=1e-12)
    dense = model._fitted_params().dense_covariances()
    deviations = np.sqrt(np.einsum("kii->ki", dense))
    np.testing.assert_allclose(page.values("sd").reshape(deviations.shape), deviations, rtol=1e-12)
    correlations = page.values("correlation").reshape(dense.shape)
    np.testing.assert_allclose(correlations, dense / (deviations[:, :, None] * deviations[:, None, :]), rtol=1e-12)
    sizes = np.bincount(model.predict(faithful), minlength=model.n_components)
    np.testing.assert_array_equal(page.values("size"), sizes)
    uncertainty = model.uncertainty(faithful)
    labels = model.predict(faithful)
    expected = [uncertainty[labels == k].mean() for k in range(model.n_components)]
    np.testing.assert_allclose(page.values("uncertainty"), expected, rtol=1e-12)


def test_the_selection_table_marks_chosen_and_degenerate_cells(report_file, selection):
    text = report_file[0].read_text()
    page = Elements(text)
    best = selection.best
    chosen = [a for t, a in page.tags if t == "td" and a.get("class") == "chosen"]
    assert len(chosen) == 1
    assert (int(chosen[0]["data-k"]), chosen[0]["data-type"]) == (best.n_components, best.covariance_type)
    assert float(chosen[0]["data-value"]) == pytest.approx(best.bic, rel=1e-12)
    degenerate = [a for t, a in page.tags if t == "td" and a.get("class") == "degenerate"]
    assert [(int(a["data-k"]), a["data-type"]) for a in degenerate] == [report_file[1]]
    words = "".join(page.text)
    assert "tied (EEE)" in words and "full (VVV)" in words and "VEV" in words
    assert "degenerate" in words


def test_what_a_reader_must_know(report_file, selection):
    page = Elements(report_file[0].read_text())
    words = "".join(page.text)
    for fact in ("faithful.csv", "272", "x0, x1", gaussmix.__version__, "reg_covar", "tol=1e-05"):
        assert fact in words, fact
    assert re.search(r"dropped rows\s*1 ", words)


def test_a_pair_grid_and_no_selection_for_iris(tmp_path):
    iris = PACKAGE_DATA.parent.parent.parent.parent / "shared" / "data" / "iris.csv"
    if not iris.exists():
        pytest.skip("iris.csv is not beside the checkout")
    X = np.loadtxt(iris, delimiter=",", skiprows=1, usecols=range(4))
    model = gaussmix.GaussianMixture(2, covariance_type="VEV", random_state=0).fit(X)
    path = model.report(X, tmp_path / "iris.html")
    page = Elements(path.read_text())
    assert page.count("figure", **{"data-figure": "clusters"}) == 1
    assert page.count("figure", **{"data-figure": "criterion"}) == 0
    # 4 features: 16 panels in the pair grid, each its own axes group in the SVG
    clusters = path.read_text().split('data-figure="clusters"')[1].split("</figure>")[0]
    assert len(re.findall(r'<g id="axes_\d+"', clusters)) == 16
    assert len(page.values("correlation")) == 2 * 16


def test_report_errors_a_user_can_cause(tmp_path, selection):
    model = selection.best_estimator_
    with pytest.raises(ValueError, match="HTML"):
        model.report(None, tmp_path / "report.png")
    with pytest.raises(ValueError, match="feature"):
        model.report(np.ones((5, 3)), tmp_path / "report.html")
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        gaussmix.GaussianMixture(2).report(None, tmp_path / "r.html")


def test_selection_result_report_without_data(tmp_path, selection):
    path = selection.report(tmp_path / "selection.html")
    page = Elements(path.read_text())
    assert page.count("table", **{"class": "selection"}) == 1
    assert page.count("figure", **{"data-figure": "criterion"}) == 1
    assert "(no data given)" in "".join(page.text)


# ------------------------------------------------------------------ notebooks
def test_notebook_summaries(selection):
    from sklearn import config_context

    fitted = selection.best_estimator_
    summary = fitted._repr_html_()
    assert "GaussianMixture" in summary and 'class="components"' in summary
    assert fitted._repr_mimebundle_()["text/html"] == summary
    assert "<body" not in summary and "\nbody {" not in summary  # never restyles the notebook
    assert 'class="selection"' in selection._repr_html_()
    # unfitted: scikit-learn's own estimator diagram, and nothing when it is turned off
    unfitted = gaussmix.GaussianMixture(3)
    from sklearn.base import BaseEstimator

    def same(text):  # each diagram numbers its container afresh
        return re.sub(r"sk-(container|estimator)-id-\d+", r"sk-\1-id", text)

    assert same(unfitted._repr_html_()) == same(BaseEstimator._repr_html_.fget(unfitted)())
    bundle, theirs = unfitted._repr_mimebundle_(), BaseEstimator._repr_mimebundle_(unfitted)
    assert bundle.keys() == theirs.keys() and same(bundle["text/html"]) == same(theirs["text/html"])
    assert 'class="components"' not in bundle["text/html"]
    with config_context(display="text"):
        assert not hasattr(unfitted, "_repr_html_")
        assert "text/html" not in unfitted._repr_mimebundle_()


# ------------------------------------------------------------------ the command line
def test_cli_report(tmp_path, selection, faithful):
    model_path = tmp_path / "faithful.gmm"
    gaussmix.save(selection.best_estimator_, model_path, extra={"selection": selection.to_dict()})
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", str(model_path), str(FAITHFUL), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = Elements(out.read_text())
    words = "".join(page.text)
    assert str(FAITHFUL) in words and "eruptions, waiting" in words
    assert page.count("table", **{"class": "selection"}) == 1
    bad = CliRunner().invoke(cli, ["report", str(model_path), "--out", str(tmp_path / "r.pdf")])
    assert bad.exit_code != 0 and ".html" in bad.output


# ------------------------------------------------------------------ in a browser
@needs_browser
def test_the_browser_renders_the_report(report_file, selection, tmp_path):
    path = report_file[0]
    net_log = tmp_path / "net.json"
    dom = browser(f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={net_log}", "--dump-dom",
                  path.as_uri())
    page = Elements(dom)
    assert page.count("table", **{"class": "selection"}) == 1
    assert page.count("table", **{"class": "components"}) == 1
    figures = {a["data-figure"] for t, a in page.tags if t == "figure"}
    assert figures == {"criterion", "clusters", "convergence"}
    assert sum(1 for t, _ in page.tags if t == "svg") >= 3
    np.testing.assert_allclose(page.values("weight"), selection.best_estimator_.weights_, rtol=1e-12)
    # No request from the page: chromium logs the page's requests with the file:// isolation key.
    events = json.loads(net_log.read_text() or "{}").get("events", [])
    from_page = {event["params"].get("url") for event in events
                 if "file://" in str(event.get("params", {}).get("network_isolation_key", ""))}
    assert {url for url in from_page if url and not url.startswith(("file:", "data:"))} == set()


@needs_browser
def test_the_screenshot_is_not_blank(report_file, tmp_path):
    import matplotlib.image

    shot = tmp_path / "report.png"
    browser(f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1800",
            report_file[0].as_uri())
    pixels = matplotlib.image.imread(shot)[:, :, :3]
    colours = np.unique((pixels.reshape(-1, 3) * 255).round().astype(np.uint8), axis=0)
    assert len(colours) > 50  # text, table shading and the coloured clusters
    not_white = np.any(pixels < 0.95, axis=2).mean()
    assert 0.02 < not_white < 0.9
