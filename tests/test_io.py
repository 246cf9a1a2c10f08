"""Model files: exact round trips, no pickle, atomic writes, clear errors for bad files."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import gaussmix
from gaussmix import GaussianMixture, ModelFileError, load, save
from gaussmix.covariance import canonical_covariance_types
from gaussmix.io import load_metadata

from .conftest import make_blobs


@pytest.fixture(scope="module")
def data():
    return make_blobs(n_samples=150, n_features=3, seed=0)[0]


@pytest.fixture
def saved(tmp_path, data):
    model = GaussianMixture(3, n_init=2, random_state=0).fit(data)
    path = tmp_path / "model.gmm"
    save(model, path)
    return model, path


def _rewrite(path, target, change_metadata=None, members=None):
    """Copy the archive at ``path`` to ``target``, editing metadata or members."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as copy:
        for name in source.namelist():
            raw = source.read(name)
            if name == "metadata.json" and change_metadata is not None:
                metadata = json.loads(raw)
                change_metadata(metadata)
                raw = json.dumps(metadata).encode()
            if members and name in members:
                raw = members[name]
                if raw is None:
                    continue
            copy.writestr(name, raw)


@pytest.mark.parametrize("covariance_type", canonical_covariance_types())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_exact_for_every_registered_structure(tmp_path, data, covariance_type, dtype):
    X = data.astype(dtype)
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    path = tmp_path / f"{covariance_type}.gmm"
    save(model, path)
    loaded = load(path)
    for method in ("predict", "predict_proba", "score_samples"):
        assert np.array_equal(getattr(model, method)(X), getattr(loaded, method)(X))
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(loaded, name).dtype == getattr(model, name).dtype
        assert np.array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.get_params() == {**model.get_params(), "callback": None}
    assert loaded.lower_bounds_ == model.lower_bounds_
    assert loaded.n_features_in_ == 3
    assert loaded.bic(X) == model.bic(X)


def test_metadata_holds_what_the_issue_asks(saved):
    model, path = saved
    metadata = load_metadata(path)
    assert metadata["format"] == "gaussmix-model" and metadata["schema_version"] == 1
    assert metadata["gaussmix_version"] == gaussmix.__version__
    assert metadata["covariance_type"] == "full" and metadata["dtype"] == "float64"
    assert metadata["feature_names"] is None
    assert len(metadata["fit"]["lower_bounds_per_init"]) == 2


def test_feature_names_and_extra_are_kept(tmp_path, data):
    model = GaussianMixture(2, random_state=0).fit(data)
    model.feature_names_in_ = np.asarray(["a", "b", "c"], dtype=object)
    save(model, tmp_path / "m.gmm", extra={"selection": {"criterion": "bic"}})
    assert list(load(tmp_path / "m.gmm").feature_names_in_) == ["a", "b", "c"]
    assert load_metadata(tmp_path / "m.gmm")["extra"] == {"selection": {"criterion": "bic"}}


def test_loading_never_unpickles(tmp_path, saved):
    _, path = saved
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    target = tmp_path / "pickled.gmm"
    _rewrite(path, target, members={"weights.npy": buffer.getvalue()})
    with pytest.raises(ModelFileError, match=r"pickled\.gmm: corrupt model file: array 'weights' cannot be read"):
        load(target)


def test_truncated_file(tmp_path, saved):
    _, path = saved
    raw = path.read_bytes()
    target = tmp_path / "truncated.gmm"
    target.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match=r"truncated\.gmm: .*truncated/corrupted"):
        load(target)


def test_corrupted_bytes(tmp_path, data):
    model = GaussianMixture(2, random_state=0).fit(data)
    path = tmp_path / "m.gmm"
    save(model, path)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"weights.npy") + len("weights.npy")  # compressed bytes of that member follow
    for offset in range(start + 5, start + 25):
        raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=r"m\.gmm: "):
        load(path)


def test_newer_schema_version(tmp_path, saved):
    _, path = saved
    target = tmp_path / "future.gmm"
    _rewrite(path, target, change_metadata=lambda m: m.update(schema_version=99))
    with pytest.raises(ModelFileError, match="future.gmm: written with model-file schema version 99.*upgrade gaussmix"):
        load(target)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format="something-else"), "not a gaussmix model file"),
    (lambda m: m.update(n_components=4), r"array 'weights' has shape \(3,\), expected \(4,\)"),
    (lambda m: m.update(covariance_type="XYZ"), "unknown covariance type 'XYZ'"),
    (lambda m: m.pop("arrays"), "metadata lacks"),
    (lambda m: m.update(feature_names=["a"]), "1 feature names for 3 features"),
])
def test_inconsistent_metadata(tmp_path, saved, change, message):
    _, path = saved
    target = tmp_path / "edited.gmm"
    _rewrite(path, target, change_metadata=change)
    with pytest.raises(ModelFileError, match=message):
        load(target)


def test_missing_array_and_non_finite_array(tmp_path, saved):
    _, path = saved
    target = tmp_path / "missing.gmm"
    _rewrite(path, target, members={"means.npy": None})
    with pytest.raises(ModelFileError, match="array 'means' is missing"):
        load(target)
    buffer = io.BytesIO()
    np.save(buffer, np.array([np.nan, 0.5, 0.5]))
    _rewrite(path, target, members={"weights.npy": buffer.getvalue()})
    with pytest.raises(ModelFileError, match="'weights' holds NaN or inf"):
        load(target)


def test_files_that_are_not_models(tmp_path):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ModelFileError, match=r"data\.csv: not a gaussmix model file"):
        load(csv)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match="no metadata.json"):
        load(other_zip)
    bad_json = tmp_path / "bad.gmm"
    with zipfile.ZipFile(bad_json, "w") as archive:
        archive.writestr("metadata.json", "{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load(bad_json)
    with pytest.raises(ModelFileError, match="nothere.gmm: no such file"):
        load(tmp_path / "nothere.gmm")
    with pytest.raises(ModelFileError, match="is a directory"):
        load(tmp_path)
    assert issubclass(ModelFileError, ValueError)


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, saved, data, monkeypatch):
    _, path = saved
    before = path.read_bytes()
    other = GaussianMixture(2, covariance_type="diag", random_state=0).fit(data)
    calls = []

    def failing_write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    original = np.lib.format.write_array
    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="disk full"):
        save(other, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.gmm"]


def test_save_errors(tmp_path, data):
    with pytest.raises(NotFittedError):
        save(GaussianMixture(2), tmp_path / "m.gmm")
    model = GaussianMixture(2, random_state=0).fit(data)
    with pytest.raises(FileNotFoundError, match="directory .*nodir does not exist"):
        save(model, tmp_path / "nodir" / "m.gmm")


def test_model_without_em_iterations_round_trips(tmp_path, data):
    model = GaussianMixture(2, max_iter=0, random_state=0).fit(data)
    save(model, tmp_path / "start.gmm")
    loaded = load(tmp_path / "start.gmm")
    assert loaded.lower_bound_ == -np.inf
    assert np.array_equal(loaded.predict(data), model.predict(data))
