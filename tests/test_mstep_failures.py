"""An M-step that cannot go on says why: CollapsedComponentError or a ValueError, never raw LAPACK."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gaussmix import CollapsedComponentError, GaussianMixture

MCLUST = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")


def _badly_scaled(seed=9):
    """K clusters in D columns whose scales run from 0.002 to 290 (a fuzzed problem, drawn as drawn)."""
    rng = np.random.default_rng(seed)
    n_samples, n_features = rng.integers(20, 250), rng.integers(2, 7)
    scales = np.exp(rng.uniform(np.log(0.002), np.log(290), n_features))
    n_components = int(rng.integers(3, 6))
    centres = rng.normal(size=(n_components, n_features)) * 3
    labels = rng.integers(0, n_components, n_samples)
    noise = rng.normal(size=(n_samples, n_features))
    spread = rng.uniform(0.3, 2, (n_components, n_features))[labels]
    X = (centres[labels] + noise * spread) * scales + rng.choice([0, 10, 1000])
    return X, n_components


def _rank_one(seed=0):
    """Rows on a line in 2 to 5 dimensions."""
    rng = np.random.default_rng(seed)
    n_samples, n_features = rng.integers(40, 300), rng.integers(2, 6)
    return rng.normal(size=(n_samples, 1)) @ rng.normal(size=(1, n_features)) + rng.normal(size=n_features)


def _fit_or_collapse(X, covariance_type, n_components, reg_covar, seed=0):
    """True if the fit went through, False if it raised CollapsedComponentError (anything else escapes)."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            GaussianMixture(n_components, covariance_type=covariance_type, reg_covar=reg_covar,
                            random_state=seed, max_iter=100).fit(X)
    except CollapsedComponentError as error:
        assert "reg_covar" in str(error)  # the advice
        return False
    return True


@pytest.mark.parametrize("covariance_type", MCLUST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_badly_scaled_columns_fit_or_collapse(covariance_type, dtype):
    # VVE in float32 raised "SVD did not converge": 1 / positive_floor(scales) reached
    # 8.5e37, and the MM step's curvature bound overflowed.
    X, n_components = _badly_scaled()
    _fit_or_collapse(X.astype(dtype), covariance_type, n_components, reg_covar=0.0, seed=9)


@pytest.mark.parametrize("covariance_type", MCLUST)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg_covar", [0.0, 1e-300])
def test_rank_one_data_without_regularisation_fit_or_collapse(covariance_type, dtype, reg_covar):
    # EVE and VVE raised "SVD did not converge", VEE "Singular matrix" (inv of a singular C).
    _fit_or_collapse(_rank_one().astype(dtype), covariance_type, 3, reg_covar)


@pytest.mark.parametrize("covariance_type", ["EVE", "VVE"])
def test_rank_one_data_collapse_for_the_common_orientation_structures(covariance_type):
    assert not _fit_or_collapse(_rank_one(), covariance_type, 3, 0.0)


def test_a_singular_vee_scatter_is_a_collapse_with_advice():
    with pytest.raises(CollapsedComponentError, match="Raise reg_covar.*VEE.*singular"):
        GaussianMixture(3, covariance_type="VEE", reg_covar=0.0, random_state=0).fit(_rank_one())


@pytest.mark.parametrize("covariance_type", MCLUST)
@pytest.mark.parametrize("dtype, reg_covar", [(np.float32, 1e36), (np.float32, 1e100), (np.float64, 1e306)])
def test_a_reg_covar_past_the_dtypes_range_is_refused_with_a_message(covariance_type, dtype, reg_covar):
    # EEV, VEV, EVE and VVE raised "Eigenvalues did not converge" on float32 scatters of inf.
    X = np.random.default_rng(0).normal(size=(200, 3)).astype(dtype)
    with pytest.raises(ValueError, match="reg_covar=.* is too large for .* data"):
        GaussianMixture(3, covariance_type=covariance_type, reg_covar=reg_covar, random_state=0).fit(X)


@pytest.mark.parametrize("covariance_type", MCLUST)
def test_a_large_reg_covar_within_range_fits(covariance_type):
    # EVV formed volume * scatter, of order reg_covar^2 N: overflow (a RuntimeWarning) from 1e19.
    X = np.random.default_rng(0).normal(size=(200, 3))
    X[:100] += 4.0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        model = GaussianMixture(3, covariance_type=covariance_type, reg_covar=1e30, random_state=0, max_iter=5)
        model.fit(X.astype(np.float32))
    assert np.all(np.isfinite(model.covariances_))


def test_relative_inverse_stays_finite_for_floored_scales():
    from gaussmix.covariance._eigen import relative_inverse

    tiny = float(np.finfo(np.float32).tiny)
    scales = np.array([[tiny, 1.0, 290.0**2], [0.0, 4e-6, 1.0]], dtype=np.float32)
    inverse = relative_inverse(scales)
    assert np.all(np.isfinite(inverse)) and np.max(inverse) == 1.0
    # proportional to 1 / s
    np.testing.assert_allclose(relative_inverse(np.array([[2.0, 8.0], [4.0, 0.5]])), [[0.25, 0.0625], [0.125, 1.0]])
