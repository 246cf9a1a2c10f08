"""``make demo``: the command line on the bundled Old Faithful data, end to end.

Fits K = 1..9 with every covariance type, chooses by BIC, saves the model and
plots into ``demo-output/``, then uses the saved model: info, predict, score,
sample, a re-plot without refitting and a self-contained HTML report
(``report.html``). Each step prints the command it runs.
"""

from __future__ import annotations

import shlex
from contextlib import ExitStack
from importlib import resources
from pathlib import Path

import numpy as np

from .cli import cli

OUTPUT = Path("demo-output")


def load_faithful() -> tuple[np.ndarray, list[str]]:
    """The Old Faithful eruptions (272 x 2: duration, waiting time, in minutes)."""
    with resources.files("gaussmix.data").joinpath("faithful.csv").open() as handle:
        header = handle.readline().strip().split(",")
        return np.loadtxt(handle, delimiter=","), header


def gaussmix(*args: object) -> None:
    """Run one CLI command in this process, echoing it like a shell would."""
    words = [str(a) for a in args]
    print(f"\n$ gaussmix {shlex.join(words)}", flush=True)
    cli.main(words, prog_name="gaussmix", standalone_mode=False)


def main() -> None:
    OUTPUT.mkdir(exist_ok=True)
    model = OUTPUT / "faithful.gmm"
    with ExitStack() as stack:
        data = stack.enter_context(resources.as_file(resources.files("gaussmix.data") / "faithful.csv"))
        data = Path(data).relative_to(Path.cwd()) if Path(data).is_relative_to(Path.cwd()) else data
        # --n-init 1: one k-means++ start besides the hierarchical one keeps the demo near a minute.
        gaussmix("fit", data, "--components", "1-9", "--covariance", "all", "--n-init", "1", "--out", model,
                 "--plot", OUTPUT / "fit.png")
        gaussmix("info", model)
        gaussmix("predict", model, data, "--out", OUTPUT / "labels.csv")
        gaussmix("predict", model, data, "--proba", "--out", OUTPUT / "responsibilities.csv")
        gaussmix("score", model, data, "--out", OUTPUT / "scores.csv")
        gaussmix("sample", model, "-n", 500, "--seed", 0, "--out", OUTPUT / "samples.csv")
        gaussmix("plot", model, data, "--out", OUTPUT / "replot.png")
        gaussmix("report", model, data, "--out", OUTPUT / "report.html")
    print(f"\noutputs in {OUTPUT}/: " + ", ".join(sorted(p.name for p in OUTPUT.iterdir())))


if __name__ == "__main__":
    main()
