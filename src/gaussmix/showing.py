"""How a fitted mixture shows itself: an HTML report file, and its summary in notebooks."""

from __future__ import annotations

from typing import Any


class DisplayMixin:
    """``report`` and the notebook display of :class:`gaussmix.GaussianMixture` (:mod:`gaussmix.report`, imported when used)."""

    def report(self, X: Any, path: Any) -> Any:
        """Write a self-contained HTML report of this fitted model and the rows ``X`` to ``path``.

        ``X`` (array of shape (n, D), or None) is drawn coloured by component and
        gives each component's size and mean uncertainty. See :mod:`gaussmix.report`;
        needs matplotlib. Returns the path written (a ``pathlib.Path``).
        """
        from .report import write_report

        return write_report(path, self, X)

    def _is_fitted(self) -> bool:
        return all(hasattr(self, name) for name in ("weights_", "means_", "precisions_cholesky_", "n_iter_"))

    @property
    def _repr_html_(self) -> Any:
        # Fitted: the parameters. Unfitted: scikit-learn's estimator diagram (which may be turned off).
        if not self._is_fitted():
            return super()._repr_html_
        from .report import model_summary_html

        return lambda: model_summary_html(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        if not self._is_fitted():
            return super()._repr_mimebundle_(**kwargs)
        from .report import model_summary_html

        return {"text/plain": repr(self), "text/html": model_summary_html(self)}
