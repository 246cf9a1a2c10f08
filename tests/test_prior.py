"""MAP EM with mclust's conjugate prior: hyperparameters, the objective, limits and collapse.

Comparisons with mclust's own numbers are in ``test_prior_against_mclust.py``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from gaussmix import GaussianMixture, Prior, load, save, select
from gaussmix.io import ModelFileError
from gaussmix.degeneracy import DegenerateFitWarning

#: every structure mclust gives a prior (the scikit-learn four are VVV, EEE, VVI, VII)
WITH_PRIOR = ("full", "tied", "diag", "spherical", "EII", "EEI", "VEI", "EVI", "EEV", "VEV")
#: a fit's labels for rows of X below: the three clusters in order
LABELS = np.repeat([0, 1, 2], [200, 60, 100])


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    return np.vstack([rng.randn(200, 2), rng.randn(60, 2) * 0.7 + 5, rng.randn(100, 2) * [0.5, 1.5] + [-4, 4]])


def _fit(X, n_components=3, labels=None, **params):
    """A quiet fit; ``labels``: start from that partition (an initialiser callable)."""
    if labels is not None:
        params["init_params"] = lambda rows, weights, k, random_state: labels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(n_components, random_state=0, **params).fit(X)


def _same_fit(a, b, rtol):
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=0)


# ------------------------------------------------------------------ hyperparameters
@pytest.mark.parametrize("settings, message", [
    (dict(shrinkage=-0.1), r"shrinkage=...\) must be a finite number >= 0"),
    (dict(shrinkage=np.nan), r"shrinkage=...\) must be a finite number >= 0"),
    (dict(shrinkage=True), r"shrinkage=...\) must be a number"),
    (dict(shrinkage="small"), r"shrinkage=...\) must be a number"),
    (dict(dof=0), r"dof=...\) must be a finite number > 0"),
    (dict(dof=np.inf), r"dof=...\) must be a finite number > 0"),
    (dict(mean=[[1.0, 2.0]]), r"one value per feature, shape \(D,\); got shape \(1, 2\)"),
    (dict(mean=[1.0, np.nan]), "NaN or infinite"),
    (dict(mean=["a", "b"]), "must be numbers"),
    (dict(shrinkage=0, mean=[1.0, 2.0]), "shrinkage=0 shrinks none: give shrinkage > 0, or leave mean out"),
    (dict(scale=-1.0), r"scale=...\) must be a finite number >= 0"),
    (dict(scale=[1.0, 2.0]), r"a number or a square \(D, D\) matrix; got shape \(2,\)"),
    (dict(scale=[[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
    (dict(scale=[[1.0, 0.0], [0.0, -1.0]]), "positive semi-definite"),
])
def test_hyperparameters_are_checked_with_errors_that_say_what_is_wrong(settings, message):
    with pytest.raises(ValueError, match=message):
        Prior(**settings)


@pytest.mark.parametrize("prior, message", [
    (Prior(mean=[0.0, 0.0, 0.0]), "has 3 values, but the data have 2 features"),
    (Prior(scale=np.eye(3)), r"has shape \(3, 3\), but the data have 2 features: give a \(2, 2\) matrix"),
])
def test_hyperparameters_of_another_number_of_features_are_refused_at_fit(X, prior, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(3, prior=prior).fit(X)


def test_prior_is_a_checked_estimator_parameter(X):
    with pytest.raises(InvalidParameterError, match="'prior' parameter of GaussianMixture"):
        GaussianMixture(3, prior="mclust").fit(X)
    with pytest.raises(InvalidParameterError, match="'prior' parameter of GaussianMixture"):
        GaussianMixture(3, prior={"shrinkage": 0.1}).fit(X)


@pytest.mark.parametrize("covariance_type", ["VEE", "EVE", "VVE", "EVV"])
def test_structures_without_a_prior_say_which_have_one(X, covariance_type):
    with pytest.raises(ValueError, match=f"covariance_type='{covariance_type}' has no conjugate prior .* use one of "
                                         "full, tied, diag, spherical, EII, EEI, VEI, EVI, EEV, VEV, or prior=None"):
        GaussianMixture(3, covariance_type=covariance_type, prior="default").fit(X)


def test_partial_fit_refuses_a_prior(X):
    with pytest.raises(ValueError, match="partial_fit does not take a prior"):
        GaussianMixture(3, prior="default").partial_fit(X)


def test_default_prior_needs_complete_rows_but_given_hyperparameters_do_not(X):
    holes = X.copy()
    holes[::7, 1] = np.nan
    with pytest.raises(ValueError, match=r"pass Prior\(mean=..., scale=...\) with both given"):
        GaussianMixture(3, prior="default", missing="marginalize").fit(holes)
    given = Prior(mean=np.nanmean(holes, axis=0), scale=np.diag(np.nanvar(holes, axis=0)) / 3)
    model = _fit(holes, prior=given, missing="marginalize")
    assert np.all(np.isfinite(model.means_))


def test_hyperparameters_round_trip_through_json():
    prior = Prior(shrinkage=0.2, mean=[1.0, 2.0], dof=7.5, scale=[[2.0, 0.5], [0.5, 1.0]])
    assert Prior.from_json(json.loads(json.dumps(prior.to_json()))) == prior
    assert Prior.from_json(Prior().to_json()) == Prior() != prior
    with pytest.raises(ValueError, match="keys"):
        Prior.from_json({"shrinkage": 0.1})


# ------------------------------------------------------------------ what None and the engines leave alone
def test_no_prior_is_bit_identical_to_the_default(X):
    default, explicit = _fit(X), _fit(X, prior=None)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(default, name), getattr(explicit, name))
    assert default.lower_bounds_ == explicit.lower_bounds_


@pytest.mark.parametrize("covariance_type", ["full", "EEI", "VEV"])
def test_a_prior_fit_is_the_same_whichever_engine_and_loop_run_it(X, covariance_type):
    # "auto" may run EM's compiled whole loop, which knows no prior: a prior must keep it in Python's
    automatic = _fit(X, covariance_type=covariance_type, prior="default", tol=1e-8)
    generic = _fit(X, covariance_type=covariance_type, prior="default", tol=1e-8, engine="generic")
    _same_fit(automatic, generic, rtol=1e-9)
    assert automatic.n_iter_ == generic.n_iter_


# ------------------------------------------------------------------ the objective
@pytest.mark.parametrize("covariance_type", WITH_PRIOR)
def test_map_em_never_lowers_the_log_posterior(X, covariance_type):
    prior = Prior(shrinkage=0.5, dof=5.0, scale=0.3)  # strong enough to move every parameter
    model = _fit(X, labels=np.random.RandomState(1).randint(3, size=X.shape[0]), covariance_type=covariance_type,
                 prior=prior, reg_covar=0.0, tol=0.0, max_iter=60)
    posterior = np.array(model.lower_bounds_)
    assert np.all(np.diff(posterior) >= -1e-12 * np.abs(posterior[1:])), np.diff(posterior).min()
    # lower_bound_ is the log-posterior, not the log-likelihood: the prior's density is in it
    assert abs(model.lower_bound_ - model.score(X)) > 1e-3


@pytest.mark.parametrize("constraint", [dict(equal_weights=True), dict(fixed={"means"}),
                                        dict(fixed={"means": [True, False, False]}), dict(fixed={"covariances"})])
def test_map_em_with_constraints_never_lowers_the_log_posterior(X, constraint):
    model = _fit(X, means_init=[[0.5, 0.5], [4.0, 4.0], [-3.0, 3.0]], prior=Prior(shrinkage=2.0, scale=0.5),
                 reg_covar=0.0, tol=0.0, max_iter=40, **constraint)
    posterior = np.array(model.lower_bounds_)
    assert np.all(np.diff(posterior) >= -1e-12 * np.abs(posterior[1:])), np.diff(posterior).min()
    if "fixed" in constraint and "means" in constraint["fixed"]:
        assert model.means_[0] == pytest.approx([0.5, 0.5], abs=1e-13)


# ------------------------------------------------------------------ limits
def test_without_shrinkage_and_scale_vev_is_maximum_likelihood(X):
    # mclust's VEV adds no pseudo-count for K > 1: with nothing to shrink and no scale it is ML
    given = _fit(X, labels=LABELS, covariance_type="VEV", prior=Prior(shrinkage=0, scale=0), tol=1e-9)
    plain = _fit(X, labels=LABELS, covariance_type="VEV", tol=1e-9)
    _same_fit(given, plain, rtol=1e-8)
    assert given.bic(X) == pytest.approx(plain.bic(X), abs=1e-6)


def test_without_shrinkage_and_scale_a_map_step_only_counts_the_prior(X):
    # one M-step from a partition: ML's means, and covariances over N_k + dof + D + 2 instead of N_k
    map_step = _fit(X, labels=LABELS, prior=Prior(shrinkage=0, scale=0, dof=3.0), reg_covar=0.0, max_iter=0)
    ml_step = _fit(X, labels=LABELS, reg_covar=0.0, max_iter=0)
    np.testing.assert_allclose(map_step.means_, ml_step.means_, rtol=1e-13)
    counts = np.bincount(LABELS).astype(float)
    np.testing.assert_allclose(map_step.covariances_,
                               ml_step.covariances_ * (counts / (counts + 3.0 + 2 + 2))[:, None, None], rtol=1e-12)


def test_large_shrinkage_pulls_every_mean_to_the_prior_mean(X):
    centre = np.array([1.0, -2.0])
    model = _fit(X, labels=LABELS, prior=Prior(shrinkage=1e9, mean=centre), max_iter=0)
    np.testing.assert_allclose(model.means_, np.tile(centre, (3, 1)), atol=1e-5)


def test_many_degrees_of_freedom_pull_every_covariance_to_the_prior_guess(X):
    # scale = dof * S: the inverse-Wishart's mode is S, and with dof >> n the data barely move it
    guess = np.array([[2.0, 0.3], [0.3, 0.5]])
    model = _fit(X, labels=LABELS, prior=Prior(dof=1e9, scale=1e9 * guess), reg_covar=0.0, max_iter=0)
    np.testing.assert_allclose(model.covariances_, np.tile(guess, (3, 1, 1)), rtol=1e-6)


# ------------------------------------------------------------------ what the prior is for
def test_the_prior_keeps_a_component_on_repeated_rows_from_collapsing():
    rng = np.random.RandomState(3)
    X = np.vstack([rng.randn(200, 2), np.tile([[8.0, 8.0]], (4, 1))])  # four copies of one row
    labels = np.r_[np.zeros(200, int), np.ones(4, int)]
    plain = _fit(X, 2, labels=labels)
    assert plain.degenerate_components_.tolist() == [False, True]  # held up by reg_covar alone
    model = _fit(X, 2, labels=labels, prior="default")
    assert not model.degenerate_
    assert model.predict(X)[-4:].tolist() == [1] * 4  # the component still holds the copies
    # its covariance is the prior's scale over its count at least: var(X) / K^(2/D) / (N_k + D + 2 + D + 2)
    floor = np.cov(X.T) / 2 / (4 + 8)
    assert np.linalg.eigvalsh(np.linalg.inv(floor) @ model.covariances_[1]).min() > 0.99


def test_weights_have_no_prior_and_an_emptied_component_goes_to_the_prior_mean(X):
    # a fourth component started on one far row empties, and MAP's mean of no rows is the prior mean
    far = np.vstack([X, [[40.0, 40.0]]])
    labels = np.r_[LABELS, 3]
    model = _fit(far, 4, labels=labels, prior=Prior(shrinkage=1.0, mean=[0.0, 0.0], scale=0.1), max_iter=0)
    counts = np.bincount(labels).astype(float)
    np.testing.assert_allclose(model.weights_, counts / counts.sum(), rtol=1e-12)
    np.testing.assert_allclose(model.means_[3], [20.0, 20.0], rtol=1e-12)  # (1 x 40 + 1 x 0) / 2


# ------------------------------------------------------------------ data sources, models, selection
def test_out_of_core_rows_fit_as_in_memory_with_the_default_prior(tmp_path, X):
    path = tmp_path / "rows.npy"
    np.save(path, X)
    start = dict(means_init=[[0.0, 0.0], [5.0, 5.0], [-4.0, 4.0]], prior="default", tol=1e-8, covariance_type="EEV")
    _same_fit(_fit(str(path), **start), _fit(X, **start), rtol=1e-9)


def test_torch_rows_fit_as_numpy_with_a_prior(X):
    torch = pytest.importorskip("torch")
    start = dict(means_init=[[0.0, 0.0], [5.0, 5.0], [-4.0, 4.0]], prior="default", tol=1e-8)
    on_torch = _fit(torch.from_numpy(X), **start)
    on_numpy = _fit(X, **start)
    np.testing.assert_allclose(on_torch.means_.numpy(), on_numpy.means_, rtol=1e-9)
    np.testing.assert_allclose(on_torch.covariances_.numpy(), on_numpy.covariances_, rtol=1e-9)


@pytest.mark.parametrize("prior", ["default", Prior(shrinkage=0.2, mean=[1.0, 2.0], dof=7.0, scale=[[2.0, 0.5], [0.5, 1.0]])])
def test_a_saved_model_keeps_its_prior(tmp_path, X, prior):
    model = _fit(X, prior=prior)
    save(model, tmp_path / "map.gmm")
    loaded = load(tmp_path / "map.gmm")
    assert loaded.prior == prior
    assert loaded.bic(X) == model.bic(X)
    # and refits as the model did
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = GaussianMixture(**loaded.get_params()).fit(X)
    _same_fit(refit, model, rtol=1e-12)


def test_a_tampered_prior_in_a_model_file_is_refused(tmp_path, X):
    import zipfile

    save(_fit(X, prior=Prior(dof=7.0)), tmp_path / "map.gmm")
    with zipfile.ZipFile(tmp_path / "map.gmm") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(members["metadata.json"])
    metadata["params"]["prior"]["dof"] = -1
    members["metadata.json"] = json.dumps(metadata).encode()
    with zipfile.ZipFile(tmp_path / "tampered.gmm", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match=r"invalid settings in params: Prior\(dof=...\) must be a finite number > 0"):
        load(tmp_path / "tampered.gmm")


def test_select_leaves_out_structures_without_a_prior_and_refuses_them_named(X):
    result = select(X, [1, 2], random_state=0, prior="default")
    assert result.covariance_types == list(WITH_PRIOR)
    assert all(row.ok for row in result.rows)
    assert all(model.prior == "default" for model in result.estimators_.values())
    with pytest.raises(ValueError, match="covariance_type='VVE' has no conjugate prior"):
        select(X, [1, 2], ["full", "VVE"], prior="default")
    with pytest.raises(ValueError, match="prior must be None, 'default'"):
        select(X, [1, 2], prior="on")


def test_command_line_fits_with_the_default_prior(tmp_path, X):
    click_testing = pytest.importorskip("click.testing")
    from gaussmix.cli import cli

    path = tmp_path / "rows.csv"
    np.savetxt(path, X, delimiter=",", header="a,b", comments="")
    outcome = click_testing.CliRunner().invoke(cli, ["fit", str(path), "-k", "1-3", "--prior", "default", "--json", "-q"])
    assert outcome.exit_code == 0, outcome.output
    selection = json.loads(outcome.stdout)["selection"]
    assert selection["settings"]["prior"] == "default"
    python = select(X, range(1, 4), random_state=0, prior="default").to_dict()
    assert selection["rows"] == python["rows"]


# ---------------------------------------------------------------- degenerate fits under a prior
def _blob_and_far_pair() -> np.ndarray:
    """200 rows about the origin and an isolated pair of rows far from them, shape (202, 2)."""
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(200, 2)), [[12.0, 12.0], [12.1, 12.0]]])


@pytest.mark.parametrize("structure", ["VVV", "VEI", "VVI", "EEE", "VII"])
def test_a_component_that_empties_under_the_prior_is_degenerate(structure):
    # one component on the blob, one on the pair, and a third started beyond the pair: the
    # pair's component takes both rows and the third empties; the prior holds its covariance up
    X = _blob_and_far_pair()
    model = GaussianMixture(3, covariance_type=structure, prior="default",
                            means_init=[[0.0, 0.0], [12.05, 12.0], [14.0, 14.0]])
    with pytest.warns(DegenerateFitWarning):
        model.fit(X)
    assert model.effective_counts_ == pytest.approx(np.asarray(model.weights_) * len(X))
    assert model.effective_counts_[:2] == pytest.approx([200, 2], abs=1e-3)
    assert model.degenerate_components_.tolist() == [False, False, True]


def test_a_component_on_the_isolated_pair_is_sound():
    # two rows of data are enough under the prior (mclust reports such cells as numbers)
    X = _blob_and_far_pair()
    model = GaussianMixture(2, covariance_type="VVV", prior="default", means_init=[[0.0, 0.0], [12.05, 12.0]]).fit(X)
    assert model.effective_counts_ == pytest.approx([200, 2], abs=1e-6)
    assert not model.degenerate_


def test_fits_without_a_prior_keep_no_counts():
    X = _blob_and_far_pair()
    model = GaussianMixture(3, covariance_type="VVV", prior="default", random_state=0).fit(X)
    assert hasattr(model, "effective_counts_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateFitWarning)  # the pair's component collapses without a prior
        model.set_params(prior=None).fit(X)  # a refit without a prior drops them
    assert not hasattr(model, "effective_counts_")


def test_a_saved_prior_fit_keeps_its_counts_and_its_verdict(tmp_path):
    X = _blob_and_far_pair()
    model = GaussianMixture(3, covariance_type="VVV", prior="default",
                            means_init=[[0.0, 0.0], [12.05, 12.0], [14.0, 14.0]])
    with pytest.warns(DegenerateFitWarning):
        model.fit(X)
    save(model, tmp_path / "map.gmm")
    loaded = load(tmp_path / "map.gmm")
    np.testing.assert_array_equal(loaded.effective_counts_, model.effective_counts_)
    assert loaded.degenerate_components_.tolist() == [False, False, True]


@pytest.mark.parametrize("counts, message", [([1.0, 2.0], "not a list of 3 finite numbers >= 0"),
                                             ([1.0, -2.0, 3.0], "not a list of 3 finite numbers >= 0"),
                                             ("many", "not a list of 3")])
def test_tampered_counts_in_a_model_file_are_refused(tmp_path, counts, message):
    import zipfile

    X = _blob_and_far_pair()
    save(GaussianMixture(3, prior="default", random_state=0).fit(X), tmp_path / "map.gmm")
    with zipfile.ZipFile(tmp_path / "map.gmm") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(members["metadata.json"])
    metadata["fit"]["effective_counts"] = counts
    members["metadata.json"] = json.dumps(metadata).encode()
    with zipfile.ZipFile(tmp_path / "tampered.gmm", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match=f"fit.effective_counts is .*{message}"):
        load(tmp_path / "tampered.gmm")
