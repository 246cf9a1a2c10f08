"""mclust's 14 covariance structures: constraints, optimality, counts, monotone EM.

The expectations are written from the structures' definitions
(``Sigma_k = lambda_k D_k A_k D_k^T``, the letters of the name saying whether
volume, shape and orientation are Equal, Variable or the Identity), from
closed forms computed here with numpy, and from scikit-learn; never from
values produced by the code under test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from gaussmix import MCLUST_COVARIANCE_TYPES, GaussianMixture, SuffStats, get_covariance_model
from gaussmix.em import m_step

from .conftest import make_blobs

N_COMPONENTS, N_FEATURES = 3, 3


def _soft_statistics(seed=0, full=True, n_samples=400):
    """Rows, soft responsibilities and their statistics computed directly."""
    X, labels = make_blobs(n_samples, N_FEATURES, N_COMPONENTS, seed=seed)
    rng = np.random.RandomState(seed)
    resp = 0.7 * np.eye(N_COMPONENTS)[labels] + 0.3 * rng.dirichlet(np.ones(N_COMPONENTS), size=n_samples)
    counts = resp.sum(axis=0)
    means = resp.T @ X / counts[:, None]
    scatter = np.stack([(resp[:, k, None] * (X - means[k])).T @ (X - means[k]) for k in range(N_COMPONENTS)])
    kept = scatter if full else np.stack([np.diag(s) for s in scatter])
    return X, resp, SuffStats(counts, means, kept, float(n_samples)), scatter


def _estimate(name, seed=0, previous=None):
    model = get_covariance_model(name)
    X, resp, stats, scatter = _soft_statistics(seed, full=model.full_scatter)
    layout = model.estimate(stats, 0.0, previous=previous)
    return model.dense(layout, N_COMPONENTS, N_FEATURES), layout, stats, scatter


def _objective(covariances, counts, scatter):
    """``sum_k N_k log det Sigma_k + tr(W_k Sigma_k^-1)``: minus twice the M-step's target."""
    covariances = np.broadcast_to(covariances, scatter.shape)
    return sum(
        counts[k] * np.linalg.slogdet(covariances[k])[1] + np.trace(np.linalg.solve(covariances[k], scatter[k]))
        for k in range(len(counts))
    )


# -- constraints -----------------------------------------------------------------------------


def _volumes(covariances):
    return np.exp(np.linalg.slogdet(covariances)[1] / covariances.shape[-1])


@pytest.mark.parametrize("name", MCLUST_COVARIANCE_TYPES)
def test_estimate_satisfies_the_structure_its_name_states(name):
    covariances = np.asarray(_estimate(name)[0])
    volume, shape, orientation = name
    volumes = _volumes(covariances)
    normalised = covariances / volumes[:, None, None]
    eigenvalues = np.linalg.eigvalsh(normalised)
    assert np.all(np.linalg.eigvalsh(covariances) > 0)
    assert np.allclose(covariances, np.swapaxes(covariances, 1, 2))
    if volume == "E":
        assert np.allclose(volumes, volumes[0], rtol=1e-9)
    else:
        assert not np.allclose(volumes, volumes[0], rtol=1e-3)
    if shape == "I":
        assert np.allclose(normalised, np.eye(N_FEATURES), atol=1e-9)
    elif shape == "E":
        assert np.allclose(eigenvalues, eigenvalues[0], rtol=1e-8)
    else:
        assert not np.allclose(eigenvalues, eigenvalues[0], rtol=1e-3)
    off_diagonal = covariances * (1 - np.eye(N_FEATURES))
    if orientation == "I":
        assert np.allclose(off_diagonal, 0)
    else:
        assert not np.allclose(off_diagonal, 0)
        # A common orientation means commuting covariances (simultaneously diagonalisable).
        products = np.einsum("aij,bjk->abik", covariances, covariances)
        commute = np.allclose(products, np.swapaxes(products, 0, 1), rtol=1e-7, atol=1e-7 * np.abs(products).max())
        assert commute == (orientation == "E")
    if shape == "E" and orientation in "EI":
        assert np.allclose(normalised, normalised[0], rtol=1e-8, atol=1e-12)


# -- optimality: nested structures --------------------------------------------------------------

_ORDER = {"I": 0, "E": 1, "V": 2}


def _is_nested(small, large):
    """Whether every covariance of structure ``small`` is allowed by ``large``."""
    if small == large:
        return False
    small_orientation = "I" if small[1] == "I" else small[2]  # a spherical shape has no orientation
    large_orientation = "I" if large[1] == "I" else large[2]
    return (
        _ORDER[small[0]] <= _ORDER[large[0]]
        and _ORDER[small[1]] <= _ORDER[large[1]]
        and _ORDER[small_orientation] <= _ORDER[large_orientation]
    )


NESTED = [(a, b) for a, b in itertools.permutations(MCLUST_COVARIANCE_TYPES, 2) if _is_nested(a, b)]


