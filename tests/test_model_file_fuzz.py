"""Random corruptions of model files: load refuses them or returns a model as valid as a fit.

A fast profile runs in CI; a longer one is marked slow.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaussmix import GaussianMixture, ModelFileError, load, save

STRUCTURES = ["full", "tied", "diag", "spherical", "VEV", "EEI"]
ROWS = np.random.RandomState(0).normal(size=(60, 3)) + np.repeat(np.array([[0.0, 0, 0], [5, 5, 5]]), 30, axis=0)


def _saved(structure: str) -> bytes:
    model = GaussianMixture(2, covariance_type=structure, random_state=0).fit(ROWS)
    buffer = io.BytesIO()
    path = f"/tmp/fuzz-{structure}.gmm"
    save(model, path)
    with open(path, "rb") as handle:
        buffer.write(handle.read())
    return buffer.getvalue()


ORIGINALS = {structure: _saved(structure) for structure in STRUCTURES}


def _assert_valid(model: GaussianMixture) -> None:
    """What every fitted model satisfies, checked independently of gaussmix's own checks."""
    weights = np.asarray(model.weights_, dtype=np.float64)
    assert np.all(weights >= 0) and abs(weights.sum() - 1) < 1e-5
    assert np.all(np.isfinite(model.means_))
    dense = np.asarray(model._fitted_params().dense_covariances(), dtype=np.float64)
    assert np.all(np.linalg.eigvalsh(dense) > 0)
    scores = model.score_samples(ROWS[:10])
    assert np.all(np.isfinite(scores))
    # the log-densities are those of the stored weights, means and covariances
    from scipy.stats import multivariate_normal

    reference = np.log(sum(w * multivariate_normal(m, c).pdf(ROWS[:10])
                           for w, m, c in zip(weights, model.means_, dense)))
    np.testing.assert_allclose(scores, reference, rtol=1e-4, atol=1e-4)


def _load(tmp_path, raw: bytes):
    path = tmp_path / "fuzzed.gmm"
    path.write_bytes(raw)
    try:
        return load(path)
    except ModelFileError:
        return None


def _bit_flips(tmp_path, structure, flips):
    raw = bytearray(ORIGINALS[structure])
    for position, mask in flips:
        raw[position % len(raw)] ^= mask
    model = _load(tmp_path, bytes(raw))
    if model is not None:  # a flip that zip's CRCs let through changed nothing that is read
        original = _load(tmp_path, ORIGINALS[structure])
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            np.testing.assert_array_equal(getattr(model, name), getattr(original, name))


def _rewritten(structure: str, array: str, index: int, value: float) -> bytes:
    """The model file with one entry of one array set to ``value`` (CRCs recomputed)."""
    source = zipfile.ZipFile(io.BytesIO(ORIGINALS[structure]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == f"{array}.npy":
                values = np.load(io.BytesIO(data))
                flat = values.reshape(-1)
                flat[index % flat.size] = value
                buffer = io.BytesIO()
                np.save(buffer, values)
                data = buffer.getvalue()
            target.writestr(info.filename, data)
    return out.getvalue()


flip_lists = st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4)
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e300, -1e-300]))
arrays = st.sampled_from(["weights", "means", "covariances", "precisions", "precisions_cholesky"])


@pytest.mark.parametrize("structure", STRUCTURES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=flip_lists)
def test_random_bit_flips_are_refused_or_change_nothing(tmp_path, structure, flips):
    _bit_flips(tmp_path, structure, flips)


@pytest.mark.parametrize("structure", STRUCTURES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array=arrays, index=st.integers(0, 100), value=values)
def test_tampered_values_are_refused_or_give_a_valid_model(tmp_path, structure, array, index, value):
    model = _load(tmp_path, _rewritten(structure, array, index, value))
    if model is not None:
        _assert_valid(model)


@pytest.mark.slow
@pytest.mark.parametrize("structure", STRUCTURES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array=arrays, index=st.integers(0, 100), value=values, flips=flip_lists)
def test_model_file_fuzzing_long(tmp_path, structure, array, index, value, flips):
    _bit_flips(tmp_path, structure, flips)
    model = _load(tmp_path, _rewritten(structure, array, index, value))
    if model is not None:
        _assert_valid(model)


def test_metadata_of_the_wrong_type_is_refused(tmp_path):
    source = zipfile.ZipFile(io.BytesIO(ORIGINALS["full"]))
    metadata = json.loads(source.read("metadata.json"))
    for key in metadata:
        for wrong in (None, [], "x", -1, True):
            if metadata[key] == wrong or key == "extra":
                continue
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
                for info in source.infolist():
                    data = source.read(info.filename)
                    if info.filename == "metadata.json":
                        data = json.dumps({**metadata, key: wrong}).encode()
                    target.writestr(info.filename, data)
            model = _load(tmp_path, out.getvalue())
            if model is not None:  # a field that tolerates the value must still give a valid model
                _assert_valid(model)


@pytest.mark.parametrize("structure, array, value", [
    ("full", "covariances", 6.900610163566911e-247),  # indefinite, with a huge correlation bound
    ("tied", "precisions_cholesky", 1.3407807929942597e154),  # its square overflows
    ("diag", "precisions_cholesky", 1.3407807929942597e154),
])
def test_what_fuzzing_found_is_refused(tmp_path, structure, array, value):
    assert _load(tmp_path, _rewritten(structure, array, 0, value)) is None
