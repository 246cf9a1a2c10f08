"""GaussianMixture.impute: chunk-independent results, out-of-core input and output, the draws' distribution."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from gaussmix import GaussianMixture
from gaussmix.imputation import DrawKey

from .conftest import make_blobs
from .test_missing import _remove
from .test_outofcore import ListSource


def _fitted(X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(missing="marginalize", random_state=0, max_iter=10, **kwargs).fit(X)


@pytest.fixture(scope="module")
def incomplete():
    # 5 features, a third of the entries missing: rows missing one to four entries, many patterns
    X, _ = _remove(make_blobs(1500, 5, 3, seed=41)[0], 0.35, seed=41)
    return X


@pytest.fixture(scope="module")
def model(incomplete):
    return _fitted(incomplete, n_components=3)


def _rechunked(model, chunk_size):
    other = GaussianMixture(**{**model.get_params(), "chunk_size": chunk_size})
    other.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    return other


# ------------------------------------------------------------------ a row's result does not depend on its chunk
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV", "VEE"])
def test_a_rows_imputation_does_not_depend_on_its_chunk(incomplete, covariance_type):
    model = _fitted(incomplete, n_components=3, covariance_type=covariance_type)
    whole = model.impute(incomplete)
    draws = model.impute(incomplete, n_draws=3, random_state=7)
    for chunk_size in (1, 7, 256):
        chunked = _rechunked(model, chunk_size)
        np.testing.assert_array_equal(chunked.impute(incomplete), whole)
        np.testing.assert_array_equal(chunked.impute(incomplete, n_draws=3, random_state=7), draws)
    # nor on the rows beside it
    np.testing.assert_array_equal(model.impute(incomplete[::-1]), whole[::-1])
    np.testing.assert_array_equal(model.impute(incomplete[100:400]), whole[100:400])


def test_draws_of_a_row_depend_on_the_seed_and_its_position(model, incomplete):
    draws = model.impute(incomplete, n_draws=2, random_state=0)
    assert draws.shape == (2, *incomplete.shape)
    gaps = np.isnan(incomplete)
    np.testing.assert_array_equal(draws[:, ~gaps], np.broadcast_to(incomplete[~gaps], (2, int((~gaps).sum()))))
    assert not np.isnan(draws).any()
    assert np.all(draws[0][gaps] != draws[1][gaps])
    assert np.all(model.impute(incomplete, n_draws=2, random_state=1)[:, gaps] != draws[:, gaps])
    # a RandomState instance is a seed drawn from it once: the same state gives the same draws
    np.testing.assert_array_equal(model.impute(incomplete, n_draws=2, random_state=np.random.RandomState(0)),
                                  model.impute(incomplete, n_draws=2, random_state=np.random.RandomState(0)))


@pytest.mark.parametrize("first_row, n_rows", [(0, 5), (3, 4), (17, 1)])
def test_the_random_numbers_of_a_row_sit_at_its_position(first_row, n_rows):
    key = DrawKey.of(3, n_draws=2)
    uniforms, normals = key.uniforms_and_normals(0, 20, 4)
    part_uniforms, part_normals = key.uniforms_and_normals(first_row, n_rows, 4)
    np.testing.assert_array_equal(part_uniforms, uniforms[first_row:first_row + n_rows])
    np.testing.assert_array_equal(part_normals, normals[first_row:first_row + n_rows])
    assert np.all((uniforms >= 0) & (uniforms < 1)) and np.all(np.isfinite(normals))


# ------------------------------------------------------------------ the draws follow p(x_m | x_o)
def _set_mixture(weights, means, covariances):
    """A fitted full-covariance model with exactly these parameters."""
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

    model = GaussianMixture(len(weights), missing="marginalize")
    model.weights_, model.means_, model.covariances_ = np.asarray(weights), np.asarray(means), np.asarray(covariances)
    model.precisions_cholesky_ = _compute_precision_cholesky(model.covariances_, "full")
    model.n_features_in_ = model.means_.shape[1]
    return model


def test_draws_follow_the_conditional_mixture():
    # Two components far apart in the two missing features, alike in the observed one: each
    # draw's component is plain to see, and the row's weights are known in closed form.
    covariance = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 1.0]])
    means = np.array([[0.0, -8.0, 0.0], [0.5, 8.0, 3.0]])
    model = _set_mixture([0.3, 0.7], means, [covariance, covariance])
    row = np.array([[0.2, np.nan, np.nan]])
    n_draws = 40000
    draws = model.impute(row, n_draws=n_draws, random_state=0)[:, 0, 1:]  # (n_draws, 2)
    # closed forms: p(k | x_0), and each component's conditional N(mean_k, schur)
    joint = np.array([w * np.exp(-0.5 * (row[0, 0] - m[0]) ** 2) for w, m in zip([0.3, 0.7], means)])
    weights = joint / joint.sum()
    gain = covariance[1:, :1] / covariance[0, 0]
    schur = covariance[1:, 1:] - gain @ covariance[:1, 1:]
    first = draws[:, 0] < 0
    assert abs(first.mean() - weights[0]) < 4 * np.sqrt(weights[0] * weights[1] / n_draws)
    for k, chosen in enumerate((first, ~first)):
        expected_mean = means[k, 1:] + gain[:, 0] * (row[0, 0] - means[k, 0])
        sample = draws[chosen]
        standard_error = np.sqrt(schur.diagonal().max() / len(sample))
        np.testing.assert_allclose(sample.mean(axis=0), expected_mean, atol=4 * standard_error)
        np.testing.assert_allclose(np.cov(sample.T), schur, atol=5 * np.sqrt(2 / len(sample)))


# ------------------------------------------------------------------ out-of-core input and output
def test_out_of_core_impute_equals_the_in_memory_one(tmp_path, model, incomplete):
    path = tmp_path / "incomplete.npy"
    np.save(path, incomplete)
    expected = model.impute(incomplete)
    drawn = model.impute(incomplete, n_draws=3, random_state=5)
    streamed_model = _rechunked(model, 300)
    memmap = np.load(path, mmap_mode="r")
    for source in (str(path), memmap, ListSource(incomplete, chunk_rows=333)):
        np.testing.assert_array_equal(streamed_model.impute(source), expected)
        np.testing.assert_array_equal(streamed_model.impute(source, n_draws=3, random_state=5), drawn)


def test_out_of_core_impute_writes_a_npy_file_chunk_by_chunk(tmp_path, model, incomplete):
    path = tmp_path / "incomplete.npy"
    np.save(path, incomplete)
    streamed_model = _rechunked(model, 256)
    written = streamed_model.impute(str(path), out=tmp_path / "filled.npy")
    assert isinstance(written, np.memmap) and not written.flags.writeable
    np.testing.assert_array_equal(written, model.impute(incomplete))
    np.testing.assert_array_equal(np.load(tmp_path / "filled.npy"), model.impute(incomplete))
    # a chunk source that does not say how many rows it has is counted first
    drawn = streamed_model.impute(ListSource(incomplete, chunk_rows=400), n_draws=2, random_state=1,
                                  out=tmp_path / "draws.npy")
    assert drawn.shape == (2, *incomplete.shape)
    np.testing.assert_array_equal(drawn, model.impute(incomplete, n_draws=2, random_state=1))


def test_impute_fills_a_given_array(tmp_path, model, incomplete):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "data.h5", "w") as handle:
        source = handle.create_dataset("X", data=incomplete, chunks=(128, 5))
        target = handle.create_dataset("filled", shape=incomplete.shape, dtype="f8")
        assert model.impute(source, out=target) is target
        np.testing.assert_array_equal(target[...], model.impute(incomplete))
    in_memory = np.empty((2, *incomplete.shape))
    assert model.impute(incomplete, n_draws=2, random_state=3, out=in_memory) is in_memory
    np.testing.assert_array_equal(in_memory, model.impute(incomplete, n_draws=2, random_state=3))


def test_impute_refuses_an_out_of_another_shape(model, incomplete):
    with pytest.raises(ValueError, match=r"out has shape \(1500, 4\); the result has shape \(1500, 5\)"):
        model.impute(incomplete, out=np.empty((1500, 4)))
    with pytest.raises(ValueError, match=r"result has shape \(2, 1500, 5\)"):
        model.impute(incomplete, n_draws=2, out=np.empty(incomplete.shape))
    with pytest.raises(ValueError, match="out must be None, the path of a .npy file"):
        model.impute(incomplete, out=[1, 2])


def test_out_of_core_impute_names_rows_with_nothing_observed(tmp_path, model, incomplete):
    bad = incomplete.copy()
    bad[[5, 1200]] = np.nan
    path = tmp_path / "bad.npy"
    np.save(path, bad)
    with pytest.raises(ValueError, match=r"row\(s\) 5, 1200 .*every entry missing"):
        _rechunked(model, 100).impute(str(path))