@pytest.mark.parametrize("small, large", NESTED)
def test_a_larger_structure_fits_at_least_as_well(small, large):
    small_dense, _, stats, scatter = _estimate(small, seed=1)
    large_model = get_covariance_model(large)
    X, resp, large_stats, _ = _soft_statistics(1, full=large_model.full_scatter)
    # Warm-started from the smaller model's optimum, an iterative M-step must not do worse.
    start = _to_layout(large_model, np.asarray(small_dense))
    large_dense = large_model.dense(large_model.estimate(large_stats, 0.0, previous=start), N_COMPONENTS, N_FEATURES)
    counts = stats.resp_weight
    assert _objective(large_dense, counts, scatter) <= _objective(small_dense, counts, scatter) + 1e-9 * abs(
        _objective(small_dense, counts, scatter)
    )


def _to_layout(model, dense):
    """Dense (K, D, D) covariances in ``model``'s array layout."""
    shape = model.parameter_shape(N_COMPONENTS, N_FEATURES)
    if len(shape) == 1:
        return np.trace(dense, axis1=1, axis2=2) / N_FEATURES
    if len(shape) == 2 and shape[0] == N_COMPONENTS and shape[1] == N_FEATURES and shape != (N_FEATURES, N_FEATURES):
        return np.stack([np.diag(c) for c in dense])
    if shape == (N_FEATURES, N_FEATURES):
        return dense[0]
    return dense


@pytest.mark.parametrize("name", MCLUST_COVARIANCE_TYPES)
def test_estimate_is_a_stationary_point_of_the_objective(name):
    """No small move within the structure lowers the objective (checked along random directions)."""
    dense, layout, stats, scatter = _estimate(name, seed=2)
    model = get_covariance_model(name)
    counts = stats.resp_weight
    best = _objective(np.asarray(dense), counts, scatter)
    rng = np.random.RandomState(0)
    # Moves inside the structure: rescale volumes, shapes and rotate orientations as the letters allow.
    for _ in range(20):
        moved = _perturb_within(name, np.asarray(dense), rng, 1e-3)
        assert _objective(moved, counts, scatter) >= best - 1e-10 * abs(best)


def _perturb_within(name, covariances, rng, size):
    volume, shape, orientation = name
    values, vectors = np.linalg.eigh(covariances)
    K, D = values.shape
    volumes = np.exp(np.log(values).mean(axis=1))
    shapes = values / volumes[:, None]
    volumes = volumes * np.exp(size * (rng.normal(size=K) if volume == "V" else np.full(K, rng.normal())))
    if shape != "I":
        log_move = rng.normal(size=(K if shape == "V" else 1, D))
        log_move -= log_move.mean(axis=1, keepdims=True)
        # Equal shapes stay equal: eigh sorts every component's eigenvalues the same way.
        shapes = shapes * np.exp(size * np.broadcast_to(log_move, (K, D)))
    if orientation != "I" and shape != "I":
        generator = rng.normal(size=(K if orientation == "V" else 1, D, D))
        generator = generator - np.swapaxes(generator, 1, 2)
        rotation = np.stack([_expm_skew(size * g) for g in generator])
        vectors = np.broadcast_to(rotation, (K, D, D)) @ vectors
    return np.einsum("kij,kj,klj->kil", vectors, volumes[:, None] * shapes, vectors)


def _expm_skew(skew):
    values, vectors = np.linalg.eig(skew)
    return np.real(vectors @ np.diag(np.exp(values)) @ np.linalg.inv(vectors))


# -- closed forms and scikit-learn ------------------------------------------------------------


def test_eii_is_the_pooled_isotropic_variance():
    dense, _, stats, scatter = _estimate("EII")
    expected = np.trace(scatter.sum(axis=0)) / (N_FEATURES * stats.resp_weight.sum())
    assert np.allclose(dense, expected * np.eye(N_FEATURES))


def test_eei_is_the_pooled_diagonal():
    dense, _, stats, scatter = _estimate("EEI")
    expected = np.diag(np.diag(scatter.sum(axis=0)) / stats.resp_weight.sum())
    assert np.allclose(dense, expected)


def test_evv_and_eev_closed_forms():
    dense, _, stats, scatter = _estimate("EVV")
    volumes = _volumes(scatter)
    assert np.allclose(dense, scatter / volumes[:, None, None] * volumes.sum() / stats.resp_weight.sum())
    dense, _, stats, scatter = _estimate("EEV")
    values, vectors = np.linalg.eigh(scatter)
    common = values.sum(axis=0) / stats.resp_weight.sum()
    assert np.allclose(dense, np.einsum("kij,j,klj->kil", vectors, common, vectors))


@pytest.mark.parametrize("mclust_name, sklearn_name", [("VVV", "full"), ("EEE", "tied"), ("VVI", "diag"), ("VII", "spherical")])
def test_sklearn_types_are_the_mclust_structures(mclust_name, sklearn_name, faithful):
    assert get_covariance_model(mclust_name) is get_covariance_model(sklearn_name)
    ours = GaussianMixture(2, covariance_type=mclust_name, random_state=0, tol=1e-8).fit(faithful)
    theirs = SklearnGaussianMixture(2, covariance_type=sklearn_name, random_state=0, tol=1e-8).fit(faithful)
    order = np.argsort(ours.means_[:, 0]), np.argsort(theirs.means_[:, 0])
    assert np.allclose(ours.means_[order[0]], theirs.means_[order[1]], rtol=1e-4)
    assert np.isclose(ours.bic(faithful), theirs.bic(faithful), rtol=1e-6)


