"""A terminal progress bar for grid fits, fed by EM iteration events and finished cells.

The bar counts ``cells x restarts x max_iter`` units: a restart that converges
early jumps ahead to its end. It appears only once a fit has run for
``delay`` seconds, so quick fits print nothing; the caller decides whether
a terminal is there at all.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import click

from .em import IterationEvent
from .selection import SelectionRow


class GridProgress:
    """Progress of fitting ``n_cells`` grid cells with ``n_init`` restarts of at most ``max_iter`` iterations.

    Use as a context manager; pass :meth:`on_iteration` as the estimator's
    ``callback`` (reported only by in-process fits) and :meth:`on_cell` as
    ``select``'s ``progress``.
    """

    def __init__(self, n_cells: int, n_init: int, max_iter: int, *, enabled: bool, delay: float = 1.0,
                 file: Any = None) -> None:
        self.units_per_restart = max(1, max_iter)
        self.n_init = n_init
        self.n_cells = n_cells
        self.total = n_cells * n_init * self.units_per_restart
        self.enabled = enabled
        self.delay = delay
        self.file = file
        self.started_at = time.monotonic()
        self.position = 0
        self.restarts_done = 0
        self.cells_done = 0
        self.status = ""
        self._bar: Optional[Any] = None
        self._at_cell_start = True

    def __enter__(self) -> "GridProgress":
        self.started_at = time.monotonic()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)
            self._bar = None

    def on_iteration(self, event: IterationEvent) -> None:
        if event.n_iter == 1 and not self._at_cell_start:
            self.restarts_done += 1
        self._at_cell_start = False
        # Count restarts within the cell: a cell may run several kinds of start
        # (hierarchical, then k-means++), each numbering its own restarts from 1.
        restart = min(self.restarts_done - self.cells_done * self.n_init, self.n_init - 1) + 1
        self.status = (
            f"fit {self.cells_done + 1}/{self.n_cells}, restart {restart}/{self.n_init}, "
            f"iteration {event.n_iter}, mean log-likelihood {event.lower_bound:.4f}"
        )
        self._advance(self.restarts_done * self.units_per_restart + event.n_iter)

    def on_cell(self, row: SelectionRow) -> None:
        self.cells_done += 1
        self.restarts_done = self.cells_done * self.n_init
        self._at_cell_start = True
        state = "failed" if not row.ok else f"BIC {row.bic:.2f}"
        self.status = f"fit {self.cells_done}/{self.n_cells} done: K={row.n_components} {row.covariance_type} ({state})"
        self._advance(self.restarts_done * self.units_per_restart)

    def _advance(self, position: int) -> None:
        position = min(max(position, self.position), self.total)
        step, self.position = position - self.position, position
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self.started_at < self.delay:
                return
            self._bar = click.progressbar(
                length=self.total, label="fitting", file=self.file, show_eta=True,
                item_show_func=lambda _: self.status,
            )
            self._bar.__enter__()
            step = self.position
        self._bar.update(step)
