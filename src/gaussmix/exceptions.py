"""Errors gaussmix raises; each subclasses the built-in that scikit-learn raises."""

from __future__ import annotations


class CollapsedComponentError(ValueError):
    """A component's covariance stopped being positive definite during EM.

    Attributes
    ----------
    components : list of int
        Indices of the offending components.
    """

    def __init__(self, components: list[int], detail: str = "") -> None:
        self.components = list(components)
        which = ", ".join(str(k) for k in self.components)
        if len(self.components) == 1:
            subject = f"component {which} collapsed: its covariance is"
        else:
            subject = f"components {which} collapsed: their covariances are"
        message = (
            f"{subject} not positive definite "
            "(it fits too few distinct points or a lower-dimensional set). "
            "Raise reg_covar, scale your data, or use fewer components."
        )
        if detail:
            message = f"{message} {detail}"
        super().__init__(message)


class NumbaCacheWarning(UserWarning):
    """numba has nowhere to write its on-disk cache: the fast kernels compile in every process.

    Set ``NUMBA_CACHE_DIR`` to a writable directory to keep the compiled kernels
    between runs.
    """


class RepeatedRowsWarning(UserWarning):
    """Some row of the data is repeated more often than the data has features.

    A component can then sit on the copies of one row, with no spread in any
    direction: such fits are degenerate (their likelihood grows without bound
    as the covariance shrinks to ``reg_covar``) and may be flagged so.
    """