# -- parameter counts -------------------------------------------------------------------------

# mclust's nVarParams, transcribed from the mclust documentation (d features, G components).
MCLUST_VARIANCE_PARAMETERS = {
    "EII": lambda d, G: 1,
    "VII": lambda d, G: G,
    "EEI": lambda d, G: d,
    "VEI": lambda d, G: G + (d - 1),
    "EVI": lambda d, G: 1 + G * (d - 1),
    "VVI": lambda d, G: G * d,
    "EEE": lambda d, G: d * (d + 1) / 2,
    "EVE": lambda d, G: 1 + G * (d - 1) + d * (d - 1) / 2,
    "VEE": lambda d, G: G + (d - 1) + d * (d - 1) / 2,
    "VVE": lambda d, G: G + G * (d - 1) + d * (d - 1) / 2,
    "EEV": lambda d, G: 1 + (d - 1) + G * d * (d - 1) / 2,
    "VEV": lambda d, G: G + (d - 1) + G * d * (d - 1) / 2,
    "EVV": lambda d, G: 1 - G + G * d * (d + 1) / 2,
    "VVV": lambda d, G: G * d * (d + 1) / 2,
}


def test_the_fourteen_names():
    assert set(MCLUST_COVARIANCE_TYPES) == set(MCLUST_VARIANCE_PARAMETERS)
    assert len(MCLUST_COVARIANCE_TYPES) == 14


@pytest.mark.parametrize("name", MCLUST_COVARIANCE_TYPES)
def test_parameter_counts_match_mclust(name):
    model = get_covariance_model(name)
    for d, G in itertools.product(range(1, 6), range(1, 6)):
        assert model.n_covariance_parameters(G, d) == MCLUST_VARIANCE_PARAMETERS[name](d, G)
        # mclust's nMclustParams: variances + G d means + (G - 1) proportions
        assert model.n_parameters(G, d) == MCLUST_VARIANCE_PARAMETERS[name](d, G) + G * d + G - 1


# -- EM ---------------------------------------------------------------------------------------


def _log_likelihood(X, params):
    """Mixture log-likelihood evaluated with scipy from dense covariances."""
    dense = np.asarray(params.dense_covariances())
    densities = np.stack(
        [w * multivariate_normal(m, c).pdf(X) for w, m, c in zip(params.weights, params.means, dense)], axis=1
    )
    return np.log(densities.sum(axis=1)).sum()


@pytest.mark.parametrize("name", MCLUST_COVARIANCE_TYPES)
def test_warm_started_em_steps_never_lower_the_log_likelihood(name):
    from gaussmix.em import accumulate

    X = make_blobs(300, N_FEATURES, N_COMPONENTS, seed=4)[0]
    model = get_covariance_model(name)
    rng = np.random.RandomState(4)
    resp = rng.dirichlet(np.ones(N_COMPONENTS), size=len(X))
    counts = resp.sum(axis=0)
    means = resp.T @ X / counts[:, None]
    centred = X[:, None, :] - means[None]
    scatter = np.einsum("nk,nki,nkj->kij", resp, centred, centred)
    if not model.full_scatter:
        scatter = np.diagonal(scatter, axis1=1, axis2=2).copy()
    params = m_step(SuffStats(counts, means, scatter, float(len(X))), model, 0.0)
    previous = _log_likelihood(X, params)
    for _ in range(15):
        stats, _ = accumulate(X, None, params)
        params = m_step(stats, model, 0.0, previous=params)
        current = _log_likelihood(X, params)
        assert current >= previous - 1e-9 * abs(previous)
        previous = current


def test_fit_with_every_structure_on_float32(faithful):
    for name in MCLUST_COVARIANCE_TYPES:
        model = GaussianMixture(2, covariance_type=name, random_state=0).fit(faithful.astype(np.float32))
        assert model.covariances_.dtype == np.float32
        assert np.isfinite(model.score(faithful))


@pytest.mark.parametrize("name", MCLUST_COVARIANCE_TYPES)
def test_component_on_repeated_rows_is_a_named_collapse_or_a_fit_never_a_crash(name):
    from gaussmix import CollapsedComponentError

    rng = np.random.RandomState(0)
    X = np.concatenate([rng.normal(size=(40, 2)), np.tile([[8.0, 8.0]], (20, 1))])
    model = GaussianMixture(2, covariance_type=name, reg_covar=0, random_state=0)
    try:
        model.fit(X)
    except CollapsedComponentError as error:
        assert "reg_covar" in str(error)
        # With volume and shape shared (EII, EEI, EEE, EEV) every component has the same
        # eigenvalues: one component alone cannot become singular.
        assert name not in ("EII", "EEI", "EEE", "EEV")
        model.set_params(reg_covar=1e-6).fit(X)
    assert np.isfinite(model.score(X))
