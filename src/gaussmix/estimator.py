"""``GaussianMixture``: a drop-in for scikit-learn's estimator of the same name."""

from __future__ import annotations

import numbers
from typing import Any, Optional

import numpy as np
from sklearn.base import DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _validation as checks
from . import fitting
from ._derived import DerivedMixin
from ._univariate import UnivariateMixin
from .covariance import get_covariance_model
from .criteria import CriteriaMixin
from .degeneracy import degenerate_components
from .hyperparameters import MixtureParameters
from .imputing import ImputeMixin
from .noise import Region, UniformNoise
from .params import MixtureParams
from .scoring import ScoringMixin
from .showing import DisplayMixin


#: the fitted attributes of a noise component (absent without one)
NOISE_ATTRIBUTES = ("noise_weight_", "noise_volume_", "noise_axes_", "noise_bounds_")


class GaussianMixture(ScoringMixin, ImputeMixin, UnivariateMixin, DerivedMixin, CriteriaMixin, DisplayMixin,
                      DensityMixin, MixtureParameters):
    """Gaussian mixture model fitted by Expectation-Maximisation.

    The constructor takes scikit-learn's ``GaussianMixture`` parameters with the
    same meaning and defaults, so replacing the import is all a user does. On
    top of them, ``fit`` accepts ``sample_weight`` (frequency weights).

    ``X`` may be a torch tensor (CPU or CUDA): EM then runs in torch on the
    tensor's device, the fitted attributes are tensors there, and inference
    returns tensors there. Only the initialisation runs on the host, on at most
    ``2**17`` rows (a random sample beyond that).

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : str, default="full"
        ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"`` (the same as the
        mclust names ``"VVV"``, ``"EEE"``, ``"VVI"``, ``"VII"``), or any other of
        mclust's 14 structures (``gaussmix.MCLUST_COVARIANCE_TYPES``).
    tol : float, default=1e-3
        Convergence threshold on the change of the mean per-sample log-likelihood.
    reg_covar : float, default=1e-6
        Non-negative value added to the covariance diagonals.
    max_iter : int, default=100
        EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the best lower bound is kept,
        among those that are not degenerate (:mod:`gaussmix.degeneracy`) unless
        every one is (scikit-learn keeps the best lower bound whatever it is).
        A start whose component collapses is dropped; the fit raises only
        when every start does.
    init_params : {"kmeans", "k-means++", "hierarchical", "random", "random_from_data"}, default="kmeans"
        How starting responsibilities are chosen. ``"hierarchical"`` is mclust's
        start: model-based agglomerative clustering (:mod:`gaussmix.init.hierarchical`).
        A callable ``(X, sample_weight, n_components, random_state) -> labels``
        also serves (``select`` passes a :class:`~gaussmix.init.HierarchicalTree`
        built once for its whole grid).
    weights_init : array of shape (K,), default=None
    means_init : array of shape (K, D), default=None
    precisions_init : array, default=None
        In the covariance type's layout: (K, D, D) full, (D, D) tied, (K, D)
        diag, (K,) spherical; an mclust structure uses the layout of the type
        it constrains (see :mod:`gaussmix.covariance.base`).
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
        Start the next ``fit`` from the current solution (``n_init`` is then 1).
    verbose : int, default=0
        1 prints each initialisation, 2 also every ``verbose_interval`` iterations.
    verbose_interval : int, default=10
    callback : callable, default=None
        Called as ``callback(event)`` with an :class:`gaussmix.em.IterationEvent`
        after every EM iteration (for progress bars); not in scikit-learn.
    chunk_size : int, default=None
        Rows per E-step chunk; ``None`` chooses it so the temporaries stay
        within a few MiB on the host, or within a share of the free memory of
        a CUDA device. Not in scikit-learn.
    learning_decay : float, default=0.7
        Exponent alpha in (0.5, 1] of the step sizes ``(t + 2) ** -alpha`` of
        :meth:`partial_fit`: smaller values forget old batches faster (track
        drift), 1 weighs all batches equally. Not in scikit-learn.
    device : str or torch.device, default=None
        ``None`` keeps the rows where they are (NumPy stays NumPy, a tensor
        stays on its device). ``"cuda"``, ``"cuda:1"``, ``"cpu"`` or a
        ``torch.device`` moves the input of ``fit``, ``predict`` & co. to that
        torch device (needs ``pip install gaussmix[torch]``). NumPy input moved
        to CUDA is converted to float32; pass a float64 tensor to fit in
        float64 on the GPU. Not in scikit-learn.
    missing : {"error", "marginalize"}, default="error"
        What NaN entries of ``X`` mean. ``"error"``: they are refused.
        ``"marginalize"``: they are missing values (missing at random),
        integrated out exactly: ``fit`` runs the EM of Ghahramani & Jordan
        (1994) on each row's observed entries (every covariance structure,
        sample weights, chunks), ``predict``, ``predict_proba``,
        ``score_samples``, ``score``, ``bic`` & co. evaluate each row on its
        observed features, and :meth:`impute` fills the gaps. A row with
        every entry missing is an error naming it; drop such rows. The
        initialisers see incomplete rows filled with the column means.
        NumPy arrays (``fit`` and ``partial_fit``), torch tensors (on their
        device), out-of-core data (``.npy`` files, memory maps, HDF5/Zarr
        arrays, chunk sources) and Dask arrays (:mod:`gaussmix.dask`); data
        without NaN fit exactly as with ``"error"``.
        See :mod:`gaussmix.missing`. Not in scikit-learn.
    equal_weights : bool, default=False
        Keep every weight at ``1/K`` through EM (mclust's ``equalPro``). The
        K - 1 weights are then not free parameters: BIC and AIC do not count
        them. Cannot be combined with ``weights_init`` or frozen weights. Not
        in scikit-learn.
    fixed : str, set of str or dict, default=None
        Parameters EM leaves at their starting values (the ``*_init`` arrays
        where given, otherwise the initialiser's start), among ``"weights"``,
        ``"means"`` and ``"covariances"``: ``fixed={"means", "covariances"}``
        freezes them for every component; a dict of per-component boolean
        masks freezes some components only, e.g.
        ``fixed={"means": [True, False, True]}`` (``True`` / ``False`` there
        mean all / none). Free weights share what frozen ones leave in
        proportion to their responsibilities; a free covariance is estimated
        about its component's (possibly frozen) mean. Per-component covariance
        masks need a structure whose components have their own covariances
        (``"full"`` / VVV, ``"diag"`` / VVI, ``"spherical"`` / VII); in the
        others (``"tied"`` / EEE, EII, EEI, VEV, ...) the components share
        covariance parameters and freeze all together. BIC and AIC count only
        the parameters left free (a frozen mean: D fewer; frozen covariances:
        the structure's count for them). Not in scikit-learn.
    engine : str, default="auto"
        Which E-step engine computes the statistics (see :mod:`gaussmix.estep`):
        ``"auto"`` takes the fastest that suits each chunk, or one of
        ``"fused"``, ``"screened"``, ``"sparse"``, ``"expanded"``,
        ``"whitened"``, ``"pooled"``, ``"portable"`` (torch tensors), ``"generic"``.
        All give the same fit up to rounding. Where the named engine cannot run a chunk (another covariance
        structure or array namespace, numba absent or ``GAUSSMIX_NUMBA=0``) or
        declines it (it would lose too many digits), the automatic choice among
        the engines after it runs instead. A named engine also keeps EM's loop
        in Python (:mod:`gaussmix.compiled_em` runs it whole only under "auto").
        Not in scikit-learn.
    screen_iter : int, default=None
        With ``n_init > 1``, screen the starts after the first (after
        Biernacki, Celeux & Govaert's 2003 "emEM"): the first start runs to
        convergence; each later one runs ``screen_iter`` iterations, and only
        the best of those (a non-degenerate one first) goes on to
        convergence, resuming where it stopped, so it ends exactly where
        running it alone would. A start that converges within ``screen_iter``
        iterations competes as it is. About two full runs instead of
        ``n_init``, at the risk of dropping a start that was behind after
        ``screen_iter`` iterations but would have ended ahead. ``None``
        (scikit-learn's behaviour): every start runs to convergence. float32
        rows are not screened (a run that loses float32 precision finishes
        in float64). Not in scikit-learn.
    prior : {"default"}, Prior or None, default=None
        A conjugate prior on the means and covariances: EM then finds the
        maximum a posteriori (MAP) parameters, mclust's
        ``priorControl()`` (Fraley & Raftery 2007). ``"default"`` is mclust's
        default prior, its hyperparameters computed from the training data
        (shrinkage 0.01 towards the column means, ``D + 2`` degrees of
        freedom, scale the data's covariance times ``K^(-2/D)``);
        ``gaussmix.Prior(shrinkage=, mean=, dof=, scale=)`` sets them. A
        component can then no longer collapse onto a few rows. Every
        structure but VEE, EVE, VVE and EVV (which mclust gives no prior
        either); not with ``partial_fit``. The criteria (``bic``, ``aic``)
        use the log-likelihood at the MAP parameters, as mclust's. See
        :mod:`gaussmix.priors` for the maths and where gaussmix differs from
        mclust. Not in scikit-learn.
    noise : bool, default=False
        Add a noise component beside the K Gaussians (mclust's noise): a
        uniform density ``1/V`` over the data's region, with its own weight
        ``noise_weight_``, for scattered outliers and background clutter
        (:mod:`gaussmix.noise`). ``V`` is ``noise_volume``, or mclust's
        ``hypvol`` of the training rows: the smaller of the volumes of their
        bounding box along the coordinates and along their principal
        components. EM starts as mclust's does: the Gaussians from the
        initialiser on the rows not marked as noise (``noise_init``), the
        noise with the marked rows' share of the weight (a ``weights_init``
        is scaled to share the rest). ``predict`` gives -1 for rows the noise
        claims; ``predict_proba`` has K + 1 columns, the noise last;
        ``score_samples``, ``score``, ``bic`` & co. include the noise density
        (at every row, inside the region or not, as mclust); BIC and AIC
        count two more parameters (mclust's: the noise weight and the
        volume). In-memory NumPy rows only (not torch tensors, out-of-core
        data, ``partial_fit``, or rows with missing entries); ``fixed``
        weights are refused, ``equal_weights`` gives every Gaussian
        ``(1 - noise_weight_) / K``. Not in scikit-learn.
    noise_init : array-like of bool of shape (n_samples,) or of int, default=None
        The rows of the ``fit``'s X that start as noise: a mask, or their
        indices (mclust's ``initialization = list(noise = ...)``). Giving it
        adds the noise component (``noise=True`` is implied). Default with
        ``noise=True``: the rows where ``1/V`` exceeds the density of one
        Gaussian fitted to all rows (at least one row). Not in scikit-learn.
    noise_volume : float, default=None
        ``V``, the volume of the data's region (mclust's ``1 / Vinv``);
        None: mclust's ``hypvol`` of the training rows. Needs ``noise=True``
        or ``noise_init``. Not in scikit-learn.

    Attributes
    ----------
    weights_ : array of shape (K,)
        The Gaussians' weights: they sum to one, or to ``1 - noise_weight_``
        with a noise component.
    means_ : array of shape (K, D)
    covariances_, precisions_, precisions_cholesky_ : array
        In the covariance type's layout. NumPy arrays, or tensors on the
        device the fit ran on.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood of the training data at the best initialisation's last E-step;
        with a ``prior``, the mean log-posterior there (log-likelihood plus the log prior
        density, up to a constant of the hyperparameters), which MAP EM never lowers.
    lower_bounds_ : list of float
        That value after each iteration of the best initialisation.
    lower_bounds_per_init_ : list of list of float
        The same trace for every initialisation of the last ``fit``, in order
        (for convergence plots); not in scikit-learn.
    best_init_ : int
        Index of the initialisation kept (into ``lower_bounds_per_init_``); not in scikit-learn.
    degenerate_components_ : ndarray of bool, shape (K,)
        Components whose covariance the data do not determine (held up by
        ``reg_covar`` alone, or, with a ``prior``, holding less than half a
        row: emptied; :mod:`gaussmix.degeneracy` states the rule).
        ``fit`` warns with :class:`~gaussmix.degeneracy.DegenerateFitWarning`
        when any is; :func:`gaussmix.select` never chooses such a fit while a
        sound one exists. Not in scikit-learn.
    degenerate_ : bool
        Whether any component is degenerate.
    effective_counts_ : ndarray of shape (K,)
        Fits with a ``prior`` only: each component's effective row count
        ``N_k``, the training rows' responsibilities summed with their
        weights (scaled to mean one), i.e. ``weights_`` times the number of
        training rows. The degenerate-fit rule of prior fits reads it. Not in
        scikit-learn.
    float64_iterations_ : int
        Iterations of the kept run done in float64: float32 EM whose
        log-likelihood fell by more than float32's rounding (EM never lowers
        it in exact arithmetic) finishes in float64 from the last parameters
        before the fall, and the fitted attributes are cast back to float32.
        0 for float64 data and float32 fits that kept their precision.
        Not in scikit-learn.
    noise_weight_ : float
        The noise component's weight (mclust's last ``pro``); only with a noise component.
    noise_volume_ : float
        ``V``: the noise density is ``noise_weight_ / noise_volume_`` at every point.
    noise_axes_ : ndarray of shape (D, D)
        With ``noise_bounds_`` (shape (2, D): least and largest ``x @ noise_axes_``
        of the training rows), the data's box where :meth:`sample` draws noise
        rows: the coordinates' box (identity axes) or the principal
        components' (their directions as columns), whichever ``hypvol`` chose.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    """

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "GaussianMixture":
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or out-of-core data
            Besides arrays: a ``numpy.memmap``, the path of a ``.npy`` file
            (read through memory maps, one chunk at a time), an h5py dataset,
            a Zarr array, or a chunk source (see :mod:`gaussmix.sources`).
            Those are streamed chunk by chunk on every EM iteration and never
            loaded whole; the initialiser runs on a weighted reservoir sample
            of at most 32768 rows (see :mod:`gaussmix.streaming`).
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights: a row of weight 2 counts as two rows.
            Only their ratios matter: multiplying every weight by a constant
            changes nothing. A chunk source yields its weights with its chunks instead.

        Returns
        -------
        self
        """
        fitting.fit(self, X, sample_weight)
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit the model and return the label of each row, shape (n_samples,)."""
        return self.fit(X, y, sample_weight=sample_weight).predict(X)

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> "GaussianMixture":
        """One step of stepwise (online) EM on a batch of rows.

        The running statistics ``s`` are the average of the batches' E-step
        statistics, each batch normalised to unit total weight, updated as
        ``s <- (1 - eta_t) s + eta_t s_hat(batch)`` with
        ``eta_t = (t + 2) ** -learning_decay`` (Cappé & Moulines 2009); the
        parameters are then one M-step away from ``s``. Every batch counts as one
        step whatever its size or total weight, so keep batch sizes similar.

        - **First batch** (or the first after ``fit``): it initialises the model
          as ``fit`` would (``init_params`` or the ``*_init`` arrays; needs at
          least ``n_components`` rows), or, when the model was already fitted,
          starts from the fitted parameters. Its statistics under those
          parameters become ``s`` (t = 0). Its weighted mean becomes the origin
          of the centred frame the statistics live in, fixed for the whole
          stream: float32 data that later drift far from it lose digits. A
          later batch with rows beyond the components by more than
          ``1/sqrt(eps)`` of a feature's largest standard deviation raises
          ``ValueError`` and leaves the model as it was: the component taking
          them would lose everything it held to rounding.
        - **Later batches** may have any number of rows, fewer than
          ``n_components`` included (components a batch does not reach keep
          their old statistics, scaled by ``1 - eta_t``), in the first batch's
          number of features and precision.

        ``fit`` discards the online state. ``lower_bound_`` is the mean
        log-likelihood of the last batch under the parameters before its step;
        ``n_iter_`` counts the batches; ``converged_`` stays False.

        Parameters
        ----------
        X : array-like of shape (n_batch, n_features)
        y : ignored
        sample_weight : array-like of shape (n_batch,), default=None

        Returns
        -------
        self
        """
        fitting.partial_fit(self, X, sample_weight)
        return self

    def _set_parameters(self, params: MixtureParams, counts: Optional[np.ndarray] = None) -> None:
        """The parameter attributes from ``params`` (user's coordinates), judged by the degenerate-fit rule.

        ``counts``: a prior fit's effective row counts (K,), kept as ``effective_counts_``; None removes them.
        """
        if counts is None:
            self.__dict__.pop("effective_counts_", None)
        else:
            self.effective_counts_ = np.asarray(counts, dtype=np.float64)
        for name in NOISE_ATTRIBUTES:
            self.__dict__.pop(name, None)
        if params.noise is not None:
            self.noise_weight_ = params.noise.weight
            self.noise_volume_ = params.noise.volume
            self.noise_axes_ = params.noise.region.axes
            self.noise_bounds_ = np.stack([params.noise.region.lower, params.noise.region.upper])
        self.weights_ = params.weights
        self.means_ = params.means
        self.covariances_ = params.covariances
        self.precisions_cholesky_ = params.precisions_cholesky
        self.precisions_ = params.covariance.precisions(params.precisions_cholesky)
        self.degenerate_components_ = degenerate_components(params, float(self.reg_covar), counts)
        self.degenerate_ = bool(np.any(self.degenerate_components_))

    def _fitted_params(self, dtype: Any = None, *, like: Any = None) -> MixtureParams:
        """The fitted attributes as :class:`MixtureParams` (read afresh, as users may set them).

        With ``dtype``, as host NumPy arrays of that dtype; with ``like``, in its
        namespace, device and dtype (parameters are small: they go where the
        rows are, never the other way round).
        """
        check_is_fitted(self, ["weights_", "means_", "precisions_cholesky_"])
        covariance = get_covariance_model(self.covariance_type)
        params = MixtureParams(
            self.weights_, self.means_, self.covariances_, self.precisions_cholesky_, covariance, self._fitted_noise()
        )
        if dtype is not None:
            like = np.empty(0, dtype=dtype)
        return params if like is None else params.converted_like(like)

    def _fitted_noise(self) -> Any:
        """The fitted noise component (:class:`gaussmix.noise.UniformNoise`), or None."""
        if getattr(self, "noise_weight_", None) is None:
            return None
        bounds = np.asarray(self.noise_bounds_, dtype=np.float64)
        region = Region(np.asarray(self.noise_axes_, dtype=np.float64), bounds[0], bounds[1])
        return UniformNoise(float(self.noise_weight_), float(self.noise_volume_), region)

    def sample(self, n_samples: int = 1) -> tuple[Any, Any]:
        """Draw rows from the fitted mixture.

        With a noise component, ``noise_weight_ * n_samples`` rows on average
        are drawn uniformly in the box ``noise_axes_`` / ``noise_bounds_``
        (the data's region, see :mod:`gaussmix.noise`), labelled -1, after
        the Gaussians' rows. With a ``noise_volume`` of your own the box is
        still the data's: its density is not ``1 / noise_volume``.

        Returns
        -------
        X : array of shape (n_samples, D)
            On the device of the fitted attributes.
        y : array of shape (n_samples,)
            The component each row was drawn from (-1: the noise).
        """
        params = self._fitted_params()
        checks.check_param("n_samples", n_samples, numbers.Integral, 1)
        return params.sample(int(n_samples), check_random_state(self.random_state))
